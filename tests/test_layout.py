"""Every page fits the screen for every role: at 1280×800 (a laptop) and at 390×844 (a phone) nothing
scrolls sideways, with a demo office's data plus a 3,000-character title and an unbroken URL in it.
On a phone the navigation sits behind a real menu button that works by keyboard."""

from __future__ import annotations

import pytest

from correspondence.models import Role
from tests.site_pages import pages_for, seed_office, sign_in

pytestmark = pytest.mark.browser

SCREENS = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}
# Long names, as real offices have them, widen the header the most.
NAMES = {Role.ADMIN: "Alexandra Montgomery-Whitfield", Role.SUPERVISOR: "Maria Guadalupe Alvarez",
         Role.CORRESPONDENT: "Devon Carter-Nakamura", Role.CASEWORKER: "Lena Novak-Oyelaran"}
STATUS_OK = {"cases.help_confirm": 410}  # a link that is not (or no longer) valid says so on a page


def _walk(browser, base: str, pages, viewport: dict, login: tuple[str, str] | None):
    """Open each page in one browser context; yields (page, status, final url, scrollWidth, innerWidth)."""
    context = browser.new_context(viewport=viewport)
    try:
        tab = sign_in(context, base, *login) if login else context.new_page()
        for p in pages:
            response = tab.goto(base + p.path)
            widths = tab.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            yield p, response.status if response else 0, tab.url, *widths
    finally:
        context.close()


def test_every_page_fits_the_screen_for_every_role(live_server, browser, app, database, settings, factory,
                                                   session):
    ids = seed_office(database, settings.instance_dir, settings)
    staff = {role: factory.staffer(role=role, name=name) for role, name in NAMES.items()}
    session.commit()
    problems, summary = [], []
    for role in (None, *Role):
        pages = pages_for(app, role, ids)
        login = (staff[role].email, factory.PASSWORD) if role else None
        for screen, viewport in SCREENS.items():
            widest = (0, "")
            for p, status, url, scroll_width, inner in _walk(browser, live_server, pages, viewport, login):
                who = role.value if role else "visitor"
                if status != STATUS_OK.get(p.endpoint, 200) or (role and "/login" in url):
                    problems.append(f"{who} {screen}px {p.path}: status {status} at {url}")
                if scroll_width > inner:
                    problems.append(f"{who} {screen}px {p.path}: {scroll_width} px wide on a {inner} px screen")
                widest = max(widest, (scroll_width, p.path))
            summary.append(f"{role.value if role else 'visitor':13} {screen:>4}px  {len(pages):2} pages  "
                           f"widest {widest[0]} px ({widest[1]})")
    print("\n" + "\n".join(summary))
    assert not problems, "\n".join(problems)
    assert len(summary) == 2 * (1 + len(Role))


def test_phone_menu_button_opens_the_navigation_by_keyboard(live_server, browser, factory, session):
    admin = factory.staffer(role=Role.ADMIN, name=NAMES[Role.ADMIN])
    session.commit()
    context = browser.new_context(viewport=SCREENS["390"])
    page = sign_in(context, live_server, admin.email, factory.PASSWORD)
    page.goto(f"{live_server}/inbox/")
    button = page.locator("#menu-button")
    nav = page.locator("#site-nav")
    assert button.evaluate("e => e.tagName") == "BUTTON"
    assert button.get_attribute("aria-controls") == "site-nav"
    assert button.get_attribute("aria-expanded") == "false"
    assert not nav.is_visible()
    # The skip link comes first, then the brand, then the menu button: reach it with Tab, open it with Enter.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "menu-button":
            break
    assert page.evaluate("document.activeElement.id") == "menu-button"
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"
    assert nav.is_visible()
    assert page.locator("#site-nav a", has_text="Sign out").count() + page.locator(
        "#site-nav button", has_text="Sign out").count() == 1
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#site-nav') !== null")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.keyboard.press("Escape")
    assert button.get_attribute("aria-expanded") == "false"
    assert not nav.is_visible()
    assert page.evaluate("document.activeElement.id") == "menu-button"  # focus goes back to the button
    # At 1280 there is no menu button: the navigation is simply there.
    page.set_viewport_size(SCREENS["1280"])
    assert not button.is_visible()
    assert nav.is_visible()
    context.close()


def test_without_javascript_the_phone_navigation_is_shown_and_wraps(live_server, browser, factory, session):
    admin = factory.staffer(role=Role.ADMIN, name=NAMES[Role.ADMIN])
    session.commit()
    context = browser.new_context(viewport=SCREENS["390"], java_script_enabled=False)
    page = sign_in(context, live_server, admin.email, factory.PASSWORD)
    page.goto(f"{live_server}/admin/staff")
    assert page.locator("#site-nav").is_visible()
    assert page.locator("#site-nav a", has_text="Staff").is_visible()
    assert not page.locator("#menu-button").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()
