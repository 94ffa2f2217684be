"""Charts show whole labels (wrapped, or cut with the full text in a <title>), draw "not coded" in a neutral
grey, keep axis labels apart and inside the picture; long outside text never widens the page."""

import re
from html import unescape

from correspondence.models import Batch, BatchStatus, CaseCategory, Role
from web import charts

TOPICS = ["Armed Forces and National Security", "Health", "Environmental Protection",
          "Keep public lands in public hands and protect the national monuments " * 4]


def _svg_texts(svg: str) -> list[str]:
    """What a reader sees: each <text>'s visible lines joined, without its <title>."""
    out = []
    for body in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S):
        visible = re.sub(r"<title>.*?</title>", "", body, flags=re.S)
        out.append(unescape(" ".join(re.findall(r"<tspan[^>]*>(.*?)</tspan>", visible)) or re.sub("<[^>]+>", "",
                                                                                                     visible)))
    return out


def _view_box(svg: str) -> tuple[float, float]:
    w, h = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).groups()
    return float(w), float(h)


def _stance_chart():
    return {"title": "Stance per topic", "kind": "stacked",
            "columns": ["topic", "support", "oppose", "neutral", "not coded"],
            "rows": [[t, 3 + i, 2, 1, 5] for i, t in enumerate(TOPICS)]}


def test_topic_names_are_whole_and_not_coded_is_grey():
    svg = str(charts.draw(_stance_chart()))
    texts = _svg_texts(svg)
    for name in TOPICS[:3]:
        assert name in texts  # shown whole, not cut to five letters
    long_shown = next(t for t in texts if t.startswith("Keep public lands"))
    assert long_shown.endswith("…") and len(long_shown) < len(TOPICS[3])
    assert f"<title>{TOPICS[3]}</title>" in unescape(svg)  # the whole name, for hover and readers
    fills = dict(re.findall(r'fill="(#[0-9a-f]{6})"><title>[^<]*: (support|oppose|neutral|not coded) ', svg))
    assert fills[charts.NEUTRAL] == "not coded"
    assert {v: k for k, v in fills.items()}["oppose"] == "#b84a4a"
    assert charts.NEUTRAL not in {k for k, v in fills.items() if v != "not coded"}
    assert charts.NEUTRAL not in charts.PALETTE  # no channel or staffer is ever drawn in the "not coded" grey


def test_a_3000_character_label_wraps_into_two_lines_inside_the_picture():
    chart = {"title": "Campaigns growing fastest", "kind": "bars",
             "columns": ["campaign", "last 7 days", "7 days before", "change"],
             "rows": [["x" * 3000, 120, 30, 90], ["Keep public lands", 50, 10, 40]]}
    svg = str(charts.draw(chart))
    spans = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg)
    assert max(len(s) for s in spans) <= 45 and spans[1].endswith("…")
    assert "x" * 3000 in svg  # the whole of it, for hover and screen readers
    width, _h = _view_box(svg)
    for x, text in re.findall(r'<text x="([\d.]+)"[^>]*>(?:<title>[^<]*</title>)?([^<]*)<', svg):
        assert 0 <= float(x) + len(text) * charts.CHAR_PX <= width + 1, text  # the numbers after a bar fit


def test_axis_labels_do_not_collide_and_legends_wrap():
    days = {"title": "Per day", "kind": "stacked", "columns": ["day", *[f"Channel {n}" for n in range(14)]],
            "rows": [[f"2026-01-{d:02d}", *[d] * 14] for d in range(1, 31)] +
                    [[f"2026-02-{d:02d}", *[d] * 14] for d in range(1, 29)]}
    svg = str(charts.draw(days))
    width, height = _view_box(svg)
    axis = [(float(x), t) for x, t in re.findall(r'<text x="([\d.]+)" y="[\d.]+" font-size="10" '
                                                 r'text-anchor="middle">([^<]+)</text>', svg)]
    assert len(axis) >= 5
    gaps = [b[0] - a[0] for a, b in zip(axis, axis[1:], strict=False)]
    assert min(gaps) >= len(axis[0][1]) * 5.6  # neighbours never overlap
    legend_y = [float(y) for y in re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="10" height="10"', svg)]
    assert len(set(legend_y)) >= 2 and max(legend_y) + 10 <= height  # 14 names wrap onto rows, inside the picture
    legend_x = [float(x) for x in re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="10" height="10"', svg)]
    assert max(legend_x) < width


def test_many_staff_lines_stay_told_apart():
    chart = {"title": "Open mail", "kind": "lines", "columns": ["staffer", "2026-01-05", "2026-01-12"],
             "rows": [[f"Staffer {n}", n, n + 1] for n in range(10)]}
    svg = str(charts.draw(chart))
    looks = re.findall(r'stroke="(#[0-9a-f]{6})" stroke-width="2"( stroke-dasharray="6 3")?', svg)
    assert len(set(looks)) == 10


def test_long_outside_text_does_not_widen_the_pages(live_server, browser, factory, session):
    """Titles as long as their columns hold (cut from 3,000 characters) and a 20,000-character unbroken note
    stay inside the page."""
    from sqlalchemy import select

    from casework import cases
    from insight import analytics

    supervisor = factory.staffer(role=Role.SUPERVISOR)
    person = factory.constituent(first_name="Ana", last_name="Lopez", address1="Z" * 200)
    title = "Keep " + "public-lands-" * 230  # ~3,000 characters, one "word"
    batch = Batch(title=title[:300], status=BatchStatus.OPEN, member_count=3)  # the longest the column holds
    session.add(batch)
    session.flush()
    for _n in range(3):
        factory.message(constituent_id=person.id, subject=title[:500], body_text="lands " + "w" * 5000,
                        batch_id=batch.id)
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "IRS"))
    case = cases.open_case(session, constituent_id=person.id, category_id=category.id, subject=title,
                           actor_id=supervisor.id, caseworker_id=supervisor.id)
    cases.add_note(session, case.id, "N" * 20000, actor_id=supervisor.id)
    analytics.refresh(session)
    session.commit()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", supervisor.email)
    page.fill("input[name=password]", factory.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state("networkidle")
    for path in (f"/cases/{case.id}", f"/constituents/{person.id}", "/constituents/?find=lopez",
                 "/search/?q=lands", "/dashboard/analytics"):
        page.goto(f"{live_server}{path}")
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        widths = page.evaluate("[document.querySelector('main').scrollWidth, "
                               "document.querySelector('main').clientWidth]")
        assert widths[0] <= widths[1], (path, widths)
    context.close()
