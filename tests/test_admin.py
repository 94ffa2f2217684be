import re

from correspondence.models import AuditEvent, Role, Staffer


def test_admin_creates_account_and_changes_role(client, auth, session):
    admin = auth.login(Role.ADMIN)
    token = auth.csrf("/admin/staff")
    response = client.post("/admin/staff", data={"csrf_token": token, "name": "New Person",
                                                 "email": "new.person@example.org", "role": "correspondent"},
                           follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "One-time password" in html
    staffer = session.query(Staffer).filter_by(email="new.person@example.org").one()
    assert staffer.must_change_password
    client.post(f"/admin/staff/{staffer.id}/role", data={"csrf_token": token, "value": "supervisor"})
    client.post(f"/admin/staff/{staffer.id}/deactivate", data={"csrf_token": token})
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert staffer.role == Role.SUPERVISOR and not staffer.active
    actions = {e.action for e in session.query(AuditEvent).filter_by(actor_id=admin.id)}
    assert {"staffer.create", "staffer.role_changed", "staffer.deactivated"} <= actions


def test_bad_account_form_is_400_with_reason(client, auth):
    auth.login(Role.ADMIN)
    token = auth.csrf("/admin/staff")
    response = client.post("/admin/staff", data={"csrf_token": token, "name": "", "email": "not-an-email",
                                                 "role": "correspondent"})
    assert response.status_code == 400
    assert re.search(r"field-error", response.get_data(as_text=True))
    assert client.post("/admin/staff/424242/deactivate", data={"csrf_token": token}).status_code == 404
