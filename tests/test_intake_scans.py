"""Scanned postal mail through real Tesseract: clean pages read almost perfectly, the sender is found,
low-confidence pages are flagged, and unreadable files are quarantined."""

import io
import shutil

import pytest
from PIL import Image
from sqlalchemy import select

from correspondence.models import Channel, Message, MessageStatus, Role
from intake.importer import import_items
from intake.registry import file_adapter
from intake.scans import extract_text, sender_from_text
from tests.conftest import need
from tests.letters import LETTER, cer, png_bytes, render


@pytest.fixture(autouse=True)
def _tesseract():
    need(shutil.which("tesseract") is not None, "tesseract is not installed (apt-get install tesseract-ocr)")


def _import(database, paths):
    reader, adapter = file_adapter("scans")
    return import_items(database, reader(paths), adapter, source="file:scans", max_bytes=25_000_000)


def test_clean_300_dpi_page_has_cer_at_most_2_percent():
    scan = extract_text(png_bytes(render()))
    assert len(scan.pages) == 1 and scan.pages[0].method == "ocr"
    assert cer(LETTER, scan.text) <= 0.02, scan.text
    assert scan.confidence >= 80


def test_sender_block_is_extracted():
    sender = sender_from_text(LETTER)
    assert sender == {"first_name": "Maria", "last_name": "Gonzalez", "address1": "482 Maple Avenue",
                      "city": "Columbus", "state": "OH", "zip5": "43215", "zip4": None}


def test_multipage_tiff_and_pdfs(tmp_path):
    pages = [render(), render("Page two of the letter.\nThank you for reading it.")]
    tiff = io.BytesIO()
    pages[0].save(tiff, format="TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate")
    scan = extract_text(tiff.getvalue())
    assert len(scan.pages) == 2 and "Thank you for reading" in scan.pages[1].text
    image_pdf = io.BytesIO()
    pages[0].convert("RGB").save(image_pdf, format="PDF", resolution=300)
    scan = extract_text(image_pdf.getvalue())
    assert scan.pages[0].method == "ocr" and cer(LETTER, scan.text) <= 0.02
    text_pdf = _text_pdf("I support the transit funding bill and ask you to vote for it this week.")
    scan = extract_text(text_pdf)
    assert scan.pages[0].method == "text-layer" and "transit funding bill" in scan.text


def _text_pdf(text: str) -> bytes:
    """A one-page PDF with a real text layer, written by hand."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def test_import_scan_creates_letter_with_sender_and_page_image(database, session, tmp_path, client, auth):
    (tmp_path / "letter.png").write_bytes(png_bytes(render()))
    (tmp_path / "noise.png").write_bytes(png_bytes(Image.effect_noise((600, 800), 120).convert("L")))
    (tmp_path / "not-a-scan.txt").write_bytes(b"hello")
    summary = _import(database, [tmp_path])
    assert summary.received == 3 and summary.failed == 0
    letters = {m.subject: m for m in session.scalars(select(Message))}
    letter = letters["Bridge repairs on Route 9"]
    assert letter.channel == Channel.POSTAL and letter.status == MessageStatus.NEW
    c = letter.constituent
    assert (c.first_name, c.last_name, c.zip5, c.address1) == ("Maria", "Gonzalez", "43215", "482 Maple Avenue")
    assert letter.facts["ocr"]["confidence"] >= 80 and "review" not in letter.facts
    quarantined = [m for m in letters.values() if m.status == MessageStatus.QUARANTINED]
    assert any("not a PDF, PNG, JPEG or TIFF" in m.status_reason for m in quarantined)
    auth.login(Role.CORRESPONDENT)
    html = client.get(f"/messages/{letter.id}").get_data(as_text=True)
    assert f"/messages/{letter.id}/pages/1" in html
    image = client.get(f"/messages/{letter.id}/pages/1")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert client.get(f"/messages/{letter.id}/pages/9").status_code == 404


def test_low_confidence_page_is_flagged_for_review(database, session, tmp_path):
    (tmp_path / "bad.png").write_bytes(png_bytes(render(blur=6.0)))
    _import(database, [tmp_path])
    m = session.scalars(select(Message)).one()
    if m.status == MessageStatus.QUARANTINED:
        assert "no text could be read" in m.status_reason
    else:
        assert m.facts["ocr"]["confidence"] < 80 and "check the text against the scan" in m.facts["review"]


def test_upload_page_stores_and_a_worker_reads(client, auth, session, redis, job_env):
    from rq import SimpleWorker

    from workers.queues import PROCESS, get_queue

    auth.login(Role.CORRESPONDENT)
    token = auth.csrf("/scans/upload")
    data = {"csrf_token": token, "scans": [(io.BytesIO(png_bytes(render())), "letter.png"),
                                           (io.BytesIO(b"junk"), "junk.doc")]}
    response = client.post("/scans/upload", data=data, content_type="multipart/form-data", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "1 letter(s) stored" in html and "Quarantined" in html
    SimpleWorker([get_queue(PROCESS, redis)], connection=redis).work(burst=True)
    letter = session.scalars(select(Message).where(Message.status != MessageStatus.QUARANTINED)).one()
    session.refresh(letter)
    assert letter.subject == "Bridge repairs on Route 9" and letter.constituent.last_name == "Gonzalez"
