"""Connecting a mailbox with OAuth2 (issue 19): the admin page's authorization-code flow with PKCE, the
device-code CLI, rotated refresh tokens kept by the jobs, and SMTP as a connected mailbox.

The provider is a real HTTP server on loopback (tests/dovecot_oauth.py: its sign-in page issues one-time
codes for an S256 challenge, its token endpoint checks the verifier, polls device codes and rotates refresh
tokens); the mailbox is a real Dovecot that checks the minted tokens itself. Nothing reaches the internet.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from config import Settings
from config.settings import SettingsError
from correspondence.db import Database
from correspondence.models import AuditEvent, MailboxAccount, Role
from correspondence.services import mailbox_oauth, mailbox_signin
from correspondence.services.mailbox_oauth import Provider
from drafting.send import SmtpConfig, TryLater, connect
from intake.imap import poll_all
from intake.pipeline import Rules
from tests import test_oauth_mailbox
from tests.conftest import TEST_SECRET_KEY, Auth, cli_env
from tests.test_oauth_mailbox import REFRESH, _count, _deliver, _mailbox
from workers.cli import cli

NAME = "Casework inbox"
# The loopback provider, the oauth2 Dovecot and the XOAUTH2 SMTP server of the OAuth2 mailbox tests.
endpoint = test_oauth_mailbox.endpoint
dovecot = test_oauth_mailbox.dovecot
xoauth2_smtp = test_oauth_mailbox.xoauth2_smtp


@pytest.fixture
def settings(settings, endpoint):  # the conftest's settings, with the loopback provider set up
    app = Provider.of("microsoft", endpoint.client_id, token_url=endpoint.url,
                      authorize_url=endpoint.authorize_url, device_url=endpoint.url)
    return dataclasses.replace(settings, oauth_apps=(app,))


@pytest.fixture(autouse=True)
def _fresh_logins():
    """Each test starts as a new process would: no sign-in cached from another test's mailbox."""
    mailbox_signin._LOGINS.clear()
    yield
    mailbox_signin._LOGINS.clear()


class _NoFollow(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the browser's next stop is the test client, not urllib
        return None


def _browser_at_provider(url: str) -> str:
    """What the admin's browser does at the provider: open the sign-in page, which sends it back; the path
    and query it is sent back to."""
    opener = urllib.request.build_opener(_NoFollow)
    with pytest.raises(urllib.error.HTTPError) as sent_back:
        opener.open(url, timeout=10)
    assert sent_back.value.code == 302
    back = urllib.parse.urlsplit(sent_back.value.headers["Location"])
    return f"{back.path}?{back.query}"


def _start(client, auth, *, port: int, name: str = NAME, **fields: str):
    form = {"provider": "microsoft", "name": name, "username": "office", "host": "127.0.0.1", "port": str(port),
            "security": "none", "folders": "INBOX", "csrf_token": auth.csrf("/admin/intake"), **fields}
    return client.post("/admin/intake/mailboxes/oauth", data=form)


def _flashes(client) -> str:
    return client.get("/admin/intake").get_data(as_text=True)


def test_admin_connects_a_mailbox_then_checks_it_and_it_is_polled(client, auth, endpoint, dovecot, database,
                                                                  session, settings):
    admin = auth.login("admin")
    started = _start(client, auth, port=dovecot.port)
    assert started.status_code == 303
    sent_to = started.headers["Location"]
    assert sent_to.startswith(endpoint.authorize_url + "?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(sent_to).query))
    assert query["code_challenge_method"] == "S256" and query["login_hint"] == "office"
    # The verifier stays on the server: the cookie holds an opaque id, the address only the S256 challenge.
    with client.session_transaction() as cookie:
        in_cookie = json.dumps(dict(cookie))
        pending_id = cookie["mailbox_oauth"]
    assert isinstance(pending_id, str) and query["state"] not in in_cookie

    back = _browser_at_provider(sent_to)
    assert back.startswith("/admin/mailboxes/oauth/callback?")
    done = client.get(back)
    assert done.status_code == 303 and done.headers["Location"].endswith("/admin/intake")
    page = _flashes(client)
    assert f"Mailbox {NAME} connected as office through Microsoft 365" in page

    exchange = [r for r in endpoint.requests if r.get("grant_type") == "authorization_code"]
    assert len(exchange) == 1 and exchange[0]["redirect_uri"] == query["redirect_uri"]
    verifier = exchange[0]["code_verifier"]
    assert len(verifier) >= 43 and verifier not in in_cookie and verifier not in sent_to
    with client.session_transaction() as cookie:
        assert "mailbox_oauth" not in cookie
    session.rollback()
    row = session.scalar(select(MailboxAccount).where(MailboxAccount.name == NAME))
    assert row is not None and row.auth_kind == "oauth2" and row.oauth_provider == "microsoft"
    assert REFRESH not in (row.refresh_token_encrypted or "")
    assert mailbox_oauth.decrypt_token(TEST_SECRET_KEY, row.refresh_token_encrypted or "") == REFRESH
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "mailbox.oauth_connect"))
    assert event is not None and event.actor_id == admin.id and event.object_id == str(row.id)
    assert REFRESH not in json.dumps([event.before, event.after]) and event.after["username"] == "office"

    # The return works once: the same address again is refused in plain words, even with the old cookie's id
    # sent again (a copy of the cookie from before the return).
    assert client.get(back).status_code == 303
    assert "was not started from this page" in _flashes(client)
    with client.session_transaction() as cookie:
        cookie["mailbox_oauth"] = pending_id
    assert client.get(back).status_code == 303
    assert "was used already" in _flashes(client)
    assert len([r for r in endpoint.requests if r.get("grant_type") == "authorization_code"]) == 1

    # "Check connection" signs in with the token, and Dovecot (not Mailroom) accepts it.
    checked = client.post(f"/admin/intake/mailboxes/{row.id}/check", data={"csrf_token": auth.csrf("/admin/intake")})
    assert checked.status_code == 303
    assert f"{NAME}: connected; folders: Processed, INBOX" in _flashes(client)
    assert "method=XOAUTH2" in dovecot.log()

    # The job's poll, as a new worker process would run it, stores the mail with a token renewed from the row.
    mailbox_signin._LOGINS.clear()
    _deliver(dovecot, endpoint, 2)
    totals = poll_all(database, accounts_json="", secret_key=TEST_SECRET_KEY, max_bytes=1_000_000, rules=Rules())
    assert totals == {NAME: 2} and _count(session) == 2


def test_an_existing_password_mailbox_is_connected_again_with_oauth2(client, auth, endpoint, dovecot, session):
    auth.login("admin")
    row = MailboxAccount(name="Old inbox", host="127.0.0.1", port=dovecot.port, security="none", username="office",
                         password_encrypted="x", folders=["INBOX"])
    session.add(row)
    session.commit()
    started = client.post("/admin/intake/mailboxes/oauth", data={
        "provider": "microsoft", "account_id": str(row.id), "csrf_token": auth.csrf("/admin/intake")})
    assert started.status_code == 303
    client.get(_browser_at_provider(started.headers["Location"]))
    session.rollback()  # a new snapshot: other connections wrote
    session.expire_all()
    assert row.auth_kind == "oauth2" and row.password_encrypted == "" and row.port == dovecot.port
    assert "connected as office" in _flashes(client)


def test_refused_consent_is_said_in_plain_words(client, auth, endpoint, dovecot, session):
    auth.login("admin")
    endpoint.deny = True
    started = _start(client, auth, port=dovecot.port)
    back = _browser_at_provider(started.headers["Location"])
    assert "error=access_denied" in back
    assert client.get(back).status_code == 303
    assert "the sign-in was cancelled, or consent was not given, at the provider" in _flashes(client)
    assert session.scalar(select(MailboxAccount.id)) is None
    assert not [r for r in endpoint.requests if r.get("grant_type") == "authorization_code"]


def _age_pending(redis, *, minutes: int) -> None:
    """Make the one sign-in in progress look started `minutes` ago (its entry is sealed like a refresh token)."""
    [key] = redis.keys("mailroom:oauth-pending:*")
    entry = json.loads(mailbox_oauth.decrypt_token(TEST_SECRET_KEY, redis.get(key).decode()))
    entry["expires"] -= minutes * 60
    redis.set(key, mailbox_oauth.encrypt_token(TEST_SECRET_KEY, json.dumps(entry)), keepttl=True)


def test_a_forged_state_an_unknown_return_and_an_expired_sign_in_are_refused(client, auth, endpoint, dovecot,
                                                                             session, redis):
    auth.login("admin")
    # A return nobody started here (someone else's code pushed into the admin's browser).
    assert client.get("/admin/mailboxes/oauth/callback?code=code-9&state=abc").status_code == 303
    assert "was not started from this page" in _flashes(client)
    # The right start, but a state that is not ours.
    started = _start(client, auth, port=dovecot.port)
    back = _browser_at_provider(started.headers["Location"])
    code = dict(urllib.parse.parse_qsl(back.split("?", 1)[1]))["code"]
    assert client.get(f"/admin/mailboxes/oauth/callback?code={code}&state=forged").status_code == 303
    assert "came back for another request" in _flashes(client)
    # Too late: more than ten minutes at the provider (the server's entry says when it stops being good).
    started = _start(client, auth, port=dovecot.port)
    back = _browser_at_provider(started.headers["Location"])
    _age_pending(redis, minutes=11)
    assert client.get(back).status_code == 303
    assert "took longer than ten minutes" in _flashes(client)
    # Long after that, Redis has forgotten it: refused as not started.
    started = _start(client, auth, port=dovecot.port)
    back = _browser_at_provider(started.headers["Location"])
    [key] = redis.keys("mailroom:oauth-pending:*")
    redis.delete(key)
    assert client.get(back).status_code == 303
    assert "was not started from this page" in _flashes(client)
    assert session.scalar(select(MailboxAccount.id)) is None
    assert not [r for r in endpoint.requests if r.get("grant_type") == "authorization_code"]


def test_a_provider_that_is_down_is_said_in_plain_words(client, auth, endpoint, dovecot, session):
    auth.login("admin")
    started = _start(client, auth, port=dovecot.port)
    back = _browser_at_provider(started.headers["Location"])
    endpoint.stop()  # the token endpoint goes away between the consent and the return
    assert client.get(back).status_code == 303
    assert "could not finish signing in at the provider: cannot reach the provider" in _flashes(client)
    assert session.scalar(select(MailboxAccount.id)) is None


def test_a_provider_not_set_up_and_a_bad_mailbox_are_refused_before_leaving(client, auth, endpoint, dovecot):
    auth.login("admin")
    response = _start(client, auth, port=dovecot.port, provider="google")
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/intake")
    assert "this provider is not set up for Mailroom (MAILROOM_OAUTH_GOOGLE_CLIENT_ID)" in _flashes(client)
    response = _start(client, auth, port=dovecot.port, host="not a host", username="", security="ssl")
    assert response.headers["Location"].endswith("/admin/intake")
    assert "host must be a host name or IP address; enter the user name" in _flashes(client)
    assert not endpoint.authorizations


@pytest.mark.parametrize("role", [Role.CORRESPONDENT, Role.CASEWORKER, Role.SUPERVISOR])
def test_only_admins_connect_mailboxes(role, client, auth, dovecot):
    auth.login(role.value)
    form = {"provider": "microsoft", "name": NAME, "username": "office", "host": "127.0.0.1",
            "port": str(dovecot.port), "security": "none", "csrf_token": auth.csrf()}
    assert client.post("/admin/intake/mailboxes/oauth", data=form).status_code == 403
    assert client.get("/admin/mailboxes/oauth/callback?code=a&state=b").status_code == 403


def test_the_poll_job_keeps_a_rotated_refresh_token_at_once(dovecot, endpoint, database, session):
    row = _mailbox(session, dovecot, endpoint)
    endpoint.rotate = True  # the provider refuses each refresh token once it has handed out the next
    _deliver(dovecot, endpoint, 1)
    assert poll_all(database, accounts_json="", secret_key=TEST_SECRET_KEY, max_bytes=1_000_000,
                    rules=Rules()) == {NAME: 1}
    session.rollback()  # a new snapshot: other connections wrote
    session.expire_all()
    stored = row.refresh_token_encrypted or ""
    assert REFRESH not in stored and mailbox_oauth.decrypt_token(TEST_SECRET_KEY, stored) == REFRESH + "+"
    # A new worker process (nothing cached) signs in with the stored token, as the old one no longer works
    # (-1 would be a failed sign-in; 0 is a poll that found nothing new).
    mailbox_signin._LOGINS.clear()
    assert poll_all(database, accounts_json="", secret_key=TEST_SECRET_KEY, max_bytes=1_000_000,
                    rules=Rules()) == {NAME: 0}
    session.rollback()  # a new snapshot: other connections wrote
    session.expire_all()
    assert mailbox_oauth.decrypt_token(TEST_SECRET_KEY, row.refresh_token_encrypted or "") == REFRESH + "++"
    assert [r["refresh_token"] for r in endpoint.requests] == [REFRESH, REFRESH + "+"]


def test_check_connection_keeps_a_rotated_refresh_token(client, auth, dovecot, endpoint, session):
    auth.login("admin")
    row = _mailbox(session, dovecot, endpoint)
    endpoint.rotate = True
    client.post(f"/admin/intake/mailboxes/{row.id}/check", data={"csrf_token": auth.csrf("/admin/intake")})
    assert f"{NAME}: connected; folders: Processed, INBOX" in _flashes(client)
    session.rollback()  # a new snapshot: other connections wrote
    session.expire_all()
    assert mailbox_oauth.decrypt_token(TEST_SECRET_KEY, row.refresh_token_encrypted or "") == REFRESH + "+"


def test_a_revoked_sign_in_is_said_on_check_connection(client, auth, dovecot, endpoint, session):
    auth.login("admin")
    row = _mailbox(session, dovecot, endpoint)
    endpoint.refresh_token = "another"  # the provider's admin revoked ours
    client.post(f"/admin/intake/mailboxes/{row.id}/check", data={"csrf_token": auth.csrf("/admin/intake")})
    assert "the OAuth2 sign-in could not be renewed (refresh token unknown or revoked); connect the mailbox again" \
        in _flashes(client)


@pytest.mark.parametrize("store", ["database", "session"])
def test_smtp_signs_in_as_the_mailbox_the_settings_name_and_keeps_its_rotated_token(
        store, settings, dovecot, endpoint, xoauth2_smtp, database, session):
    inbox, port = xoauth2_smtp
    row = _mailbox(session, dovecot, endpoint)
    row.username = "office@house.example"
    session.commit()
    endpoint.rotate = True
    config = SmtpConfig.of(dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                                               smtp_oauth_mailbox=NAME, mail_from="office@house.example"))
    client = connect(config, store=database if store == "database" else session)
    try:
        client.sendmail("office@house.example", ["person@example.org"],
                        b"From: office@house.example\r\nTo: person@example.org\r\nSubject: Hi\r\n\r\nHello\r\n")
    finally:
        client.quit()
    session.commit()  # the session's caller (a job) commits
    session.rollback()  # a new snapshot: other connections wrote
    session.expire_all()
    assert len(inbox.messages) == 1 and inbox.seen[0].startswith("user=office@house.example\x01auth=Bearer ")
    assert mailbox_oauth.decrypt_token(TEST_SECRET_KEY, row.refresh_token_encrypted or "") == REFRESH + "+"
    with pytest.raises(TryLater, match="names no mailbox"):
        connect(dataclasses.replace(config, smtp_oauth_mailbox="Nobody"), store=database)


def test_cli_connects_a_mailbox_with_a_device_code_and_it_is_polled(settings, dovecot, endpoint, database, session):
    env = {**cli_env(settings), "MAILROOM_OAUTH_GENERIC_CLIENT_ID": endpoint.client_id,
           "MAILROOM_OAUTH_GENERIC_TOKEN_URL": endpoint.url, "MAILROOM_OAUTH_GENERIC_DEVICE_URL": endpoint.url,
           "MAILROOM_OAUTH_GENERIC_SCOPES": "mail"}
    args = ["mailbox", "connect", "Device inbox", "--provider", "generic", "--username", "office",
            "--host", "127.0.0.1", "--port", str(dovecot.port), "--security", "none"]
    refused = CliRunner().invoke(cli, args, env=env)
    assert refused.exit_code == 2 and "only --device-code works" in refused.output
    result = CliRunner().invoke(cli, [*args, "--device-code"], env=env)
    assert result.exit_code == 0, result.output
    assert "Open http://127.0.0.1/device" in result.output and "enter the code WDJB-MJHT" in result.output
    assert "Mailbox Device inbox connected as office." in result.output
    polls = [r for r in endpoint.requests if r.get("grant_type", "").endswith("device_code")]
    assert len(polls) == 3  # twice "authorization_pending", then the tokens
    session.rollback()
    row = session.scalar(select(MailboxAccount).where(MailboxAccount.name == "Device inbox"))
    assert row is not None and row.oauth_provider == "generic" and REFRESH not in (row.refresh_token_encrypted or "")
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "mailbox.oauth_connect"))
    assert event is not None and event.actor_id is None and REFRESH not in json.dumps(event.after)
    # The mailbox it connected is polled with OAUTHBEARER, Dovecot checking the token.
    _deliver(dovecot, endpoint, 1)
    assert poll_all(database, accounts_json="", secret_key=TEST_SECRET_KEY, max_bytes=1_000_000,
                    rules=Rules()) == {"Device inbox": 1}
    assert "method=OAUTHBEARER" in dovecot.log()
    # Not set up: a plain refusal.
    missing = CliRunner().invoke(cli, ["mailbox", "connect", "X", "--provider", "google", "--device-code"],
                                 env=cli_env(settings))
    assert missing.exit_code == 1 and "MAILROOM_OAUTH_GOOGLE_CLIENT_ID" in missing.output


def test_oauth_app_settings():
    base = {"SECRET_KEY": TEST_SECRET_KEY}
    s = Settings.from_env({**base, "MAILROOM_OAUTH_MICROSOFT_CLIENT_ID": "app", "MAILROOM_OAUTH_MICROSOFT_TENANT":
                           "house.example", "MAILROOM_OAUTH_MICROSOFT_CLIENT_SECRET": "s3cret",
                           "MAILROOM_SMTP_OAUTH_MAILBOX": NAME})
    app = s.oauth_app("microsoft")
    assert app is not None and app.token_url == "https://login.microsoftonline.com/house.example/oauth2/v2.0/token"
    assert "s3cret" not in repr(s) and s.oauth_app("google") is None and s.smtp_oauth_mailbox == NAME
    with pytest.raises(SettingsError, match="MAILROOM_OAUTH_GENERIC_CLIENT_ID is set but"):
        Settings.from_env({**base, "MAILROOM_OAUTH_GENERIC_CLIENT_ID": "app"})
    with pytest.raises(SettingsError, match="MAILROOM_OAUTH_GENERIC_TOKEN_URL=.*must be an https address"):
        Settings.from_env({**base, "MAILROOM_OAUTH_GENERIC_CLIENT_ID": "app", "MAILROOM_OAUTH_GENERIC_SCOPES": "m",
                           "MAILROOM_OAUTH_GENERIC_TOKEN_URL": "http://login.example.test/token"})
    with pytest.raises(SettingsError, match="MAILROOM_OAUTH_GENERIC_SCOPES must name"):
        Settings.from_env({**base, "MAILROOM_OAUTH_GENERIC_CLIENT_ID": "app",
                           "MAILROOM_OAUTH_GENERIC_TOKEN_URL": "https://login.example.test/token"})


def test_a_name_taken_while_the_admin_was_at_the_provider_is_not_connected_over(client, auth, endpoint, dovecot,
                                                                                 session):
    auth.login("admin")
    started = _start(client, auth, port=dovecot.port)
    back = _browser_at_provider(started.headers["Location"])
    other = MailboxAccount(name=NAME, host="imap.example.org", port=993, security="ssl", username="someone",
                           password_encrypted="x", folders=["INBOX"])
    session.add(other)
    session.commit()
    assert client.get(back).status_code == 303
    assert "was added meanwhile; use its own Connect button" in _flashes(client)
    session.rollback()  # a new snapshot: other connections wrote
    session.expire_all()
    assert other.auth_kind == "password" and other.refresh_token_encrypted is None


def test_the_sign_in_in_progress_is_kept_on_the_server_sealed_and_for_its_admin_only(
        app, client, auth, endpoint, dovecot, session, redis, factory):
    """The cookie carries an opaque id; Redis holds the verifier encrypted, under a digest of that id, for
    fifteen minutes at most; another admin's browser holding the id is refused, and that uses it up."""
    first = auth.login("admin")
    started = _start(client, auth, port=dovecot.port)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started.headers["Location"]).query))
    with client.session_transaction() as cookie:
        pending_id = cookie["mailbox_oauth"]
    [key] = redis.keys("mailroom:oauth-pending:*")
    sealed = redis.get(key).decode()
    assert pending_id.encode() not in key and query["state"] not in sealed and "verifier" not in sealed
    entry = json.loads(mailbox_oauth.decrypt_token(TEST_SECRET_KEY, sealed))
    assert entry["staffer_id"] == first.id and entry["state"] == query["state"] and len(entry["verifier"]) >= 43
    assert 600 < redis.ttl(key) <= 900

    other_client = app.test_client()
    other = Auth(other_client, factory, session)
    other.login("admin")
    with other_client.session_transaction() as cookie:
        cookie["mailbox_oauth"] = pending_id  # the first admin's id, in another admin's session
    back = _browser_at_provider(started.headers["Location"])
    assert other_client.get(back).status_code == 303
    assert "started by someone else" in other_client.get("/admin/intake").get_data(as_text=True)
    assert redis.keys("mailroom:oauth-pending:*") == []
    assert client.get(back).status_code == 303  # used up: the first admin starts again
    assert "was not started from this page" in _flashes(client)
    assert session.scalar(select(MailboxAccount.id)) is None
    assert not [r for r in endpoint.requests if r.get("grant_type") == "authorization_code"]


def _race(logins: list[mailbox_oauth.OAuthLogin]) -> list[object]:
    """Each login asks for an access token at the same moment, from its own thread."""
    barrier = threading.Barrier(len(logins))
    results: list[object] = [None] * len(logins)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = logins[i].access_token()
        except mailbox_oauth.OAuthError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(logins))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _keeper(db: Database, mailbox_id: int):
    """What a worker did before the lock: store each rotated token in its own commit, after renewing."""

    def keep(token: str) -> None:
        with db.unit_of_work() as s:
            mailbox_signin.keep_refresh_token(s, mailbox_id, token, secret_key=TEST_SECRET_KEY)

    return keep


def test_two_processes_renewing_one_mailbox_at_once_take_turns_under_strict_rotation(database, session, endpoint):
    """Two workers (their own engines and sign-ins, as two processes have) renew the same mailbox's token at
    the same moment, against a provider that refuses a refresh token once it has handed out the next."""
    row = MailboxAccount(name=NAME, host="127.0.0.1", port=993, security="ssl", username="office",
                         password_encrypted="", folders=["INBOX"], auth_kind="oauth2", oauth_provider="microsoft",
                         oauth_client_id=endpoint.client_id, oauth_token_url=endpoint.url,
                         refresh_token_encrypted=mailbox_oauth.encrypt_token(TEST_SECRET_KEY, REFRESH))
    session.add(row)
    session.commit()
    endpoint.rotate, endpoint.renew_seconds = True, 0.3
    provider = Provider.of("microsoft", endpoint.client_id, token_url=endpoint.url)
    workers = [Database(database.url), Database(database.url)]
    try:
        # Without the lock (each keeps what it is handed, as before): one of them is refused.
        unlocked = [mailbox_oauth.OAuthLogin(provider, REFRESH) for _ in workers]
        for login, db in zip(unlocked, workers, strict=True):
            login.on_rotate = _keeper(db, row.id)
        results = _race(unlocked)
        assert sum(isinstance(r, mailbox_oauth.OAuthError) for r in results) == 1, results
        assert "refresh token unknown or revoked" in str(next(r for r in results if isinstance(r, Exception)))

        # The mailbox's lock: both get an access token; the second renews with the token the first stored.
        endpoint.refresh_token, endpoint.requests = REFRESH, []
        row.refresh_token_encrypted = mailbox_oauth.encrypt_token(TEST_SECRET_KEY, REFRESH)
        session.commit()
        locked = [mailbox_oauth.OAuthLogin(provider, REFRESH) for _ in workers]
        for login, db in zip(locked, workers, strict=True):
            login.renew = mailbox_signin.locked_renewal(db, row.id, provider, secret_key=TEST_SECRET_KEY)
        results = _race(locked)
        assert all(isinstance(r, str) and r for r in results), results
        assert [r["refresh_token"] for r in endpoint.requests] == [REFRESH, REFRESH + "+"]
        assert sorted(login.refresh_token for login in locked) == [REFRESH + "+", REFRESH + "++"]
        session.rollback()  # a new snapshot: other connections wrote
        session.expire_all()
        assert mailbox_oauth.decrypt_token(TEST_SECRET_KEY, row.refresh_token_encrypted or "") == REFRESH + "++"
        # The one holding the older token renews next with the stored one, not its own (which is refused now).
        stale = min(locked, key=lambda login: len(login.refresh_token))
        assert stale.access_token(force=True)
        assert endpoint.requests[-1]["refresh_token"] == REFRESH + "++"
    finally:
        for db in workers:
            db.dispose()


def test_without_redis_a_sign_in_is_not_started_and_says_why(settings, factory, session, endpoint):
    """The sign-in in progress lives in Redis: with Redis unreachable the admin is told, and never sent off."""
    from web import create_app

    app = create_app(dataclasses.replace(settings, redis_url="redis://127.0.0.1:9/0"))  # nothing listens there
    try:
        client = app.test_client()
        Auth(client, factory, session).login("admin")
        response = _start(client, Auth(client, factory, session), port=993)
        assert response.status_code == 303 and response.headers["Location"].endswith("/admin/intake")
        assert "which holds the sign-in while you are at the provider, cannot be reached" in _flashes(client)
        with client.session_transaction() as cookie:
            assert "mailbox_oauth" not in cookie
        assert not endpoint.authorizations
    finally:
        app.extensions["mailroom.db"].dispose()
        app.extensions["mailroom.db_write"].dispose()
