"""The public help form as a use case: an unverified request on a record of its own, a possible match
for a caseworker to confirm, and an online signature that becomes a privacy release only once proven.

Why a record of its own: a case needs a constituent, and an anonymous visitor must never be able to
add a case, a phone number or a signature to someone else's file by typing their email address. The
request's record holds exactly what the visitor typed; when the email or phone is already on file the
person on file is shown as a *possible match*, and only a caseworker's confirmation merges the two
(the ordinary, audited and undoable merge). The signature counts as a release when (a) the signer has
followed the one-time link emailed to the address and (b) the signed name matches the name on the
record the case belongs to; until then the case says which of the two is missing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casework.cases import _finish_release_steps, add_note, get_case, open_case
from constituents.identity import PersonFacts, find, live
from constituents.values import LIMITS, Phone, Zip, normalise_email, parse_phone, parse_state, parse_zip
from correspondence.effects import Done, Effect
from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    CaseCategory,
    CasePriority,
    Constituent,
    ConstituentEmail,
    ConstituentPhone,
    HelpRequest,
    Role,
    Staffer,
)
from correspondence.services.audit import record

T = TypeVar("T")

# No 0/O, 1/I/L or U/V look-alikes: people read these codes out on the phone.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
REFERENCE_LENGTH = 10
CONFIRM_LINK_VALID = timedelta(hours=48)
DECIDERS = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.CASEWORKER})
MATCH_NONE, MATCH_PENDING, MATCH_CONFIRMED, MATCH_REJECTED = "none", "pending", "confirmed", "rejected"
# Automatic confirmation links one address may receive a day, from other requests (a caseworker can still send).
LINKS_PER_ADDRESS_PER_DAY = 3


@dataclass(frozen=True)
class HelpValues:
    """What the visitor typed, as text (the boundary parses nothing)."""

    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    street: str = ""
    city: str = ""
    state: str = ""
    zip5: str = ""
    category_id: str = ""
    description: str = ""
    consent: bool = False
    signature: str = ""


class HelpFormInvalid(ValidationFailed):
    """One reason per field, shown next to the form."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class ConfirmLinkInvalid(ValidationFailed):
    """The email link is unknown, used already or expired."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def name_key(text: str) -> tuple[str, ...]:
    """A name for comparing signatures: case, accents, spacing and punctuation do not count.

    Apostrophes and full stops join ("O'Brien" = "OBrien", "J.R." = "JR"); hyphens and other marks
    separate ("Mary-Jane" = "Mary Jane").
    """
    text = "".join(c for c in unicodedata.normalize("NFKD", text or "") if not unicodedata.combining(c)).casefold()
    text = re.sub(r"['\u2018\u2019`\u00b4.]", "", text)
    return tuple(re.sub(r"[\W_]+", " ", text).split())


def signed_name_matches(typed: str, person: Constituent) -> bool:
    """The signature is the record's first and last name, with or without its middle name and suffix."""
    first, middle, last, suffix = (name_key(x or "") for x in (person.first_name, person.middle_name,
                                                              person.last_name, person.suffix))
    if not first or not last:
        return False
    accepted = {first + last, first + middle + last, first + last + suffix, first + middle + last + suffix}
    return name_key(typed) in accepted


# Longest values the form takes: a person's fields as long as their columns hold (constituents.values).
TEXT_LIMITS = {"description": 5000, "signature": 200}
FORM_FIELDS = {"first_name": "first_name", "last_name": "last_name", "email": "email", "street": "address1",
               "city": "city"}


@dataclass(frozen=True)
class _Read:
    """The form's values read the office's one way (constituents.values)."""

    email: str | None = None
    phone: Phone | None = None
    state: str | None = None
    zip: Zip | None = None


def _read(v: HelpValues, errors: dict[str, str]) -> _Read:
    """Each value read once; a value that cannot be read gets its reason in `errors`."""
    def attempt(key: str, parse: Callable[[str], T], problem: str) -> T | None:
        try:
            return parse(getattr(v, key))
        except ValidationFailed:
            errors.setdefault(key, problem)
            return None

    return _Read(
        email=attempt("email", normalise_email, "this is not an email address: check it has the form name@example.com"),
        phone=attempt("phone", parse_phone, "this is not a phone number: check it, or leave it empty"),
        state=attempt("state", parse_state, "enter the two-letter state code or the state's name, e.g. OH"),
        zip=attempt("zip5", parse_zip, "the ZIP code must be 5 digits, e.g. 43054"))


def _check(session: Session, v: HelpValues) -> tuple[dict[str, str], CaseCategory | None, _Read]:
    """The reasons per field, the category, and the values read."""
    errors: dict[str, str] = {}
    for key, label in (("first_name", "first name"), ("last_name", "last name"), ("email", "email"),
                       ("street", "street"), ("city", "city"), ("state", "state"), ("zip5", "ZIP code"),
                       ("description", "what you need help with")):
        if not getattr(v, key).strip():
            errors[key] = f"enter your {label}"
    limits = {**{key: LIMITS[column] for key, column in FORM_FIELDS.items()}, **TEXT_LIMITS}
    for key, limit in limits.items():
        if len(getattr(v, key).strip()) > limit:
            errors[key] = f"this is longer than {limit} characters: please shorten it"
    read = _read(v, errors)
    category = session.get(CaseCategory, int(v.category_id)) if v.category_id.strip().isdigit() else None
    if category is None or not category.active:
        errors["category_id"] = "choose what your request is about"
    if not v.consent:
        errors["consent"] = "tick the box to authorise the office to act for you"
    full = name_key(f"{v.first_name} {v.last_name}")
    if not full or name_key(v.signature) != full:
        errors["signature"] = "type your full name exactly as in the name fields above (first and last name) to sign"
    return errors, category, read


def _possible_match(session: Session, email: str, phone: str | None) -> tuple[Constituent | None, str | None]:
    """Someone on file with this email, else this phone, and which of the two: only ever a suggestion.

    The office's one rule decides (constituents.identity.find): the email, and only when nobody has it,
    the phone, which the rule offers as a possible match rather than a join.
    """
    match = find(session, PersonFacts(email=email, phone=phone))
    if match.found:
        return live(session, match.constituent_id), "email"
    if match.possible_id is not None:
        return live(session, match.possible_id), match.possible_by
    return None, None


def _new_reference(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
        if session.scalar(select(HelpRequest.id).where(HelpRequest.reference == code)) is None:
            return code


def by_key(session: Session, idempotency_key: str) -> HelpRequest | None:
    return session.scalar(select(HelpRequest).where(HelpRequest.idempotency_key == idempotency_key))


def by_case(session: Session, case_id: int) -> HelpRequest | None:
    return session.scalar(select(HelpRequest).where(HelpRequest.case_id == case_id))


def submit_help_request(session: Session, values: HelpValues, *, idempotency_key: str, ip: str | None,
                        now: datetime) -> Done[HelpRequest]:
    """Open an unverified case from the public form; the same form sent twice gives the first request back.

    Every value is read the office's one way (constituents.values): the phone it asks for is kept on the
    request's record and on the request, as E.164. The confirmation email is an effect, sent after the commit.
    """
    key = (idempotency_key or "").strip()
    if not (16 <= len(key) <= 64):
        raise ValidationFailed("the form is missing its key; reload the page and try again")
    existing = by_key(session, key)
    if existing is not None:
        return Done(existing)
    errors, category, read = _check(session, values)
    if errors or category is None:
        raise HelpFormInvalid(errors)
    email, phone = read.email or "", read.phone.number if read.phone else None
    match, match_by = _possible_match(session, email, phone)
    typed = " ".join(values.signature.split())
    try:
        with session.begin_nested():
            person = Constituent(first_name=values.first_name.strip(), last_name=values.last_name.strip(),
                                 address1=values.street.strip(), city=values.city.strip(),
                                 state=read.state, zip5=read.zip.zip5 if read.zip else None,
                                 zip4=read.zip.zip4 if read.zip else None)
            if match is None:
                # The address is nobody's yet: it becomes this record's, as the case's contact.
                person.emails.append(ConstituentEmail(address=email))
            if phone:
                person.phones.append(ConstituentPhone(number=phone))
            session.add(person)
            session.flush()
            description = values.description.strip()
            case = open_case(session, constituent_id=person.id, category_id=category.id,
                             subject=" ".join(description.split())[:120], actor_id=None,
                             priority=CasePriority.NORMAL)
            add_note(session, case.id, f"Request from the help form:\n{description}", actor_id=None)  # type: ignore[arg-type]
            # The signature is kept, but it is not a release until it is proven (see release_reason).
            case.release_method = "e_signature"
            case.release_signature = {"typed_name": typed, "signed_at": now.isoformat(), "ip": (ip or "")[:64],
                                      "email": email}
            request = HelpRequest(case_id=case.id, reference=_new_reference(session), idempotency_key=key,
                                  email=email, phone=phone, typed_name=typed, signed_at=now, ip=(ip or "")[:64],
                                  possible_match_id=match.id if match else None,
                                  match_by=match_by if match else None,
                                  match_state=MATCH_PENDING if match else MATCH_NONE, created_at=now)
            session.add(request)
            session.flush()
    except IntegrityError:
        # The same form sent twice at once: the first insert won; answer with its request.
        winner = by_key(session, key)
        if winner is None:
            raise
        return Done(winner)
    record(session, actor_id=None, action="help_request.received", object_type="case", object_id=case.id,
           after={"reference": request.reference, "email": email, "phone": phone, "typed_name": typed,
                  "ip": (ip or "")[:64], "possible_match_id": request.possible_match_id})
    return Done(request, (Effect.of("help_confirmation", request.id, by_staff=False),))


def release_reason(request: HelpRequest) -> str | None:
    """Why the online signature does not (yet) count as the privacy release, in plain words; None if it does."""
    if request.email_confirmed_at is None:
        return (f"email not yet confirmed: the signer has not followed the one-time link sent to "
                f"{request.email}")
    if request.match_state == MATCH_PENDING:
        who = request.possible_match.full_name if request.possible_match else "someone on file"
        return (f"a caseworker must first decide whether this request is from {who} "
                f"(possible match, same {request.match_by or 'email or phone'})")
    if request.match_state == MATCH_CONFIRMED and request.match_by == "phone":
        # Anyone can type a person's phone number and prove an email of their own: joined on the phone
        # alone, the proven email is not theirs, so only a signed document can be their release.
        return (f"the confirmed email {request.email} was not on the matched record (the match was by phone "
                f"only), so the online signature cannot stand as their release: upload a signed release")
    person = request.case.constituent
    if not signed_name_matches(request.typed_name, person):
        return f"signed name '{request.typed_name}' does not match the record '{person.full_name}'"
    return None


def _settle(session: Session, request: HelpRequest, *, actor_id: int | None, now: datetime) -> str | None:
    """Put the online signature on file, or take it off, as the two conditions now stand."""
    case = request.case
    if case.release_sha256 is not None or case.release_method != "e_signature":
        return None  # a signed document was uploaded: that is the release
    reason = release_reason(request)
    if reason is None and case.release_received_at is None:
        case.release_received_at = now
        case.release_signature = {**(case.release_signature or {}),
                                  "email_confirmed_at": request.email_confirmed_at.isoformat()
                                  if request.email_confirmed_at else None}
        record(session, actor_id=actor_id, action="case.release", object_type="case", object_id=case.id,
               after={"method": "e_signature", "typed_name": request.typed_name, "ip": request.ip,
                      "email": request.email})
        _finish_release_steps(session, case, actor_id)
    elif reason is not None and case.release_received_at is not None:
        case.release_received_at = None
        record(session, actor_id=actor_id, action="case.release_withdrawn", object_type="case", object_id=case.id,
               detail=reason)
    return reason


def issue_confirmation(session: Session, request_id: int, *, now: datetime,
                       by_staff: bool = False) -> tuple[HelpRequest, str] | None:
    """A fresh one-time link for the request's email (only its hash is kept); None if there is nothing to prove.

    A new link replaces any earlier one, so sending again (a retry, "send again") leaves one valid link.
    The automatic link is withheld (audited) when other requests already had LINKS_PER_ADDRESS_PER_DAY links
    sent to the same address in a day: the public form cannot make the office mail anyone over and over.
    A caseworker's "send again" is not capped.
    """
    request = session.get(HelpRequest, request_id)
    if request is None or request.email_confirmed_at is not None:
        return None
    if not by_staff:
        recent = session.scalar(select(func.count(HelpRequest.id)).where(
            HelpRequest.email == request.email, HelpRequest.id != request.id,
            HelpRequest.email_sent_at > now - timedelta(days=1))) or 0
        if recent >= LINKS_PER_ADDRESS_PER_DAY:
            record(session, actor_id=None, action="help_request.link_withheld", object_type="case",
                   object_id=request.case_id, detail=f"{recent} links already sent to this address today",
                   after={"email": request.email})
            return None
    token = secrets.token_urlsafe(32)
    request.email_token_hash = token_digest(token)
    request.email_token_expires_at = now + CONFIRM_LINK_VALID
    request.email_sent_at = now
    record(session, actor_id=None, action="help_request.link_sent", object_type="case", object_id=request.case_id,
           after={"email": request.email, "expires_at": request.email_token_expires_at.isoformat()})
    return request, token


def find_by_token(session: Session, token: str, *, now: datetime) -> HelpRequest:
    """The request a link belongs to, if the link is still good (for the page that asks to confirm)."""
    request = session.scalar(select(HelpRequest).where(HelpRequest.email_token_hash == token_digest(token)))
    if request is None or request.email_confirmed_at is not None:
        raise ConfirmLinkInvalid("this link is not valid or has already been used")
    expires = request.email_token_expires_at
    if expires is None or expires <= now:
        raise ConfirmLinkInvalid("this link has expired; ask the office to send a new one")
    return request


def confirm_email(session: Session, token: str, *, now: datetime) -> tuple[HelpRequest, str | None]:
    """The signer followed the link: the email is proven (once). Returns the request and why the release is
    still not on file, if it is not."""
    request = find_by_token(session, token, now=now)
    request.email_confirmed_at = now
    request.email_token_hash, request.email_token_expires_at = None, None  # single use
    record(session, actor_id=None, action="help_request.email_confirmed", object_type="case",
           object_id=request.case_id, after={"email": request.email})
    return request, _settle(session, request, actor_id=None, now=now)


def _decider(session: Session, actor_id: int) -> Staffer:
    actor = session.get(Staffer, actor_id)
    if actor is None or not actor.active or actor.role not in DECIDERS:
        raise PermissionDenied("only a caseworker, supervisor or admin may decide who a help request is from")
    return actor


def decide_match(session: Session, case_id: int, *, same_person: bool, actor_id: int, now: datetime) -> HelpRequest:
    """A caseworker says whether the request is from the possible match; only "same" joins it to their record."""
    from constituents.duplicates import merge

    _decider(session, actor_id)
    get_case(session, case_id)
    request = by_case(session, case_id)
    if request is None:
        raise NotFound("this case did not come from the help form")
    if request.match_state != MATCH_PENDING:
        raise ValidationFailed("there is no possible match waiting for a decision on this case")
    target = live(session, request.possible_match_id)
    if same_person:
        if target is None:
            raise ValidationFailed("the possible match is no longer on file")
        merge(session, target.id, request.case.constituent_id, actor_id=actor_id)
        reloaded = session.get(HelpRequest, request.id)  # the merge expired the session
        if reloaded is None:
            raise NotFound("this case did not come from the help form")
        request = reloaded
    request.match_state = MATCH_CONFIRMED if same_person else MATCH_REJECTED
    request.match_decided_by_id, request.match_decided_at = actor_id, now
    record(session, actor_id=actor_id, action="help_request.match_confirmed" if same_person
           else "help_request.match_rejected", object_type="case", object_id=case_id,
           after={"possible_match_id": request.possible_match_id,
                  "constituent_id": request.case.constituent_id})
    _settle(session, request, actor_id=actor_id, now=now)
    session.flush()
    return request


def resend_confirmation(session: Session, case_id: int, *, actor_id: int) -> Effect:
    """A caseworker asks for a new link (the old one expired, or never left): sent after the commit."""
    _decider(session, actor_id)
    request = by_case(session, case_id)
    if request is None:
        raise NotFound("this case did not come from the help form")
    if request.email_confirmed_at is not None:
        raise ValidationFailed("the email is confirmed already")
    record(session, actor_id=actor_id, action="help_request.resend", object_type="case", object_id=case_id,
           after={"email": request.email})
    return Effect.of("help_confirmation", request.id, by_staff=True)


def confirmation_email(request: HelpRequest, link: str, *, office_name: str, mail_from: str) -> EmailMessage:
    """The email that carries the one-time link; it says plainly what following it means."""
    email = EmailMessage()
    email["From"], email["To"] = mail_from, request.email
    email["Subject"] = f"Confirm your request for help ({request.reference})"
    email.set_content("\n".join([
        "Hello,",
        "",
        f"{office_name} received a request for help with a federal agency, signed online as",
        f"\"{request.typed_name}\", giving this email address. Your reference is {request.reference}.",
        "",
        "If you sent it, follow this link to confirm your email address and your signature of the",
        f"privacy release (the link works once, for {int(CONFIRM_LINK_VALID.total_seconds() // 3600)} hours):",
        "",
        link,
        "",
        "If you did not ask for help, ignore this email: nothing will be done in your name.",
    ]))
    return email
