"""Merge fields: form letters rendered in Jinja2's sandbox, with strict undefined fields.

A letter sees plain values only (no database objects): ``constituent``, ``message``, ``office``
and ``today``. ``validate`` is an ALLOW-LIST over the parsed template: a letter may hold literal
text, known merge fields (``{{ constituent.first_name }}``), string constants, a few safe filters
(``upper``, ``lower``, ``title``, ``capitalize``, ``trim``, ``default('text')``), ``or``/``and``/``not``,
``==``/``!=`` and ``{% if %}…{% elif %}…{% else %}…{% endif %}`` — nothing else: no arithmetic
(``{{ 9**(9**8) }}`` would freeze the process that compiles it), no calls, no loops, no ``[ ]``, no
macros, imports, ``set`` or blocks. The check runs when a version is saved and again before every
render (a template that reached the database some other way is refused, never run).

Rendering also has a budget (output size and wall-clock time, checked between output chunks) so a
letter that is too long when filled in fails with a clear message. A single node cannot be
interrupted in-process, which is why the allow-list, not the budget, is the real protection: with
only fields, text and bounded filters allowed, no single node can be expensive. The sandbox and
StrictUndefined stay underneath (a missing field is an error before a letter is sent, never a blank).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
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

# The filters a letter may use: each returns a string no longer than its input (or the default).
SAFE_FILTERS = ("upper", "lower", "title", "capitalize", "trim", "default", "d")

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
# Defence in depth behind the allow-list: no globals (range, lipsum, cycler, dict...) and only the safe
# filters exist in the letters' environment at all.
_ENV.globals.clear()
_ENV.filters = {name: _ENV.filters[name] for name in SAFE_FILTERS}


class LetterError(ValueError):
    """A letter that cannot be rendered: the text says what to fix."""


@dataclass(frozen=True)
class Budget:
    """How much one filled-in letter may cost: output size in bytes (UTF-8) and wall-clock seconds."""

    max_bytes: int = 256 * 1024
    seconds: float = 5.0


DEFAULT_BUDGET = Budget()


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


_ARITHMETIC = (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow, nodes.Neg,
               nodes.Pos)
_BLOCKS: dict[type[nodes.Node], str] = {
    nodes.For: "loops ({% for %}) are", nodes.Macro: "macros are", nodes.CallBlock: "{% call %} blocks are",
    nodes.Import: "imports are", nodes.FromImport: "imports are", nodes.Include: "includes are",
    nodes.Extends: "{% extends %} is", nodes.Block: "{% block %} is", nodes.Assign: "{% set %} is",
    nodes.AssignBlock: "{% set %} is", nodes.FilterBlock: "{% filter %} blocks are",
    nodes.With: "{% with %} is", nodes.Scope: "{% autoescape %} is",
    nodes.ScopedEvalContextModifier: "{% autoescape %} is", nodes.EvalContextModifier: "{% autoescape %} is"}
_FIELD_HINT = "merge fields are written like {{ constituent.first_name }}"
# How deeply ifs, filters and and/or/not may nest. A letter needs a handful; a hundred nested ifs or a few
# hundred chained filters pass a walk of the tree but break Python's compiler (too many indentation levels,
# nested parentheses, or recursion in Jinja's code generator), which was a 500 on preview and a crashed job.
MAX_NESTING = 32


class _AllowList:
    """Walks a parsed letter and notes, with its line, everything that is not on the allow-list."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def refuse(self, node: nodes.Node, text: str) -> None:
        lineno = getattr(node, "lineno", None) or next(
            (n.lineno for n in node.find_all(nodes.Node) if getattr(n, "lineno", None)), None)
        problem = f"line {lineno}: {text}" if lineno else text
        if problem not in self.problems:
            self.problems.append(problem)

    def statement(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData):
                    self.expression(child)
        elif isinstance(node, nodes.If):
            self.expression(node.test)
            for part in (*node.body, *node.elif_, *node.else_):
                self.statement(part)
        elif isinstance(node, tuple(_BLOCKS)):
            self.refuse(node, f"{_BLOCKS[type(node)]} not allowed in letters")
        else:
            self.refuse(node, f"{type(node).__name__.lower()} is not allowed in letters")

    def expression(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Const):
            if not isinstance(node.value, str):
                self.refuse(node, "numbers and other constants are not allowed in letters; write them as text")
        elif isinstance(node, nodes.Name):
            if node.name not in FIELDS:
                self.refuse(node, f"'{node.name}' is not a merge field (use one of: {', '.join(FIELDS)})")
            elif FIELDS[node.name]:
                self.refuse(node, f"{_FIELD_HINT}; '{node.name}' alone is not a field")
        elif isinstance(node, nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name in FIELDS:
                if node.attr not in FIELDS[node.node.name]:
                    self.refuse(node, f"'{node.node.name}.{node.attr}' is not a merge field")
            elif isinstance(node.node, nodes.Name):
                self.expression(node.node)  # names the unknown field
            else:
                self.refuse(node, f"'{node.attr}' is not a merge field")
        elif isinstance(node, nodes.Filter):
            self.filter(node)
        elif isinstance(node, (nodes.And, nodes.Or)):
            self.expression(node.left)
            self.expression(node.right)
        elif isinstance(node, nodes.Not):
            self.expression(node.node)
        elif isinstance(node, nodes.CondExpr):
            for child in (node.test, node.expr1, node.expr2):
                if child is not None:
                    self.expression(child)
        elif isinstance(node, nodes.Compare):
            if any(op.op not in ("eq", "ne") for op in node.ops):
                self.refuse(node, "only == and != comparisons are allowed in letters")
                return
            self.expression(node.expr)
            for op in node.ops:
                self.expression(op.expr)
        elif isinstance(node, _ARITHMETIC):
            self.refuse(node, "arithmetic is not allowed in letters (no + - * / % or **, and no repeating text "
                              "with *): write the text itself")
        elif isinstance(node, nodes.Concat):
            self.refuse(node, "joining with ~ is not allowed in letters; write the text next to the fields")
        elif isinstance(node, nodes.Call):
            self.refuse(node, "letters cannot call functions")
        elif isinstance(node, (nodes.Getitem, nodes.Slice)):
            self.refuse(node, f"{_FIELD_HINT}, without [ ]")
        elif isinstance(node, nodes.Test):
            self.refuse(node, f"'is {node.name}' tests are not allowed in letters; use {{% if field %}}")
        elif isinstance(node, (nodes.List, nodes.Tuple, nodes.Dict)):
            self.refuse(node, "lists, tuples and dictionaries are not allowed in letters")
        else:
            self.refuse(node, f"{type(node).__name__.lower()} is not allowed in letters")

    def filter(self, node: nodes.Filter) -> None:
        if node.name not in SAFE_FILTERS:
            self.refuse(node, f"the filter '{node.name}' is not allowed in letters (use one of: "
                              f"{', '.join(n for n in SAFE_FILTERS if n != 'd')})")
            return
        if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None:
            self.refuse(node, f"the filter '{node.name}' takes no named or spread arguments in letters")
            return
        if node.name in ("default", "d"):
            # default('text') or default('text', true): the replacement must be written text.
            ok = (1 <= len(node.args) <= 2 and isinstance(node.args[0], nodes.Const)
                  and isinstance(node.args[0].value, str)
                  and all(isinstance(a, nodes.Const) and isinstance(a.value, bool) for a in node.args[1:]))
            if not ok:
                self.refuse(node, "default takes a text in quotes, like default('Friend')")
                return
        elif node.args:
            self.refuse(node, f"the filter '{node.name}' takes no arguments in letters")
            return
        if node.node is not None:
            self.expression(node.node)


def _nesting(tree: nodes.Node) -> int:
    """The deepest chain of nodes in the parsed letter, counted without recursion."""
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return deepest


def validate(source: str) -> list[str]:
    """Problems a person must fix before the letter can be saved; an empty list means it is good."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: {exc.message}"]
    except RecursionError:
        return ["the letter is nested too deeply"]
    if _nesting(tree) > MAX_NESTING:
        return [f"the letter is nested too deeply (at most {MAX_NESTING} levels of ifs, filters and and/or/not)"]
    check = _AllowList()
    try:
        for node in tree.body:
            check.statement(node)
    except RecursionError:
        return ["the letter is nested too deeply"]
    return check.problems


@lru_cache(maxsize=256)
def _compiled(source: str):
    """Checked and compiled once per process: apply to all renders one letter thousands of times.

    The allow-list runs before compiling: Jinja's compiler folds constants, so compiling
    ``{{ 9**(9**8) }}`` alone would freeze the process.
    """
    problems = validate(source)
    if problems:
        raise LetterError("; ".join(problems))
    try:
        return _ENV.from_string(source)
    except (SyntaxError, RecursionError, MemoryError) as exc:  # what Python's compiler cannot take
        raise LetterError(f"the letter is nested too deeply to be compiled ({type(exc).__name__})") from exc


def render(source: str, values: dict[str, object], budget: Budget = DEFAULT_BUDGET) -> str:
    """The filled-in letter; LetterError when it is not allowed, has a missing field or is over budget."""
    template = _compiled(source)
    deadline = time.monotonic() + budget.seconds
    out: list[str] = []
    size = 0
    try:
        chunks: Iterator[str] = template.generate(values)
        for chunk in chunks:
            size += len(chunk.encode("utf-8"))
            if size > budget.max_bytes:
                raise LetterError(f"the letter is longer than {budget.max_bytes // 1024} KB when filled in; "
                                  "shorten it")
            if time.monotonic() >= deadline:
                raise LetterError(f"the letter took longer than {budget.seconds:g} seconds to fill in; "
                                  "simplify it")
            out.append(chunk)
    except (UndefinedError, SecurityError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        if isinstance(exc, LetterError):
            raise
        raise LetterError(str(exc)) from exc
    return "".join(out)


_PARAGRAPH = re.compile(r"\n\s*\n")


def to_html(text: str) -> str:
    """The plain-text letter as simple, escaped HTML paragraphs (the email's HTML part)."""
    paragraphs = [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
