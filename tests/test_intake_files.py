"""File import of email: .eml, mbox and Maildir, each item stored once or quarantined with a reason."""

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from correspondence.models import Message, MessageStatus
from intake.files import iter_maildir, iter_mbox
from intake.importer import import_items
from intake.mail import parse_email
from intake.registry import file_adapter
from tests.conftest import cli_env
from workers.cli import cli

MAIL = Path(__file__).parent / "data" / "mail"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mime4j-testmsgs"


def _import(database, kind, paths, max_bytes=1_000_000):
    reader, adapter = file_adapter(kind)
    return import_items(database, reader(paths), adapter, source=f"file:{kind}", max_bytes=max_bytes)


def _by_subject(session):
    return {m.subject: m for m in session.scalars(select(Message))}


def test_nasty_corpus_is_all_accounted_for(database, session):
    files = sorted(MAIL.iterdir())
    summary = _import(database, "eml", [MAIL])
    assert summary.failed == 0
    assert summary.received + summary.duplicates == len(files)
    messages = _by_subject(session)
    assert len(session.scalars(select(Message)).all()) == summary.received
    plain = messages["Café owners need help"]
    assert plain.from_address == "pat.lopez@example.net" and plain.from_name == "Lopez, Pat"
    assert plain.body_text == "Please support small businesses like my café."  # the quoted reply is gone
    assert plain.constituent.first_name == "Pat" and plain.constituent.last_name == "Lopez"
    assert "Café au lait" in messages["Bad charset"].body_text
    html_only = messages["HTML only"]
    assert html_only.body_text == "Fix the bridge"
    assert "<script" not in html_only.body_html and "onerror" not in html_only.body_html
    nested = messages["Nested"]
    assert nested.body_text == "Inner plain text."
    assert nested.facts["attachments"][0]["filename"] == "winmail.dat"
    assert messages["First"].id != messages["Second"].id  # same Message-ID, different bodies: both kept
    empty = next(m for m in session.scalars(select(Message)) if m.from_address == "empty@example.org")
    assert empty.status == MessageStatus.QUARANTINED and "neither a subject nor any text" in empty.status_reason
    assert messages["Giant header"].body_text == "Body after a giant header."


def test_reimport_creates_nothing(database, session):
    first = _import(database, "eml", [MAIL])
    second = _import(database, "eml", [MAIL])
    assert second.received == 0 and second.duplicates == first.received + first.duplicates
    assert session.scalar(select(func.count(Message.id))) == first.received


def test_oversized_message_is_quarantined_not_dropped(database, session, tmp_path):
    big = tmp_path / "big.eml"
    big.write_bytes(b"From: big@example.org\nSubject: Big\nMessage-ID: <big@x>\n\n" + b"x" * 5000)
    summary = _import(database, "eml", [big], max_bytes=1000)
    assert (summary.received, summary.quarantined) == (1, 1)
    m = session.scalars(select(Message)).one()
    assert m.status == MessageStatus.QUARANTINED and "over the" in m.status_reason


def test_mbox_splits_and_unquotes_from_lines(database, session, tmp_path):
    mbox = tmp_path / "list.mbox"
    mbox.write_bytes(
        b"From alice@example.org Mon Nov  9 10:00:00 2026\nFrom: alice@example.org\nSubject: One\n"
        b"Message-ID: <one@x>\n\nHello\n>From the start of a line.\n\n"
        b"From bob@example.org Mon Nov  9 11:00:00 2026\nFrom: bob@example.org\nSubject: Two\n"
        b"Message-ID: <two@x>\n\nSecond message.\n\n")
    items = list(iter_mbox([mbox]))
    assert len(items) == 2
    assert b"\nFrom the start of a line.\n" in items[0][1]
    summary = _import(database, "mbox", [mbox])
    assert summary.received == 2
    assert set(_by_subject(session)) == {"One", "Two"}


def test_maildir(database, session, tmp_path):
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True)
    (tmp_path / "Maildir" / "new" / "1.eml").write_bytes(b"From: a@x.org\nSubject: New one\n\nBody\n")
    (tmp_path / "Maildir" / "cur" / "2.eml:2,S").write_bytes(b"From: b@x.org\nSubject: Read one\n\nBody\n")
    (tmp_path / "Maildir" / "tmp" / "3").write_bytes(b"From: c@x.org\nSubject: In delivery\n\nBody\n")
    assert len(list(iter_maildir([tmp_path / "Maildir"]))) == 2
    assert _import(database, "maildir", [tmp_path / "Maildir"]).received == 2


def test_shared_mime4j_corpus_every_file_accounted(database):
    if not SHARED.is_dir():
        import pytest

        pytest.skip("shared data not present beside the repository")
    files = [p for p in SHARED.rglob("*") if p.is_file()]
    summary = _import(database, "eml", [SHARED])
    assert summary.failed == 0
    assert summary.received + summary.duplicates == len(files)


def test_cli_summary_for_missing_path(settings, tmp_path):
    env = cli_env(settings)
    result = CliRunner().invoke(cli, ["import", "eml", str(tmp_path / "nope.eml"), str(MAIL / "plain-utf8.eml")],
                                env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary == {"received": 1, "duplicates": 0, "quarantined": 0, "failed": 1,
                       "reasons": {"unreadable: no such file or directory": 1}}


def test_parser_never_raises_on_garbage():
    for blob in (b"", b"\x00\xff" * 100, b"Content-Type: multipart/mixed; boundary=\n\n--\n--",
                 b"Subject: =?x-unknown?b?////?=\n\n"):
        parsed = parse_email(blob)
        assert isinstance(parsed.text, str)


def test_oversized_attachment_is_quarantined_with_reason(database, session, tmp_path):
    import base64

    from intake.pipeline import Rules

    payload = base64.encodebytes(b"x" * 3000).decode()
    (tmp_path / "big-attachment.eml").write_text(
        "From: a@example.org\nSubject: Photos\nMessage-ID: <att@x>\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\nSee the photo.\n"
        "--B\nContent-Type: image/jpeg\nContent-Disposition: attachment; filename=\"photo.jpg\"\n"
        f"Content-Transfer-Encoding: base64\n\n{payload}--B--\n")
    reader, adapter = file_adapter("eml")
    summary = import_items(database, reader([tmp_path]), adapter, source="t", max_bytes=1_000_000,
                           rules=Rules(max_attachment_bytes=1000))
    assert (summary.received, summary.quarantined) == (1, 1)
    m = session.scalars(select(Message)).one()
    assert m.status == MessageStatus.QUARANTINED and "'photo.jpg'" in m.status_reason and "limit" in m.status_reason
