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
