"""Stopping naive bots on the public help form, without a third-party CAPTCHA.

Two checks, both invisible to people: a honeypot field (off screen, labelled "leave empty" for screen
readers), and a stamp signed with the secret key when the form is served. The stamp carries the form's
single-use idempotency key and the time it was served, so a bot that posts without loading the form, or
fills it in faster than a person can, is refused — and the key cannot be chosen by the poster.
"""

from __future__ import annotations

import secrets
import time

from itsdangerous import BadSignature, URLSafeSerializer

HONEYPOT_FIELD = "website"
STAMP_FIELD = "form_stamp"
STAMP_MAX_AGE = 24 * 3600
_SALT = "mailroom.help-form"


class NotAPerson(Exception):
    """The submission looks automated; answered 400 with a plain message and nothing is stored."""


def issue_stamp(secret_key: str, *, now: float | None = None) -> str:
    """A new form: a fresh idempotency key and the time it was served, signed."""
    payload = {"k": secrets.token_urlsafe(24), "t": int(time.time() if now is None else now)}
    return URLSafeSerializer(secret_key, salt=_SALT).dumps(payload)


def check_submission(secret_key: str, stamp: str | None, honeypot: str | None, *, min_seconds: int,
                     now: float | None = None) -> str:
    """The form's idempotency key, if the submission passes both checks."""
    if honeypot:
        raise NotAPerson("the field marked \"leave empty\" was filled in")
    try:
        payload = URLSafeSerializer(secret_key, salt=_SALT).loads(stamp or "")
        key, served = str(payload["k"]), int(payload["t"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise NotAPerson("the form was not loaded from this site") from None
    age = (time.time() if now is None else now) - served
    if age < min_seconds:
        raise NotAPerson("the form was sent too quickly after it was opened")
    if age > STAMP_MAX_AGE:
        raise NotAPerson("the form is more than a day old")
    return key
