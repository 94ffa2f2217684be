"""A mailbox's OAuth2 sign-in while the admin is at the provider: the PKCE verifier, the state and the
mailbox planned, kept on the server (in Redis, encrypted like the refresh tokens), never in the browser.

The admin's session cookie carries only an opaque id. A signed cookie is readable by whoever holds it and
can be sent again after it was "used"; kept here, the verifier never leaves the server, and taking it is
one atomic GET and DELETE, so a return works once whatever copy of the cookie comes back. The entry is
bound to the admin who started it and read back only for them; it is good for ten minutes.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from correspondence.services import mailbox_oauth

# How long a sign-in started here may take at the provider before its return is refused.
PENDING_SECONDS = 600
# Redis keeps an entry this much longer than it is good for, so a late return is told it was too late
# rather than that it was never started.
GRACE_SECONDS = 300
_KEY = "mailroom:oauth-pending:"
_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


class PendingUnavailable(Exception):
    """Redis cannot be reached: a sign-in can be neither started nor finished."""


@dataclass(frozen=True)
class Taken:
    """What the return found: the sign-in's values, or why there are none (`refused`)."""

    values: dict[str, Any]
    refused: str = ""


def _key(pending_id: str) -> str:
    # Keyed by a digest of the id: whoever reads Redis cannot rebuild the cookie's value from the keys.
    return _KEY + hashlib.sha256(pending_id.encode()).hexdigest()


def keep(redis: Redis, values: dict[str, Any], *, staffer_id: int, secret_key: str,
         now: float | None = None) -> str:
    """Store a sign-in in progress for this admin; returns the opaque id the cookie carries."""
    pending_id = secrets.token_urlsafe(32)
    entry = {**values, "staffer_id": staffer_id, "expires": (now or time.time()) + PENDING_SECONDS}
    sealed = mailbox_oauth.encrypt_token(secret_key, json.dumps(entry))
    try:
        redis.set(_key(pending_id), sealed, ex=PENDING_SECONDS + GRACE_SECONDS, nx=True)
    except RedisError as exc:
        raise PendingUnavailable(str(exc)) from exc
    return pending_id


def take(redis: Redis, pending_id: object, *, staffer_id: int, secret_key: str, now: float | None = None) -> Taken:
    """Take the sign-in out (it is gone whatever happens next) and check it is this admin's and in time."""
    if not isinstance(pending_id, str) or not _ID.match(pending_id):
        return Taken({}, "not_started")
    try:
        with redis.pipeline(transaction=True) as pipe:
            pipe.get(_key(pending_id))
            pipe.delete(_key(pending_id))
            raw, _deleted = pipe.execute()
    except RedisError as exc:
        raise PendingUnavailable(str(exc)) from exc
    if raw is None:
        return Taken({}, "not_started")  # never started, used already, or long expired
    try:
        entry = json.loads(mailbox_oauth.decrypt_token(secret_key, raw.decode()))
    except (mailbox_oauth.TokenUnreadable, ValueError):
        return Taken({}, "not_started")  # stored under another SECRET_KEY
    if not isinstance(entry, dict) or entry.get("staffer_id") != staffer_id:
        return Taken({}, "not_started")
    if (now or time.time()) > float(entry.get("expires") or 0):
        return Taken({}, "expired")
    return Taken(entry)
