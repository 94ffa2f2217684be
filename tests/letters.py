"""Letters rendered to page images the way a scanner would produce them, for OCR tests and benchmarks."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont
from rapidfuzz.distance import Levenshtein

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")
DPI = 300

LETTER = """Maria Gonzalez
482 Maple Avenue
Columbus, OH 43215

November 12, 2026

Re: Bridge repairs on Route 9

Dear Representative Doe,

I am writing about the bridge on Route 9 near our neighborhood. The
railings are rusted and large pieces of concrete have fallen into the
creek below. School buses cross it twice a day with our children.

Please find out whether federal infrastructure money can be used to
repair it before winter, and let me know what your office can do.

Sincerely,
Maria Gonzalez"""


def render(text: str = LETTER, *, skew: float = 0.0, noise: float = 0.0, blur: float = 0.0,
           seed: int = 1) -> Image.Image:
    """A US-letter page at 300 dpi with 12 pt serif text; optional skew (degrees), speckle noise, blur."""
    width, height = int(8.5 * DPI), int(11 * DPI)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONT), size=int(12 * DPI / 72))
    y = DPI
    for line in text.split("\n"):
        draw.text((DPI, y), line, fill=0, font=font)
        y += int(font.size * 1.45)
    if noise:
        rng = random.Random(seed)
        pixels = page.load()
        for _ in range(int(width * height * noise)):
            assert pixels is not None
            pixels[rng.randrange(width), rng.randrange(height)] = rng.choice((0, 90, 160))
    if blur:
        page = page.filter(ImageFilter.GaussianBlur(blur))
    if skew:
        page = page.rotate(skew, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    return page


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(DPI, DPI))
    return out.getvalue()


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate with whitespace normalised (line breaks are layout, not characters)."""
    ref = re.sub(r"\s+", " ", reference).strip()
    hyp = re.sub(r"\s+", " ", hypothesis).strip()
    return Levenshtein.distance(ref, hyp) / max(1, len(ref))
