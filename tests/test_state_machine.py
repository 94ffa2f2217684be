"""The one state machine helper: refused moves, refused roles, the audited move (before -> after), and the
job-like runs (apply to all, imports, reports) that now move through it with a RunState the database checks."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from constituents import imports
from correspondence.errors import InvalidTransition, PermissionDenied, ValidationFailed
from correspondence.models import (
    ApplyRun,
    AuditEvent,
    CaseStatus,
    ConstituentImport,
    MessageStatus,
    ParagraphState,
    ReportRun,
    ResponseState,
    Role,
    RunState,
    VersionState,
)
from correspondence.states import (
    ANSWERABLE,
    APPLY_RUNS,
    IMPORTS,
    MESSAGE_TRANSITIONS,
    MESSAGES,
    REPORTS,
    RUN_TRANSITIONS,
    StateMachine,
)
from drafting import apply, letters
from insight import reports

S = MessageStatus
# A machine of its own over the message column, so the helper is tested apart from the real tables.
TOY = StateMachine[MessageStatus](S, {s: frozenset() for s in S} | {S.NEW: frozenset({S.ASSIGNED, S.CLOSED}),
                                                     S.ASSIGNED: frozenset({S.CLOSED})},
                   "message", field="status", move_roles={(None, S.CLOSED): frozenset({Role.SUPERVISOR})},
                   audit_action="message.close")


def _events(session, object_type: str, object_id: int) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.object_type == object_type,
                                                         AuditEvent.object_id == str(object_id))
                                .order_by(AuditEvent.id)))


def test_a_table_must_name_every_state_and_only_states():
    with pytest.raises(ValueError, match="missing: closed"):
        StateMachine[MessageStatus](S, {s: frozenset() for s in S if s != S.CLOSED}, "message")
    elsewhere: dict[MessageStatus, frozenset[Any]] = {s: frozenset({RunState.DONE}) for s in S}  # wrong on purpose
    with pytest.raises(ValueError, match="not a MessageStatus"):
        StateMachine(S, elsewhere, "message")


def test_a_refused_move_changes_nothing_and_writes_nothing(session, factory):
    m = factory.message(status=S.ASSIGNED)
    with pytest.raises(InvalidTransition, match="a message that is assigned cannot become new") as refused:
        TOY.move(session, m, S.NEW, actor_id=None)
    assert isinstance(refused.value, ValidationFailed)  # pages and the CLI that report bad input report this too
    assert m.status == S.ASSIGNED and _events(session, "message", m.id) == []


def test_a_refused_role_changes_nothing_and_the_system_may(session, factory):
    writer, boss = factory.staffer(), factory.staffer(Role.SUPERVISOR)
    m = factory.message()
    with pytest.raises(PermissionDenied, match="a correspondent may not move a message from new to closed "
                                               r"\(only supervisor\)"):
        TOY.move(session, m, S.CLOSED, actor_id=writer.id)
    assert m.status == S.NEW and _events(session, "message", m.id) == []
    assert TOY.may(S.NEW, S.CLOSED, Role.SUPERVISOR) and not TOY.may(S.NEW, S.CLOSED, Role.CORRESPONDENT)
    assert TOY.may(S.NEW, S.CLOSED, None)  # the system makes every allowed move
    assert not TOY.may(S.CLOSED, S.NEW, None)  # ... and only allowed ones
    boss.active = False
    with pytest.raises(PermissionDenied, match="active staff account"):
        TOY.move(session, m, S.CLOSED, actor_id=boss.id)
    TOY.move(session, m, S.CLOSED, actor_id=None)
    assert m.status == S.CLOSED


def test_a_move_is_audited_before_to_after_with_its_extra_fields_and_flushed(session, factory):
    boss, writer = factory.staffer(Role.SUPERVISOR), factory.staffer()
    m = factory.message()
    TOY.move(session, m, S.ASSIGNED, actor_id=writer.id, action="message.assign",
             before={"assignee_id": None}, after={"assignee_id": writer.id})
    TOY.move(session, m, S.CLOSED, actor_id=boss.id, detail="answered by phone")
    # Flushed: a plain query (no autoflush) sees the new status and both events.
    with session.no_autoflush:
        stored = session.execute(text("SELECT status FROM messages WHERE id = :id"), {"id": m.id}).scalar()
        events = _events(session, "message", m.id)
    assert stored == "closed"
    assert [(e.action, e.actor_id, e.before, e.after, e.detail) for e in events] == [
        ("message.assign", writer.id, {"status": "new", "assignee_id": None},
         {"status": "assigned", "assignee_id": writer.id}, None),
        ("message.close", boss.id, {"status": "assigned"}, {"status": "closed"}, "answered by phone"),
    ]


def test_a_delegated_decision_names_whom_it_was_made_for(session, factory):
    boss, delegate = factory.staffer(Role.SUPERVISOR), factory.staffer(Role.SUPERVISOR)
    m = factory.message()
    TOY.move(session, m, S.CLOSED, actor_id=delegate.id, on_behalf_of_id=boss.id)
    event = _events(session, "message", m.id)[0]
    assert (event.actor_id, event.on_behalf_of_id) == (delegate.id, boss.id)


def test_the_message_machine_keeps_its_table_and_answerable_set():
    assert MESSAGES.transitions == MESSAGE_TRANSITIONS
    assert {S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.AWAITING_APPROVAL} == ANSWERABLE
    assert MESSAGES.roles_for(S.ANSWER_QUEUED, S.RESPONDED) == frozenset()  # only the system


@pytest.mark.parametrize(("machine", "current", "target", "words"), [
    ("drafting.letters:VERSIONS", VersionState.DRAFT, VersionState.APPROVED, "a version that is draft cannot "
                                                                              "become approved"),
    ("drafting.paragraphs:REVISIONS", ParagraphState.RETIRED, ParagraphState.APPROVED,
     "a paragraph revision that is retired cannot become approved"),
    ("casework.cases:CASES", CaseStatus.CLOSED, CaseStatus.WAITING_ON_AGENCY,
     "a case that is closed cannot become waiting on agency"),
    ("drafting.send:RESPONSES", ResponseState.FAILED, ResponseState.SENT, "a letter that is failed cannot become sent"),
    ("correspondence.states:APPLY_RUNS", RunState.DONE, RunState.RUNNING, "a run that is done cannot become running"),
])
def test_every_machine_is_the_one_helper_and_words_its_refusals(machine, current, target, words):
    import importlib

    module, name = machine.split(":")
    found = getattr(importlib.import_module(module), name)
    assert isinstance(found, StateMachine)
    with pytest.raises(InvalidTransition, match=words):
        found.check(current, target)


def test_run_states_read_old_strings_and_the_database_refuses_others(session, factory):
    boss = factory.staffer(Role.SUPERVISOR)
    run = reports.start_report(session, {"start": "2026-01-01", "end": "2026-01-31"}, actor_id=boss.id)
    # A row written as a bare string (as before this change) reads as the enum, equal to that string.
    session.execute(text("UPDATE report_runs SET state = 'running' WHERE id = :id"), {"id": run.id})
    session.expire(run)
    assert run.state is RunState.RUNNING and run.state == "running"
    runs = ReportRun.metadata.tables["report_runs"]
    with pytest.raises(StatementError), session.begin_nested():  # the model refuses a value that is not one ...
        session.execute(runs.update().where(runs.c.id == run.id).values(state="paused"))
    with pytest.raises(IntegrityError), session.begin_nested():  # ... and so does the database (0017's CHECK)
        session.execute(text("UPDATE report_runs SET state = 'paused' WHERE id = :id"), {"id": run.id})
    session.expire(run)
    assert run.state == RunState.RUNNING
    assert set(RUN_TRANSITIONS) == set(RunState)
    assert {m.object_type for m in (APPLY_RUNS, IMPORTS, REPORTS)} == {"apply_run", "constituent_import",
                                                                      "report_run"}


def test_a_report_run_moves_through_the_machine_and_each_move_is_audited(database, session, factory):
    boss = factory.staffer(Role.SUPERVISOR)
    broken = reports.start_report(session, {"start": "not a date", "end": "2026-01-31"}, actor_id=boss.id)
    today = date.today()
    good = reports.start_report(session, {"start": (today - timedelta(days=30)).isoformat(),
                                          "end": today.isoformat(), "segment_id": None}, actor_id=boss.id)
    session.commit()
    with pytest.raises(ValueError):
        reports.execute(database, broken.id)
    reports.execute(database, good.id)
    reports.execute(database, good.id)  # done: a second run leaves it alone
    session.expire_all()
    assert session.get(ReportRun, broken.id).state == RunState.FAILED
    assert session.get(ReportRun, good.id).state == RunState.DONE
    assert [(e.action, (e.before or {}).get("state"), (e.after or {}).get("state"))
            for e in _events(session, "report_run", broken.id)] == [
        ("report.start", None, None), ("report.run", "queued", "running"), ("report.fail", "running", "failed")]
    assert "not a date" in (_events(session, "report_run", broken.id)[-1].detail or "")
    assert [e.action for e in _events(session, "report_run", good.id)] == ["report.start", "report.run",
                                                                           "report.finish"]


def test_an_import_moves_uploaded_queued_running_done_audited(database, session, factory, settings):
    boss = factory.staffer(Role.SUPERVISOR)
    imp = imports.upload(session, b"first_name,last_name,email\nAna,Lopez,ana@example.org\n", "people.csv",
                         actor_id=boss.id)
    assert imp.state == RunState.UPLOADED and imp.mapping is not None  # upload guessed the columns
    session.commit()
    with pytest.raises(ValidationFailed, match="map the columns"):
        imports.run_import(database, imp.id)
    imports.start(session, imp.id, dict(imp.mapping), "", actor_id=boss.id)
    with pytest.raises(ValidationFailed, match="already been started"):
        imports.start(session, imp.id, dict(imp.mapping), "", actor_id=boss.id)
    session.commit()
    imports.run_import(database, imp.id)
    session.expire_all()
    assert session.get(ConstituentImport, imp.id).state == RunState.DONE
    moves = [(e.action, (e.before or {}).get("state"), (e.after or {}).get("state"))
             for e in _events(session, "constituent_import", imp.id)]
    assert moves == [("import.upload", None, None), ("import.start", "uploaded", "queued"),
                     ("import.run", "queued", "running"), ("import.finish", "running", "done")]


def test_an_apply_run_records_running_and_finished(database, session, factory, settings):
    author, boss = factory.staffer(), factory.staffer(Role.SUPERVISOR)
    version = letters.create_letter(session, title="Thanks", body="{{ constituent.salutation }}\n\nThank you.\n\n"
                                    "{{ office.signature }}", actor_id=author.id)
    letters.submit(session, version.id, actor_id=author.id)
    letters.approve(session, version.id, actor_id=boss.id)
    person = factory.constituent(address1="1 Main St")
    m = factory.message(constituent_id=person.id, from_address=person.primary_email)
    run = apply.start_run(session, version.id, actor_id=author.id, message_ids=[m.id])
    assert run.state == RunState.QUEUED
    session.commit()
    apply.execute_run(database, run.id, settings)
    session.expire_all()
    assert session.get(ApplyRun, run.id).state == RunState.DONE
    assert [(e.action, (e.before or {}).get("state"), (e.after or {}).get("state"))
            for e in _events(session, "apply_run", run.id)] == [
        ("apply_run.start", None, None), ("apply_run.run", "queued", "running"),
        ("apply_run.finish", "running", "done")]
