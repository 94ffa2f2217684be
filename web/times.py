"""Times as the office reads them: in MAILROOM_TIMEZONE, never UTC, with "2 hours ago" for recent events.

The database keeps every moment in UTC; pages turn them into the office's wall-clock time here and
nowhere else, through the Jinja filters `local`, `local_iso` and `ago` registered in web/__init__.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

from flask import current_app

DEFAULT_FORMAT = "%b %d %Y %H:%M"


def office_zone() -> tzinfo:
    return current_app.extensions["mailroom.settings"].zone


def to_local(moment: datetime, zone: tzinfo) -> datetime:
    """A stored moment (aware, or naive meaning UTC) as wall-clock time in the zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def local(moment: datetime | date | None, fmt: str = DEFAULT_FORMAT) -> str:
    """Jinja filter: the moment in the office's time zone ("" for none); a plain date is shown as it is."""
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return moment.strftime(fmt)
    return to_local(moment, office_zone()).strftime(fmt)


def local_iso(moment: datetime | None) -> str:
    """Jinja filter: the machine-readable form for <time datetime="...">, with the office's offset."""
    if moment is None:
        return ""
    return to_local(moment, office_zone()).isoformat(timespec="minutes")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """Jinja filter: "just now", "5 minutes ago", "2 hours ago", "yesterday", "3 days ago", else the local date."""
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return local(moment)  # a moment in the future (a due date) reads best as a date
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        n = int(seconds // 60)
        return f"{n} minute{'s' if n != 1 else ''} ago"
    if seconds < 86400:
        n = int(seconds // 3600)
        return f"{n} hour{'s' if n != 1 else ''} ago"
    # Past a day, count the office's calendar days: something from last evening is "yesterday" at 9 am.
    zone = office_zone()
    days = (to_local(now, zone).date() - to_local(moment, zone).date()).days
    if days <= 1:
        return "yesterday"
    if days < 14:
        return f"{days} days ago"
    return local(moment, "%b %d %Y")
