"""CWC 2.0 ("Communicating with Congress") XML deliveries from advocacy vendors.

Parsed with defusedxml. Real senders disagree on details, so the reader is lenient where it is
safe: `Bill` with or without a `Bills` wrapper, the constituent's organisation as `Organization`
or `ConstituentOrganization`, bill types as `hr` or `H.R.`, ZIP as 5, 5-4 or 9 digits.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from constituents.values import parse_zip
from correspondence.errors import ValidationFailed
from correspondence.models import Channel, Stance
from intake.receive import Incoming

STANCES = {"pro": Stance.SUPPORT, "support": Stance.SUPPORT, "yes": Stance.SUPPORT,
           "con": Stance.OPPOSE, "oppose": Stance.OPPOSE, "no": Stance.OPPOSE,
           "undecided": Stance.NEUTRAL, "neutral": Stance.NEUTRAL}


class CwcError(ValueError):
    """The delivery cannot be read as CWC; the text is the reason."""


def _strip_namespaces(root: Element) -> Element:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def _text(parent: Element | None, *names: str) -> str | None:
    if parent is None:
        return None
    for name in names:
        el = parent.find(name)
        if el is not None and el.text and el.text.strip():
            return el.text.strip()
    return None


def normalise_bill_type(value: str | None) -> str | None:
    """'H.R.', 'hr', 'H R', 'S.J.Res.' -> 'hr', 'hr', 'hr', 'sjres'."""
    if not value:
        return None
    return re.sub(r"[^a-z]", "", value.lower()) or None


def _zip(value: str | None) -> tuple[str | None, str | None]:
    try:
        found = parse_zip(re.sub(r"\D", "", value or ""))  # CWC writes 5, 5-4 or 9 digits
    except ValidationFailed:
        return None, None
    return (found.zip5, found.zip4) if found else (None, None)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    for fmt in ("%Y%m%d", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            when = datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return None


def parse_cwc(raw: bytes) -> dict:
    """The delivery as plain data, or CwcError with a reason a person can act on."""
    try:
        root = SafeET.fromstring(raw)
    except DefusedXmlException as exc:
        raise CwcError(f"the XML uses forbidden constructs ({type(exc).__name__})") from exc
    except SafeET.ParseError as exc:
        raise CwcError(f"not well-formed XML ({exc})") from exc
    root = _strip_namespaces(root)
    if root.tag != "CWC":
        raise CwcError(f"the root element is <{root.tag}>, not <CWC>")
    delivery, recipient = root.find("Delivery"), root.find("Recipient")
    person, message = root.find("Constituent"), root.find("Message")
    delivery_id = _text(delivery, "DeliveryId")
    if not delivery_id:
        raise CwcError("the delivery has no DeliveryId")
    zip5, zip4 = _zip(_text(person, "Zip"))
    address3 = _text(person, "Address3")
    constituent = {
        "prefix": _text(person, "Prefix"), "first_name": _text(person, "FirstName"),
        "middle_name": _text(person, "MiddleName"), "last_name": _text(person, "LastName"),
        "suffix": _text(person, "Suffix"), "title": _text(person, "Title"),
        "organization": _text(person, "ConstituentOrganization", "Organization"),
        "address1": _text(person, "Address1"),
        "address2": " ".join(x for x in (_text(person, "Address2"), address3) if x) or None,
        "city": _text(person, "City"), "state": _text(person, "StateAbbreviation", "State"),
        "zip5": zip5, "zip4": zip4, "zip_raw": _text(person, "Zip"), "phone": _text(person, "Phone"),
        "email": (_text(person, "Email") or "").lower() or None,
        "address_validation": _text(person, "AddressValidation"),
        "email_validation": _text(person, "EmailValidation"),
    }
    topics = [el.text.strip() for el in (message.iter("LibraryOfCongressTopic") if message is not None else [])
              if el.text and el.text.strip()]
    bills = []
    for bill in (message.iter("Bill") if message is not None else []):
        bills.append({"congress": _text(bill, "BillCongress"),
                      "type": normalise_bill_type(_text(bill, "BillTypeAbbreviation")),
                      "number": _text(bill, "BillNumber")})
    pro_or_con = _text(message, "ProOrCon")
    return {
        "version": _text(root, "CWCVersion"),
        "delivery_id": delivery_id,
        "delivery_date": _text(delivery, "DeliveryDate"),
        "delivery_agent": _text(delivery, "DeliveryAgent"),
        "organization": _text(delivery, "Organization"),
        "organization_about": _text(delivery, "OrganizationAbout"),
        "campaign_id": _text(delivery, "CampaignId"),
        "recipient_office": (_text(recipient, "MemberOffice") or "").upper() or None,
        "response_requested": _text(recipient, "IsResponseRequested"),
        "newsletter_opt_in": _text(recipient, "NewsletterOptIn"),
        "constituent": constituent,
        "subject": _text(message, "Subject") or "",
        "topics": topics,
        "bills": bills,
        "pro_or_con": pro_or_con,
        "stance": STANCES.get((pro_or_con or "").strip().lower()),
        "organization_statement": _text(message, "OrganizationStatement"),
        "constituent_message": _text(message, "ConstituentMessage") or "",
        "more_info": _text(message, "MoreInfo"),
    }


def incoming_cwc(raw: bytes, source: str) -> Incoming:
    """One CWC delivery as a message; an unreadable one is stored quarantined under its file hash."""
    try:
        d = parse_cwc(raw)
    except CwcError as exc:
        return Incoming(channel=Channel.CWC, key=f"cwc-file:{hashlib.sha256(raw).hexdigest()}", source=source,
                        raw=raw, content_type="application/xml", subject="(unreadable CWC delivery)",
                        quarantine_reason=f"cwc: {exc}")
    person = d["constituent"]
    name = " ".join(x for x in (person["first_name"], person["last_name"]) if x) or None
    facts = {k: d[k] for k in ("version", "recipient_office", "response_requested", "newsletter_opt_in",
                               "bills", "pro_or_con", "more_info", "organization_about", "topics")}
    facts["constituent"] = person
    return Incoming(
        channel=Channel.CWC, key=f"cwc:{d['delivery_id']}", source=source, raw=raw,
        content_type="application/xml", received_at=_date(d["delivery_date"]), subject=d["subject"],
        body_text=d["constituent_message"] or d["organization_statement"] or "", from_name=name,
        from_address=person["email"], external_id=d["delivery_id"], campaign_id=d["campaign_id"],
        organization=d["organization"], organization_statement=d["organization_statement"],
        delivery_agent=d["delivery_agent"], stance=d["stance"], facts=facts,
    )
