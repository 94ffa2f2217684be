"""A constituent's values, written once: ZIP, state, phone, email, names and the length of each field.

Every path that takes a person's details in (intake, the phone log, the public help form, the profile,
CSV import) reads them here, so one number written two ways is one number everywhere and two records
that should match do. Each parser does one thing: it returns the canonical value, returns None for an
empty input, and raises `ValidationFailed` (with words a person can act on) for anything else.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, NamedTuple

import phonenumbers
from sqlalchemy import ColumnElement

from correspondence.errors import ValidationFailed
from correspondence.models import Constituent, ConstituentEmail, ConstituentPhone


def _length(column: ColumnElement[Any]) -> int:
    length = getattr(column.type, "length", None)
    if not length:
        raise TypeError(f"{column} has no length")
    return int(length)


# The longest value each field may hold, read from the columns that store it (never copied numbers).
LIMITS: dict[str, int] = {
    **{name: _length(Constituent.__table__.c[name]) for name in (
        "prefix", "first_name", "middle_name", "last_name", "suffix", "address1", "address2", "city", "state",
        "zip5", "zip4")},
    "email": _length(ConstituentEmail.__table__.c.address),
    "phone": _length(ConstituentPhone.__table__.c.number),
}


def too_long(values: Mapping[str, str | None]) -> dict[str, str]:
    """field -> reason, for each value longer than its column."""
    return {key: f"is longer than {LIMITS[key]} characters" for key, value in values.items()
            if key in LIMITS and value and len(value) > LIMITS[key]}


# --- ZIP ---------------------------------------------------------------------------------------------

class Zip(NamedTuple):
    zip5: str
    zip4: str | None = None

    def __str__(self) -> str:
        return f"{self.zip5}-{self.zip4}" if self.zip4 else self.zip5


_ZIP = re.compile(r"([0-9]{5})(?:[\s-]?([0-9]{4}))?")
_SPREADSHEET_ZIP = re.compile(r"([0-9]{4})(?:[\s-]([0-9]{4}))?")


def parse_zip(text: str | None, *, spreadsheet: bool = False) -> Zip | None:
    """"43215", "43215-1234", "432151234" -> Zip; None when empty; ValidationFailed otherwise.

    With `spreadsheet=True` (a CSV export) a four-digit ZIP is one whose leading zero the spreadsheet
    dropped (New England: 02134 became 2134), so the zero is put back. A person typing "2134" into a
    form made a typo instead, and is asked again.
    """
    text = (text or "").strip()
    if not text:
        return None
    found = _ZIP.fullmatch(text)
    if found is None and spreadsheet and (short := _SPREADSHEET_ZIP.fullmatch(text)):
        return Zip("0" + short.group(1), short.group(2))
    if found is None:
        raise ValidationFailed(f"ZIP must be 5 digits or ZIP+4 (43215 or 43215-1234), not {text[:20]!r}")
    return Zip(found.group(1), found.group(2))


def parse_zip4(text: str | None) -> str | None:
    """The four digits after the dash; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[0-9]{4}", text):
        raise ValidationFailed(f"ZIP+4 must be 4 digits, not {text[:20]!r}")
    return text


# --- state -------------------------------------------------------------------------------------------

STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas",
    "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia",
    "WI": "Wisconsin", "WY": "Wyoming",
    # Territories and the military "states" the Postal Service uses.
    "AS": "American Samoa", "GU": "Guam", "MP": "Northern Mariana Islands", "PR": "Puerto Rico",
    "VI": "U.S. Virgin Islands", "AA": "Armed Forces Americas", "AE": "Armed Forces Europe",
    "AP": "Armed Forces Pacific",
}


def _state_key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z]+", " ", text.casefold().replace("u.s.", "us")).split())


_BY_NAME = {_state_key(name): code for code, name in STATES.items()} | {
    "virgin islands": "VI", "us virgin islands": "VI", "washington dc": "DC", "washington d c": "DC"}


def parse_state(text: str | None) -> str | None:
    """A Postal Service state code from the code in any case ("oh") or the name ("Ohio"); None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    code = text.rstrip(".").upper()
    if code in STATES:
        return code
    found = _BY_NAME.get(_state_key(text))
    if found is None:
        raise ValidationFailed(f"state {text[:30]!r} is not a two-letter abbreviation or a state's name")
    return found


# --- phone -------------------------------------------------------------------------------------------

class Phone(NamedTuple):
    number: str  # E.164, e.g. +16145550100
    extension: str | None = None


def parse_phone(text: str | None) -> Phone | None:
    """A phone number as E.164 and its extension apart; US numbers may be written any usual way."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text[:100], "US")
    except phonenumbers.NumberParseException:
        raise ValidationFailed(f"{text[:30]!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationFailed(f"{text[:30]!r} is not a phone number")
    return Phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), number.extension or None)


def normalise_phone(text: str) -> str:
    """"614-555-0100 ext. 12", "(614) 555 0100", "+1 614 555 0100" -> "+16145550100"."""
    phone = parse_phone(text)
    if phone is None:
        raise ValidationFailed("enter a phone number")
    return phone.number


def phone_or_none(text: str | None) -> str | None:
    """The E.164 number of outside text that may hold anything (a scan, a CWC field): None if it is not one."""
    try:
        phone = parse_phone(text)
    except ValidationFailed:
        return None
    return phone.number if phone else None


# --- email -------------------------------------------------------------------------------------------

EMAIL_RE = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[A-Za-z]{2,}")


MAX_EMAIL = 254  # RFC 5321: no real mailbox is longer, though the column holds more


def email_key(text: str | None) -> str | None:
    """An address as stored and looked up (trimmed, lower-cased), without judging it; None if empty or too long.

    Outside mail is matched by it as it comes; forms and imports check the address too (normalise_email).
    A longer "address" is no real mailbox: cut to its column, two of them could collide on the unique
    index and fail every retry, so it is not used to know anyone by (it stays on the message).
    """
    address = (text or "").strip().lower()
    return address if address and len(address) <= MAX_EMAIL else None


def normalise_email(text: str | None) -> str | None:
    """An email address as stored and matched: trimmed and lower-cased; None when empty.

    The whole address is lower-cased, not only the domain: every address on file is stored that way,
    so a match is one look-up in the unique index (no mail provider the office hears from treats
    Ana@ and ana@ as two people).
    """
    if not (text or "").strip():
        return None
    address = email_key(text)
    if address is None or not EMAIL_RE.fullmatch(address):
        raise ValidationFailed(f"{(text or '').strip()[:60]!r} is not an email address")
    return address


def email_or_none(text: str | None) -> str | None:
    try:
        return normalise_email(text)
    except ValidationFailed:
        return None


def mailbox_key(address: str) -> str:
    """The mailbox an address reaches: case folded, "+tag" dropped, and Gmail's dots ignored.

    For finding duplicates only: two such addresses are one person's, but each stays stored as written.
    """
    local, _, domain = address.strip().lower().partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


# --- names -------------------------------------------------------------------------------------------

def split_name(display: str | None) -> tuple[str | None, str | None]:
    """(first, last) of one name as written: "Lopez, Ana" and "Ana M. Lopez" -> ("Ana"/"Ana M.", "Lopez").

    One word is taken as a first name ("Bob" in a From header), never as a last name, so a lone word
    is never matched against the people with that surname.
    """
    display = (display or "").strip().strip('"').strip()
    if not display:
        return None, None
    if "," in display:
        last, _, first = display.partition(",")
        return first.strip() or None, last.strip() or None
    parts = display.split()
    if len(parts) == 1:
        return parts[0], None
    return " ".join(parts[:-1]), parts[-1]


def fold_name(text: str | None) -> str:
    """A name for comparing: case and accents do not count, spacing is one space."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text or "") if not unicodedata.combining(c))
    return " ".join(text.casefold().split())


_STREET_WORDS = {"street": "st", "avenue": "ave", "road": "rd", "drive": "dr", "lane": "ln", "boulevard": "blvd",
                 "court": "ct", "place": "pl", "north": "n", "south": "s", "east": "e", "west": "w",
                 "apartment": "apt", "suite": "ste"}


def street_key(value: str | None) -> str:
    """A street for comparing: "12 Oak Street," and "12 oak st." are both "12 oak st"."""
    words = re.sub(r"[^a-z0-9 ]", " ", fold_name(value)).split()
    return " ".join(_STREET_WORDS.get(w, w) for w in words)
