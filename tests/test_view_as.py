"""View as: an admin seeing Mailroom as a staffer is never recorded as that staffer, and cannot take
constituent data out under their name."""

from __future__ import annotations

import re

import pytest
from flask_login import current_user
from sqlalchemy import select

from correspondence.models import AuditEvent, Role
from correspondence.services.audit import acting_for, record, record_many
from web.access import EXPORTS, signed_in


def _view_as(client, auth, session, factory):
    target = factory.staffer(role=Role.CORRESPONDENT, name="Lena Novak")
    session.commit()
    admin = auth.login(Role.ADMIN)
    token = auth.csrf("/admin/staff")
    assert client.post(f"/admin/staff/{target.id}/view-as", data={"csrf_token": token}).status_code == 303
    return admin, target, token


def _events(session, action: str) -> list[AuditEvent]:
    session.rollback()
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_exports_are_refused_while_viewing_as_and_nothing_is_recorded_in_the_staffers_name(
        client, auth, session, factory):
    factory.constituent(first_name="Rosa", last_name="Martinez")
    admin, target, _token = _view_as(client, auth, session, factory)
    for path in ("/constituents/export.csv", "/inbox/export.csv", "/cases/export.csv"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "downloads of constituent data are turned off" in response.get_data(as_text=True)
        assert "Martinez" not in response.get_data(as_text=True)
    assert _events(session, "constituents.export") == []
    # As themselves again, the admin may export, and it is theirs alone.
    client.post("/view-as/stop", data={"csrf_token": auth.csrf("/inbox/")})
    response = client.get("/constituents/export.csv")
    assert response.status_code == 200 and "Martinez" in response.get_data(as_text=True)
    (event,) = _events(session, "constituents.export")
    assert event.actor_id == admin.id and event.on_behalf_of_id is None


def test_every_download_route_is_refused_while_viewing_as(app, client, auth, session, factory):
    _view_as(client, auth, session, factory)
    files = [r for r in app.url_map.iter_rules()
             if re.search(r"\.(csv|pdf)$|/documents/", r.rule) and r.endpoint != "static"]
    assert {r.endpoint for r in files} <= EXPORTS, "a new download route: add it to web.access.EXPORTS"
    for rule in files:
        path = re.sub(r"<(?:int:)?([a-z_]+)>", lambda m: "1" if "id" in m.group(1) else "activity", rule.rule)
        response = client.get(path)
        assert response.status_code == 403, path


def test_audit_events_while_viewing_as_name_the_admin_on_behalf_of_the_staffer(app, client, auth, session,
                                                                               factory):
    """Whatever a view passes as actor (views pass current_user, the staffer viewed), the admin is recorded."""
    from web import db_session

    @app.route("/test-audited-read")
    @signed_in
    def audited_read():
        record(db_session(), actor_id=current_user.id, action="test.read", object_type="test", object_id=1)
        db_session().commit()
        return "ok"

    admin, target, token = _view_as(client, auth, session, factory)
    assert client.get("/test-audited-read").status_code == 200
    client.post("/view-as/stop", data={"csrf_token": token})
    assert client.get("/test-audited-read").status_code == 200  # as the admin again
    viewing, own = _events(session, "test.read")
    assert (viewing.actor_id, viewing.on_behalf_of_id) == (admin.id, target.id)
    assert (own.actor_id, own.on_behalf_of_id) == (admin.id, None)
    (stop,) = _events(session, "staff.view_as_stop")
    assert (stop.actor_id, stop.on_behalf_of_id) == (admin.id, target.id)


def test_the_service_level_context_covers_record_and_record_many(session, factory):
    admin, staffer = factory.staffer(role=Role.ADMIN), factory.staffer()
    with acting_for(admin.id, staffer.id):
        one = record(session, actor_id=staffer.id, action="test.one", object_type="test", object_id=1)
        record_many(session, actor_id=staffer.id, action="test.many", object_type="test", events=[(2, None)])
    after = record(session, actor_id=staffer.id, action="test.after", object_type="test", object_id=3)
    session.flush()
    many = session.scalar(select(AuditEvent).where(AuditEvent.action == "test.many"))
    assert (one.actor_id, one.on_behalf_of_id) == (admin.id, staffer.id)
    assert (many.actor_id, many.on_behalf_of_id) == (admin.id, staffer.id)
    assert (after.actor_id, after.on_behalf_of_id) == (staffer.id, None)


@pytest.mark.parametrize("endpoint", sorted(EXPORTS))
def test_exports_list_names_real_routes(app, endpoint):
    assert endpoint in app.view_functions
