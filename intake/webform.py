"""Web-form submissions posted by the office's website, with the field names Members' forms use."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from email_validator import EmailNotValidError, validate_email

from constituents.values import normalise_phone, parse_state, parse_zip, parse_zip4
from correspondence.errors import ValidationFailed
from correspondence.models import Channel
from intake.receive import Incoming

FIELDS = ("prefix", "first_name", "last_name", "street", "street2", "city", "state", "zip5", "zip4", "phone",
          "email", "topic", "subject", "message", "submission_id", "newsletter_opt_in")

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
          "first_name": 1000, "last_name": 1000, "topic": 1000, "submission_id": 120,
          "newsletter_opt_in": 20}


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
    try:
        zip_code = parse_zip(f.get("zip5"))
    except ValidationFailed as exc:
        errors["zip5"] = str(exc)
    else:
        if zip_code:
            f["zip5"] = zip_code.zip5
            if zip_code.zip4 and not f.get("zip4"):
                f["zip4"] = zip_code.zip4
    for key, parse in (("zip4", parse_zip4), ("state", parse_state), ("phone", normalise_phone)):
        if f.get(key):
            try:
                f[key] = parse(f[key]) or ""
            except ValidationFailed as exc:
                errors[key] = str(exc)
    if errors:
        raise WebformInvalid(errors)
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
                    facts={"constituent": person, "topics": [fields["topic"]] if fields.get("topic") else [],
                           "newsletter_opt_in": fields.get("newsletter_opt_in") or None})
