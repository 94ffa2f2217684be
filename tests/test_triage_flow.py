"""Triage in few actions, in a real browser: code, assign, next in three; next/previous; ? help; e with undo;
15 rows at 1280x800; landing by role; typing in the assign select never sends it. Plus the services behind them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from correspondence.models import AuditEvent, Message, MessageStatus, Role, Stance, Topic
from correspondence.services.inbox import undo_close

browser_test = pytest.mark.browser


def _sign_in(browser, live_server, staffer, password, width=1280, height=800):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", staffer.email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def _mail(factory, session, n, **kw):
    """n messages received an hour apart, oldest first."""
    start = datetime.now(UTC) - timedelta(days=3)
    made = [factory.message(subject=f"Letter {i:02d} about the bridge", received_at=start + timedelta(hours=i), **kw)
            for i in range(n)]
    session.commit()
    return made


def _fresh(session, model, ident):
    session.rollback()  # end the read snapshot, then see what the browser's requests committed
    session.expire_all()
    return session.get(model, ident)


class Actions:
    """Counts what the person does: each key press, choice or click is one action."""

    def __init__(self, page) -> None:
        self.page, self.count = page, 0

    def press(self, key: str) -> None:
        self.count += 1
        self.page.keyboard.press(key)

    def choose(self, selector: str, label: str) -> None:
        self.count += 1
        self.page.select_option(selector, label=label)

    def click(self, selector: str) -> None:
        self.count += 1
        self.page.click(selector)


@browser_test
def test_read_code_assign_and_next_in_three_actions(live_server, browser, factory, session):
    lc = factory.staffer(role=Role.CORRESPONDENT, name="Priya Shah")
    devon = factory.staffer(role=Role.CORRESPONDENT, name="Devon Carter")
    topic = Topic(name="Infrastructure")
    session.add(topic)
    session.flush()
    first, second, _third = _mail(factory, session, 3, suggestions={
        "model": 1, "topics": [[topic.id, 0.83]], "stance": ["support", 0.71]})
    page = _sign_in(browser, live_server, lc, factory.PASSWORD)
    page.goto(f"{live_server}/inbox/?assignee=none&sort=oldest")
    page.click(f"tr[data-id='{first.id}'] td.subject a")  # reading the message is where the count starts
    page.wait_for_url(f"**/messages/{first.id}?**")

    act = Actions(page)
    act.press("t")  # the suggested topic and stance go into the form
    act.choose("#triage-assignee", "Devon Carter")
    act.click("#save-next")
    page.wait_for_url(f"**/messages/{second.id}?**")
    assert act.count <= 3
    assert "assignee=none" in page.url and "sort=oldest" in page.url  # still working through the same list

    done = _fresh(session, Message, first.id)
    assert (done.topic_id, done.stance, done.assignee_id) == (topic.id, Stance.SUPPORT, devon.id)
    assert done.status == MessageStatus.ASSIGNED and done.topic_source == "staff"
    page.goto(f"{live_server}/messages/{first.id}")
    history = page.inner_text("ul.history")
    assert "Priya Shah assigned this to Devon Carter" in history and "coded the topic as Infrastructure" in history


@browser_test
def test_next_and_previous_follow_the_list_the_staffer_came_from(live_server, browser, factory, session):
    lc = factory.staffer(role=Role.SUPERVISOR, name="Maria Alvarez")
    made = _mail(factory, session, 4)
    other = factory.message(subject="Closed long ago", status=MessageStatus.CLOSED,
                            received_at=made[1].received_at + timedelta(minutes=5))
    session.commit()
    page = _sign_in(browser, live_server, lc, factory.PASSWORD)
    page.goto(f"{live_server}/inbox/?status=open&sort=oldest")
    page.click(f"tr[data-id='{made[1].id}'] td.subject a")
    page.wait_for_url(f"**/messages/{made[1].id}?**")
    page.keyboard.press("n")  # the closed message between them is not in this list
    page.wait_for_url(f"**/messages/{made[2].id}?**")
    assert f"/messages/{other.id}" not in page.url
    page.keyboard.press("p")
    page.wait_for_url(f"**/messages/{made[1].id}?**")
    page.click("#previous-message")
    page.wait_for_url(f"**/messages/{made[0].id}?**")
    assert page.locator("#previous-message").count() == 0  # first in the list
    page.click("#back-to-list")
    page.wait_for_url("**/inbox/?status=open&sort=oldest")


@browser_test
def test_question_mark_opens_the_keyboard_help_as_a_dialog(live_server, browser, factory, session):
    lc = factory.staffer(role=Role.CORRESPONDENT)
    [m] = _mail(factory, session, 1)
    page = _sign_in(browser, live_server, lc, factory.PASSWORD)
    for path in ("/inbox/", f"/messages/{m.id}"):
        page.goto(f"{live_server}{path}")
        assert not page.locator("#keys-help").is_visible()
        page.keyboard.press("?")
        dialog = page.get_by_role("dialog", name="Keyboard")
        assert dialog.is_visible()
        assert "undo" in dialog.inner_text().lower()
        assert page.evaluate("document.activeElement.id") == "keys-help-close"
        page.keyboard.press("j")  # keys do nothing behind an open dialog
        page.keyboard.press("Escape")
        assert not page.locator("#keys-help").is_visible()
        page.click("[data-keys-help]")  # pointer users have a button for it
        assert page.get_by_role("dialog", name="Keyboard").is_visible()
        page.click("#keys-help-close")
        assert not page.locator("#keys-help").is_visible()


@browser_test
def test_e_closes_and_undo_takes_it_back(live_server, browser, factory, session):
    lc = factory.staffer(role=Role.CORRESPONDENT, name="Priya Shah")
    made = _mail(factory, session, 3, assignee_id=lc.id, status=MessageStatus.ASSIGNED)
    page = _sign_in(browser, live_server, lc, factory.PASSWORD)
    page.wait_for_url("**/inbox/?assignee=me&sort=oldest")

    page.click(f"tr[data-id='{made[0].id}'] td.subject a")
    page.wait_for_url(f"**/messages/{made[0].id}?**")
    page.keyboard.press("e")  # close, and on to the next message in the list
    page.wait_for_url(f"**/messages/{made[1].id}?**")
    assert _fresh(session, Message, made[0].id).status == MessageStatus.CLOSED
    assert "Closed 1 message" in page.inner_text("#undo-form")
    page.click("#undo-close")
    page.wait_for_selector(".flash.ok")
    assert "Undone: 1 message" in page.inner_text("main")
    assert _fresh(session, Message, made[0].id).status == MessageStatus.ASSIGNED

    page.goto(f"{live_server}/inbox/?assignee=me&sort=oldest")
    page.keyboard.press("j")  # the second message
    page.keyboard.press("e")
    page.wait_for_selector("#undo-form")
    assert _fresh(session, Message, made[1].id).status == MessageStatus.CLOSED
    page.keyboard.press("u")
    page.wait_for_selector(".flash.ok >> text=Undone")
    assert _fresh(session, Message, made[1].id).status == MessageStatus.ASSIGNED
    actions = list(session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "message", AuditEvent.object_id == str(made[1].id))
                                   .order_by(AuditEvent.id)))
    assert actions[-2:] == ["message.close", "message.undo_close"]


@browser_test
def test_fifteen_rows_fit_at_1280_by_800_with_batch_and_stance(live_server, browser, factory, session):
    from correspondence.models import Batch

    lc = factory.staffer(role=Role.SUPERVISOR)
    batch = Batch(title="Keep public lands public")
    session.add(batch)
    session.flush()
    _mail(factory, session, 25, batch_id=batch.id, stance=Stance.OPPOSE)
    page = _sign_in(browser, live_server, lc, factory.PASSWORD, 1280, 800)
    page.goto(f"{live_server}/inbox/")
    headers = page.locator("table.messages thead th").all_inner_texts()
    assert "Batch" in headers and "Stance" in headers
    assert "Keep public lands public" in page.inner_text("tr[data-id] >> nth=0 >> td.batch")
    assert page.inner_text("tr[data-id] >> nth=0 >> td.stance") == "oppose"
    visible = page.evaluate("""() => Array.from(document.querySelectorAll('tbody tr[data-id]'))
        .filter((r) => r.getBoundingClientRect().bottom <= window.innerHeight).length""")
    print(f"inbox rows visible at 1280x800: {visible}")
    assert visible >= 15


@browser_test
def test_landing_page_suits_the_role(live_server, browser, factory, session):
    lc = factory.staffer(role=Role.CORRESPONDENT, name="Priya Shah")
    worker = factory.staffer(role=Role.CASEWORKER)
    boss = factory.staffer(role=Role.SUPERVISOR)
    mine = _mail(factory, session, 3, assignee_id=lc.id, status=MessageStatus.ASSIGNED)
    _mail(factory, session, 2)  # unassigned: not on the correspondent's first screen
    page = _sign_in(browser, live_server, lc, factory.PASSWORD)
    page.wait_for_url("**/inbox/?assignee=me&sort=oldest")
    ids = [int(i) for i in page.locator("tbody tr[data-id]").evaluate_all("rs => rs.map(r => r.dataset.id)")]
    assert ids == [m.id for m in mine]  # their own, oldest first
    assert page.get_attribute("#my-mail", "aria-current") == "true"
    page = _sign_in(browser, live_server, worker, factory.PASSWORD)
    page.wait_for_url("**/inbox/?assignee=me&sort=oldest")
    page = _sign_in(browser, live_server, boss, factory.PASSWORD)
    page.wait_for_url("**/dashboard/")


@browser_test
def test_typing_in_an_assign_select_never_sends_it(live_server, browser, factory, session):
    lc = factory.staffer(role=Role.SUPERVISOR, name="Maria Alvarez")
    factory.staffer(role=Role.CORRESPONDENT, name="Devon Carter")
    [m] = _mail(factory, session, 1)
    page = _sign_in(browser, live_server, lc, factory.PASSWORD)
    page.goto(f"{live_server}/inbox/")
    page.keyboard.press("a")
    assert page.evaluate("document.activeElement.id") == "bulk-assignee"
    page.keyboard.type("D")  # the first letter chooses Devon, and must not send
    page.wait_for_timeout(400)
    assert page.input_value("#bulk-assignee") != ""
    assert page.locator(".flash").count() == 0 and page.url.endswith("/inbox/")
    assert _fresh(session, Message, m.id).assignee_id is None
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash.ok")
    assert _fresh(session, Message, m.id).assignee.name == "Devon Carter"

    page.goto(f"{live_server}/messages/{m.id}")
    assert page.locator("#triage-assignee option:checked").inner_text() == "Devon Carter"
    page.focus("#triage-assignee")
    page.keyboard.type("—")  # typing to search the list
    page.keyboard.type("M")
    page.wait_for_timeout(400)
    assert page.url.endswith(f"/messages/{m.id}") and page.locator(".flash").count() == 0


# --- the services and routes behind them (no browser) --------------------------------------------------


def test_unassigned_shows_nobody_and_choosing_nobody_unassigns(client, auth, factory, session):
    me = auth.login("correspondent", name="Priya Shah")
    devon = factory.staffer(name="Devon Carter")
    m = factory.message()
    session.commit()
    page = client.get(f"/messages/{m.id}").get_data(as_text=True)
    assert '<option value="" selected>— nobody —</option>' in page
    token = auth.csrf(f"/messages/{m.id}")
    client.post(f"/messages/{m.id}/triage", data={"csrf_token": token, "assignee": devon.id, "topic": "",
                                                   "stance": ""})
    assert _fresh(session, Message, m.id).assignee_id == devon.id
    page = client.get(f"/messages/{m.id}").get_data(as_text=True)
    assert f'<option value="{devon.id}" selected>Devon Carter</option>' in page
    assert '<option value="" >— nobody —</option>' in page
    client.post(f"/messages/{m.id}/triage", data={"csrf_token": token, "assignee": "", "topic": "", "stance": ""})
    m = _fresh(session, Message, m.id)
    assert m.assignee_id is None and m.status == MessageStatus.NEW
    actions = list(session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "message", AuditEvent.object_id == str(m.id))
                                   .order_by(AuditEvent.id)))
    assert actions == ["message.assign", "message.unassign"]
    assert me.id  # the staffer who did it is the actor (checked in history words)
    # The bulk select offers nobody too.
    assert '<option value="none">— nobody —</option>' in client.get("/inbox/").get_data(as_text=True)
    client.post(f"/messages/{m.id}/assign", data={"csrf_token": token, "value": devon.id})
    client.post("/inbox/bulk", data={"csrf_token": token, "action": "assign", "assignee_id": "none", "ids": [m.id]})
    assert _fresh(session, Message, m.id).assignee_id is None


def test_undo_close_only_for_your_own_recent_close_with_nothing_since(session, factory):
    from correspondence.services.messages import close_message, reopen_message

    priya, devon = factory.staffer(name="Priya Shah"), factory.staffer(name="Devon Carter")
    a, b, c, d = (factory.message(assignee_id=priya.id, status=MessageStatus.ASSIGNED) for _ in range(4))
    for m in (a, b, c):
        close_message(session, m.id, actor_id=priya.id)
    close_message(session, d.id, actor_id=devon.id)
    reopen_message(session, c.id, actor_id=priya.id)  # something happened since the close
    session.flush()
    restored, problems = undo_close(session, [a.id, c.id, d.id], actor_id=priya.id)
    assert restored == 1 and a.status == MessageStatus.ASSIGNED
    assert d.status == MessageStatus.CLOSED  # Devon's close is not Priya's to undo
    assert c.status == MessageStatus.IN_PROGRESS and len(problems) == 1 and f"message {c.id}" in problems[0]
    restored, _ = undo_close(session, [b.id], actor_id=priya.id, now=datetime.now(UTC) + timedelta(minutes=11))
    assert restored == 0 and b.status == MessageStatus.CLOSED  # too late
    undone = session.scalar(select(AuditEvent).where(AuditEvent.action == "message.undo_close"))
    assert undone.object_id == str(a.id) and undone.after == {"status": "assigned"}


def test_undo_route_is_a_post_that_stays_on_our_pages(client, auth, factory, session):
    me = auth.login("correspondent")
    m = factory.message(assignee_id=me.id, status=MessageStatus.ASSIGNED)
    session.commit()
    token = auth.csrf()
    client.post("/inbox/bulk", data={"csrf_token": token, "action": "close", "ids": [m.id]})
    assert client.get("/inbox/undo").status_code == 405
    response = client.post("/inbox/undo", data={"csrf_token": token, "ids": [m.id], "next": "https://evil.example/"})
    assert response.headers["Location"] == "/inbox/"
    assert _fresh(session, Message, m.id).status == MessageStatus.ASSIGNED
    assert client.post("/inbox/undo", data={"csrf_token": token, "ids": ["x"]}).status_code == 400
