"""Apply to all answers a PERSON once: one letter covering all their messages, honest counts, honest states.

Real SQLite/PostgreSQL, a real Redis for the jobs, a real SMTP server (aiosmtpd) and Chromium for the page.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from config import Settings
from constituents import segments
from correspondence.models import (
    ApplyRun,
    AuditEvent,
    Batch,
    Channel,
    DistrictStatus,
    Message,
    MessageStatus,
    Response,
    ResponseMessage,
    ResponseState,
    Role,
    Topic,
)
from drafting import letters
from drafting.apply import Options, Policy, execute_run, plan, start_run
from drafting.send import send_responses

S = MessageStatus
BODY = "{{ constituent.salutation }}\n\nThank you for writing about {{ message.subject }}.\n\n{{ office.signature }}"
NOW = datetime.now(UTC)


def _approved(session, factory, title="Public lands"):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title=title, body=BODY, actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)
    return v, author


def _batch(session, title="Keep public lands"):
    batch = Batch(title=title, template_text="x")
    session.add(batch)
    session.flush()
    return batch


def _smtp(settings, smtp_server):
    return Settings.from_env({}, **{**settings.__dict__, "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port,
                                    "smtp_security": "none", "smtp_rate_per_second": 0.0})


def _earlier_letter(session, factory, person, *, topic_id=None, batch_id=None, days_ago=5, letter_id=None):
    """A letter this person got before: a message of theirs answered by a sent response."""
    m = factory.message(constituent_id=person.id, from_address=person.primary_email, topic_id=topic_id,
                        batch_id=batch_id, status=S.RESPONDED, received_at=NOW - timedelta(days=days_ago + 1))
    r = Response(message_id=m.id, constituent_id=person.id, letter_id=letter_id, method="email",
                 to_address=person.primary_email, subject="s", body_text="b", state=ResponseState.SENT,
                 email_message_id=f"<earlier-{m.id}@x>", created_at=NOW - timedelta(days=days_ago))
    session.add(r)
    session.flush()
    session.add(ResponseMessage(message_id=m.id, response_id=r.id))
    session.flush()
    return m, r


def test_115_copies_become_one_letter_answered_when_the_server_takes_it(session, factory, database, settings,
                                                                        smtp_server):
    version, author = _approved(session, factory)
    batch = _batch(session)
    writer = factory.constituent(first_name="Sam", last_name="Often", prefix="Mr", email="sam@example.org")
    copies = [factory.message(constituent_id=writer.id, from_address="sam@example.org", batch_id=batch.id,
                              subject=f"Keep public lands {i}", received_at=NOW - timedelta(minutes=200 - i))
              for i in range(115)]
    others = [factory.message(constituent_id=factory.constituent().id, from_address=f"o{i}@example.org",
                              batch_id=batch.id) for i in range(2)]
    session.commit()

    dry = plan(session, [m.id for m in copies + others], version_id=version.id)
    assert (dry.letters, dry.people, dry.messages, dry.covered, dry.email) == (3, 3, 117, 117, 3)
    run = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
    session.commit()
    queued: list[int] = []
    execute_run(database, run.id, settings, enqueue_email=queued.extend)
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()

    mine = list(session.scalars(select(Response).where(Response.constituent_id == writer.id)))
    assert len(mine) == 1 and len(queued) == 3
    letter = mine[0]
    assert letter.message_id == copies[-1].id  # rendered with (and threaded to) the latest message
    assert "Keep public lands 114" in letter.body_text and letter.to_address == "sam@example.org"
    assert letter.letter_id == version.letter_id
    linked = set(session.scalars(select(ResponseMessage.message_id).where(ResponseMessage.response_id == letter.id)))
    assert linked == {m.id for m in copies}
    assert {session.get(Message, m.id).status for m in copies} == {S.ANSWER_QUEUED}
    run = session.get(ApplyRun, run.id)
    assert (run.created_count, run.people, run.covered, run.total) == (3, 3, 117, 117)

    result = send_responses(database, queued, _smtp(settings, smtp_server))
    assert result.sent == 3
    to_sam = [m for m in smtp_server.inbox.messages if m["To"] == "sam@example.org"]
    assert len(to_sam) == 1  # one email, not 115
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()
    assert {session.get(Message, m.id).status for m in copies} == {S.RESPONDED}
    events = session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "message.responded", AuditEvent.object_id.in_([str(m.id) for m in copies])))
    assert events == 115


def _every_category(session, factory):
    """A batch holding one example of every way a message can be left out, plus people to answer."""
    version, author = _approved(session, factory)
    other_version, _ = _approved(session, factory, title="Earlier letter")
    batch = _batch(session)
    health = session.scalar(select(Topic).where(Topic.name == "Health"))
    made: dict[str, list[Message]] = {}

    def add(kind, person=None, **kw):
        person = person or factory.constituent()
        kw.setdefault("from_address", person.primary_email)
        m = factory.message(constituent_id=person.id, batch_id=batch.id, **kw)
        made.setdefault(kind, []).append(m)
        return m

    three = factory.constituent(first_name="Tri", last_name="Ple")
    for i in range(3):
        add("letter", three, received_at=NOW - timedelta(hours=3 - i))
    add("letter")
    add("print", factory.constituent(address1="1 Main St", email=None), channel=Channel.POSTAL, from_address=None)
    answered = factory.constituent()
    m = add("already_answered", answered)
    r = Response(message_id=m.id, constituent_id=answered.id, method="email", subject="s", body_text="b",
                 state=ResponseState.SENT, email_message_id="<aa@x>")
    session.add(r)
    session.flush()
    session.add(ResponseMessage(message_id=m.id, response_id=r.id))
    for status in (S.RESPONDED, S.CLOSED, S.ARCHIVED, S.QUARANTINED, S.ANSWER_QUEUED):
        add(status.value, status=status)
    got_it = factory.constituent()
    _earlier_letter(session, factory, got_it, letter_id=version.letter_id, days_ago=40)
    add("already_sent", got_it)
    campaign = factory.constituent()
    _earlier_letter(session, factory, campaign, batch_id=batch.id, letter_id=other_version.letter_id, days_ago=60)
    add("answered_campaign", campaign)
    frequent = factory.constituent()
    _earlier_letter(session, factory, frequent, topic_id=health.id, letter_id=other_version.letter_id, days_ago=5)
    add("frequent_writer", frequent, topic_id=health.id)
    add("out_of_district", factory.constituent(district_status=DistrictStatus.OUT_OF_DISTRICT))
    add("district_unknown", factory.constituent(district_status=DistrictStatus.UNKNOWN))
    add("personal_additions", body_text="Save the lands. My grandfather hunted there.",
        batch_additions=["My grandfather hunted there."])
    add("no_address", factory.constituent(email=None), from_address=None, channel=Channel.PHONE)
    session.commit()
    return version, author, batch, made


def test_dry_run_is_exactly_what_the_run_does_for_every_category(session, factory, database, settings):
    version, author, batch, made = _every_category(session, factory)
    options = Options(district="in_district", skip_answered_campaign=True, leave_additions=True)
    policy = Policy(frequent_writer_days=30)
    cfg = Settings.from_env({}, **{**settings.__dict__, "frequent_writer_days": 30})
    ids = list(session.scalars(select(Message.id).where(Message.batch_id == batch.id)))
    dry = plan(session, ids, version_id=version.id, options=options, policy=policy)
    expected = {k: len(v) for k, v in made.items() if k not in ("letter", "print")}
    expected["already_answered"] += 1  # the campaign writer's earlier, answered message is in the batch too
    assert dry.counts == expected
    assert (dry.letters, dry.email, dry.print, dry.covered) == (3, 2, 1, 5)
    assert dry.closed == 3  # already sent, answered on the campaign, frequent writer

    run = start_run(session, version.id, batch_id=batch.id, actor_id=author.id, options=options)
    session.commit()
    execute_run(database, run.id, cfg)
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()
    run = session.get(ApplyRun, run.id)
    assert run.counts == dry.counts
    assert (run.created_count, run.covered, run.closed, run.people) == (dry.letters, dry.covered, dry.closed,
                                                                        dry.people)
    assert run.options == options.as_dict()

    def status(kind):
        return [session.get(Message, m.id) for m in made[kind]]

    assert {m.status for m in status("letter") + status("print")} == {S.ANSWER_QUEUED}
    for kind in ("already_sent", "answered_campaign", "frequent_writer"):
        assert [m.status for m in status(kind)] == [S.CLOSED]
    assert status("already_sent")[0].status_reason.startswith("already sent this letter on ")
    assert status("answered_campaign")[0].status_reason.startswith("already answered on this campaign on ")
    reason = status("frequent_writer")[0].status_reason
    assert reason.startswith("frequent writer: answered on Health on ")
    for kind in ("out_of_district", "district_unknown", "personal_additions", "no_address"):
        assert [m.status for m in status(kind)] == [S.NEW]  # left open, untouched
    for kind in ("responded", "closed", "archived", "quarantined", "answer_queued"):
        assert [m.status.value for m in status(kind)] == [kind]
    closed_events = session.scalars(select(AuditEvent).where(
        AuditEvent.action == "message.close", AuditEvent.object_id == str(made["already_sent"][0].id))).all()
    assert len(closed_events) == 1 and closed_events[0].detail.startswith("already sent this letter")

    # Without the options and the policy, the same people are answered, not closed or left.
    more = plan(session, ids, version_id=version.id)
    assert "out_of_district" not in more.counts and "personal_additions" not in more.counts
    assert more.with_additions == 1 and more.letters == 3  # out, unknown, additions (frequent is closed now)


def test_a_second_run_creates_nothing_and_its_dry_run_says_so(session, factory, database, settings):
    version, author = _approved(session, factory)
    batch = _batch(session)
    person = factory.constituent()
    for _ in range(4):
        factory.message(constituent_id=person.id, from_address=person.primary_email, batch_id=batch.id)
    factory.message(batch_id=batch.id, from_address="solo@example.org")  # no record: keyed by address
    factory.message(batch_id=batch.id, from_address="SOLO@example.org ")
    session.commit()
    first = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
    session.commit()
    execute_run(database, first.id, settings)
    assert session.scalar(select(func.count()).select_from(Response)) == 2  # two people, six messages

    again = plan(session, [m.id for m in session.scalars(select(Message).where(Message.batch_id == batch.id))],
                 version_id=version.id)
    assert (again.letters, again.counts) == (0, {"already_answered": 6})
    second = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
    session.commit()
    execute_run(database, second.id, settings)
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Response)) == 2
    assert session.get(ApplyRun, second.id).counts == {"already_answered": 6}

    # A new message from the same person: the letter they already have is not sent again.
    late = factory.message(constituent_id=person.id, from_address=person.primary_email, batch_id=batch.id)
    session.commit()
    third = start_run(session, version.id, message_ids=[late.id], actor_id=author.id)
    session.commit()
    execute_run(database, third.id, settings)
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Response)) == 2
    assert session.get(Message, late.id).status == S.CLOSED


def test_the_database_refuses_the_same_letter_to_the_same_person_twice(session, factory):
    version, _author = _approved(session, factory)
    person = factory.constituent()
    a, b = factory.message(constituent_id=person.id), factory.message(constituent_id=person.id)
    session.add(Response(message_id=a.id, constituent_id=person.id, letter_id=version.letter_id, method="email",
                         subject="s", body_text="b", email_message_id="<one@x>"))
    session.flush()
    session.add(Response(message_id=b.id, constituent_id=person.id, letter_id=version.letter_id, method="email",
                         subject="s", body_text="b", email_message_id="<two@x>"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_a_run_that_dies_after_a_chunk_resumes_where_it_stopped(session, factory, database, settings):
    version, author = _approved(session, factory)
    batch = _batch(session)
    people = [factory.constituent() for _ in range(5)]
    for p in people:
        for _ in range(2):
            factory.message(constituent_id=p.id, from_address=p.primary_email, batch_id=batch.id)
    session.commit()
    dry = plan(session, [m.id for m in session.scalars(select(Message).where(Message.batch_id == batch.id))],
               version_id=version.id)
    run = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
    session.commit()

    def redis_gone(ids):
        raise ConnectionError("the worker lost Redis after committing its first chunk")

    with pytest.raises(ConnectionError):
        execute_run(database, run.id, settings, enqueue_email=redis_gone, chunk_people=2)
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()
    stopped = session.get(ApplyRun, run.id)
    assert (stopped.state, stopped.people_done, stopped.created_count) == ("running", 2, 2)

    queued: list[int] = []
    execute_run(database, run.id, settings, enqueue_email=queued.extend, chunk_people=2)
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()
    done = session.get(ApplyRun, run.id)
    assert (done.state, done.people_done, done.created_count, done.covered) == ("done", 5, 5, 10)
    assert done.created_count == dry.letters and done.done == 10
    assert session.scalar(select(func.count()).select_from(Response)) == 5 and len(queued) == 3


def test_a_segment_follow_up_never_sends_a_person_a_letter_they_got(session, factory, database, settings):
    version, author = _approved(session, factory)
    health = session.scalar(select(Topic).where(Topic.name == "Health"))
    people = [factory.constituent() for _ in range(3)]
    for p in people:
        factory.message(constituent_id=p.id, topic_id=health.id, from_address=p.primary_email)
    session.commit()
    first = segments.save_segment(session, "Health writers", segments.SegmentFilter(topic_ids=(health.id,)),
                                  actor_id=author.id)
    ids = segments.follow_up_messages(session, first, version.id, "News", actor_id=author.id)
    run = start_run(session, version.id, message_ids=ids, actor_id=author.id)
    session.commit()
    execute_run(database, run.id, settings)
    assert session.scalar(select(func.count()).select_from(Response)) == 3

    # A second segment that overlaps the first, followed up with the same letter: only the new person gets it.
    newcomer = factory.constituent()
    factory.message(constituent_id=newcomer.id, topic_id=health.id, from_address=newcomer.primary_email)
    second = segments.save_segment(session, "Health writers again", segments.SegmentFilter(
        topic_ids=(health.id,)), actor_id=author.id)
    ids = segments.follow_up_messages(session, second, version.id, "News", actor_id=author.id)
    dry = plan(session, ids, version_id=version.id)
    assert (dry.letters, dry.counts) == (1, {"already_sent": 3})
    run = start_run(session, version.id, message_ids=ids, actor_id=author.id)
    session.commit()
    execute_run(database, run.id, settings)
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()
    answers = list(session.scalars(select(Response.constituent_id)))
    assert sorted(answers) == sorted([p.id for p in people] + [newcomer.id])


def test_frequent_writer_policy_off_by_default_and_on_by_setting(session, factory, database, settings):
    version, author = _approved(session, factory)
    other, _ = _approved(session, factory, title="Other")
    health = session.scalar(select(Topic).where(Topic.name == "Health"))
    person = factory.constituent()
    _earlier_letter(session, factory, person, topic_id=health.id, letter_id=other.letter_id, days_ago=10)
    new = factory.message(constituent_id=person.id, from_address=person.primary_email, topic_id=health.id)
    session.commit()
    assert plan(session, [new.id], version_id=version.id).letters == 1  # policy off: answered
    assert plan(session, [new.id], version_id=version.id, policy=Policy(7)).letters == 1  # ten days ago > 7
    dry = plan(session, [new.id], version_id=version.id, policy=Policy(14))
    assert (dry.letters, dry.counts) == (0, {"frequent_writer": 1})
    assert Settings.from_env({"MAILROOM_FREQUENT_WRITER_DAYS": "14", "SECRET_KEY": settings.secret_key,
                              "DATABASE_URL": settings.database_url}).frequent_writer_days == 14


def test_no_smtp_leaves_letters_queued_logs_one_line_per_sweep_and_shows_a_banner(
        client, auth, session, factory, database, job_env, redis, caplog, monkeypatch):
    from workers import jobs

    monkeypatch.setenv("MAILROOM_SMTP_HOST", "")
    monkeypatch.setenv("MAILROOM_SWEEP_AFTER_MINUTES", "0")
    version, author = _approved(session, factory)
    batch = _batch(session)
    for i in range(3):
        factory.message(constituent_id=factory.constituent().id, from_address=f"w{i}@example.org", batch_id=batch.id)
    run = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
    session.commit()
    assert jobs.run_apply(run.id)["letters"] == 3
    ids = list(session.scalars(select(Response.id)))
    assert jobs.run_send(ids) == {"sent": 0, "waiting": 3}  # no exception, nothing retried
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()
    assert {r.state for r in session.scalars(select(Response))} == {ResponseState.QUEUED}
    assert {m.status for m in session.scalars(select(Message))} == {S.ANSWER_QUEUED}

    caplog.clear()
    with caplog.at_level(logging.INFO):
        jobs.run_sweep()
    lines = [r for r in caplog.records if "email sending is not set up" in r.getMessage()]
    assert len(lines) == 1 and "3 letters waiting" in lines[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    from workers.queues import OUTBOUND, get_queue

    assert get_queue(OUTBOUND, redis).count == 0  # nothing re-enqueued to fail again

    session.rollback()
    auth.login("correspondent")
    assert "Email sending is not set up" not in client.get("/inbox/").get_data(as_text=True)
    run_page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "Email sending is not set up: 3 letters waiting" in run_page
    dry_page = client.get(f"/batches/{batch.id}/answer").get_data(as_text=True)
    assert "Email sending is not set up: 3 letters waiting" in dry_page
    client.post("/logout", data={"csrf_token": auth.csrf("/inbox/")})
    session.rollback()  # the pages wrote (sign-in times): leave the old snapshot before writing
    auth.login("admin")
    page = client.get("/inbox/")  # any page, for an admin
    assert page.status_code == 200 and "Email sending is not set up: 3 letters waiting" in page.get_data(as_text=True)
    dashboard = client.get("/dashboard/?fresh=1").get_data(as_text=True)
    assert 'id="answer-queued-count">3<' in dashboard and 'id="open-total">0<' in dashboard  # not open work
    assert dashboard.count("answer queued</a>") == 1  # one tile, not a second one among the statuses


@pytest.mark.browser
def test_dry_run_options_recount_and_go_with_the_confirm(live_server, browser, factory, session, tmp_path):
    from tests.test_browser import _sign_in

    version, _author = _approved(session, factory)
    batch = _batch(session)
    sender = factory.staffer(role=Role.CORRESPONDENT)
    twice = factory.constituent()
    for _ in range(2):
        factory.message(constituent_id=twice.id, from_address=twice.primary_email, batch_id=batch.id)
    factory.message(constituent_id=factory.constituent(district_status=DistrictStatus.OUT_OF_DISTRICT).id,
                    from_address="away@example.org", batch_id=batch.id)
    factory.message(constituent_id=factory.constituent().id, from_address="added@example.org", batch_id=batch.id,
                    batch_additions=["My own words."])
    batch.member_count = 4
    session.commit()

    page = _sign_in(browser, live_server, sender, factory.PASSWORD)
    page.goto(f"{live_server}/batches/{batch.id}/answer?version_id={version.id}")
    assert page.inner_text("#will-letters") == "3" and page.inner_text("#will-cover") == "4"
    assert page.inner_text("#with-additions") == "1"
    page.check("#opt-in-district")
    page.check("#opt-leave-additions")
    page.click("#recount")
    page.wait_for_url("**district=in_district**")
    assert page.inner_text("#will-letters") == "1"
    assert page.inner_text("#skip-out_of_district") == "1" and page.inner_text("#skip-personal_additions") == "1"
    assert page.is_checked("#opt-leave-additions")
    shots = Path(os.environ.get("MAILROOM_SCREENSHOT_DIR", tmp_path))
    page.screenshot(path=str(shots / "dry-run.png"), full_page=True)
    page.check("#confirm-mismatch")  # the mail has no topic coded: no letter fits it
    page.click("#confirm-send")
    page.wait_for_url("**/runs/**")
    session.rollback()  # a fresh snapshot: the job committed in its own sessions
    session.expire_all()
    run = session.scalar(select(ApplyRun).order_by(ApplyRun.id.desc()))
    assert run.options == {"district": "in_district", "skip_answered_campaign": False, "leave_additions": True}
