"""Issue 12's new pages as a first-time person meets them, in a real browser on a phone-sized screen:
no sideways scrolling, errors named at their fields, the honeypot out of reach, and a possible match
whose two answers look different."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from correspondence.models import HelpRequest, Role

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _overflow(page) -> int:
    """How many pixels the page is wider than the screen (0: nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def _fill_help(page, **values: str) -> None:
    form = {"first_name": "Ana", "last_name": "Lopez", "email": "ana@example.org", "street": "1 Elm St",
            "city": "Columbus", "state": "OH", "zip5": "43215", "description": "My passport is stuck.",
            "signature": "Ana Lopez", **values}
    for name, value in form.items():
        page.fill(f"[name={name}]", value)
    page.check("#f-consent")


def test_help_form_on_a_phone_names_each_error_at_its_field(live_server, browser):
    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(f"{live_server}/help")
    assert _overflow(page) == 0
    # The honeypot is neither reachable with Tab nor announced to a screen reader.
    assert page.locator(".trap").get_attribute("aria-hidden") == "true"
    focused = []
    for _ in range(5):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.name || document.activeElement.className"))
    # The skip link, the brand, then the form's fields in order.
    assert focused == ["skip-link", "brand", "first_name", "last_name", "email"]
    # Every visible input, select and textarea has a label.
    unlabelled = page.evaluate("""[...document.querySelectorAll('form input, form select, form textarea')]
        .filter(e => e.type !== 'hidden' && !e.closest('.trap') && e.labels.length === 0).map(e => e.name)""")
    assert unlabelled == []

    _fill_help(page, zip5="4321")
    page.click("button[type=submit].primary")
    page.wait_for_selector("#help-errors")
    assert _overflow(page) == 0
    zip_field = page.locator("#f-zip5")
    assert zip_field.get_attribute("aria-invalid") == "true"
    described = page.inner_text(f"#{zip_field.get_attribute('aria-describedby')}")
    assert "5 digits" in described
    assert page.locator("#f-email").get_attribute("aria-invalid") is None  # only the wrong field is marked
    page.click("#help-errors a[href='#f-zip5']")
    page.fill("#f-zip5", "43215")
    page.click("button[type=submit].primary")
    page.wait_for_selector("#help-reference")
    assert _overflow(page) == 0


def test_caseworker_tells_confirm_from_reject_on_a_phone(live_server, browser, factory, session):
    factory.constituent(first_name="Ana", last_name="Lopez", email="ana@example.org")
    caseworker = factory.staffer(role=Role.CASEWORKER)
    session.commit()
    public = browser.new_context(viewport=PHONE).new_page()
    public.goto(f"{live_server}/help")
    _fill_help(public)
    public.click("button[type=submit].primary")
    reference = public.inner_text("#help-reference")
    session.rollback()
    case_id = session.scalar(select(HelpRequest.case_id).where(HelpRequest.reference == reference))

    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", caseworker.email)
    page.fill("input[name=password]", factory.PASSWORD)
    page.click("main input[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{live_server}/cases/{case_id}")
    page.wait_for_selector("#possible-match")
    assert _overflow(page) == 0
    confirm, reject = page.locator("#confirm-match"), page.locator("#reject-match")
    style = "e => getComputedStyle(e).backgroundColor + ' ' + getComputedStyle(e).color"
    assert confirm.evaluate(style) != reject.evaluate(style)
    assert "same person" in confirm.inner_text() and "different person" in reject.inner_text()
    reject.click()
    page.wait_for_load_state()
    assert "not the same person" in page.inner_text("section.release")


def test_an_admin_enrols_on_a_phone_without_sideways_scrolling(live_server, browser, factory, session):
    admin = factory.staffer(role=Role.ADMIN)
    session.commit()
    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", factory.PASSWORD)
    page.click("main input[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{live_server}/account/two-factor")
    assert _overflow(page) == 0  # the admin's long navigation wraps
    page.click("#totp-start")
    page.wait_for_selector("#totp-qr svg")
    assert _overflow(page) == 0
    qr = page.locator("#totp-qr svg")
    assert qr.get_attribute("viewBox")  # it scales to fit instead of being cropped
    box = qr.bounding_box()
    assert 150 <= box["width"] <= PHONE["width"] and box["x"] >= 0
    page.fill("#totp-code", "000000")
    page.click("form[action$='confirm'] [type=submit]")
    page.wait_for_selector("#totp-code-error")
    assert page.locator("#totp-code").get_attribute("aria-describedby") == "totp-code-error"
    assert page.locator("main > .flash.error").count() == 0  # the error sits at the field, not at the top
