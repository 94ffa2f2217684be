"""Numbers and bodies from outside, bounded where they enter: ids in paths and queries, JSON depth;
and the typed parsers every view uses for ids, enums, dates and switches from a query or a form.

A database id fits its INTEGER column (correspondence/ids.py); a bigger number in a URL or a form
cannot name anything, and handed to the database it fails with an overflow (a 500) instead of
"not found". Deeply nested
JSON makes Python's parser recurse until it raises RecursionError, which no view expects. A NUL
character in a field cannot be stored in a PostgreSQL text column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from correspondence.errors import ValidationFailed
from correspondence.ids import MAX_ID, parse_id

__all__ = ["MAX_ID", "BadParameter", "BoundedIntConverter", "BoundedRequest", "every_id", "id_list",
           "id_or_none", "json_depth_ok", "optional_date", "optional_enum", "optional_id", "parse_id",
           "refuse_nul_characters", "required_enum", "required_id", "segment_filter"]

if TYPE_CHECKING:
    from constituents.segments import SegmentFilter

E = TypeVar("E", bound=Enum)

MAX_JSON_DEPTH = 32
# A JSON string (skipped whole, escapes included) or a bracket: the only things depth depends on.
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` in every route: ASCII digits only, at most MAX_ID (larger is a 404, like any unknown id)."""

    regex = r"[0-9]+"

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def json_depth_ok(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests objects/arrays no deeper than limit (strings are skipped; not a validator)."""
    depth = 0
    for token in _JSON_TOKENS.finditer(data):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return False
        elif char in (b"]", b"}"):
            depth -= 1
    return True


def _has_nul(value: object) -> bool:
    """Whether parsed JSON holds a NUL in any key or string (its depth is already bounded)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class BoundedRequest(Request):
    """Flask's request, refusing (400) JSON nested deeper than MAX_JSON_DEPTH before it is parsed,
    and JSON whose strings hold a NUL (\\u0000), which no text column can store."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        # Raised even when silent: silent covers text that is not JSON, and these are refusals with a reason.
        if (force or self.is_json) and not json_depth_ok(self.get_data(cache=True)):
            raise BadRequest(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
        data = super().get_json(force=force, silent=silent, cache=cache)
        if _has_nul(data):
            raise BadRequest("The JSON body contains a NUL character, which is never part of typed text.")
        return data


def refuse_nul_characters() -> None:
    """before_request hook: a NUL in a path part, a query or a form field is never typed text; PostgreSQL
    cannot store or compare it. A path part (a link's token, a name) answers 404: no such page."""
    from flask import abort, request

    if any(isinstance(v, str) and "\x00" in v for v in (request.view_args or {}).values()):
        abort(404, description="This link is not valid. Check that the whole link was copied.")
    fields = [request.args]
    if request.method == "POST" and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields.append(request.form)
    for multi in fields:
        for key, values in multi.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                abort(400, description="A field contains a NUL character, which is never part of typed text.")


class BadParameter(ValidationFailed):
    """A query or form value that is not of its type. Inside an action (web.outcome.run_action) it is
    flashed like any refusal; anywhere else the app answers 400 with this message (web/__init__.py)."""


def optional_id(raw: str | None, name: str) -> int | None:
    """An optional id from a form or query: None when empty, else a bounded id, else a message naming it."""
    if not raw:
        return None
    value = parse_id(raw)
    if value is None:
        raise BadParameter(f"{name}: {raw[:40]!r} is not a number")
    return value


def required_id(raw: str | None, name: str, *, missing: str) -> int:
    """An id that must be given: `missing` says what to choose when it is empty."""
    value = optional_id(raw, name)
    if value is None:
        raise BadParameter(missing)
    return value


def id_or_none(raw: str | None, name: str, *, none: str = "none") -> int | None:
    """An id, or None when the field is empty or the word `none` (a "nobody"/"no topic" choice)."""
    return None if raw == none else optional_id(raw, name)


def id_list(values: Iterable[str], *, limit: int = 5000) -> list[int]:
    """The usable ids of a multi-valued field (checkboxes, a comma list), in order, unknowns dropped."""
    return [n for raw in list(values)[:limit] if (n := parse_id(raw.strip()))]


def every_id(values: Iterable[str], *, refusal: str) -> list[int]:
    """Every value of a multi-valued field as an id, or BadParameter(refusal) if any is not one."""
    ids = [parse_id(raw) for raw in values]
    if not all(ids):
        raise BadParameter(refusal)
    return [n for n in ids if n]


def optional_enum(kind: type[E], raw: str | None, name: str) -> E | None:
    """A value of an enum (a stance, a status) or None when empty; anything else names the field."""
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError as exc:
        raise BadParameter(f"{name}: {raw[:40]!r} is not a {name}") from exc


def required_enum(kind: type[E], raw: str | None, name: str, *, missing: str) -> E:
    value = optional_enum(kind, raw, name)
    if value is None:
        raise BadParameter(missing)
    return value


def optional_date(raw: str | None, name: str) -> date | None:
    """A calendar date (YYYY-MM-DD) or None when empty."""
    if not raw or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise BadParameter(f"{name}: {raw[:40]!r} is not a date (use YYYY-MM-DD)") from exc


def segment_filter(args: MultiDict[str, str]) -> SegmentFilter:
    """The constituent filter of a query or form: its fields as plain values (the request never
    reaches the service), topics being a multi-valued field."""
    from constituents.segments import parse_filter

    return parse_filter(args.to_dict(), topic_ids=args.getlist("topic_id"))
