"""Delivering the webhook outbox: signed POSTs, retried with exponential backoff, then marked failed.

Delivery is at least once: an attempt is counted and its next try set (a lease) and committed BEFORE the
network is touched, so a worker that dies mid-request leaves a row the next sweep retries, never one that is
silently lost; receivers drop repeats by the `Mailroom-Delivery` id. The outbox in the database is the only
record of what is owed, so flushing or restarting Redis loses nothing: the periodic sweep finds due rows.

Each request: the target is checked again (correspondence.services.webhooks.check_target) and the connection
goes to the checked address; a 5-second timeout; redirects are not followed (a 3xx counts as a failure); at
most 500 characters of the answer are kept, as text, and pages show them escaped.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from correspondence import secretbox
from correspondence.db import Database
from correspondence.errors import ValidationFailed
from correspondence.models import WebhookDelivery, WebhookSubscription, utcnow
from correspondence.services.audit import record
from correspondence.services.webhooks import Target, check_target

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 6 * 3600
EXCERPT = 500
# How long a claimed attempt is left alone before another sweep may try again (longer than any request).
LEASE = timedelta(seconds=60)
BATCH = 50
# Outbox rows deleted per transaction when pruning: each chunk holds SQLite's write lock for milliseconds.
PRUNE_CHUNK = 500


def sign(secret: str, timestamp: int, body: str) -> str:
    """The `Mailroom-Signature` header: HMAC-SHA256 of "<timestamp>.<body>" with the subscription's secret."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 30 s, 1 min, 2 min, ... at most 6 hours."""
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


@dataclass(frozen=True)
class Answer:
    status: int | None
    excerpt: str


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the certificate checked for the URL's host name (SNI)."""

    def __init__(self, target: Target) -> None:
        super().__init__(target.host, target.port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target) -> None:
        super().__init__(target.host, target.port, timeout=TIMEOUT_SECONDS)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def post(url: str, body: str, headers: dict[str, str]) -> Answer:
    """POST once; never follows a redirect; the answer's first characters as text."""
    try:
        target = check_target(url)
    except ValidationFailed as exc:
        return Answer(None, f"refused: {exc}"[:EXCERPT])
    connection: http.client.HTTPConnection = (_PinnedHTTPS(target) if target.scheme == "https"
                                              else _PinnedHTTP(target))
    try:
        connection.request("POST", target.path, body=body.encode(), headers=headers)
        response = connection.getresponse()
        raw = response.read(EXCERPT * 4)
        return Answer(response.status, raw.decode("utf-8", "replace")[:EXCERPT])
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, f"no answer: {type(exc).__name__}: {exc}"[:EXCERPT])
    finally:
        connection.close()


def _claim(db: Database, now: datetime, limit: int) -> list[int]:
    """Count an attempt on each due row and lease it, committed before any request is made."""
    with db.unit_of_work() as session:
        query = (select(WebhookDelivery).join(WebhookSubscription)
                 .where(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.failed_at.is_(None),
                        WebhookDelivery.next_attempt_at <= now, WebhookSubscription.active)
                 .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
        rows = list(session.scalars(query))
        for row in rows:
            row.attempts += 1
            row.last_attempt_at = now
            row.next_attempt_at = now + LEASE
        return [row.id for row in rows]


def _attempt(db: Database, delivery_id: int, *, secret_key: str) -> bool:
    with db.unit_of_work() as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:
            return False
        url, body, event, uuid = row.subscription.url, row.body, row.event, row.uuid
        try:
            secret: str | None = secretbox.decrypt(secret_key, row.subscription.secret_encrypted)
        except secretbox.SecretUnreadable:
            secret = None  # restored from an archive (secrets are left out) or the secret key changed
    if secret is None:
        answer = Answer(None, "not sent: the signing secret cannot be read (restored from an archive, or the "
                              "secret key changed); delete this webhook and add it again")
    else:
        headers = {"Content-Type": "application/json", "User-Agent": "Mailroom-Webhooks/1",
                   "Mailroom-Event": event, "Mailroom-Delivery": uuid,
                   "Mailroom-Signature": sign(secret, int(time.time()), body)}
        answer = post(url, body, headers)
    ok = answer.status is not None and 200 <= answer.status < 300
    with db.unit_of_work() as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:  # the subscription was deleted while the request was out
            return ok
        now = utcnow()
        row.last_status_code = answer.status
        row.last_response = answer.excerpt
        if ok:
            row.delivered_at = now
        elif row.attempts >= MAX_ATTEMPTS:
            row.failed_at = now
        else:
            row.next_attempt_at = now + backoff(row.attempts)
    log.info("webhook delivery_id=%s event=%s status=%s ok=%s", delivery_id, event, answer.status, ok)
    return ok


def deliver_due(db: Database, *, secret_key: str, now: datetime | None = None, limit: int = BATCH) -> dict[str, int]:
    """Send every due outbox row (up to `limit`); returns how many were delivered and how many were not."""
    delivered = failed = 0
    for delivery_id in _claim(db, now or utcnow(), limit):
        if _attempt(db, delivery_id, secret_key=secret_key):
            delivered += 1
        else:
            failed += 1
    return {"delivered": delivered, "not_delivered": failed}


def prune_deliveries(db: Database, *, delivered_days: int, failed_days: int, now: datetime | None = None,
                     chunk: int = PRUNE_CHUNK) -> dict[str, int]:
    """Delete outbox rows delivered more than `delivered_days` ago and rows given up on (failed) more than
    `failed_days` ago; rows still owed are never touched. Each subscription keeps its latest delivered and
    latest failed row whatever their age, so its page still shows the receiver's last answer.

    In chunks of `chunk` rows, each its own transaction with one audit event per subscription and kind
    naming the count, so the write lock is never held long and what was deleted is always audited.
    Idempotent: a second run finds nothing old enough left.
    """
    now = now or utcnow()
    counts = {"delivered": 0, "failed": 0}
    for kind, column, days in (("delivered", WebhookDelivery.delivered_at, delivered_days),
                               ("failed", WebhookDelivery.failed_at, failed_days)):
        cutoff = now - timedelta(days=days)
        with db.unit_of_work() as session:
            latest = set(session.scalars(select(func.max(WebhookDelivery.id)).where(column.is_not(None))
                                         .group_by(WebhookDelivery.subscription_id)))
        while True:
            with db.unit_of_work() as session:
                rows = session.execute(select(WebhookDelivery.id, WebhookDelivery.subscription_id)
                                       .where(column < cutoff, WebhookDelivery.id.not_in(latest))
                                       .order_by(WebhookDelivery.id).limit(chunk)).all()
                if not rows:
                    break
                session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_([r.id for r in rows]))
                                .execution_options(synchronize_session=False))
                per_subscription: dict[int, int] = {}
                for row in rows:
                    per_subscription[row.subscription_id] = per_subscription.get(row.subscription_id, 0) + 1
                for subscription_id, deleted in sorted(per_subscription.items()):
                    record(session, actor_id=None, action="webhook.prune", object_type="webhook",
                           object_id=subscription_id, after={kind: deleted, "older_than_days": days})
            counts[kind] += len(rows)
    log.info("webhook prune delivered=%d failed=%d", counts["delivered"], counts["failed"])
    return counts
