"""Choosing the letter (issue 13): ranking by fit, the suggestion that learns, the preview, the eval command."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from correspondence.errors import ValidationFailed
from correspondence.models import (
    AuditEvent,
    Batch,
    Channel,
    LetterVersion,
    MessageStatus,
    Response,
    ResponseState,
    Role,
    Stance,
    Topic,
)
from drafting import letters
from drafting.apply import budget_of, delivery_for, office_of
from drafting.choose import (
    check_choice,
    evaluate,
    preview,
    rank_letters,
    suggest_for_message,
    suggest_for_messages,
)
from drafting.headers import header_text
from drafting.render import context, render
from tests.conftest import cli_env
from workers.cli import cli

LANDS, HEALTH = "Public Lands and Natural Resources", "Health"


def _topic(session, name: str) -> int:
    return session.scalar(select(Topic.id).where(Topic.name == name))


class Office:
    """A writer, a supervisor and a helper that makes approved letters the way the office does."""

    def __init__(self, session, factory) -> None:
        self.session, self.factory = session, factory
        self.writer = factory.staffer(Role.CORRESPONDENT)
        self.supervisor = factory.staffer(Role.SUPERVISOR)

    def letter(self, title: str, topic: str | None, stance: Stance | None, *, approve: bool = True,
               body: str = "{{ constituent.salutation }}\n\nThank you for writing about {{ message.subject }}."
                           "\n\n{{ office.signature }}") -> LetterVersion:
        version = letters.create_letter(self.session, title=title, body=body,
                                        topic_id=_topic(self.session, topic) if topic else None, stance=stance,
                                        actor_id=self.writer.id)
        letters.submit(self.session, version.id, actor_id=self.writer.id)
        if approve:
            letters.approve(self.session, version.id, actor_id=self.supervisor.id)
        return version

    def answered(self, message, version: LetterVersion) -> Response:
        """What a run leaves behind: the message answered with the version, sent."""
        response = Response(message_id=message.id, constituent_id=message.constituent_id, version_id=version.id,
                            method=delivery_for(message), to_address=message.from_address, subject="Re",
                            body_text="…", state=ResponseState.SENT, email_message_id=f"<t.{message.id}@x>")
        message.status = MessageStatus.RESPONDED
        self.session.add(response)
        self.session.flush()
        return response


@pytest.fixture
def office(session, factory):
    return Office(session, factory)


def _campaign(session, factory, office, n: int = 5):
    """A public-lands batch (writers oppose the sale), one earlier copy already answered with a Health letter."""
    lands = _topic(session, LANDS)
    batch = Batch(title="Keep public lands in public hands", topic_id=lands, stance=Stance.OPPOSE, member_count=n + 1)
    session.add(batch)
    session.flush()
    people = [factory.constituent() for _ in range(n + 1)]
    earlier = factory.message(batch_id=batch.id, topic_id=lands, stance=Stance.OPPOSE, constituent_id=people[0].id,
                              body_text="Keep our public lands in public hands.")
    ids = [factory.message(batch_id=batch.id, topic_id=lands, stance=Stance.OPPOSE, constituent_id=p.id,
                           body_text="Keep our public lands in public hands.").id for p in people[1:]]
    return batch, earlier, ids


def test_ranking_order_and_marks(session, factory, office):
    batch, earlier, ids = _campaign(session, factory, office)
    health_used = office.letter("Health care reply", HEALTH, Stance.SUPPORT)
    office.answered(earlier, health_used)
    wrong_stance = office.letter("Selling public lands: we agree", LANDS, Stance.SUPPORT)
    right = office.letter("Keeping public lands public", LANDS, Stance.OPPOSE)
    wrong_topic = office.letter("Hospital funding", HEALTH, Stance.OPPOSE)
    in_review = office.letter("Public lands (new draft)", LANDS, Stance.OPPOSE, approve=False)
    retired = office.letter("Old public lands letter", LANDS, Stance.OPPOSE)
    letters.retire_letter(session, retired.letter_id, actor_id=office.supervisor.id)
    one_off = office.letter("Reply to one message", LANDS, Stance.OPPOSE)
    one_off.letter.one_off_message_id = ids[0]
    session.flush()

    ranked = rank_letters(session, ids, batch_id=batch.id)
    titles = [r.title for r in ranked]
    assert titles[:2] == ["Keeping public lands public", "Health care reply"]
    assert set(titles[2:]) == {"Selling public lands: we agree", "Hospital funding"}
    assert in_review.id not in {r.version.id for r in ranked}
    assert retired.id not in {r.version.id for r in ranked} and one_off.id not in {r.version.id for r in ranked}
    by_id = {r.version.id: r for r in ranked}
    assert by_id[right.id].fits and by_id[right.id].suggested and by_id[right.id].reasons[0] == "same topic and stance"
    used = by_id[health_used.id]
    assert used.fits and not used.suggested and used.used == 1
    assert "used for 1 earlier letter of this campaign" in used.reasons
    assert f"topic differs: {HEALTH} vs {LANDS}" in used.reasons
    assert not by_id[wrong_stance.id].fits and "stance differs: support vs oppose" in by_id[wrong_stance.id].reasons
    assert not by_id[wrong_topic.id].fits and f"topic differs: {HEALTH} vs {LANDS}" in by_id[wrong_topic.id].reasons
    assert [r for r in ranked if r.suggested] == [by_id[right.id]]

    # A selection (no batch): the messages' own majority topic and stance, and their batch's history.
    by_selection = rank_letters(session, ids)
    assert [r.title for r in by_selection][:2] == titles[:2] and by_selection[0].suggested


def test_nothing_preselected_when_nothing_fits(app, session, factory, office):
    batch, _earlier, ids = _campaign(session, factory, office)
    office.letter("Hospital funding", HEALTH, Stance.OPPOSE)
    office.letter("Selling public lands: we agree", LANDS, Stance.SUPPORT)
    session.commit()
    ranked = rank_letters(session, ids, batch_id=batch.id)
    assert len(ranked) == 2 and not any(r.fits or r.suggested for r in ranked)

    from flask import render_template

    from web.forms import ActionForm

    with app.test_request_context("/batches/1/answer"):
        html = render_template("_choose_letter.html", ranked=ranked, approved=[r.version for r in ranked],
                               counts={"email": 5, "print": 0}, form=ActionForm(), send_label="Send to all",
                               batch=batch)
    assert "checked" not in html and 'id="nothing-fits"' in html
    assert html.count("letter-choice mismatch") == 2 and 'name="confirm_mismatch"' in html
    # With a letter that fits, it (and only it) is chosen.
    right = office.letter("Keeping public lands public", LANDS, Stance.OPPOSE)
    with app.test_request_context("/batches/1/answer"):
        html = render_template("_choose_letter.html", ranked=rank_letters(session, ids, batch_id=batch.id),
                               approved=[], counts={"email": 5, "print": 0}, form=ActionForm(),
                               send_label="Send to all", batch=batch)
    assert html.count(" checked") == 1 and f'value="{right.id}" required' in html.split(" checked")[0][-200:]


def test_check_choice_refuses_a_mismatch_without_confirmation(session, factory, office):
    batch, _earlier, ids = _campaign(session, factory, office)
    right = office.letter("Keeping public lands public", LANDS, Stance.OPPOSE)
    wrong = office.letter("Selling public lands: we agree", LANDS, Stance.SUPPORT)
    draft = office.letter("Public lands (new draft)", LANDS, Stance.OPPOSE, approve=False)
    assert check_choice(session, right.id, ids, batch.id, False).version.id == right.id
    with pytest.raises(ValidationFailed, match="stance differs: support vs oppose"):
        check_choice(session, wrong.id, ids, batch.id, False)
    assert check_choice(session, wrong.id, ids, batch.id, True).version.id == wrong.id
    with pytest.raises(ValidationFailed, match="not an approved"):
        check_choice(session, draft.id, ids, batch.id, True)


VOCAB = {
    "lands": "public lands national forest hunting fishing sale federal acres wilderness trail",
    "drugs": "prescription drug prices insulin pharmacy medicare costs seniors pills negotiate",
    "roads": "pothole bridge highway repair traffic commute transit bus road construction",
}

FILLER = ["the", "of", "and", "to", "my", "I", "please", "our", "we", "in", "for", "this"]


def _synthetic(rng: random.Random, kind: str) -> str:
    words = VOCAB[kind].split() * 2 + FILLER * 3
    rng.shuffle(words)
    return " ".join(words[:rng.randint(12, 25)])


def _history(session, factory, office, n: int = 40, seed: int = 3):
    rng = random.Random(seed)
    made = {"lands": office.letter("Public lands", LANDS, Stance.OPPOSE),
            "drugs": office.letter("Drug prices", HEALTH, Stance.SUPPORT),
            "roads": office.letter("Roads and bridges", None, None)}
    for i in range(n * 3):
        kind = list(made)[i % 3]
        office.answered(factory.message(body_text=_synthetic(rng, kind), subject=""), made[kind])
    return made, rng


def test_suggestion_learns_from_history(session, factory, office):
    assert suggest_for_messages(session, [factory.message().id]) == []  # no history: nothing, and no model
    made, rng = _history(session, factory, office)
    hits = 0
    for i in range(30):
        kind = list(made)[i % 3]
        message = factory.message(body_text=_synthetic(rng, kind), subject="")
        top = suggest_for_message(session, message.id, k=3)
        assert len(top) == 3 and top[0].score >= top[1].score >= top[2].score
        hits += top[0].version.id == made[kind].id
    assert hits >= 27, hits
    # A batch of road letters: the road letter is suggested for the batch as a whole.
    roads = [factory.message(body_text=_synthetic(rng, "roads"), subject="").id for _ in range(8)]
    assert suggest_for_messages(session, roads, k=1)[0].version.id == made["roads"].id
    # A retired letter is never suggested again.
    letters.retire_letter(session, made["roads"].letter_id, actor_id=office.supervisor.id)
    assert made["roads"].id not in {s.version.id for s in suggest_for_messages(session, roads, k=3)}


def test_suggestion_breaks_the_tie_among_letters_that_fit(session, factory, office):
    """Two letters on the same topic and stance: the one the office's history points to comes first."""
    lands = _topic(session, LANDS)
    other = office.letter("Another public lands letter", LANDS, Stance.OPPOSE)
    made, rng = _history(session, factory, office)
    batch = Batch(title="Lands", topic_id=lands, stance=Stance.OPPOSE, member_count=6)
    session.add(batch)
    session.flush()
    ids = [factory.message(batch_id=batch.id, body_text=_synthetic(rng, "lands")).id for _ in range(6)]
    ranked = rank_letters(session, ids, batch_id=batch.id)
    assert ranked[0].version.id == made["lands"].id and ranked[0].suggested
    assert ranked[1].version.id == other.id and ranked[1].fits and ranked[0].score > ranked[1].score


def test_evaluate_on_a_synthetic_history():
    rng = random.Random(5)
    kinds = list(VOCAB)
    texts = [_synthetic(rng, kinds[i % 3]) for i in range(150)]
    labels = [kinds[i % 3] for i in range(150)]
    result = evaluate(texts, labels, folds=5)
    assert result.top1 >= 0.9 and result.top3 == 1.0
    assert [p["fraction"] for p in result.curve] == [0.1, 0.25, 0.5, 1.0]
    assert result.curve[0]["examples"] < result.curve[-1]["examples"] == 120
    # Labels the text says nothing about: the suggestion cannot learn them, and the measure says so.
    shuffled = labels[:]
    random.Random(1).shuffle(shuffled)
    assert evaluate(texts, shuffled, folds=5).top1 < 0.6


def _recipients(session, factory):
    """A selection with one writer who added words of their own, one answered by post, one with few details."""
    plain = [factory.message(constituent_id=factory.constituent(address1="1 Main St", prefix="Mr.").id)
             for _ in range(4)]
    addition = factory.message(constituent_id=factory.constituent(address1="2 Oak St", prefix="Ms.").id,
                               batch_additions=["My family has hunted on this land for 40 years."])
    paper = factory.message(channel=Channel.POSTAL, from_address=None,
                            constituent_id=factory.constituent(address1="3 Elm St", prefix="Dr.", email=None).id)
    sparse = factory.message(constituent_id=factory.constituent(first_name=None, last_name="Okafor", city=None,
                                                                zip5=None).id)
    closed = factory.message(status=MessageStatus.CLOSED, constituent_id=None)  # cannot be answered
    return [m.id for m in (*plain, addition, paper, sparse, closed)], addition, paper, sparse


def test_preview_three_real_recipients_rendered_exactly(session, factory, office, settings):
    ids, addition, paper, sparse = _recipients(session, factory)
    version = office.letter("Public lands", LANDS, Stance.OPPOSE,
                            body="{{ constituent.salutation }}\n\nThank you, {{ constituent.first_name or 'friend' }}"
                                 ", from {{ constituent.city or 'our district' }}.\n\n{{ office.signature }}")
    version.subject = "Re: {{ message.subject }} ({{ constituent.last_name }})"
    session.flush()
    previews = preview(session, version.id, ids, settings)
    assert [p.message_id for p in previews] == [addition.id, paper.id, sparse.id]
    assert "own" in previews[0].why and previews[0].addition.startswith("My family has hunted")
    assert previews[1].method == "print" and "3 Elm St" in previews[1].to and "paper" in previews[1].why
    assert "fewest details" in previews[2].why and "first name" in previews[2].why
    for p in previews:
        m = session.get(type(addition), p.message_id)
        values = context(m, m.constituent, office_of(settings))
        assert p.body == render(version.body, values, budget_of(settings))
        assert p.subject == header_text(render(version.subject, values, budget_of(settings)))
        assert p.error is None
    assert previews[0].to == addition.from_address

    # Kinds that are absent: other real recipients, never the same one twice, and said so.
    plain_ids = ids[:4]
    fallback = preview(session, version.id, plain_ids, settings)
    assert len(fallback) == 3 and len({p.message_id for p in fallback}) == 3
    assert set(p.message_id for p in fallback) <= set(plain_ids)
    assert "no one in the selection added words of their own" in fallback[0].why

    # A letter that cannot be filled in shows why, instead of failing the page.
    tiny = dataclasses.replace(settings, letter_max_kb=0)
    broken = preview(session, version.id, ids, tiny)
    assert broken and all(p.error and "longer than" in p.error for p in broken)


def test_preview_route_and_message_suggestion(client, auth, session, factory, office):
    ids, addition, _paper, _sparse = _recipients(session, factory)
    made, rng = _history(session, factory, office)
    lands_message = factory.message(body_text=_synthetic(rng, "lands"))
    session.commit()
    auth.login(Role.CORRESPONDENT.value)
    page = client.get(f"/letters/preview?version_id={made['lands'].id}&ids={','.join(map(str, ids))}&partial=1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count('class="letter-preview-card"') == 3
    assert f'data-message="{addition.id}"' in html and "My family has hunted" in html
    assert "<html" not in html  # the fragment only
    full = client.get(f"/letters/preview?version_id={made['lands'].id}&ids={ids[0]}")
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    assert client.get("/letters/preview?ids=1").status_code == 400
    assert client.get(f"/letters/preview?version_id=999999&ids={ids[0]}").status_code == 404

    view = client.get(f"/messages/{lands_message.id}").get_data(as_text=True)
    assert 'id="suggested-letter"' in view and "Public lands" in view
    assert f"/messages/{lands_message.id}/reply?from={made['lands'].id}" in view


def test_preview_route_is_for_senders_only(client, auth, session, factory, office):
    version = office.letter("Public lands", LANDS, Stance.OPPOSE)
    message = factory.message()
    session.commit()
    auth.login(Role.CASEWORKER.value)
    assert client.get(f"/letters/preview?version_id={version.id}&ids={message.id}").status_code == 403


def test_eval_cli_on_history_and_file(settings, session, factory, office, tmp_path):
    _history(session, factory, office, n=20)
    session.commit()
    before = session.scalar(select(func.count(AuditEvent.id)))
    runner = CliRunner()
    result = runner.invoke(cli, ["letters", "eval", "--folds", "3"], env=cli_env(settings))
    assert result.exit_code == 0, result.output
    assert "top-1" in result.output and "top-3" in result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["examples"] == 60 and figures["letters"] == 3 and figures["top1"] >= 0.8
    assert [p["fraction"] for p in figures["learning_curve"]] == [0.1, 0.25, 0.5, 1.0]
    session.expire_all()
    assert session.scalar(select(func.count(AuditEvent.id))) == before  # it wrote nothing

    rng = random.Random(9)
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(json.dumps({"text": _synthetic(rng, k), "letter": k})
                              for k in list(VOCAB) * 15) + "\n")
    from_file = runner.invoke(cli, ["letters", "eval", str(path)], env=cli_env(settings))
    assert from_file.exit_code == 0, from_file.output
    assert json.loads(from_file.output.strip().splitlines()[-1])["examples"] == 45
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no letter"}\n')
    refused = runner.invoke(cli, ["letters", "eval", str(bad)], env=cli_env(settings))
    assert refused.exit_code != 0 and "needs" in refused.output


def test_browser_choosing_a_letter_shows_its_preview(live_server, browser, factory, session, office):
    """On the answer page, choosing a letter loads it as three real recipients will receive it."""
    from playwright.sync_api import expect

    from tests.test_browser import _sign_in
    from tests.test_drafting import _batch

    batch, made = _batch(session, factory)
    made[1].batch_additions = ["Our well water tastes of iron."]
    first = office.letter("Clean water reply", None, None)
    second = office.letter("Water quality, second letter", None, None,
                           body="{{ constituent.salutation }}\n\nSecond letter for {{ constituent.first_name }}.")
    sender = factory.staffer(role=Role.CORRESPONDENT)
    session.commit()
    page = _sign_in(browser, live_server, sender, factory.PASSWORD)
    page.goto(f"{live_server}/batches/{batch.id}/answer")
    # Choosing a letter on a batch counts the dry run again for it (the page reloads with ?version_id=).
    page.click(f"input[type=radio][name=version_id][value='{second.id}']")
    page.wait_for_url(f"**version_id={second.id}**")
    page.wait_for_selector("#letter-preview .letter-preview-card")
    cards = page.locator("#letter-preview .letter-preview-card")
    assert cards.count() == 3
    text = page.inner_text("#letter-preview")
    assert "Second letter for Em1." in text and "Our well water tastes of iron." in text
    assert "By post to" in text and "0 Main St" in text  # the first letter that came on paper
    page.click(f"input[type=radio][name=version_id][value='{first.id}']")
    page.wait_for_url(f"**version_id={first.id}**")
    # The old preview goes, "Loading the preview…" shows, then the first letter's cards arrive (wait for them:
    # under load the fetch can take longer than the page's reload).
    # (expect() polls from Python: a wait_for_function string would be eval'd, which the page's CSP refuses.)
    expect(page.locator("#letter-preview")).to_contain_text("Thank you for writing about", timeout=30000)
    assert "Second letter" not in page.inner_text("#letter-preview")
