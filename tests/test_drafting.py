"""Drafting: merge fields in the sandbox, the approval state machine, apply to all, SMTP and print."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from config import Settings
from correspondence.errors import PermissionDenied, ValidationFailed
from correspondence.models import (
    ApplyRun,
    AuditEvent,
    Batch,
    Channel,
    Constituent,
    MessageStatus,
    Response,
    ResponseMessage,
    ResponseState,
    VersionState,
)
from drafting import letters
from drafting.apply import execute_run, office_of, plan, start_run
from drafting.printing import letters_pdf, mail_house_csv, print_responses
from drafting.render import LetterError, address_block, context, render, salutation, validate
from drafting.send import send_responses
from tests.conftest import TEST_SECRET_KEY

BODY = ("{{ constituent.salutation }}\n\nThank you for writing to me about {{ message.subject }}. "
        "I support clean water for every family in {{ constituent.city }}.\n\n{{ office.signature }}")


def _office():
    return office_of(Settings.from_env({"SECRET_KEY": TEST_SECRET_KEY}, instance_dir="/tmp/unused"))


def test_salutation_and_address_fall_back_sensibly():
    assert salutation(Constituent(prefix="Ms", first_name="Ana", last_name="Lopez")) == "Dear Ms. Lopez,"
    assert salutation(Constituent(prefix="Dr.", last_name="Okafor")) == "Dear Dr. Okafor,"
    assert salutation(Constituent(first_name="Ana", last_name="Lopez")) == "Dear Ana Lopez,"
    assert salutation(Constituent(first_name="Ana")) == "Dear Ana,"
    assert salutation(Constituent()) == "Dear Friend,"
    assert salutation(None) == "Dear Friend,"
    c = Constituent(first_name="Ana", last_name="Lopez", address1="12 Elm St", city="Columbus", state="OH",
                    zip5="43215", zip4="1234")
    assert address_block(c) == "Ana Lopez\n12 Elm St\nColumbus, OH 43215-1234"


@pytest.mark.parametrize("attack", [
    "{{ ''.__class__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ constituent.__class__ }}",
    "{{ cycler.__init__.__globals__ }}", "{{ self }}", "{{ config }}", "{{ lipsum.__globals__ }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ constituent.first_name.upper() }}", "{{ constituent['first_name'] }}", "{{ request.environ }}",
])
def test_template_injection_is_refused(attack):
    assert validate(attack), attack
    with pytest.raises(LetterError):
        render(attack, context(None, None, _office()))


def test_validation_names_unknown_fields_and_syntax_errors():
    assert validate("{{ constituent.shoe_size }}") == ["line 1: 'constituent.shoe_size' is not a merge field"]
    assert validate("{{ constituent.first_name ") and "line 1" in validate("{{ constituent.first_name ")[0]
    assert validate(BODY) == []
    text = render(BODY, context(None, Constituent(prefix="Mr", last_name="Reyes", city="Dublin"), _office()))
    assert text.startswith("Dear Mr. Reyes,") and "every family in Dublin" in text


def test_review_and_approval_rules(session, factory):
    author, other = factory.staffer(role="correspondent"), factory.staffer(role="correspondent")
    boss, boss2 = factory.staffer(role="supervisor"), factory.staffer(role="supervisor")
    v1 = letters.create_letter(session, title="Clean water", body=BODY, actor_id=author.id)
    with pytest.raises(ValidationFailed, match="not a merge field"):
        letters.edit_draft(session, v1.id, body="{{ constituent.ssn }}", subject="x", actor_id=author.id)
    with pytest.raises(PermissionDenied):
        letters.edit_draft(session, v1.id, body=BODY, subject="x", actor_id=other.id)
    with pytest.raises(ValidationFailed, match="draft cannot become approved"):
        letters.approve(session, v1.id, actor_id=boss.id)
    letters.submit(session, v1.id, actor_id=author.id)
    with pytest.raises(PermissionDenied, match="only a supervisor"):
        letters.approve(session, v1.id, actor_id=other.id)
    letters.request_changes(session, v1.id, comment="Mention the bill number.", paragraph=2, actor_id=boss.id)
    assert v1.state == VersionState.CHANGES_REQUESTED
    v2 = letters.new_version(session, v1.id, actor_id=author.id)
    letters.edit_draft(session, v2.id, body=BODY.replace("clean water", "clean water (H.R. 1234)"),
                       subject=v2.subject, actor_id=author.id)
    letters.submit(session, v2.id, actor_id=author.id)
    letters.approve(session, v2.id, actor_id=boss.id)
    assert v2.state == VersionState.APPROVED and v2.letter.current_version_id == v2.id
    with pytest.raises(ValidationFailed, match="only a draft"):
        letters.edit_draft(session, v2.id, body=BODY, subject="x", actor_id=author.id)

    # A supervisor's own version needs another supervisor; approving it retires the older one.
    v3 = letters.new_version(session, v2.id, actor_id=boss.id)
    letters.submit(session, v3.id, actor_id=boss.id)
    with pytest.raises(PermissionDenied, match="own version"):
        letters.approve(session, v3.id, actor_id=boss.id)
    letters.approve(session, v3.id, actor_id=boss2.id)
    assert v2.state == VersionState.RETIRED and v3.letter.current_version_id == v3.id
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "letter_version")))
    assert {"letter_version.submit", "letter_version.approve", "letter_version.request_changes",
            "letter_version.retire", "letter_version.comment"} <= actions
    diff = letters.word_diff(v1.body, v2.body)
    assert ("add", "(H.R.") in diff or any(op == "add" and "H.R." in text for op, text in diff)


def _approved(session, factory):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title="Clean water", body=BODY, actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)
    return v, author


def _batch(session, factory):
    batch = Batch(title="Clean water", template_text="x")
    session.add(batch)
    session.flush()
    made = []
    for i in range(4):  # email
        c = factory.constituent(first_name=f"Em{i}", last_name="Writer", prefix="Ms")
        made.append(factory.message(constituent_id=c.id, from_address=f"em{i}@example.org", batch_id=batch.id,
                                    subject="Clean water", channel=Channel.EMAIL,
                                    external_id=f"<incoming-{i}@example.org>"))
    for i in range(3):  # paper, with an address
        c = factory.constituent(first_name=f"Po{i}", last_name="Writer", address1=f"{i} Main St", email=None)
        made.append(factory.message(constituent_id=c.id, from_address=None, batch_id=batch.id,
                                    channel=Channel.POSTAL, subject="Water letter"))
    c = factory.constituent(first_name="No", last_name="Address", email=None)
    made.append(factory.message(constituent_id=c.id, from_address=None, batch_id=batch.id, channel=Channel.PHONE))
    return batch, made


def test_apply_to_all_answers_each_message_once(session, factory, database, settings):
    version, author = _approved(session, factory)
    batch, made = _batch(session, factory)
    made[0].status = MessageStatus.RESPONDED
    earlier = Response(message_id=made[0].id, method="email", subject="earlier", body_text="earlier",
                       email_message_id="<earlier@x>", state=ResponseState.SENT)
    session.add(earlier)
    session.flush()
    session.add(ResponseMessage(message_id=made[0].id, response_id=earlier.id))
    counted = plan(session, [m.id for m in made], version_id=version.id)
    assert counted.as_dict() == {"messages": 8, "people": 8, "letters": 6, "covered": 6, "email": 3, "print": 3,
                                 "with_additions": 0, "closed": 0, "unsolicited": 0,  # answers: never mass mail
                                 "counts": {"already_answered": 1, "no_address": 1}}
    run = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
    session.commit()

    queued: list[int] = []
    execute_run(database, run.id, settings, enqueue_email=queued.extend)
    session.expire_all()
    assert len(queued) == 3
    run = session.get(ApplyRun, run.id)
    assert (run.state, run.created_count, run.skipped, run.done) == ("done", 6, 2, 8)
    # Answered, not yet sent or printed: "answer queued" until the letter has left.
    assert {m.status for m in made[1:7]} == {MessageStatus.ANSWER_QUEUED}
    assert made[7].status == MessageStatus.NEW  # no address: left for a person
    first = session.scalar(select(Response).where(Response.message_id == made[1].id))
    assert first.body_text.startswith("Dear Ms. Writer,") and first.subject == "Re: Clean water"

    again = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
    session.commit()
    execute_run(database, again.id, settings, enqueue_email=queued.extend)
    assert session.scalar(select(func.count(Response.id))) == 7 and len(queued) == 3
    assert version.letter.usage_count == 6


def test_email_goes_out_once_through_a_real_smtp_server(session, factory, database, settings, smtp_server):
    version, author = _approved(session, factory)
    batch, made = _batch(session, factory)
    smtp_server.inbox.refuse["em3@example.org"] = "550 5.1.1 No such user"
    run = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
    session.commit()
    queued: list[int] = []
    execute_run(database, run.id, settings, enqueue_email=queued.extend)
    cfg = Settings.from_env({}, **{**settings.__dict__, "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port,
                                   "smtp_security": "none", "smtp_rate_per_second": 0.0})
    result = send_responses(database, queued, cfg)
    assert (result.sent, result.failed) == (3, 1)
    got = smtp_server.inbox.messages
    assert len(got) == 3 and len({m["Message-ID"] for m in got}) == 3
    first = next(m for m in got if m["To"] == "em0@example.org")
    assert first["In-Reply-To"] == "<incoming-0@example.org>" and first["Subject"] == "Re: Clean water"
    assert first.get_body(("plain",)).get_content().startswith("Dear Ms. Writer,")
    assert "<p>Dear Ms. Writer,</p>" in first.get_body(("html",)).get_content()
    refused = session.scalar(select(Response).where(Response.to_address == "em3@example.org"))
    session.refresh(refused)
    assert refused.state == ResponseState.FAILED and "550" in refused.last_error

    assert send_responses(database, queued, cfg).sent == 0 and len(got) == 3  # nothing twice
    # A worker that died after recording its attempt: the letter may have gone, so a person decides.
    stuck = session.scalar(select(Response).where(Response.to_address == "em1@example.org"))
    session.refresh(stuck)
    stuck.state = ResponseState.SENDING
    session.commit()
    assert send_responses(database, [stuck.id], cfg).skipped == 1  # maybe still in flight in another worker
    stuck.sending_since = stuck.sending_since - timedelta(hours=1)
    session.commit()
    assert send_responses(database, [stuck.id], cfg).uncertain == 1 and len(got) == 3


def test_print_file_has_one_page_per_postal_letter(session, factory, database, settings):
    version, author = _approved(session, factory)
    batch, _made = _batch(session, factory)
    run = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
    session.commit()
    execute_run(database, run.id, settings)
    items = print_responses(session, session.get(ApplyRun, run.id))
    assert len(items) == 3
    pdf = letters_pdf(items, _office(), "November 28, 2026")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 3
    assert "1 Main St" in reader.pages[1].extract_text()
    rows = mail_house_csv(items).strip().splitlines()
    assert len(rows) == 4 and rows[1].split(",")[2] == "0 Main St"


def test_sweeper_restarts_a_lost_run_and_settles_a_dead_send(session, factory, job_env, redis, smtp_server,
                                                             monkeypatch):
    from rq import SimpleWorker

    from correspondence.models import utcnow
    from workers import jobs
    from workers.queues import OUTBOUND, get_queue

    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    monkeypatch.setenv("MAILROOM_SWEEP_AFTER_MINUTES", "0")
    version, author = _approved(session, factory)
    batch, made = _batch(session, factory)
    run = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)  # queued, but Redis lost it
    session.commit()
    jobs.run_sweep()
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    session.expire_all()
    assert session.get(ApplyRun, run.id).state == "done" and len(smtp_server.inbox.messages) == 4

    dead = session.scalar(select(Response).where(Response.state == ResponseState.SENT))
    dead.state, dead.sending_since = ResponseState.SENDING, utcnow() - timedelta(hours=1)
    session.commit()
    jobs.run_sweep()
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    session.expire_all()
    assert session.get(Response, dead.id).state == ResponseState.UNCERTAIN
    assert len(smtp_server.inbox.messages) == 4  # never resent blindly


def test_one_off_reply_waits_for_approval_then_goes_out(client, auth, session, factory, database, settings):
    from correspondence.models import FormLetter, LetterVersion

    supervisor = factory.staffer(role="supervisor")
    c = factory.constituent(first_name="Ana", last_name="Lopez", prefix="Ms")
    message = factory.message(constituent_id=c.id, from_address="ana@example.org", subject="Bridge repair")
    session.commit()
    auth.login("correspondent")
    token = auth.csrf(f"/messages/{message.id}/reply")
    response = client.post(f"/messages/{message.id}/reply", data={
        "csrf_token": token, "subject": "Re: {{ message.subject }}",
        "body": "{{ constituent.salutation }}\n\nThe bridge money is in the bill.\n\n{{ office.signature }}"})
    assert response.status_code == 303
    session.rollback()
    version = session.scalar(select(LetterVersion))
    assert version.state == VersionState.IN_REVIEW
    assert session.get(FormLetter, version.letter_id).one_off_message_id == message.id
    assert letters.search_letters(session) == []  # one-off replies stay out of the library
    assert letters.approval_queue(session)[0].version.id == version.id

    bad = client.post(f"/messages/{message.id}/reply", data={"csrf_token": token, "subject": "x",
                                                             "body": "{{ ''.__class__ }}"})
    assert bad.status_code == 400 and "not a merge field" in bad.get_data(as_text=True)

    client.post("/logout", data={"csrf_token": token})
    client.post("/login", data={"email": supervisor.email, "password": factory.PASSWORD,
                                "csrf_token": auth.csrf("/login")})
    client.post(f"/letters/versions/{version.id}/approve", data={"csrf_token": auth.csrf("/approvals/")})
    session.rollback()
    run = session.scalar(select(ApplyRun))
    assert run.message_ids == [message.id]
    execute_run(database, run.id, settings)
    session.rollback()
    answer = session.scalar(select(Response).where(Response.message_id == message.id))
    assert answer.body_text.startswith("Dear Ms. Lopez,") and "bridge money" in answer.body_text


def test_answer_a_selection_or_everything_an_inbox_filter_matches(client, auth, session, factory):
    from correspondence.models import Topic

    version, _author = _approved(session, factory)
    topic = session.scalar(select(Topic).where(Topic.name == "Health"))
    chosen = [factory.message(from_address=f"s{i}@example.org", topic_id=topic.id) for i in range(3)]
    factory.message(from_address="other@example.org")
    session.commit()
    auth.login("correspondent")
    token = auth.csrf("/inbox/")
    page = client.post("/letters/answer", data={"csrf_token": token, "ids": [str(m.id) for m in chosen[:2]]})
    assert page.status_code == 200 and 'id="will-email">2<' in page.get_data(as_text=True)
    ids = [str(m.id) for m in chosen[:2]]
    # The letter has no topic and the mail is on Health: it is not chosen for the staffer, and the numbers
    # on the page were not worked out for it, so choosing it shows them for it first (nothing starts).
    assert ' checked' not in page.get_data(as_text=True).split('id="choose-letter"')[1]
    again = client.post("/letters/answer", data={"csrf_token": token, "ids": ids, "confirm": "1",
                                                 "version_id": str(version.id), "confirm_mismatch": "1"})
    assert again.status_code == 200 and 'id="recounted"' in again.get_data(as_text=True)
    assert session.scalar(select(func.count(ApplyRun.id))) == 0
    unconfirmed = client.post("/letters/answer", data={"csrf_token": token, "ids": ids, "confirm": "1",
                                                       "version_id": str(version.id),
                                                       "planned_version": str(version.id)})
    assert "does not fit this mail" in unconfirmed.get_data(as_text=True)
    done = client.post("/letters/answer", data={"csrf_token": token, "ids": ids, "confirm": "1",
                                                "version_id": str(version.id), "planned_version": str(version.id),
                                                "confirm_mismatch": "1"})
    assert done.status_code == 303
    session.rollback()
    assert session.scalar(select(ApplyRun)).message_ids == sorted(m.id for m in chosen[:2])

    matching = client.get(f"/letters/answer?topic={topic.id}&status=all").get_data(as_text=True)
    # The run above is queued, not yet worked: all three on the topic would be answered, not the fourth.
    assert 'id="will-email">3<' in matching and 'id="skip-already_answered"' not in matching
    assert client.get("/letters/answer?status=bogus").status_code == 400


def test_a_person_settles_an_uncertain_or_failed_letter(client, auth, session, factory):
    message = factory.message(from_address="x@example.org")
    uncertain = Response(message_id=message.id, method="email", subject="s", body_text="b", to_address="x@example.org",
                         email_message_id="<u@x>", state=ResponseState.UNCERTAIN)
    other = factory.message(from_address="y@example.org")
    failed = Response(message_id=other.id, method="email", subject="s", body_text="b", to_address="y@example.org",
                      email_message_id="<f@x>", state=ResponseState.FAILED, last_error="550 no such user")
    session.add_all([uncertain, failed])
    session.commit()
    auth.login("correspondent")
    page = client.get(f"/messages/{message.id}").get_data(as_text=True)
    assert 'id="resend"' in page and 'id="mark-sent"' in page
    token = auth.csrf(f"/messages/{message.id}")
    client.post(f"/responses/{uncertain.id}/mark_sent", data={"csrf_token": token})
    refused = client.post(f"/responses/{failed.id}/mark_sent", data={"csrf_token": token}, follow_redirects=True)
    assert "can only be resent" in refused.get_data(as_text=True)
    client.post(f"/responses/{failed.id}/resend", data={"csrf_token": token})
    session.rollback()
    session.expire_all()
    assert session.get(Response, uncertain.id).state == ResponseState.SENT
    assert session.get(Response, failed.id).state == ResponseState.QUEUED
    again = client.post(f"/responses/{failed.id}/resend", data={"csrf_token": token}, follow_redirects=True)
    assert "only an uncertain or failed letter" in again.get_data(as_text=True)
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "response")))
    assert {"response.mark_sent", "response.resend"} <= actions


def test_approving_a_one_off_reply_by_any_path_sends_it(session, factory, job_env, redis, smtp_server, monkeypatch):
    """Issue 15: approving a one-off reply through the use case (no page at all) starts its send; dispatching
    the effects after the commit queues the run, whose worker emails the constituent, and the author's notice."""
    from rq import SimpleWorker

    from correspondence.effects import Effect
    from drafting.review import approve_version
    from workers.effects import dispatch
    from workers.queues import OUTBOUND, get_queue

    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    writer, supervisor = factory.staffer(), factory.staffer(role="supervisor")
    c = factory.constituent(first_name="Ana", last_name="Lopez", prefix="Ms")
    message = factory.message(constituent_id=c.id, from_address="ana@example.org", subject="Bridge repair")
    session.commit()
    reply = letters.start_reply(session, message.id, subject="Re: {{ message.subject }}", actor_id=writer.id,
                                body="{{ constituent.salutation }}\n\nThe bridge money is in the bill.\n\n"
                                     "{{ office.signature }}")
    session.commit()

    done = approve_version(session, reply.id, actor_id=supervisor.id)
    run = session.scalar(select(ApplyRun).where(ApplyRun.version_id == reply.id))
    assert run is not None and run.message_ids == [message.id]
    assert set(done.effects) == {Effect.of("apply_run", run.id), Effect.of("notice_emails", writer.id)}
    session.commit()
    assert session.scalar(select(func.count(Response.id))) == 0  # nothing is sent before the effects run

    assert dispatch(done.effects, connection=redis) == 2
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)  # the sends the run queued
    session.rollback()  # a fresh snapshot: the workers committed in their own sessions
    answer = session.scalar(select(Response).where(Response.message_id == message.id))
    assert answer.state == ResponseState.SENT and answer.body_text.startswith("Dear Ms. Lopez,")
    recipients = sorted(m["To"] for m in smtp_server.inbox.messages)
    assert recipients == sorted(["ana@example.org", writer.email])


def test_approving_a_form_letter_starts_no_run(session, factory):
    """Only a one-off reply goes out on approval; a library letter waits to be applied."""
    from correspondence.effects import Effect
    from drafting.review import approve_version

    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title="Clean water", body=BODY, actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    done = approve_version(session, v.id, actor_id=boss.id)
    assert done.value.state == VersionState.APPROVED
    assert done.effects == (Effect.of("notice_emails", author.id),)
    assert session.scalar(select(func.count(ApplyRun.id))) == 0
