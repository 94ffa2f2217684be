"""Casework notes, documents and signed releases are need-to-know: the case's caseworker, supervisors and
admins. Enforced in casework.cases (may_see_private), used by every page that shows them."""

import pytest
from sqlalchemy import select

from casework import cases as svc
from constituents import records as constituents
from correspondence.models import CaseCategory, Role
from tests.test_cases import PDF

NOTE = "Her VA claim number is 123-45-6789; she is recovering from surgery"


def _case_with_private_parts(session, factory, caseworker):
    person = factory.constituent(first_name="Ana", last_name="Lopez")
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "Veterans Affairs"))
    case = svc.open_case(session, constituent_id=person.id, category_id=category.id, subject="VA claim delayed",
                         actor_id=caseworker.id, caseworker_id=caseworker.id)
    svc.add_note(session, case.id, NOTE, actor_id=caseworker.id)
    doc = svc.add_document(session, case.id, PDF, "medical-letter.pdf", "application/pdf", actor_id=caseworker.id)
    svc.record_release(session, case.id, PDF, "signed-release.pdf", "application/pdf", actor_id=caseworker.id)
    session.commit()
    return case, doc


def test_may_see_private_is_the_caseworker_supervisors_and_admins(session, factory):
    owner = factory.staffer(role=Role.CASEWORKER)
    case, _doc = _case_with_private_parts(session, factory, owner)
    allowed = {"owner": owner, "supervisor": factory.staffer(role=Role.SUPERVISOR),
               "admin": factory.staffer(role=Role.ADMIN)}
    refused = {"another caseworker": factory.staffer(role=Role.CASEWORKER),
               "correspondent": factory.staffer(role=Role.CORRESPONDENT),
               "inactive admin": factory.staffer(role=Role.ADMIN, active=False), "nobody": None}
    for who, staffer in allowed.items():
        assert svc.may_see_private(staffer, case), who
        assert [n.text for n in svc.private_notes(session, case, staffer)] == [NOTE], who
        assert len(svc.private_documents(session, case, staffer) or ()) == 2, who
    for who, staffer in refused.items():
        assert not svc.may_see_private(staffer, case), who
        assert svc.private_notes(session, case, staffer) is None, who
        assert svc.private_documents(session, case, staffer) is None, who
    # The history of a case names documents and signers: the private events are left out for others.
    owner_actions = {e.action for e in svc.timeline(session, case.id, viewer=owner)}
    other_actions = {e.action for e in svc.timeline(session, case.id, viewer=refused["correspondent"])}
    assert {"case.note", "case.document", "case.release"} <= owner_actions
    assert not other_actions & svc.PRIVATE_ACTIONS and "case.open" in other_actions


def test_only_those_who_may_see_may_add(session, factory):
    owner = factory.staffer(role=Role.CASEWORKER)
    case, _doc = _case_with_private_parts(session, factory, owner)
    other = factory.staffer(role=Role.CASEWORKER)
    with pytest.raises(svc.PrivateToCase, match="caseworker, supervisors and admins"):
        svc.add_note(session, case.id, "I should not be here", actor_id=other.id)
    with pytest.raises(svc.PrivateToCase):
        svc.add_document(session, case.id, PDF, "x.pdf", "application/pdf", actor_id=other.id)
    with pytest.raises(svc.PrivateToCase):
        svc.record_release(session, case.id, PDF, "x.pdf", "application/pdf", actor_id=other.id)
    # Reassigned to them, they may.
    svc.update_details(session, case.id, {"caseworker_id": str(other.id)}, actor_id=owner.id)
    assert svc.add_note(session, case.id, "Taking this over", actor_id=other.id).text == "Taking this over"
    assert not svc.may_see_private(owner, case)


@pytest.mark.parametrize(("role", "on_case", "sees"), [
    (Role.CASEWORKER, True, True), (Role.SUPERVISOR, False, True), (Role.ADMIN, False, True),
    (Role.CASEWORKER, False, False), (Role.CORRESPONDENT, False, False)])
def test_case_page_document_and_release_form(client, auth, session, factory, role, on_case, sees):
    viewer = auth.login(role)
    owner = viewer if on_case else factory.staffer(role=Role.CASEWORKER)
    case, doc = _case_with_private_parts(session, factory, owner)
    page = client.get(f"/cases/{case.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "VA claim delayed" in html  # everyone sees the case summary
    assert (NOTE in html) is sees
    assert ("medical-letter.pdf" in html) is sees
    assert ("signed document uploaded" in html) is sees
    assert ("seen only by its caseworker, supervisors and admins" in html) is not sees
    download = client.get(f"/cases/{case.id}/documents/{doc.id}")
    assert download.status_code == (200 if sees else 403)
    assert (download.data == PDF) is sees
    release_form = client.get(f"/cases/{case.id}/release.pdf")
    assert release_form.status_code == (200 if sees else 403)
    # A document id of another case is a 404 for everyone, whatever they may see.
    assert client.get(f"/cases/{case.id}/documents/{doc.id + 1000}").status_code == 404
    # The constituent's timeline lists the note only for those who may see it.
    person_page = client.get(f"/constituents/{case.constituent_id}").get_data(as_text=True)
    assert (NOTE[:60] in person_page) is sees


def test_a_caseworker_not_on_the_case_cannot_add_a_note_through_the_page(client, auth, session, factory):
    owner = factory.staffer(role=Role.CASEWORKER)
    case, _doc = _case_with_private_parts(session, factory, owner)
    auth.login(Role.CASEWORKER)
    answer = client.post(f"/cases/{case.id}/note", data={"csrf_token": auth.csrf(f"/cases/{case.id}"),
                                                         "text": "sneaky note"}, follow_redirects=True)
    assert "seen only by its caseworker" in answer.get_data(as_text=True)
    session.rollback()
    assert "sneaky note" not in [n.text for n in svc.private_notes(session, case, owner)]


def test_constituent_timeline_without_a_rule_lists_no_notes(session, factory):
    owner = factory.staffer(role=Role.CASEWORKER)
    case, _doc = _case_with_private_parts(session, factory, owner)
    kinds = {e.kind for e in constituents.timeline(session, case.constituent_id)}
    assert "case" in kinds and "note" not in kinds
    kinds = {e.kind for e in constituents.timeline(session, case.constituent_id,
                                                     notes_of=lambda c: svc.may_see_private(owner, c))}
    assert "note" in kinds
