"""Outbound fixes (issue 17): one count of unsolicited pieces for the dry runs and the start, plain refusal
words, the unsubscribe link's own rate limit, DKIM by OpenSSL on a cached key, the no-SMTP banner at 0,
the send path's suppressions read per chunk, and "split at 499".

Real parts: SQLite/PostgreSQL, Redis (the rate limits), aiosmtpd, dkimpy's verifier, the Flask app.
"""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import date

import dkim
import pytest
from sqlalchemy import event, select

from constituents import segments
from correspondence.errors import PermissionDenied, ValidationFailed
from correspondence.models import (
    AuditEvent,
    Constituent,
    Response,
    ResponseState,
    SuppressionReason,
)
from drafting import letters
from drafting.apply import execute_run, plan, start_run
from drafting.send import send_responses
from outbound import franking, sending
from outbound.suppression import suppress
from tests.test_deliverability import _keypair, _smtp

BODY = ("{{ constituent.salutation }}\n\nThe water bill passed the House today. It protects the river and keeps "
        "rates low for families across the district.\n\n{{ office.signature }}")
TODAY = date(2026, 6, 1)
RULES = franking.Rules(threshold=3, blackout_days=90, timezone="UTC")


def _letter(session, factory, title: str = "Water bill passed"):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title=title, body=BODY, actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)
    return v, author


def _mixed_segment(session, factory, author, zip5: str):
    """Nine people the way a real segment is: email, post only, nothing, suppressed in three ways, an
    address in upper case, and one who already had the letter."""
    for i in range(3):
        factory.constituent(email=f"m{zip5}-{i}@example.org", zip5=zip5)
    factory.constituent(email=None, zip5=zip5, address1="1 Main St")  # post
    factory.constituent(email=None, zip5=zip5, address1=None)  # nothing to send to
    factory.constituent(email=f"UPPER{zip5}@Example.org", zip5=zip5)
    for reason in (SuppressionReason.INVALID, SuppressionReason.COMPLAINT, SuppressionReason.UNSUBSCRIBED):
        factory.constituent(email=f"{reason.value}{zip5}@example.org", zip5=zip5, address1="2 Main St")
        suppress(session, f"{reason.value}{zip5}@example.org", reason, detail=None, actor_id=None)
    suppress(session, f"upper{zip5}@example.org", SuppressionReason.UNSUBSCRIBED, detail=None, actor_id=None)
    return segments.save_segment(session, f"ZIP {zip5}", segments.parse_filter({"zips": zip5}), actor_id=author.id)


def test_the_follow_up_dry_run_the_apply_dry_run_and_the_refusal_count_the_same_pieces(session, factory):
    version, author = _letter(session, factory)
    segment = _mixed_segment(session, factory, author, "99861")
    flt = segments.SegmentFilter.from_dict(segment.filters)
    dry = segments.follow_up_plan(session, flt, rules=RULES, version=version, today=TODAY)
    verdict = dry["franking"]
    assert isinstance(verdict, franking.Verdict)
    # 3 by email and 1 by post; the suppressed (any reason stops a follow-up) and the unreachable make none.
    assert verdict.pieces == 4 and verdict.needs_approval
    assert (dry["email"], dry["print"], dry["no_address"]) == (3, 1, 1)
    ids = segments.follow_up_messages(session, segment, version.id, "Follow-up: water", actor_id=author.id)
    walked = plan(session, ids, version_id=version.id, rules=RULES, today=TODAY)
    assert walked.franking.pieces == walked.letters == 4
    with pytest.raises(PermissionDenied) as refused:
        start_run(session, version.id, message_ids=ids, actor_id=author.id, rules=RULES, today=TODAY)
    said = re.search(r"make ([\d,]+) nearly identical letters", str(refused.value))
    assert said and int(said.group(1)) == 4
    # Plain words: no "not started:" (the page adds "Not sent: " in front), and what to do next.
    assert not str(refused.value).lower().startswith("not started")
    assert "An administrator must first record the advisory opinion" in str(refused.value)


def test_the_count_leaves_out_people_who_had_the_letter_and_messages_already_answered(
        session, factory, database, settings):
    version, author = _letter(session, factory)
    for i in range(2):
        factory.constituent(email=f"again{i}@example.org", zip5="99862")
    segment = segments.save_segment(session, "Again", segments.parse_filter({"zips": "99862"}), actor_id=author.id)
    ids = segments.follow_up_messages(session, segment, version.id, "Follow-up", actor_id=author.id)
    run = start_run(session, version.id, message_ids=ids, actor_id=author.id, rules=RULES, today=TODAY)
    session.commit()
    execute_run(database, run.id, settings)
    session.rollback()
    factory.constituent(email="late@example.org", zip5="99862")
    flt = segments.SegmentFilter.from_dict(segment.filters)
    again = segments.follow_up_plan(session, flt, rules=RULES, version=version, today=TODAY)
    assert isinstance(again["franking"], franking.Verdict) and again["franking"].pieces == 1
    assert (again["email"], again["already_sent"]) == (1, 2)  # the page says who already has it
    more = segments.follow_up_messages(session, segment, version.id, "Follow-up", actor_id=author.id)
    assert franking.unsolicited_pieces(session, more, letter_id=version.letter_id) == 1
    assert franking.unsolicited_pieces(session, ids, letter_id=version.letter_id) == 0  # answered already


def test_split_at_the_threshold_sends_only_the_first_pieces_with_the_warning_audited(session, factory):
    version, author = _letter(session, factory)
    for i in range(5):
        factory.constituent(email=f"split{i}@example.org", zip5="99863")
    segment = segments.save_segment(session, "Split", segments.parse_filter({"zips": "99863"}), actor_id=author.id)
    ids = segments.follow_up_messages(session, segment, version.id, "Follow-up", actor_id=author.id)
    kept, left_out = franking.split_at_threshold(session, ids, letter_id=version.letter_id, rules=RULES,
                                                 today=TODAY, actor_id=author.id)
    assert (len(kept), left_out) == (3, 2) and kept == sorted(ids)[:3]
    run = start_run(session, version.id, message_ids=kept, actor_id=author.id, rules=RULES, today=TODAY)
    assert run.total == 3
    audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "mass_mail.split"))
    assert audit.actor_id == author.id and audit.after["pieces"] == 3 and audit.after["left_out"] == 2
    assert "does not make the mailing compliant" in audit.detail
    from correspondence.services.history import describe

    assert "sent only the first 3 letters" in describe(session, [audit])[0].sentence


def test_split_refuses_when_the_family_has_used_the_year_already(session, factory, database, settings):
    version, author = _letter(session, factory)
    for i in range(3):
        factory.constituent(email=f"full{i}@example.org", zip5="99864")
    segment = segments.save_segment(session, "Full", segments.parse_filter({"zips": "99864"}), actor_id=author.id)
    ids = segments.follow_up_messages(session, segment, version.id, "Follow-up", actor_id=author.id)
    today = date.today()
    run = start_run(session, version.id, message_ids=ids, actor_id=author.id, rules=RULES, today=today)
    session.commit()
    execute_run(database, run.id, settings)
    session.rollback()
    factory.constituent(email="one-more@example.org", zip5="99864")
    more = segments.follow_up_messages(session, segment, version.id, "Follow-up", actor_id=author.id)
    with pytest.raises(ValidationFailed, match="none can go out without the advisory opinion"):
        franking.split_at_threshold(session, more, letter_id=version.letter_id, rules=RULES, today=today,
                                    actor_id=author.id)


def test_the_follow_up_page_offers_the_split_and_the_post_sends_only_the_first(session, factory, settings):
    from tests.conftest import Auth
    from web import create_app

    app = create_app(dataclasses.replace(settings, mass_mail_threshold=3))
    try:
        client = app.test_client()
        auth = Auth(client, factory, session)
        version, author = _letter(session, factory)
        for i in range(5):
            factory.constituent(email=f"web-split{i}@example.org", zip5="99865")
        segment = segments.save_segment(session, "Web split", segments.parse_filter({"zips": "99865"}),
                                        actor_id=author.id)
        session.commit()
        auth.login("correspondent")
        page = client.get(f"/constituents/segments/{segment.id}/follow-up").get_data(as_text=True)
        assert 'id="franking-split"' in page and "does not make" in page and "Send only the first 3 letters" in page
        assert 'id="franking-packet"' not in page  # the packet is for supervisors and admins
        token = auth.csrf(f"/constituents/segments/{segment.id}/follow-up")
        refused = client.post(f"/constituents/segments/{segment.id}/follow-up",
                              data={"csrf_token": token, "version_id": version.id}, follow_redirects=True)
        text = refused.get_data(as_text=True)
        assert "Not sent: this would make 5 nearly identical letters" in text and "not started" not in text
        sent = client.post(f"/constituents/segments/{segment.id}/follow-up",
                           data={"csrf_token": token, "version_id": version.id, "split": "1"})
        assert sent.status_code == 303 and "/runs/" in sent.headers["Location"]
        session.rollback()
        from correspondence.models import ApplyRun

        run = session.scalar(select(ApplyRun))
        assert run.total == 3
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "mass_mail.split")) is not None
    finally:
        app.extensions["mailroom.db"].dispose()
        app.extensions["mailroom.db_write"].dispose()


def test_the_unsubscribe_link_has_its_own_limit_apart_from_sign_in(settings, redis):
    from web import create_app

    app = create_app(dataclasses.replace(settings, rate_limits=(
        ("unsubscribe.client", "2/minute"), ("unsubscribe.global", "off"),
        ("public.client", "2/minute"), ("public.global", "off"),
        ("login.client", "2/minute"), ("login.global", "off"))))
    try:
        client = app.test_client()
        env = {"REMOTE_ADDR": "198.51.100.9"}
        for _ in range(2):  # spend the sign-in page's and the public budget
            assert client.get("/login", environ_base=env).status_code == 200
        assert client.get("/login", environ_base=env).status_code == 429
        # The unsubscribe link still answers (404: a token for no letter), on its own budget.
        codes = [client.get("/u/r1-0123456789abcdef", environ_base=env).status_code for _ in range(3)]
        assert codes == [404, 404, 429]
    finally:
        app.extensions["mailroom.db"].dispose()
        app.extensions["mailroom.db_write"].dispose()


def test_the_default_unsubscribe_budget_is_larger_than_the_public_one(settings):
    limits = settings.rate_limit_map
    assert limits["unsubscribe.client"] == "600/minute" and limits["public.client"] == "120/minute"


def test_dkim_signing_by_openssl_is_byte_for_byte_dkimpys_and_verifies(tmp_path):
    key_path, public = _keypair(tmp_path)
    key = sending.DkimKey(b"s1", b"house.example", key_path.read_bytes())
    data = (b"From: office@house.example\r\nTo: ana@example.org\r\nSubject: Water\r\n"
            b"Message-ID: <1@house.example>\r\n\r\nThank you for writing.\r\n")
    headers = [b"from", b"to", b"subject", b"message-id"]
    for _ in range(3):  # the t= tag is the second: retry if the two fell either side of one
        second = int(time.time())
        ours = sending.dkim_signature(data, key, headers)
        theirs = dkim.sign(data, b"s1", b"house.example", key.private_key, canonicalize=(b"relaxed", b"relaxed"),
                           include_headers=headers)
        if int(time.time()) == second:
            break
    assert ours == theirs
    assert dkim.verify(ours + data, dnsfunc=lambda name, timeout=5: public)
    assert sending._rsa_key(key.private_key) is sending._rsa_key(key.private_key)  # parsed once


def test_the_no_smtp_banner_shows_only_with_letters_waiting(client, auth):
    auth.login("admin")
    page = client.get("/inbox/").get_data(as_text=True)
    assert 'id="smtp-banner"' not in page and "0 letters waiting" not in page


def test_the_send_path_reads_suppressions_once_per_chunk_and_still_honours_them(
        session, factory, database, settings, smtp_server):
    version, author = _letter(session, factory)
    people = [factory.constituent(email=f"chunk{i}@example.org", zip5="99866") for i in range(6)]
    inbound = [factory.message(constituent_id=p.id, from_address=p.primary_email) for p in people]
    run = start_run(session, version.id, message_ids=[m.id for m in inbound], actor_id=author.id)
    session.commit()
    queued: list[int] = []
    execute_run(database, run.id, settings, enqueue_email=queued.extend)
    suppress(session, "chunk2@example.org", SuppressionReason.INVALID, detail="550", actor_id=None)
    session.commit()
    lookups: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "FROM email_suppressions" in statement:
            lookups.append(statement)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        result = send_responses(database, queued, _smtp(settings, smtp_server))
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    assert (result.sent, result.failed) == (5, 1)
    assert len(lookups) == 1  # one read for the chunk of six, not one per letter
    session.rollback()
    failed = session.scalar(select(Response).where(Response.state == ResponseState.FAILED))
    assert failed.to_address == "chunk2@example.org" and "invalid" in failed.last_error
    assert session.scalar(select(Constituent.id).where(Constituent.zip5 == "99866")) is not None


def test_follow_ups_carry_the_unsubscribe_link_at_their_foot_and_answers_do_not(settings):
    from drafting.send import Outgoing, build_email

    follow_up = build_email(Outgoing("ben@example.org", "News", "Dear Ben,\n\nNews <b>today</b>.", "<f@x>", None, 7,
                                     True), settings)
    answer = build_email(Outgoing("ana@example.org", "Re: water", "Dear Ana,\n\nThanks.", "<a@x>", None, 8, False),
                         settings)
    link = follow_up["List-Unsubscribe"].strip("<>")
    assert link == sending.unsubscribe_url(7, settings)
    assert link in follow_up.get_body(("plain",)).get_content()
    html = follow_up.get_body(("html",)).get_content()
    assert f'<a href="{link}">' in html and "&lt;b&gt;today" in html  # the letter's own text stays escaped
    assert "no more letters" not in answer.get_body(("plain",)).get_content() and answer["List-Unsubscribe"] is None
