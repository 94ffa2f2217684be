"""People's rights: a subject access ZIP with everything held about one person, and erasure that leaves no trace."""

from __future__ import annotations

import io
import json
import zipfile
from email.message import EmailMessage

import pytest
from sqlalchemy import select, text

from archive import holds, rights
from constituents import records
from correspondence.errors import PermissionDenied
from correspondence.models import (
    AuditEvent,
    Batch,
    Blob,
    Case,
    CaseCategory,
    CaseDocument,
    CaseNote,
    CaseStep,
    Constituent,
    DeliveryMethod,
    Erasure,
    Message,
    MessageStatus,
    Role,
    RunState,
    SubjectAccessExport,
)
from correspondence.models import Response as Answer
from correspondence.services.audit import record
from correspondence.services.blobs import blob_store, load_blob, store_blob
from insight.search import search

WORD = "xylophonequartz"


def _raw_with_attachment() -> bytes:
    mail = EmailMessage()
    mail["From"] = "Zelda Quixote <zelda@example.net>"
    mail["To"] = "office@example.gov"
    mail["Subject"] = "My benefits"
    mail["Message-ID"] = "<zelda-1@example.net>"
    mail.set_content(f"My {WORD} benefits stopped in March.")
    mail.add_attachment(b"%PDF-1.4 award letter", maintype="application", subtype="pdf", filename="award.pdf")
    return mail.as_bytes()


def _fresh(session) -> None:
    session.rollback()
    session.expire_all()


@pytest.fixture
def zelda(session, factory):
    """One person with everything: contacts, a tag, mail with an attachment, an answer, a case with all its parts."""
    boss = factory.staffer(Role.SUPERVISOR)
    person = factory.constituent(first_name="Zelda", last_name="Quixote", email="zelda@example.net",
                                 address1="12 Elm St")
    records.add_contact(session, person.id, "phone", "614-555-0143", actor_id=boss.id)
    records.add_tag(session, person.id, "veteran", actor_id=boss.id)
    records.update_constituent(session, person.id, {"city": "Dayton"}, actor_id=boss.id)
    raw = _raw_with_attachment()
    batch = Batch(title="Benefits")
    session.add(batch)
    session.flush()
    message = factory.message(constituent_id=person.id, subject="My benefits", from_name="Zelda Quixote",
                              from_address="zelda@example.net", body_text=f"My {WORD} benefits stopped in March.",
                              raw_sha256=store_blob(session, raw, "message/rfc822"), batch_id=batch.id,
                              idempotency_key="<zelda-1@example.net>")
    record(session, actor_id=None, action="message.received", object_type="message", object_id=message.id,
           after={"channel": "email", "key": "<zelda-1@example.net>"}, detail="from Zelda Quixote")
    answer = Answer(message_id=message.id, constituent_id=person.id, method=DeliveryMethod.EMAIL,
                    to_address="zelda@example.net", subject="Re: My benefits", body_text="Dear Zelda, ...",
                    email_message_id="<answer-zelda@office>")
    category = session.scalars(select(CaseCategory)).first()
    case = Case(constituent_id=person.id, category_id=category.id, subject="Zelda Quixote benefits",
                agency="SSA", agency_contact="Desk 4", source_message_id=message.id)
    session.add_all([answer, case])
    session.flush()
    doc = store_blob(session, b"%PDF Zelda's award letter", "application/pdf")
    session.add_all([CaseStep(case_id=case.id, position=1, title="Get the release"),
                     CaseNote(case_id=case.id, text="Zelda called twice"),
                     CaseDocument(case_id=case.id, sha256=doc, filename="../award letter.pdf",
                                  content_type="application/pdf", size=25)])
    session.commit()
    return {"person": person, "message": message, "case": case, "raw": raw, "doc": doc, "boss": boss,
            "answer": answer, "batch": batch}


def test_subject_access_zip_holds_everything_about_the_person(session, factory, database, zelda):
    other = factory.constituent(first_name="Someone", last_name="Else")
    factory.message(constituent_id=other.id, subject="Not Zelda's")
    done = rights.request_access(session, zelda["person"].id, actor_id=zelda["boss"].id)
    assert [e.job for e in done.effects] == ["subject_access"]
    session.commit()
    export = rights.build_access(database, done.value.id)
    assert export.state == RunState.DONE
    _fresh(session)
    export, data = rights.download_export(session, done.value.id, actor_id=zelda["boss"].id)
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = set(zf.namelist())
    assert {"README.txt", "record.json", "messages.jsonl", "answers.jsonl", "cases.jsonl", "case_steps.jsonl",
            "case_notes.jsonl", "case_documents.jsonl", "help_requests.jsonl", "mail_standing.jsonl",
            "audit.jsonl"} <= names
    rec = json.loads(zf.read("record.json"))
    assert (rec["first_name"], rec["emails"], rec["phones"], rec["tags"]) == (
        "Zelda", ["zelda@example.net"], ["+16145550143"], ["veteran"])
    messages = [json.loads(line) for line in zf.read("messages.jsonl").splitlines()]
    assert [m["subject"] for m in messages] == ["My benefits"]  # nobody else's mail
    # The original as received, attachment inside.
    assert zf.read(f"originals/{zelda['message'].raw_sha256}") == zelda["raw"]
    assert b"award.pdf" in zf.read(f"originals/{zelda['message'].raw_sha256}")
    assert [json.loads(line)["to_address"] for line in zf.read("answers.jsonl").splitlines()] == ["zelda@example.net"]
    assert json.loads(zf.read("case_notes.jsonl").splitlines()[0])["text"] == "Zelda called twice"
    assert json.loads(zf.read("case_steps.jsonl").splitlines()[0])["title"] == "Get the release"
    assert zf.read(f"documents/{zelda['doc']}-award_letter.pdf") == b"%PDF Zelda's award letter"
    audit = [json.loads(line) for line in zf.read("audit.jsonl").splitlines()]
    assert {"constituent.add_phone", "constituent.tag", "constituent.edit", "message.received",
            "subject_access.request"} <= {a["action"] for a in audit}
    events = session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "constituent",
                                                             AuditEvent.object_id == str(zelda["person"].id))).all()
    assert "subject_access.download" in events


def test_subject_access_from_the_constituent_page(client, auth, session, database, zelda, redis):
    auth.login(Role.SUPERVISOR)
    page = f"/constituents/{zelda['person'].id}"
    assert 'id="request-access"' in client.get(page).get_data(as_text=True)
    response = client.post(f"/privacy/constituents/{zelda['person'].id}/access", data={"csrf_token": auth.csrf(page)})
    assert response.status_code == 303
    _fresh(session)
    export = session.scalars(select(SubjectAccessExport)).one()
    assert redis.exists(f"rq:job:subject-access-{export.id}")
    token = auth.csrf(page)
    assert client.post(f"/privacy/access/{export.id}.zip", data={"csrf_token": token}).status_code == 409  # not built
    rights.build_access(database, export.id)
    html = client.get(page).get_data(as_text=True)
    assert f'id="access-download-{export.id}"' in html
    # A button with its CSRF token, never a plain link: each download is audited.
    assert client.get(f"/privacy/access/{export.id}.zip").status_code == 405
    assert client.post(f"/privacy/access/{export.id}.zip").status_code == 400
    response = client.post(f"/privacy/access/{export.id}.zip", data={"csrf_token": token})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "record.json" in zipfile.ZipFile(io.BytesIO(response.data)).namelist()


def test_a_legal_hold_blocks_erasure_with_a_clear_message(session, factory, zelda):
    admin = factory.staffer(Role.ADMIN)
    for kind, oid in (("constituent", zelda["person"].id), ("case", zelda["case"].id), ("batch", zelda["batch"].id)):
        hold = holds.place_hold(session, kind, oid, actor_id=admin.id, reason=f"Hold on the {kind}")
        with pytest.raises(rights.HeldByLaw, match=f"legal hold .* \\(Hold on the {kind}\\). Release the hold first"):
            rights.erase_constituent(session, zelda["person"].id, actor_id=admin.id, reason="asked by letter")
        holds.release_hold(session, hold.id, actor_id=admin.id, reason="done")
    assert session.get(Constituent, zelda["person"].id).last_name == "Quixote"
    with pytest.raises(PermissionDenied):
        rights.erase_constituent(session, zelda["person"].id, actor_id=zelda["boss"].id, reason="asked")


def test_erasure_leaves_no_trace_in_search_raw_inputs_or_the_audit(session, factory, zelda):
    admin = factory.staffer(Role.ADMIN)
    # Someone else sent the very same attachment-laden bytes: that blob must stay for them.
    shared = factory.message(subject="Forwarded", raw_sha256=zelda["message"].raw_sha256)
    lone_raw = store_blob(session, b"Zelda's second letter, raw", "message/rfc822")
    second = factory.message(constituent_id=zelda["person"].id, raw_sha256=lone_raw, body_text=f"{WORD} again")
    session.commit()
    assert search(session, WORD).messages and search(session, "Quixote").constituents

    erasure = rights.erase_constituent(session, zelda["person"].id, actor_id=admin.id,
                                       reason="Written request of 1 Dec 2026")
    session.commit()
    _fresh(session)
    assert erasure.counts["messages"] == 2 and erasure.counts["cases"] == 1 and erasure.counts["answers"] == 1
    # Search: no message, person or case found by anything they wrote or were called.
    for words in (WORD, "Quixote", "Zelda", "zelda@example.net", "benefits stopped"):
        found = search(session, words)
        assert not found.messages and not found.constituents and not found.cases, words
    if session.get_bind().dialect.name == "sqlite":
        hits = session.execute(text("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH :w"),
                               {"w": WORD}).scalar()
        assert hits == 0
    # Raw inputs: the person's own original is gone (row and file); the shared one stays for the other sender.
    assert session.get(Blob, lone_raw) is None and not blob_store(session).path_for(lone_raw).exists()
    assert session.get(Blob, zelda["doc"]) is None
    assert load_blob(session, session.get(Message, shared.id).raw_sha256) == zelda["raw"]
    # The counts stay: the messages, the case and the answer are still there, empty of the person.
    m = session.get(Message, zelda["message"].id)
    assert (m.body_text, m.from_address, m.from_name, m.raw_sha256, m.batch_id) == ("", None, None, None,
                                                                                      zelda["batch"].id)
    assert m.status == MessageStatus.ARCHIVED and "zelda" not in m.idempotency_key
    assert session.get(Message, second.id).body_text == ""
    case = session.get(Case, zelda["case"].id)
    assert (case.subject, case.agency_contact, case.agency) == (rights.ERASED, None, "SSA")
    answer = session.get(Answer, zelda["answer"].id)
    assert (answer.to_address, answer.body_text) == (None, "")
    person = session.get(Constituent, zelda["person"].id)
    assert (person.first_name, person.last_name, person.address1, person.emails, person.phones, person.tags) == (
        None, None, None, [], [], [])
    # The audit: that it happened, by whom, why and how much, and nothing left of who it was.
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "constituent.erase")).one()
    assert (event.actor_id, event.detail, event.after["messages"]) == (admin.id, "Written request of 1 Dec 2026", 2)
    every_event = json.dumps([[e.before, e.after, e.detail, e.object_id]
                              for e in session.scalars(select(AuditEvent))])
    for trace in ("Zelda", "Quixote", "zelda@", "5550143", "Dayton", "veteran", "Elm St"):
        assert trace not in every_event, trace
    assert session.scalars(select(Erasure)).one().erased_by_id == admin.id


def test_the_erase_page_needs_a_reason_and_a_confirmation(client, auth, session, zelda):
    auth.login(Role.ADMIN)
    page = f"/privacy/constituents/{zelda['person'].id}/erase"
    html = client.get(page).get_data(as_text=True)
    assert 'id="erase-submit"' in html and "cannot be undone" in html
    response = client.post(page, data={"csrf_token": auth.csrf(page), "reason": "asked"}, follow_redirects=True)
    assert "tick the box" in response.get_data(as_text=True)
    response = client.post(page, data={"csrf_token": auth.csrf(page), "reason": "asked", "confirm": "erase"})
    assert response.status_code == 303
    html = client.get(f"/constituents/{zelda['person'].id}").get_data(as_text=True)
    assert 'id="erased-notice"' in html and "Quixote" not in html


def test_the_sweep_queues_again_a_retention_run_and_an_access_zip_whose_jobs_were_lost(session, factory, database):
    """Redis flushed or a worker killed: the run and the ZIP stay "queued"/"running" in the database, and the
    sweep asks for their jobs again (each job is idempotent); recent and finished ones are left alone."""
    from datetime import timedelta

    from archive.export_runs import restart_stalled_exports
    from archive.rights import build_access
    from correspondence.models import RetentionRun, RunState, SubjectAccessExport, utcnow

    person = factory.constituent(first_name="Lost", email="lost@example.org")
    long_ago = utcnow() - timedelta(hours=2)
    lost_run = RetentionRun(dry_run=True, state=RunState.QUEUED, created_at=long_ago)
    lost_zip = SubjectAccessExport(constituent_id=person.id, state=RunState.RUNNING, created_at=long_ago)
    fresh_zip = SubjectAccessExport(constituent_id=person.id, state=RunState.QUEUED)
    done_zip = SubjectAccessExport(constituent_id=person.id, state=RunState.DONE, created_at=long_ago)
    session.add_all([lost_run, lost_zip, fresh_zip, done_zip])
    session.commit()
    found = restart_stalled_exports(session, older_than=timedelta(minutes=15))
    assert found.value == 2
    assert {(e.job, e.ids) for e in found.effects} == {("retention", (lost_run.id,)),
                                                       ("subject_access", (lost_zip.id,))}
    # Picked up again, the interrupted ZIP is built.
    built = build_access(database, lost_zip.id)
    assert built.state == RunState.DONE and built.size and built.size > 0
