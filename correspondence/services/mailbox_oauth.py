"""OAuth2 sign-in for mailboxes (Microsoft 365, Google, or any standard provider): IMAP and SMTP
with XOAUTH2 / OAUTHBEARER instead of a password.

Mailroom keeps only the *refresh token*, encrypted at rest (Fernet with a key derived by HKDF from
MAILROOM_TOKEN_KEY when set, else from SECRET_KEY, under its own label so it never shares a key with
the stored IMAP passwords). Access tokens are short-lived: they are renewed here, with a plain
`grant_type=refresh_token` POST to the provider's token endpoint, kept in memory only, and renewed
early (a minute before they expire) or at once when the mail server refuses one.

Plain OAuth2 over urllib rather than msal/authlib: the three calls Mailroom needs (authorization code
with PKCE, device code, refresh) are standard RFC 6749/7636/8628 requests that Microsoft and Google
both answer, every endpoint is a setting (so the tests use a token endpoint on loopback and nothing
reaches the internet), and it adds no dependency.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

PROVIDERS = ("microsoft", "google", "generic")

# The provider endpoints Mailroom uses by default; every one can be replaced in the settings.
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/organizations"
DEFAULT_ENDPOINTS: dict[str, dict[str, str]] = {
    "microsoft": {
        "authorize_url": MICROSOFT_AUTHORITY + "/oauth2/v2.0/authorize",
        "token_url": MICROSOFT_AUTHORITY + "/oauth2/v2.0/token",
        "device_url": MICROSOFT_AUTHORITY + "/oauth2/v2.0/devicecode",
        "scopes": "offline_access https://outlook.office.com/IMAP.AccessAsUser.All "
                  "https://outlook.office.com/SMTP.Send",
    },
    "google": {
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "device_url": "https://oauth2.googleapis.com/device/code",
        "scopes": "https://mail.google.com/",
    },
    "generic": {"authorize_url": "", "token_url": "", "device_url": "", "scopes": ""},
}


def microsoft_endpoints(tenant: str) -> dict[str, str]:
    """Microsoft's addresses for one directory (a tenant id or domain; "organizations" takes any work account)."""
    authority = f"https://login.microsoftonline.com/{urllib.parse.quote(tenant.strip() or 'organizations', safe='')}"
    return {"authorize_url": authority + "/oauth2/v2.0/authorize", "token_url": authority + "/oauth2/v2.0/token",
            "device_url": authority + "/oauth2/v2.0/devicecode"}


# Refresh this long before the provider's stated expiry, so a token never dies mid-poll.
EARLY_SECONDS = 60


class OAuthError(RuntimeError):
    """The provider refused (revoked refresh token, wrong client) or could not be reached."""


class TokenUnreadable(ValueError):
    """The stored refresh token was encrypted under another key (SECRET_KEY / MAILROOM_TOKEN_KEY changed)."""


# --- the refresh token at rest ---------------------------------------------------------------------

def _fernet(key_material: str) -> Fernet:
    if not key_material:
        raise ValueError("a key (MAILROOM_TOKEN_KEY or SECRET_KEY) is needed to store an OAuth2 token")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"mailroom",
               info=b"mailroom mailbox oauth2 refresh token v1").derive(key_material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_token(key_material: str, token: str) -> str:
    return _fernet(key_material).encrypt(token.encode()).decode()


def decrypt_token(key_material: str, stored: str) -> str:
    try:
        return _fernet(key_material).decrypt(stored.encode()).decode()
    except InvalidToken as exc:
        raise TokenUnreadable("the mailbox's sign-in cannot be read with this key; connect the mailbox again") from exc


# --- SASL strings ----------------------------------------------------------------------------------

def xoauth2_string(username: str, access_token: str) -> str:
    """The XOAUTH2 initial response (Google and Microsoft), before base64."""
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01"


def oauthbearer_string(username: str, access_token: str, host: str = "", port: int = 0) -> str:
    """The OAUTHBEARER (RFC 7628) initial response, before base64."""
    extra = (f"host={host}\x01" if host else "") + (f"port={port}\x01" if port else "")
    return f"n,a={username},\x01{extra}auth=Bearer {access_token}\x01\x01"


# --- the provider ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Provider:
    """One app registration at one provider: where to send people and where to get tokens."""

    kind: str
    client_id: str
    token_url: str
    client_secret: str = field(default="", repr=False)
    authorize_url: str = ""
    device_url: str = ""
    scopes: str = ""

    @classmethod
    def of(cls, kind: str, client_id: str, *, client_secret: str = "", token_url: str = "",
           authorize_url: str = "", device_url: str = "", scopes: str = "") -> Provider:
        if kind not in PROVIDERS:
            raise ValueError(f"OAuth2 provider must be one of {', '.join(PROVIDERS)}")
        defaults = DEFAULT_ENDPOINTS[kind]
        provider = cls(kind=kind, client_id=client_id, client_secret=client_secret,
                       token_url=token_url or defaults["token_url"],
                       authorize_url=authorize_url or defaults["authorize_url"],
                       device_url=device_url or defaults["device_url"], scopes=scopes or defaults["scopes"])
        if not provider.client_id or not provider.token_url:
            raise ValueError("OAuth2 needs the app's client id and the provider's token address")
        return provider

    def _post(self, form: dict[str, str], *, timeout: float = 30) -> dict[str, Any]:
        data = dict(form, client_id=self.client_id)
        if self.client_secret:
            data["client_secret"] = self.client_secret
        return post_form(self.token_url, data, timeout=timeout)


def post_form(url: str, form: dict[str, str], *, timeout: float = 30) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not loopback:
        raise OAuthError("the provider's address must use https (or be on this machine)")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=urllib.parse.urlencode(form).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            body: Any = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        if isinstance(body, dict) and body.get("error"):
            return body
        raise OAuthError(f"the provider answered {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise OAuthError(f"cannot reach the provider: {exc}") from exc
    if not isinstance(body, dict):
        raise OAuthError("the provider's answer was not understood")
    return body


@dataclass
class AccessToken:
    token: str
    expires_at: float

    def fresh(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) < self.expires_at - EARLY_SECONDS


def _access_token(body: dict[str, Any]) -> AccessToken:
    if body.get("error") or not body.get("access_token"):
        raise OAuthError(str(body.get("error_description") or body.get("error") or "no access token"))
    return AccessToken(str(body["access_token"]), time.time() + float(body.get("expires_in") or 3600))


def refresh(provider: Provider, refresh_token: str, *, timeout: float = 30) -> tuple[AccessToken, str]:
    """A new access token, and the refresh token to keep (providers may rotate it)."""
    body = provider._post({"grant_type": "refresh_token", "refresh_token": refresh_token,
                           **({"scope": provider.scopes} if provider.scopes else {})}, timeout=timeout)
    return _access_token(body), str(body.get("refresh_token") or refresh_token)


@dataclass
class OAuthLogin:
    """How one mailbox signs in: the provider, the (decrypted, in memory) refresh token, and the
    current access token. Thread-safe; one per mailbox per process."""

    provider: Provider
    refresh_token: str = field(repr=False)
    current: AccessToken | None = field(default=None, repr=False)
    renewals: int = 0
    # Called with the new refresh token when the provider hands out another one (Microsoft does at every
    # renewal, and may refuse the old one afterwards): the caller keeps it, encrypted, where the old one was.
    on_rotate: Callable[[str], object] | None = field(default=None, repr=False, compare=False)
    # How to renew when other processes use the same mailbox (mailbox_signin.locked_renewal): given the refresh
    # token this process holds, renew under a lock every process takes, with the token stored last, and store
    # the one handed out before the lock is released; returns the access token and the refresh token now live.
    # Set, it replaces refresh() and on_rotate.
    renew: Callable[[str], tuple[AccessToken, str]] | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def access_token(self, *, force: bool = False) -> str:
        with self._lock:
            if force or self.current is None or not self.current.fresh():
                before = self.refresh_token
                if self.renew is not None:
                    self.current, self.refresh_token = self.renew(self.refresh_token)
                else:
                    self.current, self.refresh_token = refresh(self.provider, self.refresh_token)
                self.renewals += 1
                if self.refresh_token != before and self.renew is None and self.on_rotate is not None:
                    self._keep(self.refresh_token)
            return self.current.token

    def _keep(self, token: str) -> None:
        """Hand the rotated token to the caller to store. A failure to store it must not fail the sign-in
        (the token in memory works); it is logged, and the next rotation is stored instead."""
        assert self.on_rotate is not None
        try:
            self.on_rotate(token)
        except Exception:
            log.exception("oauth2: the rotated refresh token could not be stored; the mailbox keeps working "
                          "with it until this process stops")


# --- connecting a mailbox: authorization code with PKCE, and device code --------------------------

@dataclass(frozen=True)
class AuthorizationStart:
    url: str
    state: str
    verifier: str


def start_authorization(provider: Provider, redirect_uri: str, *, login_hint: str = "") -> AuthorizationStart:
    """Where to send the admin's browser; keep `state` and `verifier` in their session until the return."""
    if not provider.authorize_url:
        raise ValueError("this provider has no authorization address set")
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"client_id": provider.client_id, "response_type": "code", "redirect_uri": redirect_uri,
             "scope": provider.scopes, "state": state, "code_challenge": challenge,
             "code_challenge_method": "S256"}
    if provider.kind == "google":
        query.update(access_type="offline", prompt="consent")  # Google sends a refresh token only so
    if login_hint:
        query["login_hint"] = login_hint
    return AuthorizationStart(f"{provider.authorize_url}?{urllib.parse.urlencode(query)}", state, verifier)


def finish_authorization(provider: Provider, start: AuthorizationStart, *, state: str, code: str,
                         redirect_uri: str) -> tuple[AccessToken, str]:
    """Trade the code the provider sent back for tokens; refuses a return whose state is not ours."""
    if not secrets.compare_digest(state, start.state):
        raise OAuthError("the sign-in came back for another request; start again")
    body = provider._post({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                           "code_verifier": start.verifier})
    access = _access_token(body)
    if not body.get("refresh_token"):
        raise OAuthError("the provider gave no refresh token (is offline access allowed for this app?)")
    return access, str(body["refresh_token"])


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    interval: int
    expires_at: float
    message: str


def start_device_code(provider: Provider) -> DeviceCode:
    if not provider.device_url:
        raise ValueError("this provider has no device-code address set")
    body = post_form(provider.device_url, {"client_id": provider.client_id, "scope": provider.scopes})
    if body.get("error") or not body.get("device_code"):
        raise OAuthError(str(body.get("error_description") or body.get("error") or "no device code"))
    uri = str(body.get("verification_uri") or body.get("verification_url") or "")
    return DeviceCode(str(body["device_code"]), str(body["user_code"]), uri, int(body.get("interval") or 5),
                      time.time() + float(body.get("expires_in") or 900),
                      str(body.get("message") or f"Open {uri} and enter the code {body['user_code']}"))


def finish_device_code(provider: Provider, device: DeviceCode, *, sleep: Any = time.sleep) -> tuple[AccessToken, str]:
    """Ask the token endpoint, at the interval it allows, until the person has signed in (RFC 8628)."""
    interval = device.interval
    while time.time() < device.expires_at:
        body = provider._post({"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                               "device_code": device.device_code})
        error = body.get("error")
        if error == "authorization_pending":
            sleep(interval)
            continue
        if error == "slow_down":
            interval += 5
            sleep(interval)
            continue
        access = _access_token(body)
        if not body.get("refresh_token"):
            raise OAuthError("the provider gave no refresh token (is offline access allowed for this app?)")
        return access, str(body["refresh_token"])
    raise OAuthError("the code expired before anyone signed in; start again")
