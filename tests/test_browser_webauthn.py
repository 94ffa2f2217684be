"""A security key in a real browser: Chromium's virtual authenticator (over CDP) registers a key on
the two-factor page, then signs in with it. The page's JS is the static web/static/webauthn.js."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from correspondence.models import AuditEvent, Role, WebAuthnCredential

pytestmark = pytest.mark.browser



@pytest.fixture
def live_server(settings):
    """The app with supervisors required to use a second factor, served on localhost.

    WebAuthn needs a host name for the relying party id (an IP address is not allowed), and
    http://localhost counts as a secure context, so the browser goes to localhost, not 127.0.0.1.
    """
    from web import create_app

    app = create_app(dataclasses.replace(settings, require_2fa=frozenset({"supervisor"})))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_port}"
    server.shutdown()
    thread.join(5)
    app.extensions["mailroom.db"].dispose()
    app.extensions["mailroom.db_write"].dispose()



def _password_step(page, live_server, staffer, password):
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", staffer.email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_load_state("networkidle")


def test_supervisor_registers_a_security_key_and_signs_in_with_it(live_server, browser, factory, session):
    supervisor = factory.staffer(role=Role.SUPERVISOR, name="Maria Alvarez")
    session.commit()
    context = browser.new_context()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})

    _password_step(page, live_server, supervisor, factory.PASSWORD)
    page.goto(f"{live_server}/inbox/")
    page.wait_for_url("**/account/two-factor")  # must enrol before anything else
    page.fill("#key-name", "Blue key")
    page.click("#add-key")
    page.wait_for_selector("#keys li")
    assert "Blue key" in page.inner_text("#keys")
    page.goto(f"{live_server}/inbox/")
    page.wait_for_url("**/inbox/")

    page.click("form[action$='/logout'] button")
    page.wait_for_url("**/login")
    _password_step(page, live_server, supervisor, factory.PASSWORD)
    page.wait_for_url("**/login/second-factor")
    page.goto(f"{live_server}/inbox/")
    page.wait_for_url("**/login**")  # the password alone is not a session
    page.goto(f"{live_server}/login/second-factor")
    page.click("#use-key")
    page.wait_for_url("**/dashboard/")
    assert "Maria Alvarez" in page.inner_text("header")

    session.rollback()
    session.expire_all()
    key = session.scalar(select(WebAuthnCredential).where(WebAuthnCredential.staffer_id == supervisor.id))
    assert key is not None and key.name == "Blue key" and key.last_used_at is not None
    signed_in = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "login.succeeded")).all()
    assert any("security key" in (d or "") for d in signed_in)
    context.close()
