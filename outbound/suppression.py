"""Which email addresses get no more mail, and why: invalid (bounced), complaint, unsubscribed.

One row per lower-cased address (``Suppression``), so the rule holds whoever the address belongs to.
A stronger reason replaces a weaker one (complaint > invalid > unsubscribed), never the reverse, and
setting the reason an address already has changes nothing: a report or a click handled twice is
recorded once. What each reason stops:

- invalid and complaint: every email, follow-ups and answers alike (the mailbox does not exist, or
  the person told their provider our mail is unwanted); runs leave such people out, and a one-off
  reply to such an address fails at sending with the reason;
- unsubscribed: follow-ups (and later newsletters) only; an answer to a person's own letter still goes.

A person restores an address (``restore_address``, audited), e.g. after the constituent called to say
their mailbox works again.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import Response, Suppression, SuppressionReason, utcnow
from correspondence.models.outbound import STRENGTH
from correspondence.services.audit import record

LABELS = {SuppressionReason.INVALID: "invalid (bounced)", SuppressionReason.COMPLAINT: "reported as spam",
          SuppressionReason.UNSUBSCRIBED: "unsubscribed"}


def normalise(address: str | None) -> str:
    return (address or "").strip().lower()


def blocks(reason: SuppressionReason | None, *, follow_up: bool) -> bool:
    """Whether an address suppressed for ``reason`` may not get this kind of email."""
    if reason is None:
        return False
    return follow_up or reason != SuppressionReason.UNSUBSCRIBED


def suppressed(session: Session, addresses: Iterable[str | None]) -> dict[str, Suppression]:
    """The suppressed ones among these addresses, by lower-cased address (one query per 1,000)."""
    wanted = sorted({normalise(a) for a in addresses if a})
    found: dict[str, Suppression] = {}
    for start in range(0, len(wanted), 1000):
        for row in session.scalars(select(Suppression).where(Suppression.address.in_(wanted[start:start + 1000]),
                                                             Suppression.reason.is_not(None))):
            found[row.address] = row
    return found


def standing(session: Session, addresses: Iterable[str | None]) -> dict[str, Suppression]:
    """Every row these addresses have (suppressed, or with soft bounces counted): what a profile shows."""
    wanted = sorted({normalise(a) for a in addresses if a})
    if not wanted:
        return {}
    return {row.address: row for row in session.scalars(select(Suppression).where(Suppression.address.in_(wanted)))}


def restore_by_address(session: Session, address: str, *, actor_id: int) -> Suppression:
    row = session.scalar(select(Suppression).where(Suppression.address == normalise(address)))
    if row is None:
        raise ValidationFailed(f"{address} is not suppressed")
    return restore_address(session, row.id, actor_id=actor_id)


def _row(session: Session, address: str) -> Suppression:
    """The address's row, made when missing (a savepoint: two reports for one address at once)."""
    row = session.scalar(select(Suppression).where(Suppression.address == address))
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = Suppression(address=address, soft_bounces=0)
            session.add(row)
            session.flush()
    except IntegrityError:
        row = session.scalar(select(Suppression).where(Suppression.address == address))
        if row is None:
            raise
    return row


def suppress(session: Session, address: str, reason: SuppressionReason, *, detail: str | None,
             actor_id: int | None) -> Suppression:
    """Stop mail to the address for ``reason`` unless a reason at least as strong already does."""
    key = normalise(address)
    if not key:
        raise ValidationFailed("no address to suppress")
    row = _row(session, key)
    if row.reason is not None and STRENGTH[row.reason] >= STRENGTH[reason]:
        return row
    before = row.reason.value if row.reason else None
    row.reason, row.detail, row.since = reason, (detail or "")[:500] or None, utcnow()
    record(session, actor_id=actor_id, action=f"address.{reason.value}", object_type="email_address",
           object_id=row.id, before={"reason": before}, after={"reason": reason.value, "address": key},
           detail=row.detail)
    session.flush()
    return row


def count_soft_bounce(session: Session, address: str, *, detail: str | None, limit: int) -> Suppression:
    """One more temporary failure; at ``limit`` of them the address is invalid."""
    key = normalise(address)
    row = _row(session, key)
    row.soft_bounces += 1
    row.last_bounce_at = utcnow()
    record(session, actor_id=None, action="address.soft_bounce", object_type="email_address", object_id=row.id,
           after={"soft_bounces": row.soft_bounces, "address": key}, detail=(detail or "")[:500] or None)
    session.flush()
    if row.soft_bounces >= limit:
        suppress(session, key, SuppressionReason.INVALID, actor_id=None,
                 detail=f"{row.soft_bounces} temporary failures; the last: {detail or 'no reason given'}")
    return row


def restore_address(session: Session, suppression_id: int, *, actor_id: int) -> Suppression:
    """A person says mail may go to this address again: the reason and the soft-bounce count are cleared."""
    row = session.get(Suppression, suppression_id)
    if row is None:
        raise NotFound(f"no suppressed address {suppression_id}")
    if row.reason is None and not row.soft_bounces:
        raise ValidationFailed(f"{row.address} is not suppressed")
    before = {"reason": row.reason.value if row.reason else None, "soft_bounces": row.soft_bounces}
    row.reason, row.detail, row.since, row.soft_bounces = None, None, None, 0
    record(session, actor_id=actor_id, action="address.restored", object_type="email_address", object_id=row.id,
           before=before, after={"reason": None, "address": row.address})
    session.flush()
    return row


def unsubscribe(session: Session, response_id: int) -> Suppression:
    """The one-click unsubscribe of the letter's recipient (RFC 8058): idempotent."""
    response = session.get(Response, response_id)
    if response is None or not response.to_address:
        raise NotFound("this unsubscribe link names no letter we sent")
    return suppress(session, response.to_address, SuppressionReason.UNSUBSCRIBED, actor_id=None,
                    detail="one-click unsubscribe")
