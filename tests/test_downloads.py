"""Export files and subject access ZIPs are deleted 30 days after they were made, by the daily job; the
pages say so, each deletion is audited, and nothing younger (or still referenced) goes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from archive import rights
from correspondence.models import AuditEvent, Blob, ExportRun, RunState, utcnow
from workers import jobs


def test_the_daily_job_deletes_month_old_exports_and_access_zips_and_keeps_recent_ones(
        job_env, session, factory, database, client, auth):
    admin = factory.staffer(role="admin")
    person = factory.constituent(first_name="Old", email="old@example.org")
    session.commit()
    exports = job_env.instance_dir / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    old_file, new_file = exports / "mailroom-export-1.tar.gz", exports / "mailroom-export-2.tar.gz"
    old_file.write_bytes(b"old archive")
    new_file.write_bytes(b"new archive")
    month_ago = utcnow() - timedelta(days=31)
    old_run = ExportRun(state=RunState.DONE, file_name=old_file.name, finished_at=month_ago, created_by_id=admin.id,
                        summary={"rows": 1, "tables": 1, "blob_files": 0})
    new_run = ExportRun(state=RunState.DONE, file_name=new_file.name, finished_at=utcnow(), created_by_id=admin.id,
                        summary={"rows": 1, "tables": 1, "blob_files": 0})
    session.add_all([old_run, new_run])
    old_zip = rights.request_access(session, person.id, actor_id=admin.id).value
    new_zip = rights.request_access(session, person.id, actor_id=admin.id).value
    session.commit()
    rights.build_access(database, old_zip.id)
    factory.message(constituent_id=person.id, from_address="old@example.org", body_text="A letter since.")
    session.commit()
    rights.build_access(database, new_zip.id)  # holds one more letter: another file
    session.rollback()
    session.expire_all()  # the rows were changed by the job's own sessions
    session.get(type(old_zip), old_zip.id).finished_at = month_ago
    digest = session.get(type(old_zip), old_zip.id).sha256
    assert digest is not None and digest != session.get(type(new_zip), new_zip.id).sha256
    session.commit()

    assert jobs.run_expire_downloads() == {"exports": 1, "access_zips": 1, "files_deleted": 1}
    session.rollback()
    session.expire_all()
    assert not old_file.exists() and new_file.exists()
    assert session.get(ExportRun, old_run.id).file_name is None
    assert session.get(ExportRun, new_run.id).file_name == new_file.name
    assert session.get(type(old_zip), old_zip.id).sha256 is None
    assert session.get(Blob, digest) is None  # the ZIP's bytes are gone from the blob store's table
    assert session.get(type(new_zip), new_zip.id).sha256 is not None
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("%.expire"))))
    assert actions == {"export.expire", "subject_access.expire"}
    assert jobs.run_expire_downloads() == {"exports": 0, "access_zips": 0, "files_deleted": 0}  # idempotent

    auth.login("admin")
    page = client.get(f"/admin/data/export/{old_run.id}").get_data(as_text=True)
    assert 'id="export-expired"' in page and "export-download" not in page
    token = auth.csrf(f"/admin/data/export/{old_run.id}")
    assert client.post(f"/admin/data/export/{old_run.id}/download", data={"csrf_token": token}).status_code == 404
    record_page = client.get(f"/constituents/{person.id}").get_data(as_text=True)
    assert f'id="access-expired-{old_zip.id}"' in record_page and f'id="access-download-{new_zip.id}"' in record_page
    refused = client.post(f"/privacy/access/{old_zip.id}.zip", data={"csrf_token": token})
    assert refused.status_code == 409


def test_an_expired_zip_whose_bytes_a_newer_one_shares_leaves_the_blob_for_the_newer_one(session, factory, database):
    """The blob store keeps one copy of identical bytes: expiring the old ZIP must not take the new one's file."""
    from archive.downloads import expire_downloads

    admin = factory.staffer(role="admin")
    person = factory.constituent(first_name="Same", email="same@example.org")
    first = rights.request_access(session, person.id, actor_id=admin.id).value
    second = rights.request_access(session, person.id, actor_id=admin.id).value
    session.commit()
    when = utcnow()
    rights.build_access(database, first.id, now=when)
    rights.build_access(database, second.id, now=when)
    session.expire_all()
    assert first.sha256 == second.sha256  # nothing changed between the two: the same bytes
    first.finished_at = utcnow() - timedelta(days=40)
    expired = expire_downloads(session)
    session.commit()
    assert expired.access_zips == 1 and first.sha256 is None
    _export, data = rights.download_export(session, second.id, actor_id=admin.id)
    assert data[:2] == b"PK"
