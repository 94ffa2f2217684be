"""What the send path adds to each email: the signed return path, one-click unsubscribe, the DKIM signature.

``drafting.send`` builds the letter's email, then asks this module for the rest, so the rules of
deliverability live here and the exactly-once machinery stays there.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any

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


def add_list_unsubscribe_headers(email: EmailMessage, url: str) -> None:
    """RFC 8058's two headers, for a letter whose footer is already in its text (``with_unsubscribe_footer``)."""
    email["List-Unsubscribe"] = f"<{url}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def add_list_unsubscribe(email: EmailMessage, response_id: int, settings) -> None:
    """RFC 8058 one-click unsubscribe: for follow-ups and newsletters, never for an answer to a person's letter.
    The same link is also written at the foot of the letter, for a reader whose mail program shows no
    unsubscribe button."""
    url = unsubscribe_url(response_id, settings)
    email["List-Unsubscribe"] = f"<{url}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    add_unsubscribe_footer(email, url)


FOOTER_TEXT = "You received this letter from our office. To get no more letters like it by email: {url}"


def with_unsubscribe_footer(text: str, html: str, url: str) -> tuple[str, str]:
    """The plain-text and HTML bodies with the unsubscribe footer, before the email's parts are made: the
    same words and markup ``add_unsubscribe_footer`` writes into parts already made, without encoding each
    part twice (the send path's cost per letter)."""
    from html import escape

    text = text.rstrip("\n") + "\n\n-- \n" + FOOTER_TEXT.format(url=url) + "\n"
    link = f'<a href="{escape(url)}">{escape(url)}</a>'
    footer = f'<hr><p style="font-size:smaller">{escape(FOOTER_TEXT).format(url=link)}</p>'
    at = html.rfind("</body>")
    return text, (html[:at] + footer + html[at:] if at >= 0 else html + footer)


def add_unsubscribe_footer(email: EmailMessage, url: str) -> None:
    """The unsubscribe link under the letter, in its plain-text and HTML forms (the link is ours: escaped
    for HTML all the same)."""
    from html import escape

    for part in email.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        if part.get_content_type() == "text/plain":
            part.set_content(part.get_content().rstrip("\n") + "\n\n-- \n" + FOOTER_TEXT.format(url=url) + "\n")
        elif part.get_content_type() == "text/html":
            html = part.get_content()
            link = f'<a href="{escape(url)}">{escape(url)}</a>'
            footer = f'<hr><p style="font-size:smaller">{escape(FOOTER_TEXT).format(url=link)}</p>'
            at = html.rfind("</body>")
            part.set_content(html[:at] + footer + html[at:] if at >= 0 else html + footer, subtype="html")


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


@lru_cache(maxsize=4)
def _rsa_key(private_key: bytes) -> Any:
    """The key parsed once per process by OpenSSL (``cryptography``), for ``_Signer``."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(private_key, password=None)


def _signer_class() -> type:
    """dkimpy's signer with its one slow step, the RSA signature (pure-Python big-number arithmetic,
    ~10 ms for a 2,048-bit key), done by OpenSSL on a key parsed once (~0.6 ms). PKCS#1 v1.5 signatures
    are deterministic, so the header is byte for byte what ``dkim.sign`` makes (tests/test_franking_fixes.py).

    ``gen_header`` is dkimpy 1.1.8's (pinned in pyproject.toml) with only that call changed; everything
    else — canonicalisation, body hash, header selection, folding — is dkimpy's own."""
    import dkim
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    class _Signer(dkim.DKIM):
        rsa_key: Any = None

        def gen_header(self, fields, include_headers, canon_policy, header_name, pk, standardize=False):
            if self.rsa_key is None or self.signature_algorithm != b"rsa-sha256" or standardize:
                return super().gen_header(fields, include_headers, canon_policy, header_name, pk, standardize)
            header_value = b"; ".join(b"=".join(x) for x in fields)
            header_value = dkim.fold(header_value, namelen=len(header_name), linesep=b"\r\n")
            header_value = dkim.RE_BTAG.sub(b"\\1", header_value)
            header = (header_name, b" " + header_value)
            h = dkim.HashThrough(self.hasher(), self.debug_content)
            sig = dict(fields)
            headers = canon_policy.canonicalize_headers(self.headers)
            self.signed_headers = dkim.hash_headers(h, canon_policy, headers, include_headers, header, sig)
            sig2 = self.rsa_key.sign(h.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
            idx = [i for i in range(len(fields)) if fields[i][0] == b"b"][0]
            fields[idx] = (b"b", base64.b64encode(bytes(sig2)))
            header_value = b"; ".join(b"=".join(x) for x in fields) + self.linesep
            return dkim.fold(header_value, namelen=len(header_name), linesep=self.linesep)

    return _Signer


_SIGNER: list[type] = []


def dkim_signature(data: bytes, key: DkimKey, include_headers: list[bytes]) -> bytes:
    """The DKIM-Signature header line (relaxed/relaxed, rsa-sha256) for these bytes."""
    if not _SIGNER:
        _SIGNER.append(_signer_class())
    signer = _SIGNER[0](data, signature_algorithm=b"rsa-sha256", linesep=b"\r\n")
    signer.rsa_key = _rsa_key(key.private_key)
    return bytes(signer.sign(key.selector, key.domain, key.private_key, canonicalize=(b"relaxed", b"relaxed"),
                             include_headers=include_headers))


def sign(email: EmailMessage, key: DkimKey, envelope_from: str) -> None:
    """Add a DKIM-Signature (relaxed/relaxed) over the bytes the email will be sent as.

    Flattening first also fixes the MIME boundaries in the email, so sending it flattens to the same
    bytes; the signature header is stored raw (``set_raw``: dkimpy folds it already) so it is not refolded.
    """
    recipients = [a.addr_spec for a in email["To"].addresses] if email["To"] else []
    data = wire_bytes(email, envelope_from, recipients)
    present = {name.lower().encode() for name in email}
    signature = dkim_signature(data, key, [h for h in SIGNED_HEADERS if h in present])
    name, _, value = signature.decode("ascii").partition(":")
    email.set_raw(name, value.lstrip(" ").rstrip("\r\n").replace("\r\n", "\n"))
