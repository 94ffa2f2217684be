""""Possibly part of this campaign": only letters in the uncertain band that hold the campaign's own words,
at most PROPOSE_CAP per batch and the closest first, each letter on the batch it is closest to (issue 16)."""

from __future__ import annotations

import random
import re

from sqlalchemy import func, select

from batching.batches import PROPOSE_CAP, join_message, propose, recluster
from batching.queries import proposals
from correspondence.models import Batch, BatchProposal, ProposalStatus, utcnow
from tests.test_batch_review import NEAR
from tests.test_batches import CLEAN_WATER, _pool

# A web form's stock opening and closing, which the demo office's organic letters share with two campaigns.
OPENING = "I am writing about something that has been on my mind."
CLOSING = "I would appreciate a response from your office on this."
CAMPAIGNS = ["Please keep the school lunch program strong; many kids in our district depend on it every day. "
             "Cutting the free breakfast would leave thousands of children hungry before their first class.",
             "Please fund more school counselors so that every student can see one within a week of asking. "
             "The ratio in our high schools is now one counselor for five hundred students.",
             "Please vote yes on the rural broadband bill this session. Farms and small shops in the county "
             "still cannot send an invoice without driving to the library."]
LUNCH = CAMPAIGNS[0].split(". ")[0] + "."
OWN = ["The bridge on Route 9 has been closed since the flood in April and the detour adds forty minutes.",
       "My mother waited six months for her disability hearing and still has no date for a decision.",
       "Our town lost its only pharmacy last year and the nearest one is now across the county line.",
       "The veterans clinic stopped taking walk-ins and my husband cannot get an appointment before fall."]


def _form(body: str, name: str) -> str:
    return f"Dear Representative,\n\n{OPENING} {body} {CLOSING}\n\nSincerely,\n{name}"


def test_sharing_a_stock_opening_and_closing_is_no_reason_to_propose(session, factory):
    for i in range(5):
        for campaign in CAMPAIGNS:
            factory.message(body_text=_form(campaign, f"Ana {i}"), processed_at=utcnow())
    organic = [factory.message(body_text=_form(text, "Kim Park"), processed_at=utcnow()) for text in OWN]
    run = recluster(session)
    assert run.new_batches == 3 and all(m.batch_id is None for m in organic)
    assert session.scalar(select(func.count()).select_from(BatchProposal)) == 0
    # ... while a letter holding the campaign's own sentence, reworded around it, is proposed.
    near = factory.message(body_text=f"{OPENING} {LUNCH} My son eats there and it is his only hot meal. The "
                                     "cafeteria staff know every child by name and notice when one goes hungry. "
                                     "Last winter they started a backpack program for weekends too.",
                           processed_at=utcnow())
    join_message(session, near)
    assert near.batch_id is None
    listed = session.scalars(select(BatchProposal).where(BatchProposal.message_id == near.id)).all()
    assert len(listed) == 1 and listed[0].stage in ("sentences", "semantic")


def test_at_most_the_cap_are_listed_and_the_closest_first(client, auth, session, factory):
    made = _pool(factory, n_water=6, n_postal=0, organic=0)
    recluster(session)
    batch = session.get(Batch, made["water"][0].batch_id)
    rng = random.Random(3)
    sentences = [s.rstrip(".") + "." for s in CLEAN_WATER.split(". ")]
    # Two of the template's four sentences each (too little to join): 22, 24 or 25 of its 47 words.
    choices = [(1, 2), (0, 1), (0, 3)]
    letters = []
    for i in range(PROPOSE_CAP + 7):
        a, b = choices[i % 3]
        own = " ".join(rng.sample(OWN, 3))
        letter = factory.message(body_text=f"{sentences[a]} {sentences[b]} {own} Letter {i}.", processed_at=utcnow(),
                                 from_name=f"Writer {i}")
        join_message(session, letter)
        assert letter.batch_id is None
        letters.append(letter)
    total, listed = proposals(session, batch.id)
    assert total == PROPOSE_CAP and len(listed) == PROPOSE_CAP
    scores = [p.score for p, _m in listed]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 3
    listed_ids = {m.id for _p, m in listed}
    assert {m.id for m in letters[2::3]} | {m.id for m in letters[1::3]} <= listed_ids  # the closest kept
    assert session.scalar(select(func.count()).select_from(BatchProposal)) == PROPOSE_CAP  # the farthest dropped
    auth.login("correspondent")
    page = client.get(f"/batches/{batch.id}").get_data(as_text=True)
    assert f"Possibly part of this campaign ({PROPOSE_CAP})" in page
    assert len(re.findall(r'<li data-id="\d+">', page)) == PROPOSE_CAP


def test_a_letter_proposed_for_two_batches_is_listed_on_the_closer_one(session, factory):
    made = _pool(factory, n_water=6, n_postal=0, organic=0)
    recluster(session)
    batch = session.get(Batch, made["water"][0].batch_id)
    split_off = Batch(title="Clean water, second copy", template_text=batch.template_text, status=batch.status)
    session.add(split_off)
    session.flush()
    near = factory.message(body_text=NEAR, processed_at=utcnow())
    made_one = propose(session, near, [(batch.id, 0.45)])
    assert made_one is not None
    session.add(BatchProposal(batch_id=split_off.id, message_id=near.id, score=made_one.score + 0.05,
                              stage="sentences", status=ProposalStatus.OPEN))
    session.flush()
    assert proposals(session, batch.id) == (0, [])
    assert [m.id for _p, m in proposals(session, split_off.id)[1]] == [near.id]
