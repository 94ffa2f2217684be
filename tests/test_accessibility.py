"""WCAG 2.1 AA on every page for every role: axe-core (bundled by axe-playwright-python) finds no serious or
critical violation at 1280×800, with a demo office's data in the pages. Keyboard: the skip link is the first
stop and moves focus to the main content; focus is always visible."""

from __future__ import annotations

from collections import Counter

import pytest

from correspondence.models import Role
from tests.site_pages import pages_for, seed_office, sign_in

pytestmark = pytest.mark.browser

SCREEN = {"width": 1280, "height": 800}
FAILING = {"serious", "critical"}
# WCAG 2.0 and 2.1, levels A and AA (what the README's accessibility statement promises), plus axe's
# best practices (landmarks, heading order, a level-one heading), which fail too when serious or critical.
RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                   "best-practice"]},
         "resultTypes": ["violations"]}


def test_no_serious_or_critical_violations_on_any_page_for_any_role(live_server, browser, app, database,
                                                                     settings, factory, session):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    ids = seed_office(database, settings.instance_dir, settings)
    staff = {role: factory.staffer(role=role) for role in Role}
    session.commit()
    failures: list[str] = []
    by_rule: Counter[tuple[str, str]] = Counter()
    checked = 0
    for role in (None, *Role):
        context = browser.new_context(viewport=SCREEN)
        tab = sign_in(context, live_server, staff[role].email, factory.PASSWORD) if role else context.new_page()
        for p in pages_for(app, role, ids):
            tab.goto(live_server + p.path)
            violations = axe.run(tab, options=RULES).response["violations"]
            checked += 1
            for v in violations:
                by_rule[(v["impact"], v["id"])] += len(v["nodes"])
                if v["impact"] in FAILING:
                    where = "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:3])
                    failures.append(f"{role.value if role else 'visitor'} {p.path}: {v['impact']} {v['id']} "
                                    f"({len(v['nodes'])}×: {where}) {v['help']}")
        context.close()
    print(f"\naxe-core checked {checked} pages; violations by impact and rule (elements):")
    for (impact, rule), n in sorted(by_rule.items()):
        print(f"  {impact:9} {rule:32} {n}")
    assert checked > 100  # every role's pages, not a handful
    assert not failures, "\n".join(failures)


def test_skip_link_is_the_first_stop_and_focus_is_visible(live_server, browser, factory, session):
    staffer = factory.staffer(role=Role.CORRESPONDENT)
    session.commit()
    context = browser.new_context(viewport=SCREEN)
    page = sign_in(context, live_server, staffer.email, factory.PASSWORD)
    page.goto(f"{live_server}/batches/")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert skip.is_visible() and skip.bounding_box()["y"] >= 0  # shown while it has focus
    outline = skip.evaluate("e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth")
    assert outline.startswith("solid") and not outline.endswith(" 0px")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")  # the next stop is inside the page's content, not back in the header
    assert page.evaluate("document.activeElement.closest('main') !== null")
    # Every link and button on the way shows a focus outline (the empty Batches page has four of them).
    for _ in range(4):
        style = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert style != "none", page.evaluate("document.activeElement.outerHTML.slice(0, 120)")
        page.keyboard.press("Tab")
    context.close()
