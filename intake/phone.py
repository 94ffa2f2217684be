"""Phone calls and walk-in visits logged by staff with the quick-entry form."""

from __future__ import annotations

import re
from collections.abc import Mapping

from constituents.values import Phone, Zip, normalise_email, parse_phone, parse_state, parse_zip
from correspondence.errors import ValidationFailed
from correspondence.models import Channel, Stance
from intake.receive import Incoming


class PhoneEntryInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def incoming_call(form: Mapping[str, str], *, nonce: str, staffer_id: int) -> Incoming:
    """A logged call or visit as a message; the form's one-time nonce makes a double submit one message."""
    f = {k: (form.get(k) or "").strip() for k in ("first_name", "last_name", "phone", "email", "street", "city",
                                                   "state", "zip5", "subject", "notes", "stance")}
    errors: dict[str, str] = {}
    if not (f["first_name"] or f["last_name"] or f["phone"]):
        errors["caller"] = "enter the caller's name or number"
    if not f["notes"]:
        errors["notes"] = "write down what the caller said"
    read: dict[str, object] = {}
    for key, parse in (("phone", parse_phone), ("zip5", parse_zip), ("state", parse_state), ("email", normalise_email)):
        try:
            read[key] = parse(f[key])
        except ValidationFailed as exc:
            errors[key] = str(exc)
    stance = None
    if f["stance"]:
        try:
            stance = Stance(f["stance"])
        except ValueError:
            errors["stance"] = "is not a stance"
    kind = form.get("kind") or "phone"
    if kind not in ("phone", "walk_in"):
        errors["kind"] = "must be a phone call or a walk-in visit"
    if not re.fullmatch(r"[0-9a-f]{32}", nonce or ""):
        errors["form"] = "the form is missing its one-time number; reload it"
    if errors:
        raise PhoneEntryInvalid(errors)
    phone, zip_code, email = read.get("phone"), read.get("zip5"), read.get("email")
    person = {"first_name": f["first_name"] or None, "last_name": f["last_name"] or None,
              "phone": phone.number if isinstance(phone, Phone) else None,
              "email": email if isinstance(email, str) else None,
              "address1": f["street"] or None, "city": f["city"] or None, "state": read.get("state"),
              "zip5": zip_code.zip5 if isinstance(zip_code, Zip) else None,
              "zip4": zip_code.zip4 if isinstance(zip_code, Zip) else None}
    name = " ".join(x for x in (f["first_name"], f["last_name"]) if x) or None
    channel = Channel(kind)
    return Incoming(channel=channel, key=f"{kind}:{nonce}", source=f"{kind}:staffer-{staffer_id}",
                    subject=f["subject"] or ("Walk-in visit" if channel == Channel.WALK_IN else "Phone call"),
                    body_text=f["notes"], from_name=name,
                    from_address=email if isinstance(email, str) else None, stance=stance,
                    facts={"constituent": person, "logged_by": staffer_id})
