"""Issue 12 items 5 and 6 at intake: line breaks out of subjects and names for every adapter, and
hostile lengths that PostgreSQL refuses cut to their columns, so no message is poison.

Run these on PostgreSQL too (TEST_DATABASE_URL): SQLite ignores VARCHAR lengths and hides item 6.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from rq import SimpleWorker
from sqlalchemy import select, text

from correspondence.models import Channel, Constituent, Message, MessageStatus
from correspondence.services.tokens import create_token
from intake.mail import incoming_email
from intake.pipeline import Decode, StageFailed, process_message
from intake.receive import receive
from intake.sanitise import one_line
from intake.social import incoming_social
from workers.queues import PROCESS, get_queue

# Every character str.splitlines() breaks on.
BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
INJECTED = "Hello\r\nBcc: victim@example.org\u2028X-Evil: 1\x85end"
LONG = "Bartholomew-" * 13  # 156 characters: over every name and city column
CWC = (Path(__file__).parent / "data" / "cwc" / "full.xml").read_bytes()


def _token(session):
    _t, plain = create_token(session, name="website", actor_id=None)
    session.commit()
    return {"Authorization": f"Bearer {plain}"}


def _work(redis):
    SimpleWorker([get_queue(PROCESS, redis)], connection=redis).work(burst=True)


def _fresh(session, message_id):
    session.rollback()
    session.expire_all()
    return session.get(Message, message_id)


def _single_line(*values):
    for value in values:
        assert value is not None
        assert not any(ch in value for ch in BREAKS), repr(value)
        assert value.splitlines() == [value]


def test_one_line_removes_every_splitlines_character():
    for ch in BREAKS:
        assert one_line(f"a{ch}b") == "a b"
        assert f"a{ch}b".splitlines() == ["a", "b"]  # the set is exactly the one splitlines uses
    assert one_line(INJECTED) == "Hello Bcc: victim@example.org X-Evil: 1 end"
    assert one_line(None) is None


# --- item 5, one test per adapter -------------------------------------------------------------------

def test_email_subject_and_display_name_lose_line_breaks(session):
    subject = base64.b64encode(INJECTED.encode()).decode()
    name = base64.b64encode("Eve\u2028Evil\x85Doe".encode()).decode()
    raw = (f"From: =?utf-8?b?{name}?= <eve@example.org>\r\nTo: office@house.example\r\n"
           f"Subject: =?utf-8?b?{subject}?=\r\nMessage-ID: <inject@example.org>\r\n\r\nPlease read this.\r\n").encode()
    message = process_message(session, receive(session, incoming_email(raw, "test"), max_bytes=10**6).message_id)
    assert message.status == MessageStatus.NEW
    _single_line(message.subject, message.from_name, message.constituent.first_name, message.constituent.last_name)
    assert message.subject == "Hello Bcc: victim@example.org X-Evil: 1 end"


def test_webform_subject_and_names_lose_line_breaks(client, session, redis, job_env):
    form = {"first_name": "Dana\r\nBcc: a@example.org", "last_name": "Reyes\u2029X", "email": "dana@example.org",
            "subject": INJECTED, "city": "Columbus\x85", "message": "Keep the clinic open."}
    response = client.post("/api/v1/intake/webform", json=form, headers=_token(session))
    assert response.status_code == 202, response.get_json()
    _work(redis)
    m = _fresh(session, response.get_json()["message_id"])
    assert m.status == MessageStatus.NEW and m.processed_at is not None
    c = m.constituent
    _single_line(m.subject, m.from_name, c.first_name, c.last_name, c.city)
    assert c.first_name == "Dana Bcc: a@example.org"


def test_cwc_subject_and_names_lose_line_breaks(client, session, redis, job_env):
    raw = (CWC.replace(b"<FirstName>Rosa", b"<FirstName>Rosa&#13;&#10;Bcc: x@example.org")
           .replace(b"<LastName>Martinez", "<LastName>Martinez\u2028X-Evil: 1".encode())
           .replace(b"<Subject>Hands off", b"<Subject>Hands&#x2029;off&#x85;now"))
    response = client.post("/api/v1/intake/cwc", data=raw, headers=_token(session))
    assert response.status_code == 202, response.get_json()
    _work(redis)
    m = _fresh(session, response.get_json()["message_id"])
    assert m.status == MessageStatus.NEW
    c = m.constituent
    _single_line(m.subject, m.from_name, c.first_name, c.last_name)
    assert m.subject.startswith("Hands off now") and c.last_name == "Martinez X-Evil: 1"


def test_social_author_and_subject_lose_line_breaks(session):
    row = {"author": "Mallory\r\nBcc: all@example.org", "text": "Vote no.", "url": "https://social.example/c/1",
           "platform": "Face\u2028book"}
    item = incoming_social(json.dumps(row).encode(), "test")
    message = process_message(session, receive(session, item, max_bytes=10**6).message_id)
    assert message.channel == Channel.SOCIAL
    _single_line(message.subject, message.from_name)
    assert message.from_name == "Mallory Bcc: all@example.org"


def test_phone_call_subject_and_caller_lose_line_breaks(client, auth, session):
    auth.login("correspondent")
    form = {"csrf_token": auth.csrf("/calls/new"), "kind": "phone", "first_name": "Ann\r\nBcc: x@example.org",
            "last_name": "Lee\x1e", "phone": "614-555-0100", "subject": "Call\u2028Bcc: y@example.org",
            "notes": "Asked about a passport.", "nonce": "c" * 32}
    response = client.post("/calls/new", data=form)
    assert response.status_code == 303
    m = _fresh(session, int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1]))
    _single_line(m.subject, m.from_name, m.constituent.first_name, m.constituent.last_name)


def test_scan_subject_read_by_ocr_is_one_line(session, factory):
    """The postal path sets the subject from OCR text; a separator inside a line does not survive."""
    m = factory.message(channel=Channel.POSTAL, subject="Scanned letter")
    from intake.pipeline import Context
    from intake.scans import Page, ScanText

    scan = ScanText([Page("Jo Writer\n12 Oak St\nColumbus, OH 43215\nSubject: Roads\u2028Bcc: x@example.org", 95.0,
                          "text-layer")])
    # The same statements Decode runs after reading the scan, without needing Tesseract here.
    Decode._apply_scan(m, Context(session), scan)
    _single_line(m.subject, m.from_name)


# --- item 6, hostile lengths on every path ------------------------------------------------------------

def test_webform_with_150_character_fields_is_processed_not_failed(client, session, redis, job_env):
    form = {"prefix": LONG, "first_name": LONG, "last_name": LONG + "z", "street": LONG * 2, "city": LONG,
            "email": "long@example.org", "subject": "S" * 600, "topic": LONG, "message": "Fix the roads."}
    response = client.post("/api/v1/intake/webform", json=form, headers=_token(session))
    assert response.status_code == 202, response.get_json()
    _work(redis)
    m = _fresh(session, response.get_json()["message_id"])
    assert m.status == MessageStatus.NEW and m.processed_at is not None, m.status_reason
    c = m.constituent
    assert (len(c.prefix), len(c.first_name), len(c.last_name), len(c.city), len(c.address1)) == (60, 100, 100,
                                                                                                   100, 200)
    assert len(m.subject) == 500 and len(m.from_name) == 200 and "subject" in m.facts["cut_to_fit"]
    # The full original is kept in the raw submission.
    from correspondence.services.blobs import load_blob
    assert json.loads(load_blob(session, m.raw_sha256) or b"")["first_name"] == LONG


def test_email_with_150_character_display_name_and_huge_subject_is_processed(session, database):
    raw = (f'From: "{LONG} {LONG}" <long@example.org>\r\nTo: office@house.example\r\n'
           f"Subject: {'word ' * 300}\r\nMessage-ID: <long@example.org>\r\n\r\nPlease fix the roads.\r\n").encode()
    message_id = receive(session, incoming_email(raw, "test"), max_bytes=10**6).message_id
    session.commit()
    message = process_message(session, message_id)
    session.commit()
    m = _fresh(session, message_id)
    assert m.status == MessageStatus.NEW and m.processed_at is not None, m.status_reason
    assert len(m.from_name) == 200 and len(m.subject) == 500
    assert message.constituent.first_name is not None and m.constituent.last_name is not None
    assert len(message.constituent.first_name) <= 100 and len(m.constituent.last_name) <= 100


def test_cwc_delivery_with_150_character_fields_is_processed(client, session, redis, job_env):
    raw = CWC
    for tag in (b"FirstName", b"MiddleName", b"LastName", b"City", b"Prefix", b"Suffix", b"Address1",
                b"DeliveryAgent", b"CampaignId"):
        start, end = raw.index(b"<" + tag + b">") + len(tag) + 2, raw.index(b"</" + tag + b">")
        raw = raw[:start] + LONG.encode() * 2 + raw[end:]
    raw = raw.replace(b"<Subject>Hands off Social Security", b"<Subject>" + b"Subject " * 100)
    response = client.post("/api/v1/intake/cwc", data=raw, headers=_token(session))
    assert response.status_code == 202, response.get_json()
    _work(redis)
    m = _fresh(session, response.get_json()["message_id"])
    assert m.status == MessageStatus.NEW and m.processed_at is not None, m.status_reason
    c = m.constituent
    assert (len(c.first_name), len(c.middle_name), len(c.last_name), len(c.city), len(c.suffix)) == (100, 100,
                                                                                                      100, 100, 30)
    assert len(m.subject) == 500 and len(m.delivery_agent) == 300 and len(m.campaign_id) == 200


def test_nul_characters_in_names_are_dropped_not_refused(session):
    item = incoming_email(b"From: Nul\x00Name <nul@example.org>\r\nSubject: a\x00b\r\n"
                          b"Message-ID: <nul@example.org>\r\n\r\nbody\r\n", "test")
    message = process_message(session, receive(session, item, max_bytes=10**6).message_id)
    session.commit()
    assert message.status == MessageStatus.NEW
    assert message.from_name is not None and message.subject is not None
    assert "\x00" not in message.from_name and "\x00" not in message.subject


class _Run:
    """A stage that runs one SQL statement: how a test makes the database itself fail mid-pipeline."""

    name = "probe"

    def __init__(self, sql):
        self.sql = sql

    def process(self, message, ctx):
        ctx.session.execute(text(self.sql))


def test_a_value_the_database_refuses_quarantines_the_message_with_a_reason(session, factory):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite converts any text to a number instead of refusing it; run with TEST_DATABASE_URL")
    m = factory.message()
    session.commit()
    process_message(session, m.id, (_Run("SELECT CAST('not a number' AS INTEGER)"),))
    session.commit()
    m = _fresh(session, m.id)
    assert m.status == MessageStatus.QUARANTINED and m.processed_at is not None
    assert m.status_reason.startswith("probe: the database refused a value of this message (")
    assert "invalid input syntax" in m.status_reason


def test_a_database_failure_that_is_not_the_messages_fault_fails_the_job_for_a_retry(session, factory):
    from sqlalchemy.exc import DataError, DBAPIError

    m = factory.message()
    session.commit()
    with pytest.raises(DBAPIError) as caught:
        process_message(session, m.id, (_Run("SELECT * FROM no_such_table_here"),))
    assert not isinstance(caught.value, DataError)
    m = _fresh(session, m.id)
    assert m.status == MessageStatus.NEW and m.processed_at is None  # untouched: the retry starts afresh


def test_a_lost_connection_on_postgresql_is_retried_not_quarantined(session, factory):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("ending one's own server connection is a PostgreSQL test")
    from sqlalchemy.exc import OperationalError

    m = factory.message()
    session.commit()
    with pytest.raises(OperationalError):
        process_message(session, m.id, (_Run("SELECT pg_terminate_backend(pg_backend_pid())"),))
    session.rollback()
    m = _fresh(session, m.id)
    assert m.status == MessageStatus.NEW and m.processed_at is None


def test_stage_failed_still_quarantines(session, factory):
    class Refuse:
        name = "refuse"

        def process(self, message, ctx):
            raise StageFailed("no")

    m = factory.message()
    process_message(session, m.id, (Refuse(),))
    assert m.status == MessageStatus.QUARANTINED and m.status_reason == "refuse: no"
    assert session.scalar(select(Constituent.id)) is None


def test_two_absurdly_long_sender_addresses_do_not_collide_on_the_email_index(client, session, redis, job_env):
    headers = _token(session)
    ids = []
    for n in (1, 2):
        raw = (CWC.replace(b"a1b2c3d4e5f60718293a4b5c6d7e8f90", f"long-email-{n}".encode())
               .replace(b"Rosa.Martinez@example.net", b"x" * 400 + f"{n}@example.net".encode())
               .replace(b"<Phone>(614) 555-0142</Phone>", b"").replace(b"Martinez", f"Writer{n}".encode()))
        response = client.post("/api/v1/intake/cwc", data=raw, headers=headers)
        assert response.status_code == 202, response.get_json()
        ids.append(response.get_json()["message_id"])
    _work(redis)
    for message_id in ids:
        m = _fresh(session, message_id)
        assert m.status == MessageStatus.NEW and m.processed_at is not None, m.status_reason
        assert len(m.from_address) == 320
