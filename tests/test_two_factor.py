"""Two-factor sign-in: TOTP enrolment and sign-in, replayed and wrong codes, recovery codes, the
enrolment requirement for MAILROOM_REQUIRE_2FA roles, and an admin's reset. Codes come from pyotp,
as an authenticator app would make them."""

from __future__ import annotations

import dataclasses
import re
import time

import pyotp
import pytest
from sqlalchemy import select

from correspondence.errors import ValidationFailed
from correspondence.models import AuditEvent, RecoveryCode, Role, Staffer
from correspondence.services import second_factor
from tests.conftest import csrf_token
from tests.factories import Factory


@pytest.fixture
def strict_app(settings):
    """The app as deployed by default: supervisors (and here not admins, so a test admin can act) must enrol."""
    from web import create_app

    application = create_app(dataclasses.replace(settings, require_2fa=frozenset({"supervisor"})))
    yield application
    application.extensions["mailroom.db"].dispose()
    application.extensions["mailroom.db_write"].dispose()


def _fresh(session) -> None:
    """See what the app committed (the test session may hold no transaction to roll back)."""
    session.rollback()
    session.expire_all()


def _password(client, staffer):
    return client.post("/login", data={"email": staffer.email, "password": Factory.PASSWORD,
                                       "csrf_token": csrf_token(client)})


def _code(client, code: str):
    return client.post("/login/second-factor", data={"code": code,
                                                     "csrf_token": csrf_token(client, "/login/second-factor")})


def _next_code(secret: str) -> str:
    """The code of the next 30-second step: accepted (clock drift), and later than any code used so far."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _enrol(client, session, staffer) -> tuple[str, list[str]]:
    token = csrf_token(client, "/account/two-factor")
    assert client.post("/account/two-factor/app", data={"csrf_token": token}).status_code == 303
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "<svg" in page  # the QR code, inline
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")  # shown in groups of four
    _fresh(session)
    stored = session.get(Staffer, staffer.id).totp_secret
    assert stored and secret not in stored  # kept encrypted
    wrong = client.post("/account/two-factor/app/confirm", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 303
    _fresh(session)
    assert session.get(Staffer, staffer.id).totp_confirmed_at is None  # not on until a right code
    done = client.post("/account/two-factor/app/confirm",
                       data={"csrf_token": token, "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    codes = re.findall(r"<code>([a-z2-7]{4}(?:-[a-z2-7]{4}){3})</code>", done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def _sign_out(client) -> None:
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account/password")})


def test_required_role_must_enrol_before_anything_else_then_signs_in_with_totp(strict_app, factory, session):
    supervisor = factory.staffer(role=Role.SUPERVISOR)
    session.commit()
    client = strict_app.test_client()
    assert _password(client, supervisor).status_code == 302
    for path in ("/inbox/", "/dashboard/", "/constituents/export.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].endswith("/account/two-factor"), path
    secret, _codes = _enrol(client, session, supervisor)
    assert client.get("/inbox/").status_code == 200
    _sign_out(client)

    # Now the password alone is not a session.
    response = _password(client, supervisor)
    assert response.headers["Location"].endswith("/login/second-factor")
    assert client.get("/inbox/").status_code == 302
    assert _code(client, "123456").status_code == 401
    code = _next_code(secret)
    assert _code(client, code).status_code == 302
    assert client.get("/inbox/").status_code == 200

    # The same code, replayed from another browser that knows the password, is refused.
    thief = strict_app.test_client()
    _password(thief, supervisor)
    assert _code(thief, code).status_code == 401
    assert thief.get("/inbox/").status_code == 302


def test_a_correspondent_is_not_made_to_enrol(strict_app, factory, session):
    staffer = factory.staffer(role=Role.CORRESPONDENT)
    session.commit()
    client = strict_app.test_client()
    _password(client, staffer)
    assert client.get("/inbox/").status_code == 200


def test_a_recovery_code_works_once(strict_app, factory, session):
    supervisor = factory.staffer(role=Role.SUPERVISOR)
    session.commit()
    client = strict_app.test_client()
    _password(client, supervisor)
    _secret, codes = _enrol(client, session, supervisor)
    _fresh(session)
    stored = list(session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.staffer_id == supervisor.id)))
    assert len(stored) == 10 and not {c.replace("-", "").upper() for c in codes} & set(stored)  # hashed
    _sign_out(client)
    _password(client, supervisor)
    assert _code(client, codes[3].upper()).status_code == 302  # case and dashes do not matter
    assert client.get("/inbox/").status_code == 200
    _sign_out(client)
    _password(client, supervisor)
    assert _code(client, codes[3]).status_code == 401
    assert client.get("/inbox/").status_code == 302


def test_wrong_codes_are_throttled_like_passwords(strict_app, factory, session):
    supervisor = factory.staffer(role=Role.SUPERVISOR)
    session.commit()
    client = strict_app.test_client()
    _password(client, supervisor)
    secret, _codes = _enrol(client, session, supervisor)
    _sign_out(client)
    attacker = strict_app.test_client()  # knows the password, guesses codes
    _password(attacker, supervisor)
    for guess in range(strict_app.extensions["mailroom.settings"].login_attempts):
        assert _code(attacker, f"{guess:06d}").status_code == 401
    refused = _code(attacker, _next_code(secret))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # The account backs off as a whole: the password step too, so a known password cannot reset it.
    assert _password(attacker, supervisor).status_code == 429


def test_the_second_step_expires(strict_app, factory, session):
    supervisor = factory.staffer(role=Role.SUPERVISOR)
    session.commit()
    client = strict_app.test_client()
    _password(client, supervisor)
    secret, _codes = _enrol(client, session, supervisor)
    _sign_out(client)
    _password(client, supervisor)
    token = csrf_token(client, "/login/second-factor")
    with client.session_transaction() as cookie:
        cookie["pending_2fa"] = dict(cookie["pending_2fa"], at=int(time.time()) - 301)
    response = client.post("/login/second-factor", data={"code": _next_code(secret), "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert client.get("/inbox/").status_code == 302


def test_admin_resets_a_second_factor_audited(strict_app, factory, session):
    supervisor = factory.staffer(role=Role.SUPERVISOR)
    admin = factory.staffer(role=Role.ADMIN)
    session.commit()
    client = strict_app.test_client()
    _password(client, supervisor)
    _enrol(client, session, supervisor)
    boss = strict_app.test_client()
    _password(boss, admin)
    response = boss.post(f"/admin/staff/{supervisor.id}/reset-2fa",
                         data={"csrf_token": csrf_token(boss, "/admin/staff")})
    assert response.status_code == 303
    _fresh(session)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "staffer.second_factor_reset"))
    assert event.actor_id == admin.id and event.object_id == str(supervisor.id)
    assert session.get(Staffer, supervisor.id).totp_confirmed_at is None
    assert not list(session.scalars(select(RecoveryCode).where(RecoveryCode.staffer_id == supervisor.id)))
    assert client.get("/inbox/").status_code == 302  # their session ended
    _password(client, supervisor)  # no second step now, straight to enrolment
    assert client.get("/inbox/").headers["Location"].endswith("/account/two-factor")
    # Staff who are not admins cannot do it.
    _fresh(session)
    other = factory.staffer(role=Role.CORRESPONDENT)
    session.commit()
    peer = strict_app.test_client()
    _password(peer, other)
    assert peer.post(f"/admin/staff/{admin.id}/reset-2fa",
                     data={"csrf_token": csrf_token(peer, "/inbox/")}).status_code == 403


def test_totp_replay_is_refused_by_the_service(session, factory):
    staffer = factory.staffer()
    secret = second_factor.start_totp(session, staffer.id, secret_key="k")
    now = time.time()
    second_factor.confirm_totp(session, staffer.id, pyotp.TOTP(secret).at(now), secret_key="k", now=now)
    from correspondence.services.staff import SignInPolicy

    policy = SignInPolicy(address_attempts=1000)
    code = pyotp.TOTP(secret).at(now + 30)
    second_factor.verify_code(session, staffer.id, code, secret_key="k", remote_addr=None, policy=policy,
                              now=now + 30)
    with pytest.raises(ValidationFailed):
        second_factor.verify_code(session, staffer.id, code, secret_key="k", remote_addr=None, policy=policy,
                                  now=now + 30)
    older = pyotp.TOTP(secret).at(now)  # an earlier code that is still inside the drift window
    with pytest.raises(ValidationFailed):
        second_factor.verify_code(session, staffer.id, older, secret_key="k", remote_addr=None, policy=policy,
                                  now=now + 30)


def test_first_start_admin_with_the_default_setting_changes_password_then_enrols(settings, factory, session):
    """`make run`: the demo admin signs in with a one-time password, chooses a password, then enrols."""
    from config import Settings
    from web import create_app

    assert Settings.require_2fa == frozenset({"admin", "supervisor"})
    app = create_app(dataclasses.replace(settings, require_2fa=Settings.require_2fa))
    admin = factory.staffer(role=Role.ADMIN, must_change_password=True)
    session.commit()
    client = app.test_client()
    assert _password(client, admin).headers["Location"].endswith("/account/password")
    assert client.get("/inbox/").headers["Location"].endswith("/account/password")
    response = client.post("/account/password", data={"csrf_token": csrf_token(client, "/account/password"),
                                                      "current": Factory.PASSWORD, "new": "a long new password",
                                                      "confirm": "a long new password"})
    assert response.status_code == 302
    assert client.get("/dashboard/").headers["Location"].endswith("/account/two-factor")
    assert client.get("/account/two-factor").status_code == 200
    _enrol(client, session, admin)
    assert client.get("/dashboard/").status_code == 200
    app.extensions["mailroom.db"].dispose()
    app.extensions["mailroom.db_write"].dispose()


def test_cli_resets_a_locked_out_admins_second_factor(settings, session, factory):
    from click.testing import CliRunner

    from tests.conftest import cli_env
    from workers.cli import cli

    admin = factory.staffer(role=Role.ADMIN)
    second_factor.start_totp(session, admin.id, secret_key="k")
    second_factor.confirm_totp(session, admin.id, pyotp.TOTP(
        second_factor.pending_totp_secret(admin, secret_key="k") or "").now(), secret_key="k")
    session.commit()
    result = CliRunner().invoke(cli, ["staff", "reset-2fa", "--email", admin.email], env=cli_env(settings))
    assert result.exit_code == 0, result.output
    _fresh(session)
    assert session.get(Staffer, admin.id).totp_confirmed_at is None
    assert session.scalar(select(AuditEvent.actor_id).where(AuditEvent.action == "staffer.second_factor_reset")) \
        is None
    missing = CliRunner().invoke(cli, ["staff", "reset-2fa", "--email", "nobody@example.org"], env=cli_env(settings))
    assert missing.exit_code != 0 and "no staff account" in missing.output


def test_the_enrolment_page_offers_no_navigation_that_only_leads_back(strict_app, factory, session):
    supervisor = factory.staffer(role=Role.SUPERVISOR)
    session.commit()
    client = strict_app.test_client()
    _password(client, supervisor)
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert '<nav aria-label="Main">' not in page and "Sign out" in page
    _enrol(client, session, supervisor)
    assert '<nav aria-label="Main">' in client.get("/account/two-factor").get_data(as_text=True)
