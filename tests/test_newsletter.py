"""Newsletters: an approved letter sent to a list (or a segment) through the apply-to-all run, with the web
version and the unsubscribe link; exempt from the mass-mail threshold when sent to opted-in subscribers."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from constituents import segments
from correspondence.errors import PermissionDenied
from correspondence.models import (
    ApplyRun,
    Message,
    Newsletter,
    Response,
    ResponseState,
    Role,
    Subscription,
    SubscriptionSource,
    SubscriptionStatus,
    SuppressionReason,
)
from drafting import letters
from drafting.apply import execute_run
from drafting.render import Budget, Office
from drafting.send import send_responses
from outbound import franking, newsletters, subscriptions
from outbound.suppression import suppress
from outbound.tokens import unsubscribe_token
from tests.conftest import TEST_SECRET_KEY
from tests.test_deliverability import _smtp
from workers.queues import OUTBOUND, get_queue

BODY = "{{ constituent.salutation }}\n\nHere is the news from the district this month.\n\n{{ office.signature }}"
OFFICE = Office(name="Office of Rep. Doe", member_name="Rep. Doe", signature="Rep. Doe", letterhead="")
BUDGET = Budget(max_bytes=100_000, seconds=2.0)
STRICT = franking.Rules(threshold=1)  # two pieces would be "mass" if they counted


def _approved(session, factory, title="District news, May"):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title=title, body=BODY, actor_id=author.id)
    v.subject = "News from the district"
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)
    return v, boss


def _subscribers(session, factory, boss, *addresses):
    chosen = subscriptions.create_list(session, "District update", actor_id=boss.id)
    for address in addresses:
        subscriptions.subscribe(session, chosen.id, address, source=SubscriptionSource.STAFF,
                                legal_basis="asked at the town hall", actor_id=boss.id)
    return chosen


def _send(session, database, settings, version, boss, *, list_id=None, segment_id=None, rules=STRICT,
          today=None):
    """start → prepare (the newsletter job) → the apply run → its queued emails' ids."""
    done = newsletters.start_newsletter(session, version.id, newsletters.Audience(list_id=list_id,
                                                                                 segment_id=segment_id),
                                        actor_id=boss.id, secret_key=TEST_SECRET_KEY, office=OFFICE,
                                        budget=BUDGET, rules=rules, today=today)
    assert [e.job for e in done.effects] == ["newsletter"]
    prepared = newsletters.prepare(session, done.value.id, rules=rules, today=today)
    assert [e.job for e in prepared.effects] == ["apply_run"]
    session.commit()
    queued: list[int] = []
    run_id = prepared.value.run_id
    assert run_id is not None
    execute_run(database, run_id, settings, enqueue_email=queued.extend)
    session.rollback()
    return session.get(Newsletter, done.value.id), queued


def test_a_newsletter_to_subscribers_is_exempt_carries_its_links_and_skips_suppressed_addresses(
        session, factory, database, settings, smtp_server):
    version, boss = _approved(session, factory)
    factory.constituent(first_name="Ana", email="ana@example.org")
    chosen = _subscribers(session, factory, boss, "ana@example.org", "ben@example.org", "gone@example.org")
    subscriptions.sign_up(session, chosen.id, "pending@example.org", where="test")  # not confirmed: left out
    suppress(session, "gone@example.org", SuppressionReason.INVALID, detail="5.1.1", actor_id=None)
    # An election blackout today: unsolicited mail could not start, a newsletter to subscribers can.
    today = date(2026, 10, 20)
    franking.add_election(session, kind="general", election_date=today + timedelta(days=14), actor_id=boss.id)
    session.commit()
    [summary] = subscriptions.list_summaries(session)
    assert (summary.subscribed, summary.suppressed, summary.pending, summary.reachable) == (3, 1, 1, 2)
    newsletter, queued = _send(session, database, settings, version, boss, list_id=chosen.id, today=today)
    assert newsletter.recipients == 2
    run = session.get(ApplyRun, newsletter.run_id)
    assert run.counts == {"suppressed_invalid": 1} and run.created_count == 2
    assert len(queued) == 2
    pieces = list(session.scalars(select(Message).where(Message.source.like("newsletter-subscribers:%"))))
    assert {m.from_address for m in pieces} == {"ana@example.org", "ben@example.org", "gone@example.org"}
    # Exempt: the guard counts none of these pieces toward the threshold.
    assert franking.unsolicited_pieces(session, [m.id for m in pieces], letter_id=None) == 0
    assert franking.classify_messages(pieces) == franking.NEWSLETTER
    verdict = franking.check(session, letter_id=version.letter_id, version_id=version.id, pieces=0, rules=STRICT,
                             today=today)
    assert verdict.earlier == 0

    cfg = _smtp(settings, smtp_server)
    result = send_responses(database, queued, cfg)
    assert (result.sent, result.failed) == (2, 0)
    by_to = {m["To"]: m for m in smtp_server.inbox.messages}
    assert set(by_to) == {"ana@example.org", "ben@example.org"}
    ana = by_to["ana@example.org"]
    response_id = session.scalar(select(Response.id).where(Response.to_address == "ana@example.org"))
    token = unsubscribe_token(response_id, secret_key=TEST_SECRET_KEY)
    assert ana["List-Unsubscribe"] == f"<https://mail.house.example/u/{token}>"
    assert ana["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = ana.get_body(("plain",)).get_content()
    web = newsletters.web_token(newsletter.id, secret_key=TEST_SECRET_KEY)
    assert f"https://mail.house.example/n/{web}" in text and f"https://mail.house.example/u/{token}" in text
    assert "Dear Ana" in text and "Here is the news" in text
    assert f"/n/{web}" in ana.get_body(("html",)).get_content()


def test_a_newsletter_to_a_segment_is_an_unsolicited_mass_mailing(session, factory, database, settings):
    version, boss = _approved(session, factory)
    for name in ("Cy", "Di"):
        factory.constituent(first_name=name, email=f"{name.lower()}@example.org", zip5="99901")
    segment = segments.save_segment(session, "Far away", segments.parse_filter({"zips": "99901"}), actor_id=boss.id)
    session.commit()
    with pytest.raises(PermissionDenied, match="more than the 1 allowed"):
        newsletters.start_newsletter(session, version.id, newsletters.Audience(segment_id=segment.id),
                                     actor_id=boss.id, secret_key=TEST_SECRET_KEY, office=OFFICE, budget=BUDGET,
                                     rules=STRICT)
    session.rollback()
    # Under a threshold that allows it, it goes; its pieces count as unsolicited.
    newsletter, queued = _send(session, database, settings, version, boss, segment_id=segment.id,
                               rules=franking.Rules(threshold=499))
    pieces = list(session.scalars(select(Message).where(Message.source.like("newsletter-segment:%"))))
    assert len(queued) == 2 and franking.classify_messages(pieces) == franking.UNSOLICITED
    assert newsletter.segment_id == segment.id


def test_one_click_unsubscribe_from_a_newsletter_takes_them_off_the_list_and_the_next_send_skips_them(
        client, session, factory, database, settings):
    version, boss = _approved(session, factory)
    chosen = _subscribers(session, factory, boss, "ana@example.org", "ben@example.org")
    session.commit()
    _first, queued = _send(session, database, settings, version, boss, list_id=chosen.id)
    ben = session.scalar(select(Response).where(Response.to_address == "ben@example.org"))
    token = unsubscribe_token(ben.id, secret_key=TEST_SECRET_KEY)
    done = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "no more “District update”" in done.get_data(as_text=True)
    session.rollback()
    sub = session.scalar(select(Subscription).where(Subscription.address == "ben@example.org"))
    assert sub.status == SubscriptionStatus.UNSUBSCRIBED
    # Off this list, not suppressed for everything: the office may still answer Ben's own letters.
    from correspondence.models import Suppression

    assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    second, _v = _approved(session, factory, title="District news, June")
    session.commit()
    _n, queued = _send(session, database, settings, second, boss, list_id=chosen.id)
    assert len(queued) == 1
    assert session.get(Response, queued[0]).to_address == "ana@example.org"


def test_the_web_version_is_public_by_its_token_and_shows_no_ones_details(client, session, factory, database,
                                                                          settings):
    version, boss = _approved(session, factory)
    factory.constituent(first_name="Ana", last_name="Lopez", email="ana@example.org")
    chosen = _subscribers(session, factory, boss, "ana@example.org")
    session.commit()
    newsletter, _q = _send(session, database, settings, version, boss, list_id=chosen.id)
    page = client.get(f"/n/{newsletter.web_token}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Here is the news" in text and "Dear Friend," in text
    assert "Lopez" not in text and "ana@example.org" not in text
    assert client.get(f"/n/n{newsletter.id}-{'0' * 24}").status_code == 404


def test_staff_send_a_newsletter_from_the_page_and_the_default_workers_deliver_it(
        client, auth, session, factory, redis, job_env, smtp_server, monkeypatch):
    version, boss = _approved(session, factory)
    chosen = _subscribers(session, factory, boss, "ana@example.org", "ben@example.org")
    subscriptions.sign_up(session, chosen.id, "pending@example.org", where="test")  # never confirmed
    session.commit()
    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    monkeypatch.setenv("MAILROOM_SMTP_RATE_PER_SECOND", "0")
    auth.login(Role.CORRESPONDENT)
    assert client.post("/subscriptions/newsletters", data={"csrf_token": auth.csrf("/subscriptions/")}) \
        .status_code == 403
    client.post("/logout", data={"csrf_token": auth.csrf("/subscriptions/")})
    auth.login(Role.SUPERVISOR)
    page = client.get("/subscriptions/").get_data(as_text=True)
    assert 'id="send-newsletter"' in page and "District news, May" in page
    choice = {"csrf_token": auth.csrf("/subscriptions/"), "version_id": str(version.id),
              "audience": f"list:{chosen.id}"}
    check = client.post("/subscriptions/newsletters", data=choice).get_data(as_text=True)
    # The dry run first: nothing is made until the person confirms.
    assert 'id="check-recipients">2<' in check and 'id="check-exempt"' in check and "Send to 2 people" in check
    assert "<b>1</b> signed up but never confirmed" in check
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Newsletter)) == 0
    done = client.post("/subscriptions/newsletters", data={**choice, "confirmed": "yes"}, follow_redirects=True)
    assert "on its way to 2 people" in done.get_data(as_text=True)
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    assert sorted(m["To"] for m in smtp_server.inbox.messages) == ["ana@example.org", "ben@example.org"]
    session.rollback()
    assert set(session.scalars(select(Response.state))) == {ResponseState.SENT}
    listed = client.get("/subscriptions/").get_data(as_text=True)
    assert re.search(r"Finished: 2 letters", listed)


def test_the_newsletter_job_commits_its_pieces_page_by_page_and_a_rerun_makes_only_the_rest(
        session, factory, database):
    """At 100,000 subscribers one transaction held SQLite's write lock past every other writer's 30 s wait;
    the job commits each page of pieces, and a job that died half-way makes only the pieces still missing."""
    version, boss = _approved(session, factory)
    chosen = _subscribers(session, factory, boss, "first@example.org")
    session.add_all(Subscription(list_id=chosen.id, address=f"reader{i}@example.org",
                                 status=SubscriptionStatus.SUBSCRIBED, source=SubscriptionSource.IMPORT,
                                 legal_basis="CSV: sign-in sheet")
                    for i in range(2_000))
    done = newsletters.start_newsletter(session, version.id, newsletters.Audience(list_id=chosen.id),
                                        actor_id=boss.id, secret_key=TEST_SECRET_KEY, office=OFFICE,
                                        budget=BUDGET, rules=STRICT)
    session.commit()
    prefix = f"newsletter:{done.value.id}:%"
    pieces = select(func.count()).select_from(Message).where(Message.idempotency_key.like(prefix))
    seen_elsewhere: list[int] = []

    def checkpoint_then_die() -> None:
        session.commit()
        with database.unit_of_work() as other:  # what any other connection sees: committed pages only
            seen_elsewhere.append(other.scalar(pieces))
        raise RuntimeError("the worker died here")

    with pytest.raises(RuntimeError, match="died"):
        newsletters.prepare(session, done.value.id, rules=STRICT, checkpoint=checkpoint_then_die)
    session.rollback()
    assert seen_elsewhere == [2_000]  # the first page (2,000 addresses) was committed before the crash
    assert session.get(Newsletter, done.value.id).run_id is None

    commits: list[int] = []

    def checkpoint() -> None:
        session.commit()
        commits.append(1)

    again = newsletters.prepare(session, done.value.id, rules=STRICT, checkpoint=checkpoint)
    session.commit()
    assert len(commits) == 2  # one page reused, one page made
    assert session.scalar(pieces) == 2_001  # nobody twice, nobody left out
    run = session.get(ApplyRun, again.value.run_id)
    assert run.total == 2_001 and len(set(run.message_ids)) == 2_001


def test_someone_who_leaves_the_list_while_the_newsletter_is_sending_gets_nothing_more_from_it(
        client, session, factory, database, settings, smtp_server):
    version, boss = _approved(session, factory)
    chosen = _subscribers(session, factory, boss, "ana@example.org", "ben@example.org")
    earlier, _v = _approved(session, factory, title="District news, April")
    session.commit()
    _april, april_letters = _send(session, database, settings, earlier, boss, list_id=chosen.id)
    _may, queued = _send(session, database, settings, version, boss, list_id=chosen.id)
    assert len(queued) == 2  # both letters made and queued for the send jobs
    # Before the send job reaches them, Ben clicks "unsubscribe" in April's newsletter: off the list only.
    ben_april = session.scalar(select(Response.id).where(Response.id.in_(april_letters),
                                                         Response.to_address == "ben@example.org"))
    assert client.post(f"/u/{unsubscribe_token(ben_april, secret_key=TEST_SECRET_KEY)}").status_code == 200
    session.rollback()

    result = send_responses(database, queued, _smtp(settings, smtp_server))
    assert (result.sent, result.failed) == (1, 1)
    assert [m["To"] for m in smtp_server.inbox.messages] == ["ana@example.org"]
    ben_may = session.scalar(select(Response).where(Response.id.in_(queued), Response.to_address == "ben@example.org"))
    assert ben_may.state == ResponseState.FAILED and ben_may.last_error == "not sent: the address is unsubscribed"


def test_the_check_before_a_newsletter_to_a_segment_shows_the_mass_mail_verdict_and_a_blackout_stops_it(
        client, auth, session, factory, settings):
    version, boss = _approved(session, factory)
    for name in ("Cy", "Di"):
        factory.constituent(first_name=name, email=f"{name.lower()}@example.org", zip5="99902")
    factory.constituent(first_name="Ed", zip5="99902", email=None)  # no email address: a newsletter is not printed
    segment = segments.save_segment(session, "Far away", segments.parse_filter({"zips": "99902"}), actor_id=boss.id)
    franking.add_election(session, kind="general", election_date=franking.Rules.of(settings).today()
                          + timedelta(days=20), actor_id=boss.id)
    session.commit()
    auth.login(Role.SUPERVISOR)
    check = client.post("/subscriptions/newsletters", data={
        "csrf_token": auth.csrf("/subscriptions/"), "version_id": str(version.id),
        "audience": f"segment:{segment.id}"}).get_data(as_text=True)
    assert 'id="check-recipients">2<' in check and "no email address" in check
    assert 'id="franking-blackout"' in check and 'id="check-problems"' in check
    assert 'id="confirm-newsletter"' not in check
