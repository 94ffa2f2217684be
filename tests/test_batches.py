"""Batches in the database: clustering the pool, joining new mail, and staff decisions with undo."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from batching.batches import (
    assign_batch,
    find_batch,
    join_message,
    merge_batches,
    recluster,
    remove_member,
    set_batch_topic,
    set_not_campaign,
    split_members,
    undo,
    undoable_events,
)
from correspondence.errors import ValidationFailed
from correspondence.models import AuditEvent, Batch, BatchStatus, Channel, Message, MessageStatus, Stance, Topic, utcnow
from intake.pipeline import process_message
from intake.receive import Incoming, receive

CLEAN_WATER = ("I am writing to urge you to support the Clean Water Protection Act. Our rivers and lakes supply "
               "drinking water to millions of families. Weakening the rules on industrial discharge would put "
               "children at risk. Please stand with the communities downstream and vote yes on this bill.")
POSTAL = ("Please oppose any plan to privatize the Postal Service. Rural towns depend on daily mail delivery for "
          "medicine and pensions. The service is funded by postage, not taxes. Keep the post office public and "
          "protect the jobs of the carriers who serve every address.")
STORIES = ["My daughter got sick after swimming in the creek behind our house last summer.",
           "I fish on the Scioto every weekend and the water has never looked this bad.",
           "Our well tested positive for nitrates twice this year."]


def _letter(template: str, rng: random.Random, story: str | None = None) -> str:
    greeting = rng.choice(["Dear Representative,", "Hello,", "Dear Rep. Doe,"])
    body = template if story is None else f"{template} {story}"
    return f"{greeting}\n\n{body}\n\nSincerely,\n{rng.choice(['Ana Ruiz', 'Tom Lee', 'Kim Park'])}"


def _pool(factory, n_water=12, n_postal=8, organic=4):
    rng = random.Random(5)
    made: dict[str, list[Message]] = {"water": [], "postal": [], "organic": []}
    for i in range(n_water):
        story = STORIES[i % 3] if i % 4 == 0 else None
        made["water"].append(factory.message(body_text=_letter(CLEAN_WATER, rng, story), processed_at=utcnow(),
                                             subject="Clean water", organization="River Keepers",
                                             delivery_agent="Advocacy Co", channel=Channel.CWC,
                                             stance=Stance.SUPPORT if i % 2 else None))
    for _ in range(n_postal):
        made["postal"].append(factory.message(body_text=_letter(POSTAL, rng) + "\n\nSent via Postal Friends Action",
                                              processed_at=utcnow(), subject="Save the post office"))
    own_words = ["The pothole on Elm street has been there for months and nobody fixes it.",
                 "My passport application has been pending since March and I travel for work in June.",
                 "Thank you for visiting our school last week, the students loved your talk about civics.",
                 "Why did the VA clinic in Marion cut its weekend hours without asking veterans first?"]
    for text in own_words[:organic]:
        made["organic"].append(factory.message(body_text=text, processed_at=utcnow()))
    return made


def test_the_scheduled_window_leaves_letters_received_before_it_alone(session, factory):
    """The 15-minute job clusters the last MAILROOM_RECLUSTER_DAYS days; older copies stay in the pool."""
    from datetime import timedelta

    made = _pool(factory)
    long_ago = utcnow() - timedelta(days=200)
    for m in made["postal"]:
        m.received_at = long_ago
    session.flush()
    run = recluster(session, since=utcnow() - timedelta(days=90))
    assert run.pool == 16 and run.new_batches == 1 and run.batched == 12
    assert all(m.batch_id is None for m in made["postal"])
    assert recluster(session).new_batches == 1  # without a window (`mailroom batch run`) they are grouped
    assert len({m.batch_id for m in made["postal"]}) == 1 and made["postal"][0].batch_id is not None


def test_recluster_makes_batches_with_template_additions_source_and_stance(session, factory):
    made = _pool(factory)
    run = recluster(session)
    assert run.pool == 24 and run.new_batches == 2 and run.batched == 20
    water = session.get(Batch, made["water"][0].batch_id)
    assert water.member_count == 12 and water.title == "Clean water"
    assert "Clean Water Protection Act" in water.template_text and "Dear" not in water.template_text
    assert water.source == "River Keepers (via Advocacy Co)" and water.source_kind == "cwc"
    assert water.stance == Stance.SUPPORT  # half said so (CWC ProOrCon), nobody said otherwise
    assert {m.stance for m in made["water"]} == {Stance.SUPPORT}  # the others inherit it
    with_story = made["water"][0]
    assert with_story.batch_additions == [STORIES[0]] and with_story.batch_similarity == 1.0
    assert made["water"][1].batch_additions is None
    postal = session.get(Batch, made["postal"][0].batch_id)
    assert postal.source == "Postal Friends Action" and postal.source_kind == "footer"
    assert all(m.batch_id is None for m in made["organic"])
    assert recluster(session).new_batches == 0  # nothing left to place: idempotent


def test_new_copy_joins_its_batch_at_intake_and_inherits_topic_stance_assignee(session, factory):
    made = _pool(factory)
    recluster(session)
    batch = session.get(Batch, made["postal"][0].batch_id)
    topic = session.scalar(select(Topic).where(Topic.name == "Government Operations and Politics"))
    staffer = factory.staffer()
    set_batch_topic(session, batch.id, topic.id, actor_id=staffer.id)
    assign_batch(session, batch.id, staffer.id, actor_id=staffer.id)
    item = Incoming(channel=Channel.WEBFORM, key="web:new-copy", source="test", subject="Post office",
                    body_text="Hi,\n\n" + POSTAL + " I deliver mail in Hocking County myself.\n\nThanks,\nJo",
                    from_address="jo@example.org", facts={"constituent": {"first_name": "Jo", "last_name": "Bell",
                                                                         "email": "jo@example.org"}})
    message = process_message(session, receive(session, item, max_bytes=10**6).message_id)
    assert message.batch_id == batch.id and message.topic_id == topic.id
    assert message.assignee_id == staffer.id and message.status == MessageStatus.ASSIGNED
    assert message.batch_additions == ["I deliver mail in Hocking County myself."]
    session.refresh(batch)
    assert batch.member_count == 9
    assert find_batch(session, "A completely different letter about the price of eggs at the market today.") is None


def test_the_join_assigns_through_the_audited_transition(session, factory):
    made = _pool(factory)
    recluster(session)
    batch = session.get(Batch, made["postal"][0].batch_id)
    owner, gone = factory.staffer(), factory.staffer()
    assign_batch(session, batch.id, owner.id, actor_id=owner.id)
    copy = factory.message(body_text="Hello,\n\n" + POSTAL + "\n\nThanks,\nAl")
    assert join_message(session, copy) == batch
    assert (copy.assignee_id, copy.status) == (owner.id, MessageStatus.ASSIGNED)
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.object_type == "message",
                                                           AuditEvent.object_id == str(copy.id))))
    assert [(e.action, e.actor_id, e.before, e.after) for e in events] == [
        ("message.assign", None, {"status": "new", "assignee_id": None},
         {"status": "assigned", "assignee_id": owner.id})]
    # A copy that is not new keeps its status and gets no assignee (the join only takes new mail).
    held = factory.message(body_text="Dear Rep. Doe,\n\n" + POSTAL, status=MessageStatus.QUARANTINED)
    assert join_message(session, held) == batch and held.assignee_id is None
    # An assignee since turned off is not given new mail.
    assign_batch(session, batch.id, gone.id, actor_id=owner.id)
    gone.active = False
    late = factory.message(body_text="Hi,\n\n" + POSTAL)
    assert join_message(session, late) == batch
    assert (late.assignee_id, late.status) == (None, MessageStatus.NEW)


def test_merge_split_remove_and_undo_each(session, factory):
    made = _pool(factory)
    recluster(session)
    admin = factory.staffer(role="supervisor")
    water_id, postal_id = made["water"][0].batch_id, made["postal"][0].batch_id

    merge_batches(session, water_id, postal_id, actor_id=admin.id)
    assert session.get(Batch, postal_id).status == BatchStatus.MERGED
    assert session.get(Batch, water_id).member_count == 20
    undo(session, undoable_events(session, water_id)[0].id, actor_id=admin.id)
    session.expire_all()
    assert session.get(Batch, postal_id).status == BatchStatus.OPEN
    assert session.get(Batch, postal_id).member_count == 8 and session.get(Batch, water_id).member_count == 12

    chosen = [m.id for m in made["water"][:3]]
    new = split_members(session, water_id, chosen, actor_id=admin.id)
    assert new.member_count == 3 and session.get(Batch, water_id).member_count == 9
    assert all(session.get(Message, i).batch_pinned for i in chosen)
    undo(session, undoable_events(session, water_id)[0].id, actor_id=admin.id)
    session.expire_all()
    assert session.get(Batch, water_id).member_count == 12 and session.get(Batch, new.id).status == BatchStatus.MERGED

    removed = made["water"][5]
    remove_member(session, water_id, removed.id, actor_id=admin.id)
    assert recluster(session).batched == 0 and removed.batch_id is None  # a person's decision stands
    event = undoable_events(session, water_id)[0]
    undo(session, event.id, actor_id=admin.id)
    assert removed.batch_id == water_id
    with pytest.raises(ValidationFailed, match="already been undone"):
        undo(session, event.id, actor_id=admin.id)
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "batch.undo_event")) is not None


def test_not_a_campaign_and_assign_undo(session, factory):
    made = _pool(factory)
    recluster(session)
    supervisor, worker = factory.staffer(role="supervisor"), factory.staffer()
    batch_id = made["postal"][0].batch_id
    set_not_campaign(session, batch_id, True, actor_id=supervisor.id)
    assert session.get(Batch, batch_id).status == BatchStatus.NOT_CAMPAIGN
    # Later copies still recognise the template, and stay out of the campaign list with it.
    found = find_batch(session, POSTAL)
    assert found is not None and found[0].id == batch_id
    set_not_campaign(session, batch_id, False, actor_id=supervisor.id)

    assign_batch(session, batch_id, worker.id, actor_id=supervisor.id)
    assert {m.assignee_id for m in made["postal"]} == {worker.id}
    undo(session, undoable_events(session, batch_id)[0].id, actor_id=supervisor.id)
    assert {m.assignee_id for m in made["postal"]} == {None}
    assert {m.status for m in made["postal"]} == {MessageStatus.NEW}


def test_batch_page_escapes_letters_and_answers_bad_input(client, auth, session, factory):
    made = _pool(factory)
    hostile = factory.message(body_text=CLEAN_WATER + " <script>alert('x')</script> is what I think of this bill.",
                              processed_at=utcnow())
    recluster(session)
    auth.login("correspondent")
    batch_id = made["water"][0].batch_id
    assert hostile.batch_id == batch_id
    session.commit()
    page = client.get(f"/batches/{batch_id}?added=1").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    token = auth.csrf(f"/batches/{batch_id}")
    bad = client.post(f"/batches/{batch_id}/merge", data={"csrf_token": token, "other_id": "x"},
                      follow_redirects=True)
    assert "is not a number" in bad.get_data(as_text=True)
    assert client.post(f"/batches/{batch_id}/explode", data={"csrf_token": token}).status_code == 404
    assert client.get("/batches/?show=everything").status_code == 400
    assert client.get("/batches/999999").status_code == 404
