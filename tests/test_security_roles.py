"""Issue 12 item 11: who may make a message transition is checked where the transition is made."""

from __future__ import annotations

import pytest

from correspondence.errors import PermissionDenied
from correspondence.models import AuditEvent, Message, MessageStatus
from correspondence.services import messages as svc
from correspondence.states import may_move

S = MessageStatus


def test_caseworker_cannot_release_quarantined_mail_through_the_generic_status_action(client, auth, factory,
                                                                                      session):
    auth.login("caseworker")
    poison = factory.message(status=S.QUARANTINED, status_reason="decode: a hostile attachment")
    session.commit()
    token = auth.csrf(f"/messages/{poison.id}")
    response = client.post(f"/messages/{poison.id}/status", data={"csrf_token": token, "value": "new"})
    assert response.status_code == 403
    # Nor by putting it away first and then bringing it back.
    response = client.post(f"/messages/{poison.id}/status", data={"csrf_token": token, "value": "archived"})
    assert response.status_code == 403
    session.rollback()
    session.expire_all()
    assert session.get(Message, poison.id).status == S.QUARANTINED
    assert session.query(AuditEvent).filter(AuditEvent.action == "message.release").count() == 0


def test_correspondent_still_releases_through_the_same_action(client, auth, factory, session):
    auth.login("correspondent")
    held = factory.message(status=S.QUARANTINED, status_reason="decode: no text")
    session.commit()
    assert 'value="new"' in client.get(f"/messages/{held.id}").get_data(as_text=True)
    response = client.post(f"/messages/{held.id}/status",
                           data={"csrf_token": auth.csrf(f"/messages/{held.id}"), "value": "new"})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Message, held.id).status == S.NEW


@pytest.mark.parametrize("service", [svc.release_message, svc.archive_message])
def test_the_service_refuses_a_caseworker_called_directly(session, factory, service):
    caseworker = factory.staffer(role="caseworker")
    poison = factory.message(status=S.QUARANTINED, status_reason="decode: hostile")
    with pytest.raises(PermissionDenied, match="caseworker may not move a message from quarantined"):
        service(session, poison.id, actor_id=caseworker.id)
    with pytest.raises(PermissionDenied):
        svc.change_status(session, poison.id, S.NEW, actor_id=caseworker.id)
    assert poison.status == S.QUARANTINED


def test_archived_mail_is_brought_back_by_triage_staff_only(session, factory):
    caseworker, lc = factory.staffer(role="caseworker"), factory.staffer(role="correspondent")
    archived = factory.message(status=S.ARCHIVED)
    with pytest.raises(PermissionDenied):
        svc.release_message(session, archived.id, actor_id=caseworker.id)
    svc.release_message(session, archived.id, actor_id=lc.id)
    assert archived.status == S.NEW


def test_a_deactivated_or_unknown_staffer_makes_no_restricted_move(session, factory):
    gone = factory.staffer(role="admin", active=False)
    m = factory.message(status=S.QUARANTINED, status_reason="decode: hostile")
    with pytest.raises(PermissionDenied, match="active staff account"):
        svc.release_message(session, m.id, actor_id=gone.id)
    with pytest.raises(PermissionDenied):
        svc.release_message(session, m.id, actor_id=987654)
    svc.release_message(session, m.id, actor_id=None)  # the system (jobs, intake) is not a staffer
    assert m.status == S.NEW


def test_caseworker_may_still_work_ordinary_mail_and_the_page_offers_only_allowed_moves(client, auth, factory,
                                                                                        session):
    caseworker = auth.login("caseworker")
    m = factory.message(assignee_id=caseworker.id, status=S.ASSIGNED)
    poison = factory.message(status=S.QUARANTINED, status_reason="decode: hostile")
    session.commit()
    response = client.post(f"/messages/{m.id}/status",
                           data={"csrf_token": auth.csrf(f"/messages/{m.id}"), "value": "in_progress"})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Message, m.id).status == S.IN_PROGRESS
    assert not may_move(S.QUARANTINED, S.NEW, caseworker.role)
    page = client.get(f"/messages/{poison.id}").get_data(as_text=True)
    assert 'value="new"' not in page
