"""The constituent record: one timeline of messages, answers and cases; edits audited and validated."""

from __future__ import annotations

from sqlalchemy import select

from casework import cases
from correspondence.models import AuditEvent, CaseCategory, Constituent, DistrictStatus, Response, ResponseState


def test_profile_timeline_and_audited_edit(client, auth, session, factory):
    person = factory.constituent(first_name="<script>alert(1)</script>", last_name="Lopez", zip5="43215")
    first = factory.message(constituent_id=person.id, subject="Bridge repair")
    session.add(Response(message_id=first.id, constituent_id=person.id, method="email", subject="Re: Bridge repair",
                         body_text="Thank you.", email_message_id="<r1@x>", state=ResponseState.SENT))
    worker = factory.staffer(role="caseworker")
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "Passports"))
    cases.open_case(session, constituent_id=person.id, category_id=category.id, subject="Passport renewal",
                    actor_id=worker.id)
    session.commit()
    auth.login("correspondent")
    page = client.get(f"/constituents/{person.id}").get_data(as_text=True)
    assert "Bridge repair" in page and "Re: Bridge repair" in page and "Passport renewal" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert f'href="/constituents/{person.id}"' in client.get(f"/messages/{first.id}").get_data(as_text=True)

    token = auth.csrf(f"/constituents/{person.id}")
    bad = client.post(f"/constituents/{person.id}/edit", data={"csrf_token": token, "zip5": "4321", "state": "Oz"},
                      follow_redirects=True).get_data(as_text=True)
    assert "ZIP must be 5 digits" in bad and "two-letter" in bad
    saved = client.post(f"/constituents/{person.id}/edit", data={
        "csrf_token": token, "first_name": "Ana", "last_name": "Lopez", "zip5": "43085", "state": "oh"},
        follow_redirects=True)
    assert "Saved." in saved.get_data(as_text=True), saved.get_data(as_text=True)[-3000:]
    session.rollback()
    session.expire_all()
    person = session.get(Constituent, person.id)
    assert (person.first_name, person.zip5, person.state) == ("Ana", "43085", "OH")
    assert person.district_status == DistrictStatus.UNKNOWN  # placed again with the new ZIP
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "constituent.edit"))
    assert event.before["zip5"] == "43215" and event.after["zip5"] == "43085"
