"""What staff see on a batch (issue 16): letters that nearly match, why each member is there, personal
additions that are personal and of a kind, titles that say which campaign, and the template's stance."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from batching.batches import (
    add_proposed,
    join_message,
    recluster,
    reject_proposed,
    set_batch_stance,
    split_members,
    undo,
    undoable_events,
)
from batching.templates import (
    build_template,
    classify_addition,
    personal_additions,
    template_stance,
    title_phrases,
)
from correspondence.errors import ValidationFailed
from correspondence.models import AuditEvent, Batch, BatchProposal, Message, ProposalStatus, Stance, utcnow
from tests.test_batches import CLEAN_WATER, POSTAL, _letter, _pool

# Half the Clean Water template, then a long letter of the writer's own: too little of the template to join
# on its own (about half of its wording), too much to be a stranger.
NEAR = ("Dear Representative,\n\nI am writing to urge you to support the Clean Water Protection Act. Our rivers and "
        "lakes supply drinking water to millions of families. I have lived beside the Olentangy for thirty years "
        "and watched the factories upstream grow every decade. Last spring the city told us to boil our tap water "
        "for nine days, and my neighbour's children were sick for most of it. When will the county test the wells "
        "on Riverside Drive again?\n\nMaria Gomez\n41 Riverside Drive\nColumbus, OH 43215\n(614) 555-0142")


def _water_batch(session, factory):
    made = _pool(factory)
    recluster(session)
    return made, session.get(Batch, made["water"][0].batch_id)


def test_a_near_miss_is_proposed_at_intake_added_with_undo_and_a_rejection_is_remembered(session, factory):
    _made, batch = _water_batch(session, factory)
    person = factory.staffer(role="correspondent")
    near = factory.message(body_text=NEAR, processed_at=utcnow())
    assert join_message(session, near) is None and near.batch_id is None
    proposal = session.get(BatchProposal, (batch.id, near.id))
    assert proposal.status == ProposalStatus.OPEN and 0.4 <= proposal.score < 0.7 and proposal.stage == "sentences"

    size = batch.member_count
    add_proposed(session, batch.id, near.id, actor_id=person.id)
    assert near.batch_id == batch.id and near.batch_pinned and batch.member_count == size + 1
    assert proposal.status == ProposalStatus.ADDED and proposal.decided_by_id == person.id
    assert near.batch_additions and "Maria Gomez" not in " ".join(near.batch_additions)
    event = undoable_events(session, batch.id)[0]
    assert event.action == "batch.add_member" and event.actor_id == person.id
    undo(session, event.id, actor_id=person.id)
    assert near.batch_id is None and not near.batch_pinned and batch.member_count == size
    assert proposal.status == ProposalStatus.OPEN  # listed again

    reject_proposed(session, batch.id, near.id, actor_id=person.id)
    assert proposal.status == ProposalStatus.REJECTED
    assert session.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc())) == "batch.reject_member"
    with pytest.raises(ValidationFailed, match="already rejected"):
        add_proposed(session, batch.id, near.id, actor_id=person.id)
    # Neither the join (a retry of the intake stage) nor clustering proposes or places it again.
    join_message(session, near)
    recluster(session)
    assert near.batch_id is None
    assert session.scalars(select(BatchProposal).where(BatchProposal.message_id == near.id)).all() == [proposal]
    undo(session, undoable_events(session, batch.id)[0].id, actor_id=person.id)
    assert proposal.status == ProposalStatus.OPEN


def test_a_rejected_letter_is_not_joined_even_when_it_matches(session, factory):
    _made, batch = _water_batch(session, factory)
    person = factory.staffer(role="correspondent")
    near = factory.message(body_text=NEAR, processed_at=utcnow())
    join_message(session, near)
    reject_proposed(session, batch.id, near.id, actor_id=person.id)
    near.body_text = _letter(CLEAN_WATER, __import__("random").Random(1))  # now a plain copy
    assert join_message(session, near) is None and near.batch_id is None


def test_clustering_proposes_pool_letters_that_nearly_match_a_new_batch(session, factory):
    near = factory.message(body_text=NEAR, processed_at=utcnow())
    made = _pool(factory)
    run = recluster(session)
    batch_id = made["water"][0].batch_id
    assert run.proposed == 1 and near.batch_id is None
    assert session.get(BatchProposal, (batch_id, near.id)).status == ProposalStatus.OPEN
    assert all(session.get(BatchProposal, (batch_id, m.id)) is None for m in made["organic"])


def test_the_batch_page_lists_proposals_with_evidence_and_decides_them(client, auth, session, factory):
    _made, batch = _water_batch(session, factory)
    near = factory.message(body_text=NEAR.replace("Olentangy", "<b>Olentangy</b>"), processed_at=utcnow(),
                           from_name="Maria Gomez")
    join_message(session, near)
    auth.login("correspondent")
    page = client.get(f"/batches/{batch.id}").get_data(as_text=True)
    assert "Possibly part of this campaign (1)" in page
    assert f'<li data-id="{near.id}">' in page and "&lt;b&gt;Olentangy" in page and "<b>Olentangy" not in page
    assert ('<mark class="shared">I am writing to urge you to support the Clean Water Protection Act.</mark>'
            in page)
    token = auth.csrf(f"/batches/{batch.id}")
    done = client.post(f"/batches/{batch.id}/proposals/{near.id}/reject", data={"csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "will not be proposed again" in done and "Possibly part of this campaign" not in done
    assert "Undo &#39;not part of it&#39; for the letter from Maria Gomez" in done
    assert client.post(f"/batches/{batch.id}/proposals/{near.id}/add", data={}).status_code == 400  # no CSRF
    again = client.post(f"/batches/{batch.id}/proposals/{near.id}/add", data={"csrf_token": token},
                        follow_redirects=True).get_data(as_text=True)
    assert "already rejected" in again
    assert client.post(f"/batches/{batch.id}/proposals/999999/add", data={"csrf_token": token}).status_code == 404


def test_a_caseworker_cannot_decide_proposals(client, auth, session, factory):
    _made, batch = _water_batch(session, factory)
    near = factory.message(body_text=NEAR, processed_at=utcnow())
    join_message(session, near)
    auth.login("caseworker")
    token = auth.csrf(f"/batches/{batch.id}")
    assert client.post(f"/batches/{batch.id}/proposals/{near.id}/add", data={"csrf_token": token}).status_code == 403
    session.refresh(near)
    assert near.batch_id is None


def test_signatures_addresses_phones_and_courtesies_are_not_additions():
    template = build_template([CLEAN_WATER] * 3)
    signed_off = (f"Hi there!\n\n{CLEAN_WATER} Thank you for your time and service!\n\nAna Ruiz\n1200 Oak Street Apt 4"
                  "\nColumbus, OH 43215\n(614) 555-0100\nana.ruiz@example.org\nSent from my iPhone")
    assert personal_additions(signed_off, template) == []
    inline = f"{CLEAN_WATER} Best regards, Ana Ruiz"
    assert personal_additions(inline, template) == []
    story = (f"{CLEAN_WATER}\nOur well tested positive for nitrates twice this year. Why has the EPA not inspected "
             "the plant on Route 23?\nPlease hold a town hall in Delaware County.\n\nTom Lee\n55 Elm St\nMarion, OH")
    added = personal_additions(story, template)
    assert added == ["Our well tested positive for nitrates twice this year.",
                     "Why has the EPA not inspected the plant on Route 23?",
                     "Please hold a town hall in Delaware County."]
    assert [classify_addition(a) for a in added] == ["story", "question", "request"]
    assert classify_addition("The river ran brown all of July.") == "comment"


def test_the_to_read_count_and_the_question_filter(client, auth, session, factory):
    made = _pool(factory, n_water=6, n_postal=0, organic=0)
    asks = factory.message(body_text=f"{CLEAN_WATER} Why did the county stop testing the creek?\n\nKim Park\n"
                                     "9 Main St\nDelaware, OH 43015", processed_at=utcnow(), subject="Clean water")
    signs = factory.message(body_text=f"{CLEAN_WATER}\n\nBo Ng\n77 High Street\nColumbus, OH 43215\n614-555-0199",
                            processed_at=utcnow(), subject="Clean water")
    recluster(session)
    batch = session.get(Batch, made["water"][0].batch_id)
    assert asks.batch_id == signs.batch_id == batch.id
    assert signs.batch_additions is None and asks.batch_addition_kinds == "question"
    with_story = [m for m in made["water"] if m.batch_additions]
    auth.login("correspondent")
    page = client.get(f"/batches/{batch.id}").get_data(as_text=True)
    assert f'<span id="to-read">{len(with_story) + 1} of {batch.member_count}</span>' in page
    assert "Letters that ask a question (1)" in page
    questions = client.get(f"/batches/{batch.id}?kind=question").get_data(as_text=True)
    assert re.findall(r'<tr data-id="(\d+)"', questions) == [str(asks.id)]
    assert client.get(f"/batches/{batch.id}?kind=everything").status_code == 400


def test_titles_come_from_the_template_and_are_unique_among_open_batches(session, factory):
    # Both campaigns arrive with a generic subject, and a second campaign copies the first one's subject.
    for _ in range(4):
        factory.message(body_text=CLEAN_WATER, subject="Question", processed_at=utcnow())
        factory.message(body_text=POSTAL, subject="QUESTION", processed_at=utcnow())
    recluster(session)
    titles = [b.title for b in session.scalars(select(Batch).order_by(Batch.id))]
    assert len(titles) == 2 and "Question" not in " ".join(titles)
    assert titles == ["Support the Clean Water Protection Act", "Keep the post office public"]



def test_a_split_never_takes_the_title_of_the_batch_it_came_from(session, factory):
    made, batch = _water_batch(session, factory)
    person = factory.staffer(role="supervisor")
    assert batch.title == "Clean water"  # the campaign's own specific subject
    new = split_members(session, batch.id, [m.id for m in made["water"][:3]], actor_id=person.id)
    assert new.title == "Support the Clean Water Protection Act"
    again = split_members(session, batch.id, [m.id for m in made["water"][3:6]], actor_id=person.id)
    titles = [b.title for b in session.scalars(select(Batch).where(Batch.status == "open"))]
    assert again.title not in (batch.title, new.title) and len({t.casefold() for t in titles}) == len(titles)


def test_title_phrases_prefer_what_is_distinctive():
    phrases = title_phrases(CLEAN_WATER, [POSTAL])
    assert phrases[0] == "Support the Clean Water Protection Act"
    assert title_phrases(POSTAL, [CLEAN_WATER])[:2] == ["Keep the post office public",
                                                       "Oppose any plan to privatize the Postal Service"]


def test_stance_is_suggested_from_the_template_until_a_person_confirms(client, auth, session, factory):
    assert template_stance(POSTAL) == "oppose" and template_stance(CLEAN_WATER) == "support"
    assert template_stance("Please do not support the pipeline bill. It harms our farms.") == "oppose"
    assert template_stance("The library opens at nine on Saturdays now.") is None
    made = _pool(factory, n_water=0, n_postal=6, organic=0)
    recluster(session)
    batch = session.get(Batch, made["postal"][0].batch_id)
    assert batch.stance is None and batch.suggested_stance == Stance.OPPOSE
    assert {m.stance for m in made["postal"]} == {None}  # a suggestion is not coding
    auth.login("correspondent")
    page = client.get(f"/batches/{batch.id}").get_data(as_text=True)
    assert "stance: oppose (suggested, not confirmed)" in page and "Confirm stance: oppose" in page
    token = auth.csrf(f"/batches/{batch.id}")
    client.post(f"/batches/{batch.id}/stance", data={"csrf_token": token, "stance": "oppose"})
    session.expire_all()
    assert session.get(Batch, batch.id).stance == Stance.OPPOSE
    assert {m.stance for m in made["postal"]} == {Stance.OPPOSE}
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.object_type == "batch")
                          .order_by(AuditEvent.id.desc())) == "batch.stance"
    assert "Confirm stance" not in client.get(f"/batches/{batch.id}").get_data(as_text=True)
    # A batch whose members carry a stance is not given a suggestion over it.
    set_batch_stance(session, batch.id, Stance.SUPPORT, actor_id=None)  # type: ignore[arg-type]
    assert session.get(Batch, batch.id).stance == Stance.SUPPORT


def test_recluster_reads_apart_and_leaves_a_letter_placed_meanwhile_where_it_is(session, factory, database):
    """The job reads and clusters the pool in a session that takes no write lock, then writes; a letter the
    online join placed in between (here: put in another batch by hand) is not moved by the stale read."""
    made = _pool(factory)
    elsewhere = Batch(title="Placed meanwhile", template_text="x", member_count=1)
    session.add(elsewhere)
    session.commit()
    read = database.sessions()
    try:
        assert read.scalar(select(func.count(Message.id))) > 0  # the read snapshot starts here
        taken = made["water"][0]
        with database.unit_of_work() as other:  # another writer, after the snapshot
            other.get(Message, taken.id).batch_id = elsewhere.id
        commits: list[int] = []
        run = recluster(session, read=read, checkpoint=lambda: commits.append(1))
        session.commit()
    finally:
        read.close()
    session.expire_all()
    assert session.get(Message, taken.id).batch_id == elsewhere.id
    water = {m.batch_id for m in made["water"][1:]}
    assert len(water) == 1 and None not in water and water != {elsewhere.id}
    assert run.new_batches >= 2 and not read.in_transaction()
