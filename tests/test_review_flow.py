"""Faster review (issue 13): unsaved edits go to review, CRLF letters, notices, queue ageing, delegation."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import AuditEvent, LetterVersion, Notice, VersionState, utcnow
from correspondence.services import notices
from drafting import delegation, letters
from insight.dashboard import review_times

BODY = ("{{ constituent.salutation }}\n\nThank you for writing about clean water. I support the bill.\n\n"
        "{{ office.signature }}")
CRLF_BODY = BODY.replace("\n", "\r\n")


def _fresh(session):
    """Forget what this session holds (sessions keep objects after commit) and read what the app committed."""
    session.rollback()
    session.expire_all()


def _in_review(session, factory, body: str = BODY, author=None):
    author = author or factory.staffer(role="correspondent")
    v = letters.create_letter(session, title="Clean water", body=body, actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    return v, author


# --- 1. Unsaved edits are never lost ---------------------------------------------------------------

def test_send_for_review_saves_the_editors_text_first(session, factory):
    author = factory.staffer()
    v = letters.create_letter(session, title="Clean water", body=BODY, actor_id=author.id)
    new_body = BODY.replace("I support the bill.", "I voted for H.R. 12.")
    letters.submit(session, v.id, subject="About water", body=new_body, actor_id=author.id)
    assert v.state == VersionState.IN_REVIEW
    assert (v.subject, v.body) == ("About water", new_body)
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "letter_version",
                                                                   AuditEvent.object_id == str(v.id))
                                   .order_by(AuditEvent.id)))
    assert actions == ["letter_version.edit", "letter_version.submit"]


def test_send_for_review_refuses_text_that_cannot_be_saved(session, factory):
    author = factory.staffer()
    v = letters.create_letter(session, title="Clean water", body=BODY, actor_id=author.id)
    session.commit()
    with pytest.raises(ValidationFailed, match=r"Not sent for review.*not a merge field"):
        letters.submit(session, v.id, subject="x", body="{{ constituent.ssn }}", actor_id=author.id)
    _fresh(session)
    assert v.state == VersionState.DRAFT and v.body == BODY


def test_send_for_review_through_the_page_keeps_the_text_either_way(client, auth, session):
    me = auth.login("correspondent")
    v = letters.create_letter(session, title="Clean water", body=BODY, actor_id=me.id)
    session.commit()
    token = auth.csrf(f"/letters/versions/{v.id}")
    bad = client.post(f"/letters/versions/{v.id}/submit", data={
        "csrf_token": token, "subject": "Re: water", "body": "Dear friend,\r\n\r\nMy typed words {{ oops }"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "Not sent for review" in page and "My typed words {{ oops }" in page  # the typed text is still there
    _fresh(session)
    assert session.get(LetterVersion, v.id).state == VersionState.DRAFT
    good = client.post(f"/letters/versions/{v.id}/submit", data={
        "csrf_token": token, "subject": "Re: water", "body": BODY.replace("the bill", "the new bill")})
    assert good.status_code == 303, good.get_data(as_text=True)
    assert "Sent for review" in client.get(good.headers["Location"]).get_data(as_text=True)
    _fresh(session)
    saved = session.get(LetterVersion, v.id)
    assert saved.state == VersionState.IN_REVIEW and "the new bill" in saved.body and saved.subject == "Re: water"


# --- 2. CRLF and the paragraph diff ----------------------------------------------------------------

def test_crlf_letters_are_saved_with_newlines_and_split_into_paragraphs(session, factory):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title="Typed in a browser", body=CRLF_BODY, actor_id=author.id)
    assert "\r" not in v.body and v.body == BODY
    assert letters.paragraphs(CRLF_BODY) == letters.paragraphs(BODY) == [
        "{{ constituent.salutation }}", "Thank you for writing about clean water. I support the bill.",
        "{{ office.signature }}"]
    assert letters.paragraphs("One\r\rTwo\r\n \r\nThree\n\n\n\nFour") == ["One", "Two", "Three", "Four"]
    letters.edit_draft(session, v.id, body=CRLF_BODY + "\r\n\r\nP.S. Thanks.", subject="Hi\r\n", actor_id=author.id)
    assert v.body.endswith("\n\nP.S. Thanks.") and "\r" not in v.body and v.subject == "Hi"
    letters.submit(session, v.id, actor_id=author.id)
    letters.request_changes(session, v.id, comment="Drop the P.S.", paragraph=4, actor_id=boss.id)
    with pytest.raises(ValidationFailed, match="has 4 paragraphs, not 5"):
        letters.add_comment(session, v.id, text="?", paragraph=5, actor_id=boss.id)


def test_a_body_stored_with_crlf_still_has_paragraphs(session, factory):
    """Letters saved before line endings were normalised still number their paragraphs."""
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v, _ = _in_review(session, factory, author=author)
    v.body = CRLF_BODY  # as an older release stored it
    session.flush()
    letters.add_comment(session, v.id, text="Good", paragraph=3, actor_id=boss.id)
    assert len(letters.paragraphs(v.body)) == 3


def test_the_diff_shows_paragraphs_with_word_changes_inside(session, factory):
    old = CRLF_BODY
    new = ("{{ constituent.salutation }}\n\nThank you for writing about clean water. I co-sponsored the bill.\n\n"
           "Our district's wells are tested every year.\n\n{{ office.signature }}")
    diff = letters.paragraph_diff(old, new)
    assert [c.op for c in diff] == ["same", "changed", "add", "same"]
    changed = diff[1]
    assert ("del", "support") in changed.words and ("add", "co-sponsored") in changed.words
    assert diff[2].text == "Our district's wells are tested every year."
    # A paragraph rewritten beyond recognition is shown removed and the new one added.
    rewritten = letters.paragraph_diff("A\n\nThe quick brown fox.\n\nZ",
                                       "A\r\n\r\nEntirely different words here.\r\n\r\nZ")
    assert [c.op for c in rewritten] == ["same", "del", "add", "same"]
    # Line endings alone are not a change.
    assert all(c.op == "same" for c in letters.paragraph_diff(BODY, CRLF_BODY))


def test_the_version_page_shows_the_paragraph_diff(client, auth, session, factory):
    me = auth.login("correspondent")
    boss = factory.staffer(role="supervisor")
    v1, _ = _in_review(session, factory, author=me)
    letters.request_changes(session, v1.id, comment="Say more.", actor_id=boss.id)
    v2 = letters.new_version(session, v1.id, actor_id=me.id)
    letters.edit_draft(session, v2.id, body=BODY.replace("I support the bill.", "I support the bill.\r\n\r\nWater "
                                                         "matters."), subject=v2.subject, actor_id=me.id)
    session.commit()
    page = client.get(f"/letters/versions/{v2.id}").get_data(as_text=True)
    assert 'class="para-add"' in page and "<ins>Water matters.</ins>" in page
    assert page.count('class="para-same"') == 3


# --- 3. The writer is told -------------------------------------------------------------------------

def test_the_author_gets_a_notice_for_each_decision(session, factory):
    boss = factory.staffer(role="supervisor", name="Maria Alvarez")
    v1, author = _in_review(session, factory)
    letters.request_changes(session, v1.id, comment="Mention the bill number.", paragraph=2, actor_id=boss.id)
    v2 = letters.new_version(session, v1.id, actor_id=author.id)
    letters.submit(session, v2.id, actor_id=author.id)
    letters.approve(session, v2.id, actor_id=boss.id)
    mine = notices.notices_for(session, author.id)
    assert [n.kind for n in mine] == ["letter.approved", "letter.changes_requested"]
    assert mine[0].text == "Maria Alvarez approved \u201cClean water\u201d version 2"
    assert mine[1].text == ("Maria Alvarez asked for changes to paragraph 2 of \u201cClean water\u201d version 1: "
                            "Mention the bill number.")
    assert mine[0].link == f"/letters/versions/{v2.id}"
    assert notices.unread_count(session, author.id) == 2 and notices.notices_for(session, boss.id) == []
    created = session.scalars(select(AuditEvent).where(AuditEvent.action == "notice.create")).all()
    assert {e.object_id for e in created} == {str(n.id) for n in mine}

    with pytest.raises(NotFound):  # nobody marks (or learns of) another's notice
        notices.mark_read(session, mine[0].id, actor_id=boss.id)
    notices.mark_read(session, mine[0].id, actor_id=author.id)
    assert notices.unread_count(session, author.id) == 1
    assert notices.mark_all_read(session, actor_id=author.id) == 1
    assert notices.unread_count(session, author.id) == 0
    assert {"notice.read", "notice.read_all"} <= set(session.scalars(select(AuditEvent.action)))


def test_notices_page_badge_and_mark_read(client, auth, session, factory):
    boss = factory.staffer(role="supervisor")
    me = auth.login("correspondent")
    v, _ = _in_review(session, factory, author=me)
    letters.approve(session, v.id, actor_id=boss.id)
    someone_else = factory.staffer()
    theirs = notices.notify(session, someone_else.id, kind="letter.approved", text="Not for you", actor_id=None)
    session.commit()
    inbox = client.get("/inbox/").get_data(as_text=True)
    assert 'id="notice-badge" aria-label="1 unread">1<' in inbox
    page = client.get("/notices/").get_data(as_text=True)
    assert "approved \u201cClean water\u201d version 1" in page and "Not for you" not in page
    token = auth.csrf("/notices/")
    assert client.post(f"/notices/{theirs.id}/read", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/notices/{theirs.id}/read").status_code == 400  # no CSRF token, no change
    mine = session.scalar(select(Notice).where(Notice.staffer_id == me.id))
    opened = client.post(f"/notices/{mine.id}/read", data={"csrf_token": token, "open": "1"})
    assert opened.status_code == 303 and opened.headers["Location"].endswith(f"/letters/versions/{v.id}")
    _fresh(session)
    assert session.get(Notice, mine.id).read_at is not None and session.get(Notice, theirs.id).read_at is None
    assert 'id="notice-badge"' not in client.get("/inbox/").get_data(as_text=True)


def _smtp_settings(settings, smtp_server):
    return dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="none")


def test_a_decision_queues_an_email_copy_when_smtp_is_set(settings, session, factory, job_env, redis, smtp_server,
                                                          monkeypatch):
    from rq import SimpleWorker

    from tests.conftest import Auth
    from web import create_app
    from workers.queues import OUTBOUND, get_queue

    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    app = create_app(_smtp_settings(settings, smtp_server))
    client = app.test_client()
    author = factory.staffer(role="correspondent", name="Devon Carter")
    v, _ = _in_review(session, factory, author=author)
    session.commit()
    Auth(client, factory, session).login("supervisor", name="Maria Alvarez")
    token = Auth(client, factory, session).csrf(f"/letters/versions/{v.id}")
    response = client.post(f"/letters/versions/{v.id}/request_changes",
                           data={"csrf_token": token, "comment": "Shorter, please."})
    assert response.status_code == 303
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    assert len(smtp_server.inbox.messages) == 1
    email = smtp_server.inbox.messages[0]
    assert email["To"] == author.email and "asked for changes" in email["Subject"]
    assert f"/letters/versions/{v.id}" in email.get_body(("plain",)).get_content()
    _fresh(session)
    notice = session.scalar(select(Notice).where(Notice.staffer_id == author.id))
    assert notice.emailed_at is not None and notice.read_at is None  # the in-app notice stays unread
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    from workers.jobs import run_notice_emails

    assert run_notice_emails(author.id) == 0  # already emailed: not again
    assert len(smtp_server.inbox.messages) == 1
    app.extensions["mailroom.db"].dispose()
    app.extensions["mailroom.db_write"].dispose()


def test_no_queue_or_no_mail_server_never_loses_the_notice(settings, session, factory, job_env, smtp_server,
                                                           monkeypatch):
    from drafting.send import TryLater
    from tests.conftest import Auth
    from web import create_app
    from workers.jobs import run_notice_emails

    # Redis unreachable when the decision is made: the request succeeds and the notice is kept.
    app = create_app(dataclasses.replace(_smtp_settings(settings, smtp_server), redis_url="redis://127.0.0.1:9/0"))
    client = app.test_client()
    v, author = _in_review(session, factory)
    session.commit()
    auth = Auth(client, factory, session)
    auth.login("supervisor")
    response = client.post(f"/letters/versions/{v.id}/approve", data={"csrf_token": auth.csrf("/approvals/")})
    assert response.status_code == 303
    _fresh(session)
    assert session.get(LetterVersion, v.id).state == VersionState.APPROVED
    notice = session.scalar(select(Notice).where(Notice.staffer_id == author.id))
    assert notice is not None and notice.emailed_at is None
    # The mail server down when the job runs: the job fails (RQ keeps it), the notice stays unemailed.
    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", "9")
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    with pytest.raises(TryLater):
        run_notice_emails(author.id)
    _fresh(session)
    assert session.get(Notice, notice.id).emailed_at is None
    app.extensions["mailroom.db"].dispose()
    app.extensions["mailroom.db_write"].dispose()


# --- 4. Approval queue ageing and the dashboard's review times ---------------------------------------

def test_the_queue_shows_each_versions_age_and_flags_old_ones(session, factory):
    now = utcnow()
    ages = {"fresh": timedelta(hours=2), "day": timedelta(hours=30), "week": timedelta(hours=80)}
    made = {}
    for name, age in ages.items():
        v, _ = _in_review(session, factory)
        v.submitted_at = now - age
        made[name] = v.id
    session.flush()
    queue = {item.version.id: item for item in letters.approval_queue(session, now=now)}
    assert queue[made["fresh"]].flag is None and queue[made["fresh"]].waited_text == "2 h"
    assert queue[made["day"]].flag == "over 24 h" and queue[made["day"]].waited_text == "30 h"
    assert queue[made["week"]].flag == "over 72 h" and queue[made["week"]].waited_text == "3 days 8 h"
    assert letters.approval_queue(session, now=now)[0][0].id in made.values()  # type: ignore[attr-defined]  # still indexable as before (QueueItem[i] is typed object)


def test_the_approvals_page_marks_old_versions_in_words(client, auth, session, factory):
    v, _ = _in_review(session, factory)
    v.submitted_at = utcnow() - timedelta(hours=100)
    session.commit()
    auth.login("supervisor")
    page = client.get("/approvals/").get_data(as_text=True)
    assert 'class="aged-72"' in page and "over 72 h</span>" in page and "4 days 4 h" in page


def test_review_times_keep_drafting_apart_from_review(session, factory):
    now = utcnow()
    boss = factory.staffer(role="supervisor")

    def letter(created_days_ago: float, submitted_days_ago: float, decided_days_ago: float | None):
        v, _ = _in_review(session, factory)
        v.letter.created_at = now - timedelta(days=created_days_ago)
        v.submitted_at = now - timedelta(days=submitted_days_ago)
        if decided_days_ago is not None:
            letters.approve(session, v.id, actor_id=boss.id)
            v.decided_at = now - timedelta(days=decided_days_ago)
        return v

    letter(10, 8, 5)  # 2 days to draft, 3 in review
    letter(20, 16, 12)  # 4 and 4
    letter(30, 24, 23)  # 6 and 1
    letter(9, 3, None)  # 6 to draft; waiting 3 days
    letter(200, 150, 140)  # outside the 90 days: not counted
    session.flush()
    times = review_times(session, now=now)
    assert times.drafted == 4 and times.draft_median_days == pytest.approx(5.0)  # 2, 4, 6, 6
    assert times.decided == 3 and times.review_median_days == pytest.approx(3.0)  # 1, 3, 4
    assert times.waiting == 1 and times.oldest_waiting_days == pytest.approx(3.0)
    empty = review_times(session, now=now + timedelta(days=400))
    assert empty.decided == 0 and empty.review_median_days is None


def test_the_dashboard_shows_days_to_draft_and_days_in_review(client, auth, session, factory):
    v, _ = _in_review(session, factory)
    v.letter.created_at = utcnow() - timedelta(days=2, hours=1)
    v.submitted_at = utcnow() - timedelta(days=1, hours=12)
    session.commit()
    auth.login("supervisor")
    page = client.get("/dashboard/").get_data(as_text=True)
    assert 'id="days-to-draft">0.5<' in page and 'id="days-in-review">—<' in page
    assert 'id="oldest-in-review">1.5<' in page


# --- 5. Delegation -------------------------------------------------------------------------------------

def _delegate(session, factory, *, hours_from: float = -1, hours_until: float = 48):
    boss = factory.staffer(role="supervisor", name="Maria Alvarez")
    stand_in = factory.staffer(role="correspondent", name="Sam Rivera")
    now = utcnow()
    made = delegation.delegate_approval(session, delegate_id=stand_in.id, actor_id=boss.id,
                                        starts_at=now + timedelta(hours=hours_from),
                                        ends_at=now + timedelta(hours=hours_until))
    return boss, stand_in, made


def test_a_delegate_decides_on_behalf_of_the_supervisor(session, factory):
    boss, stand_in, _made = _delegate(session, factory)
    v, author = _in_review(session, factory)
    assert letters.may_review(session, stand_in.id)
    letters.approve(session, v.id, actor_id=stand_in.id)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "letter_version.approve"))
    assert event.actor_id == stand_in.id and event.on_behalf_of_id == boss.id
    assert event.detail == "on behalf of Maria Alvarez" and event.after["on_behalf_of"] == boss.id
    assert notices.notices_for(session, author.id)[0].text.startswith("Sam Rivera (for Maria Alvarez) approved")

    w, _ = _in_review(session, factory)
    letters.request_changes(session, w.id, comment="Shorter.", actor_id=stand_in.id)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "letter_version.request_changes"))
    assert event.detail == "on behalf of Maria Alvarez: Shorter." and event.on_behalf_of_id == boss.id
    # Never their own version.
    own, _ = _in_review(session, factory, author=stand_in)
    with pytest.raises(PermissionDenied, match="own version"):
        letters.approve(session, own.id, actor_id=stand_in.id)


def test_a_delegation_only_works_in_its_range_and_while_the_supervisor_is(session, factory):
    boss, stand_in, made = _delegate(session, factory, hours_from=24, hours_until=72)
    v, _ = _in_review(session, factory)
    with pytest.raises(PermissionDenied, match="only a supervisor"):  # not yet
        letters.approve(session, v.id, actor_id=stand_in.id)
    assert delegation.active_delegation(session, stand_in.id, now=utcnow() + timedelta(hours=30)) is not None
    assert delegation.active_delegation(session, stand_in.id, now=utcnow() + timedelta(hours=73)) is None
    made.starts_at = utcnow() - timedelta(hours=1)
    session.flush()
    assert letters.may_review(session, stand_in.id)
    boss.active = False  # a deactivated supervisor lends nothing
    session.flush()
    assert not letters.may_review(session, stand_in.id)
    boss.active = True
    delegation.end_delegation(session, made.id, actor_id=boss.id)
    assert not letters.may_review(session, stand_in.id)
    with pytest.raises(PermissionDenied):
        letters.approve(session, v.id, actor_id=stand_in.id)
    assert {"approval_delegation.create", "approval_delegation.end"} <= set(session.scalars(select(AuditEvent.action)))


def test_who_may_delegate_to_whom(session, factory):
    boss, lc, other_boss = (factory.staffer(role="supervisor"), factory.staffer(role="correspondent"),
                            factory.staffer(role="supervisor"))
    caseworker, gone = factory.staffer(role="caseworker"), factory.staffer(role="correspondent", active=False)
    now = utcnow()
    day = timedelta(days=1)
    with pytest.raises(PermissionDenied):  # a correspondent cannot hand on approval they do not have
        delegation.delegate_approval(session, delegate_id=caseworker.id, actor_id=lc.id, starts_at=now,
                                     ends_at=now + day)
    with pytest.raises(ValidationFailed, match="approves letters already"):
        delegation.delegate_approval(session, delegate_id=other_boss.id, actor_id=boss.id, starts_at=now,
                                     ends_at=now + day)
    with pytest.raises(ValidationFailed, match="active staffer"):
        delegation.delegate_approval(session, delegate_id=gone.id, actor_id=boss.id, starts_at=now, ends_at=now + day)
    with pytest.raises(ValidationFailed, match="already over"):
        delegation.delegate_approval(session, delegate_id=lc.id, actor_id=boss.id, starts_at=now - 3 * day,
                                     ends_at=now - day)
    with pytest.raises(ValidationFailed, match="at most"):
        delegation.delegate_approval(session, delegate_id=lc.id, actor_id=boss.id, starts_at=now,
                                     ends_at=now + 200 * day)
    delegation.delegate_approval(session, delegate_id=caseworker.id, actor_id=boss.id, starts_at=now, ends_at=now + day)
    with pytest.raises(ValidationFailed, match="already approves for you"):
        delegation.delegate_approval(session, delegate_id=caseworker.id, actor_id=boss.id, starts_at=now,
                                     ends_at=now + 2 * day)
    made = delegation.delegate_approval(session, delegate_id=lc.id, actor_id=boss.id, starts_at=now, ends_at=now + day)
    with pytest.raises(PermissionDenied, match="who gave it"):
        delegation.end_delegation(session, made.id, actor_id=other_boss.id)
    assert [s.id for s in delegation.delegate_candidates(session)] == sorted(
        [lc.id, caseworker.id], key=lambda i: session.get(type(lc), i).name)


def test_the_approval_routes_let_an_active_delegate_through_and_no_one_else(client, auth, session, factory):
    boss = factory.staffer(role="supervisor", name="Maria Alvarez")
    session.commit()
    me = auth.login("correspondent")
    assert client.get("/approvals/").status_code == 403
    assert 'id="delegate-approvals"' not in client.get("/inbox/").get_data(as_text=True)
    delegation.delegate_approval(session, delegate_id=me.id, actor_id=boss.id, starts_at=utcnow() - timedelta(hours=1),
                                 ends_at=utcnow() + timedelta(days=1))
    v, _ = _in_review(session, factory)
    session.commit()
    queue = client.get("/approvals/")
    page = queue.get_data(as_text=True)
    assert queue.status_code == 200 and "You approve on behalf of Maria Alvarez" in page
    assert 'id="delegate-form"' not in page  # a delegate does not hand approval on
    assert 'id="delegate-approvals"' in client.get("/inbox/").get_data(as_text=True)
    token = auth.csrf("/approvals/")
    assert client.post("/approvals/delegations", data={"csrf_token": token, "delegate_id": str(me.id),
                                                       "starts_on": "2030-01-01", "ends_on": "2030-01-02"}
                       ).status_code == 403
    assert 'id="approve"' in client.get(f"/letters/versions/{v.id}").get_data(as_text=True)
    assert client.post(f"/letters/versions/{v.id}/approve", data={"csrf_token": token}).status_code == 303
    _fresh(session)
    assert session.get(LetterVersion, v.id).state == VersionState.APPROVED
    # The exception covers only the queue: the supervisor-only pages stay closed.
    assert client.get("/dashboard/").status_code == 403


def test_a_supervisor_delegates_and_ends_it_from_the_approvals_page(client, auth, session, factory, settings):
    stand_in = factory.staffer(role="caseworker", name="Lee Park")
    session.commit()
    boss = auth.login("supervisor")
    token = auth.csrf("/approvals/")
    today = datetime.now(settings.zone).date()
    bad = client.post("/approvals/delegations", data={"csrf_token": token, "delegate_id": str(stand_in.id),
                                                      "starts_on": "soon", "ends_on": today.isoformat()},
                      follow_redirects=True)
    assert "first day: give a date" in bad.get_data(as_text=True)
    made = client.post("/approvals/delegations", follow_redirects=True, data={
        "csrf_token": token, "delegate_id": str(stand_in.id), "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=2)).isoformat()})
    assert "Lee Park may approve letters on your behalf" in made.get_data(as_text=True)
    _fresh(session)
    row = delegation.active_delegation(session, stand_in.id)
    assert row is not None and row.supervisor_id == boss.id
    # The range is whole days in the office's time zone: to the end of the last day.
    end_local = row.ends_at.astimezone(settings.zone)
    assert end_local.date() == today + timedelta(days=3) and (end_local.hour, end_local.minute) == (0, 0)
    ended = client.post(f"/approvals/delegations/{row.id}/end", data={"csrf_token": token}, follow_redirects=True)
    assert "Delegation ended." in ended.get_data(as_text=True)
    _fresh(session)
    assert delegation.active_delegation(session, stand_in.id) is None



# --- In a real browser ----------------------------------------------------------------------------------

def _sign_in(browser, live_server, staffer, password):
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", staffer.email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


@pytest.mark.browser
def test_browser_send_for_review_without_saving_sends_the_typed_text(live_server, browser, factory, session):
    writer = factory.staffer(role="correspondent", name="Devon Carter")
    v = letters.create_letter(session, title="Clean water", body=BODY, actor_id=writer.id)
    session.commit()
    page = _sign_in(browser, live_server, writer, factory.PASSWORD)
    page.goto(f"{live_server}/letters/versions/{v.id}")
    typed = page.input_value("#letter-body").replace("I support the bill.",
                                                     "I support the bill.\n\nI will vote for it this spring.")
    page.fill("#letter-body", typed)
    page.fill("#letter-subject", "Your letter about water")
    page.click("#submit-review")  # not "Save draft" first
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#version-state") == "in review"
    _fresh(session)
    sent = session.get(LetterVersion, v.id)
    assert sent.state == VersionState.IN_REVIEW and sent.subject == "Your letter about water"
    # The browser posted CRLF line endings; the letter is stored with "\n" and has four paragraphs.
    assert "I will vote for it this spring." in sent.body and "\r" not in sent.body
    assert len(letters.paragraphs(sent.body)) == 4
    assert page.locator("ol.paragraphs > li").count() == 4


@pytest.mark.browser
def test_browser_a_delegate_approves_and_the_writer_is_told(live_server, browser, factory, session):
    boss = factory.staffer(role="supervisor", name="Maria Alvarez")
    stand_in = factory.staffer(role="correspondent", name="Sam Rivera")
    writer = factory.staffer(role="correspondent", name="Devon Carter")
    v, _ = _in_review(session, factory, author=writer)
    session.commit()

    sup = _sign_in(browser, live_server, boss, factory.PASSWORD)
    sup.goto(f"{live_server}/approvals/")
    sup.select_option("#delegate-id", str(stand_in.id))
    sup.click("#delegate-submit")  # today, for one day (the form's defaults)
    sup.wait_for_selector(".flash.ok")
    assert "Sam Rivera may approve letters on your behalf" in sup.inner_text(".flash.ok")
    assert "Sam Rivera" in sup.inner_text("#delegations table")

    sam = _sign_in(browser, live_server, stand_in, factory.PASSWORD)
    sam.click("#delegate-approvals")
    assert "You approve on behalf of Maria Alvarez" in sam.inner_text("#acting-for")
    sam.click("table.approvals a")
    sam.click("#approve")
    sam.wait_for_selector(".flash.ok")
    assert sam.inner_text("#version-state") == "approved"
    _fresh(session)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "letter_version.approve"))
    assert event.actor_id == stand_in.id and event.on_behalf_of_id == boss.id
    assert event.detail == "on behalf of Maria Alvarez"

    devon = _sign_in(browser, live_server, writer, factory.PASSWORD)
    assert devon.inner_text("#notice-badge") == "1"
    devon.click("#notices-link")
    assert "Sam Rivera (for Maria Alvarez) approved" in devon.inner_text("#notices")
    devon.click("#notices .open-notice")
    devon.wait_for_url(f"**/letters/versions/{v.id}")
    assert devon.locator("#notice-badge").count() == 0


def test_the_approve_route_admits_supervisors_and_active_delegates_only(client, auth, session, factory):
    """Approve and request changes have their own routes and role rule (issue 15): a writer is refused at
    the door, an active approval delegate is let through and decides on behalf of their supervisor."""
    boss, stand_in, made = _delegate(session, factory)
    v, author = _in_review(session, factory)
    other, _ = _in_review(session, factory)
    session.commit()
    auth.login("correspondent")  # a writer with no delegation
    token = auth.csrf("/letters/")
    assert client.post(f"/letters/versions/{v.id}/approve", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/letters/versions/{v.id}/request_changes",
                       data={"csrf_token": token, "comment": "shorter"}).status_code == 403
    client.post("/logout", data={"csrf_token": token})

    client.post("/login", data={"email": stand_in.email, "password": factory.PASSWORD,
                                "csrf_token": auth.csrf("/login")})
    token = auth.csrf("/approvals/")
    assert client.post(f"/letters/versions/{v.id}/approve", data={"csrf_token": token}).status_code == 303
    assert client.post(f"/letters/versions/{other.id}/request_changes",
                       data={"csrf_token": token, "comment": "Say when the work starts."}).status_code == 303
    _fresh(session)
    assert session.get(LetterVersion, v.id).state == VersionState.APPROVED
    assert session.get(LetterVersion, other.id).state == VersionState.CHANGES_REQUESTED
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "letter_version.approve"))
    assert event.actor_id == stand_in.id and event.on_behalf_of_id == boss.id
    # A delegate's pass opens the decisions only: retiring a letter stays with supervisors.
    assert client.post(f"/letters/{v.letter_id}/retire", data={"csrf_token": token}).status_code == 403
