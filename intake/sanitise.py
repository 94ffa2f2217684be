"""The one HTML sanitiser for outside HTML (nh3, remote images removed: they track the reader), and the
one helper that keeps subjects and names on one line for every intake adapter."""

from __future__ import annotations

import re

import nh3

from correspondence.text import LINE_BREAKS

_TAGS = set(nh3.ALLOWED_TAGS) - {"img"}


def clean_html(markup: str | None) -> str:
    return nh3.clean(markup or "", tags=_TAGS, link_rel="noopener noreferrer nofollow",
                     url_schemes={"http", "https", "mailto"})


# Every character str.splitlines() breaks on (CR, LF, VT, FF, FS, GS, RS, NEL, LINE and PARAGRAPH
# SEPARATOR), plus NUL: none belongs in a one-line value, and any of them in a subject or a name
# could split an email header built from it later.
_LINE_BREAKS = re.compile(f"[{re.escape(LINE_BREAKS)}\x00]+")
# The person fields a letter's address block and headers are built from.
PERSON_ONE_LINE = ("prefix", "first_name", "middle_name", "last_name", "suffix", "title", "organization",
                   "address1", "address2", "city", "state", "zip5", "zip4", "phone", "email")


def one_line(value: str | None) -> str | None:
    """A subject or name with every line break (and NUL) turned into one space; None stays None."""
    if value is None:
        return None
    return _LINE_BREAKS.sub(" ", value).strip()


def one_line_person(person: dict | None) -> dict | None:
    """The sender's details an adapter found, with every name and address field on one line."""
    if not isinstance(person, dict):
        return person
    return {k: one_line(v) if k in PERSON_ONE_LINE and isinstance(v, str) else v for k, v in person.items()}
