import stat

import pytest

from config import Settings
from config.settings import SettingsError
from tests.conftest import TEST_SECRET_KEY


def test_defaults_point_into_the_instance_folder(tmp_path):
    s = Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path / "inst")})
    assert s.database_url == f"sqlite:///{tmp_path / 'inst' / 'mailroom.db'}"
    assert s.embedded_redis and s.redis_url is None
    assert s.redis_socket_path.parent == tmp_path / "inst"


def test_secret_key_is_generated_once_with_private_mode(tmp_path):
    env = {"MAILROOM_INSTANCE_DIR": str(tmp_path)}
    first = Settings.from_env(env).secret_key
    assert Settings.from_env(env).secret_key == first
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600
    assert len(first) >= 40


def test_environment_overrides_and_postgres_driver(tmp_path):
    s = Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": TEST_SECRET_KEY,
                           "DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/2",
                           "MAILROOM_OFFICE_NAME": "Office of Council Member Ruiz"})
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert s.redis_url == "redis://h:6379/2" and not s.embedded_redis
    assert s.office_name == "Office of Council Member Ruiz"
    assert not (tmp_path / "secret_key").exists()


def test_settings_are_frozen(tmp_path):
    s = Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path)})
    with pytest.raises(AttributeError):
        s.office_name = "x"  # type: ignore[misc]  # the point: assigning to a frozen field


@pytest.mark.parametrize(("name", "value"), [("MAILROOM_TIMEZONE", "Mars/Olympus"),
                                             ("MAILROOM_PAGE_SIZE", "fifty")])
def test_bad_values_are_named(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path), name: value})


def test_roles_that_must_use_two_factor_sign_in(tmp_path):
    env = {"MAILROOM_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x" * 40}
    assert Settings.from_env(env).require_2fa == frozenset({"admin", "supervisor"})
    assert Settings.from_env({**env, "MAILROOM_REQUIRE_2FA": " Caseworker, admin "}).require_2fa == \
        frozenset({"caseworker", "admin"})
    assert Settings.from_env({**env, "MAILROOM_REQUIRE_2FA": ""}).require_2fa == frozenset()
    with pytest.raises(SettingsError, match="MAILROOM_REQUIRE_2FA"):
        Settings.from_env({**env, "MAILROOM_REQUIRE_2FA": "admin,root"})
