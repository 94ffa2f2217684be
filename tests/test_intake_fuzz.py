"""Fuzzing the email path: whatever bytes arrive, they are stored or quarantined, never a crash,
and nothing from a message runs as script in a page."""

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from correspondence.models import Message, Role
from intake.importer import import_items
from intake.mail import incoming_email, parse_email
from intake.registry import file_adapter

MAIL = Path(__file__).parent / "data" / "mail"

HEADER_NAMES = st.sampled_from(["From", "To", "Subject", "Date", "Message-ID", "Content-Type",
                                "Content-Transfer-Encoding", "MIME-Version", "Content-Disposition", "X-Junk"])
HEADER_VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["multipart/mixed; boundary=\"b\"", "text/html; charset=x-bogus", "base64", "quoted-printable",
                     "=?utf-8?b?w6k=?=", "=?bad?q?=ZZ?=", "<a@b>", "Mon, 99 Xyz 2026", "attachment; filename=\"a\""]),
)
EMAILS = st.builds(
    lambda headers, body: ("".join(f"{k}: {v}\n" for k, v in headers) + "\n").encode("utf-8", "replace") + body,
    st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8),
    st.one_of(st.binary(max_size=400), st.text(max_size=400).map(lambda t: t.encode("utf-8", "replace")),
              st.just(b"--b\nContent-Type: text/plain\n\nx\n--b--\n")),
)


@settings(max_examples=300, deadline=None)
@given(EMAILS)
def test_parser_never_raises(raw):
    parsed = parse_email(raw)
    assert isinstance(parsed.text, str) and isinstance(parsed.subject, str)
    item = incoming_email(raw, "fuzz")
    assert item.key and len(item.key) <= 255


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(EMAILS, min_size=1, max_size=5))
def test_every_fuzzed_item_is_stored_or_quarantined(database, raws):
    reader_items = [(f"fuzz#{i}", raw) for i, raw in enumerate(raws)]
    summary = import_items(database, reader_items, incoming_email, source="fuzz", max_bytes=1_000_000)
    assert summary.failed == 0
    assert summary.received + summary.duplicates == len(raws)


def test_no_script_from_the_corpus_reaches_a_page(client, auth, database, session):
    reader, adapter = file_adapter("eml")
    import_items(database, reader([str(MAIL)]), adapter, source="corpus", max_bytes=1_000_000)
    auth.login(Role.CORRESPONDENT)
    ids = session.scalars(select(Message.id)).all()
    assert len(ids) >= 50
    for message_id in ids:
        response = client.get(f"/messages/{message_id}")
        assert response.status_code == 200, message_id
        html = response.get_data(as_text=True)
        body = re.split(r"<main[^>]*>", html, maxsplit=1)[1].split("</main>", 1)[0]
        assert "<script" not in body.lower(), message_id
        assert not re.search(r"<[^>]+\son\w+\s*=", body, re.IGNORECASE), message_id
        assert not re.search(r"""(href|src)\s*=\s*["']?\s*(javascript|data):""", body, re.IGNORECASE), message_id
        assert "<iframe" not in body.lower() and "<form action=\"https://evil" not in body
        assert "tracker.example" not in body.split('class="html-original"', 1)[-1].split("</div>", 1)[0]
