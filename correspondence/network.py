"""Which hosts a connection without TLS may go to: this machine only."""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 (bracketed or IPv4-mapped too) and "localhost"; no name is looked up in DNS,
    so a name that merely resolves to 127.0.0.1 today does not count."""
    name = (host or "").strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def plain_text_refused(what: str, host: str | None) -> str | None:
    """The reason a clear-text connection to this host is refused, or None when it is allowed."""
    if is_loopback(host):
        return None
    return (f"{what} security 'none' sends the password and mail in clear text, so it is allowed only to this "
            f"machine (127.0.0.1, ::1 or localhost), not to {host!r}; use ssl or starttls")
