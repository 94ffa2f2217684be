"""Text normalisation for comparing letters: the words a campaign shares, without the noise around them.

Greetings, sign-offs and everything after them (the sender's name, address and phone), web-form
and advocacy-platform boilerplate, URLs, punctuation, case and whitespace are removed. The original
text is never changed; this is only what similarity is computed on.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

_GREETING = re.compile(
    r"^\s*(dear|hello|hi|hey|greetings|good (morning|afternoon|evening)|to whom it may concern|"
    r"(the )?hon(orable|\.)?|representative|rep\.?|congress(wo)?man|congressperson|senator|sen\.?|"
    r"delegate|council ?member|assembly ?(wo)?man|mr\.?|mrs\.?|ms\.?|dr\.?)\b[^\n]{0,60}[,:!]?\s*$",
    re.IGNORECASE)
_SIGNOFF = re.compile(
    r"^\s*(sincerely|sincerely yours|yours (truly|sincerely)|respectfully( yours| submitted)?|regards|"
    r"best( regards| wishes)?|kind regards|warm regards|thank you( (so|very) much)?( for your (time|attention|"
    r"consideration|service))?|thanks( again)?|many thanks|cordially|with gratitude|in gratitude|"
    r"god bless|peace|signed|a concerned (citizen|constituent|voter))\s*[,.!-]*\s*$",
    re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"^\s*(--+|__+|sent (via|from|by) .*|this (message|email|letter) was sent .*|"
    r"(phone|tel|email|e-mail|address)\s*:.*|\[?(name|address|city|state|zip)\]?\s*)$",
    re.IGNORECASE)
# ... and any line with one of these in it (plain substring searches of the lower-cased line, cheaper
# than a ".*(...).*" alternative inside the pattern above).
_BOILERPLATE_WORDS = ("unsubscribe", "action center", "action network", "powered by", "privacy policy", "opt-out",
                      "opt out")


def _boilerplate(line: str) -> bool:
    if _BOILERPLATE.match(line):
        return True
    low = line.lower()
    return any(word in low for word in _BOILERPLATE_WORDS)
_URL = re.compile(r"https?://\S+|www\.\S+|[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
_PHONE = re.compile(r"\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}\b")
_DIGIT = re.compile(r"\d")
_NON_WORD = re.compile(r"[^\w\s]+")
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


# Unicode's blocks of combining marks (accents once NFKD has split them from their letters).
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed if decomposed.isascii() else _COMBINING.sub("", decomposed)


# Letters are compared on their first 20,000 characters: no campaign template is longer, and an
# enormous message must not make clustering slow.
MAX_CHARS = 20_000


def _lines(text: str) -> list[str]:
    """The letter's non-empty lines, stripped (of its first MAX_CHARS characters)."""
    lines = [line.strip() for line in (text or "")[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return [line for line in lines if line]


def core_lines(text: str) -> list[str]:
    """The lines of the letter between its greeting and its sign-off, boilerplate removed."""
    lines = _lines(text)
    # A greeting is one of the first two lines; a sign-off ends the letter, and what follows it is
    # the sender's name, address and phone.
    for i in range(min(2, len(lines))):
        if _GREETING.match(lines[i]):
            lines = lines[i + 1:]
            break
    for i, line in enumerate(lines):
        if i > 0 and _SIGNOFF.match(line):
            lines = lines[:i]
            break
    return [line for line in lines if not _boilerplate(line)]


def normalise(text: str) -> str:
    """Lower-case words only, one space apart: the text clustering compares."""
    return normalise_line(" ".join(core_lines(text)))


def normalise_many(texts: Iterable[str]) -> Iterator[str]:
    """``normalise`` of each text, for many letters at once (clustering): campaign letters repeat their
    lines, so each distinct line is tested for a sign-off or boilerplate, and normalised, once."""
    signoff: dict[str, bool] = {}
    words: dict[str, str | None] = {}  # line -> its normalised words, None for boilerplate
    for text in texts:
        lines = _lines(text)
        for i in range(min(2, len(lines))):
            if _GREETING.match(lines[i]):
                lines = lines[i + 1:]
                break
        for i in range(1, len(lines)):
            line = lines[i]
            ends = signoff.get(line)
            if ends is None:
                ends = signoff[line] = _SIGNOFF.match(line) is not None
            if ends:
                lines = lines[:i]
                break
        kept = []
        for line in lines:
            if line not in words:
                words[line] = None if _boilerplate(line) else normalise_line(line)
            if words[line] is not None:
                kept.append(line)
        # A phone number may run from one line into the next (only where both lines have digits): the
        # lines are then normalised together, as ``normalise`` does.
        if len(kept) > 1 and _DIGIT.search(" ".join(kept)):
            digits = [_DIGIT.search(line) is not None for line in kept]
            if any(a and b for a, b in zip(digits, digits[1:], strict=False)):
                yield normalise_line(" ".join(kept))
                continue
        yield " ".join(filter(None, map(words.__getitem__, kept)))


# Every ASCII character that is not a word character (``\w``), to a space.
_ASCII_NON_WORD = {c: " " for c in range(128) if not _WORD.fullmatch(chr(c))}


def normalise_line(body: str) -> str:
    """``normalise`` for a piece already inside the letter's body (a sentence): no greeting or
    sign-off to look for."""
    if "@" in body or "http" in body or "www." in body:
        body = _URL.sub(" ", body)
    if _DIGIT.search(body):
        body = _PHONE.sub(" ", body)
    body = _strip_accents(body.lower())
    # The runs of word characters, one space apart (what removing punctuation and squeezing spaces leaves);
    # in ASCII text by one translation, faster than finding the runs.
    if body.isascii():
        return " ".join(body.translate(_ASCII_NON_WORD).split())
    return " ".join(_WORD.findall(body))


def sentences(text: str) -> list[str]:
    """The letter's sentences in their original form (for templates and personal additions)."""
    return [s.strip() for s in _SENTENCE.split(" ".join(core_lines(text)) if text else "") if s.strip()]
