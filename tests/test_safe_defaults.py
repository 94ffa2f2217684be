"""Safe defaults: the least-privileged role for new staff, any valid staff address, a password reset from
the command line, commands that wait for a running app's write lock, and a password typed twice."""

import re
import sqlite3
import threading
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from correspondence.errors import ValidationFailed
from correspondence.models import AuditEvent, Role, Staffer
from correspondence.models.staffer import DEFAULT_ROLE, STAFF_ROLES
from correspondence.passwords import verify_password
from correspondence.services import staff as svc
from tests.conftest import cli_env, csrf_token
from workers.cli import ROLE_CHOICES, cli

SPECIAL_USE = ["devon.carter@mailroom.local", "ana@office.test", "lc@house.example", "it@example.com",
               "o'brien+mail@sub.office.example", "admin@localhost", "josé@bücher.example"]
NOT_ADDRESSES = ["not-an-email", "two@@ats.org", "a..b@x.org", "sp ace@x.org", "x@", "@x.org", "x@-bad-.org",
                 "x@a..org", "a" * 65 + "@x.org"]


def test_the_default_role_is_the_least_privileged():
    assert DEFAULT_ROLE == Role.CORRESPONDENT and STAFF_ROLES[0] == DEFAULT_ROLE and set(STAFF_ROLES) == set(Role)
    assert tuple(r.value for r in STAFF_ROLES) == ROLE_CHOICES  # the CLI spells the same order out


def test_the_new_account_form_chooses_correspondent_unless_told(client, auth, session):
    auth.login(Role.ADMIN)
    page = client.get("/admin/staff").get_data(as_text=True)
    form = page.split("New account", 1)[1]
    selected = re.findall(r'<option selected value="(\w+)"|<option value="(\w+)" selected', form)
    assert [a or b for a, b in selected] == ["correspondent"]
    options = re.findall(r'<option (?:selected )?value="(\w+)"', form)
    assert options == list(ROLE_CHOICES)
    # A form posted without a role (an old bookmark, a script) still gets the least-privileged one.
    created = client.post("/admin/staff", data={"csrf_token": auth.csrf("/admin/staff"), "name": "New Hire",
                                                "email": "new.hire@mailroom.local"})
    assert created.status_code == 302
    session.rollback()
    assert session.scalar(select(Staffer.role).where(Staffer.email == "new.hire@mailroom.local")) == Role.CORRESPONDENT


@pytest.mark.parametrize("address", SPECIAL_USE)
def test_any_valid_address_is_accepted_for_staff(session, address):
    staffer, otp = svc.create_staffer(session, name="Someone", email=address.upper(), role=DEFAULT_ROLE,
                                      actor_id=None)
    assert staffer.email == address.lower() and otp


@pytest.mark.parametrize("address", NOT_ADDRESSES)
def test_what_is_not_an_address_is_refused_with_a_reason(session, address):
    with pytest.raises(ValidationFailed, match="valid email address"):
        svc.create_staffer(session, name="Someone", email=address, role=DEFAULT_ROLE, actor_id=None)


def test_the_staff_form_takes_a_mailroom_local_address(client, auth, session):
    auth.login(Role.ADMIN)
    token = auth.csrf("/admin/staff")
    answer = client.post("/admin/staff", data={"csrf_token": token, "name": "Priya Shah",
                                               "email": "priya.shah@mailroom.local", "role": "supervisor"},
                         follow_redirects=True)
    assert "Created priya.shah@mailroom.local" in answer.get_data(as_text=True)
    refused = client.post("/admin/staff", data={"csrf_token": token, "name": "X", "email": "x@@mailroom.local",
                                                "role": "correspondent"})
    assert refused.status_code == 400 and "not a valid email address" in refused.get_data(as_text=True)


def test_cli_creates_a_correspondent_by_default(settings, session):
    result = CliRunner().invoke(cli, ["staff", "create", "--name", "Lee Park", "--email", "lee@mailroom.local"],
                                env=cli_env(settings))
    assert result.exit_code == 0, result.output
    assert "(correspondent)" in result.output and "One-time password:" in result.output
    session.rollback()
    assert session.scalar(select(Staffer.role).where(Staffer.email == "lee@mailroom.local")) == Role.CORRESPONDENT


def test_reset_password_from_the_command_line(settings, session, factory, app):
    staffer = factory.staffer(role=Role.SUPERVISOR, email="maria@mailroom.local")
    epoch = staffer.session_epoch or 0
    session.commit()
    result = CliRunner().invoke(cli, ["staff", "reset-password", "Maria@mailroom.local"], env=cli_env(settings))
    assert result.exit_code == 0, result.output
    otp = re.search(r"One-time password: (\S+)", result.output).group(1)
    session.expire_all()
    again = session.get(Staffer, staffer.id)
    assert again.must_change_password and verify_password(again.password_hash, otp)
    assert not verify_password(again.password_hash, factory.PASSWORD)
    assert again.session_epoch == epoch + 1  # every session of theirs has ended
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "staffer",
                                                                  AuditEvent.object_id == str(staffer.id))))
    assert {"staffer.password_reset", "staffer.sessions_ended"} <= actions
    # Signing in with it leads straight to choosing a new password.
    client = app.test_client()
    signed_in = client.post("/login", data={"csrf_token": csrf_token(client), "email": "maria@mailroom.local",
                                            "password": otp})
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith("/account/password")
    unknown = CliRunner().invoke(cli, ["staff", "reset-password", "nobody@mailroom.local"], env=cli_env(settings))
    assert unknown.exit_code == 1 and "no staff account for nobody@mailroom.local" in unknown.output


def test_a_writing_command_waits_for_a_running_app_to_finish_writing(settings, session, factory):
    """The embedded mode: the app holds SQLite's write lock for ~2 s (and commits a change) while an
    admin runs `mailroom staff create`; the command waits its turn instead of failing "database is locked"."""
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the write lock being waited for is SQLite's; PostgreSQL locks rows")
    person = factory.constituent(city="Dayton")
    session.commit()
    path = settings.database_url.removeprefix("sqlite:///")
    holding = threading.Event()
    released: list[float] = []

    def app_writing() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE constituents SET city = 'Columbus' WHERE id = ?", (person.id,))
        holding.set()
        time.sleep(2)
        conn.execute("COMMIT")
        released.append(time.monotonic())
        conn.close()

    writer = threading.Thread(target=app_writing)
    writer.start()
    assert holding.wait(10)
    result = CliRunner().invoke(cli, ["staff", "create", "--name", "Colleague", "--email", "colleague@mailroom.local",
                                      "--role", "caseworker"], env=cli_env(settings))
    finished = time.monotonic()
    writer.join()
    assert result.exit_code == 0, result.output
    assert released and finished >= released[0]  # it waited for the lock rather than failing at once
    # BEGIN IMMEDIATE waited inside SQLite (busy_timeout); the command's own retry was not even needed.
    assert "database is busy" not in result.output
    session.expire_all()
    assert session.scalar(select(Staffer.role).where(Staffer.email == "colleague@mailroom.local")) == Role.CASEWORKER
    assert session.scalar(select(person.__class__.city).where(person.__class__.id == person.id)) == "Columbus"


def test_init_prints_the_one_time_password_last_in_a_frame(settings):
    result = CliRunner().invoke(cli, ["init"], env=cli_env(settings))
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").split("\n")
    assert lines[-1].startswith("+-") and lines[-1].endswith("-+")
    framed = lines[lines.index(lines[-1], 0, len(lines) - 1):]
    assert len({len(line) for line in framed}) == 1  # a closed box
    assert any(re.match(r"\| One-time password: \S{12,} +\|", line) for line in framed)
    assert any("admin@mailroom.local" in line for line in framed)


def test_changing_the_password_asks_for_it_twice(client, auth):
    auth.login(Role.CORRESPONDENT, must_change_password=True)
    token = auth.csrf("/account/password")
    page = client.get("/account/password").get_data(as_text=True)
    assert 'name="confirm"' in page and "New password again" in page
    different = client.post("/account/password", data={"csrf_token": token, "current": auth.factory.PASSWORD,
                                                       "new": "a brand new long password",
                                                       "confirm": "a brand new long passwort"})
    assert different.status_code == 400 and "not the same" in different.get_data(as_text=True)
    assert client.get("/inbox/").headers["Location"].endswith("/account/password")  # still a one-time password
    missing = client.post("/account/password", data={"csrf_token": token, "current": auth.factory.PASSWORD,
                                                     "new": "a brand new long password"})
    assert missing.status_code == 400 and "a second time" in missing.get_data(as_text=True)
    same = client.post("/account/password", data={"csrf_token": token, "current": auth.factory.PASSWORD,
                                                  "new": "a brand new long password",
                                                  "confirm": "a brand new long password"})
    assert same.status_code == 302 and client.get("/inbox/").status_code == 200
