"""Server-rendered SVG charts: readable at a glance, no JavaScript, nothing outside text unescaped.

Every label is whole: long ones wrap onto two lines, and anything still too long ends in "…" with the
full text in a <title> (shown on hover, read by screen readers). "Not coded" and "unknown" are drawn
in a neutral grey, never a colour that reads as a stance. Axis numbers sit in their own margin, and
only as many axis labels are drawn as fit side by side.
"""

from __future__ import annotations

import math
import re
import textwrap

from markupsafe import Markup, escape

# Series colours for channels, topics and staff. None of them is the grey kept for "not coded".
PALETTE = ("#3b6ea5", "#e08a2c", "#5a9e5a", "#8a6bb8", "#4aa5a5", "#a5a03b", "#b8578f", "#6b4f2a")
NEUTRAL = "#8a8a8a"  # "not coded", "unknown": 3.4:1 on white, enough for a shape (WCAG 1.4.11)
# Colours that mean something wherever the series appears.
MEANING = {"support": "#2f7d4f", "oppose": "#b84a4a", "neutral": "#3b6ea5",
           "not coded": NEUTRAL, "(not coded)": NEUTRAL, "unknown": NEUTRAL, "not known": NEUTRAL}
WIDTH = 900
CHAR_PX = 6.2  # the average width of a character at font-size 11 (10 at 5.6), for fitting text
LINE_PX = 13
_DATE = re.compile(r"^\d{4}-(\d{2}-\d{2}|W\d{2})$")


def colour(name: object, index: int) -> str:
    return MEANING.get(str(name).strip().lower(), PALETTE[index % len(PALETTE)])


def _svg(width: int, height: float, body: list[str], label: str) -> Markup:
    inner = "".join(body)
    return Markup(f'<svg viewBox="0 0 {width} {math.ceil(height)}" width="100%" role="img" '  # noqa: S704 - labels escaped
                  f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">{inner}</svg>')


def wrap(label: object, chars: int, lines: int = 2) -> list[str]:
    """A label as at most `lines` lines of `chars` characters; what does not fit ends in "…"."""
    text = " ".join(str(label).split()) or "—"
    return textwrap.wrap(text, width=max(chars, 4), max_lines=lines, placeholder="…", break_long_words=True,
                         break_on_hyphens=True) or ["…"]


def label(x: float, y: float, text: object, *, chars: int, lines: int = 2, anchor: str = "start",
          size: int = 11) -> tuple[str, int]:
    """An SVG <text> of the wrapped label with the whole text as its <title>; and how many lines it took."""
    parts = wrap(text, chars, lines)
    spans = "".join(f'<tspan x="{x:.1f}" dy="{0 if i == 0 else LINE_PX}">{escape(p)}</tspan>'
                    for i, p in enumerate(parts))
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"><title>{escape(str(text))}'
            f'</title>{spans}</text>', len(parts))


def _legend(names: list[str], y: float, width: int = WIDTH) -> tuple[list[str], float]:
    """Swatches and names in rows that wrap at the chart's width; (the parts, the height used)."""
    out, x, row = [], 0.0, 0
    for i, name in enumerate(names):
        text = wrap(name, 40, 1)[0]
        needed = 14 + len(text) * CHAR_PX + 16
        if x > 0 and x + needed > width:
            x, row = 0.0, row + 1
        top = y + row * (LINE_PX + 5)
        out.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="10" height="10" fill="{colour(name, i)}"/>'
                   f'<text x="{x + 14:.1f}" y="{top + 9:.1f}" font-size="11"><title>{escape(name)}</title>'
                   f'{escape(text)}</text>')
        x += needed
    return out, (row + 1) * (LINE_PX + 5) if names else 0


def _every(count: int, label_px: float, step: float) -> int:
    """Draw every n-th axis label so that neighbours never overlap."""
    return max(1, math.ceil((label_px + 8) / max(step, 1)))


def stacked(chart: dict) -> Markup:
    """Columns: label, then one series per column. Dates (days, weeks) are columns over time; anything
    else (topics) is one horizontal stacked bar per row, so its name can be read whole."""
    series, rows = [str(s) for s in chart["columns"][1:]], chart["rows"]
    if not rows:
        return Markup("<p class='meta'>No data.</p>")
    if all(_DATE.match(str(r[0])) for r in rows):
        return _stacked_columns(chart, series, rows)
    return _stacked_bars(chart, series, rows)


def _stacked_columns(chart: dict, series: list[str], rows: list) -> Markup:
    height, top, left, axis = 240, 10, 48, 34
    biggest = max(sum(r[1:]) for r in rows) or 1
    step = (WIDTH - left) / len(rows)
    base = height - axis
    body = [f'<text x="{left - 6}" y="{top + 8}" font-size="10" text-anchor="end">{biggest:,}</text>',
            f'<text x="{left - 6}" y="{base}" font-size="10" text-anchor="end">0</text>',
            f'<line x1="{left}" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#555" stroke-width="1"/>']
    every = _every(len(rows), max(len(str(r[0])) for r in rows) * 5.6, step)
    for i, row in enumerate(rows):
        y = base
        x = left + i * step
        for j, value in enumerate(row[1:]):
            h = (base - top) * value / biggest
            if h > 0:
                body.append(f'<rect x="{x + 1:.1f}" y="{y - h:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
                            f'fill="{colour(series[j], j)}"><title>{escape(str(row[0]))}: {escape(series[j])} '
                            f'{value:,}</title></rect>')
            y -= h
        if i % every == 0:
            body.append(f'<text x="{x + step / 2:.1f}" y="{base + 14}" font-size="10" text-anchor="middle">'
                        f'{escape(str(row[0]))}</text>')
    legend, used = _legend(series, height - 14)
    return _svg(WIDTH, height - 14 + used, body + legend, chart["title"])


def _stacked_bars(chart: dict, series: list[str], rows: list) -> Markup:
    label_w, bar, gap, total_w = 260, 16, 8, 70
    biggest = max(sum(r[1:]) for r in rows) or 1
    body, y = [], 0.0
    for row in rows:
        text, used = label(label_w - 8, y + 12, row[0], chars=int((label_w - 12) / CHAR_PX), anchor="end")
        body.append(text)
        x = float(label_w)
        for j, value in enumerate(row[1:]):
            w = (WIDTH - label_w - total_w) * value / biggest
            if w > 0:
                body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar}" '
                            f'fill="{colour(series[j], j)}"><title>{escape(str(row[0]))}: {escape(series[j])} '
                            f'{value:,}</title></rect>')
            x += w
        body.append(f'<text x="{x + 4:.1f}" y="{y + 12}" font-size="11">{sum(row[1:]):,}</text>')
        y += max(bar, used * LINE_PX) + gap
    legend, used_h = _legend(series, y + 4)
    return _svg(WIDTH, y + 4 + used_h, body + legend, chart["title"])


def bars(chart: dict) -> Markup:
    """Columns: label, value, …; one horizontal bar per row, the value and the rest as text."""
    rows = chart["rows"]
    if not rows:
        return Markup("<p class='meta'>No data.</p>")
    label_w, bar, gap = 260, 16, 8
    biggest = max(float(r[1] or 0) for r in rows) or 1
    notes = []
    for row in rows:
        extra = " · ".join(f"{c} {v}" for c, v in zip(chart["columns"][2:], row[2:], strict=False) if v is not None)
        notes.append(f"{row[1]} {chart['columns'][1]}{(' · ' + extra) if extra else ''}")
    # The text after the longest bar must fit too: the bars give way to it (never below 200 px).
    text_w = min(max(len(n) for n in notes) * CHAR_PX + 10, WIDTH - label_w - 200)
    body, y = [], 0.0
    for row, note in zip(rows, notes, strict=True):
        text, used = label(label_w - 8, y + 12, row[0], chars=int((label_w - 12) / CHAR_PX), anchor="end")
        w = (WIDTH - label_w - text_w) * float(row[1] or 0) / biggest
        shown = wrap(note, int(text_w / CHAR_PX), 1)[0]
        body.append(f'{text}<rect x="{label_w}" y="{y:.1f}" width="{w:.1f}" height="{bar}" '
                    f'fill="{colour(row[0], 0)}">'
                    f'<title>{escape(str(row[0]))}: {escape(note)}</title></rect>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + 12:.1f}" font-size="11"><title>{escape(note)}</title>'
                    f'{escape(shown)}</text>')
        y += max(bar, used * LINE_PX) + gap
    return _svg(WIDTH, y, body, chart["title"])


def lines(chart: dict) -> Markup:
    """Columns: label, then one point per column; one line per row."""
    points, rows = chart["columns"][1:], chart["rows"]
    if not rows:
        return Markup("<p class='meta'>No data.</p>")
    height, left, axis, top = 220, 48, 34, 10
    biggest = max(max(r[1:]) for r in rows) or 1
    base = height - axis
    step = (WIDTH - left - 40) / max(1, len(points) - 1)
    body = [f'<text x="{left - 6}" y="{top + 8}" font-size="10" text-anchor="end">{biggest:,}</text>',
            f'<text x="{left - 6}" y="{base}" font-size="10" text-anchor="end">0</text>',
            f'<line x1="{left}" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#555" stroke-width="1"/>']
    for j, row in enumerate(rows):
        coords = " ".join(f"{left + i * step:.1f},{base - (base - top) * v / biggest:.1f}"
                          for i, v in enumerate(row[1:]))
        # Past the palette, lines repeat a colour but not its look: they are dashed.
        dashed = ' stroke-dasharray="6 3"' if j >= len(PALETTE) else ""
        body.append(f'<polyline points="{coords}" fill="none" stroke="{colour(row[0], j)}" stroke-width="2"{dashed}>'
                    f'<title>{escape(str(row[0]))}</title></polyline>')
    every = _every(len(points), max(len(str(p)) for p in points) * 5.6, step)
    for i, p in enumerate(points):
        if i % every == 0:
            body.append(f'<text x="{left + i * step:.1f}" y="{base + 14}" font-size="10" '
                        f'text-anchor="middle">{escape(str(p))}</text>')
    legend, used = _legend([str(r[0]) for r in rows], height - 14)
    return _svg(WIDTH, height - 14 + used, body + legend, chart["title"])


def draw(chart: dict) -> Markup:
    return {"stacked": stacked, "bars": bars, "lines": lines}.get(chart.get("kind", ""), bars)(chart)
