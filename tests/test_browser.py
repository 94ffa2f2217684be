"""A real browser (Playwright driving Debian's Chromium) working the inbox with the keyboard."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from correspondence.models import MessageStatus, Role
from tests.conftest import need

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("MAILROOM_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def browser():
    need(Path(CHROMIUM).exists() or bool(shutil.which("chromium")), f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def test_supervisor_assigns_with_keyboard_and_sees_dashboard_change(live_server, browser, factory, session,
                                                                    tmp_path):
    shots = Path(os.environ.get("MAILROOM_SCREENSHOT_DIR", tmp_path))
    supervisor = factory.staffer(role=Role.SUPERVISOR, name="Maria Alvarez")
    devon = factory.staffer(role=Role.CORRESPONDENT, name="Devon Carter")
    person = factory.constituent(first_name="Rosa", last_name="Martinez")
    for i in range(6):
        factory.message(subject=f"Bridge repair on Route {i}", constituent_id=person.id,
                        body_text="The bridge on Route 9 is crumbling and needs federal repair money.")
    factory.message(subject="Social Security payments stopped", body_text="My payments stopped this month.")
    session.commit()

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", supervisor.email)
    page.fill("input[name=password]", factory.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/dashboard/")
    assert page.inner_text(f"tr[data-staffer='{devon.id}'] td.open") == "0"
    unassigned_before = int(page.inner_text("#unassigned-count"))
    assert unassigned_before == 7

    page.goto(f"{live_server}/inbox/")
    page.keyboard.press("/")
    page.keyboard.type("Social Security")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=Social+Security**")
    assert page.locator("tbody tr[data-id]").count() == 1

    page.goto(f"{live_server}/inbox/")
    page.keyboard.press("j")  # focus moves to the second message
    assert page.locator("tr.focused").count() == 1
    focused_id = int(page.get_attribute("tr.focused", "data-id"))
    page.keyboard.press("a")
    assert page.evaluate("document.activeElement.id") == "bulk-assignee"
    page.select_option("#bulk-assignee", label="Devon Carter")
    page.wait_for_load_state("networkidle")
    page.wait_for_selector(".flash.ok")
    assert "1 message updated" in page.inner_text(".flash.ok")
    row = page.locator(f"tr[data-id='{focused_id}'] td.assignee")
    assert row.inner_text() == "Devon Carter"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "inbox.png"))

    page.goto(f"{live_server}/dashboard/")
    assert page.inner_text(f"tr[data-staffer='{devon.id}'] td.open") == "1"
    assert int(page.inner_text("#unassigned-count")) == unassigned_before - 1
    page.screenshot(path=str(shots / "dashboard.png"))

    session.rollback()  # end the read snapshot, then see what other sessions committed

    session.expire_all()
    from correspondence.models import Message

    assigned = session.get(Message, focused_id)
    assert assigned.assignee_id == devon.id and assigned.status == MessageStatus.ASSIGNED


def test_staffer_splits_and_merges_a_batch_in_the_browser(live_server, browser, factory, session):
    from batching.batches import recluster
    from correspondence.models import Batch, BatchStatus
    from tests.test_batches import STORIES, _pool

    supervisor = factory.staffer(role=Role.SUPERVISOR, name="Maria Alvarez")
    made = _pool(factory)
    recluster(session)
    session.commit()
    water_id = made["water"][0].batch_id

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", supervisor.email)
    page.fill("input[name=password]", factory.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/dashboard/")
    page.goto(f"{live_server}/batches/")
    assert page.locator("tr[data-batch]").count() == 2
    page.click(f"tr[data-batch='{water_id}'] a")
    page.wait_for_url(f"**/batches/{water_id}")
    assert "Clean Water Protection Act" in page.inner_text("blockquote.template")

    page.click("#added-only")
    page.wait_for_url("**added=1")
    assert page.locator("tr[data-id]").count() == 3
    assert page.inner_text("mark.addition >> nth=0") in STORIES

    page.goto(f"{live_server}/batches/{water_id}")
    chosen = [made["water"][1].id, made["water"][2].id]
    for message_id in chosen:
        page.check(f"tr[data-id='{message_id}'] input[type=checkbox]")
    page.click("button[form=split-form]")
    page.wait_for_selector(".flash.ok")
    assert "2 letters split into batch" in page.inner_text(".flash.ok")
    new_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert new_id != water_id and page.locator("tr[data-id]").count() == 2

    page.goto(f"{live_server}/batches/{water_id}")
    page.select_option("#merge-other", value=str(new_id))
    page.click("form[action$='/merge'] button")
    page.wait_for_selector(".flash.ok")
    assert page.locator("tr[data-id]").count() == 12
    session.rollback()
    session.expire_all()
    assert session.get(Batch, new_id).status == BatchStatus.MERGED

    page.click("ul.undo li >> nth=0 >> button")  # undo the merge: the two letters go back out
    page.wait_for_selector(".flash.ok")
    assert page.locator("tr[data-id]").count() == 10
