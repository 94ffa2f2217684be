from datetime import timedelta

import pytest

from correspondence.errors import ValidationFailed
from correspondence.models import Role
from correspondence.passwords import verify_password
from correspondence.services import staff as svc


def test_create_with_one_time_password_is_hashed_with_argon2(session):
    staffer, otp = svc.create_staffer(session, name="Ana", email=" Ana@Example.org ", role=Role.SUPERVISOR,
                                      actor_id=None)
    assert staffer.email == "ana@example.org"
    assert staffer.password_hash.startswith("$argon2id$")
    assert otp and verify_password(staffer.password_hash, otp)
    assert staffer.must_change_password
    with pytest.raises(ValidationFailed, match="already exists"):
        svc.create_staffer(session, name="Ana", email="ana@example.org", role=Role.ADMIN, actor_id=None)


def test_failed_sign_ins_are_throttled(session, factory):
    staffer = factory.staffer()
    window = timedelta(minutes=15)
    for _ in range(3):
        assert svc.authenticate(session, email=staffer.email, password="wrong", max_attempts=3,
                                window=window) is None
    with pytest.raises(svc.TooManyAttempts):
        svc.authenticate(session, email=staffer.email, password=factory.PASSWORD, max_attempts=3, window=window)


def test_inactive_staff_cannot_sign_in(session, factory):
    staffer = factory.staffer(active=False)
    assert svc.authenticate(session, email=staffer.email, password=factory.PASSWORD, max_attempts=5,
                            window=timedelta(minutes=5)) is None


def test_change_password_rules(session, factory):
    staffer = factory.staffer()
    with pytest.raises(ValidationFailed, match="current password"):
        svc.change_password(session, staffer.id, current="nope", new="a much longer password")
    with pytest.raises(ValidationFailed, match="at least"):
        svc.change_password(session, staffer.id, current=factory.PASSWORD, new="short")
    svc.change_password(session, staffer.id, current=factory.PASSWORD, new="a much longer password")
    assert verify_password(staffer.password_hash, "a much longer password")


def test_admin_cannot_demote_or_deactivate_self(session, factory):
    admin = factory.staffer(role=Role.ADMIN)
    with pytest.raises(ValidationFailed):
        svc.set_role(session, admin.id, Role.CORRESPONDENT, actor_id=admin.id)
    with pytest.raises(ValidationFailed):
        svc.set_active(session, admin.id, False, actor_id=admin.id)
