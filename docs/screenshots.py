"""Screenshots of the demo office for the README: python docs/screenshots.py (needs Chromium)."""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from coding.suggest import rescore_open, train  # noqa: E402
from config import Settings  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.models import Batch, Staffer, Topic  # noqa: E402
from correspondence.passwords import hash_password  # noqa: E402
from demo.office import build_demo_office  # noqa: E402
from insight.analytics import refresh  # noqa: E402
from web import create_app  # noqa: E402
from workers.setup import initialise  # noqa: E402

PASSWORD = "screenshot password"
HERE = Path(__file__).resolve().parent


def main() -> None:
    inst = Path(tempfile.mkdtemp(prefix="mailroom-shots-"))
    # Screenshots show the desk, not the second-factor enrolment a real supervisor goes through first.
    settings = Settings.from_env({"MAILROOM_REQUIRE_2FA": ""}, instance_dir=inst,
                                 database_url=f"sqlite:///{inst / 'm.db'}", secret_key="shots",
                                 redis_url="redis://unused")
    initialise(settings)
    db = Database.from_settings(settings)
    build_demo_office(db, inst, messages=3000, constituents=800, seed=1)
    with db.unit_of_work() as s:
        maria = s.scalar(select(Staffer).where(Staffer.email == "maria.alvarez@mailroom.local"))
        assert maria is not None
        maria.password_hash = hash_password(PASSWORD)
        maria.must_change_password = False
        # A first topic model (suggestions in the inbox) and the analytics snapshot, as the jobs make them.
        train(s, actor_id=None)
        rescore_open(s, autocode=0.0)
        refresh(s)
        health = s.scalar(select(Topic.id).where(Topic.name == "Health"))
        biggest = s.scalar(select(Batch.id).order_by(Batch.member_count.desc()).limit(1))
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "maria.alvarez@mailroom.local")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/dashboard/")
        page.screenshot(path=str(HERE / "dashboard.png"))
        page.goto(f"{base}/inbox/")
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.screenshot(path=str(HERE / "inbox.png"))
        page.goto(f"{base}/dashboard/analytics")
        page.screenshot(path=str(HERE / "analytics.png"))
        page.goto(f'{base}/search/?q="social+security"+status:open')
        page.screenshot(path=str(HERE / "search.png"))
        page.goto(f"{base}/constituents/?topic_id={health}&district=in_district")
        page.screenshot(path=str(HERE / "segment.png"))
        # The dry run of the largest campaign: the suggested letter chosen, its preview for three recipients.
        page.goto(f"{base}/batches/{biggest}/answer")
        page.wait_for_selector("#letter-preview article.letter-preview-card",
                               timeout=15000)
        page.screenshot(path=str(HERE / "dry-run-preview.png"), full_page=True)
        # The same desk on a phone (390 px): the inbox and a message, with the menu open on the first.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                    is_mobile=True, has_touch=True)
        page = phone.new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "maria.alvarez@mailroom.local")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/dashboard/")
        page.goto(f"{base}/inbox/")
        page.screenshot(path=str(HERE / "inbox-phone.png"))
        page.click("#menu-button")
        page.screenshot(path=str(HERE / "menu-phone.png"))
        page.goto(f"{base}/batches/{biggest}")
        page.screenshot(path=str(HERE / "batch-phone.png"))
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main()
