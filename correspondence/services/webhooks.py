"""Webhooks: subscriptions (admin use cases), which targets are allowed, and the outbox rows events write.

Events are written by `emit_for_audit`, called from `correspondence.services.audit` for the few audit actions
that are webhook events, so every use case that records "a message was received" (or answered, a case opened
or moved, a run finished) also writes its outbox rows in the SAME transaction, through one place, and nothing
is enqueued: the periodic sweep (`outbound.webhooks.deliver_due`) sends due rows. A rolled-back change sends
nothing; a committed one is sent even if Redis is flushed.

Targets: https to a public address, or plain http to this machine only (127.0.0.1, ::1, localhost) for
testing and local relays. The host is resolved and every address checked, at subscription time and again at
each delivery (the connection then goes to the checked address, so a DNS answer that changes in between cannot
point it at the office's network): private, link-local, loopback, multicast and reserved addresses are refused
for https, which stops the feature being used to reach internal services.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from correspondence import secretbox
from correspondence.effects import Done, Effect
from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import WebhookDelivery, WebhookSubscription, utcnow
from correspondence.network import is_loopback
from correspondence.services.audit import record

# Event name -> (plain words for the admin page, the audit action that raises it).
EVENTS: dict[str, tuple[str, str]] = {
    "message.received": ("a message arrives", "message.received"),
    "message.answered": ("a message is answered", "message.responded"),
    "case.opened": ("a case is opened", "case.open"),
    "case.status_changed": ("a case moves to another status", "case.status"),
    "run.finished": ("answering a batch (apply to all) finishes", "apply_run.finish"),
}
AUDIT_EVENTS = {action: event for event, (_words, action) in EVENTS.items()}
TEST_EVENT = "webhook.test"
# Values of an audit event's before/after that a payload may carry: states and counts, never personal data.
PAYLOAD_KEYS = ("status", "channel", "how", "created", "messages", "sent", "skipped", "failed")
MAX_URL = 2000


@dataclass(frozen=True)
class Target:
    """A checked delivery target: where to connect (a checked address), and what to say in Host/SNI."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationFailed(f"the address {host!r} could not be found ({exc})") from exc
    return sorted({str(info[4][0]) for info in infos})


def check_target(url: str) -> Target:
    """The target of a webhook URL, or ValidationFailed saying why it is refused (see the module's rules)."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL:
        raise ValidationFailed("give the address (URL) to send to, at most 2,000 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationFailed(f"that address is not a valid URL ({exc})") from exc
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValidationFailed("the address must start with https:// (or http:// to this machine for testing)")
    if parts.username or parts.password:
        raise ValidationFailed("the address may not contain a user name or password; use the signing secret")
    if parts.scheme == "http" and not is_loopback(host):
        raise ValidationFailed("plain http is allowed only to this machine (127.0.0.1, ::1 or localhost); "
                               "use https")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _addresses(host, port)
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        if parts.scheme == "http":
            if not address.is_loopback:
                raise ValidationFailed(f"{host} does not lead to this machine ({raw}); plain http is refused")
        elif not address.is_global or address.is_multicast:
            raise ValidationFailed(f"{host} leads to a private or reserved address ({raw}); webhooks go only to "
                                   "public addresses")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses[0])


def create_subscription(session: Session, *, actor_id: int, name: str, url: str, events: Sequence[str],
                        secret_key: str) -> tuple[WebhookSubscription, str]:
    """Subscribe a URL to events; returns the subscription and its signing secret (shown once)."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed("give the subscription a name of at most 120 characters")
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown or not chosen:
        raise ValidationFailed("choose at least one event from the list")
    check_target(url)
    secret = "whsec_" + secrets.token_urlsafe(32)
    subscription = WebhookSubscription(name=name, url=url.strip(), events=chosen, active=True,
                                       secret_encrypted=secretbox.encrypt(secret_key, secret),
                                       created_by_id=actor_id)
    session.add(subscription)
    session.flush()
    record(session, actor_id=actor_id, action="webhook.create", object_type="webhook",
           object_id=subscription.id, after={"name": name, "url": subscription.url, "events": chosen})
    return subscription, secret


def _subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound("no such webhook subscription")
    return subscription


def set_subscription_active(session: Session, subscription_id: int, *, actor_id: int,
                            active: bool) -> WebhookSubscription:
    """Pause (nothing new is queued or sent) or resume a subscription; paused rows wait in the outbox."""
    subscription = _subscription(session, subscription_id)
    if subscription.active == active:
        return subscription
    subscription.active = active
    record(session, actor_id=actor_id, action="webhook.resume" if active else "webhook.pause",
           object_type="webhook", object_id=subscription.id, before={"active": not active},
           after={"active": active, "name": subscription.name})
    session.flush()
    return subscription


def delete_subscription(session: Session, subscription_id: int, *, actor_id: int) -> str:
    """Delete a subscription and its deliveries; returns its name."""
    subscription = _subscription(session, subscription_id)
    name = subscription.name
    record(session, actor_id=actor_id, action="webhook.delete", object_type="webhook", object_id=subscription.id,
           before={"name": name, "url": subscription.url})
    session.delete(subscription)
    session.flush()
    return name


def _body(event: str, data: dict[str, Any]) -> tuple[str, str]:
    delivery_id = str(uuid.uuid4())
    body = json.dumps({"id": delivery_id, "event": event, "occurred_at": utcnow().isoformat(), "data": data},
                      separators=(",", ":"), sort_keys=True)
    return delivery_id, body


def send_test_event(session: Session, subscription_id: int, *, actor_id: int) -> Done[WebhookDelivery]:
    """Put a "webhook.test" delivery in the outbox for this subscription; the effect runs the sweep now."""
    subscription = _subscription(session, subscription_id)
    delivery_id, body = _body(TEST_EVENT, {"subscription": subscription.id, "message": "This is a test."})
    delivery = WebhookDelivery(uuid=delivery_id, subscription_id=subscription.id, event=TEST_EVENT, body=body,
                               attempts=0, next_attempt_at=utcnow())
    session.add(delivery)
    session.flush()
    record(session, actor_id=actor_id, action="webhook.test", object_type="webhook", object_id=subscription.id,
           after={"name": subscription.name})
    return Done(delivery, (Effect.of("webhooks"),))


def _data(object_type: str, object_id: object, before: dict[str, Any] | None,
          after: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"object": object_type, "id": int(str(object_id)) if str(object_id).isdigit()
                            else str(object_id)}
    for key, values in (("before", before), ("after", after)):
        kept = {k: values[k] for k in PAYLOAD_KEYS if values and k in values
                and isinstance(values[k], str | int | float | bool | None)}
        if kept:
            data[key] = kept
    return data


def emit_for_audit(session: Session, action: str, object_type: str,
                   rows: Sequence[tuple[object, dict[str, Any] | None, dict[str, Any] | None]]) -> int:
    """Write outbox rows for an audit action that is a webhook event, one per (subscribed active
    subscription, object), in the caller's transaction. Rows are (object id, before, after). Returns how many."""
    event = AUDIT_EVENTS.get(action)
    if event is None or not rows:
        return 0
    subscriptions = [s for s in session.scalars(select(WebhookSubscription).where(WebhookSubscription.active))
                     if event in (s.events or [])]
    if not subscriptions:
        return 0
    now = utcnow()
    values = []
    for subscription in subscriptions:
        for object_id, before, after in rows:
            delivery_id, body = _body(event, _data(object_type, object_id, before, after))
            values.append({"uuid": delivery_id, "subscription_id": subscription.id, "event": event, "body": body,
                           "attempts": 0, "next_attempt_at": now, "created_at": now})
    # One statement for a batch (intake of a thousand messages writes its rows at once).
    session.execute(insert(WebhookDelivery), values)
    return len(values)


def list_subscriptions(session: Session) -> list[WebhookSubscription]:
    return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def recent_deliveries(session: Session, subscription_id: int, limit: int = 50) -> list[WebhookDelivery]:
    _subscription(session, subscription_id)
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
                                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
                                .limit(limit)))
