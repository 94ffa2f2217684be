"""Print-ready letters: one PDF per run (one letter per page, addressed for a #10 window envelope) and
a CSV of the same addresses for a mail house.

Every PDF Mailroom makes goes through ``html_to_pdf``, whose URL fetcher refuses every URL (http,
https, ftp, file...) except inline ``data:``: the pages use no outside assets (fonts come from the
system through fontconfig, styles are inline), so a letter, a letterhead or a case field can never
make the server fetch a URL (SSRF) or read a local file into a PDF (``<img src="file:///etc/passwd">``,
``<link rel="attachment" href="file:///...">``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from jinja2 import Environment, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from correspondence.csvsafe import safe_cell
from correspondence.models import ApplyRun, Constituent, DeliveryMethod, Response
from drafting.render import Office, address_block

# US #10 window envelope: the window sits 7/8" from the left and about 2" from the top of a
# letter folded in thirds; the address block is placed inside it.
_PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
@page { size: letter; margin: 0.75in 1in 1in 1in; }
body { font-family: "DejaVu Serif", serif; font-size: 11pt; line-height: 1.4; }
.letter { page-break-after: always; position: relative; min-height: 9in; }
.letter:last-child { page-break-after: auto; }
.letterhead { text-align: center; font-size: 10pt; border-bottom: 1px solid #444; padding-bottom: 4pt; }
.date { margin-top: 0.3in; }
.address { position: absolute; top: 1.25in; left: -0.125in; width: 4in; height: 1.1in; white-space: pre-line; }
.body { margin-top: 1.6in; white-space: pre-wrap; }
.signature { margin-top: 0.3in; white-space: pre-line; }
</style></head><body>
{% for item in letters %}<section class="letter">
<div class="letterhead">{{ office.letterhead }}</div>
<div class="date">{{ today }}</div>
<div class="address">{{ item.address }}</div>
<div class="body">{{ item.body }}</div>
</section>{% endfor %}
</body></html>"""
_ENV = Environment(autoescape=select_autoescape(default=True))


def print_responses(session: Session, run: ApplyRun) -> list[tuple[Response, Constituent | None]]:
    rows = session.scalars(select(Response).where(Response.run_id == run.id,
                                                  Response.method == DeliveryMethod.PRINT)
                           .order_by(Response.id))
    constituents = {c.id: c for c in session.scalars(select(Constituent).options(selectinload(Constituent.emails))
                                                    .where(Constituent.id.in_(
                                                        select(Response.constituent_id)
                                                        .where(Response.run_id == run.id))))}
    return [(r, constituents.get(r.constituent_id) if r.constituent_id is not None else None) for r in rows]


def html_to_pdf(html: str) -> bytes:
    """The page as a PDF, with no URL fetched and no file read (only inline data: URLs load)."""
    # Imported here: WeasyPrint loads Pango, which only printing needs.
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    class NoOutsideResources(URLFetcher):
        def fetch(self, url, headers=None):
            if url[:5].lower() == "data:":
                return super().fetch(url, headers)
            raise ValueError(f"printing does not load outside resources: {url[:200]}")

    fetcher = NoOutsideResources(allowed_protocols=("data",), allow_redirects=False, timeout=1)
    return HTML(string=html, url_fetcher=fetcher).write_pdf()


def letters_pdf(items: Sequence[tuple[Response, Constituent | None]], office: Office, today: str) -> bytes:
    html = _ENV.from_string(_PAGE).render(
        office=office, today=today, letters=[{"address": address_block(c), "body": r.body_text} for r, c in items])
    return html_to_pdf(html)


def mail_house_csv(items: Sequence[tuple[Response, Constituent | None]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["response_id", "name", "address1", "address2", "city", "state", "zip"])
    for r, c in items:
        if c is None:
            continue
        name = " ".join(x for x in (c.prefix, c.first_name, c.last_name, c.suffix) if x)
        zip_code = f"{c.zip5}-{c.zip4}" if c.zip5 and c.zip4 else (c.zip5 or "")
        # Names and addresses are what constituents typed: made safe against spreadsheet formulas.
        writer.writerow([safe_cell(v) for v in (r.id, name, c.address1, c.address2, c.city, c.state, zip_code)])
    return out.getvalue()
