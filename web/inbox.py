"""The triage inbox: filters, keyset pages, counts and bulk actions on a selection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask import session as cookie
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from correspondence.errors import ValidationFailed
from correspondence.models import OPEN_STATUSES, Batch, Channel, MessageStatus, Stance, Topic
from correspondence.services.inbox import SORTS, UNDO_WINDOW, InboxFilter, list_inbox, undo_close
from correspondence.services.messages import BULK_ACTIONS, bulk_apply
from correspondence.services.staff import list_staff
from web import db_session, settings, stream_from_database
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.inputs import BadParameter, every_id, optional_date, parse_id

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

FILTER_KEYS = ("status", "channel", "topic", "assignee", "from", "to", "q", "sort")


def parse_filter(args: MultiDict[str, str], me: int) -> InboxFilter:
    """Turn the query string into a filter; anything unusable is a BadParameter (a 400) naming each field."""
    errors: list[str] = []
    kwargs: dict[str, object] = {}
    status = args.get("status", "open")
    if status == "open":
        kwargs["statuses"] = OPEN_STATUSES
    elif status == "all":
        kwargs["statuses"] = tuple(MessageStatus)
    else:
        try:
            kwargs["statuses"] = (MessageStatus(status),)
        except ValueError:
            errors.append(f"status: {status!r} is not a status")
    if channel := args.get("channel"):
        try:
            kwargs["channel"] = Channel(channel)
        except ValueError:
            errors.append(f"channel: {channel!r} is not a channel")
    if topic := args.get("topic"):
        if topic == "none":
            kwargs["uncoded"] = True
        elif topic_id := parse_id(topic):
            kwargs["topic_id"] = topic_id
        else:
            errors.append(f"topic: {topic!r} is not a topic")
    if assignee := args.get("assignee"):
        if assignee == "none":
            kwargs["unassigned"] = True
        elif assignee == "me":
            kwargs["assignee_id"] = me
        elif assignee_id := parse_id(assignee):
            kwargs["assignee_id"] = assignee_id
        else:
            errors.append(f"assignee: {assignee!r} is not a staffer")
    for key, field in (("from", "received_from"), ("to", "received_to")):
        if raw := args.get(key):
            try:
                kwargs[field] = optional_date(raw, key)
            except BadParameter as exc:
                errors.append(str(exc))
    text = args.get("q", "")
    if len(text) > 200:
        errors.append("q: search text is limited to 200 characters")
    kwargs["text"] = text
    sort = args.get("sort", "newest")
    if sort not in SORTS:
        errors.append(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
    kwargs["sort"] = sort
    if errors:
        raise BadParameter("; ".join(errors))
    kwargs["zone"] = settings().zone
    return InboxFilter(**kwargs)  # type: ignore[arg-type]


# Query values for url_for(endpoint, **values), which takes them as Any: mypy would check a spread
# dict[str, str] against url_for's own keyword arguments too (_external: bool | None, ...).
UrlValues = dict[str, Any]


def list_args(args: MultiDict[str, str]) -> UrlValues:
    """The filter and sort of an inbox list (not its page), to carry from the list to a message and back."""
    return {k: v for k in FILTER_KEYS if (v := args.get(k, "")) and len(v) <= 200}


# A correspondent's or caseworker's own work, oldest first: where they land and the "My mail" link.
MY_MAIL: UrlValues = {"assignee": "me", "sort": "oldest"}


def remember_undo(message_ids: list[int]) -> None:
    """Offer "Undo" for these just-closed messages on the next page shown (like a flash, once)."""
    cookie["undo_close"] = {"ids": message_ids[:500], "at": datetime.now(UTC).isoformat()}


def take_undo() -> dict[str, object] | None:
    """The pending undo offer, if any and still within its window; it is shown once."""
    offer = cookie.pop("undo_close", None)
    if not offer:
        return None
    try:
        if datetime.now(UTC) - datetime.fromisoformat(offer["at"]) > UNDO_WINDOW:
            return None
        return {"ids": [int(i) for i in offer["ids"]]}
    except (KeyError, TypeError, ValueError):
        return None


def _current_args(**changes: str | None) -> dict[str, str]:
    args = {k: v for k in FILTER_KEYS if (v := request.args.get(k))}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return args


@bp.route("/")
@roles(*ALL_STAFF)
def index():
    try:
        flt = parse_filter(request.args, current_user.id)
        page = list_inbox(db_session(), flt, after=request.args.get("after") or None,
                          page_size=settings().page_size)
    except ValidationFailed as exc:
        abort(400, description=str(exc))
    session = db_session()
    topics = list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name)))
    staff = list_staff(session, active_only=True)
    batch_ids = {m.batch_id for m in page.messages if m.batch_id}
    batches = dict(session.execute(select(Batch.id, Batch.title).where(Batch.id.in_(batch_ids))).all()) \
        if batch_ids else {}
    context = list_args(request.args)
    status_links = [("open", "Open")] + [(s.value, s.value.replace("_", " ").capitalize())
                                         for s in MessageStatus] + [("all", "All")]
    return render_template(
        "inbox.html", page=page, flt=flt, topics=topics, staff=staff, channels=list(Channel),
        stances=list(Stance), statuses=list(MessageStatus), status_links=status_links,
        current_status=request.args.get("status", "open"), args=_current_args(after=None),
        link=lambda **kw: url_for("inbox.index") + "?" + urlencode(_current_args(after=None, **kw)),
        next_url=(url_for("inbox.index") + "?" + urlencode(_current_args(after=page.next_cursor)))
        if page.next_cursor else None,
        form=ActionForm(), bulk_actions=BULK_ACTIONS, topic_names={t.id: t.name for t in topics},
        batches=batches, open_url=lambda m: url_for("messages.view", message_id=m.id, **context),
        my_mail_url=url_for("inbox.index", **MY_MAIL), undo=take_undo(),
    )


@bp.route("/export.csv")
@roles(*ALL_STAFF)
def export_csv():
    """Every message the current filter matches (all pages) as CSV, formula-safe, streamed."""
    from flask import Response

    from correspondence.csvsafe import rows_to_csv
    from correspondence.services.inbox import export_rows

    flt = parse_filter(request.args, current_user.id)
    header = ("id", "received", "channel", "from_name", "from_address", "subject", "status", "topic", "stance",
              "assignee", "constituent_id", "batch_id")
    # An export is a copy of the mailbox as it stood a moment ago: its rows may come from the read replica.
    rows = stream_from_database(lambda s: export_rows(s, flt), replica=True)
    return Response(rows_to_csv(header, rows), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="messages.csv"'})


@bp.route("/bulk", methods=["POST"])
@roles(*ALL_STAFF)
def bulk():
    action = request.form.get("action", "")
    ids = every_id(request.form.getlist("ids"), refusal="The selection contains something that is not a message.")
    values = {"assign": request.form.get("assignee_id"), "topic": request.form.get("topic_id"),
              "stance": request.form.get("stance"), "close": None}
    session = db_session()
    try:
        changed, problems = bulk_apply(session, ids, action, values.get(action),
                                       actor_id=current_user.id)
    except ValidationFailed as exc:
        flash(str(exc), "error")
        return redirect(_back())  # nothing was committed: the request's teardown discards it
    session.commit()
    flash(f"{action.capitalize()}: {changed} message{'s' if changed != 1 else ''} updated.", "ok")
    for problem in problems[:10]:
        flash(problem, "error")
    if action == "close" and changed:
        remember_undo(ids)
    return redirect(_back())


@bp.route("/undo", methods=["POST"])
@roles(*ALL_STAFF)
def undo():
    """Take back the closes this staffer just made (the "Undo" offered after `e` or Close)."""
    ids = every_id(request.form.getlist("ids"), refusal="The undo does not name the messages it is for.")
    if not ids:
        raise BadParameter("The undo does not name the messages it is for.")
    session = db_session()
    restored, problems = undo_close(session, ids, actor_id=current_user.id)
    session.commit()
    if restored:
        flash(f"Undone: {restored} message{'s' if restored != 1 else ''} reopened as before.", "ok")
    elif not problems:
        flash("Nothing to undo: undo works for ten minutes after you close a message.", "error")
    for problem in problems[:10]:
        flash(problem, "error")
    return redirect(_back())


def _back() -> str:
    target = request.form.get("next", "")
    # Only back to our own pages: a path that starts with one of these cannot name another site.
    if target.startswith(("/inbox", "/messages/")):
        return target
    return url_for("inbox.index")
