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
