"""Subscription lists and who is on them, with where each subscription came from (provenance).

A subscription is one lower-cased address on one list. It comes from one of five sources, each with
the legal basis written down at the time (``legal_basis``):

- a CWC delivery whose ``NewsletterOptIn`` says yes, and a web-form submission whose
  ``newsletter_opt_in`` field says yes (both at processing: ``opt_in_from_message``);
- the public sign-up page: *pending* until the person follows the signed link emailed to them
  (double opt-in, ``confirm``);
- a CSV import, which needs a stated legal basis (``import_addresses``);
- a staffer adding a person they spoke to (``subscribe`` with the staff source).

Every change of status goes through ``SUBSCRIPTIONS`` (this feature's own transition table) and is
audited: subscribing, confirming, unsubscribing (the newsletter's one-click link, or a staffer on the
profile) and subscribing again. Re-subscribing someone who unsubscribed needs a fresh act of theirs:
an opt-in, a confirmed sign-up, or a staffer stating the basis; a CSV import never re-subscribes them.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from constituents.values import email_key, email_or_none, normalise_email
from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import (
    ConstituentEmail,
    Message,
    Subscription,
    SubscriptionList,
    SubscriptionSource,
    SubscriptionStatus,
    Suppression,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.states import StateMachine

ST = SubscriptionStatus
SUBSCRIPTION_TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    # A public sign-up waits for its confirmation link; it may also be withdrawn before that.
    ST.PENDING: frozenset({ST.SUBSCRIBED, ST.UNSUBSCRIBED}),
    ST.SUBSCRIBED: frozenset({ST.UNSUBSCRIBED}),
    # Subscribing again: at once (an opt-in, a staffer), or pending a confirmation (the public page).
    ST.UNSUBSCRIBED: frozenset({ST.SUBSCRIBED, ST.PENDING}),
}
SUBSCRIPTIONS = StateMachine(SubscriptionStatus, SUBSCRIPTION_TRANSITIONS, "subscription", field="status",
                             noun="subscription")

SOURCE_LABELS = {SubscriptionSource.CWC: "opted in on a CWC message",
                 SubscriptionSource.WEBFORM: "opted in on the web form",
                 SubscriptionSource.SIGNUP: "signed up on the website (confirmed by email)",
                 SubscriptionSource.IMPORT: "imported from a spreadsheet", SubscriptionSource.STAFF: "added by staff"}
STATUS_LABELS = {ST.PENDING: "waiting for the person to confirm", ST.SUBSCRIBED: "subscribed",
                 ST.UNSUBSCRIBED: "unsubscribed"}
YES = frozenset({"y", "yes", "true", "1", "on", "checked", "x"})
CONFIRM_DAYS = 7  # a confirmation link older than this is refused; signing up again sends a new one
_CHECK = 16


# --- lists ----------------------------------------------------------------------------------------

def create_list(session: Session, name: str, *, description: str = "", public: bool = True,
                actor_id: int) -> SubscriptionList:
    name = " ".join(name.split())
    if not name:
        raise ValidationFailed("give the list a name")
    if len(name) > 200:
        raise ValidationFailed("the list's name is longer than 200 characters")
    if session.scalar(select(SubscriptionList.id).where(func.lower(SubscriptionList.name) == name.lower())):
        raise ValidationFailed(f"there is already a list called {name}")
    made = SubscriptionList(name=name, description=description.strip()[:1000] or None, public=public,
                            created_by_id=actor_id)
    session.add(made)
    session.flush()
    record(session, actor_id=actor_id, action="subscription_list.create", object_type="subscription_list",
           object_id=made.id, after={"name": name, "public": public})
    return made


def get_list(session: Session, list_id: int) -> SubscriptionList:
    found = session.get(SubscriptionList, list_id)
    if found is None:
        raise NotFound(f"no subscription list {list_id}")
    return found


@dataclass(frozen=True)
class ListSummary:
    item: SubscriptionList
    subscribed: int
    pending: int
    unsubscribed: int
    suppressed: int = 0  # subscribed, but the address bounced, complained or unsubscribed from everything

    @property
    def reachable(self) -> int:
        """How many a newsletter to the list would go to now."""
        return self.subscribed - self.suppressed


def list_summaries(session: Session, *, public_only: bool = False) -> list[ListSummary]:
    query = select(SubscriptionList).order_by(SubscriptionList.name)
    if public_only:
        query = query.where(SubscriptionList.public.is_(True))
    lists = list(session.scalars(query))
    counts: dict[tuple[int, SubscriptionStatus], int] = {
        (lid, status): n for lid, status, n in session.execute(
            select(Subscription.list_id, Subscription.status, func.count()).group_by(Subscription.list_id,
                                                                                     Subscription.status))}
    held = dict(session.execute(
        select(Subscription.list_id, func.count()).join(Suppression, Suppression.address == Subscription.address)
        .where(Subscription.status == ST.SUBSCRIBED, Suppression.reason.is_not(None))
        .group_by(Subscription.list_id)).all())
    return [ListSummary(x, counts.get((x.id, ST.SUBSCRIBED), 0), counts.get((x.id, ST.PENDING), 0),
                        counts.get((x.id, ST.UNSUBSCRIBED), 0), held.get(x.id, 0)) for x in lists]


def default_list(session: Session) -> SubscriptionList | None:
    """The list opt-ins on incoming mail join: the office's first list (by id), if it has made one."""
    return session.scalar(select(SubscriptionList).order_by(SubscriptionList.id).limit(1))


# --- subscribing ----------------------------------------------------------------------------------

def _constituent_of(session: Session, address: str) -> int | None:
    return session.scalar(select(ConstituentEmail.constituent_id).where(ConstituentEmail.address == address))


def _basis(text: str) -> str:
    basis = " ".join((text or "").split())
    if not basis:
        raise ValidationFailed("state the legal basis: how and when these people agreed to get the newsletter")
    if len(basis) > 500:
        raise ValidationFailed("the legal basis is longer than 500 characters")
    return basis


def subscribe(session: Session, list_id: int, address: str, *, source: SubscriptionSource, legal_basis: str,
              actor_id: int | None, constituent_id: int | None = None, pending: bool = False,
              resubscribe: bool = True) -> Subscription:
    """Put the address on the list (pending a confirmation when ``pending``); audited. Idempotent: an address
    already subscribed stays as it is (its first provenance is kept). An unsubscribed one is subscribed
    again only when ``resubscribe`` (a fresh act of the person's, or a staffer's stated basis)."""
    get_list(session, list_id)
    key = normalise_email(address)
    if key is None:
        raise ValidationFailed("give an email address")
    basis = _basis(legal_basis)
    target = ST.PENDING if pending else ST.SUBSCRIBED
    found = session.scalar(select(Subscription).where(Subscription.list_id == list_id, Subscription.address == key))
    if found is None:
        try:
            with session.begin_nested():
                found = Subscription(list_id=list_id, address=key, status=target, source=source, legal_basis=basis,
                                     constituent_id=constituent_id or _constituent_of(session, key),
                                     subscribed_at=None if pending else utcnow())
                session.add(found)
                session.flush()
        except IntegrityError:
            # The same person signed up twice at the same moment: the other one is their subscription.
            found = session.scalar(select(Subscription).where(Subscription.list_id == list_id,
                                                              Subscription.address == key))
            if found is None:
                raise
            return found
        record(session, actor_id=actor_id, action="subscription.pending" if pending else "subscription.subscribe",
               object_type="subscription", object_id=found.id,
               after={"status": target.value, "list_id": list_id, "address": key, "source": source.value},
               detail=basis)
        return found
    if found.status == ST.SUBSCRIBED or found.status == target:
        return found
    if found.status == ST.UNSUBSCRIBED and not resubscribe:
        return found
    if found.status == ST.PENDING and pending:
        return found
    found.source, found.legal_basis = source, basis
    if target == ST.SUBSCRIBED:
        found.subscribed_at, found.unsubscribed_at = utcnow(), None
    if constituent_id is not None:
        found.constituent_id = constituent_id
    if pending:  # signing up again on the public page: pending until the new link is followed
        action = "subscription.pending"
    else:
        action = "subscription.resubscribe" if found.status == ST.UNSUBSCRIBED else "subscription.subscribe"
    SUBSCRIPTIONS.move(session, found, target, actor_id=actor_id, action=action,
                       after={"source": source.value, "address": key}, detail=basis)
    return found


def unsubscribe(session: Session, subscription_id: int, *, actor_id: int | None, how: str) -> Subscription:
    """Take the address off the list (the newsletter's one-click link, or a staffer); unsubscribing twice is
    the same as once."""
    found = session.get(Subscription, subscription_id)
    if found is None:
        raise NotFound(f"no subscription {subscription_id}")
    if found.status == ST.UNSUBSCRIBED:
        return found
    found.unsubscribed_at = utcnow()
    SUBSCRIPTIONS.move(session, found, ST.UNSUBSCRIBED, actor_id=actor_id, action="subscription.unsubscribe",
                       detail=how[:500])
    return found


def unsubscribe_address(session: Session, list_id: int, address: str, *, how: str) -> Subscription | None:
    """The one-click unsubscribe of a newsletter sent to a list: that address comes off that list."""
    found = session.scalar(select(Subscription).where(Subscription.list_id == list_id,
                                                      Subscription.address == (email_key(address) or "")))
    if found is None:
        return None
    return unsubscribe(session, found.id, actor_id=None, how=how)


# --- double opt-in --------------------------------------------------------------------------------

def _check(secret_key: str, subscription_id: int, issued: int) -> str:
    mac = hmac.new(secret_key.encode(), f"subscribe-confirm:{subscription_id}:{issued}".encode(), hashlib.sha256)
    return mac.hexdigest()[:_CHECK]


def confirm_token(subscription_id: int, *, secret_key: str, issued: int | None = None) -> str:
    """The signed link's token: which subscription, when issued, and an HMAC of both."""
    at = int(time.time()) if issued is None else issued
    return f"s{subscription_id}-{at:x}-{_check(secret_key, subscription_id, at)}"


def subscription_of_token(token: str, *, secret_key: str, now: float | None = None) -> int | None:
    """The subscription a confirmation token names, when its check holds and it is not expired; else None."""
    parts = token.strip().lower().split("-")
    if len(parts) != 3 or not parts[0].startswith("s") or not parts[0][1:].isdigit() or len(parts[0]) > 13:
        return None
    try:
        subscription_id, issued = int(parts[0][1:]), int(parts[1], 16)
    except ValueError:
        return None
    if not hmac.compare_digest(parts[2], _check(secret_key, subscription_id, issued)):
        return None
    if (now if now is not None else time.time()) - issued > CONFIRM_DAYS * 86400:
        return None
    return subscription_id


def sign_up(session: Session, list_id: int, address: str, *, where: str) -> Subscription:
    """The public page: a pending subscription (or the existing one); the boundary emails its confirmation."""
    chosen = get_list(session, list_id)
    if not chosen.public:
        raise NotFound(f"no subscription list {list_id}")
    return subscribe(session, list_id, address, source=SubscriptionSource.SIGNUP, actor_id=None, pending=True,
                     legal_basis=f"signed up on the public page ({where[:200]}); confirmation email sent")


def confirm(session: Session, subscription_id: int) -> Subscription:
    """The person followed the link in the confirmation email: double opt-in done (idempotent)."""
    found = session.get(Subscription, subscription_id)
    if found is None:
        raise NotFound("this confirmation link names no sign-up")
    if found.status == ST.SUBSCRIBED:
        return found
    if found.status != ST.PENDING:
        raise ValidationFailed("this sign-up was withdrawn; sign up again to get a new link")
    found.subscribed_at = utcnow()
    found.legal_basis = (found.legal_basis.replace("confirmation email sent", "confirmed by email")
                         + f" on {found.subscribed_at:%Y-%m-%d}")[:500]
    SUBSCRIPTIONS.move(session, found, ST.SUBSCRIBED, actor_id=None, action="subscription.confirm")
    return found


def confirmation_text(list_name: str, link: str) -> tuple[str, str]:
    """The confirmation email's subject and body (plain words; nothing the person typed but the address)."""
    return (f"Please confirm: {list_name}"[:150],
            f"Someone (we hope you) asked to get “{list_name}” at this address.\n\n"
            f"To confirm, open this link within {CONFIRM_DAYS} days:\n{link}\n\n"
            "If it was not you, ignore this email: you will not be added.\n")


# --- opt-ins on incoming mail ---------------------------------------------------------------------

def opted_in(value: object) -> bool:
    return str(value or "").strip().lower() in YES


def opt_in_from_message(session: Session, message: Message) -> Subscription | None:
    """A CWC delivery or web-form submission that opted in to the newsletter: its sender joins the office's
    default list (none made yet: nothing happens). Called by the intake pipeline; idempotent."""
    facts = message.facts or {}
    if not opted_in(facts.get("newsletter_opt_in")):
        return None
    address = email_or_none(message.from_address)
    chosen = default_list(session) if address else None
    if chosen is None or address is None:
        return None
    source = SubscriptionSource.CWC if message.channel.value == "cwc" else SubscriptionSource.WEBFORM
    where = f"CWC delivery {message.external_id}" if source == SubscriptionSource.CWC else "the web form"
    return subscribe(session, chosen.id, address, source=source, actor_id=None,
                     constituent_id=message.constituent_id or (message.constituent.id if message.constituent else None),
                     legal_basis=f"opted in to the newsletter on {where} ({message.idempotency_key[:200]})")


# --- CSV import -----------------------------------------------------------------------------------

@dataclass
class ImportSummary:
    rows: int = 0
    added: int = 0
    already: int = 0
    kept_unsubscribed: int = 0
    problems: list[str] = field(default_factory=list)


EMAIL_COLUMNS = ("email", "e-mail", "email address", "email_address", "address")


def import_addresses(session: Session, list_id: int, data: bytes, *, legal_basis: str,
                     actor_id: int) -> ImportSummary:
    """Subscribe every address in a CSV's email column, with the stated legal basis (required). People who
    unsubscribed stay unsubscribed; bad rows are listed with their line numbers."""
    basis = _basis(legal_basis)
    get_list(session, list_id)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    column = next((i for i, h in enumerate(header) if h in EMAIL_COLUMNS), None)
    if column is None:
        raise ValidationFailed("the file needs a column headed “email”")
    summary = ImportSummary()
    seen: set[str] = set()
    wanted: list[tuple[int, str]] = []
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        summary.rows += 1
        raw = cells[column] if column < len(cells) else ""
        address = email_or_none(raw)
        if address is None:
            summary.problems.append(f"line {number}: {raw[:60]!r} is not an email address")
        elif address not in seen:
            seen.add(address)
            wanted.append((number, address))
    existing: dict[str, ST] = {}
    for start in range(0, len(wanted), 1000):
        chunk = [a for _n, a in wanted[start:start + 1000]]
        existing.update(session.execute(select(Subscription.address, Subscription.status).where(
            Subscription.list_id == list_id, Subscription.address.in_(chunk))).all())
    people: dict[str, int] = {}
    for start in range(0, len(wanted), 1000):
        chunk = [a for _n, a in wanted[start:start + 1000]]
        people.update(session.execute(select(ConstituentEmail.address, ConstituentEmail.constituent_id)
                                      .where(ConstituentEmail.address.in_(chunk))).all())
    now = utcnow()
    new: list[Subscription] = []
    for _number, address in wanted:
        status = existing.get(address)
        if status == ST.UNSUBSCRIBED:
            summary.kept_unsubscribed += 1
        elif status is not None:
            summary.already += 1
        else:
            new.append(Subscription(list_id=list_id, address=address, status=ST.SUBSCRIBED,
                                    source=SubscriptionSource.IMPORT, legal_basis=basis, subscribed_at=now,
                                    constituent_id=people.get(address)))
    for start in range(0, len(new), 2000):
        session.add_all(new[start:start + 2000])
        session.flush()
    summary.added = len(new)
    record(session, actor_id=actor_id, action="subscription.import", object_type="subscription_list",
           object_id=list_id, after={"rows": summary.rows, "added": summary.added, "already": summary.already,
                                     "kept_unsubscribed": summary.kept_unsubscribed,
                                     "problems": len(summary.problems)}, detail=basis)
    return summary


# --- reading --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Held:
    """One of a person's subscriptions, as their profile shows it."""

    id: int
    list_name: str
    status: SubscriptionStatus
    since: object
    source: str
    legal_basis: str
    address: str


def subscriptions_of(session: Session, constituent_id: int, addresses: list[str]) -> list[Held]:
    """A person's subscriptions: on their record, or on any of their addresses."""
    keys = [k for k in (email_key(a) for a in addresses) if k]
    condition = Subscription.constituent_id == constituent_id
    if keys:
        condition = condition | Subscription.address.in_(keys)
    rows = session.execute(select(Subscription, SubscriptionList.name)
                           .join(SubscriptionList, SubscriptionList.id == Subscription.list_id)
                           .where(condition).order_by(SubscriptionList.name, Subscription.address))
    return [Held(s.id, name, s.status, s.unsubscribed_at if s.status == ST.UNSUBSCRIBED else
                 (s.subscribed_at or s.created_at), SOURCE_LABELS[s.source], s.legal_basis, s.address)
            for s, name in rows]


def subscribed_addresses(session: Session, list_id: int, *, after_id: int = 0,
                         limit: int = 1000) -> list[tuple[int, str, int | None]]:
    """One page of a list's subscribed addresses: (subscription id, address, constituent id), by id
    (ix_subscriptions_list_status)."""
    return [tuple(r) for r in session.execute(  # type: ignore[misc]  # rows of three, as selected
        select(Subscription.id, Subscription.address, Subscription.constituent_id)
        .where(Subscription.list_id == list_id, Subscription.status == ST.SUBSCRIBED, Subscription.id > after_id)
        .order_by(Subscription.id).limit(limit))]
