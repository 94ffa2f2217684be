"""Scanned postal mail: text layers read directly, images through real Tesseract OCR.

extract_text() is the pure logic (tested directly on letters the tests render); the pipeline's
decode stage calls it for postal items, so the upload page only stores and queues.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
import warnings
from dataclasses import dataclass, field

from correspondence.models import Channel
from intake.receive import Incoming

# Below this mean word confidence (0-100) a page is flagged for a person to check against the image.
REVIEW_BELOW = 80.0
# A PDF page with at least this many characters in its text layer is not OCRed.
TEXT_LAYER_MIN_CHARS = 40
RENDER_DPI = 300

_CITY_LINE = re.compile(
    r"^(?P<city>[A-Za-z][A-Za-z .'-]+),?\s+(?P<state>[A-Z]{2})\.?\s+(?P<zip>\d{5})(?:-(?P<zip4>\d{4}))?$")


@dataclass
class Page:
    text: str
    confidence: float  # mean word confidence 0-100; 100 for a text layer
    method: str  # "text-layer" or "ocr"
    image_png: bytes | None = None


@dataclass
class ScanText:
    pages: list[Page] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(p.text.strip() for p in self.pages if p.text.strip())

    @property
    def confidence(self) -> float:
        return min((p.confidence for p in self.pages), default=0.0)


class ScanUnreadable(ValueError):
    """The file is not a PDF or an image Mailroom can read."""


class ScanTooLarge(ScanUnreadable):
    """The scan is over a limit (pages, page size, pixels, reading time); the text says which."""


@dataclass(frozen=True)
class ScanLimits:
    """What one upload may cost, checked from the file's header before any page is rendered or decoded.

    The defaults take any real letter (a 30-page letter with enclosures, tabloid pages, 600 dpi
    scans) and refuse what only an attack or a mistake produces: a 10,000-page PDF, a page a
    quarter of a kilometre wide, a 30000 x 30000 image that is 100 KB on disk and gigabytes decoded.
    """

    max_pages: int = 50
    max_page_points: int = 2000  # longest side of a PDF page, in points (1/72 in): 27.8 in
    max_pixels: int = 50_000_000  # one page image, as uploaded or as rendered at RENDER_DPI
    ocr_seconds: float = 90.0  # everything read from one upload, text layers and OCR together
    ocr_page_seconds: float = 60.0  # one page in Tesseract


class _Budget:
    """The reading-time budget of one upload."""

    def __init__(self, limits: ScanLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.ocr_seconds

    def left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self.exceeded()
        return min(remaining, self.limits.ocr_page_seconds)

    def exceeded(self) -> ScanTooLarge:
        return ScanTooLarge(f"reading the scan took longer than its {self.limits.ocr_seconds:g} s budget "
                            f"({self.limits.ocr_page_seconds:g} s a page); split it into smaller files, or raise "
                            "MAILROOM_SCAN_OCR_SECONDS")


def kind_of(data: bytes) -> str:
    if data[:5] == b"%PDF-":
        return "pdf"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    raise ScanUnreadable("not a PDF, PNG, JPEG or TIFF file")


def ocr_image(image, *, timeout: float = 0) -> Page:
    """One page image through Tesseract: text rebuilt line by line, and the mean word confidence.

    With a timeout (seconds) Tesseract is stopped when it runs longer, and RuntimeError is raised.
    """
    import pytesseract
    from PIL import Image, ImageFilter

    gray = image.convert("L")
    # A 3x3 median filter removes scanner speckle (which otherwise ruins recognition) and leaves
    # 300 dpi text intact.
    cleaned = gray.filter(ImageFilter.MedianFilter(3))
    data = pytesseract.image_to_data(cleaned, lang="eng", config="--psm 3", output_type=pytesseract.Output.DICT,
                                     timeout=timeout)
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences = []
    for i, word in enumerate(data["text"]):
        conf = float(data["conf"][i])
        if conf < 0 or not word.strip():
            continue
        confidences.append(conf)
        lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(word)
    text_lines, last_par = [], None
    for (block, par, _line), words in sorted(lines.items()):
        if last_par is not None and (block, par) != last_par:
            text_lines.append("")
        text_lines.append(" ".join(words))
        last_par = (block, par)
    png = io.BytesIO()
    thumb = gray.copy()
    thumb.thumbnail((1275, 1650), Image.Resampling.LANCZOS)
    thumb.save(png, format="PNG", optimize=True)
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    return Page("\n".join(text_lines), round(mean, 1), "ocr", png.getvalue())


def extract_text(data: bytes, limits: ScanLimits | None = None) -> ScanText:
    """The text of every page; ScanTooLarge (with the reason for a person) when the scan is over a limit."""
    limits = limits or ScanLimits()
    kind = kind_of(data)
    budget = _Budget(limits)
    if kind == "pdf":
        return _extract_pdf(data, limits, budget)
    return _extract_image(data, limits, budget)


def _too_many_pages(count: int, limits: ScanLimits) -> ScanTooLarge:
    return ScanTooLarge(f"the scan has {count} pages; at most {limits.max_pages} are read from one upload "
                        "(split it into smaller files, or raise MAILROOM_SCAN_MAX_PAGES)")


def _too_many_pixels(number: int, width: int, height: int, limits: ScanLimits) -> ScanTooLarge:
    return ScanTooLarge(f"page {number} is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); at "
                        f"most {limits.max_pixels / 1e6:.0f} megapixels a page are read (MAILROOM_SCAN_MAX_PIXELS)")


def _check_pdf_pages(data: bytes, limits: ScanLimits):
    """Open the PDF with pdfium and check page count and sizes from the page tree, rendering nothing."""
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except Exception as exc:  # pdfium refuses broken and encrypted files alike
        raise ScanUnreadable(f"the PDF cannot be read ({type(exc).__name__})") from exc
    count = len(document)
    if count > limits.max_pages:
        document.close()
        raise _too_many_pages(count, limits)
    scale = RENDER_DPI / 72
    for index in range(count):
        width, height = document.get_page_size(index)
        if max(width, height) > limits.max_page_points:
            document.close()
            raise ScanTooLarge(f"page {index + 1} is {width:.0f} x {height:.0f} points ({width / 72:.0f} x "
                               f"{height / 72:.0f} in); pages up to {limits.max_page_points} points "
                               f"({limits.max_page_points / 72:.0f} in) a side are read "
                               "(MAILROOM_SCAN_MAX_PAGE_POINTS)")
        pixels_w, pixels_h = round(width * scale), round(height * scale)
        if pixels_w * pixels_h > limits.max_pixels:
            document.close()
            raise _too_many_pixels(index + 1, pixels_w, pixels_h, limits)
    return document


def _extract_pdf(data: bytes, limits: ScanLimits, budget: _Budget) -> ScanText:
    import pypdf

    result = ScanText()
    rendered = _check_pdf_pages(data, limits)
    try:
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            pages = reader.pages
        except Exception as exc:
            raise ScanUnreadable(f"the PDF cannot be read ({type(exc).__name__})") from exc
        for number in range(len(rendered)):
            budget.left()
            try:
                layer = (pages[number].extract_text() or "") if number < len(pages) else ""
            except Exception as exc:
                raise ScanUnreadable(f"the PDF cannot be read ({type(exc).__name__})") from exc
            if len(layer.strip()) >= TEXT_LAYER_MIN_CHARS:
                result.pages.append(Page(layer, 100.0, "text-layer"))
                continue
            image = rendered[number].render(scale=RENDER_DPI / 72).to_pil()
            result.pages.append(_ocr(image, budget))
    finally:
        rendered.close()
    return result


def _ocr(image, budget: _Budget) -> Page:
    try:
        return ocr_image(image, timeout=budget.left())
    except RuntimeError as exc:  # pytesseract's "Tesseract process timeout"
        if "timeout" not in str(exc).lower():
            raise
        raise budget.exceeded() from exc


def _extract_image(data: bytes, limits: ScanLimits, budget: _Budget) -> ScanText:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    # Pillow's own bomb check, backing ours: it refuses to open anything over twice this.
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    result = ScanText()
    try:
        with warnings.catch_warnings():
            # Between one and two times the limit Pillow only warns; the check below refuses it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only; nothing is decoded yet
        with img:
            frames = getattr(img, "n_frames", 1)
            if frames > limits.max_pages:
                raise _too_many_pages(frames, limits)
            for number, frame in enumerate(ImageSequence.Iterator(img), 1):
                width, height = frame.size
                if width * height > limits.max_pixels:
                    raise _too_many_pixels(number, width, height, limits)
                budget.left()
                result.pages.append(_ocr(frame.copy(), budget))
    except Image.DecompressionBombError as exc:
        raise ScanTooLarge(f"the image is over twice the {limits.max_pixels / 1e6:.0f} megapixels a page may have "
                           f"(MAILROOM_SCAN_MAX_PIXELS): {exc}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise ScanUnreadable(f"the image cannot be read ({type(exc).__name__})") from exc
    return result


def sender_from_text(text: str) -> dict[str, str | None]:
    """The sender's name and address block: the lines ending in "City, ST 12345", near the top or the end."""
    import usaddress

    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        match = _CITY_LINE.match(line)
        if not match or i == 0:
            continue
        street = lines[i - 1]
        if not re.match(r"^\d+\s", street):
            continue
        name = lines[i - 2] if i >= 2 and not re.search(r"\d", lines[i - 2]) else None
        try:
            tags, _kind = usaddress.tag(f"{street}, {line}")
        except usaddress.RepeatedLabelError:
            tags = {}
        first, last = (name.rsplit(" ", 1) + [None])[:2] if name and " " in name else (name, None)
        return {"first_name": first, "last_name": last, "address1": street,
                "city": tags.get("PlaceName", match["city"]).strip(), "state": match["state"],
                "zip5": match["zip"], "zip4": match["zip4"]}
    return {}


def incoming_scan(raw: bytes, source: str) -> Incoming:
    """Store the scan itself; the decode stage reads it (OCR is slow, so it runs in a worker)."""
    key = f"scan:{hashlib.sha256(raw).hexdigest()}"
    try:
        kind = kind_of(raw)
    except ScanUnreadable as exc:
        return Incoming(channel=Channel.POSTAL, key=key, source=source, raw=raw, subject="(unreadable scan)",
                        quarantine_reason=f"scan: {exc}")
    ctype = {"pdf": "application/pdf", "png": "image/png", "jpeg": "image/jpeg", "tiff": "image/tiff"}[kind]
    return Incoming(channel=Channel.POSTAL, key=key, source=source, raw=raw, content_type=ctype,
                    subject="Scanned letter", facts={"scan": {"kind": kind}})
