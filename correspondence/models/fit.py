"""Outside text cut to its column's length in one place, just before it is written.

A 150-character display name or CWC city fits SQLite (which ignores VARCHAR lengths) but makes
PostgreSQL refuse the row, and a message refused on every retry is a poison message. Rather than
trust every adapter and stage to remember each limit, the tables intake writes cut every String(n)
value to n characters, driven by the model's own column metadata, and drop NUL characters that
PostgreSQL refuses in any text. The full original stays in the stored raw input (messages.raw_sha256),
and a message whose own fields were cut says which in facts["cut_to_fit"].

Only these tables, on purpose: they hold what strangers send. Values staff type (staff accounts,
letters, settings) are checked by their forms and services, which say "too long" instead of
silently shortening what a person meant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Enum, String, Text, event
from sqlalchemy.orm import Mapper

from correspondence.models.audit import AuditEvent
from correspondence.models.base import Base
from correspondence.models.blob import Blob
from correspondence.models.constituent import Constituent, ConstituentEmail, ConstituentPhone, ConstituentTag
from correspondence.models.message import Message

FITTED = (Message, Constituent, ConstituentEmail, ConstituentPhone, ConstituentTag, Blob, AuditEvent)


def _limits(cls: type[Base]) -> dict[str, int | None]:
    """Attribute name -> maximum length (None: unlimited text, only NULs are dropped)."""
    limits: dict[str, int | None] = {}
    for prop in cls.__mapper__.column_attrs:
        column = prop.columns[0]
        kind = column.type
        if isinstance(kind, Enum):
            continue  # enums are checked by their own type
        if isinstance(kind, String) and kind.length:
            limits[prop.key] = kind.length
        elif isinstance(kind, Text | String):
            limits[prop.key] = None
    return limits


_LIMITS: dict[type, dict[str, int | None]] = {cls: _limits(cls) for cls in FITTED}


def fit_to_columns(target: object) -> list[str]:
    """Cut the object's string attributes to their columns; returns the names of those that were cut."""
    cut = []
    state = target.__dict__
    for key, limit in _LIMITS[type(target)].items():
        value = state.get(key)
        if not isinstance(value, str):
            continue
        fitted = value.replace("\x00", "") if "\x00" in value else value
        if limit is not None and len(fitted) > limit:
            fitted = fitted[:limit]
            cut.append(key)
        if fitted is not value:
            setattr(target, key, fitted)
    return cut


def _before_write(_mapper: Mapper[Any], _connection: Connection, target: object) -> None:
    cut = fit_to_columns(target)
    if cut and isinstance(target, Message):
        facts = dict(target.facts or {})
        facts["cut_to_fit"] = sorted(set(facts.get("cut_to_fit") or ()) | set(cut))
        target.facts = facts


for _cls in FITTED:
    event.listen(_cls, "before_insert", _before_write)
    if _cls is not AuditEvent:  # append-only: its own listener refuses every update
        event.listen(_cls, "before_update", _before_write)
