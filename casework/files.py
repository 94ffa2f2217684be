"""Uploaded case files: what a file really is (by its content, never its name or the browser's word),
and a file name that keeps the person's own characters but nothing that could break a header or a path."""

from __future__ import annotations

import io
import logging
import re
import unicodedata

log = logging.getLogger(__name__)

_IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff"}
MAX_FILENAME = 200


def detect_type(data: bytes) -> str | None:
    """"application/pdf" or an image type if the bytes open as one; None for anything else."""
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return "application/pdf" if _opens_as_pdf(data) else None
    return _image_type(data)


def _opens_as_pdf(data: bytes) -> bool:
    from pypdf import PdfReader

    try:
        return len(PdfReader(io.BytesIO(data), strict=False).pages) > 0
    except Exception:  # pypdf raises many kinds of errors on broken or hostile files
        log.info("upload refused: not a readable PDF", exc_info=True)
        return False


def _image_type(data: bytes) -> str | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = _IMAGE_TYPES.get(image.format or "")
            image.verify()
    except Exception:  # not an image, a truncated one, or a decompression bomb
        return None
    return kind


def clean_filename(name: str | None, default: str = "document") -> str:
    """The name as the person gave it (accents, emoji, quotes kept), minus folders, control and
    formatting characters (CR, LF, U+2028, right-to-left overrides…), at most 200 characters with the
    extension kept."""
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") else c
                   for c in text)
    text = " ".join(text.split()).lstrip(". ")
    if len(text) > MAX_FILENAME:
        stem, dot, ext = text.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        text = (stem if ext else text)[:MAX_FILENAME - len(ext) - 1].rstrip() + (f".{ext}" if ext else "")
    return text or default
