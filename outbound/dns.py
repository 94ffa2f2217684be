"""`mailroom mail check-dns DOMAIN`: the SPF, DKIM and DMARC records a receiving server would look up.

Since 2024 the large mailbox providers refuse bulk mail without SPF or DKIM aligned with the From
domain and a DMARC policy. This reads what is published (dnspython) and says what is found; the
parsing of record text is separate (``read_spf``, ``read_dmarc``, ``read_dkim``) so it is tested
without a network. When no name server answers, it says so instead of reporting records missing.
"""

from __future__ import annotations

from dataclasses import dataclass


class DnsUnreachable(RuntimeError):
    """No name server could be asked (offline, or DNS blocked)."""


@dataclass(frozen=True)
class Finding:
    kind: str  # SPF, DKIM or DMARC
    name: str  # the DNS name looked up
    record: str | None  # the record found, or None
    verdict: str  # one line for a person

    @property
    def ok(self) -> bool:
        return self.record is not None


def _tags(text: str) -> dict[str, str]:
    tags = {}
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            tags[key.strip().lower()] = value.strip()
    return tags


def read_spf(texts: list[str]) -> str:
    spf = [t for t in texts if t.lower().startswith("v=spf1")]
    if not spf:
        return "no SPF record (v=spf1)"
    if len(spf) > 1:
        return f"{len(spf)} SPF records: receivers treat more than one as an error (permerror)"
    last = spf[0].split()[-1].lower()
    ending = {"-all": "fails everything else (-all)", "~all": "soft-fails everything else (~all)",
              "?all": "is neutral about everything else (?all)", "+all": "allows anyone (+all): fix this"}
    return f"SPF found; it {ending.get(last, 'has no all mechanism at the end')}"


def read_dmarc(texts: list[str]) -> str:
    dmarc = [t for t in texts if t.replace(" ", "").lower().startswith("v=dmarc1")]
    if not dmarc:
        return "no DMARC record (v=DMARC1)"
    tags = _tags(dmarc[0])
    policy = tags.get("p", "")
    if policy.lower() not in ("none", "quarantine", "reject"):
        return "DMARC record without a valid policy (p=none, quarantine or reject)"
    report = f", reports to {tags['rua']}" if tags.get("rua") else ", no aggregate reports (rua)"
    return f"DMARC found: policy {policy.lower()}{report}"


def read_dkim(texts: list[str]) -> str:
    keys = [t for t in texts if "p=" in t.replace(" ", "")]
    if not keys:
        return "no DKIM key record"
    tags = _tags(keys[0])
    if not tags.get("p"):
        return "DKIM key revoked (empty p=)"
    return f"DKIM key found ({tags.get('k', 'rsa')}, {len(tags['p'])} characters of key)"


def _txt(resolver, name: str) -> list[str]:
    import dns.exception
    import dns.resolver

    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        raise DnsUnreachable(f"could not reach DNS to look up {name}: {exc}") from exc
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def resolver_for(nameserver: str | None = None, *, lifetime: float = 5.0):
    """The system's resolver, or one asking only ``nameserver`` ("IP" or "IP:port")."""
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=nameserver is None)
    except dns.resolver.NoResolverConfiguration as exc:
        raise DnsUnreachable(f"could not reach DNS: no name server is configured ({exc})") from exc
    if nameserver:
        host, _, port = nameserver.rpartition(":") if nameserver.count(":") == 1 else (nameserver, "", "")
        resolver.nameservers, resolver.port = [host], int(port or 53)
    resolver.lifetime = lifetime
    return resolver


def check_domain(domain: str, *, selector: str | None = None, resolver=None) -> list[Finding]:
    """Look the records up; raises DnsUnreachable when no name server answers."""
    resolver = resolver or resolver_for()
    domain = domain.strip().rstrip(".").lower()
    findings = []
    texts = _txt(resolver, domain)
    findings.append(Finding("SPF", domain, next((t for t in texts if t.lower().startswith("v=spf1")), None),
                            read_spf(texts)))
    name = f"_dmarc.{domain}"
    texts = _txt(resolver, name)
    findings.append(Finding("DMARC", name, next((t for t in texts if "dmarc1" in t.lower()), None), read_dmarc(texts)))
    if selector:
        name = f"{selector}._domainkey.{domain}"
        texts = _txt(resolver, name)
        findings.append(Finding("DKIM", name, texts[0] if texts else None, read_dkim(texts)))
    else:
        findings.append(Finding("DKIM", f"<selector>._domainkey.{domain}", None,
                                "not looked up: give --selector (or set MAILROOM_DKIM_SELECTOR)"))
    return findings
