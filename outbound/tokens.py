"""Per-response tokens, signed with the app secret: the VERP return path and the unsubscribe link.

A bounce comes back to ``bounces+r<response id>-<check>@domain``; the check is an HMAC of the response
id, so a forged report naming another response (to suppress someone else's address) does not match.
The unsubscribe link carries the same kind of token under another purpose, so one cannot stand in for
the other. Checks are lower-case hex: mail servers may fold the case of a local part.
"""

from __future__ import annotations

import hashlib
import hmac
import re

CHECK_LENGTH = 16  # hex characters: 64 bits, far beyond guessing by mail or by URL
_VERP = re.compile(r"^(?P<local>[^+@]+)\+r(?P<id>\d{1,12})-(?P<check>[0-9a-f]{16})@(?P<domain>[^@]+)$")
_TOKEN = re.compile(r"^r(?P<id>\d{1,12})-(?P<check>[0-9a-f]{16})$")


def _check(secret_key: str, purpose: str, response_id: int) -> str:
    mac = hmac.new(secret_key.encode(), f"{purpose}:{response_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:CHECK_LENGTH]


def return_path(response_id: int, *, secret_key: str, bounce_mailbox: str) -> str:
    """The envelope sender (Return-Path) of one response's email."""
    local, _, domain = bounce_mailbox.partition("@")
    return f"{local}+r{response_id}-{_check(secret_key, 'bounce', response_id)}@{domain}"


def response_of_return_path(address: str, *, secret_key: str) -> int | None:
    """The response a VERP address names when its check holds; None for anything else."""
    found = _VERP.match(address.strip().strip("<>").lower())
    if found is None:
        return None
    response_id = int(found["id"])
    ok = hmac.compare_digest(found["check"], _check(secret_key, "bounce", response_id))
    return response_id if ok else None


def unsubscribe_token(response_id: int, *, secret_key: str) -> str:
    return f"r{response_id}-{_check(secret_key, 'unsubscribe', response_id)}"


def response_of_unsubscribe_token(token: str, *, secret_key: str) -> int | None:
    found = _TOKEN.match(token.strip().lower())
    if found is None:
        return None
    response_id = int(found["id"])
    ok = hmac.compare_digest(found["check"], _check(secret_key, "unsubscribe", response_id))
    return response_id if ok else None
