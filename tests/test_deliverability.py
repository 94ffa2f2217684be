"""Deliverability: signed return paths, bounces and complaints, suppression, one-click unsubscribe, DKIM, DNS.

Real parts: the aiosmtpd server of tests/smtp.py (what it received is verified with dkimpy's verifier),
SQLite/PostgreSQL, the blob store, the Flask app. DSNs are inline RFC 822 text built the way servers
write them; the real-Postfix bounce is in tests/test_postfix_bounce.py.
"""

from __future__ import annotations

import dataclasses
import re

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from config import Settings
from constituents import segments
from correspondence.models import (
    AuditEvent,
    Bounce,
    BounceKind,
    BounceState,
    Response,
    ResponseState,
    Suppression,
    SuppressionReason,
)
from correspondence.services.blobs import load_blob
from drafting import letters
from drafting.apply import execute_run, plan, start_run
from drafting.send import send_responses
from outbound import dns as outbound_dns
from outbound.bounces import BouncePolicy, receive_report
from outbound.suppression import restore_address, suppress
from outbound.tokens import (
    response_of_return_path,
    response_of_unsubscribe_token,
    return_path,
    unsubscribe_token,
)
from tests.conftest import TEST_SECRET_KEY, cli_env

BODY = "{{ constituent.salutation }}\n\nThank you for writing about {{ message.subject }}.\n\n{{ office.signature }}"
POLICY = BouncePolicy(TEST_SECRET_KEY, soft_limit=3)


def _approved(session, factory):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title="Water update", body=BODY, actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)
    return v, author


def _answer_and_follow_up(session, factory, database, settings):
    """An answer to Ana's own message and a segment follow-up to Ben: (answer id, follow-up id)."""
    version, author = _approved(session, factory)
    ana = factory.constituent(first_name="Ana", email="ana@example.org", zip5="43001")
    factory.constituent(first_name="Ben", email="ben@example.org", zip5="99901")
    mine = factory.message(constituent_id=ana.id, from_address="ana@example.org", subject="Water",
                           external_id="<ana-1@example.org>")
    segment = segments.save_segment(session, "Far away", segments.parse_filter({"zips": "99901"}),
                                    actor_id=author.id)
    follow = segments.follow_up_messages(session, segment, version.id, "Follow-up: water", actor_id=author.id)
    runs = [start_run(session, version.id, message_ids=[mine.id], actor_id=author.id),
            start_run(session, version.id, message_ids=follow, actor_id=author.id)]
    session.commit()
    queued: list[int] = []
    for run in runs:
        execute_run(database, run.id, settings, enqueue_email=queued.extend)
    answer = session.scalar(select(Response.id).where(Response.to_address == "ana@example.org"))
    follow_up = session.scalar(select(Response.id).where(Response.to_address == "ben@example.org"))
    assert sorted(queued) == sorted([answer, follow_up])
    session.commit()  # end the read: the jobs and requests that follow write in their own sessions
    return answer, follow_up, version, author


def _smtp(settings: Settings, server, **more: object) -> Settings:
    return Settings.from_env({}, **{**settings.__dict__, "smtp_host": "127.0.0.1", "smtp_port": server.port,
                                   "smtp_security": "none", "smtp_rate_per_second": 0.0,
                                   "mail_from": "office@house.example", "public_url": "https://mail.house.example",
                                   **more})


def _dsn(to: str, original_id: str, *, status: str = "5.1.1", action: str = "failed", key: str = "dsn-1",
         recipient: str = "ben@example.org") -> bytes:
    """An RFC 3464 report as Postfix writes one."""
    return f"""From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{key}@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Thu,  3 Dec 2026 16:00:00 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown

--BOUND
Content-Type: text/rfc822-headers

From: office@house.example
To: {recipient}
Message-ID: {original_id}
Subject: Follow-up: water

--BOUND--
""".replace("\n", "\r\n").encode()


def _keypair(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    import base64

    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_tokens_are_signed_and_cannot_stand_in_for_each_other():
    verp = return_path(42, secret_key=TEST_SECRET_KEY, bounce_mailbox="bounces@house.example")
    assert re.fullmatch(r"bounces\+r42-[0-9a-f]{16}@house\.example", verp)
    assert response_of_return_path(verp, secret_key=TEST_SECRET_KEY) == 42
    assert response_of_return_path(verp.upper(), secret_key=TEST_SECRET_KEY) == 42  # a server folded the case
    forged = verp.replace("r42-", "r43-")
    assert response_of_return_path(forged, secret_key=TEST_SECRET_KEY) is None
    assert response_of_return_path(verp, secret_key="another-secret-key-0123456789abcdef") is None
    token = unsubscribe_token(42, secret_key=TEST_SECRET_KEY)
    assert response_of_unsubscribe_token(token, secret_key=TEST_SECRET_KEY) == 42
    # The bounce check is not an unsubscribe token, and the reverse.
    assert response_of_unsubscribe_token(verp.split("+")[1].split("@")[0], secret_key=TEST_SECRET_KEY) is None


def test_each_email_has_its_return_path_follow_ups_have_one_click_unsubscribe_and_dkim_verifies(
        session, factory, database, settings, smtp_server, tmp_path):
    answer, follow_up, _v, _a = _answer_and_follow_up(session, factory, database, settings)
    key_path, public = _keypair(tmp_path)
    cfg = _smtp(settings, smtp_server, dkim_selector="mr2026", dkim_key_path=key_path)
    result = send_responses(database, [answer, follow_up], cfg)
    assert (result.sent, result.failed) == (2, 0)
    by_to = {m["To"]: (m, raw, mail_from) for m, (mail_from, raw)
             in zip(smtp_server.inbox.messages, smtp_server.inbox.received, strict=True)}
    _m, _raw, envelope = by_to["ana@example.org"]
    assert envelope == return_path(answer, secret_key=TEST_SECRET_KEY, bounce_mailbox="bounces@house.example")
    assert by_to["ben@example.org"][2] == return_path(follow_up, secret_key=TEST_SECRET_KEY,
                                                      bounce_mailbox="bounces@house.example")
    # One-click unsubscribe on the follow-up only, never on an answer to a person's own letter.
    assert by_to["ana@example.org"][0]["List-Unsubscribe"] is None
    ben = by_to["ben@example.org"][0]
    token = unsubscribe_token(follow_up, secret_key=TEST_SECRET_KEY)
    assert ben["List-Unsubscribe"] == f"<https://mail.house.example/u/{token}>"
    assert ben["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    def txt(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mr2026._domainkey.house.example."
        return public

    for _message, raw, _from in by_to.values():
        assert dkim.verify(raw, dnsfunc=txt), raw[:400]
    signature = ben["DKIM-Signature"]
    assert "list-unsubscribe" in signature.lower() and "d=house.example" in signature
    # A relay that changes the body breaks the signature (the verifier really checks).
    tampered = by_to["ben@example.org"][1].replace(b"Thank you", b"Thank yuo")
    assert not dkim.verify(tampered, dnsfunc=txt)


def test_a_hard_bounce_marks_the_address_invalid_once_and_is_kept_raw(session, factory, database, settings,
                                                                      smtp_server):
    answer, follow_up, _v, _a = _answer_and_follow_up(session, factory, database, settings)
    cfg = _smtp(settings, smtp_server)
    send_responses(database, [follow_up], cfg)
    session.rollback()  # a fresh snapshot: the send and the requests committed in their own sessions
    sent = session.get(Response, follow_up)
    verp = return_path(follow_up, secret_key=TEST_SECRET_KEY, bounce_mailbox=cfg.bounce_mailbox)
    raw = _dsn(verp, sent.email_message_id)
    bounce, new = receive_report(session, raw, source="file:dsn", policy=POLICY)
    session.commit()
    assert new and (bounce.state, bounce.kind, bounce.status) == (BounceState.APPLIED, BounceKind.HARD, "5.1.1")
    assert bounce.response_id == follow_up and bounce.address == "ben@example.org"
    assert load_blob(session, bounce.raw_sha256) == raw  # stored raw first
    row = session.scalar(select(Suppression).where(Suppression.address == "ben@example.org"))
    assert row.reason == SuppressionReason.INVALID and "User unknown" in row.detail and row.since is not None
    events = session.scalar(select(func.count()).select_from(AuditEvent))

    again, new = receive_report(session, raw, source="imap:bounces", policy=POLICY)
    session.commit()
    assert not new and again.id == bounce.id
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events  # nothing changed twice
    assert session.scalar(select(func.count()).select_from(Bounce)) == 1


def test_reports_that_cannot_be_used_are_quarantined_with_the_reason(session, factory, database, settings):
    answer, follow_up, _v, _a = _answer_and_follow_up(session, factory, database, settings)
    verp = return_path(follow_up, secret_key=TEST_SECRET_KEY, bounce_mailbox="bounces@example.gov")
    forged = re.sub(r"-[0-9a-f]{16}@", "-0123456789abcdef@", verp)
    cases = {
        "forged": _dsn(forged, "<not-ours@example.net>", key="forged"),
        "success": _dsn(verp, "<x@y>", action="delivered", status="2.0.0", key="ok"),
        "junk": b"\x00\xff not an email at all",
        "chatter": b"From: someone@example.net\r\nSubject: hello\r\n\r\nJust saying hi.\r\n",
    }
    reasons = {}
    for name, raw in cases.items():
        bounce, new = receive_report(session, raw, source="file:dsn", policy=POLICY)
        assert new and bounce.state == BounceState.QUARANTINED and bounce.response_id is None
        assert load_blob(session, bounce.raw_sha256) == raw and bounce.reason is not None
        reasons[name] = bounce.reason
    session.commit()
    assert "no letter of ours matches" in reasons["forged"]
    assert "no failed or delayed recipient" in reasons["success"]
    assert "not a delivery report" in reasons["junk"] and "not a delivery report" in reasons["chatter"]
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0  # nobody suppressed by a forgery
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "bounce.quarantined")) == 4


def test_quarantined_reports_are_listed_for_a_person(client, auth, session):
    receive_report(session, b"From: someone@example.net\r\nSubject: hi\r\n\r\nhello\r\n", source="file:dsn",
                   policy=POLICY)
    session.commit()
    auth.login("correspondent")
    page = client.get("/quarantine/").get_data(as_text=True)
    assert 'id="bounce-quarantine"' in page and "not a delivery report Mailroom can read" in page


def test_soft_bounces_count_to_the_threshold_and_complaints_and_other_formats_suppress(
        session, factory, database, settings):
    answer, follow_up, _v, _a = _answer_and_follow_up(session, factory, database, settings)
    ben = session.get(Response, follow_up)
    verp = return_path(follow_up, secret_key=TEST_SECRET_KEY, bounce_mailbox="bounces@example.gov")
    for n in range(1, 4):
        receive_report(session, _dsn(verp, ben.email_message_id, status="4.2.2", action="delayed", key=f"soft{n}"),
                       source="file:dsn", policy=POLICY)
        row = session.scalar(select(Suppression).where(Suppression.address == "ben@example.org"))
        assert row.soft_bounces == n
        assert row.reason == (SuppressionReason.INVALID if n == 3 else None)
    assert "3 temporary failures" in row.detail

    # An ARF complaint (RFC 5965) about Ana's letter: found by the original Message-ID quoted in it.
    ana = session.get(Response, answer)
    arf = f"""From: fbl@isp.example
To: abuse@house.example
Subject: complaint
Message-ID: <arf-1@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B"

--B
Content-Type: text/plain

This is an email abuse report.

--B
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1

--B
Content-Type: text/rfc822-headers

From: office@example.gov
To: ana@example.org
Message-ID: {ana.email_message_id}

--B--
""".replace("\n", "\r\n").encode()
    bounce, _new = receive_report(session, arf, source="file:dsn", policy=POLICY)
    assert (bounce.kind, bounce.response_id) == (BounceKind.COMPLAINT, answer)
    assert session.scalar(select(Suppression.reason).where(Suppression.address == "ana@example.org")) == \
        SuppressionReason.COMPLAINT

    # A non-standard bounce (qmail's words), read by flufl.bounce: a permanent failure.
    other = factory.constituent(email="cy@example.org")
    reply = Response(message_id=factory.message(constituent_id=other.id, from_address="cy@example.org").id,
                     method="email", to_address="cy@example.org", subject="s", body_text="b",
                     email_message_id="<mailroom.0123456789abcdef0123456789abcdef@example.gov>",
                     state=ResponseState.SENT)
    session.add(reply)
    session.flush()
    qmail = (f"From: MAILER-DAEMON@mx.example.org\r\n"
             f"To: {return_path(reply.id, secret_key=TEST_SECRET_KEY, bounce_mailbox='bounces@example.gov')}\r\n"
             "Subject: failure notice\r\nMessage-ID: <q1@mx.example.org>\r\n\r\n"
             "Hi. This is the qmail-send program at mx.example.org.\r\n"
             "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
             "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
             "<cy@example.org>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
             "--- Below this line is a copy of the message.\r\n\r\nSubject: hello\r\n\r\nhi\r\n").encode()
    bounce, _new = receive_report(session, qmail, source="file:dsn", policy=POLICY)
    assert (bounce.state, bounce.kind, bounce.response_id) == (BounceState.APPLIED, BounceKind.HARD, reply.id)
    assert session.scalar(select(Suppression.reason).where(Suppression.address == "cy@example.org")) == \
        SuppressionReason.INVALID


def test_runs_leave_out_suppressed_people_and_a_restored_address_gets_mail_again(
        session, factory, database, settings, smtp_server):
    version, author = _approved(session, factory)
    people = [factory.constituent(email=f"p{i}@example.org", zip5="99902") for i in range(4)]
    inbound = [factory.message(constituent_id=p.id, from_address=p.primary_email) for p in people]
    suppress(session, "p0@example.org", SuppressionReason.INVALID, detail="550 5.1.1", actor_id=None)
    suppress(session, "P1@example.org", SuppressionReason.COMPLAINT, detail="abuse", actor_id=None)
    suppress(session, "p2@example.org", SuppressionReason.UNSUBSCRIBED, detail="one-click", actor_id=None)
    # Answers to their own letters: the unsubscribed person is still answered; invalid and complaint are not.
    dry = plan(session, [m.id for m in inbound], version_id=version.id)
    assert (dry.letters, dry.counts) == (2, {"suppressed_invalid": 1, "suppressed_complaint": 1})
    # A follow-up: unsubscribed people are left out too.
    segment = segments.save_segment(session, "Everyone here", segments.parse_filter({"zips": "99902"}),
                                    actor_id=author.id)
    assert segments.follow_up_plan(session, segments.SegmentFilter.from_dict(segment.filters))["suppressed_by"] == \
        {"complaint": 1, "invalid": 1, "unsubscribed": 1}
    follow = segments.follow_up_messages(session, segment, version.id, "News", actor_id=author.id)
    dry = plan(session, follow, version_id=version.id)
    assert (dry.letters, dry.counts) == (1, {"suppressed_invalid": 1, "suppressed_complaint": 1,
                                             "suppressed_unsubscribed": 1})
    run = start_run(session, version.id, message_ids=follow, actor_id=author.id)
    session.commit()
    queued: list[int] = []
    done = execute_run(database, run.id, settings, enqueue_email=queued.extend)
    assert done.created_count == 1 and done.counts == dry.counts  # the run did what the dry run said

    # Suppressed after the letter was made (a bounce between the run and the send): it is not sent.
    suppress(session, "p3@example.org", SuppressionReason.INVALID, detail="550", actor_id=None)
    session.commit()
    result = send_responses(database, queued, _smtp(settings, smtp_server))
    assert (result.sent, result.failed) == (0, 1) and smtp_server.inbox.messages == []
    session.rollback()  # a fresh snapshot: the send and the requests committed in their own sessions
    letter = session.get(Response, queued[0])
    assert letter.state == ResponseState.FAILED and "invalid" in letter.last_error

    row = session.scalar(select(Suppression).where(Suppression.address == "p0@example.org"))
    restore_address(session, row.id, actor_id=author.id)
    assert row.reason is None
    assert plan(session, [inbound[0].id], version_id=version.id).letters == 1
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "address.restored"))
    assert event.actor_id == author.id and event.before == {"reason": "invalid", "soft_bounces": 0}


def test_the_profile_shows_a_bounced_address_and_a_person_restores_it(client, auth, session, factory):
    staffer = auth.login("correspondent")
    person = factory.constituent(email="dee@example.org")
    suppress(session, "dee@example.org", SuppressionReason.INVALID, detail="550 5.1.1 User unknown", actor_id=None)
    session.commit()
    page = client.get(f"/constituents/{person.id}").get_data(as_text=True)
    assert "invalid (bounced)" in page and "550 5.1.1 User unknown" in page
    token = auth.csrf(f"/constituents/{person.id}")
    answer = client.post(f"/constituents/{person.id}/contacts", data={"restore": "dee@example.org",
                                                                      "csrf_token": token})
    assert answer.status_code == 303
    session.rollback()  # a fresh snapshot: the send and the requests committed in their own sessions
    assert session.scalar(select(Suppression.reason).where(Suppression.address == "dee@example.org")) is None
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "address.restored"))
    assert event.actor_id == staffer.id
    # Another person's address cannot be restored from this profile.
    suppress(session, "eve@example.org", SuppressionReason.INVALID, detail="x", actor_id=None)
    session.commit()
    client.post(f"/constituents/{person.id}/contacts", data={"restore": "eve@example.org", "csrf_token": token})
    assert session.scalar(select(Suppression.reason).where(Suppression.address == "eve@example.org")) == \
        SuppressionReason.INVALID


def test_one_click_unsubscribe_is_public_idempotent_and_token_checked(app, client, session, factory, database,
                                                                      settings):
    answer, follow_up, _v, _a = _answer_and_follow_up(session, factory, database, settings)
    token = unsubscribe_token(follow_up, secret_key=TEST_SECRET_KEY)
    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and 'id="unsubscribe"' in page.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0  # opening the link does nothing
    # What a mail provider sends (RFC 8058): no cookie, no CSRF token, just the one-click body.
    for _ in range(2):
        done = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    session.rollback()  # a fresh snapshot: the send and the requests committed in their own sessions
    assert session.scalar(select(Suppression.reason).where(Suppression.address == "ben@example.org")) == \
        SuppressionReason.UNSUBSCRIBED
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "address.unsubscribed")) == 1
    wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert client.post(f"/u/{wrong}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert client.get("/u/r999999-0123456789abcdef").status_code == 404
    # Other POSTs still need their CSRF token: only this route is exempt.
    assert client.post("/login", data={"email": "a@b.c", "password": "x"}).status_code == 400


def test_the_unsubscribe_link_is_rate_limited(settings):
    from web import create_app

    app = create_app(dataclasses.replace(settings, rate_limits=(("unsubscribe.client", "3/minute"),
                                                                 ("unsubscribe.global", "off"))))
    client = app.test_client()
    codes = [client.get("/u/r1-0123456789abcdef").status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]


def test_import_dsn_command_and_check_dns_offline(session, factory, database, settings, tmp_path):
    answer, follow_up, _v, _a = _answer_and_follow_up(session, factory, database, settings)
    ben = session.get(Response, follow_up)
    verp = return_path(follow_up, secret_key=TEST_SECRET_KEY, bounce_mailbox=settings.bounce_mailbox)
    folder = tmp_path / "dsn"
    folder.mkdir()
    (folder / "good.eml").write_bytes(_dsn(verp, ben.email_message_id))
    (folder / "bad.eml").write_bytes(b"From: x@y\r\n\r\nnot a report\r\n")
    from workers.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["import", "dsn", str(folder)], env=cli_env(settings))
    assert result.exit_code == 1, result.output  # a quarantined report is said, for scripts to notice
    assert '"applied": 1' in result.output and '"quarantined": 1' in result.output
    again = runner.invoke(cli, ["import", "dsn", str(folder / "good.eml")], env=cli_env(settings))
    assert again.exit_code == 0 and '"duplicate": 1' in again.output
    session.rollback()  # a fresh snapshot: the send and the requests committed in their own sessions
    assert session.scalar(select(Suppression.reason).where(Suppression.address == "ben@example.org")) == \
        SuppressionReason.INVALID

    # Offline (here: a name server that does not answer) it says so and exits 2, never "no records".
    offline = runner.invoke(cli, ["mail", "check-dns", "house.example", "--nameserver", "127.0.0.1:9"],
                            env=cli_env(settings))
    assert offline.exit_code == 2 and "could not reach DNS" in offline.output
    assert "may be offline" in offline.output


@pytest.mark.parametrize(("texts", "words"), [
    (["v=spf1 include:_spf.house.gov -all"], "fails everything else (-all)"),
    (["v=spf1 a mx ~all", "google-site-verification=x"], "soft-fails"),
    (["v=spf1 -all", "v=spf1 ~all"], "2 SPF records"),
    ([], "no SPF record"),
])
def test_spf_record_text_is_read(texts, words):
    assert words in outbound_dns.read_spf(texts)


def test_dmarc_and_dkim_record_text_is_read():
    assert outbound_dns.read_dmarc(["v=DMARC1; p=reject; rua=mailto:d@house.gov"]) == \
        "DMARC found: policy reject, reports to mailto:d@house.gov"
    assert "without a valid policy" in outbound_dns.read_dmarc(["v=DMARC1; p=maybe"])
    assert outbound_dns.read_dmarc(["something else"]) == "no DMARC record (v=DMARC1)"
    assert outbound_dns.read_dkim(["v=DKIM1; k=rsa; p=MIIBIjAN"]) == "DKIM key found (rsa, 8 characters of key)"
    assert outbound_dns.read_dkim(["v=DKIM1; p="]) == "DKIM key revoked (empty p=)"


def test_the_bounce_mailbox_is_polled_into_the_bounce_intake_not_the_inbox(session, factory, database, settings):
    import os
    import tempfile
    from pathlib import Path

    from imapclient import IMAPClient

    from correspondence.models import Message
    from intake.imap import ImapAccount, accounts_from_json, poll_account
    from tests.conftest import need
    from tests.dovecot import Dovecot, find_dovecot
    from workers.jobs import _bounce_store

    need(find_dovecot() is not None, "dovecot is not installed (apt-get install dovecot-imapd)")
    answer, follow_up, _v, _a = _answer_and_follow_up(session, factory, database, settings)
    ben = session.get(Response, follow_up)
    verp = return_path(follow_up, secret_key=TEST_SECRET_KEY, bounce_mailbox=settings.bounce_mailbox)
    base = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-", dir="/tmp"))
    os.chmod(base, 0o755)
    server = Dovecot(base).start()
    try:
        client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
        client.login(server.user, server.password)
        client.append("INBOX", _dsn(verp, ben.email_message_id))
        client.append("INBOX", b"From: a@b.example\r\nSubject: not a bounce\r\nMessage-ID: <n1@b>\r\n\r\nhello\r\n")
        client.logout()
        [account] = accounts_from_json(
            f'[{{"name": "bounces", "host": "127.0.0.1", "port": {server.port}, "username": "{server.user}", '
            f'"password": "{server.password}", "ssl": false, "purpose": "bounces"}}]')
        assert account.purpose == "bounces"
        messages_before = session.scalar(select(func.count()).select_from(Message))
        session.commit()
        for _ in range(2):  # a second poll finds nothing new (flagged), and nothing changes twice
            poll_account(database, account, max_bytes=settings.max_message_bytes,
                         store=_bounce_store(settings, account))
        with pytest.raises(ValueError, match="purpose"):
            ImapAccount.from_dict({"name": "x", "host": "127.0.0.1", "username": "u", "password": "p",
                                   "ssl": False, "purpose": "newsletters"})
    finally:
        server.stop()
    session.rollback()
    states = dict(session.execute(select(Bounce.state, func.count()).group_by(Bounce.state)).all())
    assert states == {BounceState.APPLIED: 1, BounceState.QUARANTINED: 1}
    assert session.scalar(select(func.count()).select_from(Message)) == messages_before  # nothing in the inbox
    assert session.scalar(select(Suppression.reason).where(Suppression.address == "ben@example.org")) == \
        SuppressionReason.INVALID
    assert all(b.source == "imap:bounces" for b in session.scalars(select(Bounce)))


def test_deliverability_settings_are_checked_with_the_variable_named(tmp_path):
    from config.settings import SettingsError

    base = {"SECRET_KEY": TEST_SECRET_KEY, "MAILROOM_INSTANCE_DIR": str(tmp_path)}
    settings = Settings.from_env({**base, "MAILROOM_MAIL_FROM": "Office <office@House.example>"})
    assert (settings.bounce_mailbox, settings.soft_bounce_limit, settings.dkim_key_path) == \
        ("bounces@house.example", 3, None)
    assert Settings.from_env({**base, "MAILROOM_BOUNCE_ADDRESS": "rp@mail.house.example",
                              "MAILROOM_SOFT_BOUNCE_LIMIT": "5"}).bounce_mailbox == "rp@mail.house.example"
    with pytest.raises(SettingsError, match="MAILROOM_BOUNCE_ADDRESS"):
        Settings.from_env({**base, "MAILROOM_BOUNCE_ADDRESS": "bounces+x@house.example"})
    with pytest.raises(SettingsError, match="MAILROOM_SOFT_BOUNCE_LIMIT"):
        Settings.from_env({**base, "MAILROOM_SOFT_BOUNCE_LIMIT": "0"})
    with pytest.raises(SettingsError, match="MAILROOM_DKIM_KEY"):
        Settings.from_env({**base, "MAILROOM_DKIM_KEY": str(tmp_path / "missing.pem"), "MAILROOM_DKIM_SELECTOR": "s"})
    key, _public = _keypair(tmp_path)
    with pytest.raises(SettingsError, match="MAILROOM_DKIM_SELECTOR"):
        Settings.from_env({**base, "MAILROOM_DKIM_KEY": str(key)})
