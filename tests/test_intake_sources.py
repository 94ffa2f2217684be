"""Blob files with path containment, the walk-in channel, the district ZIP list kept in the UI."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from correspondence.blobstore import BlobPathError, BlobStore
from correspondence.errors import ValidationFailed
from correspondence.models import AuditEvent, Blob, Channel, DistrictStatus, Message
from correspondence.services.blobs import load_blob, store_blob
from correspondence.services.intake_sources import parse_zip_list, set_district_zips
from intake.pipeline import process_message
from intake.receive import Incoming, receive


def test_blob_files_are_content_addressed_and_contained(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    digest = store.put(b"raw letter")
    assert digest == hashlib.sha256(b"raw letter").hexdigest()
    path = store.path_for(digest)
    assert path.read_bytes() == b"raw letter" and path.is_relative_to(tmp_path / "blobs")
    assert store.put(b"raw letter") == digest and store.verify(digest)
    for hostile in ("../../etc/passwd", "/etc/passwd", "a" * 63, "A" * 64, digest + "/..", "..%2f" * 13):
        with pytest.raises(BlobPathError):
            store.path_for(hostile)
    path.write_bytes(b"tampered")
    assert not store.verify(digest)


def test_raw_input_is_a_file_and_the_row_holds_no_bytes(session, database):
    digest = store_blob(session, b"From: a@example.org\r\n\r\nHello", "message/rfc822")
    session.commit()
    row = session.get(Blob, digest)
    assert row.data is None and row.size == 28
    assert database.blobs.path_for(digest).read_bytes() == b"From: a@example.org\r\n\r\nHello"
    assert load_blob(session, digest) == b"From: a@example.org\r\n\r\nHello"


def test_walk_in_visit_is_its_own_channel(client, auth, session):
    staffer = auth.login("correspondent")
    form = {"csrf_token": auth.csrf("/calls/new"), "kind": "walk_in", "first_name": "Rosa", "last_name": "Diaz",
            "zip5": "43215", "notes": "Came to the district office about a passport.", "nonce": "b" * 32}
    response = client.post("/calls/new", data=form)
    assert response.status_code == 303
    session.rollback()
    message = session.scalar(select(Message))
    assert message.channel == Channel.WALK_IN and message.subject == "Walk-in visit"
    assert message.source == f"walk_in:staffer-{staffer.id}"
    assert "Walk-in" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_zip_list_parsing_refuses_the_whole_list_with_bad_entries(session, factory):
    assert parse_zip_list("43215, 43216-1234\n432171234 ;") == ({"43215", "432161234", "432171234"}, [])
    assert parse_zip_list("4321 43215-12 abcde")[1] == ["4321", "43215-12", "abcde"]
    admin = factory.staffer(role="admin")
    with pytest.raises(ValidationFailed, match="not ZIP codes"):
        set_district_zips(session, "43215 nope", actor_id=admin.id)


def test_zip_list_from_the_ui_places_new_mail_in_or_out_of_district(client, auth, session):
    auth.login("admin")
    page = client.post("/admin/intake/zips", data={"csrf_token": auth.csrf("/admin/intake"),
                                                   "zips": "43215\n43085-1234"}, follow_redirects=True)
    assert "2 codes" in page.get_data(as_text=True)
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "district_zips.set")) is not None

    def letter(key, zip5, zip4=None):
        item = Incoming(channel=Channel.WEBFORM, key=key, source="test", subject="Roads", body_text="Fix the roads.",
                        from_address=f"{key}@example.org",
                        facts={"constituent": {"first_name": key, "last_name": "Writer", "zip5": zip5, "zip4": zip4,
                                               "email": f"{key}@example.org"}})
        message = process_message(session, receive(session, item, max_bytes=10**6).message_id)
        return message.constituent.district_status

    assert letter("inside", "43215") == DistrictStatus.IN_DISTRICT
    assert letter("plusfour", "43085", "1234") == DistrictStatus.IN_DISTRICT
    assert letter("otherfour", "43085", "9999") == DistrictStatus.OUT_OF_DISTRICT
    assert letter("outside", "90210") == DistrictStatus.OUT_OF_DISTRICT
