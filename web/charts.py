"""Server-rendered SVG charts: readable at a glance, no JavaScript, nothing outside text unescaped."""

from __future__ import annotations

from markupsafe import Markup, escape

PALETTE = ("#3b6ea5", "#e08a2c", "#5a9e5a", "#b84a4a", "#8a6bb8", "#4aa5a5", "#a5a03b", "#777777")


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    inner = "".join(body)
    return Markup(f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(label)}" '  # noqa: S704 - labels escaped
                  f'xmlns="http://www.w3.org/2000/svg">{inner}</svg>')


def _legend(names: list[str], y: int) -> list[str]:
    out, x = [], 0
    for i, name in enumerate(names):
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{x + 14}" y="{y + 9}" font-size="11">{escape(name)}</text>')
        x += 24 + 8 * len(name)
    return out


def stacked(chart: dict) -> Markup:
    """Columns: label, then one series per column; one stacked bar per row."""
    series, rows = chart["columns"][1:], chart["rows"]
    if not rows:
        return Markup("<p class='meta'>No data.</p>")
    width, height, top, bottom = 900, 240, 10, 40
    biggest = max(sum(r[1:]) for r in rows) or 1
    step = width / len(rows)
    body = []
    for i, row in enumerate(rows):
        y = height - bottom
        for j, value in enumerate(row[1:]):
            h = (height - top - bottom) * value / biggest
            if h > 0:
                body.append(f'<rect x="{i * step + 1:.1f}" y="{y - h:.1f}" width="{max(step - 2, 1):.1f}" '
                            f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(row[0])}: '
                            f'{escape(series[j])} {value}</title></rect>')
            y -= h
        if len(rows) <= 16 or i % max(1, len(rows) // 12) == 0:
            body.append(f'<text x="{i * step + step / 2:.1f}" y="{height - bottom + 14}" font-size="10" '
                        f'text-anchor="middle">{escape(str(row[0])[-5:])}</text>')
    body.append(f'<text x="0" y="{top + 2}" font-size="10">{biggest:,}</text>')
    body += _legend([str(s) for s in series], height - 12)
    return _svg(width, height, body, chart["title"])


def bars(chart: dict) -> Markup:
    """Columns: label, value, …; one horizontal bar per row, the value and the rest as text."""
    rows = chart["rows"]
    if not rows:
        return Markup("<p class='meta'>No data.</p>")
    width, bar, gap, label_w = 900, 16, 6, 260
    biggest = max(float(r[1] or 0) for r in rows) or 1
    body = []
    for i, row in enumerate(rows):
        y = i * (bar + gap)
        w = (width - label_w - 200) * float(row[1] or 0) / biggest
        extra = " · ".join(f"{c} {v}" for c, v in zip(chart["columns"][2:], row[2:], strict=False) if v is not None)
        body.append(f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" text-anchor="end">'
                    f'{escape(str(row[0])[:40])}</text><rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}" '
                    f'fill="{PALETTE[0]}"/><text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="11">'
                    f'{escape(row[1])}{(" · " + escape(extra)) if extra else ""}</text>')
    return _svg(width, len(rows) * (bar + gap), body, chart["title"])


def lines(chart: dict) -> Markup:
    """Columns: label, then one point per column; one line per row."""
    points, rows = chart["columns"][1:], chart["rows"]
    if not rows:
        return Markup("<p class='meta'>No data.</p>")
    width, height, left, bottom = 900, 220, 40, 50
    biggest = max(max(r[1:]) for r in rows) or 1
    step = (width - left - 10) / max(1, len(points) - 1)
    body = [f'<text x="0" y="12" font-size="10">{biggest:,}</text>']
    for j, row in enumerate(rows):
        coords = " ".join(f"{left + i * step:.1f},{(height - bottom) - (height - bottom - 10) * v / biggest:.1f}"
                          for i, v in enumerate(row[1:]))
        body.append(f'<polyline points="{coords}" fill="none" stroke="{PALETTE[j % len(PALETTE)]}" stroke-width="2">'
                    f'<title>{escape(row[0])}</title></polyline>')
    for i, p in enumerate(points):
        if i % 2 == 0 or i == len(points) - 1:
            body.append(f'<text x="{left + i * step:.1f}" y="{height - bottom + 14}" font-size="10" '
                        f'text-anchor="middle">{escape(str(p)[5:])}</text>')
    body += _legend([str(r[0]) for r in rows], height - 14)
    return _svg(width, height, body, chart["title"])


def draw(chart: dict) -> Markup:
    return {"stacked": stacked, "bars": bars, "lines": lines}.get(chart.get("kind"), bars)(chart)
