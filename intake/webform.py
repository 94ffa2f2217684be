"""Web-form submissions posted by the office's website, with the field names Members' forms use."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from email_validator import EmailNotValidError, validate_email

from correspondence.models import Channel
from intake.receive import Incoming

FIELDS = ("prefix", "first_name", "last_name", "street", "street2", "city", "state", "zip5", "zip4", "phone",
          "email", "topic", "subject", "message", "submission_id")

# Names used by Members' contact forms (contact-congress's $NAME_FIRST etc.), mapped to ours.
ALIASES = {"name_prefix": "prefix", "name_first": "first_name", "first": "first_name", "firstname": "first_name",
           "name_last": "last_name", "last": "last_name", "lastname": "last_name", "address_street": "street",
           "address1": "street", "address_street_2": "street2", "address2": "street2", "address_city": "city",
           "address_state_postal": "state", "state_abbreviation": "state", "address_zip5": "zip5", "zip": "zip5",
           "address_zip4": "zip4", "phone_number": "phone", "email_address": "email", "issue": "topic",
           "body": "message", "comments": "message"}

# Only absurd lengths are refused: a long but real name, city or subject is taken and cut to its
# column when stored (correspondence.models.fit), the full value kept in the raw submission, so a
# constituent's letter is never turned away for a 150-character name.
LIMITS = {"message": 20000, "subject": 2000, "street": 1000, "street2": 1000, "city": 1000, "prefix": 1000,
          "first_name": 1000, "last_name": 1000, "topic": 1000, "submission_id": 120}


class WebformInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def normalise_fields(data: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        name = str(key).strip().lstrip("$").lower()
        name = ALIASES.get(name, name)
        if name in FIELDS and value is not None:
            out[name] = str(value).strip()
    return out


def validate(data: Mapping[str, object]) -> dict[str, str]:
    """Canonical fields, or WebformInvalid with a reason per field."""
    f = normalise_fields(data)
    errors: dict[str, str] = {}
    for required in ("first_name", "last_name", "email", "message"):
        if not f.get(required):
            errors[required] = "is required"
    for name, limit in LIMITS.items():
        if len(f.get(name, "")) > limit:
            errors[name] = f"is longer than {limit} characters"
    if f.get("email") and "email" not in errors:
        try:
            f["email"] = validate_email(f["email"], check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            errors["email"] = str(exc)
    zip_raw = f.get("zip5", "")
    if zip_raw:
        digits = re.sub(r"\D", "", zip_raw)
        if len(digits) == 9 and not f.get("zip4"):
            f["zip5"], f["zip4"] = digits[:5], digits[5:]
        elif len(digits) != 5:
            errors["zip5"] = "must be a 5-digit ZIP code"
        else:
            f["zip5"] = digits
    if f.get("zip4") and not re.fullmatch(r"\d{4}", f["zip4"]):
        errors["zip4"] = "must be 4 digits"
    if f.get("state") and not re.fullmatch(r"[A-Za-z]{2}", f["state"]):
        errors["state"] = "must be a two-letter state abbreviation"
    if f.get("phone") and not (10 <= len(re.sub(r"\D", "", f["phone"])) <= 15):
        errors["phone"] = "must be a phone number with 10 to 15 digits"
    if errors:
        raise WebformInvalid(errors)
    if f.get("state"):
        f["state"] = f["state"].upper()
    return f


def incoming_webform(fields: dict[str, str], *, token_id: int, source: str) -> Incoming:
    """A validated submission as a message; the same submission posted twice is one message."""
    raw = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()
    if fields.get("submission_id"):
        key = f"webform:{token_id}:{fields['submission_id']}"
    else:
        key = f"webform:{token_id}:{hashlib.sha256(raw).hexdigest()}"
    person = {"prefix": fields.get("prefix"), "first_name": fields.get("first_name"),
              "last_name": fields.get("last_name"), "address1": fields.get("street"),
              "address2": fields.get("street2"), "city": fields.get("city"), "state": fields.get("state"),
              "zip5": fields.get("zip5"), "zip4": fields.get("zip4"), "phone": fields.get("phone"),
              "email": fields.get("email")}
    name = f"{fields.get('first_name', '')} {fields.get('last_name', '')}".strip()
    return Incoming(channel=Channel.WEBFORM, key=key, source=source, raw=raw, content_type="application/json",
                    subject=fields.get("subject") or fields.get("topic") or "", body_text=fields["message"],
                    from_name=name or None, from_address=fields.get("email"), external_id=fields.get("submission_id"),
                    facts={"constituent": person, "topics": [fields["topic"]] if fields.get("topic") else []})
