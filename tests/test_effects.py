"""Effects reach Redis only after their transaction commits, from each of the three boundaries (job
wrapper, CLI decorator, web views), and the use cases that own what jobs used to decide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from casework import cases as case_service
from correspondence.effects import Done, Effect
from correspondence.errors import ValidationFailed
from correspondence.models import AuditEvent, CaseCategory, Message, MessageStatus, RunState, utcnow
from correspondence.services.audit import record
from tests.conftest import cli_env
from workers.queues import MAINTENANCE, PROCESS, get_queue


def _queued(redis, queue: str) -> list[str]:
    return get_queue(queue, redis).job_ids


def _audit(session, action: str) -> int:
    session.rollback()  # end the read snapshot: the boundary committed from another connection
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


# --- the job wrapper ---------------------------------------------------------------------------

def test_job_commits_then_queues_its_use_cases_effects(job_env, redis, session, factory):
    from workers.jobs import job

    m = factory.message(processed_at=None)
    session.commit()

    @job
    def touch(s, message_id: int) -> Done[str]:
        record(s, actor_id=None, action="message.retry", object_type="message", object_id=message_id)
        return Done("touched", (Effect.of("process_message", message_id),))

    assert touch(m.id) == "touched"  # the job's result is the use case's value
    assert _queued(redis, PROCESS) == [f"process-message-{m.id}"]
    assert _audit(session, "message.retry") == 1


def test_a_use_case_that_refuses_queues_nothing_and_keeps_nothing(job_env, redis, session, factory):
    from workers.jobs import job

    m = factory.message(processed_at=None)
    session.commit()

    @job
    def refuse(s, message_id: int) -> Done[str]:
        record(s, actor_id=None, action="message.retry", object_type="message", object_id=message_id)
        done = Done("never", (Effect.of("process_message", message_id),))
        if done.effects:
            raise ValidationFailed("changed my mind")
        return done

    with pytest.raises(ValidationFailed):  # jobs raise: RQ keeps the failed job with the reason
        refuse(m.id)
    assert _queued(redis, PROCESS) == []
    assert _audit(session, "message.retry") == 0


def test_effects_of_a_transaction_that_fails_to_commit_are_never_queued(job_env, redis, session, factory):
    """The use case returned its effects, then the commit itself failed: the job must not be queued."""
    from sqlalchemy.exc import IntegrityError

    from workers.jobs import job

    m = factory.message(processed_at=None)
    session.commit()
    key = m.idempotency_key

    @job
    def clash(s, message_id: int) -> Done[None]:
        # The same idempotency key again: the unique index refuses it when the wrapper flushes to commit.
        s.add(Message(idempotency_key=key, channel=m.channel, received_at=utcnow(), subject="", body_text="",
                      status=MessageStatus.NEW))
        return Done(None, (Effect.of("process_message", message_id),))

    with pytest.raises(IntegrityError):
        clash(m.id)
    assert _queued(redis, PROCESS) == []


def test_sweep_requeues_a_lost_import_and_a_lost_report(job_env, redis, session, factory, monkeypatch):
    from constituents.imports import upload
    from correspondence.models import ConstituentImport
    from insight.reports import start_report
    from workers import jobs

    monkeypatch.setenv("MAILROOM_SWEEP_AFTER_MINUTES", "0")
    admin = factory.staffer(role="admin")
    imp = upload(session, b"first_name,last_name,email\nAda,Lovelace,ada@example.org\n", "people.csv",
                 actor_id=admin.id)
    imp.state = RunState.QUEUED  # started, then Redis lost its job
    imp.created_at = datetime.now(UTC) - timedelta(minutes=5)
    report = start_report(session, {"start": "2026-01-01", "end": "2026-01-31"}, actor_id=admin.id)
    report.created_at = datetime.now(UTC) - timedelta(minutes=5)
    session.commit()
    assert session.get(ConstituentImport, imp.id).state == "queued"

    jobs.run_sweep()
    assert set(_queued(redis, MAINTENANCE)) == {f"import-{imp.id}", f"report-{report.id}"}


# --- the CLI boundary --------------------------------------------------------------------------

def test_cli_use_case_commits_then_queues(job_env, redis, session, factory):
    from workers.cli import use_case

    m = factory.message(processed_at=None)
    session.commit()

    @use_case
    def note(s, message_id: int) -> Done[int]:
        record(s, actor_id=None, action="message.retry", object_type="message", object_id=message_id)
        return Done(message_id, (Effect.of("process_message", message_id),))

    assert note(m.id) == m.id
    assert _queued(redis, PROCESS) == [f"process-message-{m.id}"]
    assert _audit(session, "message.retry") == 1


def test_cli_refusal_is_a_clear_error_and_exit_code_1(settings, redis):
    from workers.cli import REFUSED, cli

    result = CliRunner().invoke(cli, ["topics", "activate", "999"], env=cli_env(settings))
    assert result.exit_code == REFUSED == 1
    assert "Error: no topic model version 999" in result.output
    assert "Traceback" not in result.output


def test_cli_refusal_inside_a_use_case_rolls_back(job_env, redis, session, factory):
    from workers.cli import Refused, use_case

    m = factory.message(processed_at=None)
    session.commit()

    @use_case
    def refuse(s, message_id: int) -> Done[None]:
        record(s, actor_id=None, action="message.retry", object_type="message", object_id=message_id)
        raise ValidationFailed("not today")

    with pytest.raises(Refused, match="not today") as caught:
        refuse(m.id)
    assert caught.value.exit_code == 1
    assert _queued(redis, PROCESS) == []
    assert _audit(session, "message.retry") == 0


# --- the reminders use case, with a real SMTP server ---------------------------------------------

def _due_case(session, factory):
    worker = factory.staffer(role="caseworker", name="Lena Novak", email="lena@example.org")
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "Passports"))
    case = case_service.open_case(session, constituent_id=factory.constituent().id, category_id=category.id,
                                  subject="Passport renewal", actor_id=worker.id, caseworker_id=worker.id)
    case_service.steps(session, case.id)[0].due_at = utcnow() - timedelta(days=2)
    session.flush()
    return worker, case


def test_remind_due_cases_emails_each_caseworker_through_smtp(session, factory, smtp_server):
    from casework.reminders import remind_due_cases
    from drafting.send import SmtpConfig

    worker, case = _due_case(session, factory)
    mail = SmtpConfig("127.0.0.1", smtp_server.port, "none", "", "", "office@example.gov")
    done = remind_due_cases(session, now=utcnow(), mail=mail, base_url="https://mail.example.gov")
    assert done.as_dict() == {"caseworkers": 1, "emailed": 1}
    email = smtp_server.inbox.messages[0]
    assert email["To"] == "lena@example.org" and email["From"] == "office@example.gov"
    assert f"https://mail.example.gov/cases/{case.id}" in email.get_content()  # the public address, not the bind
    assert "OVERDUE" in email.get_content()
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "case.reminder", AuditEvent.object_id == str(worker.id))) == 1


def test_remind_due_cases_without_a_server_sends_nothing_and_records_nothing(session, factory):
    from casework.reminders import remind_due_cases
    from drafting.send import SmtpConfig

    _due_case(session, factory)
    mail = SmtpConfig("", 25, "starttls", "", "", "office@example.gov")
    done = remind_due_cases(session, now=utcnow(), mail=mail, base_url="http://127.0.0.1:5000")
    assert done.as_dict() == {"caseworkers": 1, "emailed": 0}
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "case.reminder")) == 0


# --- retries that happen without an RQ scheduler -------------------------------------------------

def test_a_failed_process_job_is_retried_at_once_and_never_parked(job_env, redis):
    """Workers run without RQ's scheduler (workers.cli), so a retry with an interval would park the job
    as "scheduled" for ever, and the sweeper's enqueue would take it for one still waiting."""
    from rq import SimpleWorker
    from rq.job import Job

    from workers.queues import enqueue_process

    missing = 10**9  # no such message: the job fails every time it runs
    job_id = enqueue_process(redis, missing)
    SimpleWorker([get_queue(PROCESS, redis)], connection=redis).work(burst=True)
    job = Job.fetch(job_id, connection=redis)
    assert job.get_status() == "failed" and job.retries_left == 0  # tried four times, then kept with the reason
    assert enqueue_process(redis, missing) == job_id  # the sweep can queue it again
    assert _queued(redis, PROCESS) == [job_id]


# --- the web boundary ----------------------------------------------------------------------------

def test_a_view_queues_on_the_apps_redis_once_committed(client, session, redis, settings, monkeypatch, tmp_path):
    """The view's effects go to the Redis the app was made with, not to whatever the process environment
    names (here: nothing, which for a job would mean starting an embedded server)."""
    from correspondence.services.tokens import create_token

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("MAILROOM_INSTANCE_DIR", str(tmp_path / "elsewhere"))
    _t, plain = create_token(session, name="website", actor_id=None)
    session.commit()
    form = {"first_name": "Dana", "last_name": "Reyes", "email": "dana@example.org", "zip5": "43215",
            "subject": "Clinic closing", "message": "The clinic on Elm St is closing. Please keep it open."}
    response = client.post("/api/v1/intake/webform", json=form, headers={"Authorization": f"Bearer {plain}"})
    assert response.status_code == 202, response.get_json()
    message_id = response.get_json()["message_id"]
    session.rollback()
    assert session.get(Message, message_id) is not None  # committed before it was queued
    assert _queued(redis, PROCESS) == [f"process-message-{message_id}"]
    assert not (tmp_path / "elsewhere").exists()  # no embedded Redis was started for the environment's settings
