"""Social media: comment exports (CSV or JSON) with author, handle, text, URL and time.

A comment carries no email, so it stays unlinked unless staff match it to a constituent.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from correspondence.models import Channel
from intake.files import Unreadable, iter_files
from intake.receive import Incoming

FIELD_ALIASES = {"author": ("author", "name", "author_name", "from", "user_name"),
                 "handle": ("handle", "username", "screen_name", "user", "author_handle"),
                 "text": ("text", "message", "comment", "body", "content"),
                 "url": ("url", "link", "permalink", "comment_url"),
                 "time": ("time", "timestamp", "created_at", "date", "created_time"),
                 "platform": ("platform", "network", "source")}


def _rows_of(path: Path) -> Iterator[dict]:
    data = path.read_bytes()
    text = data.decode("utf-8-sig", errors="replace")
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson") or text.lstrip()[:1] in ("[", "{"):
        stripped = text.strip()
        if stripped.startswith("["):
            rows = json.loads(stripped)
            if not isinstance(rows, list):
                raise ValueError("a JSON export must be a list of comments")
            yield from rows
        else:
            for line in stripped.splitlines():
                if line.strip():
                    yield json.loads(line)
    else:
        yield from csv.DictReader(io.StringIO(text))


def iter_social(paths: Iterable[str | Path]) -> Iterator[tuple[str, bytes | Unreadable]]:
    """One item per comment, as canonical JSON; a file that cannot be parsed is reported unreadable."""
    for file, missing in iter_files(paths):
        if missing is not None:
            yield str(file), missing
            continue
        try:
            for number, row in enumerate(_rows_of(file), 1):
                yield f"{file}#{number}", json.dumps(row, sort_keys=True, default=str).encode()
        except (OSError, ValueError, csv.Error) as exc:
            yield str(file), Unreadable(f"not a CSV or JSON comment export ({type(exc).__name__}: {exc})"[:300])


def _pick(row: dict, field: str) -> str:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for name in FIELD_ALIASES[field]:
        value = lowered.get(name)
        if value not in (None, ""):
            return str(value).strip()
    return ""


def _when(value: str) -> datetime | None:
    if not value:
        return None
    if value.isdigit():
        try:
            return datetime.fromtimestamp(int(value[:10]), UTC)
        except (OverflowError, ValueError):
            return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def incoming_social(raw: bytes, source: str) -> Incoming:
    key = "social:" + hashlib.sha256(raw).hexdigest()
    try:
        row = json.loads(raw)
        if not isinstance(row, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        return Incoming(channel=Channel.SOCIAL, key=key, source=source, raw=raw, content_type="application/json",
                        subject="(unreadable comment)", quarantine_reason=f"social: the row is not readable ({exc})")
    text, url, handle = _pick(row, "text"), _pick(row, "url"), _pick(row, "handle")
    if url:
        key = f"social:{url[:240]}"
    platform = _pick(row, "platform") or None
    author = _pick(row, "author") or handle or None
    return Incoming(channel=Channel.SOCIAL, key=key, source=source, raw=raw, content_type="application/json",
                    received_at=_when(_pick(row, "time")), subject=f"Comment by {author or 'unknown'}"
                    + (f" on {platform}" if platform else ""), body_text=text, from_name=author,
                    external_id=url or None, facts={"handle": handle, "url": url, "platform": platform},
                    quarantine_reason=None if text else "social: the comment has no text")
