"""The message state machine: the table, the services, and the audit trail they leave."""

import pytest
from sqlalchemy import select

from correspondence.errors import InvalidTransition, PermissionDenied, ValidationFailed
from correspondence.models import AuditEvent, AuditLogIsAppendOnly, MessageStatus, Stance
from correspondence.services import messages as svc
from correspondence.states import MESSAGE_TRANSITIONS, can_move

S = MessageStatus


def test_every_status_has_a_row_and_targets_are_statuses():
    assert set(MESSAGE_TRANSITIONS) == set(S)
    assert all(t in S for targets in MESSAGE_TRANSITIONS.values() for t in targets)


@pytest.mark.parametrize(("current", "target", "allowed"), [
    (S.NEW, S.ASSIGNED, True), (S.ASSIGNED, S.IN_PROGRESS, True), (S.IN_PROGRESS, S.AWAITING_APPROVAL, True),
    (S.AWAITING_APPROVAL, S.ANSWER_QUEUED, True), (S.RESPONDED, S.CLOSED, True), (S.NEW, S.QUARANTINED, True),
    (S.QUARANTINED, S.NEW, True), (S.NEW, S.ANSWER_QUEUED, True), (S.ANSWER_QUEUED, S.RESPONDED, True),
    (S.ANSWER_QUEUED, S.IN_PROGRESS, True), (S.ANSWER_QUEUED, S.CLOSED, True), (S.IN_PROGRESS, S.RESPONDED, True),
    # "Responded" means the answer left: nothing skips "answer queued" but a person recording a reply
    # they made outside Mailroom on a message they are working.
    (S.NEW, S.RESPONDED, False), (S.ASSIGNED, S.RESPONDED, False), (S.AWAITING_APPROVAL, S.RESPONDED, False),
    (S.NEW, S.AWAITING_APPROVAL, False), (S.CLOSED, S.AWAITING_APPROVAL, False),
    (S.ARCHIVED, S.CLOSED, False), (S.QUARANTINED, S.ASSIGNED, False),
])
def test_table(current, target, allowed):
    assert can_move(current, target) is allowed


def _events(session, message_id):
    return list(session.scalars(select(AuditEvent).where(AuditEvent.object_type == "message",
                                                         AuditEvent.object_id == str(message_id))
                                .order_by(AuditEvent.id)))


def test_full_life_of_a_message_is_audited(session, factory):
    lc = factory.staffer()
    m = factory.message()
    svc.assign_message(session, m.id, lc.id, actor_id=lc.id)
    svc.start_work(session, m.id, actor_id=lc.id)
    svc.submit_for_approval(session, m.id, actor_id=lc.id)
    svc.queue_answer(session, m, actor_id=lc.id, response_id=7)
    with pytest.raises(PermissionDenied, match="only the system"):
        svc.mark_responded(session, m.id, actor_id=lc.id)  # only the letter leaving says it was answered
    svc.mark_responded(session, m.id, actor_id=None)
    svc.close_message(session, m.id, actor_id=lc.id)
    assert m.status == S.CLOSED
    events = _events(session, m.id)
    assert [e.action for e in events] == ["message.assign", "message.start", "message.submit_for_approval",
                                          "message.answer_queued", "message.responded", "message.close"]
    assert events[3].after == {"status": "answer_queued", "response_id": 7}
    assert events[0].before == {"status": "new", "assignee_id": None}
    assert events[0].after == {"status": "assigned", "assignee_id": lc.id}
    assert [e.actor_id for e in events] == [lc.id] * 4 + [None, lc.id]  # the system saw the letter leave


def test_refused_transition_changes_nothing(session, factory):
    m = factory.message()
    with pytest.raises(InvalidTransition, match="new to awaiting_approval"):
        svc.submit_for_approval(session, m.id, actor_id=None)
    assert m.status == S.NEW
    assert _events(session, m.id) == []


def test_quarantine_needs_a_reason_and_keeps_it(session, factory):
    m = factory.message()
    with pytest.raises(ValidationFailed):
        svc.quarantine_message(session, m.id, reason="  ", actor_id=None)
    svc.quarantine_message(session, m.id, reason="clean-text: no text", actor_id=None)
    assert m.status == S.QUARANTINED and m.status_reason == "clean-text: no text"
    svc.release_message(session, m.id, actor_id=None)
    assert m.status == S.NEW and m.status_reason is None


def test_reassigning_in_progress_work_keeps_its_status(session, factory):
    a, b = factory.staffer(), factory.staffer()
    m = factory.message()
    svc.assign_message(session, m.id, a.id, actor_id=a.id)
    svc.start_work(session, m.id, actor_id=a.id)
    svc.assign_message(session, m.id, b.id, actor_id=a.id)
    assert m.status == S.IN_PROGRESS and m.assignee_id == b.id


def test_cannot_assign_to_inactive_staffer(session, factory):
    gone = factory.staffer(active=False)
    m = factory.message()
    with pytest.raises(ValidationFailed):
        svc.assign_message(session, m.id, gone.id, actor_id=None)


def test_coding_is_audited_and_idempotent(session, factory):
    m = factory.message()
    svc.set_stance(session, m.id, Stance.OPPOSE, actor_id=None)
    svc.set_stance(session, m.id, Stance.OPPOSE, actor_id=None)
    assert [e.action for e in _events(session, m.id)] == ["message.set_stance"]


def test_bulk_reports_messages_that_cannot_move(session, factory):
    lc = factory.staffer()
    ok = factory.message()
    done = factory.message(status=S.RESPONDED)
    changed, problems = svc.bulk_apply(session, [ok.id, done.id], "close", None, actor_id=lc.id)
    assert (changed, problems) == (2, [])
    assert ok.status == S.CLOSED and done.status == S.CLOSED
    archived = factory.message(status=S.ARCHIVED)
    changed, problems = svc.bulk_apply(session, [archived.id], "close", None, actor_id=lc.id)
    assert changed == 0 and "archived to closed" in problems[0]


def test_audit_events_cannot_be_changed_or_deleted(session, factory):
    m = factory.message()
    svc.close_message(session, m.id, actor_id=None)
    event = _events(session, m.id)[0]
    event.action = "tampered"
    with pytest.raises(AuditLogIsAppendOnly):
        session.flush()
    session.rollback()
    event = session.scalars(select(AuditEvent)).first()
    if event is not None:
        session.delete(event)
        with pytest.raises(AuditLogIsAppendOnly):
            session.flush()
