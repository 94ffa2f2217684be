"""Importing from another system (docs/vendor-import.md): the constituent list through the CSV import, then the
correspondence history onto the matched records (constituents/vendor_import.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from constituents.imports import guess_mapping, run_import, start, upload
from constituents.vendor_import import history_mapping, import_history, parse_when
from correspondence.errors import ValidationFailed
from correspondence.models import (
    AuditEvent,
    Channel,
    Constituent,
    ConstituentEmail,
    Direction,
    Message,
    MessageStatus,
    Role,
    Topic,
)
from tests.conftest import cli_env

DATA = Path(__file__).parent / "data" / "vendor"
OHIO = ZoneInfo("America/New_York")


def _import_people(session, factory, database) -> None:
    admin = factory.staffer(role=Role.ADMIN)
    data = (DATA / "constituents.csv").read_bytes()
    imp = upload(session, data, "constituents.csv", actor_id=admin.id)
    # The documented column names are the ones the import recognises by itself: no mapping to choose.
    assert sorted(guess_mapping(imp.columns).values()) == sorted(
        ["prefix", "first_name", "last_name", "address1", "city", "state", "zip", "email", "phone"])
    start(session, imp.id, guess_mapping(imp.columns), "", actor_id=admin.id)
    session.commit()
    done = run_import(database, imp.id)
    assert (done.created, done.matched, done.bad) == (4, 0, 0)


def _person(session, email: str) -> Constituent:
    return session.scalar(select(Constituent).join(ConstituentEmail).where(ConstituentEmail.address == email))


def test_history_by_vendor_key_lands_on_the_imported_people(session, factory, database):
    _import_people(session, factory, database)
    summary = import_history(database, (DATA / "correspondence.csv").read_bytes(), source="history:iq-export",
                             zone=OHIO, people=(DATA / "constituents.csv").read_bytes())
    session.commit()
    result = summary.as_dict()
    assert (result["imported"], result["duplicates"], result["people_created"], result["bad"]) == (6, 0, 0, 4)
    reasons = dict(summary.bad)
    assert "channel 'Carrier pigeon' is not one Mailroom knows" in reasons[8]
    assert "date 'June 5th' is not a date" in reasons[9]
    assert "constituent key 'C-9999' is not in the constituent file" in reasons[10]
    assert "direction 'Sideways' is not in or out" in reasons[11]

    dana = _person(session, "dana.reyes@example.org")
    theirs = list(session.scalars(select(Message).where(Message.constituent_id == dana.id)
                                  .order_by(Message.received_at)))
    assert [(m.direction, m.channel, m.subject) for m in theirs] == [
        (Direction.INBOUND, Channel.EMAIL, "Clinic funding"),
        (Direction.OUTBOUND, Channel.POSTAL, "Re: Clinic funding")]
    first = theirs[0]
    assert first.received_at == datetime(2024, 3, 18, 13, 14, tzinfo=UTC)  # 9:14 in Ohio, daylight time
    assert first.status == MessageStatus.ARCHIVED and first.processed_at is not None
    assert first.body_text == "Asked the Member to support funding for the county health clinic."
    assert session.get(Topic, first.topic_id).name == "Health" and first.facts["vendor_topic"] == "Health"
    # Maria has no email: her constituent-file facts (name, address, phone) found her record all the same.
    maria = session.scalar(select(Constituent).where(Constituent.last_name == "Okafor"))
    assert session.scalar(select(func.count()).select_from(Message).where(Message.constituent_id == maria.id)) == 2
    assert session.scalar(select(func.count()).select_from(Constituent)) == 4  # nobody new
    quoted = session.scalar(select(Message.body_text).where(Message.subject == "Veterans clinic hours"))
    assert quoted == 'Wrote asking for longer hours at the VA clinic; "please help".'
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "message.received")) == 6
    assert session.scalar(select(AuditEvent.after).where(AuditEvent.action == "history_import.finish"))["imported"] == 6

    again = import_history(database, (DATA / "correspondence.csv").read_bytes(), source="history:iq-export",
                           zone=OHIO, people=(DATA / "constituents.csv").read_bytes())
    assert (again.imported, again.duplicates) == (0, 6)  # the same file twice adds nothing


def test_history_with_the_persons_own_columns_matches_or_creates(session, factory, database):
    _import_people(session, factory, database)
    summary = import_history(database, (DATA / "history-with-people.csv").read_bytes(), source="history:vendor2",
                             zone=OHIO)
    session.commit()
    assert (summary.imported, summary.people_created, len(summary.bad)) == (3, 1, 0)
    dana = _person(session, "dana.reyes@example.org")
    assert session.scalar(select(func.count()).select_from(Message).where(Message.constituent_id == dana.id)) == 2
    ruth = session.scalar(select(Constituent).where(Constituent.last_name == "Bell"))
    assert ruth is not None and ruth.zip5 == "43214"
    call = session.scalar(select(Message).where(Message.constituent_id == ruth.id))
    assert call.channel == Channel.PHONE and session.get(Topic, call.topic_id).name == "Social Welfare"


def test_a_file_without_the_needed_columns_is_refused_with_the_reason(database):
    with pytest.raises(ValidationFailed, match="no direction, channel column"):
        import_history(database, b"Date,Subject,Email\n2024-01-01,Hi,a@example.org\n", source="x", zone=OHIO)
    with pytest.raises(ValidationFailed, match="names nobody"):
        import_history(database, b"Date,Direction,Channel,Subject\n2024-01-01,in,email,Hi\n", source="x", zone=OHIO)
    assert history_mapping(["Date Received", "In/Out", "Contact Type", "Title", "Notes", "Issue"]) == {
        "date": 0, "direction": 1, "channel": 2, "subject": 3, "body": 4, "topic": 5}


def test_dates_in_the_forms_vendors_write():
    assert parse_when("2024-01-15", OHIO) == datetime(2024, 1, 15, 5, 0, tzinfo=UTC)
    assert parse_when("01/15/2024 2:30 PM", OHIO) == datetime(2024, 1, 15, 19, 30, tzinfo=UTC)
    assert parse_when("2024-01-15T10:00:00Z", OHIO) == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    with pytest.raises(ValidationFailed):
        parse_when("15.01.2024", OHIO)


def test_the_command_prints_a_summary_and_exits_1_on_bad_rows(session, factory, database, settings):
    from workers.cli import cli

    _import_people(session, factory, database)
    runner = CliRunner()
    ran = runner.invoke(cli, ["import", "history", str(DATA / "correspondence.csv"), "--people",
                              str(DATA / "constituents.csv")], env=cli_env(settings))
    assert ran.exit_code == 1, ran.output
    summary = json.loads(ran.output.splitlines()[0])
    assert summary["imported"] == 6 and summary["bad"] == 4 and summary["bad_lines"] == [8, 9, 10, 11]
    clean = runner.invoke(cli, ["import", "history", str(DATA / "history-with-people.csv")], env=cli_env(settings))
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["imported"] == 3
