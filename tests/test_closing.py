"""Closing an office (archive/closing.py, web/closing.py): each step, its refusals and what survives the purge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from archive import closing
from archive.export import file_sha256
from casework import cases
from config import Settings
from correspondence import secretbox
from correspondence.errors import InvalidTransition, PermissionDenied, ValidationFailed
from correspondence.models import (
    AuditEvent,
    Base,
    Blob,
    Case,
    CaseCategory,
    CaseStatus,
    ClosingAutoReply,
    Constituent,
    FormLetter,
    MailboxAccount,
    Message,
    OfficeClosing,
    Response,
    Role,
)
from correspondence.services.blobs import store_blob
from correspondence.services.tokens import create_token
from drafting.send import send_responses
from tests.conftest import csrf_token
from tests.test_cases import PDF

OFFICE = "Office of Representative Jane Doe"  # Settings' default office name, which the tests' settings keep
SUCCESSOR = ("Office of Representative Sam Park", "1200 Longworth Building, Washington, DC 20515\n(202) 555-0143\n"
             "https://park.house.gov/contact")


def _close(session, actor_id=None) -> OfficeClosing:
    row = closing.stop_intake(session, actor_id=actor_id, successor_name=SUCCESSOR[0], successor_contact=SUCCESSOR[1])
    session.commit()
    return row


def _mailbox(session, *, active=True, secret_key="") -> MailboxAccount:
    box = MailboxAccount(name=f"box{active}", host="127.0.0.1", port=1, security="none", username="u",
                         password_encrypted=secretbox.encrypt(secret_key, "p") if secret_key else "x",
                         folders=["INBOX"], active=active)
    session.add(box)
    session.flush()
    return box


# --- step 1: intake stops ---------------------------------------------------------------------------

def test_stop_intake_pauses_mailboxes_and_is_audited(session, factory):
    admin = factory.staffer(role=Role.ADMIN)
    box = _mailbox(session)
    with pytest.raises(ValidationFailed, match="successor"):
        closing.stop_intake(session, actor_id=admin.id, successor_name=" ", successor_contact="")
    row = _close(session, admin.id)
    session.refresh(box)
    assert box.active is False
    assert row.intake_stopped_by_id == admin.id and row.successor_name == SUCCESSOR[0]
    actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["mailbox.deactivate", "closing.intake_stopped"]
    # Run again: only the successor's contact changes, audited with before and after.
    closing.stop_intake(session, actor_id=admin.id, successor_name=SUCCESSOR[0], successor_contact="call 555-0100")
    session.commit()
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "closing.successor"))
    assert event.before["contact"] == SUCCESSOR[1] and event.after["contact"] == "call 555-0100"


def test_the_web_form_and_cwc_apis_answer_closed_with_the_successor(client, session):
    _t, plain = create_token(session, name="website", actor_id=None)
    session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    body = {"first_name": "Dana", "last_name": "Reyes", "email": "dana@example.org", "zip5": "43215",
            "message": "Please keep the clinic open."}
    assert client.post("/api/v1/intake/webform", json=body, headers=headers).status_code == 202
    _close(session)
    answer = client.post("/api/v1/intake/webform", json={**body, "message": "Another one"}, headers=headers)
    assert answer.status_code == 410
    error = answer.get_json()["error"]
    assert error["message"].startswith("This office has closed.") and SUCCESSOR[0] in error["message"]
    assert error["successor"] == {"name": SUCCESSOR[0], "contact": SUCCESSOR[1]}
    cwc = client.post("/api/v1/intake/cwc", data=b"<CWC/>", headers=headers)
    assert cwc.status_code == 410
    assert session.scalar(select(func.count()).select_from(Message)) == 1  # nothing stored after closing


def test_the_help_page_says_closed_and_takes_no_request(client, session):
    assert "Ask " in client.get("/help").get_data(as_text=True)
    token = csrf_token(client, "/help")
    _close(session)
    page = client.get("/help")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "This office has closed" in text and SUCCESSOR[0] in text
    assert "1200 Longworth Building" in text and "<form" not in text.split("<main", 1)[-1]
    refused = client.post("/help", data={"csrf_token": token, "first_name": "Ana", "last_name": "Diaz",
                                         "email": "ana@example.org", "description": "My passport"})
    assert refused.status_code == 410 and "This office has closed" in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Case)) == 0


def test_imap_polling_stops_when_the_office_closes(session, job_env):
    from workers.jobs import run_poll_imap

    _mailbox(session, secret_key=job_env.secret_key)
    session.commit()
    assert run_poll_imap() == {"boxTrue": -1}  # open: the mailbox is tried (nothing listens on port 1)
    _close(session)
    session.execute(update(MailboxAccount).values(active=True))  # someone turns it on again
    session.commit()
    assert run_poll_imap() == {}


# --- step 2: the auto-reply ---------------------------------------------------------------------------

AUTOMATIC = (b"From: Mail Delivery <robot@lists.example.org>\r\nTo: office@example.gov\r\nSubject: Digest\r\n"
             b"Auto-Submitted: auto-generated\r\nMessage-ID: <auto-1@lists.example.org>\r\n\r\nA digest.\r\n")


def test_new_mail_after_closing_gets_one_reply_per_sender_through_the_send_path(
        session, factory, database, settings, smtp_server):
    factory.message(from_address="before@example.net")  # written before the closing: not answered
    _close(session)
    later = datetime.now(UTC) + timedelta(seconds=1)
    factory.message(from_address="Dana@Example.org", created_at=later)
    factory.message(from_address="dana@example.org", created_at=later)
    factory.message(from_address="lee@example.net", created_at=later)
    factory.message(from_address="MAILER-DAEMON@example.net", created_at=later)
    factory.message(from_address="robot@lists.example.org", created_at=later,
                    raw_sha256=store_blob(session, AUTOMATIC, "message/rfc822"))
    session.commit()
    done = closing.queue_auto_replies(session, office_name=OFFICE, mail_domain="example.gov")
    session.commit()
    assert done.value == 2 and [e.job for e in done.effects] == ["send"]
    assert closing.queue_auto_replies(session, office_name=OFFICE, mail_domain="example.gov").value == 0
    factory.message(from_address="dana@example.org", created_at=later + timedelta(minutes=1))
    session.commit()
    assert closing.queue_auto_replies(session, office_name=OFFICE, mail_domain="example.gov").value == 0
    assert session.scalar(select(func.count()).select_from(ClosingAutoReply)) == 2
    # The audit keeps that a reply went, never the address (the audit log outlives the purge).
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "closing.auto_reply")))
    assert len(events) == 2 and all("@" not in json.dumps(e.after) for e in events)

    cfg = Settings.from_env({}, **{**settings.__dict__, "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port,
                                   "smtp_security": "none", "smtp_rate_per_second": 0.0})
    result = send_responses(database, list(done.effects[0].ids), cfg)
    assert result.sent == 2
    got = smtp_server.inbox.messages
    assert sorted(m["To"] for m in got) == ["Dana@Example.org", "lee@example.net"]
    text = got[0].get_body(("plain",)).get_content()
    assert "This office has closed" in text and SUCCESSOR[0] in text and "(202) 555-0143" in text
    assert got[0]["Subject"] == f"{OFFICE} has closed"


def test_no_auto_reply_while_the_office_is_open(session, factory):
    factory.message(from_address="dana@example.org")
    session.commit()
    assert closing.queue_auto_replies(session, office_name=OFFICE, mail_domain="example.gov").value == 0


# --- steps 3 to 5: exports and the purge -------------------------------------------------------------

def _office_with_data(session, factory):
    """A small office: two people, mail with its raw input, three cases (one with consent and a document)."""
    worker = factory.staffer(role=Role.CASEWORKER, name="Casey Worker")
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "IRS"))
    dana = factory.constituent(first_name="Dana", last_name="Reyes", email="dana@example.org")
    lee = factory.constituent(first_name="Lee", last_name="Chan", email="lee@example.net")
    raw = b"From: dana@example.org\r\nSubject: Refund\r\n\r\nMy refund is late.\r\n"
    factory.message(constituent_id=dana.id, raw_sha256=store_blob(session, raw, "message/rfc822"))
    factory.message(constituent_id=lee.id)
    consented = cases.open_case(session, constituent_id=dana.id, category_id=category.id, subject="Late refund",
                                actor_id=worker.id, caseworker_id=worker.id)
    cases.add_note(session, consented.id, "Called the IRS advocate.", actor_id=worker.id)
    cases.add_document(session, consented.id, PDF, "letter.pdf", "application/pdf", actor_id=worker.id)
    closing.set_transfer_consent(session, consented.id, True, actor_id=worker.id)
    without = cases.open_case(session, constituent_id=lee.id, category_id=category.id, subject="Lost passport",
                              actor_id=worker.id, caseworker_id=worker.id)
    finished = cases.open_case(session, constituent_id=lee.id, category_id=category.id, subject="Old matter",
                               actor_id=worker.id, caseworker_id=worker.id)
    closing.set_transfer_consent(session, finished.id, True, actor_id=worker.id)
    cases.set_status(session, finished.id, CaseStatus.RESOLVED, actor_id=worker.id, outcome="Solved")
    session.commit()
    return worker, consented, without, finished


def test_transfer_consent_is_recorded_with_who_and_when_and_audited(session, factory):
    worker, consented, without, _finished = _office_with_data(session, factory)
    session.refresh(consented)
    assert consented.transfer_consent_by_id == worker.id and consented.transfer_consent_at is not None
    closing.set_transfer_consent(session, consented.id, False, actor_id=worker.id)
    session.commit()
    session.refresh(consented)
    assert consented.transfer_consent_at is None and consented.transfer_consent_by_id is None
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "case",
                                                                    AuditEvent.object_id == str(consented.id))))
    assert actions.count("case.transfer_consent") == 1 and actions.count("case.transfer_consent_withdrawn") == 1


def test_handover_holds_the_constituent_list_and_only_consented_open_cases(session, factory, database, tmp_path):
    _worker, consented, without, finished = _office_with_data(session, factory)
    with pytest.raises(InvalidTransition, match="stop intake first"):
        closing.run_handover(database, tmp_path / "early", actor_id=None, office_name=OFFICE)
    _close(session)
    dest = tmp_path / "handover"
    result = closing.run_handover(database, dest, actor_id=None, office_name=OFFICE)
    assert (result["constituents"], result["cases"], result["open_cases_without_consent"]) == (2, 1, 1)
    people = [json.loads(line) for line in (dest / "constituents.jsonl").read_text().splitlines()]
    assert sorted(p["last_name"] for p in people) == ["Chan", "Reyes"]
    assert {"dana@example.org"} == set(next(p for p in people if p["last_name"] == "Reyes")["emails"])
    handed = [json.loads(line) for line in (dest / "cases.jsonl").read_text().splitlines()]
    assert [c["id"] for c in handed] == [consented.id]  # never the case without consent, nor a finished one
    assert "Lost passport" not in (dest / "cases.jsonl").read_text()
    [case] = handed
    assert case["notes"][0]["text"] == "Called the IRS advocate." and case["transfer_consent_recorded_by"]
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["format"] == "mailroom-handover" and manifest["to_successor"] == SUCCESSOR[0]
    for entry in manifest["files"]:
        assert file_sha256(dest / entry["file"]) == entry["sha256"], entry["file"]
    assert [f["file"] for f in manifest["files"]][2:] == [case["documents"][0]["file"]]
    row = session.get(OfficeClosing, 1)
    session.refresh(row)
    assert row.handover_manifest_sha256 == file_sha256(dest / "manifest.json") and row.handover_counts["cases"] == 1


def test_purge_is_refused_without_a_verified_final_export(session, factory, database, tmp_path):
    _office_with_data(session, factory)
    with pytest.raises(PermissionDenied, match="stop intake first"):
        closing.run_purge(database, actor_id=None)
    _close(session)
    with pytest.raises(PermissionDenied, match="no final export yet"):
        closing.check_purge(session, typed_name=OFFICE, office_name=OFFICE)
    with pytest.raises(PermissionDenied, match="no final export yet"):
        closing.run_purge(database, actor_id=None)
    assert session.scalar(select(func.count()).select_from(Constituent)) == 2


def test_purge_refused_when_the_database_changed_after_the_final_export(session, factory, database, tmp_path):
    _office_with_data(session, factory)
    _close(session)
    result = closing.run_final_export(database, tmp_path / "final", actor_id=None)
    assert result["verified"], result["problems"]
    factory.message(from_address="late@example.net")  # stored after the export: not in the archive
    session.commit()
    with pytest.raises(PermissionDenied, match="messages changed since the final export"):
        closing.run_purge(database, actor_id=None)
    assert session.scalar(select(func.count()).select_from(Message)) == 3
    row = session.get(OfficeClosing, 1)
    session.refresh(row)
    assert row.final_export_verified_at is None and "Make the final export again" in row.last_error
    assert closing.purge_refusal(session) == "the final export did not verify: make the final export again (step 3)"


def test_purge_needs_the_office_name_typed(session, factory, database, tmp_path):
    _office_with_data(session, factory)
    _close(session)
    closing.run_final_export(database, tmp_path / "final", actor_id=None)
    with pytest.raises(ValidationFailed, match="type the office's name exactly"):
        closing.check_purge(session, typed_name="yes", office_name=OFFICE)
    assert closing.check_purge(session, typed_name="  office of representative  JANE doe ", office_name=OFFICE)


def test_purge_deletes_personal_data_and_keeps_the_audit_and_closing_record(session, factory, database, tmp_path):
    admin = factory.staffer(role=Role.ADMIN)
    _office_with_data(session, factory)
    letter = FormLetter(title="Clinic funding")  # the office's own form letter: it stays
    session.add(letter)
    _close(session, admin.id)
    blob_files = [Path(database.blobs.root) / d[:2] / d[2:4] / d for d in session.scalars(select(Blob.sha256))]
    assert blob_files and all(p.exists() for p in blob_files)
    audit_before = session.scalar(select(func.count()).select_from(AuditEvent))
    export = closing.run_final_export(database, tmp_path / "final", actor_id=admin.id)
    assert export["verified"]

    counts = closing.run_purge(database, actor_id=admin.id)
    session.commit()  # end the test session's read snapshot: the purge committed on its own connection
    assert counts["constituents"] == 2 and counts["messages"] == 2 and counts["cases"] == 3
    assert counts["blobs"] == len(blob_files) and counts["blob files"] >= len(blob_files)
    for model in (Constituent, Message, Case, Blob, Response):
        assert session.scalar(select(func.count()).select_from(model)) == 0, model
    assert not any(p.exists() for p in blob_files)
    assert session.scalar(select(FormLetter.title)) == "Clinic funding"
    # The history is all there, with the purge's own event; so is the closing record.
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit_before + 2
    purge_event = session.scalar(select(AuditEvent).where(AuditEvent.action == "closing.purge"))
    assert purge_event.actor_id == admin.id and purge_event.after["deleted"]["constituents"] == 2
    row = session.get(OfficeClosing, 1)
    session.refresh(row)
    assert row.purged_at is not None and row.purged_by_id == admin.id and row.successor_name == SUCCESSOR[0]
    assert row.final_export_manifest_sha256 == export["manifest_sha256"]
    # The office's public pages still name the successor, and nothing can be purged twice.
    assert closing.closed_successor(session) == closing.Successor(*SUCCESSOR)
    with pytest.raises(PermissionDenied, match="already been purged"):
        closing.run_purge(database, actor_id=admin.id)


def test_the_purge_list_covers_every_table_that_holds_personal_data():
    tables = Base.metadata.tables
    personal = {"constituents", "messages", "cases", "blobs"}
    grew = True
    while grew:
        grew = False
        for table in tables.values():
            if table.name not in personal and table.name not in closing.PURGE_KEEPS and any(
                    fk.column.table.name in personal for fk in table.foreign_keys):
                personal.add(table.name)
                grew = True
    handled = {*closing.PURGED_TABLES, *closing.ONE_OFF_LETTER_TABLES, "blobs"}
    assert personal - {"constituents", "messages", "cases"} <= handled
    assert {"audit_events", "office_closings", "closing_auto_replies", "staffers"}.isdisjoint(handled)


# --- the closing page ---------------------------------------------------------------------------------

def test_the_closing_page_walks_the_steps(client, auth, session, factory, tmp_path):
    admin = auth.login("admin")
    page = client.get("/admin/closing").get_data(as_text=True)
    assert "Closing the office" in page and "Not yet. The office is open." in page
    assert "stop intake first (step 1)" in page
    token = auth.csrf("/admin/closing")
    answer = client.post("/admin/closing/stop-intake", data={"csrf_token": token, "successor_name": SUCCESSOR[0],
                                                            "successor_contact": SUCCESSOR[1]})
    assert answer.status_code == 303
    page = client.get("/admin/closing").get_data(as_text=True)
    assert "Intake stopped" in page and "intake stopped on" in page and admin.name in page
    assert "no final export yet" in page
    refused = client.post("/admin/closing/purge", data={"csrf_token": token, "office_name": OFFICE},
                          follow_redirects=True)
    assert "Not purged: there is no final export yet" in refused.get_data(as_text=True)
    assert session.scalar(select(OfficeClosing.working_on)) is None


def test_caseworkers_record_consent_on_the_case_page(client, auth, session, factory):
    worker = auth.login("caseworker")
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "IRS"))
    case = cases.open_case(session, constituent_id=factory.constituent().id, category_id=category.id,
                           subject="Benefits", actor_id=worker.id, caseworker_id=worker.id)
    session.commit()
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "No consent recorded" in page
    token = auth.csrf(f"/cases/{case.id}")
    client.post(f"/cases/{case.id}/transfer-consent", data={"csrf_token": token, "consent": "yes"})
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "The constituent agreed that this case may go to the successor office" in page and worker.name in page
    session.refresh(case)
    assert case.transfer_consent_by_id == worker.id


def test_the_closing_steps_from_the_terminal(session, factory, database, settings, tmp_path):
    from click.testing import CliRunner

    from tests.conftest import cli_env
    from workers.cli import REFUSED, cli

    _office_with_data(session, factory)
    env = cli_env(settings)
    runner = CliRunner()
    early = runner.invoke(cli, ["office", "close", "purge", "--confirm", OFFICE], env=env)
    assert early.exit_code == REFUSED and "stop intake first" in early.output
    stopped = runner.invoke(cli, ["office", "close", "stop-intake", "--successor", SUCCESSOR[0],
                                  "--contact", SUCCESSOR[1]], env=env)
    assert stopped.exit_code == 0, stopped.output
    no_export = runner.invoke(cli, ["office", "close", "purge", "--confirm", OFFICE], env=env)
    assert no_export.exit_code == REFUSED and "no final export yet" in no_export.output
    exported = runner.invoke(cli, ["office", "close", "export", str(tmp_path / "final")], env=env)
    assert exported.exit_code == 0 and "verified" in exported.output, exported.output
    handed = runner.invoke(cli, ["office", "close", "handover", str(tmp_path / "handover")], env=env)
    assert "2 constituents, 1 open cases with consent (1 without consent left out)" in handed.output
    wrong = runner.invoke(cli, ["office", "close", "purge", "--confirm", "yes"], env=env)
    assert wrong.exit_code == REFUSED and "type the office's name exactly" in wrong.output
    purged = runner.invoke(cli, ["office", "close", "purge", "--confirm", OFFICE], env=env)
    assert purged.exit_code == 0 and "2 constituents" in purged.output, purged.output
    session.commit()
    assert session.scalar(select(func.count()).select_from(Constituent)) == 0


def test_the_page_queues_the_final_export_as_a_job_that_records_it(session, factory, database, job_env, redis,
                                                                   tmp_path):
    from workers.effects import dispatch
    from workers.jobs import run_closing_step

    admin = factory.staffer(role=Role.ADMIN)
    _office_with_data(session, factory)
    _close(session, admin.id)
    done = closing.request_step(session, "final_export", actor_id=admin.id, dest=tmp_path / "final")
    session.commit()
    with pytest.raises(InvalidTransition, match="final export is running"):
        closing.request_step(session, "handover", actor_id=admin.id, dest=tmp_path / "h")
    session.rollback()
    assert dispatch(done.effects, connection=redis) == 1
    [effect] = done.effects
    options = dict(effect.options)
    result = run_closing_step(effect.ids[0], str(options["step"]), str(options["dest"]))
    assert result["verified"]
    session.commit()
    row = session.get(OfficeClosing, 1)
    session.refresh(row)
    assert row.working_on is None and row.final_export_verified_at is not None and row.final_export_by_id == admin.id
    assert row.final_export_manifest_sha256 == file_sha256(tmp_path / "final" / "manifest.json")
    purge = closing.request_purge(session, actor_id=admin.id, typed_name=OFFICE, office_name=OFFICE)
    session.commit()
    counts = run_closing_step(admin.id, str(dict(purge.effects[0].options)["step"]))
    assert counts["constituents"] == 2
