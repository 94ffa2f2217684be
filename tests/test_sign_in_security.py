"""Sign-in attacks: password spraying from one address, an account under attack, stolen sessions.

Each test performs the attack through the HTTP app (or the service) and checks it is refused.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from flask_login.utils import encode_cookie
from sqlalchemy import func, select

from correspondence.models import AuditEvent, LoginAttempt, Role, Staffer, utcnow
from correspondence.passwords import VERIFICATIONS
from correspondence.services import staff as svc
from tests.conftest import csrf_token
from tests.factories import Factory


@pytest.fixture
def settings(settings):
    """These tests are about the sign-in service's own throttle, which must hold without the web tier's
    per-minute limiter (tests/test_ratelimit.py covers that layer); its sign-in limits are off here."""
    return replace(settings, rate_limits=tuple((rule, "off" if rule.startswith("login.") else limit)
                                               for rule, limit in settings.rate_limits))


def _post_login(client, email: str, password: str, addr: str = "127.0.0.1"):
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": addr})


def _attempts(session) -> int:
    session.rollback()
    return session.scalar(select(func.count(LoginAttempt.id))) or 0


def test_one_address_spraying_many_accounts_is_refused_before_any_hash(app, client, factory, session):
    """Password spraying: a few guesses at each of many accounts, all from one address."""
    cfg = app.extensions["mailroom.settings"]
    victims = [factory.staffer() for _ in range(cfg.login_address_attempts // 4 + 1)]
    session.commit()
    failures = 0
    for victim in victims:
        for _ in range(4):  # below the per-account limit, so only the address limit can stop this
            if failures == cfg.login_address_attempts:
                break
            assert _post_login(client, victim.email, "Winter2026!").status_code == 401
            failures += 1
    rows, hashes = _attempts(session), VERIFICATIONS.value
    response = _post_login(client, victims[-1].email, Factory.PASSWORD)  # even the right password
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "from your network" in response.get_data(as_text=True)
    # Refused from counts alone: no argon2 verification ran and no attempt was written.
    assert VERIFICATIONS.value == hashes
    assert _attempts(session) == rows
    # The owner, from another address, is not affected.
    assert _post_login(app.test_client(), victims[-1].email, Factory.PASSWORD, addr="10.1.2.3").status_code == 302


def test_an_account_under_attack_backs_off_and_its_owners_address_still_gets_in(app, factory, session):
    owner = factory.staffer()
    session.commit()
    # The owner signed in from their office address before.
    assert _post_login(app.test_client(), owner.email, Factory.PASSWORD, addr="10.0.0.7").status_code == 302
    attacker = app.test_client()
    limit = app.extensions["mailroom.settings"].login_attempts
    for _ in range(limit):
        assert _post_login(attacker, owner.email, "guess", addr="203.0.113.9").status_code == 401
    hashes = VERIFICATIONS.value
    refused = _post_login(attacker, owner.email, Factory.PASSWORD, addr="203.0.113.9")
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 30
    assert VERIFICATIONS.value == hashes
    # The attacker's failures do not keep the owner out at the address they used before.
    assert _post_login(app.test_client(), owner.email, Factory.PASSWORD, addr="10.0.0.7").status_code == 302


def test_back_off_doubles_per_failure_and_is_capped(session, factory):
    staffer = factory.staffer()
    policy = svc.SignInPolicy(account_attempts=5, address_attempts=1000)
    start = utcnow() - timedelta(hours=2)

    def fail_at(at) -> None:
        session.add(LoginAttempt(email=staffer.email, remote_addr="198.51.100.1", succeeded=False, at=at))
        session.flush()

    for i in range(5):
        fail_at(start + timedelta(seconds=i))
    last = start + timedelta(seconds=4)
    with pytest.raises(svc.TooManyAttempts) as refused:
        svc.check_sign_in_allowed(session, email=staffer.email, remote_addr="198.51.100.1", policy=policy,
                                  now=last + timedelta(seconds=10))
    assert refused.value.retry_after == 20  # 30 s after the fifth failure
    svc.check_sign_in_allowed(session, email=staffer.email, remote_addr="198.51.100.1", policy=policy,
                              now=last + timedelta(seconds=31))  # the wait is over: allowed, not locked
    fail_at(last + timedelta(seconds=31))  # sixth failure: the wait doubles to 60 s
    with pytest.raises(svc.TooManyAttempts) as refused:
        svc.check_sign_in_allowed(session, email=staffer.email, remote_addr="198.51.100.1", policy=policy,
                                  now=last + timedelta(seconds=32))
    assert refused.value.retry_after == 59
    for i in range(20):
        fail_at(last + timedelta(minutes=2, seconds=i))
    with pytest.raises(svc.TooManyAttempts) as refused:
        svc.check_sign_in_allowed(session, email=staffer.email, remote_addr="198.51.100.1", policy=policy,
                                  now=last + timedelta(minutes=2, seconds=20))
    assert refused.value.retry_after <= 15 * 60  # capped at 15 minutes, never a lock-out


def _signed_in_twice(app, factory, session, role: str = "correspondent"):
    staffer = factory.staffer(role=role)
    session.commit()
    laptop, phone = app.test_client(), app.test_client()
    for client in (laptop, phone):
        assert _post_login(client, staffer.email, Factory.PASSWORD).status_code == 302
        assert client.get("/inbox/").status_code == 200
    return staffer, laptop, phone


def _signed_out(client) -> bool:
    response = client.get("/inbox/")
    return response.status_code == 302 and "/login" in response.headers["Location"]


def test_changing_the_password_ends_every_other_session(app, factory, session):
    _staffer, laptop, phone = _signed_in_twice(app, factory, session)
    response = laptop.post("/account/password", data={"csrf_token": csrf_token(laptop, "/account/password"),
                                                      "current": Factory.PASSWORD, "new": "a new and long password",
                                                      "confirm": "a new and long password"})
    assert response.status_code == 302
    assert laptop.get("/inbox/").status_code == 200  # the session that changed it goes on
    assert _signed_out(phone)


def test_sign_out_everywhere_ends_other_sessions_and_is_audited(app, factory, session):
    staffer, laptop, phone = _signed_in_twice(app, factory, session)
    response = laptop.post("/account/sign-out-everywhere", data={"csrf_token": csrf_token(laptop, "/account/password")})
    assert response.status_code == 303
    assert laptop.get("/inbox/").status_code == 200
    assert _signed_out(phone)
    session.rollback()
    assert session.scalar(select(AuditEvent.detail).where(
        AuditEvent.action == "staffer.sessions_ended", AuditEvent.object_id == str(staffer.id))) == \
        "signed out everywhere"
    # Without the CSRF token it is refused.
    assert laptop.post("/account/sign-out-everywhere").status_code == 400


def test_signing_out_ends_every_session(app, factory, session):
    _staffer, laptop, phone = _signed_in_twice(app, factory, session)
    laptop.post("/logout", data={"csrf_token": csrf_token(laptop, "/inbox/")})
    assert _signed_out(laptop) and _signed_out(phone)


@pytest.mark.parametrize("action", ["deactivate", "role"])
def test_admin_deactivating_or_changing_a_role_ends_the_staffers_sessions(app, factory, session, action):
    staffer, laptop, _phone = _signed_in_twice(app, factory, session)
    admin = factory.staffer(role=Role.ADMIN)
    session.commit()
    boss = app.test_client()
    assert _post_login(boss, admin.email, Factory.PASSWORD).status_code == 302
    response = boss.post(f"/admin/staff/{staffer.id}/{action}",
                         data={"csrf_token": csrf_token(boss, "/admin/staff"), "value": "caseworker"})
    assert response.status_code == 303
    assert _signed_out(laptop)


def test_a_remember_me_cookie_from_before_a_revocation_is_refused(app, factory, session):
    staffer = factory.staffer()
    session.commit()
    with app.test_request_context():
        remembered = encode_cookie(staffer.get_id())  # what Flask-Login would have set with remember=True
    thief = app.test_client()
    thief.set_cookie("remember_token", remembered)
    assert thief.get("/inbox/").status_code == 200  # the cookie works while the epoch is current
    svc.end_sessions(session, staffer.id, actor_id=staffer.id, reason="signed out everywhere")
    session.commit()
    thief = app.test_client()
    thief.set_cookie("remember_token", remembered)
    assert _signed_out(thief)


def test_a_session_cookie_without_an_epoch_is_refused(app, factory, session):
    """A cookie in the old format (a bare id) cannot outlive this change."""
    staffer = factory.staffer()
    session.commit()
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = str(staffer.id)
        cookie["_fresh"] = True
    assert _signed_out(client)
    session.rollback()
    assert session.get(Staffer, staffer.id).session_epoch == 0


def test_old_attempts_are_pruned_by_the_daily_job(job_env, session):
    from workers.jobs import run_prune_login_attempts

    session.add_all([LoginAttempt(email="a@example.org", remote_addr="x", at=utcnow() - timedelta(days=40)),
                     LoginAttempt(email="a@example.org", remote_addr="x", at=utcnow() - timedelta(days=2))])
    session.commit()
    assert run_prune_login_attempts() == 1
    assert _attempts(session) == 1
