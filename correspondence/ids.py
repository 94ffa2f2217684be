"""Database ids from outside text: positive, ASCII digits, within the id columns' range."""

from __future__ import annotations

# Id columns are INTEGER: 64-bit on SQLite but 32-bit on PostgreSQL, where a larger number makes the
# query fail ("integer out of range", a 500). No row can have a larger id, so anything above is unknown.
MAX_ID = 2**31 - 1


def parse_id(raw: object) -> int | None:
    """A positive id, or None for anything else (huge, signed, '١', '²', '1.0', ' 1').

    `str.isdigit()` is not enough: it accepts numbers no column can hold (the database then fails
    with an overflow, a 500) and digits `int()` refuses ('²').
    """
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None
