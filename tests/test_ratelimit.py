"""Rate limits on the public endpoints (issue 12 item 2), counted in the real Redis the app uses."""

from __future__ import annotations

import dataclasses

import pytest

from config import Settings
from config.settings import SettingsError
from correspondence.services.tokens import create_token
from tests.conftest import TEST_SECRET_KEY

FORM = {"first_name": "Dana", "last_name": "Reyes", "email": "dana@example.org", "message": "Please help."}


def _app(settings: Settings, **limits: str):
    from web import create_app

    rules = tuple((rule, limits.get(rule.replace(".", "_"), value)) for rule, value in settings.rate_limits)
    return create_app(dataclasses.replace(settings, rate_limits=rules))


@pytest.fixture
def make_app(settings):
    apps = []

    def make(base: Settings | None = None, **limits: str):
        app = _app(base or settings, **limits)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["mailroom.db"].dispose()
        app.extensions["mailroom.db_write"].dispose()


def _get(client, path: str, addr: str = "198.51.100.1", **kw):
    return client.get(path, environ_base={"REMOTE_ADDR": addr}, **kw)


def _assert_limited(response) -> int:
    assert response.status_code == 429, response.status_code
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


def test_help_form_default_is_ten_a_minute_per_client(client, redis):
    for _ in range(10):
        assert _get(client, "/help").status_code == 200
    limited = _get(client, "/help")
    _assert_limited(limited)
    assert "Too many requests" in limited.get_data(as_text=True)
    # A post from the same client is refused before it is read, with or without a CSRF token.
    _assert_limited(client.post("/help", data=FORM, environ_base={"REMOTE_ADDR": "198.51.100.1"}))
    # Someone else is not held back by that client's flood.
    assert _get(client, "/help", addr="198.51.100.2").status_code == 200


def test_global_limit_catches_a_flood_from_many_addresses(make_app, redis):
    client = make_app(help_client="100/minute", help_global="5/minute").test_client()
    for i in range(5):
        assert _get(client, "/help", addr=f"203.0.113.{i}").status_code == 200
    _assert_limited(_get(client, "/help", addr="203.0.113.99"))


def test_sign_in_posts_are_limited_per_client_before_the_password_is_checked(make_app, session, factory, redis):
    client = make_app(login_client="3/minute").test_client()
    for _ in range(3):
        response = client.post("/login", data={"email": "a@example.org", "password": "guess"},
                               environ_base={"REMOTE_ADDR": "192.0.2.5"})
        assert response.status_code == 400  # no CSRF token: refused, but it counted
    _assert_limited(client.post("/login", data={"email": "a@example.org", "password": "guess"},
                                environ_base={"REMOTE_ADDR": "192.0.2.5"}))
    # Only posts count: the page itself, and other addresses, still open.
    assert _get(client, "/login", addr="192.0.2.5").status_code == 200
    assert client.post("/login", data={}, environ_base={"REMOTE_ADDR": "192.0.2.6"}).status_code == 400


def test_intake_api_is_limited_per_token_and_answers_the_json_error_shape(make_app, session, redis):
    client = make_app(api_token="2/minute").test_client()
    _t, plain = create_token(session, name="website", actor_id=None)
    session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    for _ in range(2):
        assert client.post("/api/v1/intake/webform", json={}, headers=headers).status_code == 400
    limited = client.post("/api/v1/intake/webform", json={}, headers=headers)
    _assert_limited(limited)
    error = limited.get_json()["error"]
    assert error["code"] == 429 and "Too many requests" in error["message"]
    # The CWC endpoint shares the token's budget; a different (here invalid) token has its own.
    _assert_limited(client.post("/api/v1/intake/cwc", data=b"<x/>", headers=headers))
    assert client.post("/api/v1/intake/webform", json={}, headers={"Authorization": "Bearer other"}).status_code \
        == 401


def test_api_global_limit_catches_rotating_tokens(make_app, redis):
    client = make_app(api_global="3/minute").test_client()
    for i in range(3):
        assert client.post("/api/v1/intake/cwc", data=b"x", headers={"Authorization": f"Bearer t{i}"}).status_code \
            == 401
    _assert_limited(client.post("/api/v1/intake/cwc", data=b"x", headers={"Authorization": "Bearer t9"}))


def test_two_web_processes_share_the_limit_through_redis(make_app, settings, redis):
    first, second = make_app().test_client(), make_app().test_client()
    for i in range(10):
        assert _get(first if i % 2 else second, "/help").status_code == 200
    _assert_limited(_get(second, "/help"))
    _assert_limited(_get(first, "/help"))
    assert redis.keys("mailroom:ratelimit*"), "the counts live in Redis"


def test_other_public_routes_are_limited_and_staff_pages_are_not(make_app, auth, redis):
    app = make_app(public_client="3/minute")
    client = app.test_client()
    for _ in range(3):
        assert _get(client, "/healthz").status_code == 200
    _assert_limited(_get(client, "/healthz"))
    static = next(r.rule for r in app.url_map.iter_rules() if r.endpoint == "static").replace("<path:filename>", "x")
    assert _get(client, static).status_code == 404  # static files are not counted (a 404 here, not a 429)


def test_a_forged_forwarded_for_does_not_escape_the_limit_unless_a_proxy_is_trusted(make_app, settings, redis):
    direct = make_app(help_client="2/minute").test_client()
    for i in range(2):
        _get(direct, "/help", headers={"X-Forwarded-For": f"10.0.0.{i}"})
    _assert_limited(_get(direct, "/help", headers={"X-Forwarded-For": "10.0.0.77"}))
    proxied = make_app(dataclasses.replace(settings, trusted_proxies=1), help_client="2/minute").test_client()
    for _ in range(2):
        _get(proxied, "/help", addr="127.0.0.1", headers={"X-Forwarded-For": "10.1.1.1"})
    _assert_limited(_get(proxied, "/help", addr="127.0.0.1", headers={"X-Forwarded-For": "10.1.1.1"}))
    assert _get(proxied, "/help", addr="127.0.0.1", headers={"X-Forwarded-For": "10.1.1.2"}).status_code == 200


def test_without_redis_pages_still_serve_and_limits_hold_in_memory(make_app, settings, auth, caplog):
    gone = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")
    client = make_app(gone).test_client()
    for _ in range(10):
        assert _get(client, "/help").status_code == 200
    _assert_limited(_get(client, "/help"))
    assert "redis unreachable" in caplog.text


def test_rate_limit_settings_are_checked_by_name(tmp_path):
    env = {"MAILROOM_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": TEST_SECRET_KEY}
    s = Settings.from_env({**env, "MAILROOM_RATE_LIMITS": "help.client=5/minute;50/hour login.global=off",
                           "MAILROOM_TRUSTED_PROXIES": "1"})
    assert s.rate_limit_map["help.client"] == "5/minute;50/hour" and s.rate_limit_map["login.global"] == "off"
    assert s.rate_limit_map["help.global"] == "300/minute" and s.trusted_proxies == 1
    for bad in ("help.client=lots", "helpdesk=5/minute", "help.client"):
        with pytest.raises(SettingsError, match="MAILROOM_RATE_LIMITS"):
            Settings.from_env({**env, "MAILROOM_RATE_LIMITS": bad})
    with pytest.raises(SettingsError, match="MAILROOM_TRUSTED_PROXIES"):
        Settings.from_env({**env, "MAILROOM_TRUSTED_PROXIES": "-1"})


def test_rotating_made_up_tokens_do_not_escape_the_per_client_limit(make_app, session, redis):
    """Issue 12 re-check: each new token had a fresh budget, so one client could spend the global one."""
    client = make_app(api_client="3/minute", api_token="100/minute").test_client()
    addr = {"REMOTE_ADDR": "192.0.2.77"}
    for i in range(3):
        assert client.post("/api/v1/intake/webform", json={}, headers={"Authorization": f"Bearer made-up-{i}"},
                           environ_base=addr).status_code == 401
    _assert_limited(client.post("/api/v1/intake/webform", json={}, headers={"Authorization": "Bearer made-up-9"},
                                environ_base=addr))
    # Another client is not held back, and the limit is per address, not per token there either.
    assert client.post("/api/v1/intake/webform", json={}, headers={"Authorization": "Bearer made-up-9"},
                       environ_base={"REMOTE_ADDR": "192.0.2.78"}).status_code == 401
