"""Issue 12 item 12 (scans): pages, page size and pixels are checked before anything is rendered or
decoded, and reading time has a budget; a scan over a limit is quarantined with the reason."""

from __future__ import annotations

import io
import shutil
import struct
import zlib

import pytest
from pypdf import PdfWriter
from rq import SimpleWorker
from sqlalchemy import select

from config import Settings
from config.settings import SettingsError
from correspondence.models import Message, MessageStatus, Role
from intake.importer import import_items
from intake.pipeline import Rules
from intake.registry import file_adapter
from intake.scans import ScanLimits, ScanTooLarge, extract_text
from tests.conftest import need
from tests.letters import png_bytes, render
from workers.queues import PROCESS, get_queue


@pytest.fixture(autouse=True)
def _tesseract():
    need(shutil.which("tesseract") is not None, "tesseract is not installed (apt-get install tesseract-ocr)")


def _blank_pdf(pages: int, width: float = 612, height: float = 792) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=width, height=height)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _png_bomb(side: int = 30000) -> bytes:
    """A real, valid 1-bit PNG of side x side white pixels: ~100 KB on disk, 900 megapixels decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _import(database, tmp_path, name, data, rules=None):
    (tmp_path / name).write_bytes(data)
    reader, adapter = file_adapter("scans")
    return import_items(database, reader([tmp_path / name]), adapter, source="file:scans", max_bytes=25_000_000,
                        rules=rules)


def _only(session):
    session.rollback()
    return session.scalars(select(Message)).one()


def test_a_10000_page_pdf_is_quarantined_without_reading_a_page(database, session, tmp_path):
    data = _blank_pdf(10_000)
    assert len(data) < 2_000_000  # small on disk: the attack is the page count
    summary = _import(database, tmp_path, "huge.pdf", data)
    assert summary.failed == 0 and summary.quarantined == 1
    m = _only(session)
    assert m.status == MessageStatus.QUARANTINED and m.processed_at is not None
    assert "the scan has 10000 pages; at most 50 are read" in m.status_reason


def test_a_page_20000_points_wide_is_quarantined_before_rendering(database, session, tmp_path):
    summary = _import(database, tmp_path, "wide.pdf", _blank_pdf(1, width=20_000, height=792))
    assert summary.quarantined == 1
    m = _only(session)
    assert m.status == MessageStatus.QUARANTINED
    assert "page 1 is 20000 x 792 points" in m.status_reason and "MAILROOM_SCAN_MAX_PAGE_POINTS" in m.status_reason


def test_a_png_decompression_bomb_is_quarantined_with_its_reason(database, session, tmp_path):
    bomb = _png_bomb()
    assert len(bomb) < 1_000_000
    summary = _import(database, tmp_path, "bomb.png", bomb)
    assert summary.failed == 0 and summary.quarantined == 1
    m = _only(session)
    assert m.status == MessageStatus.QUARANTINED
    assert "megapixels" in m.status_reason and "MAILROOM_SCAN_MAX_PIXELS" in m.status_reason


def test_an_image_just_over_the_pixel_limit_is_refused_from_its_header():
    image = png_bytes(render())  # 2550 x 3300 = 8.4 megapixels
    with pytest.raises(ScanTooLarge, match=r"page 1 is 2550 x 3300 pixels \(8 megapixels\); at most 5 megapixels"):
        extract_text(image, ScanLimits(max_pixels=5_000_000))
    with pytest.raises(ScanTooLarge, match="rendered|pixels"):
        extract_text(_blank_pdf(1), ScanLimits(max_pixels=5_000_000))  # 612 x 792 pt at 300 dpi: 8.4 MP


def test_multipage_tiff_over_the_page_limit_is_refused():
    frames = [render("Page one."), render("Page two."), render("Page three.")]
    tiff = io.BytesIO()
    frames[0].save(tiff, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    with pytest.raises(ScanTooLarge, match="the scan has 3 pages; at most 2"):
        extract_text(tiff.getvalue(), ScanLimits(max_pages=2))


def test_reading_time_has_a_budget_and_tesseract_is_stopped(database, session, tmp_path):
    limits = ScanLimits(ocr_seconds=0.001, ocr_page_seconds=0.001)
    with pytest.raises(ScanTooLarge, match="took longer than its 0.001 s budget"):
        extract_text(png_bytes(render()), limits)
    summary = _import(database, tmp_path, "slow.png", png_bytes(render()), rules=Rules(scan_limits=limits))
    assert summary.quarantined == 1
    assert "MAILROOM_SCAN_OCR_SECONDS" in _only(session).status_reason


def test_an_upload_over_the_limits_is_quarantined_and_shown_to_a_person(client, auth, session, redis, job_env):
    auth.login(Role.CORRESPONDENT)
    data = {"csrf_token": auth.csrf("/scans/upload"), "scans": [(io.BytesIO(_blank_pdf(400)), "box.pdf")]}
    response = client.post("/scans/upload", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    SimpleWorker([get_queue(PROCESS, redis)], connection=redis).work(burst=True)
    m = _only(session)
    assert m.status == MessageStatus.QUARANTINED and "the scan has 400 pages" in m.status_reason
    page = client.get("/quarantine/").get_data(as_text=True)
    assert "the scan has 400 pages; at most 50 are read" in page


def test_a_letter_within_the_limits_is_still_read():
    scan = extract_text(png_bytes(render()), ScanLimits())
    assert "Route 9" in scan.text and scan.pages[0].method == "ocr"


def test_scan_limit_settings(tmp_path):
    base = {"MAILROOM_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x" * 40}
    s = Settings.from_env({**base, "MAILROOM_SCAN_MAX_PAGES": "12", "MAILROOM_SCAN_OCR_SECONDS": "30"})
    rules = Rules.from_settings(s)
    assert rules.scan_limits.max_pages == 12 and rules.scan_limits.ocr_seconds == 30
    assert rules.scan_limits.ocr_page_seconds == 30
    for name in ("MAILROOM_SCAN_MAX_PAGES", "MAILROOM_SCAN_MAX_PAGE_POINTS", "MAILROOM_SCAN_MAX_PIXELS",
                 "MAILROOM_SCAN_OCR_SECONDS"):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({**base, name: "0"})
