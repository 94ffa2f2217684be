"""Facts about text that intake (cleaning what arrives) and drafting (building mail headers) share."""

from __future__ import annotations

# Exactly the characters str.splitlines() breaks on (tests/test_letter_security.py derives the same set from it):
# CR, LF, VT, FF, the separators U+001C-U+001E, NEL U+0085, U+2028 and U+2029.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def normalise_newlines(text: str) -> str:
    """"\r\n" and a lone "\r" become "\n": letters typed in a browser arrive with CRLF line endings."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
