"""Rate limits on every public endpoint, kept in Redis so they hold across web processes.

A before_request hook looks at the route's access rule (web/access.py): every PUBLIC or API_TOKEN
route is limited per client and for everyone together, so a public route added later is limited
without anyone remembering to. Staff pages are not limited here and never touch Redis for it.

| group  | routes                                | per                           | together      |
| ------ | ------------------------------------- | ----------------------------- | ------------- |
| help   | the public help form, GET and POST    | client address                | help.global   |
| login  | POST /login                           | client address                | login.global  |
| api    | the intake API                        | the token presented, and the  | api.global    |
|        |                                       | client address (api.client)   |               |
| unsub- | one-click unsubscribe (/u/<token>),   | client address                | unsubscribe.  |
| scribe | GET and POST; its own budget, apart   |                               | global        |
|        | from sign-in's and the public pages'  |                               |               |
| signup | POST /subscribe/<list> (it sends mail)| client address; and each      | signup.global |
|        |                                       | address typed gets only a few |               |
|        |                                       | confirmations (allow_mail_to) |               |
| public | anything else public (/healthz, ...)  | client address                | public.global |

The limits (`limits` library, moving window) come from Settings.rate_limits. An answer over a limit
is 429 with Retry-After (the JSON error shape under /api/). "Client" is the remote address; behind
reverse proxies set MAILROOM_TRUSTED_PROXIES to their number so X-Forwarded-For is believed (and
only then: otherwise anyone could name a new address with each request).

If Redis cannot be reached the limits are kept in this process's memory instead, and it is logged:
the public pages keep serving and keep a limit (per process rather than shared), because a Redis
outage is not something an outsider can cause, while turning the constituent form or sign-in away
would be, and dropping every limit would open them to a flood for as long as it lasts.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from flask import Flask, current_app, make_response, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from config import Settings
from web.access import API_TOKEN, PUBLIC, access_rule

log = logging.getLogger(__name__)

KEY_PREFIX = "mailroom:ratelimit"
# After Redis fails, use memory for this long before trying Redis again, so a dead Redis costs
# one failed connection every few seconds rather than one per request.
RETRY_REDIS_AFTER = 5.0
_GROUP_BY_ENDPOINT = {"cases.help_request": "help", "api.intake_webform": "api", "api.intake_cwc": "api",
                      "unsubscribe.one_click": "unsubscribe"}


@dataclass(frozen=True)
class Refusal:
    group: str
    retry_after: int


class Limiter:
    """Limits per group, counted in Redis (or in memory while Redis is away)."""

    def __init__(self, settings: Settings) -> None:
        self.limits: dict[str, list[RateLimitItem]] = {
            rule: parse_many(value) for rule, value in settings.rate_limits if value != "off"}
        url = settings.redis_url or f"unix://{settings.redis_socket_path}"
        if url.startswith("unix://"):
            url = "redis+unix://" + url[len("unix://"):]
        # Short timeouts: a limiter that waits on a stuck Redis would hang the public pages with it.
        self.redis = MovingWindowRateLimiter(RedisStorage(url, key_prefix=KEY_PREFIX, wrap_exceptions=True,
                                                          socket_connect_timeout=0.5, socket_timeout=0.5))
        self._memory: MovingWindowRateLimiter | None = None  # made on first need: it starts a timer thread
        self._redis_down_until = 0.0

    def check(self, group: str, who: str, address: str | None = None) -> Refusal | None:
        """Count one request of `who` in `group`; a Refusal when a per-client or the global limit is spent."""
        scopes = [("client" if group != "api" else "token", who), ("global", "*")]
        if group == "api" and address is not None and address != who:
            # A token is only what the caller says: one sending a new made-up token each time would have a
            # fresh budget every request and could spend everyone's. The address is counted too.
            scopes.insert(1, ("client", address))
        for scope, key in scopes:
            for item in self.limits.get(f"{group}.{scope}", []):
                allowed, limiter = self._hit(item, group, scope, key)
                if not allowed:
                    reset = limiter.get_window_stats(item, group, scope, key).reset_time
                    return Refusal(group, max(1, math.ceil(reset - time.time())))
        return None

    def allow_mail_to(self, address: str) -> bool:
        """Count one confirmation email to this address; False once its "signup.address" budget is spent
        (hashed, so no address sits in Redis)."""
        key = "address:" + hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]
        return all(self._hit(item, "signup", "address", key)[0] for item in self.limits.get("signup.address", []))

    def _hit(self, item: RateLimitItem, *identifiers: str) -> tuple[bool, MovingWindowRateLimiter]:
        if time.monotonic() >= self._redis_down_until:
            try:
                return self.redis.hit(item, *identifiers), self.redis
            except Exception as exc:  # any Redis failure: keep serving, with limits in memory
                self._redis_down_until = time.monotonic() + RETRY_REDIS_AFTER
                log.warning("rate limiter: redis unreachable, limiting in this process's memory for %ss: %s",
                            RETRY_REDIS_AFTER, exc)
        if self._memory is None:
            self._memory = MovingWindowRateLimiter(MemoryStorage())
        return self._memory.hit(item, *identifiers), self._memory


def init_app(app: Flask, settings: Settings) -> None:
    """Limit public routes; register before CSRF so refused and forged posts count too."""
    app.extensions["mailroom.ratelimit"] = Limiter(settings)
    app.before_request(_limit)


def _group() -> str | None:
    endpoint = request.endpoint
    if endpoint is None or endpoint == "static":
        return None
    rule = access_rule(endpoint)
    if rule not in (PUBLIC, API_TOKEN):
        return None
    if endpoint == "auth.login":
        return "login" if request.method == "POST" else "public"
    if endpoint == "subscriptions.sign_up":
        return "signup" if request.method == "POST" else "public"
    return _GROUP_BY_ENDPOINT.get(endpoint, "api" if rule == API_TOKEN else "public")


def _who(group: str) -> str:
    if group == "api":
        # Per token presented, checked or not (the view checks it): hashed, so no token sits in Redis.
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get(
            "X-Mailroom-Token", "")
        if token:
            return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return f"addr:{request.remote_addr or '-'}"


def _limit():
    group = _group()
    if group is None:
        return None
    refusal = current_app.extensions["mailroom.ratelimit"].check(group, _who(group),
                                                                 f"addr:{request.remote_addr or '-'}")
    if refusal is None:
        return None
    from web import _error_page

    log.info("rate limited group=%s remote_addr=%s path=%s", group, request.remote_addr, request.path)
    response = make_response(_error_page(429, "Too many requests from you or from everyone just now. Please wait "
                                              f"{refusal.retry_after} seconds and try again."))
    response.headers["Retry-After"] = str(refusal.retry_after)
    return response


def clear(redis_url: str) -> None:
    """Forget every count (tests start each app with fresh limits; an admin can after an incident)."""
    from redis import Redis

    conn = Redis.from_url(redis_url)
    keys = list(conn.scan_iter(f"{KEY_PREFIX}*", count=1000))
    if keys:
        conn.delete(*keys)
