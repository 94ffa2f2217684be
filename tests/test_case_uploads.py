"""Case uploads (issue 12, item 12): names beyond ASCII survive download (RFC 6266), and a signed
release must really be a PDF or an image, judged by its bytes."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
from PIL import Image
from sqlalchemy import select

from casework import cases as svc
from casework.files import clean_filename, detect_type
from correspondence.errors import ValidationFailed
from correspondence.models import Case, CaseCategory, CaseDocument
from correspondence.services.blobs import store_blob
from tests.test_cases import PDF


def _case(session, factory, caseworker_id=None):
    person = factory.constituent(first_name="Zoë", last_name="Brontë")
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "Passports"))
    case = svc.open_case(session, constituent_id=person.id, category_id=category.id, subject="Passport",
                         actor_id=None, caseworker_id=caseworker_id)
    session.commit()
    return case


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "PNG")
    return out.getvalue()


NAMES = ["Relevé d’impôt 😀.pdf", 'quote"d\r\nSet-Cookie: stolen=1.pdf', "a" * 600 + ".pdf",
         "..\\..\\etc/passwd\u2028\u202egnp.pdf"]


def test_non_ascii_and_hostile_names_download_with_rfc6266(client, auth, session, factory):
    worker = auth.login("caseworker")  # the case's own caseworker: documents are need-to-know
    case = _case(session, factory, worker.id)
    token = auth.csrf(f"/cases/{case.id}")
    for name in NAMES:
        added = client.post(f"/cases/{case.id}/document", data={"csrf_token": token,
                                                                  "file": (io.BytesIO(PDF), name, "application/pdf")},
                            content_type="multipart/form-data", follow_redirects=True)
        assert added.status_code == 200 and "Document added." in added.get_data(as_text=True), name
    session.rollback()
    docs = {d.filename: d for d in session.scalars(select(CaseDocument).where(CaseDocument.case_id == case.id))}
    assert "Relevé d’impôt 😀.pdf" in docs
    assert all("\r" not in n and "\n" not in n and "/" not in n and len(n) <= 200 for n in docs)
    assert any(n.endswith(".pdf") and n.startswith("aaa") for n in docs)
    for doc in docs.values():
        answer = client.get(f"/cases/{case.id}/documents/{doc.id}")
        disposition = answer.headers["Content-Disposition"]
        assert answer.status_code == 200 and answer.data == PDF
        assert "\r" not in disposition and "\n" not in disposition and "Set-Cookie" not in answer.headers
    emoji = client.get(f"/cases/{case.id}/documents/{docs['Relevé d’impôt 😀.pdf'].id}")
    assert f"filename*=UTF-8''{quote('Relevé d’impôt 😀.pdf', safe='')}" in emoji.headers["Content-Disposition"]


def test_a_name_stored_before_cleaning_never_breaks_the_download(client, auth, session, factory):
    """A row written before names were cleaned (CR/LF and all) still downloads: 200, not 500."""
    worker = auth.login("caseworker")
    case = _case(session, factory, worker.id)
    sha = store_blob(session, PDF, "application/pdf")
    doc = CaseDocument(case_id=case.id, sha256=sha, filename='old\r\nname "x" ✓.pdf', content_type="application/pdf",
                       size=len(PDF))
    session.add(doc)
    session.commit()
    answer = client.get(f"/cases/{case.id}/documents/{doc.id}")
    assert answer.status_code == 200 and "filename*=UTF-8''old%20name%20%22x%22%20%E2%9C%93.pdf" in \
        answer.headers["Content-Disposition"]


def test_a_signed_release_is_checked_by_content_not_by_name(client, auth, session, factory):
    worker = auth.login("caseworker")  # the case's own caseworker: documents are need-to-know
    case = _case(session, factory, worker.id)
    token = auth.csrf(f"/cases/{case.id}")
    html = b"<!doctype html><html><body><script>alert(1)</script>I agree</body></html>"
    refused = client.post(f"/cases/{case.id}/release", data={
        "csrf_token": token, "file": (io.BytesIO(html), "signed-release.pdf", "application/pdf")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "must be a PDF or an image" in refused.get_data(as_text=True)
    fake = client.post(f"/cases/{case.id}/release", data={
        "csrf_token": token, "file": (io.BytesIO(b"%PDF-1.4 but not really"), "release.pdf", "application/pdf")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "must be a PDF or an image" in fake.get_data(as_text=True)
    session.rollback()
    assert not svc.release_on_file(session.get(Case, case.id))
    assert session.scalar(select(CaseDocument.id).where(CaseDocument.case_id == case.id)) is None
    # A photo of the signed form, sent as "application/octet-stream" with no extension, is accepted as what it is.
    photo = client.post(f"/cases/{case.id}/release", data={
        "csrf_token": token, "file": (io.BytesIO(_png()), "IMG_0042", "application/octet-stream")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "Signed privacy release on file" in photo.get_data(as_text=True)
    session.rollback()
    session.expire_all()
    doc = session.scalar(select(CaseDocument).where(CaseDocument.case_id == case.id))
    assert doc.content_type == "image/png" and doc.is_release and svc.release_on_file(session.get(Case, case.id))


def test_detect_type_and_clean_filename():
    assert detect_type(PDF) == "application/pdf" and detect_type(_png()) == "image/png"
    assert detect_type(b"GIF89a....") is None and detect_type(b"") is None
    with pytest.raises(ValidationFailed):
        svc._document(None, None, b"MZ\x90\x00", "x.exe", "application/pdf", actor_id=None,  # type: ignore[arg-type]  # refused on content first
                      is_release=True)
    assert clean_filename("C:\\Users\\me\\Relevé.pdf") == "Relevé.pdf"
    assert clean_filename("\r\n") == "document" and clean_filename("evil\u202efdp.exe") == "evil fdp.exe"
    long = clean_filename("é" * 500 + ".jpeg")
    assert len(long) == 200 and long.endswith(".jpeg")
