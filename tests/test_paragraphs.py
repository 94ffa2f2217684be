"""The paragraph library: propose/approve/retire/revise, "built only from approved paragraphs",
skip-review for such letters (only with the office setting), the insert pages, roles and CSRF,
and a browser inserting a paragraph into a new letter."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from correspondence.errors import PermissionDenied, ValidationFailed
from correspondence.models import (
    ApplyRun,
    AuditEvent,
    FormLetter,
    LetterVersion,
    ParagraphRevision,
    ParagraphState,
    Response,
    Role,
    StandardParagraph,
    Topic,
    VersionState,
)
from drafting import letters
from drafting import paragraphs as library
from drafting.paragraphs import SELF_APPROVAL_REASON, built_from, built_from_approved, split_paragraphs

THANKS = "Thank you for contacting me about {{ message.subject }}. I read every letter I receive."
WATER = ("Clean water is a right for every family in {{ constituent.city or 'our district' }}.\n"
         "I voted to fund the repair of old lead pipes.")
CLOSE = "Please write again whenever I can be of help."


def _topic(session, name="Environmental Protection"):
    return session.scalar(select(Topic).where(Topic.name == name))


def _approved(session, factory, text, *, title="P", topic_id=None):
    writer, boss = factory.staffer(), factory.staffer(role="supervisor")
    revision = library.propose_paragraph(session, title=title, text=text, topic_id=topic_id, actor_id=writer.id)
    library.approve_revision(session, revision.id, actor_id=boss.id)
    return revision


def _fresh(session):
    """See what the app committed: end this session's transaction and forget what it had loaded."""
    session.rollback()
    session.expire_all()


def _events(session, action):
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# --- the library's state machine ---------------------------------------------------------------------

def test_propose_approve_revise_retire_each_audited(session, factory):
    writer, boss, other_boss = factory.staffer(), factory.staffer(role="supervisor"), factory.staffer(role="admin")
    topic = _topic(session)
    first = library.propose_paragraph(session, title="Clean water", text=WATER + "  \r\n", topic_id=topic.id,
                                      actor_id=writer.id)
    assert first.state == ParagraphState.PROPOSED and first.text == WATER  # normalised: LF, no trailing spaces
    assert library.approved_for(session, topic.id) == []  # a proposal is not offered to writers

    with pytest.raises(PermissionDenied):
        library.approve_revision(session, first.id, actor_id=writer.id)  # a correspondent never approves
    library.approve_revision(session, first.id, actor_id=boss.id)
    assert first.state == ParagraphState.APPROVED and first.decided_by_id == boss.id
    assert [r.id for _p, r in library.approved_for(session, topic.id)] == [first.id]

    # Editing an approved paragraph makes a new proposed revision; the approved words stay in use.
    second = library.revise_paragraph(session, first.paragraph_id, text=WATER + " It is done.", actor_id=writer.id)
    assert second.id != first.id and second.number == 2 and second.based_on_id == first.id
    assert second.state == ParagraphState.PROPOSED and first.state == ParagraphState.APPROVED
    # The proposal's author edits it in place; nobody else may pile a second proposal on top.
    assert library.revise_paragraph(session, first.paragraph_id, text=WATER + " Done.", actor_id=writer.id) is second
    assert second.text.endswith("Done.")
    with pytest.raises(PermissionDenied, match="waiting for approval"):
        library.revise_paragraph(session, first.paragraph_id, text=WATER + " Other.", actor_id=boss.id)

    library.approve_revision(session, second.id, actor_id=other_boss.id)
    assert (first.state, second.state) == (ParagraphState.RETIRED, ParagraphState.APPROVED)

    library.retire_paragraph(session, first.paragraph_id, actor_id=boss.id)
    assert second.state == ParagraphState.RETIRED and session.get(StandardParagraph, first.paragraph_id).retired
    assert library.approved_for(session, topic.id) == []
    with pytest.raises(ValidationFailed, match="retired"):
        library.revise_paragraph(session, first.paragraph_id, text="New words.", actor_id=writer.id)

    actions = [e.action for e in session.scalars(select(AuditEvent).where(
        AuditEvent.object_type.in_(("standard_paragraph", "paragraph_revision"))).order_by(AuditEvent.id))]
    assert actions == ["paragraph.create", "paragraph_revision.propose", "paragraph_revision.approve",
                       "paragraph_revision.propose", "paragraph_revision.edit", "paragraph_revision.approve",
                       "paragraph_revision.retire", "paragraph_revision.retire", "paragraph.retire"]
    approve_event = _events(session, "paragraph_revision.approve")[0]
    assert approve_event.actor_id == boss.id and approve_event.before == {"state": "proposed"}


def test_nobody_approves_their_own_paragraph(session, factory):
    boss = factory.staffer(role="supervisor")
    revision = library.propose_paragraph(session, title="Mine", text=THANKS, actor_id=boss.id)
    with pytest.raises(PermissionDenied, match="own paragraph"):
        library.approve_revision(session, revision.id, actor_id=boss.id)
    assert revision.state == ParagraphState.PROPOSED


def test_withdraw_and_decline(session, factory):
    writer, boss = factory.staffer(), factory.staffer(role="supervisor")
    mine = library.propose_paragraph(session, title="A", text=THANKS, actor_id=writer.id)
    library.withdraw_revision(session, mine.id, actor_id=writer.id)
    assert mine.state == ParagraphState.WITHDRAWN
    theirs = library.propose_paragraph(session, title="B", text=CLOSE, actor_id=writer.id)
    with pytest.raises(ValidationFailed, match="say why"):
        library.withdraw_revision(session, theirs.id, actor_id=boss.id)
    library.withdraw_revision(session, theirs.id, actor_id=boss.id, reason="too informal")
    assert theirs.state == ParagraphState.WITHDRAWN
    assert _events(session, "paragraph_revision.decline")[0].detail == "too informal"
    with pytest.raises(ValidationFailed, match="cannot become approved"):
        library.approve_revision(session, theirs.id, actor_id=boss.id)


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty"),
    ("First paragraph.\n\nSecond paragraph.", "no blank lines"),
    ("First.\n  \t\nSecond.", "no blank lines"),
    ("{{ ''.__class__ }}", "not a merge field"),
    ("{{ constituent.nickname }}", "constituent.nickname"),
    ("{% if constituent.city %}Hello", "line 1"),
    ("{{ office.signature }}", "boilerplate"),
])
def test_paragraph_text_is_checked_like_a_letter(session, factory, text, problem):
    writer = factory.staffer()
    with pytest.raises(ValidationFailed, match=problem):
        library.propose_paragraph(session, title="Bad", text=text, actor_id=writer.id)


# --- built only from approved paragraphs ----------------------------------------------------------

def test_split_paragraphs_normalises_line_ends():
    body = ("{{ constituent.salutation }}\r\n\r\nOne line\r\nnext line  \r\n \t \r\n\r\nTwo\r\r"
            "{{ office.signature }}\r\n")
    assert split_paragraphs(body) == ["{{ constituent.salutation }}", "One line\nnext line", "Two",
                                      "{{ office.signature }}"]


def test_built_from_decides_on_exact_paragraphs():
    approved = {THANKS, WATER}
    letter = f"{{{{ constituent.salutation }}}}\n\n{THANKS}\n\n{WATER}\n\n{{{{ office.signature }}}}"
    assert built_from(letter, approved)
    assert built_from(letter.replace("\n", "\r\n"), approved)  # typed in a browser
    assert built_from("{{constituent.salutation}}\n\n" + THANKS + "\n\n{{  office.signature  }}\n", approved)
    assert built_from(THANKS, approved)  # no salutation or signature is still only approved words
    # Near misses: each is a letter with words nobody approved.
    assert not built_from(letter.replace("every letter", "every  letter"), approved)
    assert not built_from(letter.replace("I read", "I reed"), approved)
    assert not built_from(letter.replace(THANKS, THANKS + " Really."), approved)
    assert not built_from(letter.replace(f"{THANKS}\n\n{WATER}", f"{THANKS}\n{WATER}"), approved)  # two joined
    assert not built_from(letter.replace(WATER, WATER.replace("\n", " ")), approved)  # a line break moved
    assert not built_from(letter + "\n\nP.S. Call me.", approved)
    assert not built_from("Dear Ana,\n\n" + THANKS, approved)  # a typed salutation is the writer's words
    assert not built_from("{{ constituent.salutation }}\n\n{{ office.signature }}", approved)  # nothing approved
    assert not built_from("{{ constituent.first_name }}\n\n" + THANKS, approved)  # not a boilerplate field
    assert not built_from("", approved) and not built_from("\r\n\r\n", approved)


def test_built_from_approved_looks_only_at_approved_live_paragraphs(session, factory):
    thanks = _approved(session, factory, THANKS)
    water = _approved(session, factory, WATER)
    writer = factory.staffer()
    proposed = library.propose_paragraph(session, title="Close", text=CLOSE, actor_id=writer.id)
    letter = f"{{{{ constituent.salutation }}}}\r\n\r\n{THANKS}\r\n\r\n{WATER}\r\n\r\n{{{{ office.signature }}}}"
    assert built_from_approved(session, letter)
    assert not built_from_approved(session, letter + "\n\n" + CLOSE)  # only proposed, not approved
    boss = factory.staffer(role="supervisor")
    library.approve_revision(session, proposed.id, actor_id=boss.id)
    assert built_from_approved(session, letter + "\n\n" + CLOSE)
    # A newer revision replaces the old words; retiring a paragraph withdraws its words.
    library.revise_paragraph(session, water.paragraph_id, text=WATER + " Again.", actor_id=writer.id)
    assert built_from_approved(session, letter)  # still approved until the new revision is
    library.approve_revision(session, library.open_proposal(session, water.paragraph_id).id, actor_id=boss.id)
    assert not built_from_approved(session, letter)
    assert built_from_approved(session, letter.replace(WATER, WATER + " Again."))
    library.retire_paragraph(session, thanks.paragraph_id, actor_id=boss.id)
    assert not built_from_approved(session, letter.replace(WATER, WATER + " Again."))


def test_insert_goes_before_the_signature():
    assert library.insert_text("{{ constituent.salutation }}\r\n\r\n\r\n\r\n{{ office.signature }}", THANKS) == (
        f"{{{{ constituent.salutation }}}}\n\n{THANKS}\n\n{{{{ office.signature }}}}")
    assert library.insert_text("Dear Ana,\n\nMy words.", CLOSE) == f"Dear Ana,\n\nMy words.\n\n{CLOSE}"
    assert library.insert_text("", CLOSE) == CLOSE
    assert library.insert_text("{{ office.signature }}", CLOSE) == f"{CLOSE}\n\n{{{{ office.signature }}}}"


# --- skip review ---------------------------------------------------------------------------------------

def _built_letter(session, factory, author):
    _approved(session, factory, THANKS)
    body = f"{{{{ constituent.salutation }}}}\n\n{THANKS}\n\n{{{{ office.signature }}}}"
    return letters.create_letter(session, title="Built", body=body, actor_id=author.id)


def test_skip_review_only_with_the_setting_and_only_when_built(session, factory):
    author = factory.staffer(role=Role.CORRESPONDENT)
    version = _built_letter(session, factory, author)
    assert built_from_approved(session, version.body)
    # Setting off: refused, before anything moves.
    with pytest.raises(PermissionDenied, match="SKIP_REVIEW is off"):
        library.approve_own(session, version.id, actor_id=author.id, office_allows=False)
    assert version.state == VersionState.DRAFT
    # The approve path itself refuses an author's approval unless the office allows it.
    letters.submit(session, version.id, actor_id=author.id)
    with pytest.raises(PermissionDenied):
        letters.approve(session, version.id, actor_id=author.id)
    # Words nobody approved: refused even with the setting on.
    other = letters.create_letter(session, title="Own words", body="{{ constituent.salutation }}\n\n" + THANKS
                                  + " And my own sentence.", actor_id=author.id)
    with pytest.raises(PermissionDenied, match="not built only from approved"):
        library.approve_own(session, other.id, actor_id=author.id, office_allows=True)
    odd_subject = letters.create_letter(session, title="Subject", subject="You are wrong", body=version.body,
                                        actor_id=author.id)
    with pytest.raises(PermissionDenied, match="subject"):
        library.approve_own(session, odd_subject.id, actor_id=author.id, office_allows=True)
    # Someone else cannot use the author's way round review.
    stranger = factory.staffer(role=Role.CORRESPONDENT)
    with pytest.raises(PermissionDenied):
        library.approve_own(session, version.id, actor_id=stranger.id, office_allows=True)

    library.approve_own(session, version.id, actor_id=author.id, office_allows=True)
    assert version.state == VersionState.APPROVED and version.decided_by_id == author.id
    assert version.letter.current_version_id == version.id
    event = _events(session, "letter_version.approve")[-1]
    assert event.actor_id == author.id and event.detail == SELF_APPROVAL_REASON
    assert event.object_id == str(version.id) or event.object_id == version.id


def test_a_draft_is_saved_with_the_screen_text_then_approved(session, factory):
    author = factory.staffer()
    version = _built_letter(session, factory, author)
    _approved(session, factory, CLOSE)
    on_screen = version.body.replace("{{ office.signature }}", CLOSE + "\r\n\r\n{{ office.signature }}")
    library.approve_own(session, version.id, actor_id=author.id, office_allows=True, body=on_screen,
                        subject="Re: {{ message.subject }}")
    assert version.state == VersionState.APPROVED and CLOSE in version.body
    assert [e.action for e in session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "letter_version").order_by(AuditEvent.id))] == [
        "letter_version.edit", "letter_version.submit", "letter_version.approve"]


# --- pages: roles, CSRF, insert without JavaScript -------------------------------------------------------

def test_library_page_filters_by_topic_and_roles_decide_actions(client, auth, session, factory):
    topic = _topic(session)
    water = _approved(session, factory, WATER, title="Clean water pipes", topic_id=topic.id)
    _approved(session, factory, THANKS, title="Thanks for writing")
    session.commit()
    auth.login("caseworker")
    page = client.get("/paragraphs/").get_data(as_text=True)
    assert "Clean water pipes" in page and "Thanks for writing" in page
    page = client.get(f"/paragraphs/?topic={topic.id}").get_data(as_text=True)
    assert "Clean water pipes" in page and "Thanks for writing" not in page
    assert client.get("/paragraphs/?topic=abc").status_code == 400
    token = auth.csrf("/paragraphs/")
    # Any writer proposes ...
    made = client.post("/paragraphs/new", data={"csrf_token": token, "title": "Close", "text": CLOSE,
                                                "topic_id": ""})
    assert made.status_code == 303
    _fresh(session)
    proposal = session.scalar(select(ParagraphRevision).where(ParagraphRevision.text == CLOSE))
    assert proposal.state == ParagraphState.PROPOSED
    # ... but a caseworker neither approves nor retires: the routes' own role rules refuse them.
    refused = client.post(f"/paragraphs/{proposal.paragraph_id}/approve",
                          data={"csrf_token": token, "revision_id": str(proposal.id)})
    assert refused.status_code == 403
    assert client.post(f"/paragraphs/{water.paragraph_id}/retire", data={"csrf_token": token}).status_code == 403
    _fresh(session)
    assert proposal.state == ParagraphState.PROPOSED and not session.get(StandardParagraph,
                                                                         water.paragraph_id).retired
    # Without the CSRF token nothing is accepted.
    assert client.post("/paragraphs/new", data={"title": "x", "text": CLOSE}).status_code == 400

    client.post("/logout", data={"csrf_token": token})
    session.rollback()  # a fresh snapshot before this session writes (SQLite WAL)
    auth.login("supervisor")
    token = auth.csrf("/paragraphs/")
    page = client.get(f"/paragraphs/{proposal.paragraph_id}").get_data(as_text=True)
    assert 'id="approve-revision"' in page
    done = client.post(f"/paragraphs/{proposal.paragraph_id}/approve",
                       data={"csrf_token": token, "revision_id": str(proposal.id)})
    assert done.status_code == 303
    _fresh(session)
    assert proposal.state == ParagraphState.APPROVED


def test_insert_on_the_new_letter_page_keeps_the_typed_text(client, auth, session, factory):
    topic = _topic(session)
    water = _approved(session, factory, WATER, title="Clean water pipes", topic_id=topic.id)
    _approved(session, factory, THANKS, title="Thanks for writing")
    other = _approved(session, factory, CLOSE, title="Energy close", topic_id=_topic(session, "Energy").id)
    session.commit()
    auth.login("correspondent")
    token = auth.csrf("/letters/new")
    typed = "{{ constituent.salutation }}\r\n\r\nMy own first words.\r\n\r\n{{ office.signature }}"
    page = client.post("/letters/new", data={"csrf_token": token, "title": "Water", "topic_id": str(topic.id),
                                             "subject": "Re: {{ message.subject }}", "body": typed,
                                             "insert_paragraph": str(water.paragraph_id)})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    body = re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    assert body.replace("&#39;", "'") == ("{{ constituent.salutation }}\n\nMy own first words.\n\n" + WATER
                                          + "\n\n{{ office.signature }}")
    assert 'value="Water"' in html  # the rest of the form is kept
    assert "Clean water pipes" in html and "Thanks for writing" in html and "Energy close" not in html
    assert session.scalar(select(FormLetter)) is None  # nothing saved yet
    # A paragraph that is not approved cannot be inserted.
    bad = client.post("/letters/new", data={"csrf_token": token, "title": "Water", "body": typed,
                                            "insert_paragraph": str(other.paragraph_id + 999)})
    assert bad.status_code == 400


def test_insert_on_the_reply_page_and_a_built_reply_goes_out_without_waiting(app, auth, session, factory, database,
                                                                           settings):
    from drafting.apply import execute_run

    app.extensions["mailroom.settings"] = dataclasses.replace(settings, approved_paragraphs_skip_review=True)
    client = app.test_client()
    auth.client = client
    thanks = _approved(session, factory, THANKS, title="Thanks for writing")
    c = factory.constituent(first_name="Ana", last_name="Lopez", prefix="Ms")
    message = factory.message(constituent_id=c.id, from_address="ana@example.org", subject="Bridge repair")
    session.commit()
    writer = auth.login("correspondent")
    token = auth.csrf(f"/messages/{message.id}/reply")
    page = client.post(f"/messages/{message.id}/reply", data={
        "csrf_token": token, "subject": "Re: {{ message.subject }}",
        "body": "{{ constituent.salutation }}\r\n\r\n\r\n\r\n{{ office.signature }}",
        "insert_paragraph": str(thanks.paragraph_id)})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="built-from-approved"' in html
    body = re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    assert body == f"{{{{ constituent.salutation }}}}\n\n{THANKS}\n\n{{{{ office.signature }}}}"
    sent = client.post(f"/messages/{message.id}/reply", data={"csrf_token": token,
                                                              "subject": "Re: {{ message.subject }}", "body": body})
    assert sent.status_code == 303
    _fresh(session)
    version = session.scalar(select(LetterVersion))
    assert version.state == VersionState.IN_REVIEW
    page = client.get(f"/letters/versions/{version.id}").get_data(as_text=True)
    assert "Built only from approved paragraphs" in page and 'id="approve-own"' in page
    done = client.post(f"/letters/versions/{version.id}/approve_own", data={"csrf_token": token})
    assert done.status_code == 303
    _fresh(session)
    assert version.state == VersionState.APPROVED and version.decided_by_id == writer.id
    run = session.scalar(select(ApplyRun))
    assert run.message_ids == [message.id]
    execute_run(database, run.id, settings)
    _fresh(session)
    answer = session.scalar(select(Response).where(Response.message_id == message.id))
    assert answer.body_text.startswith("Dear Ms. Lopez,") and "I read every letter" in answer.body_text


def test_without_the_setting_the_writer_sees_no_way_round_review(client, auth, session, factory):
    thanks = _approved(session, factory, THANKS, title="Thanks for writing")
    session.commit()
    writer = auth.login("correspondent")
    version = letters.create_letter(session, title="Built", actor_id=writer.id,
                                    body=f"{{{{ constituent.salutation }}}}\n\n{thanks.text}")
    session.commit()
    page = client.get(f"/letters/versions/{version.id}").get_data(as_text=True)
    assert "Built only from approved paragraphs" in page and 'id="approve-own"' not in page
    token = auth.csrf(f"/letters/versions/{version.id}")
    client.post(f"/letters/versions/{version.id}/approve_own", data={"csrf_token": token})
    _fresh(session)
    assert version.state == VersionState.DRAFT


def test_insert_into_a_draft_saves_the_text_on_screen(client, auth, session, factory):
    thanks = _approved(session, factory, THANKS, title="Thanks for writing")
    session.commit()
    writer = auth.login("correspondent")
    version = letters.create_letter(session, title="Draft", actor_id=writer.id,
                                    body="{{ constituent.salutation }}\n\nOld.\n\n{{ office.signature }}")
    session.commit()
    token = auth.csrf(f"/letters/versions/{version.id}")
    page = client.get(f"/letters/versions/{version.id}").get_data(as_text=True)
    assert "Thanks for writing" in page and 'form="letter-edit-form"' in page
    done = client.post(f"/letters/versions/{version.id}/insert-paragraph", data={
        "csrf_token": token, "subject": "Re: {{ message.subject }}", "insert_paragraph": str(thanks.paragraph_id),
        "body": "{{ constituent.salutation }}\r\n\r\nNew words typed, not saved.\r\n\r\n{{ office.signature }}"})
    assert done.status_code == 303
    assert "Paragraph inserted" in client.get(done.headers["Location"]).get_data(as_text=True)
    _fresh(session)
    assert version.body == ("{{ constituent.salutation }}\n\nNew words typed, not saved.\n\n" + THANKS
                            + "\n\n{{ office.signature }}")
    # Only the author's own draft.
    client.post("/logout", data={"csrf_token": token})
    session.rollback()  # a fresh snapshot before this session writes (SQLite WAL)
    auth.login("correspondent")
    client.post(f"/letters/versions/{version.id}/insert-paragraph", data={
        "csrf_token": auth.csrf("/letters/new"), "subject": "x", "insert_paragraph": str(thanks.paragraph_id),
        "body": "taken over"})
    _fresh(session)
    assert "taken over" not in version.body


# --- the browser -----------------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("javascript", [True, False])
def test_writer_inserts_a_paragraph_into_a_new_letter_and_sees_the_mark(live_server, browser, factory, session,
                                                                        tmp_path, javascript):
    shots = Path(os.environ.get("MAILROOM_SCREENSHOT_DIR", tmp_path))
    topic = _topic(session)
    _approved(session, factory, WATER, title="Clean water pipes", topic_id=topic.id)
    _approved(session, factory, THANKS, title="Thanks for writing")
    writer = factory.staffer(role=Role.CORRESPONDENT, name="Devon Carter")
    session.commit()
    context = browser.new_context(viewport={"width": 1400, "height": 900}, java_script_enabled=javascript)
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", writer.email)
    page.fill("input[name=password]", factory.PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server}/letters/new")
    page.fill("input[name=title]", "Water, from the library")
    page.select_option("select[name=topic_id]", str(topic.id))
    page.fill("textarea[name=body]", "{{ constituent.salutation }}\n\n{{ office.signature }}")
    if javascript:  # inserted at the cursor: after the salutation
        page.evaluate("""() => { const t = document.querySelector('textarea[name=body]');
                                 t.focus(); t.setSelectionRange(28, 28); }""")
    page.click("button.insert-paragraph:has-text('Thanks for writing')")
    if not javascript:
        page.wait_for_load_state("load")
    body = page.input_value("textarea[name=body]")
    assert body.replace("\r\n", "\n") == f"{{{{ constituent.salutation }}}}\n\n{THANKS}\n\n{{{{ office.signature }}}}"
    assert page.input_value("input[name=title]") == "Water, from the library"
    page.screenshot(path=str(shots / f"paragraph-insert-{'js' if javascript else 'nojs'}.png"))
    page.click("button#save-letter")
    page.wait_for_selector("#version-state")
    assert page.inner_text("#built-from-approved").strip() == "Built only from approved paragraphs"
    page.screenshot(path=str(shots / f"paragraph-mark-{'js' if javascript else 'nojs'}.png"), full_page=True)
    context.close()


def test_demo_office_has_approved_paragraphs_for_its_main_topics(session, factory):
    from demo.office import DEMO_PARAGRAPHS, _demo_paragraphs

    factory.staffer(role="supervisor", email="maria.alvarez@mailroom.local")
    factory.staffer(role="correspondent", email="devon.carter@mailroom.local")
    assert _demo_paragraphs(session) == len(DEMO_PARAGRAPHS)
    water = [p.title for p, _r in library.approved_for(session, _topic(session).id)]
    assert water == ["Clean water", "Keep in touch", "Thanks for writing"]  # the topic's own first, then general
    texts = {r.text for _p, r in library.approved_for(session)}
    letter = "\n\n".join(["{{ constituent.salutation }}", DEMO_PARAGRAPHS[0][2], DEMO_PARAGRAPHS[2][2],
                          "{{ office.signature }}"])
    assert len(texts) == len(DEMO_PARAGRAPHS) and built_from_approved(session, letter)


def test_writer_approves_own_draft_from_the_editor_with_the_text_on_screen(app, auth, session, factory, settings):
    app.extensions["mailroom.settings"] = dataclasses.replace(settings, approved_paragraphs_skip_review=True)
    client = app.test_client()
    auth.client = client
    _approved(session, factory, THANKS, title="Thanks for writing")
    _approved(session, factory, CLOSE, title="Keep in touch")
    session.commit()
    writer = auth.login("correspondent")
    version = letters.create_letter(session, title="Built", actor_id=writer.id,
                                    body=f"{{{{ constituent.salutation }}}}\n\n{THANKS}\n\n{{{{ office.signature }}}}")
    session.commit()
    page = client.get(f"/letters/versions/{version.id}").get_data(as_text=True)
    assert re.search(r'<button type="submit" form="letter-edit-form" formaction="[^"]*/approve_own"[^>]*'
                     r'id="approve-own">Approve \(built from approved paragraphs\)', page)
    token = auth.csrf(f"/letters/versions/{version.id}")
    # Words typed but not saved that nobody approved: refused, and nothing is saved or moved.
    client.post(f"/letters/versions/{version.id}/approve_own", data={
        "csrf_token": token, "subject": "Re: {{ message.subject }}", "body": version.body + "\r\n\r\nMy own P.S."})
    _fresh(session)
    assert version.state == VersionState.DRAFT and "P.S." not in version.body
    done = client.post(f"/letters/versions/{version.id}/approve_own", data={
        "csrf_token": token, "subject": "Re: {{ message.subject }}",
        "body": version.body.replace("\n", "\r\n") + "\r\n\r\n" + CLOSE})
    assert done.status_code == 303
    _fresh(session)
    assert version.state == VersionState.APPROVED and version.body.endswith(CLOSE) and "\r" not in version.body
    assert _events(session, "letter_version.approve")[-1].detail == SELF_APPROVAL_REASON
