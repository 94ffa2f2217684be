"""Legal holds: placed and released with a reason by supervisors and admins, audited, shown on the pages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from archive import holds
from correspondence.errors import PermissionDenied, ValidationFailed
from correspondence.models import AuditEvent, Batch, CaseCategory, LegalHold, Role
from correspondence.services.history import history_of


def test_a_hold_is_placed_and_released_with_reasons_and_audited(session, factory):
    boss = factory.staffer(Role.SUPERVISOR)
    person = factory.constituent()
    hold = holds.place_hold(session, "constituent", person.id, actor_id=boss.id, reason="  Smith v. County,  2026 ")
    assert hold.reason == "Smith v. County, 2026"
    assert holds.held(session).constituents == {person.id}
    assert [h.id for h in holds.holds_on(session, "constituent", person.id)] == [hold.id]

    holds.release_hold(session, hold.id, actor_id=boss.id, reason="case settled")
    assert holds.held(session).empty
    assert holds.holds_on(session, "constituent", person.id) == []
    assert holds.holds_on(session, "constituent", person.id, include_released=True)[0].release_reason == "case settled"
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "constituent",
                                                              AuditEvent.object_id == str(person.id))).all()
    assert actions == ["legal_hold.place", "legal_hold.release"]
    sentences = [line.sentence for line in history_of(session, "constituent", person.id)]
    assert any("placed a legal hold: Smith v. County, 2026" in s for s in sentences)
    assert any("released a legal hold: case settled" in s for s in sentences)
    with pytest.raises(ValidationFailed, match="already released"):
        holds.release_hold(session, hold.id, actor_id=boss.id, reason="again")


def test_only_supervisors_and_admins_hold_and_a_reason_is_needed(session, factory):
    person = factory.constituent()
    with pytest.raises(PermissionDenied):
        holds.place_hold(session, "constituent", person.id, actor_id=factory.staffer(Role.CORRESPONDENT).id,
                         reason="x")
    admin = factory.staffer(Role.ADMIN)
    with pytest.raises(ValidationFailed, match="say why"):
        holds.place_hold(session, "constituent", person.id, actor_id=admin.id, reason="   ")
    with pytest.raises(ValidationFailed, match="constituent, a case or a batch"):
        holds.place_hold(session, "message", 1, actor_id=admin.id, reason="x")
    assert session.scalars(select(LegalHold)).all() == []


def test_hold_sections_on_the_constituent_case_and_batch_pages(client, auth, session, factory):
    boss = auth.login(Role.SUPERVISOR)
    person = factory.constituent()
    category = session.scalars(select(CaseCategory)).first()
    from correspondence.models import Case

    case = Case(constituent_id=person.id, category_id=category.id, subject="Passport")
    batch = Batch(title="Save the river")
    session.add_all([case, batch])
    session.commit()
    pages = {"constituent": f"/constituents/{person.id}", "case": f"/cases/{case.id}",
             "batch": f"/batches/{batch.id}"}
    for kind, page in pages.items():
        html = client.get(page).get_data(as_text=True)
        assert 'id="legal-hold"' in html and 'id="no-hold"' in html, kind
        object_id = {"constituent": person.id, "case": case.id, "batch": batch.id}[kind]
        response = client.post(f"/privacy/holds/{kind}/{object_id}",
                               data={"csrf_token": auth.csrf(page), "reason": f"Records request <{kind}>"})
        assert response.status_code == 303
        html = client.get(page).get_data(as_text=True)
        assert 'id="hold-in-force"' in html and f"Records request &lt;{kind}&gt;" in html, kind
    hold = session.scalars(select(LegalHold).where(LegalHold.object_type == "batch")).one()
    response = client.post(f"/privacy/holds/{hold.id}/release",
                           data={"csrf_token": auth.csrf(pages["batch"]), "reason": "request answered"})
    assert response.status_code == 303
    session.rollback()  # end the test's read snapshot, so the request's commit is seen
    assert session.get(LegalHold, hold.id).released_by_id == boss.id


def test_a_correspondent_sees_the_hold_but_cannot_place_one(client, auth, session, factory):
    auth.login(Role.CORRESPONDENT)
    person = factory.constituent()
    session.commit()
    html = client.get(f"/constituents/{person.id}").get_data(as_text=True)
    assert 'id="legal-hold"' in html and 'id="place-hold"' not in html and 'id="request-access"' not in html
    response = client.post(f"/privacy/holds/constituent/{person.id}",
                           data={"csrf_token": auth.csrf(f"/constituents/{person.id}"), "reason": "x"})
    assert response.status_code == 403
