"""OAuth2 mailboxes against a real Dovecot that checks bearer tokens itself (its oauth2 passdb with local
JWT validation), a token endpoint on loopback, and aiosmtpd taking AUTH XOAUTH2. No internet."""

from __future__ import annotations

import base64
import os
import tempfile
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from sqlalchemy import func, select, text

from correspondence.models import MailboxAccount, Message
from correspondence.services import mailbox_oauth
from correspondence.services.mailbox_oauth import AccessToken, OAuthError, OAuthLogin, Provider, TokenUnreadable
from drafting.send import SmtpConfig, TryLater, connect
from intake.imap import accounts_from_db, check_connection, poll_account, poll_all, save_rotated_token
from intake.pipeline import Rules
from tests.conftest import TEST_SECRET_KEY, need
from tests.dovecot import Dovecot, find_dovecot
from tests.dovecot_oauth import TokenEndpoint
from tests.smtp import Inbox, free_port

KEY = os.urandom(32)
ISSUER = "https://login.example.test/tenant/v2.0"
AUDIENCE = "https://outlook.office.example.test"
REFRESH = "1.AVEA-refresh-token-that-must-never-be-stored-in-clear"


@pytest.fixture
def endpoint():
    server = TokenEndpoint(KEY, issuer=ISSUER, audience=AUDIENCE, subject="office", refresh_token=REFRESH).start()
    yield server
    server.stop()


@pytest.fixture
def dovecot():
    # One server per test: Dovecot slows down repeated refusals from one address (its auth penalty).
    need(find_dovecot() is not None, "dovecot is not installed (apt-get install dovecot-imapd)")
    base = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-oauth-", dir="/tmp"))
    os.chmod(base, 0o755)
    server = Dovecot(base, oauth2=True, key=KEY, issuer=ISSUER, audience=AUDIENCE).start()
    yield server
    server.stop()


def _deliver(server: Dovecot, endpoint: TokenEndpoint, n: int) -> None:
    client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
    client.oauthbearer_login("office", endpoint.token())
    for i in range(n):
        client.append("INBOX", (f"From: Person {i} <person{i}@example.org>\r\nTo: office@house.example\r\n"
                                f"Subject: Letter {i}\r\nMessage-ID: <oauth-{i}@example.org>\r\n\r\n"
                                f"Please read letter number {i}.\r\n").encode())
    client.logout()


def _mailbox(session, server: Dovecot, endpoint: TokenEndpoint, *, provider: str = "microsoft",
             name: str = "Casework inbox") -> MailboxAccount:
    row = MailboxAccount(name=name, host="127.0.0.1", port=server.port, security="none", username="office",
                         password_encrypted="", folders=["INBOX"], auth_kind="oauth2", oauth_provider=provider,
                         oauth_client_id=endpoint.client_id, oauth_token_url=endpoint.url,
                         refresh_token_encrypted=mailbox_oauth.encrypt_token(TEST_SECRET_KEY, REFRESH))
    session.add(row)
    session.commit()
    return row


def _count(session) -> int:
    session.rollback()
    return int(session.scalar(select(func.count(Message.id))) or 0)


@pytest.mark.parametrize("provider", ["microsoft", "generic"])  # XOAUTH2, then OAUTHBEARER
def test_poll_signs_in_with_a_token_renewed_from_the_stored_refresh_token(provider, dovecot, endpoint,
                                                                           database, session):
    _deliver(dovecot, endpoint, 3)
    _mailbox(session, dovecot, endpoint, provider=provider)
    [account] = accounts_from_db(session, TEST_SECRET_KEY)
    assert account.oauth is not None and account.password == ""
    result = poll_account(database, account, max_bytes=1_000_000, rules=Rules())
    assert result.summary.received == 3 and _count(session) == 3
    assert [r["grant_type"] for r in endpoint.requests] == ["refresh_token"]
    assert endpoint.requests[0]["refresh_token"] == REFRESH
    method = "XOAUTH2" if provider == "microsoft" else "OAUTHBEARER"
    assert f"user=<office>, method={method}" in dovecot.log()
    # A second poll reuses the access token while it is fresh: no second trip to the provider.
    [again] = accounts_from_db(session, TEST_SECRET_KEY)
    assert check_connection(again, timeout=10) and len(endpoint.requests) == 1


@pytest.mark.parametrize(("bad", "dovecot_says"), [
    ("expired", "Token has expired"),
    ("audience", "client_id not found in aud field"),
])
def test_a_token_dovecot_refuses_is_renewed_and_the_poll_succeeds(bad, dovecot_says, dovecot, endpoint,
                                                                   database, session):
    _deliver(dovecot, endpoint, 2)
    token = endpoint.token(expires_in=-120) if bad == "expired" else endpoint.token(audience="https://other.test")
    # Dovecot itself refuses the token: nothing in Mailroom checked it.
    probe = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
        probe.oauth2_login("office", token)
    assert dovecot_says in dovecot.log()
    _mailbox(session, dovecot, endpoint)
    [account] = accounts_from_db(session, TEST_SECRET_KEY)
    assert account.oauth is not None
    account.oauth.current = AccessToken(token, time.time() + 3600)  # Mailroom believes it is still good
    result = poll_account(database, account, max_bytes=1_000_000, rules=Rules())
    assert result.summary.received == 2 and _count(session) == 2
    assert [r["grant_type"] for r in endpoint.requests] == ["refresh_token"]
    assert account.oauth.renewals == 1 and account.oauth.current.token != token


def test_the_refresh_token_is_encrypted_at_rest(dovecot, endpoint, session):
    row = _mailbox(session, dovecot, endpoint)
    session.expire_all()
    stored = row.refresh_token_encrypted
    assert stored is not None
    raw = session.execute(text("SELECT * FROM mailbox_accounts WHERE id = :id"), {"id": row.id}).one()
    assert all(REFRESH not in str(value) for value in raw)
    assert mailbox_oauth.decrypt_token(TEST_SECRET_KEY, stored) == REFRESH
    with pytest.raises(TokenUnreadable):
        mailbox_oauth.decrypt_token("another-secret-key", stored)
    # Not the key the stored IMAP passwords use: one leaked derivation does not open the other.
    from correspondence import secretbox
    with pytest.raises(secretbox.SecretUnreadable):
        secretbox.decrypt(TEST_SECRET_KEY, stored)


def test_a_rotated_refresh_token_is_stored_encrypted(dovecot, endpoint, session):
    row = _mailbox(session, dovecot, endpoint)
    endpoint.rotate = True
    [account] = accounts_from_db(session, TEST_SECRET_KEY)
    assert account.oauth is not None and check_connection(account, timeout=10)
    assert account.oauth.refresh_token == REFRESH + "+" == endpoint.refresh_token
    assert save_rotated_token(session, row, account.oauth, TEST_SECRET_KEY)
    stored = row.refresh_token_encrypted or ""
    assert REFRESH not in stored
    assert mailbox_oauth.decrypt_token(TEST_SECRET_KEY, stored) == REFRESH + "+"
    assert not save_rotated_token(session, row, account.oauth, TEST_SECRET_KEY)


def test_a_revoked_refresh_token_fails_that_mailbox_only(dovecot, endpoint, database, session):
    _mailbox(session, dovecot, endpoint)
    endpoint.refresh_token = "the-new-one-after-the-admin-revoked-ours"
    with pytest.raises(OAuthError, match="revoked"):
        OAuthLogin(Provider.of("microsoft", endpoint.client_id, token_url=endpoint.url), REFRESH).access_token()
    totals = poll_all(database, accounts_json="", secret_key=TEST_SECRET_KEY, max_bytes=1_000_000, rules=Rules())
    assert totals == {"Casework inbox": -1}


def test_authorization_code_flow_with_pkce_and_state(endpoint):
    provider = Provider.of("generic", endpoint.client_id, token_url=endpoint.url,
                           authorize_url="https://login.example.test/authorize", scopes="mail")
    start = mailbox_oauth.start_authorization(provider, "https://mailroom.example/admin/mailboxes/oauth/return")
    assert "code_challenge_method=S256" in start.url and f"state={start.state}" in start.url
    challenge = start.url.split("code_challenge=")[1].split("&")[0]
    endpoint.codes["code-1"] = (challenge, "https://mailroom.example/admin/mailboxes/oauth/return")
    with pytest.raises(OAuthError, match="another request"):
        mailbox_oauth.finish_authorization(provider, start, state="forged", code="code-1",
                                           redirect_uri="https://mailroom.example/admin/mailboxes/oauth/return")
    access, refresh = mailbox_oauth.finish_authorization(
        provider, start, state=start.state, code="code-1",
        redirect_uri="https://mailroom.example/admin/mailboxes/oauth/return")
    assert refresh == REFRESH and access.fresh()
    # The code cannot be used twice, and a wrong verifier is refused by the provider.
    endpoint.codes["code-2"] = (challenge, "https://mailroom.example/admin/mailboxes/oauth/return")
    wrong = mailbox_oauth.AuthorizationStart(start.url, start.state, "not-the-verifier")
    with pytest.raises(OAuthError, match="invalid_grant"):
        mailbox_oauth.finish_authorization(provider, wrong, state=start.state, code="code-2",
                                           redirect_uri="https://mailroom.example/admin/mailboxes/oauth/return")


def test_device_code_flow_waits_until_signed_in(endpoint):
    provider = Provider.of("generic", endpoint.client_id, token_url=endpoint.url, device_url=endpoint.url,
                           scopes="mail")
    device = mailbox_oauth.start_device_code(provider)
    assert device.user_code == "WDJB-MJHT" and "WDJB-MJHT" in device.message
    slept: list[float] = []
    access, refresh = mailbox_oauth.finish_device_code(provider, device, sleep=slept.append)
    assert refresh == REFRESH and access.token.count(".") == 2 and len(slept) == 2


def test_provider_addresses_must_be_https_or_loopback():
    with pytest.raises(OAuthError, match="https"):
        mailbox_oauth.post_form("http://login.example.test/token", {})
    with pytest.raises(OAuthError, match="https"):
        mailbox_oauth.post_form("http://localhost.example.test/token", {})


class XOAuth2Inbox(Inbox):
    """aiosmtpd with an AUTH XOAUTH2 mechanism that accepts only a token the endpoint minted now."""

    def __init__(self, good: set[str]) -> None:
        super().__init__()
        self.good = good
        self.seen: list[str] = []

    async def auth_XOAUTH2(self, server, args):  # noqa: N802 - aiosmtpd finds mechanisms by this name
        raw = base64.b64decode(args[1]).decode() if len(args) > 1 else ""
        self.seen.append(raw)
        fields = dict(part.split("=", 1) for part in raw.split("\x01") if "=" in part)
        token = fields.get("auth", "").removeprefix("Bearer ")
        ok = fields.get("user") == "office@house.example" and token in self.good
        return AuthResult(success=ok, handled=False, auth_data=fields.get("user"))


@pytest.fixture
def xoauth2_smtp(endpoint):
    good: set[str] = set()
    original = endpoint.tokens

    def tokens():
        body = original()
        good.add(body["access_token"])
        return body

    endpoint.tokens = tokens
    inbox = XOAuth2Inbox(good)
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, auth_require_tls=False,
                            auth_exclude_mechanism=["LOGIN", "PLAIN"])
    controller.start()
    yield inbox, port
    controller.stop()


def test_smtp_signs_in_with_xoauth2_and_renews_a_refused_token(endpoint, xoauth2_smtp):
    inbox, port = xoauth2_smtp
    config = SmtpConfig("127.0.0.1", port, "none", "office@house.example", "", "office@house.example")
    login = OAuthLogin(Provider.of("microsoft", endpoint.client_id, token_url=endpoint.url), REFRESH)
    login.current = AccessToken(endpoint.token(expires_in=-60), time.time() + 3600)  # stale, not yet known
    client = connect(config, oauth=login)
    try:
        client.sendmail("office@house.example", ["person@example.org"],
                        b"From: office@house.example\r\nTo: person@example.org\r\nSubject: Hi\r\n\r\nHello\r\n")
    finally:
        client.quit()
    assert len(inbox.messages) == 1 and len(inbox.seen) == 2 and login.renewals == 1
    assert inbox.seen[1] == f"user=office@house.example\x01auth=Bearer {login.current.token}\x01\x01"


def test_smtp_with_a_revoked_sign_in_is_tried_later(endpoint, xoauth2_smtp):
    _inbox, port = xoauth2_smtp
    config = SmtpConfig("127.0.0.1", port, "none", "office@house.example", "", "office@house.example")
    login = OAuthLogin(Provider.of("microsoft", endpoint.client_id, token_url=endpoint.url), "revoked")
    with pytest.raises(TryLater, match="sign-in"):
        connect(config, oauth=login)
    assert endpoint.requests[-1]["refresh_token"] == "revoked"
