import json

from click.testing import CliRunner
from sqlalchemy import func, select

from correspondence.models import (
    LetterVersion,
    Message,
    MessageStatus,
    Response,
    ResponseState,
    Role,
    Staffer,
    VersionState,
)
from tests.conftest import cli_env
from workers.cli import cli


def test_init_creates_admin_once(settings, session):
    runner = CliRunner()
    first = runner.invoke(cli, ["init"], env=cli_env(settings))
    assert first.exit_code == 0, first.output
    assert "One-time password:" in first.output
    second = runner.invoke(cli, ["init"], env=cli_env(settings))
    assert second.exit_code == 0 and "up to date" in second.output
    admins = session.scalars(select(Staffer).where(Staffer.role == Role.ADMIN)).all()
    assert len(admins) == 1 and admins[0].must_change_password


def test_demo_office_and_truth_file(settings, session):
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--messages", "600", "--constituents", "150", "--seed", "3"],
                           env=cli_env(settings))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["messages"] == 600 and summary["campaign"] > summary["organic"] > 0
    assert summary["batching"]["new_batches"] >= 5 and summary["cases"] >= 5
    # The library: a letter per campaign (31) and per everyday topic (9), approved; one more waits for review.
    assert summary["letters"] == 41
    states = dict(session.execute(select(LetterVersion.state, func.count()).group_by(LetterVersion.state)).all())
    assert states == {VersionState.APPROVED: 40, VersionState.IN_REVIEW: 1}
    # Its history: sent answers for older responded mail, each with the letter that answered it.
    answered = session.scalar(select(func.count(Response.id)).where(Response.version_id.is_not(None),
                                                                    Response.state == ResponseState.SENT))
    assert answered == summary["history"] > 50
    assert session.scalar(select(func.count(Response.id)).join(Message, Message.id == Response.message_id)
                          .where(Message.status != MessageStatus.RESPONDED)) == 0
    assert session.scalar(select(func.count(Message.id))) == 600
    with open(summary["truth"]) as fh:
        truth = [json.loads(line) for line in fh]
    assert len(truth) == 600
    campaigns = {t["campaign"] for t in truth if t["campaign"]}
    assert len(campaigns) >= 10
    again = runner.invoke(cli, ["demo", "--messages", "10", "--if-empty"], env=cli_env(settings))
    assert "skipped" in again.output
    assert session.scalar(select(func.count(Message.id))) == 600


def test_the_demo_office_keeps_its_district_zip_list(settings, session, tmp_path):
    """Mail someone adds to the demo office is placed in or out of the district, not "district unknown"."""
    from correspondence.models import Constituent, DistrictStatus
    from correspondence.services.intake_sources import district_zips

    runner = CliRunner()
    assert runner.invoke(cli, ["demo", "--messages", "60", "--constituents", "40", "--seed", "5"],
                         env=cli_env(settings)).exit_code == 0
    zips = district_zips(session)
    inside = set(session.scalars(select(Constituent.zip5).where(
        Constituent.district_status == DistrictStatus.IN_DISTRICT)))
    outside = set(session.scalars(select(Constituent.zip5).where(
        Constituent.district_status == DistrictStatus.OUT_OF_DISTRICT)))
    assert len(zips) >= 20 and inside <= zips and not outside & zips
    home, away = sorted(zips)[0], "90210"
    mail = tmp_path / "mail"
    mail.mkdir()
    for n, code in enumerate((home, away)):
        (mail / f"{n}.eml").write_text(
            f"From: New Writer {n} <new.writer{n}@example.org>\nSubject: Hello\nMessage-ID: <new-{n}@x>\n\n"
            f"Please help.\n\nThanks,\nNew Writer\n12 Main Street\nSomewhere, OH {code}\n")
    done = runner.invoke(cli, ["import", "eml", str(mail)], env=cli_env(settings))
    assert done.exit_code == 0, done.output
    session.rollback()  # a fresh read: the import committed in another connection
    placed = dict(session.execute(select(Constituent.zip5, Constituent.district_status).where(
        Constituent.zip5.in_((home, away)), Constituent.address1 == "12 Main Street")).all())
    assert placed == {home: DistrictStatus.IN_DISTRICT, away: DistrictStatus.OUT_OF_DISTRICT}
    # A second demo run (an office that already keeps a list) leaves the list alone.
    assert runner.invoke(cli, ["demo", "--messages", "5", "--seed", "6"], env=cli_env(settings)).exit_code == 0
    assert district_zips(session) == zips
