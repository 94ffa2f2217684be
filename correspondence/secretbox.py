"""Symmetric encryption of stored credentials (IMAP passwords) with a key derived from SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`). Changing SECRET_KEY makes stored
credentials unreadable; the admin page then says so and asks for the password again.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretUnreadable(ValueError):
    """Stored under a different SECRET_KEY, or tampered with."""


def _fernet(secret_key: str) -> Fernet:
    key = hashlib.sha256(b"mailroom-credentials:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret_key: str, plain: str) -> str:
    return _fernet(secret_key).encrypt(plain.encode()).decode()


def decrypt(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("the stored password cannot be read with this SECRET_KEY; enter it again") from exc
