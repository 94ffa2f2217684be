"""What the send path adds to each email: the signed return path, one-click unsubscribe, the DKIM signature.

``drafting.send`` builds the letter's email, then asks this module for the rest, so the rules of
deliverability live here and the exactly-once machinery stays there.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path

from outbound.tokens import return_path, unsubscribe_token

# Signed when present. RFC 8058 asks that List-Unsubscribe and List-Unsubscribe-Post be covered, so a
# relay cannot add an unsubscribe link of its own to a signed letter.
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to", b"references",
                  b"mime-version", b"content-type", b"list-unsubscribe", b"list-unsubscribe-post")


def envelope_sender(response_id: int, settings) -> str:
    """MAIL FROM for this letter: bounces+r<id>-<check>@domain, so its bounce finds it."""
    return return_path(response_id, secret_key=settings.secret_key, bounce_mailbox=settings.bounce_mailbox)


def unsubscribe_url(response_id: int, settings) -> str:
    return f"{settings.base_url}/u/{unsubscribe_token(response_id, secret_key=settings.secret_key)}"


def add_list_unsubscribe(email: EmailMessage, response_id: int, settings) -> None:
    """RFC 8058 one-click unsubscribe: for follow-ups and newsletters, never for an answer to a person's letter."""
    email["List-Unsubscribe"] = f"<{unsubscribe_url(response_id, settings)}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class DkimKey:
    selector: bytes
    domain: bytes
    private_key: bytes


@lru_cache(maxsize=4)
def _read_key(path: Path, mtime: float) -> bytes:
    return path.read_bytes()


def dkim_key(settings) -> DkimKey | None:
    """The configured signing key, or None when DKIM signing is off (no MAILROOM_DKIM_KEY)."""
    path = settings.dkim_key_path
    if path is None:
        return None
    domain = settings.dkim_domain or settings.mail_domain
    return DkimKey(settings.dkim_selector.encode(), domain.encode(), _read_key(path, path.stat().st_mtime))


def wire_bytes(email: EmailMessage, envelope_from: str, recipients: list[str]) -> bytes:
    """The bytes smtplib's send_message puts on the wire for this email (the same generator and policy)."""
    international = not "".join([envelope_from, *recipients]).isascii()
    out = io.BytesIO()
    chosen = email.policy.clone(utf8=True) if international else email.policy  # type: ignore[call-arg]  # EmailPolicy has utf8
    BytesGenerator(out, policy=chosen).flatten(
        email, linesep="\r\n")
    return out.getvalue()


def sign(email: EmailMessage, key: DkimKey, envelope_from: str) -> None:
    """Add a DKIM-Signature (relaxed/relaxed) over the bytes the email will be sent as.

    Flattening first also fixes the MIME boundaries in the email, so sending it flattens to the same
    bytes; the signature header is stored raw (``set_raw``: dkimpy folds it already) so it is not refolded.
    """
    import dkim

    recipients = [a.addr_spec for a in email["To"].addresses] if email["To"] else []
    data = wire_bytes(email, envelope_from, recipients)
    present = {name.lower().encode() for name in email}
    signature = dkim.sign(data, key.selector, key.domain, key.private_key,
                          canonicalize=(b"relaxed", b"relaxed"),
                          include_headers=[h for h in SIGNED_HEADERS if h in present])
    name, _, value = signature.decode("ascii").partition(":")
    email.set_raw(name, value.lstrip(" ").rstrip("\r\n").replace("\r\n", "\n"))
