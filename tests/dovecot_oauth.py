"""OAuth2 pieces for the Dovecot fixture: HS256 JWTs signed with the test's own key, and a tiny token
endpoint on loopback that trades a refresh token for such a JWT. Nothing here reaches the internet."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_jwt(key: bytes, claims: dict[str, Any]) -> str:
    """An HS256 JSON Web Token: what a provider's token endpoint hands out as an access token."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signing = f"{header}.{body}".encode()
    return f"{header}.{body}.{_b64(hmac.new(key, signing, hashlib.sha256).digest())}"


class TokenEndpoint:
    """POST /token with grant_type=refresh_token: answers with a fresh JWT for the known refresh token.

    `requests` records each form posted, so a test can see that Mailroom renewed its access token.
    GET /authorize is the provider's sign-in page, already signed in and agreeing (or refusing, with
    `deny` set): it checks the client id and the S256 challenge, and sends the browser back to the
    redirect address with a one-time code (or error=access_denied) and the state.
    """

    def __init__(self, key: bytes, *, issuer: str, audience: str, subject: str, refresh_token: str,
                 client_id: str = "mailroom-test") -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.subject = subject
        self.refresh_token = refresh_token
        self.client_id = client_id
        self.requests: list[dict[str, str]] = []
        # Authorization codes handed out by the (pretend) sign-in page: code -> (PKCE challenge, redirect).
        self.codes: dict[str, tuple[str, str]] = {}
        # Device codes: device_code -> polls still to answer "authorization_pending".
        self.devices: dict[str, int] = {}
        self.lifetime = 3600
        self.rotate = False  # hand out a new refresh token with every renewal (Microsoft does)
        self.deny = False  # the person at the sign-in page refuses consent
        # Seconds a renewal takes at the provider, so two renewals sent at once overlap (a race is real).
        self.renew_seconds = 0.0
        self._renewing = threading.Lock()  # the provider itself answers renewals one at a time
        self.authorizations: list[dict[str, str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                endpoint.requests.append(form)
                status, body = endpoint.answer(form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                endpoint.authorizations.append(query)
                status, location = endpoint.authorize(parts.path, query)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    @property
    def authorize_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/authorize"

    def authorize(self, path: str, query: dict[str, str]) -> tuple[int, str]:
        """The sign-in page's answer: a redirect back with a code (or the refusal), or 400 for a bad request."""
        redirect = query.get("redirect_uri", "")
        if path != "/authorize" or query.get("client_id") != self.client_id or not redirect \
                or query.get("response_type") != "code" or query.get("code_challenge_method") != "S256" \
                or not query.get("code_challenge"):
            return 400, ""
        back = {"state": query.get("state", "")}
        if self.deny:
            back.update(error="access_denied", error_description="The user declined to consent.")
        else:
            code = f"code-{len(self.authorizations)}"
            self.codes[code] = (query["code_challenge"], redirect)
            back["code"] = code
        return 302, f"{redirect}{'&' if '?' in redirect else '?'}{urllib.parse.urlencode(back)}"

    def token(self, *, expires_in: int = 3600, audience: str | None = None) -> str:
        now = int(time.time())
        return mint_jwt(self.key, {"iss": self.issuer, "sub": self.subject, "aud": audience or self.audience,
                                   "iat": now, "nbf": now - 5, "exp": now + expires_in})

    def tokens(self) -> dict[str, Any]:
        return {"token_type": "Bearer", "access_token": self.token(expires_in=self.lifetime),
                "expires_in": self.lifetime, "refresh_token": self.refresh_token}

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        if "scope" in form and "device_code" not in form and grant is None:  # the device-code start
            device = f"dev-{len(self.devices)}"
            self.devices[device] = 2
            return 200, {"device_code": device, "user_code": "WDJB-MJHT", "interval": 0, "expires_in": 60,
                         "verification_uri": "http://127.0.0.1/device"}
        if grant == "authorization_code":
            challenge, redirect = self.codes.pop(form.get("code", ""), ("", ""))
            verifier = form.get("code_verifier", "")
            expected = _b64(hashlib.sha256(verifier.encode()).digest())
            if not challenge or challenge != expected or redirect != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}
            return 200, self.tokens()
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            left = self.devices.get(form.get("device_code", ""))
            if left is None:
                return 400, {"error": "expired_token"}
            if left > 0:
                self.devices[form["device_code"]] = left - 1
                return 400, {"error": "authorization_pending"}
            return 200, self.tokens()
        if grant != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        time.sleep(self.renew_seconds)
        with self._renewing:
            if form.get("refresh_token") != self.refresh_token:
                return 400, {"error": "invalid_grant", "error_description": "refresh token unknown or revoked"}
            if self.rotate:  # strict rotation: the token just used is refused from now on
                self.refresh_token = f"{self.refresh_token}+"
            return 200, self.tokens()

    def start(self) -> TokenEndpoint:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
