"""Scanned postal mail: text layers read directly, images through real Tesseract OCR.

extract_text() is the pure logic (tested directly on letters the tests render); the pipeline's
decode stage calls it for postal items, so the upload page only stores and queues.
"""

from __future__ import annotations

import hashlib
import io
import re
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


def ocr_image(image) -> Page:  # type: ignore[no-untyped-def]
    """One page image through Tesseract: text rebuilt line by line, and the mean word confidence."""
    import pytesseract
    from PIL import Image, ImageFilter

    gray = image.convert("L")
    # A 3x3 median filter removes scanner speckle (which otherwise ruins recognition) and leaves
    # 300 dpi text intact.
    cleaned = gray.filter(ImageFilter.MedianFilter(3))
    data = pytesseract.image_to_data(cleaned, lang="eng", config="--psm 3", output_type=pytesseract.Output.DICT)
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


def extract_text(data: bytes) -> ScanText:
    kind = kind_of(data)
    result = ScanText()
    if kind == "pdf":
        import pypdf
        import pypdfium2

        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            layers = [(page.extract_text() or "") for page in reader.pages]
        except Exception as exc:
            raise ScanUnreadable(f"the PDF cannot be read ({type(exc).__name__})") from exc
        rendered = None
        for number, layer in enumerate(layers):
            if len(layer.strip()) >= TEXT_LAYER_MIN_CHARS:
                result.pages.append(Page(layer, 100.0, "text-layer"))
                continue
            if rendered is None:
                rendered = pypdfium2.PdfDocument(data)
            image = rendered[number].render(scale=RENDER_DPI / 72).to_pil()
            result.pages.append(ocr_image(image))
        return result
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            for frame in ImageSequence.Iterator(img):
                result.pages.append(ocr_image(frame.copy()))
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
