"""File import of email: .eml, mbox and Maildir, each item stored once or quarantined with a reason."""

import json
from pathlib import Path

import pytest
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
    assert isinstance(items[0][1], bytes)
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
    assert result.exit_code == 1, result.output  # something failed: a script running the import must notice
    assert "1 item(s) failed" in result.stderr
    summary = json.loads(result.stdout)
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


# --- input that is not an email, and the import's exit code ----------------------------------------

def test_random_bytes_saved_as_eml_are_quarantined_and_the_import_exits_non_zero(settings, session, tmp_path):
    import random

    noise = bytes(random.Random(14).getrandbits(8) for _ in range(2000))
    (tmp_path / "scan-0001.eml").write_bytes(noise)
    (tmp_path / "notes.eml").write_bytes(b"Dear Representative,\n\nPlease fix the bridge on Elm Street.\n")
    (tmp_path / "good.eml").write_bytes(b"From: Ana <ana@example.org>\nSubject: Bridge\nMessage-ID: <g@x>\n\nFix it.\n")
    result = CliRunner().invoke(cli, ["import", "eml", str(tmp_path)], env=cli_env(settings))
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert (summary["received"], summary["quarantined"], summary["failed"]) == (3, 2, 0)
    assert "were quarantined" in result.stderr
    session.expire_all()
    held = list(session.scalars(select(Message).where(Message.status == MessageStatus.QUARANTINED)))
    assert {m.subject for m in held} == {"(not an email)"}
    assert len(held) == 2 and all(m.status_reason.startswith("decode: not an email: ") for m in held)
    assert all(not m.body_text and m.raw_sha256 for m in held)  # kept as it came; no mojibake "message" made of it
    good = session.scalar(select(Message).where(Message.subject == "Bridge"))
    assert good.status != MessageStatus.QUARANTINED and good.body_text == "Fix it."


def test_a_clean_import_exits_zero(settings, tmp_path):
    (tmp_path / "a.eml").write_bytes(b"From: Bo <bo@example.org>\nSubject: Parks\nMessage-ID: <p@x>\n\nMore parks.\n")
    result = CliRunner().invoke(cli, ["import", "eml", str(tmp_path)], env=cli_env(settings))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["received"] == 1


def test_what_is_and_is_not_an_email():
    from intake.mail import not_an_email

    for name in ("binary-garbage.eml", "not-an-email.eml", "zero-bytes.eml"):
        assert not_an_email((MAIL / name).read_bytes()), name
    kept = [p.name for p in sorted(MAIL.iterdir()) if p.name not in
            ("binary-garbage.eml", "not-an-email.eml", "zero-bytes.eml") and not_an_email(p.read_bytes())]
    assert kept == []  # every odd but real email of the corpus is still read as one
    assert not_an_email(b"From sender@example.org Mon Jan  1 00:00:00 2026\nFrom: a@b.org\nSubject: x\n\nhi\n") is None
    assert not_an_email(b"Subject: folded\n  over two lines\nFrom: a@b.org\n\nbody") is None
    assert "does not start with header lines" in (not_an_email(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n") or "")


# --- the sender's address from their signature block -----------------------------------------------

SIGNED = ("From: Ana Lopez <ana.lopez@example.org>\nSubject: The Elm Street bridge\nMessage-ID: <{n}@sig>\n\n"
          "Please repair the bridge before winter.\n\nThank you,\nAna Lopez\n{signature}\n")


def _import_signed(database, tmp_path, n, signature, sender="ana.lopez@example.org"):
    from intake.pipeline import Rules

    path = tmp_path / f"signed-{n}.eml"
    path.write_text(SIGNED.format(n=n, signature=signature).replace("ana.lopez@example.org", sender))
    reader, adapter = file_adapter("eml")
    return import_items(database, reader([path]), adapter, source="t", max_bytes=1_000_000,
                        rules=Rules(district_zips=frozenset({"43215"})))


@pytest.mark.parametrize(("signature", "expected"), [
    ("482 Maple Ave\nColumbus, OH 43215", ("482 Maple Ave", None, "Columbus", "OH", "43215", None)),
    ("482 Maple Ave, Columbus, OH 43215-1234", ("482 Maple Ave", None, "Columbus", "OH", "43215", "1234")),
    ("17 Oak Street\nApt 4B\nDayton OH 45402", ("17 Oak Street", "Apt 4B", "Dayton", "OH", "45402", None)),
    ("PO Box 123\nDayton, OH 45402", ("PO Box 123", None, "Dayton", "OH", "45402", None)),
])
def test_a_signature_block_fills_a_new_senders_address(database, session, tmp_path, signature, expected):
    _import_signed(database, tmp_path, 1, signature)
    message = session.scalars(select(Message)).one()
    person = message.constituent
    assert (person.address1, person.address2, person.city, person.state, person.zip5, person.zip4) == expected
    assert message.facts["signature_address"]["zip5"] == expected[4]
    # District placement follows from the ZIP it found.
    assert person.district_status.value == ("in_district" if expected[4] == "43215" else "out_of_district")


@pytest.mark.parametrize("signature", [
    "Columbus, OH 43215",  # a city line alone is not an address
    "2 children\nColumbus, OH 43215",  # a number and a word is not a street
    "482 Maple Ave\nColumbus, ZZ 43215",  # no such state
    "Sent from my iPhone",
    "Call me at (614) 555-0100",
])
def test_what_is_not_an_address_fills_nothing(database, session, tmp_path, signature):
    _import_signed(database, tmp_path, 2, signature)
    person = session.scalars(select(Message)).one().constituent
    assert (person.address1, person.zip5) == (None, None)
    assert person.district_status.value == "unknown"


def test_an_address_in_the_letter_text_or_a_quoted_reply_is_not_a_signature():
    from intake.mail import address_from_signature

    mentioned = ("I have lived at 482 Maple Ave, Columbus, OH 43215 for twenty years.\nThe bridge is worse "
                 "every spring.\nPlease act.\nThank you,\nAna")
    assert address_from_signature(mentioned) is None
    quoted = ("Thanks,\nAna\n\nOn Mon, Jan 5, 2026 at 10:00 AM Rep. Doe wrote:\n> Office of Rep. Doe\n"
              "> 1600 Pennsylvania Avenue NW\n> Washington, DC 20500")
    assert address_from_signature(quoted) is None
    early = "482 Maple Ave\nColumbus, OH 43215\n\n" + "\n".join(f"Paragraph {i} of a long letter." for i in range(12))
    assert address_from_signature(early) is None  # only the last lines are a signature block


def test_an_existing_record_without_an_address_is_filled_and_audited(database, session, factory, tmp_path):
    from correspondence.models import AuditEvent

    known = factory.constituent(first_name="Ana", last_name="Lopez", email="ana.lopez@example.org", address1=None,
                                city=None, state=None, zip5=None)
    placed = factory.constituent(first_name="Bo", last_name="Ek", email="bo@example.org", address1="1 Main St",
                                 zip5="43085")
    session.commit()
    _import_signed(database, tmp_path, 3, "482 Maple Ave\nColumbus, OH 43215")
    _import_signed(database, tmp_path, 4, "482 Maple Ave\nColumbus, OH 43215", sender="bo@example.org")
    session.expire_all()
    ana = session.get(type(known), known.id)
    assert (ana.address1, ana.city, ana.zip5, ana.district_status.value) == ("482 Maple Ave", "Columbus", "43215",
                                                                               "in_district")
    event = session.scalar(select(AuditEvent).where(AuditEvent.object_type == "constituent",
                                                    AuditEvent.object_id == str(known.id),
                                                    AuditEvent.action == "constituent.edit"))
    assert event.after["zip5"] == "43215" and "signature" in event.detail
    bo = session.get(type(placed), placed.id)
    assert (bo.address1, bo.zip5) == ("1 Main St", "43085")  # an address already on file always wins
