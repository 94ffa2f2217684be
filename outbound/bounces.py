"""Bounce and complaint intake: delivery reports in, addresses marked, nothing dropped.

A report is stored raw first (the blob store), then read: an RFC 3464 delivery status notification
with the stdlib ``email`` package, an ARF complaint (RFC 5965) as a complaint, anything else with
``flufl.bounce``'s detectors for the common non-standard formats. It finds its letter by the signed
return path it was sent to (``outbound.tokens``) or, failing that, by the original letter's
Message-ID quoted in the report. Then:

- hard (5.x.x, or a permanent failure a detector found): the letter's address is invalid;
- soft (4.x.x, a delay, or a temporary failure): counted; invalid at the threshold;
- complaint: the address is suppressed.

A report that cannot be read, matched or classified is quarantined with the reason (state
"quarantined"), never dropped. Each report has a key (its Message-ID, else its SHA-256), so one
processed twice (the file imported again, the mailbox polled again) changes nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import collapse_rfc2231_value

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from correspondence.db import Database
from correspondence.models import Bounce, BounceKind, BounceState, Response
from correspondence.services.audit import record
from correspondence.services.blobs import store_blob
from outbound import suppression
from outbound.tokens import response_of_return_path

log = logging.getLogger(__name__)

# Any VERP-shaped address (the check decides whether it is ours) and Mailroom's own Message-IDs.
_VERP_ANYWHERE = re.compile(rb"[A-Za-z0-9._%-]+\+r\d{1,12}-[0-9a-fA-F]{16}@[A-Za-z0-9.-]+")
_OUR_MESSAGE_ID = re.compile(rb"<mailroom\.[0-9a-f]{32}@[^>\s]+>")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class BouncePolicy:
    """What intake needs from the settings, as values."""

    secret_key: str
    soft_limit: int = 3


@dataclass
class Reading:
    """What a report says: its kind, the status and the server's words, or why it could not be used."""

    kind: BounceKind | None = None
    status: str | None = None
    diagnostic: str | None = None
    problem: str | None = None


def _text(value: object) -> str:
    return " ".join(str(value or "").split())


def _delivery_status(report: Message) -> Reading | None:
    """The worst recipient of an RFC 3464 report; None when the report has no delivery-status part."""
    part = next((p for p in report.walk() if p.get_content_type() == "message/delivery-status"), None)
    if part is None:
        return None
    blocks = part.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        return Reading(problem="the delivery-status part has no per-recipient fields")
    worst: Reading | None = None
    for block in blocks[1:]:
        if not isinstance(block, Message):
            continue
        action = _text(block.get("Action")).lower()
        status = _text(block.get("Status"))
        code = _STATUS.search(status)
        diagnostic = _text(block.get("Diagnostic-Code"))
        if action == "failed" or (code and code.group(1) == "5"):
            kind = BounceKind.HARD if not code or code.group(1) == "5" else BounceKind.SOFT
        elif action == "delayed" or (code and code.group(1) == "4"):
            kind = BounceKind.SOFT
        else:
            continue  # delivered, relayed or expanded: not a failure
        reading = Reading(kind, code.group(0) if code else None, diagnostic or None)
        if worst is None or (worst.kind == BounceKind.SOFT and kind == BounceKind.HARD):
            worst = reading
    return worst or Reading(problem="the report names no failed or delayed recipient (a success notice?)")


def _is_complaint(report: Message) -> bool:
    kind = report.get_param("report-type")
    if report.get_content_type() == "multipart/report" and \
            collapse_rfc2231_value(kind or "").lower() == "feedback-report":
        return True
    return any(p.get_content_type() == "message/feedback-report" for p in report.walk())


def _feedback_type(report: Message) -> str:
    for part in report.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            fields = payload[0] if isinstance(payload, list) and payload else part
            return (_text(fields.get("Feedback-Type")) if isinstance(fields, Message) else "") or "abuse"
    return "abuse"


def _other_formats(report: Message) -> Reading:
    """Non-standard bounces (Exim, qmail, Yahoo, Exchange...) by flufl.bounce's detectors."""
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(report)
    except Exception as exc:  # a detector tripped over a malformed message: still not a report we can use
        return Reading(problem=f"not a delivery report Mailroom can read ({type(exc).__name__} in the detectors)")
    if permanent:
        return Reading(BounceKind.HARD, None, "permanent failure (recognised by flufl.bounce)")
    if temporary:
        return Reading(BounceKind.SOFT, None, "temporary failure (recognised by flufl.bounce)")
    return Reading(problem="not a delivery report Mailroom can read (no RFC 3464 status, no known format)")


def read_report(raw: bytes) -> tuple[EmailMessage, Reading]:
    report = message_from_bytes(raw, policy=policy.default)
    if _is_complaint(report):
        return report, Reading(BounceKind.COMPLAINT, None, f"complaint: {_feedback_type(report)}")
    reading = _delivery_status(report)
    if reading is None or reading.kind is None:
        other = _other_formats(report)
        reading = other if other.kind is not None or reading is None else reading
    return report, reading


def find_response(session: Session, raw: bytes, secret_key: str) -> Response | None:
    """The letter a report is about: the signed return path it came back to, else our Message-ID quoted in it."""
    for found in _VERP_ANYWHERE.finditer(raw):
        response_id = response_of_return_path(found.group(0).decode("ascii", "replace"), secret_key=secret_key)
        if response_id is not None:
            response = session.get(Response, response_id)
            if response is not None:
                return response
    for found in _OUR_MESSAGE_ID.finditer(raw):
        response = session.scalar(select(Response).where(Response.email_message_id == found.group(0).decode()))
        if response is not None:
            return response
    return None


def report_key(report: Message | None, raw: bytes) -> str:
    message_id = _text(report.get("Message-ID")) if report is not None else ""
    if message_id and len(message_id) < 240:
        return f"mid:{message_id}"
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


def receive_report(session: Session, raw: bytes, *, source: str, policy: BouncePolicy) -> tuple[Bounce, bool]:
    """Store, read and apply one report; returns (the bounce row, whether it was new). Flushes, never commits."""
    report: EmailMessage | None = None
    try:
        report, reading = read_report(raw)
    except Exception as exc:  # a report too broken for the email package is still kept, with the reason
        reading = Reading(problem=f"the report could not be read: {type(exc).__name__}: {exc}")
    key = report_key(report, raw)
    existing = session.scalar(select(Bounce).where(Bounce.idempotency_key == key))
    if existing is not None:
        return existing, False
    response = find_response(session, raw, policy.secret_key) if reading.problem is None else None
    if reading.problem is None and (response is None or not response.to_address):
        reading.problem = "no letter of ours matches it (no signed return path, no Mailroom Message-ID)"
    bounce = Bounce(idempotency_key=key, source=source[:100], kind=reading.kind,
                    state=BounceState.QUARANTINED if reading.problem else BounceState.APPLIED,
                    response_id=response.id if response is not None and not reading.problem else None,
                    address=suppression.normalise(response.to_address) if response and not reading.problem else None,
                    status=reading.status, diagnostic=(reading.diagnostic or "")[:500] or None,
                    reason=(reading.problem or "")[:500] or None)
    try:
        with session.begin_nested():
            bounce.raw_sha256 = store_blob(session, raw, "message/rfc822")
            session.add(bounce)
            session.flush()
    except IntegrityError:
        # The same report arrived through another path at the same moment: that one counts.
        winner = session.scalar(select(Bounce).where(Bounce.idempotency_key == key))
        if winner is None:
            raise
        return winner, False
    if bounce.state == BounceState.QUARANTINED:
        record(session, actor_id=None, action="bounce.quarantined", object_type="bounce", object_id=bounce.id,
               detail=bounce.reason)
        log.warning("bounce quarantined bounce_id=%s reason=%s", bounce.id, bounce.reason)
        return bounce, True
    words = " ".join(w for w in (bounce.status, bounce.diagnostic) if w) or None
    kind = bounce.kind or BounceKind.HARD  # an applied report always has its kind
    record(session, actor_id=None, action="response.bounced", object_type="response", object_id=bounce.response_id,
           after={"kind": kind.value, "address": bounce.address}, detail=words)
    address = bounce.address or ""
    if bounce.kind == BounceKind.HARD:
        suppression.suppress(session, address, suppression.SuppressionReason.INVALID, detail=words, actor_id=None)
    elif bounce.kind == BounceKind.SOFT:
        suppression.count_soft_bounce(session, address, detail=words, limit=policy.soft_limit)
    else:
        suppression.suppress(session, address, suppression.SuppressionReason.COMPLAINT, detail=words,
                             actor_id=None)
    return bounce, True


def quarantined(session: Session, *, limit: int = 50) -> list[Bounce]:
    """The newest delivery reports that could not be used, for the quarantine page (ix_bounces_state_received)."""
    return list(session.scalars(select(Bounce).where(Bounce.state == BounceState.QUARANTINED)
                                .order_by(Bounce.received_at.desc(), Bounce.id.desc()).limit(limit)))


@dataclass
class BounceSummary:
    received: int = 0
    applied: int = 0
    quarantined: int = 0
    duplicate: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"received": self.received, "applied": self.applied, "quarantined": self.quarantined,
                "duplicate": self.duplicate, "failed": self.failed, "problems": self.problems[:50]}


def import_reports(db: Database, items: Iterable[tuple[str, bytes]], *, source: str,
                   policy: BouncePolicy) -> BounceSummary:
    """The boundary for files and mailboxes: one transaction per report, so one bad report stops nothing."""
    summary = BounceSummary()
    for name, raw in items:
        summary.received += 1
        try:
            with db.unit_of_work() as session:
                bounce, new = receive_report(session, raw, source=source, policy=policy)
                state, reason = bounce.state, bounce.reason
        except Exception as exc:  # e.g. the blob folder is full: said per item, the rest go on
            log.exception("bounce report failed name=%s", name)
            summary.failed += 1
            summary.problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if not new:
            summary.duplicate += 1
        elif state == BounceState.QUARANTINED:
            summary.quarantined += 1
            summary.problems.append(f"{name}: quarantined: {reason}")
        else:
            summary.applied += 1
    return summary
