"""Password hashing with argon2id and one-time password generation."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

# A hash of a random password, verified against when no account matches, so a
# wrong email costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class _Counter:
    """How many argon2 verifications this process has run (sign-in throttling is proven by it not moving)."""

    value = 0


VERIFICATIONS = _Counter()


def verify_password(password_hash: str | None, password: str) -> bool:
    VERIFICATIONS.value += 1
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def one_time_password() -> str:
    return secrets.token_urlsafe(12)
