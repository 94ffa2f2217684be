"""Casework: cases from messages, steps from the category's template, and the privacy-release gate."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from casework import cases as svc
from correspondence.errors import ValidationFailed
from correspondence.models import Case, CaseCategory, CaseStatus, CaseStep, StepKind


def _blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer, out = PdfWriter(), io.BytesIO()
    writer.add_blank_page(612, 792)
    writer.write(out)
    return out.getvalue()


PDF = _blank_pdf()


def _category(session, name="Passports"):
    return session.scalar(select(CaseCategory).where(CaseCategory.name == name))


def test_categories_are_seeded_with_steps(session):
    names = [c.name for c in svc.categories(session)]
    assert names[:3] == ["Social Security", "Veterans Affairs", "IRS"] and "Passports" in names and len(names) == 11
    assert [s["kind"] for s in _category(session).steps][:2] == ["release", "inquiry"]


def test_the_inquiry_waits_for_a_signed_release(session, factory):
    worker = factory.staffer(role="caseworker")
    person = factory.constituent(first_name="Ana", last_name="Lopez")
    message = factory.message(constituent_id=person.id, subject="My passport is stuck")
    case = svc.open_from_message(session, message.id, category_id=_category(session).id, actor_id=worker.id,
                                 caseworker_id=worker.id)
    steps = svc.steps(session, case.id)
    assert [s.kind for s in steps] == [StepKind.RELEASE, StepKind.INQUIRY, StepKind.AGENCY_RESPONSE,
                                       StepKind.INFORM, StepKind.CLOSE]
    assert case.subject == "My passport is stuck" and case.due_at == steps[-1].due_at
    inquiry = steps[1]
    with pytest.raises(svc.PrivacyReleaseMissing, match="no signed privacy release"):
        svc.complete_step(session, inquiry.id, actor_id=worker.id)
    assert inquiry.done_at is None
    with pytest.raises(ValidationFailed, match="PDF or an image"):
        svc.record_release(session, case.id, b"MZ\x90", "release.exe", "application/x-msdownload",
                           actor_id=worker.id)
    svc.record_release(session, case.id, PDF, "release.pdf", "application/pdf", actor_id=worker.id)
    assert steps[0].done_at is not None and svc.release_on_file(case)
    svc.complete_step(session, inquiry.id, actor_id=worker.id)
    assert case.status == CaseStatus.WAITING_ON_AGENCY
    svc.complete_step(session, steps[2].id, actor_id=worker.id)
    assert case.status == CaseStatus.OPEN
    svc.set_status(session, case.id, CaseStatus.CLOSED, actor_id=worker.id, outcome="Passport issued.")
    assert case.closed_at is not None and case.outcome == "Passport issued."
    with pytest.raises(ValidationFailed, match="cannot become"):
        svc.set_status(session, case.id, CaseStatus.WAITING_ON_AGENCY, actor_id=worker.id)
    actions = [e.action for e in svc.timeline(session, case.id, viewer=worker)]
    assert {"case.open", "case.release", "case.step_done", "case.status"} <= set(actions)


def test_case_pages_explain_the_gate_and_take_the_release(client, auth, session, factory):
    person = factory.constituent(first_name="Ana", last_name="Lopez", address1="12 Elm St")
    message = factory.message(constituent_id=person.id, subject="VA claim delayed")
    session.commit()
    worker = auth.login("caseworker")
    assert 'id="open-case"' in client.get(f"/messages/{message.id}").get_data(as_text=True)
    token = auth.csrf(f"/cases/new?message_id={message.id}")
    opened = client.post("/cases/new", data={"csrf_token": token, "message_id": message.id,
                                             "category_id": _category(session, "Veterans Affairs").id,
                                             "caseworker_id": worker.id})
    assert opened.status_code == 303
    session.rollback()
    case = session.scalar(select(Case))
    inquiry = session.scalar(select(CaseStep).where(CaseStep.case_id == case.id, CaseStep.kind == StepKind.INQUIRY))
    refused = client.post(f"/cases/{case.id}/step", data={"csrf_token": token, "step_id": inquiry.id},
                          follow_redirects=True)
    assert "cannot be sent yet" in refused.get_data(as_text=True)
    pdf = client.get(f"/cases/{case.id}/release.pdf")
    assert pdf.status_code == 200 and "12 Elm St" in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    client.post(f"/cases/{case.id}/release", data={"csrf_token": token,
                                                   "file": (io.BytesIO(PDF), "signed.pdf", "application/pdf")},
                content_type="multipart/form-data")
    done = client.post(f"/cases/{case.id}/step", data={"csrf_token": token, "step_id": inquiry.id},
                       follow_redirects=True)
    assert "Done: Send the inquiry to the agency." in done.get_data(as_text=True)
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "signed document uploaded" in page and "waiting on agency" in page


def test_reminders_and_case_ageing(client, auth, session, factory, job_env, smtp_server, monkeypatch):
    from datetime import timedelta

    from casework.reminders import case_ageing, due_steps
    from correspondence.models import utcnow
    from workers.jobs import run_case_reminders

    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    worker = factory.staffer(role="caseworker", name="Lena Novak", email="lena@example.org")
    person = factory.constituent()
    old = svc.open_case(session, constituent_id=person.id, category_id=_category(session).id, subject="Old case",
                        actor_id=worker.id, caseworker_id=worker.id)
    old.opened_at = utcnow() - timedelta(days=75)
    first = svc.steps(session, old.id)[0]
    first.due_at = utcnow() - timedelta(days=3)
    svc.open_case(session, constituent_id=person.id, category_id=_category(session).id, subject="New case",
                  actor_id=worker.id, caseworker_id=worker.id)
    session.commit()

    due = due_steps(session)[worker.id]
    assert [(d.title, d.overdue) for d in due] == [("Receive the signed privacy release", True)]
    ageing = {row.name: row.buckets for row in case_ageing(session)}
    assert ageing["Lena Novak"] == [1, 0, 1, 0]
    session.rollback()  # end the read snapshot: the job and the app write from other connections

    assert run_case_reminders() == {"caseworkers": 1, "emailed": 1}
    mail = smtp_server.inbox.messages[0]
    assert mail["To"] == "lena@example.org" and "OVERDUE" in mail.get_content()

    auth.login("supervisor")
    assert 'id="case-ageing"' in client.get("/dashboard/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": auth.csrf("/dashboard/")})
    client.post("/login", data={"email": worker.email, "password": factory.PASSWORD, "csrf_token": auth.csrf("/login")})
    page = client.get("/cases/").get_data(as_text=True)
    assert 'id="my-due-steps"' in page and "overdue since" in page
