"""Email: the idempotency key and headers at receipt, and the full decode in the pipeline.

Everything uses the stdlib `email` package with `policy.default`; any header or part that cannot
be decoded falls back to something readable and is noted, never raised past this module.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from correspondence.models import Channel
from intake.receive import Incoming

FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")


@dataclass
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass
class ParsedEmail:
    subject: str = ""
    from_name: str | None = None
    from_address: str | None = None
    date: datetime | None = None
    message_id: str | None = None
    text: str = ""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _header(msg: Message, name: str, problems: list[str]) -> str:
    """A header decoded from RFC 2047 words; undecodable parts are kept as they came."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value)))).replace("\r", "").replace("\n", " ").strip()
    except Exception as exc:  # malformed encoded words, unknown charsets
        problems.append(f"header {name}: {type(exc).__name__}")
        return str(value).strip()


def _from(msg: Message, problems: list[str]) -> tuple[str | None, str | None]:
    value = _header(msg, "From", problems) or _header(msg, "Sender", problems)
    if not value:
        return None, None
    try:
        pairs = getaddresses([value])
        name, address = pairs[0] if pairs else parseaddr(value)
    except Exception:
        name, address = parseaddr(value)
    return (name.strip() or None), (address.strip().lower() if address and "@" in address else None)


def _date(msg: Message, problems: list[str]) -> datetime | None:
    value = _header(msg, "Date", problems)
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        problems.append("unreadable Date header")
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if not (1990 <= when.year <= 2100):
        problems.append("implausible Date header")
        return None
    return when.astimezone(UTC)


def _text_of(part: Message, problems: list[str]) -> str:
    """Decode a text part: its transfer encoding, then its declared charset, then common fallbacks."""
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:  # broken transfer encoding
        problems.append(f"{part.get_content_type()} part: {type(exc).__name__}")
        payload = None
    if not isinstance(payload, bytes):  # None: get_payload(decode=True) gave nothing to decode
        raw_payload = part.get_payload()
        payload = raw_payload.encode("utf-8", "surrogateescape") if isinstance(raw_payload, str) else b""
    declared = part.get_content_charset()
    if declared:
        try:
            return payload.decode(declared)
        except (LookupError, UnicodeDecodeError) as exc:
            problems.append(f"charset {declared}: {type(exc).__name__}")
    for charset in FALLBACK_CHARSETS:
        try:
            return payload.decode(charset)
        except UnicodeDecodeError:
            continue
    return payload.decode("utf-8", "replace")


def _head_fields(msg: Message) -> ParsedEmail:
    problems: list[str] = []
    name, address = _from(msg, problems)
    mid = _header(msg, "Message-ID", problems) or None
    return ParsedEmail(subject=_header(msg, "Subject", problems), from_name=name, from_address=address,
                       date=_date(msg, problems), message_id=mid, problems=problems)


def parse_headers(raw: bytes) -> ParsedEmail:
    """Only what receipt needs: sender, subject, date and Message-ID (the fast compat32 header parser)."""
    return _head_fields(BytesHeaderParser(policy=policy.compat32).parsebytes(raw))


def parse_email(raw: bytes) -> ParsedEmail:
    """The full decode: headers, the first text and HTML bodies, and the attachment list.

    The stdlib parser runs with the compat32 policy here: it builds the same MIME tree as
    policy.default but does not re-parse every header on each access, which makes it about ten
    times faster on real mail; text parts are decoded by _text_of with explicit charset fallbacks.
    """
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    parsed = _head_fields(msg)
    for defect in getattr(msg, "defects", [])[:5]:
        parsed.problems.append(type(defect).__name__)
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        try:
            disposition = part.get_content_disposition()
            filename = part.get_filename()
        except Exception:
            disposition, filename = "attachment", None
        if filename is not None and not isinstance(filename, str):
            filename = str(filename)
        if disposition == "attachment" or filename or not ctype.startswith("text/"):
            try:
                size = len(part.get_payload(decode=True) or b"")
            except Exception:
                size = 0
            parsed.attachments.append(Attachment(_decoded(filename) or "(unnamed)", ctype, size))
            continue
        if ctype == "text/html" and parsed.html is None:
            parsed.html = _text_of(part, parsed.problems)
        elif ctype != "text/html" and not parsed.text:
            parsed.text = _text_of(part, parsed.problems)
    return parsed


def _decoded(value: str | None) -> str | None:
    if not value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def email_key(raw: bytes, message_id: str | None) -> str:
    """Message-ID plus a hash of the body: a re-delivery with new transport headers is the same message,
    while two different messages that share a Message-ID are both kept."""
    cut = raw.find(b"\r\n\r\n")
    cut = raw.find(b"\n\n") if cut < 0 else cut
    body = raw[cut:] if cut >= 0 else raw
    if message_id:
        return f"email:{message_id[:180]}:{hashlib.sha256(body).hexdigest()[:24]}"
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


# A header line: a field name (printable ASCII but the colon, RFC 5322 section 3.6.8) and a colon.
_FIELD_LINE = re.compile(rb"^[!-9;-~]{1,100}[ \t]*:")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
HEAD_SCAN = 64 * 1024  # how far into a file the header block is looked for


def not_an_email(raw: bytes) -> str | None:
    """Why these bytes are not an email (binary data, or text with no header lines), or None if they may be.

    Deliberately lenient about everything real mail gets wrong (8-bit headers, missing blank line,
    bare LF, an mbox "From " line): what is refused is input with no header block at all — a file of
    random bytes, an image, a document or plain text saved with an .eml name — which would otherwise
    become a "new message" of mojibake. Such input is kept and quarantined with this reason.
    """
    if not raw.strip():
        return "the file is empty"
    head = raw[:HEAD_SCAN]
    if head.startswith(b"From ") and b"\n" in head:  # an mbox separator line before the headers
        head = head.split(b"\n", 1)[1]
    head = re.split(rb"\r?\n\r?\n", head.lstrip(b"\r\n"), maxsplit=1)[0]
    lines = head.splitlines() or [b""]
    if not _FIELD_LINE.match(lines[0]):
        return "not an email: it does not start with header lines (From:, Subject:, ...)"
    for number, line in enumerate(lines[:500], 1):
        if not (_FIELD_LINE.match(line) or line[:1] in (b" ", b"\t")):
            return f"not an email: line {number} of the header block is neither a header nor its continuation"
    if len(_CONTROL_BYTES.findall(head)) > 8:
        return "not an email: the header block holds control bytes (binary data, not text)"
    return None


def incoming_email(raw: bytes, source: str) -> Incoming:
    """What receipt stores for one raw email; a message whose headers cannot be read is still stored,
    and input that is not an email at all is stored quarantined with the reason."""
    problem = not_an_email(raw)
    if problem is not None:
        return Incoming(channel=Channel.EMAIL, key=email_key(raw, None), source=source, raw=raw,
                        content_type="application/octet-stream", subject="(not an email)",
                        quarantine_reason=f"decode: {problem}")
    try:
        head = parse_headers(raw)
    except Exception as exc:
        return Incoming(channel=Channel.EMAIL, key=email_key(raw, None), source=source, raw=raw,
                        content_type="message/rfc822", subject="(unreadable message)",
                        quarantine_reason=f"decode: the headers could not be read ({type(exc).__name__})")
    return Incoming(channel=Channel.EMAIL, key=email_key(raw, head.message_id), source=source, raw=raw,
                    content_type="message/rfc822", received_at=head.date, subject=head.subject,
                    from_name=head.from_name, from_address=head.from_address, external_id=head.message_id)


# --- the sender's postal address from their signature block ------------------------------------------
US_STATES = frozenset({
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
    "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH",
    "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "AS", "GU", "MP",
    "PR", "VI", "AA", "AE", "AP"})
_CITY_STATE_ZIP = re.compile(
    r"^(?P<city>[A-Za-z][A-Za-z .'-]{0,40}?),?\s+(?P<state>[A-Z]{2})\.?,?\s+(?P<zip>\d{5})(?:-(?P<zip4>\d{4}))?$")
_STREET_LINE = re.compile(r"^(?:\d{1,6}[A-Za-z]?\s+\S.{1,70}|P\.?\s?O\.?\s+Box\s+\d{1,8})$", re.IGNORECASE)
_ONE_LINE = re.compile(r"^(?P<street>\d{1,6}[A-Za-z]?\s+[^,]{2,70}),\s*(?P<rest>.+)$")
_UNIT_LINE = re.compile(r"^(?:apt|apartment|unit|suite|ste|#)\.?\s*[\w-]{1,10}$", re.IGNORECASE)
_REPLY_START = re.compile(r"^(On .{4,200} wrote:|-{2,} ?Original Message ?-{2,}|From: .+)$", re.IGNORECASE)
SIGNATURE_LINES = 8  # only the last lines of a letter are read as its signature block


def address_from_signature(text: str) -> dict[str, str | None] | None:
    """The sender's US postal address from the end of their letter, or None.

    Conservative on purpose: only the last SIGNATURE_LINES non-empty lines before any quoted reply
    are read; the address must be a street line (a house number and a street type such as "Ave",
    or a PO box) followed by "City, ST 12345" with a real state, or both on one line, and usaddress
    must read the whole as a street address or a PO box. A sentence that mentions a street does not count.
    """
    import usaddress

    kept: list[str] = []
    for line in (text or "").replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if _REPLY_START.match(stripped):
            break
        if stripped and not stripped.startswith(">"):
            kept.append(stripped.strip("|").strip())
    lines = [line for line in kept if line][-SIGNATURE_LINES:]
    for i in range(len(lines) - 1, -1, -1):
        street, unit, place = None, None, _CITY_STATE_ZIP.match(lines[i])
        if place is None:
            one = _ONE_LINE.match(lines[i])
            place = _CITY_STATE_ZIP.match(one["rest"]) if one else None
            street = one["street"].strip() if one and place else None
        elif i >= 1:
            street = lines[i - 1]
            if _UNIT_LINE.match(street) and i >= 2:
                street, unit = lines[i - 2], street
        if place is None or street is None or place["state"] not in US_STATES or not _STREET_LINE.match(street):
            continue
        try:
            tags, kind = usaddress.tag(f"{street}{' ' + unit if unit else ''}, {place['city']}, {place['state']} "
                                       f"{place['zip']}")
        except usaddress.RepeatedLabelError:
            continue
        if kind == "Street Address" and not (tags.get("AddressNumber") and tags.get("StreetName")
                                             and tags.get("StreetNamePostType")):
            continue  # "2 children" reads as a number and a street; a real street line names its type
        if kind not in ("Street Address", "PO Box"):
            continue
        return {"address1": street[:200], "address2": unit, "city": place["city"].strip()[:100],
                "state": place["state"], "zip5": place["zip"], "zip4": place["zip4"]}
    return None
