"""A real Postfix bounce: the letter goes out through a private Postfix to a domain that does not exist,
Postfix writes the DSN to the letter's signed return path, and the bounce intake marks the address invalid."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from config import Settings
from correspondence.db import Database
from correspondence.models import Bounce, BounceKind, Response, ResponseState, Suppression, SuppressionReason
from drafting import letters
from drafting.apply import execute_run, start_run
from drafting.send import send_responses
from outbound.bounces import BouncePolicy, import_reports
from tests.conftest import need
from tests.postfix import BOUNCE_DOMAIN, PrivatePostfix, available
from tests.smtp import free_port


@pytest.fixture
def postfix():
    reason = available()
    need(reason is None, reason or "")
    server = PrivatePostfix(free_port()).start()
    yield server
    server.stop()


def test_a_real_postfix_bounce_marks_the_address_invalid(session, factory, database: Database,
                                                         settings: Settings, postfix):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title="Thanks", body="Thank you, {{ constituent.first_name }}.",
                              actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)
    gone = factory.constituent(first_name="Gone", email="nobody@no-such-domain.invalid")
    message = factory.message(constituent_id=gone.id, from_address="nobody@no-such-domain.invalid")
    run = start_run(session, v.id, message_ids=[message.id], actor_id=author.id)
    session.commit()
    queued: list[int] = []
    execute_run(database, run.id, settings, enqueue_email=queued.extend)
    cfg = Settings.from_env({}, **{**settings.__dict__, "smtp_host": "127.0.0.1", "smtp_port": postfix.port,
                                   "smtp_security": "none", "smtp_rate_per_second": 0.0,
                                   "mail_from": f"office@{BOUNCE_DOMAIN}"})
    assert send_responses(database, queued, cfg).sent == 1  # Postfix took it (250); the bounce comes later

    reports = postfix.wait_for_bounces(1)
    assert b"multipart/report" in reports[0] and b"delivery-status" in reports[0]
    summary = import_reports(database, ((f"postfix-{i}", raw) for i, raw in enumerate(reports)),
                             source="test:postfix", policy=BouncePolicy(settings.secret_key))
    assert (summary.applied, summary.quarantined, summary.failed) == (1, 0, 0), summary.problems
    session.rollback()
    bounce = session.scalar(select(Bounce))
    assert (bounce.kind, bounce.response_id) == (BounceKind.HARD, queued[0])
    assert bounce.status and bounce.status.startswith("5.")
    row = session.scalar(select(Suppression).where(Suppression.address == "nobody@no-such-domain.invalid"))
    assert row.reason == SuppressionReason.INVALID
    assert session.get(Response, queued[0]).state == ResponseState.SENT  # the letter did leave; its address is bad
    # The same mailbox read again (a second poll) changes nothing.
    again = import_reports(database, (("again", raw) for raw in reports), source="test:postfix",
                           policy=BouncePolicy(settings.secret_key))
    assert (again.duplicate, again.applied) == (1, 0)
