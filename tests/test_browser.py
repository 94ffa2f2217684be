"""A real browser (Playwright driving Debian's Chromium) working the inbox with the keyboard."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from correspondence.models import MessageStatus, Role

pytestmark = pytest.mark.browser


def _sign_in(browser, live_server, staffer, password):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", staffer.email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


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

    page = _sign_in(browser, live_server, supervisor, factory.PASSWORD)
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
    page.keyboard.press("Enter")  # choosing alone sends nothing: Enter (or the Assign button) does
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

    page = _sign_in(browser, live_server, supervisor, factory.PASSWORD)
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


def test_letter_from_draft_to_approval_to_every_member(live_server, browser, factory, session, job_env, redis,
                                                       smtp_server, monkeypatch, tmp_path):
    from pypdf import PdfReader
    from rq import SimpleWorker

    from correspondence.models import ApplyRun
    from correspondence.services.blobs import load_blob
    from tests.test_drafting import _batch
    from workers.queues import OUTBOUND, get_queue

    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    shots = Path(os.environ.get("MAILROOM_SCREENSHOT_DIR", tmp_path))
    writer = factory.staffer(role=Role.CORRESPONDENT, name="Devon Carter")
    boss = factory.staffer(role=Role.SUPERVISOR, name="Maria Alvarez")
    batch, made = _batch(session, factory)
    session.commit()

    lc = _sign_in(browser, live_server, writer, factory.PASSWORD)
    lc.goto(f"{live_server}/letters/new")
    lc.fill("input[name=title]", "Clean water reply")
    lc.click("button.primary")
    lc.wait_for_selector("#submit-review")
    version_url = lc.url
    lc.click("#submit-review")
    lc.wait_for_selector(".flash.ok")
    assert lc.inner_text("#version-state") == "in review"

    sup = _sign_in(browser, live_server, boss, factory.PASSWORD)
    assert sup.inner_text("#approval-badge") == "1"
    sup.goto(f"{live_server}/approvals/")
    sup.click("table.approvals a")
    sup.fill("#change-comment", "Thank them for the personal story too.")
    sup.click("#request-changes")
    sup.wait_for_selector(".flash.ok")
    assert sup.inner_text("#version-state") == "changes requested"

    lc.goto(version_url)
    assert "Thank them for the personal story too." in lc.inner_text("section.comments")
    lc.click("#new-version")
    lc.wait_for_selector("#letter-body")
    body = lc.input_value("#letter-body").replace("{{ office.signature }}",
                                                  "Thank you for sharing your story.\n\n{{ office.signature }}")
    lc.fill("#letter-body", body)
    lc.click("#save-draft")
    lc.wait_for_selector(".flash.ok")
    assert "Thank you for sharing your story." in lc.inner_text("ins")  # the diff against version 1
    lc.click("#submit-review")
    lc.wait_for_selector(".flash.ok")

    sup.goto(f"{live_server}/approvals/")
    sup.click("table.approvals a")
    sup.screenshot(path=str(shots / "approval.png"))
    sup.click("#approve")
    sup.wait_for_selector(".flash.ok")
    assert sup.inner_text("#version-state") == "approved"

    lc.goto(f"{live_server}/batches/{batch.id}")
    lc.click("#answer-all")
    assert (lc.inner_text("#will-email"), lc.inner_text("#will-print"),
            lc.inner_text("#skip-no_address")) == ("4", "3", "1")
    # The letter has no topic, so it is not chosen for the staffer and must be confirmed as a mismatch.
    assert lc.locator("input[type=radio][name=version_id]:checked").count() == 0
    lc.locator("input[type=radio][name=version_id]").first.click()
    lc.wait_for_url("**version_id=**")
    assert lc.locator("input[type=radio][name=version_id]:checked").count() == 1
    lc.check("#confirm-mismatch")
    lc.click("#confirm-send")
    lc.wait_for_selector("#run-progress")
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    from playwright.sync_api import expect

    expect(lc.locator("#run-percent")).to_have_text("100", timeout=15000)
    expect(lc.locator("#run-delivery")).to_contain_text("sent 4", timeout=15000)
    # Responded once the server took the emails and the print file was made: 4 + 3, none still queued.
    expect(lc.locator("#run-responded")).to_have_text("7", timeout=15000)
    expect(lc.locator("#run-answer-queued")).to_have_text("0", timeout=15000)
    lc.screenshot(path=str(shots / "apply-to-all.png"))

    assert len(smtp_server.inbox.messages) == 4
    assert all("Thank you for sharing your story." in m.get_body(("plain",)).get_content()
               for m in smtp_server.inbox.messages)
    session.rollback()
    run = session.scalar(select(ApplyRun))
    pdf = load_blob(session, run.print_sha256)
    assert pdf is not None
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 3


def test_caseworker_runs_a_case_with_the_release_gate(live_server, browser, factory, session, tmp_path):
    worker = factory.staffer(role=Role.CASEWORKER, name="Lena Novak")
    person = factory.constituent(first_name="Ana", last_name="Lopez", address1="12 Elm St")
    message = factory.message(constituent_id=person.id, subject="My passport is stuck")
    session.commit()
    release = tmp_path / "signed-release.pdf"
    from tests.test_cases import PDF

    release.write_bytes(PDF)  # a real PDF: releases are checked by content

    page = _sign_in(browser, live_server, worker, factory.PASSWORD)
    page.goto(f"{live_server}/messages/{message.id}")
    page.click("#open-case")
    page.select_option("#case-category", label="Passports")
    page.click("#open-case")
    page.wait_for_selector("#release-status")
    assert "No signed privacy release on file" in page.inner_text("#release-status")

    page.click("li[data-kind='inquiry'] button")
    page.wait_for_selector(".flash.error")
    assert "cannot be sent yet" in page.inner_text(".flash.error")

    page.set_input_files("#release-file", str(release))
    page.click("#upload-release")
    page.wait_for_selector(".flash.ok")
    assert "On file since" in page.inner_text("#release-status")
    for kind in ("inquiry", "agency_response", "inform", "close"):
        page.click(f"li[data-kind='{kind}'] button")
        page.wait_for_selector(".flash.ok")
    assert page.locator("ol.steps li.done").count() == 5
    page.select_option("#case-status-select", value="closed")
    page.fill("input[name=outcome]", "Passport issued in time for the trip.")
    page.click("#set-status")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#case-status") == "closed"


def test_staffer_builds_a_segment_and_downloads_its_csv(live_server, browser, factory, session):
    from correspondence.models import Stance, Topic

    water = session.scalar(select(Topic).where(Topic.name == "Environmental Protection"))
    staffer = factory.staffer(role=Role.CORRESPONDENT, name="Sam Ortiz")
    for i in range(3):
        person = factory.constituent(first_name=f"Writer{i}", last_name="Oppose", zip5="43215")
        factory.message(constituent_id=person.id, topic_id=water.id, stance=Stance.OPPOSE)
    supporter = factory.constituent(first_name="Writer", last_name="Support", zip5="43215")
    factory.message(constituent_id=supporter.id, topic_id=water.id, stance=Stance.SUPPORT)
    factory.constituent(first_name="Elsewhere", last_name="Oppose", zip5="43085")
    session.commit()

    page = _sign_in(browser, live_server, staffer, factory.PASSWORD)
    page.goto(f"{live_server}/constituents/")
    from playwright.sync_api import expect

    expect(page.locator("#segment-count")).to_have_text("5")
    page.fill("#f-zips", "43215")
    expect(page.locator("#segment-count")).to_have_text("4")  # the live count, before "Show"
    page.select_option("#f-topic", label="Environmental Protection")
    page.select_option("#f-stance", value="oppose")
    expect(page.locator("#segment-count")).to_have_text("3")
    page.click("#apply-filter")
    page.wait_for_url("**stance=oppose**")
    assert page.locator("#members tbody tr").count() == 3
    page.fill("#segment-name", "Opposed the water rule")
    page.click("#save-segment")
    page.wait_for_selector(".flash.ok")
    assert "Opposed the water rule" in page.inner_text("#saved-segments")

    with page.expect_download() as info:
        page.click("#download-csv")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    lines = text.strip().splitlines()
    assert lines[0].startswith("id,prefix,first_name,last_name") and len(lines) == 4
    assert sorted(line.split(",")[2] for line in lines[1:]) == ["Writer0", "Writer1", "Writer2"]


def test_staff_code_mail_retrain_and_see_suggestions(live_server, browser, factory, session, job_env, redis,
                                                     monkeypatch):
    import random

    from playwright.sync_api import expect
    from rq import SimpleWorker

    from correspondence.models import Message, Topic, TopicModel
    from tests.test_triage_intelligence import _letter
    from workers.queues import MAINTENANCE, get_queue

    monkeypatch.setenv("MAILROOM_AUTOCODE_CONFIDENCE", "0")  # suggestions only: nothing applied on its own
    rng = random.Random(11)
    keyword = {"Health": "insulin", "Education": "school", "Transportation and Public Works": "bridge"}
    for topic, word in keyword.items():
        for i in range(10):
            factory.message(subject=f"{word} letter {i}", body_text=f"{word} {_letter(rng, topic)}")
    fresh = factory.message(subject="A new letter", body_text="Prescription drug prices keep rising and my "
                            "insulin costs too much.", received_at=datetime_now())
    boss = factory.staffer(role=Role.SUPERVISOR, name="Maria Alvarez")
    session.commit()

    page = _sign_in(browser, live_server, boss, factory.PASSWORD)
    for topic, word in keyword.items():  # code ten letters per topic the way staff do: filter, select all, set
        page.goto(f"{live_server}/inbox/?q={word}+letter")
        expect(page.locator("#messages tbody tr[data-id]")).to_have_count(10)
        page.check("#select-all")
        page.select_option("select[name=topic_id]", label=topic)
        page.click("button[name=action][value=topic]")
        page.wait_for_selector(".flash.ok")
    page.goto(f"{live_server}/inbox/?topic=none")
    assert page.locator(f"tr[data-id='{fresh.id}'] .suggested").count() == 0  # no model yet

    page.goto(f"{live_server}/admin/topics")
    page.click("#retrain")
    page.wait_for_selector(".flash.ok")
    SimpleWorker([get_queue(MAINTENANCE, redis)], connection=redis).work(burst=True)
    page.reload()
    expect(page.locator("#model-versions tr.active")).to_contain_text("v1")
    assert session.scalar(select(TopicModel.examples)) == 30

    page.goto(f"{live_server}/inbox/?topic=none")
    chips = page.locator(f"tr[data-id='{fresh.id}'] .suggested .chip.first")
    expect(chips).to_contain_text("Health")
    page.keyboard.press("j")
    page.keyboard.press("t")  # accept the suggestion for the focused message
    page.wait_for_selector(".flash.ok")
    session.rollback()
    session.expire_all()
    health = session.scalar(select(Topic.id).where(Topic.name == "Health"))
    coded = session.get(Message, fresh.id)
    assert (coded.topic_id, coded.topic_source) == (health, "staff")


def datetime_now():
    from correspondence.models import utcnow

    return utcnow()
