"""Fresh eyes on the batch page as a person sees it: the two decisions on a proposed letter sit level, and the
"Answer these … messages" button stays one button when its label wraps on a phone."""

from __future__ import annotations

import pytest

from batching.batches import join_message
from correspondence.models import Role, utcnow
from tests.site_pages import sign_in
from tests.test_batch_review import NEAR, _water_batch

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}


def test_proposal_buttons_are_level_and_the_answer_button_wraps_as_one_box(live_server, browser, session,
                                                                              factory):
    _made, batch = _water_batch(session, factory)
    near = factory.message(body_text=NEAR, processed_at=utcnow(), from_name="Maria Gomez")
    join_message(session, near)
    supervisor = factory.staffer(role=Role.SUPERVISOR)
    session.commit()
    for viewport in (LAPTOP, PHONE):
        context = browser.new_context(viewport=viewport)
        page = sign_in(context, live_server, supervisor.email, factory.PASSWORD)
        page.goto(f"{live_server}/batches/{batch.id}")
        add = page.locator(f'li[data-id="{near.id}"] .proposal-actions button', has_text="Add to this batch")
        reject = page.locator(f'li[data-id="{near.id}"] .proposal-actions button', has_text="Not part of it")
        top_add, top_reject = add.bounding_box()["y"], reject.bounding_box()["y"]
        assert abs(top_add - top_reject) <= 1, f"{viewport['width']} px: Add at {top_add}, the other at {top_reject}"
        answer = page.locator("#answer-all")
        # One box: an inline link that wraps draws two ragged boxes; a block-level button draws one.
        assert answer.evaluate("a => a.getClientRects().length") == 1
        assert answer.evaluate("a => a.getBoundingClientRect().right") <= viewport["width"]
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        context.close()


def test_a_follow_up_counts_again_for_the_letter_chosen_and_a_refusal_comes_back_to_that_letter(session, factory,
                                                                                                 settings):
    """The dry run's numbers and the mass-mail verdict are for one letter: choosing another one reloads them for it
    (data-recount), and a refused send shows the numbers of the letter that was refused, not of the first one."""
    import dataclasses

    from sqlalchemy import select

    from constituents import segments
    from correspondence.models import ApplyRun
    from tests.conftest import Auth
    from tests.test_franking import OTHER, _letter
    from web import create_app

    app = create_app(dataclasses.replace(settings, mass_mail_threshold=3))
    try:
        client = app.test_client()
        auth = Auth(client, factory, session)
        first, author = _letter(session, factory, "Affordable housing", OTHER)
        water, _ = _letter(session, factory, "Water bill passed")
        for i in range(4):
            factory.constituent(email=f"eyes{i}@example.org", zip5="99807")
        segment = segments.save_segment(session, "ZIP 99807", segments.parse_filter({"zips": "99807"}),
                                        actor_id=author.id)
        session.commit()
        auth.login("supervisor")
        path = f"/constituents/segments/{segment.id}/follow-up"
        page = client.get(path).get_data(as_text=True)
        assert 'data-recount="1"' in page and 'id="franking-needs-approval"' in page
        assert ">Send: 4 letters</button>" in page  # not "Send to: 4 letters"
        token = auth.csrf(path)
        refused = client.post(path, data={"csrf_token": token, "version_id": str(water.id),
                                          "planned_version": str(water.id)})
        assert refused.status_code == 303
        assert refused.headers["Location"].endswith(f"{path}?version_id={water.id}")
        back = client.get(refused.headers["Location"]).get_data(as_text=True)
        assert "Not sent:" in back and "Water bill passed" in back
        assert f'name="planned_version" value="{water.id}"' in back
        garbled = client.post(path, data={"csrf_token": token, "version_id": "x1"})
        assert garbled.headers["Location"].endswith(path)  # nothing to come back to
        session.rollback()
        assert session.scalar(select(ApplyRun.id)) is None
    finally:
        app.extensions["mailroom.db"].dispose()
        app.extensions["mailroom.db_write"].dispose()


def test_a_constituents_remove_and_send_again_links_can_be_seen(live_server, browser, session, factory):
    """They are button.link, whose colour is the header's white: on the white contact card they were invisible."""
    from correspondence.models import SuppressionReason
    from outbound.suppression import suppress

    person = factory.constituent(email="gone@example.org")
    suppress(session, "gone@example.org", SuppressionReason.UNSUBSCRIBED, detail="one-click unsubscribe",
             actor_id=None)
    supervisor = factory.staffer(role=Role.SUPERVISOR)
    session.commit()
    context = browser.new_context(viewport=PHONE)
    page = sign_in(context, live_server, supervisor.email, factory.PASSWORD)
    page.goto(f"{live_server}/constituents/{person.id}")
    card = page.locator("#contacts").evaluate(
        "e => { let n = e; while (n && getComputedStyle(n).backgroundColor === 'rgba(0, 0, 0, 0)') n = n.parentElement;"
        " return n ? getComputedStyle(n).backgroundColor : 'rgb(255, 255, 255)'; }")
    for button in (page.locator("#restore-1"), page.locator("#contacts button[aria-label^='Remove']").first):
        assert button.is_visible() and button.inner_text().strip()
        assert button.evaluate("b => getComputedStyle(b).color") != card
    assert page.locator("#restore-1").inner_text() == "Send to this address again"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()


def test_a_decision_on_a_proposed_letter_names_the_sender_as_the_list_does(client, auth, session, factory):
    """The list shows "Maria Gomez"; the flash said "Message 7 added", which nobody on the page could match."""
    _made, batch = _water_batch(session, factory)
    near = factory.message(body_text=NEAR, processed_at=utcnow(), from_name="Maria Gomez")
    other = factory.message(body_text=NEAR.replace("Olentangy", "Scioto"), processed_at=utcnow(),
                            from_name="Ada Byrne")
    join_message(session, near)
    join_message(session, other)
    session.commit()
    auth.login("correspondent")
    token = auth.csrf(f"/batches/{batch.id}")
    added = client.post(f"/batches/{batch.id}/proposals/{near.id}/add", data={"csrf_token": token},
                        follow_redirects=True).get_data(as_text=True)
    assert f"The letter from Maria Gomez (message {near.id}) added to the batch." in added
    rejected = client.post(f"/batches/{batch.id}/proposals/{other.id}/reject", data={"csrf_token": token},
                           follow_redirects=True).get_data(as_text=True)
    assert f"The letter from Ada Byrne (message {other.id}) is not part of this batch" in rejected
