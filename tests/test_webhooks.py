"""Webhooks: signed deliveries from the outbox to a real HTTP receiver on a loopback port, retries with
backoff, a Redis flush in the middle, refused targets, and the admin page."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from correspondence.errors import ValidationFailed
from correspondence.models import AuditEvent, Channel, WebhookDelivery, WebhookSubscription, utcnow
from correspondence.services.webhooks import check_target, create_subscription, send_test_event
from intake.receive import Incoming, receive
from outbound.webhooks import MAX_ATTEMPTS, backoff, deliver_due, prune_deliveries
from tests.conftest import TEST_SECRET_KEY
from workers.effects import dispatch
from workers.queues import MAINTENANCE, OUTBOUND, PERIODIC_JOBS, PeriodicJob, enqueue_due_periodic, get_queue


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records each POST and answers with the next queued status."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = b"<b>oops</b> " + b"x" * 2000 if status >= 500 else b"thanks"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _verify(secret: str, headers: dict[str, str], body: str) -> bool:
    """What a receiver does (the README's five lines)."""
    parts = dict(p.split("=", 1) for p in headers["Mailroom-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.{body}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def _subscribe(session, factory, url: str, events=("message.received",)) -> tuple[WebhookSubscription, str]:
    admin = factory.staffer(role="admin")
    subscription, secret = create_subscription(session, actor_id=admin.id, name="CRM", url=url, events=list(events),
                                               secret_key=TEST_SECRET_KEY)
    session.commit()
    return subscription, secret


def _receive(session, key: str = "m1") -> int:
    got = receive(session, Incoming(channel=Channel.EMAIL, key=key, source="test", subject="Bridge",
                                    body_text="Fix the bridge", from_address="pat@example.net"), max_bytes=10**6)
    session.commit()
    return got.message_id


def _fresh(session) -> None:
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()


def test_a_received_message_is_delivered_signed(database, session, factory, receiver):
    subscription, secret = _subscribe(session, factory, receiver.url)
    message_id = _receive(session)
    assert deliver_due(database, secret_key=TEST_SECRET_KEY) == {"delivered": 1, "not_delivered": 0}
    [got] = receiver.requests
    assert got["path"] == "/hook?x=1"
    assert _verify(secret, got["headers"], got["body"])
    assert not _verify(secret + "x", got["headers"], got["body"])
    payload = json.loads(got["body"])
    assert payload["event"] == "message.received"
    assert payload["data"] == {"object": "message", "id": message_id, "after": {"channel": "email"}}
    assert got["headers"]["Mailroom-Delivery"] == payload["id"]
    _fresh(session)
    row = session.scalars(select(WebhookDelivery)).one()
    assert row.delivered_at is not None and row.last_status_code == 200 and row.last_response == "thanks"
    # Delivered rows are not sent again.
    assert deliver_due(database, secret_key=TEST_SECRET_KEY) == {"delivered": 0, "not_delivered": 0}
    assert subscription.id == row.subscription_id


def test_a_rolled_back_change_sends_nothing_and_unsubscribed_events_are_not_written(session, factory, receiver):
    _subscribe(session, factory, receiver.url, events=("case.opened",))
    receive(session, Incoming(channel=Channel.EMAIL, key="k", source="t", subject="s", body_text="b"),
            max_bytes=10**6)
    session.rollback()
    assert session.scalars(select(WebhookDelivery)).all() == []


def test_a_500_is_retried_with_backoff_then_succeeds(database, session, factory, receiver):
    _subscribe(session, factory, receiver.url)
    _receive(session)
    receiver.statuses = [500]
    assert deliver_due(database, secret_key=TEST_SECRET_KEY) == {"delivered": 0, "not_delivered": 1}
    _fresh(session)
    row = session.scalars(select(WebhookDelivery)).one()
    assert row.attempts == 1 and row.last_status_code == 500 and row.delivered_at is None
    assert row.last_response is not None and len(row.last_response) == 500
    assert row.last_response.startswith("<b>oops</b>")  # kept as text; the page escapes it
    wait = row.next_attempt_at - row.last_attempt_at
    assert timedelta(seconds=29) < wait <= timedelta(seconds=31)
    # Not due yet: nothing is sent.
    assert deliver_due(database, secret_key=TEST_SECRET_KEY) == {"delivered": 0, "not_delivered": 0}
    later = utcnow() + timedelta(seconds=31)
    assert deliver_due(database, secret_key=TEST_SECRET_KEY, now=later) == {"delivered": 1, "not_delivered": 0}
    _fresh(session)
    assert row.attempts == 2 and row.delivered_at is not None and row.last_status_code == 200
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]  # the same notice, byte for byte


def test_backoff_doubles_and_gives_up_after_the_limit(database, session, factory, receiver):
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(40) == timedelta(hours=6)
    _subscribe(session, factory, receiver.url)
    _receive(session)
    receiver.statuses = [503] * MAX_ATTEMPTS
    now = utcnow()
    for _ in range(MAX_ATTEMPTS):
        now += timedelta(hours=7)
        deliver_due(database, secret_key=TEST_SECRET_KEY, now=now)
    _fresh(session)
    row = session.scalars(select(WebhookDelivery)).one()
    assert row.attempts == MAX_ATTEMPTS and row.failed_at is not None and row.delivered_at is None
    assert deliver_due(database, secret_key=TEST_SECRET_KEY, now=now + timedelta(days=1))["not_delivered"] == 0
    assert len(receiver.requests) == MAX_ATTEMPTS


def test_a_redirect_is_not_followed(database, session, factory, receiver):
    _subscribe(session, factory, receiver.url)
    _receive(session)
    receiver.statuses = [302]
    assert deliver_due(database, secret_key=TEST_SECRET_KEY)["not_delivered"] == 1
    assert len(receiver.requests) == 1


def test_delivery_survives_a_redis_flush(job_env, redis, session, factory, receiver):
    subscription, secret = _subscribe(session, factory, receiver.url)
    admin_id = subscription.created_by_id
    assert admin_id is not None
    done = send_test_event(session, subscription.id, actor_id=admin_id)
    session.commit()
    dispatch(done.effects)
    assert get_queue(OUTBOUND, redis).count == 1
    _receive(session)
    redis.flushdb()  # Redis loses the queued job (a restart without persistence)
    assert get_queue(OUTBOUND, redis).count == 0
    assert receiver.requests == []
    # The periodic sweep finds the rows in the database's outbox and sends them.
    sweep = PeriodicJob("webhooks", "workers.jobs.run_webhooks", OUTBOUND, 30)
    assert enqueue_due_periodic(redis, jobs=(sweep,))
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    assert sorted(json.loads(r["body"])["event"] for r in receiver.requests) == ["message.received",
                                                                                 "webhook.test"]
    assert all(_verify(secret, r["headers"], r["body"]) for r in receiver.requests)
    _fresh(session)
    assert all(d.delivered_at for d in session.scalars(select(WebhookDelivery)))


def test_a_paused_subscription_writes_nothing_new_and_sends_nothing(database, session, factory, receiver):
    from correspondence.services.webhooks import set_subscription_active

    subscription, _secret = _subscribe(session, factory, receiver.url)
    admin_id = subscription.created_by_id
    assert admin_id is not None
    send_test_event(session, subscription.id, actor_id=admin_id)
    set_subscription_active(session, subscription.id, actor_id=admin_id, active=False)
    session.commit()
    _receive(session)
    assert deliver_due(database, secret_key=TEST_SECRET_KEY) == {"delivered": 0, "not_delivered": 0}
    assert session.scalars(select(WebhookDelivery.event)).all() == ["webhook.test"]  # waits for a resume
    set_subscription_active(session, subscription.id, actor_id=admin_id, active=True)
    session.commit()
    assert deliver_due(database, secret_key=TEST_SECRET_KEY)["delivered"] == 1


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/x", "http://example.org/hook", "http://10.0.0.5/hook", "https://127.0.0.1/hook",
    "https://10.1.2.3/hook", "https://192.168.1.1/hook", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook", "https://[fe80::1]/hook", "https://localhost/hook", "https://user:pw@example.org/",
    "https://0.0.0.0/hook", "https://100.64.0.1/hook", "", "not a url",
])
def test_refused_targets(url):
    with pytest.raises(ValidationFailed):
        check_target(url)


def test_allowed_targets():
    assert check_target("http://127.0.0.1:8080/h").address == "127.0.0.1"
    assert check_target("http://[::1]:8080/h").address == "::1"
    assert check_target("https://93.184.215.14/h").scheme == "https"


def test_a_target_refused_at_delivery_is_not_sent(database, session, factory, receiver):
    subscription, _secret = _subscribe(session, factory, receiver.url)
    _receive(session)
    # The address changed after it was checked (e.g. edited in the database): the delivery re-checks it.
    subscription.url = "http://10.0.0.5/hook"
    session.commit()
    assert deliver_due(database, secret_key=TEST_SECRET_KEY)["not_delivered"] == 1
    _fresh(session)
    row = session.scalars(select(WebhookDelivery)).one()
    assert row.last_status_code is None and row.last_response.startswith("refused: plain http")


def test_admin_page_makes_a_subscription_shows_the_secret_once_and_the_deliveries(client, auth, session, receiver,
                                                                                   database):
    admin = auth.login("admin")
    token = auth.csrf("/admin/webhooks/")
    refused = client.post("/admin/webhooks/", data={"name": "Bad", "url": "https://10.0.0.1/x",
                                                    "event": ["case.opened"], "csrf_token": token})
    assert refused.status_code == 400 and "private or reserved" in refused.get_data(as_text=True)
    made = client.post("/admin/webhooks/", data={"name": "CRM <sync>", "url": receiver.url,
                                                 "event": ["message.received", "case.opened"], "csrf_token": token})
    page = made.get_data(as_text=True)
    assert made.status_code == 201 and 'id="new-secret">whsec_' in page and "CRM &lt;sync&gt;" in page
    assert "whsec_" not in client.get("/admin/webhooks/").get_data(as_text=True)
    subscription = session.scalars(select(WebhookSubscription)).one()
    assert subscription.created_by_id == admin.id and subscription.events == ["case.opened", "message.received"]
    tested = client.post(f"/admin/webhooks/{subscription.id}/test", data={"csrf_token": token})
    assert tested.status_code == 303
    receiver.statuses = [500]
    deliver_due(database, secret_key=TEST_SECRET_KEY)
    deliveries = client.get(f"/admin/webhooks/{subscription.id}").get_data(as_text=True)
    assert "test event" in deliveries and "500" in deliveries and "&lt;b&gt;oops&lt;/b&gt;" in deliveries
    assert "<b>oops</b>" not in deliveries
    assert client.post(f"/admin/webhooks/{subscription.id}/pause", data={"csrf_token": token}).status_code == 303
    assert client.post(f"/admin/webhooks/{subscription.id}/resume", data={"csrf_token": token}).status_code == 303
    assert client.post(f"/admin/webhooks/{subscription.id}/delete", data={"csrf_token": token}).status_code == 303
    _fresh(session)
    assert session.scalars(select(WebhookSubscription)).all() == []
    assert session.scalars(select(WebhookDelivery)).all() == []
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "webhook")
                              .order_by(AuditEvent.id)).all()
    assert actions == ["webhook.create", "webhook.test", "webhook.pause", "webhook.resume", "webhook.delete"]
    # The history sentences are plain words.
    from correspondence.services.history import describe

    lines = describe(session, session.scalars(select(AuditEvent).where(AuditEvent.object_type == "webhook")))
    text = " | ".join(str(getattr(line, "text", line)) for line in lines)
    assert "added the webhook “CRM <sync>”" in text and "deleted the webhook" in text


def test_the_page_is_for_admins_only(client, auth):
    auth.login("supervisor")
    assert client.get("/admin/webhooks/").status_code == 403


def test_an_unreadable_secret_is_not_sent_and_says_why(database, session, factory, receiver):
    subscription, _secret = _subscribe(session, factory, receiver.url)
    _receive(session)
    subscription.secret_encrypted = ""  # what a restore from an archive leaves (archive.restore.RESTORED_AS)
    session.commit()
    assert deliver_due(database, secret_key=TEST_SECRET_KEY)["not_delivered"] == 1
    assert receiver.requests == []
    _fresh(session)
    row = session.scalars(select(WebhookDelivery)).one()
    assert row.last_response is not None and "signing secret cannot be read" in row.last_response


def test_case_opened_and_status_changed_are_sent_with_the_move(database, session, factory, receiver):
    from casework import cases
    from correspondence.models import CaseCategory, CaseStatus

    subscription, secret = _subscribe(session, factory, receiver.url, events=("case.opened", "case.status_changed"))
    category = session.scalars(select(CaseCategory)).first()
    assert category is not None
    case = cases.open_case(session, constituent_id=factory.constituent().id, category_id=category.id,
                           subject="VA claim", actor_id=subscription.created_by_id)
    cases.set_status(session, case.id, CaseStatus.WAITING_ON_AGENCY, actor_id=subscription.created_by_id)
    session.commit()
    assert deliver_due(database, secret_key=TEST_SECRET_KEY)["delivered"] == 2
    bodies = sorted((json.loads(r["body"]) for r in receiver.requests), key=lambda b: b["event"])
    assert [b["event"] for b in bodies] == ["case.opened", "case.status_changed"]
    assert bodies[0]["data"] == {"object": "case", "id": case.id}
    assert bodies[1]["data"] == {"object": "case", "id": case.id, "before": {"status": "open"},
                                 "after": {"status": "waiting_on_agency"}}
    assert all(_verify(secret, r["headers"], r["body"]) for r in receiver.requests)


def _old_delivery(session, subscription_id: int, *, days: int, failed: bool = False, owed: bool = False,
                  answer: str = "thanks") -> int:
    """An outbox row answered (or given up on, or still owed) `days` ago."""
    when = utcnow() - timedelta(days=days)
    row = WebhookDelivery(uuid=str(uuid4()), subscription_id=subscription_id, event="message.received", body="{}",
                          attempts=MAX_ATTEMPTS if failed else 1, created_at=when, next_attempt_at=when,
                          last_attempt_at=when, last_status_code=503 if failed else 200, last_response=answer,
                          delivered_at=None if failed or owed else when, failed_at=when if failed else None)
    session.add(row)
    session.flush()
    return row.id


def test_old_deliveries_are_pruned_in_chunks_keeping_what_is_owed_and_each_latest_answer(
        database, session, factory, client, auth, receiver):
    crm, _secret = _subscribe(session, factory, receiver.url)
    admin_id = crm.created_by_id
    assert admin_id is not None
    quiet, _secret = create_subscription(session, actor_id=admin_id, name="Dashboard", events=["case.opened"],
                                         url=receiver.url, secret_key=TEST_SECRET_KEY)
    old_delivered = [_old_delivery(session, crm.id, days=40 + n) for n in range(5)]
    recent_delivered = _old_delivery(session, crm.id, days=10, answer="latest thanks")
    old_failed = [_old_delivery(session, crm.id, days=100 - n, failed=True) for n in range(4)]
    recent_failed = _old_delivery(session, crm.id, days=50, failed=True)
    owed = _old_delivery(session, crm.id, days=200, owed=True)
    only = _old_delivery(session, quiet.id, days=400, answer="the dashboard's only answer")
    session.commit()

    done = prune_deliveries(database, delivered_days=30, failed_days=90, chunk=2)
    assert done == {"delivered": 5, "failed": 4}
    _fresh(session)
    left = set(session.scalars(select(WebhookDelivery.id)))
    assert left == {recent_delivered, recent_failed, owed, only} and not left & {*old_delivered, *old_failed}
    # Each chunk is its own transaction with its own audit event naming the count: 2 + 2 + 1 delivered, 2 + 2 failed.
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "webhook.prune")
                             .order_by(AuditEvent.id)).all()
    assert [(e.object_id, e.after) for e in events] == [
        (str(crm.id), {"delivered": 2, "older_than_days": 30}), (str(crm.id), {"delivered": 2, "older_than_days": 30}),
        (str(crm.id), {"delivered": 1, "older_than_days": 30}), (str(crm.id), {"failed": 2, "older_than_days": 90}),
        (str(crm.id), {"failed": 2, "older_than_days": 90})]
    from correspondence.services.history import describe

    text = " | ".join(str(getattr(line, "text", line)) for line in describe(session, events))
    assert "Mailroom deleted 2 notices delivered more than 30 days ago" in text
    assert "deleted 2 notices given up on more than 90 days ago" in text
    assert prune_deliveries(database, delivered_days=30, failed_days=90) == {"delivered": 0, "failed": 0}

    auth.login("admin")
    page = client.get(f"/admin/webhooks/{quiet.id}").get_data(as_text=True)
    assert "the dashboard&#39;s only answer" in page and "30 days" in page and "90 days" in page
    assert "latest thanks" in client.get(f"/admin/webhooks/{crm.id}").get_data(as_text=True)


def test_pruning_is_a_daily_job_reading_the_settings(job_env, redis, session, factory, monkeypatch, receiver):
    subscription, _secret = _subscribe(session, factory, receiver.url)
    kept = _old_delivery(session, subscription.id, days=5)
    gone = _old_delivery(session, subscription.id, days=8)
    newest = _old_delivery(session, subscription.id, days=1)
    session.commit()
    monkeypatch.setenv("MAILROOM_WEBHOOK_KEEP_DELIVERED_DAYS", "7")
    [daily] = [j for j in PERIODIC_JOBS if j.func == "workers.jobs.run_prune_webhooks"]
    assert daily.every_seconds == 86400 and daily.queue == MAINTENANCE
    assert enqueue_due_periodic(redis, jobs=(daily,))
    assert enqueue_due_periodic(redis, jobs=(daily,)) == []  # one run per day, however many schedulers
    SimpleWorker([get_queue(MAINTENANCE, redis)], connection=redis).work(burst=True)
    _fresh(session)
    assert set(session.scalars(select(WebhookDelivery.id))) == {kept, newest} and gone not in {kept, newest}
