"""Retention rules: the dry run counts what the run removes, legal holds stop it, blobs go only when unreferenced."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from archive import holds, retention
from archive.unreferenced import ASIDE, drop_unreferenced, restore_set_aside
from correspondence.db import Database
from correspondence.errors import PermissionDenied, ValidationFailed
from correspondence.models import (
    AuditEvent,
    Batch,
    Blob,
    Case,
    CaseCategory,
    CaseDocument,
    CaseNote,
    CaseStatus,
    Channel,
    Message,
    RetentionRun,
    Role,
    RunState,
)
from correspondence.services.blobs import blob_store, load_blob, store_blob
from tests.conftest import cli_env

OLD = datetime.now(UTC) - timedelta(days=365 * 8)
RECENT = datetime.now(UTC) - timedelta(days=30)


def _letter(session, factory, *, batch=None, person=None, when=OLD, raw: bytes | None = None, **kw):
    digest = store_blob(session, raw, "message/rfc822") if raw else None
    return factory.message(batch_id=batch.id if batch else None, constituent_id=person.id if person else None,
                           received_at=when, raw_sha256=digest, body_text="Please protect the river wetlands.",
                           **kw)


def _fresh(session) -> None:
    """See what other sessions committed: end this session's snapshot and forget the objects it loaded."""
    session.rollback()
    session.expire_all()


def _rules(session, admin, **years):
    for kind, n in years.items():
        retention.set_rule(session, kind, actor_id=admin.id, years=n, active=True)


def _run(session, database, admin, *, dry_run):
    run = retention.start_run(session, actor_id=admin.id, dry_run=dry_run).value
    session.commit()
    return retention.execute(database, run.id)


def test_dry_run_counts_what_the_run_removes_and_holds_stop_it(session, factory, database):
    admin = factory.staffer(Role.ADMIN)
    _rules(session, admin, campaign_mail=6, other_mail=6)
    river, held_batch = Batch(title="Save the river"), Batch(title="Held campaign")
    session.add_all([river, held_batch])
    session.flush()
    held_person = factory.constituent()
    due = [_letter(session, factory, batch=river, person=factory.constituent(), raw=f"raw {i}".encode())
           for i in range(3)]
    kept_by_batch_hold = _letter(session, factory, batch=held_batch, raw=b"raw held batch")
    kept_by_person_hold = _letter(session, factory, batch=river, person=held_person, raw=b"raw held person")
    recent = _letter(session, factory, batch=river, when=RECENT, raw=b"raw recent")
    single = _letter(session, factory, subject="My own story")
    holds.place_hold(session, "batch", held_batch.id, actor_id=admin.id, reason="inquiry")
    holds.place_hold(session, "constituent", held_person.id, actor_id=admin.id, reason="lawsuit")
    session.commit()

    dry = _run(session, database, admin, dry_run=True)
    assert (dry["campaign_mail"]["removed"], dry["campaign_mail"]["held"]) == (3, 2)
    assert (dry["other_mail"]["removed"], dry["other_mail"]["held"]) == (1, 0)
    assert [s["id"] for s in dry["campaign_mail"]["sample"]] == [m.id for m in due]
    _fresh(session)
    assert all(session.get(Message, m.id).raw_sha256 for m in due)  # the dry run removed nothing

    done = _run(session, database, admin, dry_run=False)
    for kind in ("campaign_mail", "other_mail"):
        assert (done[kind]["removed"], done[kind]["held"]) == (dry[kind]["removed"], dry[kind]["held"])
    assert done["campaign_mail"]["blobs"] == 3
    _fresh(session)
    for m in due:
        row = session.get(Message, m.id)
        # Kept: the count and who wrote about what; gone: the text and the original file.
        assert (row.batch_id, row.constituent_id, row.subject) == (river.id, m.constituent_id, m.subject)
        assert (row.body_text, row.raw_sha256) == ("", None)
    assert session.get(Message, single.id).subject == retention.REMOVED
    for m in (kept_by_batch_hold, kept_by_person_hold, recent):
        row = session.get(Message, m.id)
        assert row.raw_sha256 and load_blob(session, row.raw_sha256) and row.body_text
    events = session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "retention_run")).all()
    assert events.count("retention.finish") == 1 and events.count("retention.dry_run") == 1
    # A second run finds nothing left to remove, and the held ones are still counted as held.
    again = _run(session, database, admin, dry_run=False)
    assert (again["campaign_mail"]["removed"], again["campaign_mail"]["held"]) == (0, 2)


def test_closed_cases_are_anonymised_with_their_documents(session, factory, database):
    admin = factory.staffer(Role.ADMIN)
    _rules(session, admin, closed_cases=10)
    category = session.scalars(select(CaseCategory)).first()
    person = factory.constituent()
    long_ago = datetime.now(UTC) - timedelta(days=365 * 11)
    old = Case(constituent_id=person.id, category_id=category.id, subject="Pension for Ana Ruiz",
               status=CaseStatus.CLOSED, closed_at=long_ago, agency="SSA", agency_contact="Bob at SSA",
               outcome="Paid", release_sha256=store_blob(session, b"%PDF signed release", "application/pdf"))
    held_case = Case(constituent_id=person.id, category_id=category.id, subject="Held case",
                     status=CaseStatus.CLOSED, closed_at=long_ago)
    open_case = Case(constituent_id=person.id, category_id=category.id, subject="Still open")
    session.add_all([old, held_case, open_case])
    session.flush()
    doc_digest = store_blob(session, b"tax return bytes", "application/pdf")
    session.add_all([CaseDocument(case_id=old.id, sha256=doc_digest, filename="tax.pdf", content_type="application/pdf",
                                  size=16),
                     CaseNote(case_id=old.id, text="Ana called about her pension")])
    holds.place_hold(session, "case", held_case.id, actor_id=admin.id, reason="IG audit")
    session.commit()
    release = old.release_sha256
    assert release is not None

    dry = _run(session, database, admin, dry_run=True)
    assert (dry["closed_cases"]["removed"], dry["closed_cases"]["held"]) == (1, 1)
    done = _run(session, database, admin, dry_run=False)
    assert (done["closed_cases"]["removed"], done["closed_cases"]["held"]) == (1, 1)
    _fresh(session)
    case = session.get(Case, old.id)
    assert (case.subject, case.agency_contact, case.outcome, case.release_sha256) == (retention.REMOVED, None, None,
                                                                                      None)
    assert (case.agency, case.status) == ("SSA", CaseStatus.CLOSED)
    assert session.scalars(select(CaseDocument).where(CaseDocument.case_id == old.id)).all() == []
    assert session.scalars(select(CaseNote.text).where(CaseNote.case_id == old.id)).all() == [retention.REMOVED]
    for digest in (doc_digest, release):
        assert session.get(Blob, digest) is None and not blob_store(session).path_for(digest).exists()
    assert session.get(Case, held_case.id).subject == "Held case"
    assert session.get(Case, open_case.id).subject == "Still open"


def test_a_blob_another_row_refers_to_is_kept(session, factory, database):
    admin = factory.staffer(Role.ADMIN)
    _rules(session, admin, campaign_mail=6)
    batch = Batch(title="Copies")
    session.add(batch)
    session.flush()
    same = b"the very same raw bytes, delivered twice"
    old = _letter(session, factory, batch=batch, raw=same)
    new = _letter(session, factory, batch=batch, raw=same, when=RECENT)
    scan_png = store_blob(session, b"\x89PNG page", "image/png")
    scanned = factory.message(channel=Channel.POSTAL, received_at=RECENT,
                              facts={"ocr": {"pages": [{"image": scan_png, "confidence": 90}]}})
    session.commit()
    assert old.raw_sha256 == new.raw_sha256

    done = _run(session, database, admin, dry_run=False)
    assert (done["campaign_mail"]["removed"], done["campaign_mail"]["blobs"]) == (1, 0)
    _fresh(session)
    assert load_blob(session, new.raw_sha256) == same
    # A scan image named only inside a message's facts counts as referenced too.
    assert drop_unreferenced(session, [scan_png]) == 0
    _fresh(session)
    assert scanned.id and load_blob(session, scan_png) == b"\x89PNG page"


def test_a_rolled_back_deletion_puts_the_file_back(session, factory):
    digest = store_blob(session, b"orphan bytes")
    session.commit()
    path = blob_store(session).path_for(digest)
    assert drop_unreferenced(session, [digest]) == 1
    assert not path.exists() and path.with_name(path.name + ASIDE).exists()
    _fresh(session)
    assert path.read_bytes() == b"orphan bytes" and session.get(Blob, digest) is not None
    # A crash after the file was set aside: the next run moves it back while its row exists.
    path.rename(path.with_name(path.name + ASIDE))
    assert restore_set_aside(session) == 1 and path.exists()
    assert drop_unreferenced(session, [digest]) == 1
    session.commit()
    assert not path.exists() and not path.with_name(path.name + ASIDE).exists()
    assert session.get(Blob, digest) is None


def test_intake_storing_the_same_bytes_during_a_deletion_keeps_its_file(database_url, blob_dir, database):
    """The ordering that matters: retention holds the blob row while it sets the file aside; an intake storing
    the same content-addressed bytes waits for that row, then writes the row and the file again."""
    data = b"content that retention deletes while a new letter brings it again"
    deleter_db = Database(database_url, immediate=True, blob_dir=blob_dir)
    intake_db = Database(database_url, immediate=True, blob_dir=blob_dir)
    try:
        with database.unit_of_work() as s:
            digest = store_blob(s, data)
        deleting, stored = threading.Event(), {}

        def intake() -> None:
            deleting.wait(10)
            with intake_db.unit_of_work() as s:
                stored["digest"] = store_blob(s, data)

        worker = threading.Thread(target=intake)
        worker.start()
        with deleter_db.unit_of_work() as s:
            assert drop_unreferenced(s, [digest]) == 1
            deleting.set()
            worker.join(0.5)  # the intake is blocked by the deletion's lock meanwhile
            assert worker.is_alive()
        worker.join(30)
        assert stored["digest"] == digest
        with database.unit_of_work() as s:
            assert s.get(Blob, digest) is not None
            assert load_blob(s, digest) == data and blob_store(s).verify(digest)
    finally:
        deleter_db.dispose()
        intake_db.dispose()


def test_rules_are_admin_only_and_checked(session, factory):
    with pytest.raises(PermissionDenied):
        retention.set_rule(session, "campaign_mail", actor_id=factory.staffer(Role.SUPERVISOR).id, years=6,
                           active=True)
    admin = factory.staffer(Role.ADMIN)
    with pytest.raises(ValidationFailed, match="between 1 and"):
        retention.set_rule(session, "campaign_mail", actor_id=admin.id, years=0, active=True)
    with pytest.raises(ValidationFailed, match="no kind"):
        retention.set_rule(session, "everything", actor_id=admin.id, years=6, active=True)
    with pytest.raises(ValidationFailed, match="turn one on"):
        retention.start_run(session, actor_id=admin.id, dry_run=False)


def test_the_cli_dry_run_and_run(session, factory, settings, monkeypatch):
    from workers.cli import cli

    for key, value in cli_env(settings).items():
        monkeypatch.setenv(key, value)
    batch = Batch(title="Old campaign")
    session.add(batch)
    session.flush()
    _letter(session, factory, batch=batch, raw=b"cli raw")
    session.commit()
    runner = CliRunner()
    result = runner.invoke(cli, ["retention", "set", "campaign_mail", "6", "--on"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["retention", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["dry_run"] and out["result"]["campaign_mail"]["removed"] == 1
    result = runner.invoke(cli, ["retention", "run"])
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["result"]["campaign_mail"]["removed"] == 1
    _fresh(session)
    runs = session.scalars(select(RetentionRun).order_by(RetentionRun.id)).all()
    assert [(r.dry_run, r.state) for r in runs] == [(True, RunState.DONE), (False, RunState.DONE)]


def test_the_admin_page_saves_rules_and_starts_a_dry_run(client, auth, session, redis):
    auth.login(Role.ADMIN)
    page = client.get("/privacy/retention")
    assert page.status_code == 200 and "Campaign mail" in page.get_data(as_text=True)
    token = auth.csrf("/privacy/retention")
    form = {"csrf_token": token, "years-campaign_mail": "6", "active-campaign_mail": "on", "years-other_mail": "7",
            "years-closed_cases": "10"}
    assert client.post("/privacy/retention/rules", data=form).status_code == 303
    response = client.post("/privacy/retention/run", data={"csrf_token": token, "mode": "dry_run"})
    assert response.status_code == 303 and "/privacy/retention/runs/" in response.headers["Location"]
    _fresh(session)
    views = {v.kind.key: (v.years, v.active) for v in retention.rules(session)}
    assert views == {"campaign_mail": (6, True), "other_mail": (7, False), "closed_cases": (10, False)}
    run = session.scalars(select(RetentionRun)).one()
    assert run.dry_run and redis.exists(f"rq:job:retention-{run.id}")
    assert "Working" in client.get(response.headers["Location"]).get_data(as_text=True)
