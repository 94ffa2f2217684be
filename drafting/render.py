"""Merge fields: form letters rendered in Jinja2's sandbox, with strict undefined fields.

A letter sees plain values only (no database objects): ``constituent``, ``message``, ``office``
and ``today``. ``validate`` refuses, at save time, a syntax error, a field that does not exist and
any attribute starting with ``_``; the sandbox refuses the rest at render time
(``{{ ''.__class__ }}`` and friends), and StrictUndefined makes a missing field an error before a
letter is sent, never a blank in a sent letter.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from correspondence.models import Constituent, Message

FIELDS: dict[str, tuple[str, ...]] = {
    "constituent": ("prefix", "first_name", "last_name", "full_name", "salutation", "address_block", "email",
                    "city", "state", "zip"),
    "message": ("subject", "date", "topic"),
    "office": ("member_name", "signature", "letterhead", "name"),
    "today": (),
}
FIELD_LIST = [f"{name}.{attr}" if attr else name for name, attrs in FIELDS.items() for attr in (attrs or ("",))]

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class LetterError(ValueError):
    """A letter that cannot be rendered: the text says what to fix."""


@dataclass(frozen=True)
class Office:
    name: str
    member_name: str
    signature: str
    letterhead: str


def salutation(c: Constituent | None) -> str:
    """ "Dear Ms. Lopez," — falling back to the full name, the first name, then "Dear Friend,"."""
    if c is None:
        return "Dear Friend,"
    prefix, first, last = (c.prefix or "").strip(), (c.first_name or "").strip(), (c.last_name or "").strip()
    if prefix and last:
        prefix = prefix if prefix.endswith(".") or prefix.lower() in ("miss", "dr", "rev", "sister") else (
            f"{prefix}." if prefix.lower() in ("mr", "ms", "mrs", "mx") else prefix)
        return f"Dear {prefix} {last},"
    if first and last:
        return f"Dear {first} {last},"
    if first or last:
        return f"Dear {first or last},"
    return "Dear Friend,"


def address_block(c: Constituent | None) -> str:
    if c is None:
        return ""
    name = " ".join(x for x in (c.prefix, c.first_name, c.last_name, c.suffix) if x)
    zip_code = f"{c.zip5}-{c.zip4}" if c.zip5 and c.zip4 else (c.zip5 or "")
    city_line = " ".join(x for x in (f"{c.city}," if c.city else None, c.state, zip_code) if x)
    return "\n".join(x for x in (name, c.address1, c.address2, city_line) if x and x.strip())


def context(message: Message | None, constituent: Constituent | None, office: Office,
            today: date | None = None) -> dict[str, object]:
    c = constituent
    full_name = " ".join(x for x in ((c.first_name if c else None), (c.last_name if c else None)) if x)
    return {
        "constituent": {
            "prefix": (c.prefix if c else None) or "", "first_name": (c.first_name if c else None) or "",
            "last_name": (c.last_name if c else None) or "", "full_name": full_name or "Friend",
            "salutation": salutation(c), "address_block": address_block(c),
            "email": (message.from_address if message else None) or "", "city": (c.city if c else None) or "",
            "state": (c.state if c else None) or "", "zip": (c.zip5 if c else None) or "",
        },
        "message": {
            "subject": (message.subject if message else "") or "your letter",
            "date": message.received_at.strftime("%B %-d, %Y") if message else "",
            "topic": (message.topic.name if message and message.topic else "") or "",
        },
        "office": {"member_name": office.member_name, "signature": office.signature,
                   "letterhead": office.letterhead, "name": office.name},
        "today": (today or date.today()).strftime("%B %-d, %Y"),
    }


def validate(source: str) -> list[str]:
    """Problems a person must fix before the letter can be saved; an empty list means it is good."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: {exc.message}"]
    problems = []
    for node in tree.find_all(nodes.Getattr):
        if node.attr.startswith("_"):
            problems.append(f"'{node.attr}' is not a merge field")
        elif isinstance(node.node, nodes.Name) and node.node.name in FIELDS:
            if node.attr not in FIELDS[node.node.name]:
                problems.append(f"'{node.node.name}.{node.attr}' is not a merge field")
        else:
            problems.append("merge fields are written like {{ constituent.first_name }}")
    if any(True for _ in tree.find_all(nodes.Getitem)):
        problems.append("merge fields are written like {{ constituent.first_name }}, without [ ]")
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in FIELDS:
            problems.append(f"'{node.name}' is not a merge field (use one of: {', '.join(FIELDS)})")
    if any(True for _ in tree.find_all(nodes.Call)):
        problems.append("letters cannot call functions")
    return sorted(set(problems))


@lru_cache(maxsize=256)
def _compiled(source: str):  # type: ignore[no-untyped-def]
    """Checked and compiled once per process: apply to all renders one letter thousands of times."""
    problems = validate(source)
    if problems:
        raise LetterError("; ".join(problems))
    return _ENV.from_string(source)


def render(source: str, values: dict[str, object]) -> str:
    template = _compiled(source)
    try:
        return template.render(values)
    except (UndefinedError, SecurityError) as exc:
        raise LetterError(str(exc)) from exc


_PARAGRAPH = re.compile(r"\n\s*\n")


def to_html(text: str) -> str:
    """The plain-text letter as simple, escaped HTML paragraphs (the email's HTML part)."""
    paragraphs = [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
