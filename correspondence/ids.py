"""Database ids from outside text: positive, ASCII digits, within a 64-bit signed column."""

from __future__ import annotations

MAX_ID = 2**63 - 1


def parse_id(raw: object) -> int | None:
    """A positive id, or None for anything else (huge, signed, '١', '²', '1.0', ' 1').

    `str.isdigit()` is not enough: it accepts numbers no column can hold (the database then fails
    with an overflow, a 500) and digits `int()` refuses ('²').
    """
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None
