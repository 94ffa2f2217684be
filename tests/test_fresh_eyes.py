"""Regressions for what a fresh look at the merged answer, review and paragraph pages found (brief F)."""

from __future__ import annotations

from sqlalchemy import func, select

from correspondence.models import ApprovalDelegation


def test_a_delegation_date_at_the_end_of_the_calendar_is_refused_not_a_server_error(client, auth, session, factory):
    stand_in = factory.staffer(role="correspondent", name="Lee Park")
    session.commit()
    auth.login("supervisor")
    token = auth.csrf("/approvals/")
    for starts_on, ends_on in (("2030-01-01", "9999-12-31"), ("0001-01-01", "2030-01-02")):
        response = client.post("/approvals/delegations", follow_redirects=True, data={
            "csrf_token": token, "delegate_id": str(stand_in.id), "starts_on": starts_on, "ends_on": ends_on})
        page = response.get_data(as_text=True)
        assert response.status_code == 200, (starts_on, ends_on)
        assert "may approve letters on your behalf" not in page
        assert "out of range" in page or "at most" in page or "already over" in page
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ApprovalDelegation)) == 0


def test_a_posted_selection_of_no_usable_ids_is_refused_not_widened_to_the_whole_inbox(client, auth, session, factory):
    messages = [factory.message(from_address=f"s{i}@example.org") for i in range(3)]
    session.commit()
    auth.login("correspondent")
    token = auth.csrf("/inbox/")
    response = client.post("/letters/answer", data={"csrf_token": token, "ids": ["abc", "-5", "1e9"]})
    assert response.status_code == 400
    assert "names no messages" in response.get_data(as_text=True)
    # A real selection still works, and the filter path (no ids posted) is untouched.
    ok = client.post("/letters/answer", data={"csrf_token": token, "ids": ["abc", str(messages[0].id)]})
    assert ok.status_code == 200
