"""Mail header values: always one line, however the text reached us.

Python's ``email`` package refuses a header value holding CR or LF *and* every other character
``str.splitlines`` breaks on (VT, FF, the separators U+001C-U+001E, NEL U+0085, U+2028, U+2029), and
a header that did go out with one would let the text add headers of its own. Every header Mailroom
builds (subject, the names and addresses in From, To and Reply-To) goes through ``header_text``.
"""

from __future__ import annotations

import re

from correspondence.text import LINE_BREAKS

_BREAKS = re.compile(f"[{re.escape(LINE_BREAKS)}]+")
# Other control characters (NUL, backspace, DEL...) never belong in a header either.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f]")


def header_text(value: str | None) -> str:
    """The value on one line: each run of line breaks becomes one space, control characters go."""
    if not value:
        return ""
    return _CONTROLS.sub("", _BREAKS.sub(" ", value)).strip()
