"""The printable privacy release, filled in with the constituent's details (WeasyPrint)."""

from __future__ import annotations

from jinja2 import Environment, select_autoescape

from correspondence.models import Case
from drafting.render import address_block

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
@page { size: letter; margin: 1in; }
body { font-family: "DejaVu Serif", serif; font-size: 11pt; line-height: 1.5; }
h1 { font-size: 15pt; text-align: center; }
.field { border-bottom: 1px solid #000; display: inline-block; min-width: 3in; }
.address { white-space: pre-line; margin: 0.2in 0; }
.sign { margin-top: 0.6in; }
</style></head><body>
<p style="text-align:center">{{ office }}</p>
<h1>Privacy Act Release Form</h1>
<p>Case {{ case.id }} · {{ case.category.name }}{% if case.agency %} · {{ case.agency }}{% endif %}</p>
<div class="address">{{ address }}</div>
<p>I authorise {{ member }} and the staff of this office to obtain information from
{{ case.agency or "the agency concerned" }} about my case, described as: <b>{{ case.subject }}</b>,
and to discuss it with that agency, in accordance with the Privacy Act of 1974 (5 U.S.C. 552a).</p>
<p>Social Security number, claim or file number (if any): <span class="field">&nbsp;</span></p>
<p>Date of birth: <span class="field">&nbsp;</span></p>
<p class="sign">Signature: <span class="field">&nbsp;</span> &nbsp;
Date: <span class="field" style="min-width:1.5in">&nbsp;</span></p>
<p>Please sign and return this form to the office by mail, in person, or as a scan or photo.</p>
</body></html>"""
_ENV = Environment(autoescape=select_autoescape(default=True))


def release_pdf(case: Case, settings) -> bytes:
    from drafting.printing import html_to_pdf  # no URL fetched, no file read (issue 12)

    html = _ENV.from_string(_PAGE).render(case=case, address=address_block(case.constituent),
                                          office=settings.office_name, member=settings.member_name)
    return html_to_pdf(html)
