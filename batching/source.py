"""Who is behind a campaign: CWC delivery fields, "Sent via …" footers, link domains, or the subject."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_FOOTER = re.compile(r"(?im)^\s*(?:sent|delivered|submitted)\s+(?:via|through|using|by)\s+(?:the\s+)?"
                     r"([A-Z0-9][\w&'.\- ]{1,80}?)[\s.!]*$|powered by\s+([A-Z0-9][\w&'.\- ]{1,60}?)[\s.!]*$")
_LINK = re.compile(r"https?://([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Domains every letter may link to; they say nothing about who organised the campaign.
_COMMON = {"congress.gov", "house.gov", "senate.gov", "whitehouse.gov", "google.com", "youtube.com",
           "facebook.com", "twitter.com", "x.com", "bit.ly", "t.co", "wikipedia.org", "regulations.gov"}


@dataclass(frozen=True)
class Member:
    body: str
    subject: str = ""
    organization: str | None = None
    delivery_agent: str | None = None
    campaign_id: str | None = None


@dataclass(frozen=True)
class Source:
    name: str | None
    kind: str | None  # "cwc", "footer", "link", "subject"
    campaign_id: str | None = None


def _majority(values: list[str], total: int, share: float) -> str | None:
    if not values:
        return None
    value, count = Counter(values).most_common(1)[0]
    return value if count >= share * total else None


def detect_source(members: Sequence[Member], share: float = 0.3) -> Source:
    total = len(members)
    if not total:
        return Source(None, None)
    campaign = _majority([m.campaign_id for m in members if m.campaign_id], total, share)
    org = _majority([m.organization.strip() for m in members if m.organization and m.organization.strip()],
                    total, share)
    agent = _majority([m.delivery_agent.strip() for m in members if m.delivery_agent and m.delivery_agent.strip()],
                      total, share)
    if org or agent:
        name = f"{org} (via {agent})" if org and agent and org != agent else (org or agent)
        return Source(name, "cwc", campaign)
    footers = []
    for m in members:
        found = _FOOTER.search(m.body or "")
        if found:
            footers.append((found.group(1) or found.group(2)).strip())
    footer = _majority(footers, total, share)
    if footer:
        return Source(footer, "footer", campaign)
    domains: list[str] = []
    for m in members:
        hosts = {h.lower().removeprefix("www.") for h in _LINK.findall(m.body or "")}
        domains.extend(h for h in hosts if h not in _COMMON and not h.endswith((".gov", ".mil")))
    domain = _majority(domains, total, share)
    if domain:
        return Source(domain, "link", campaign)
    subject = _majority([re.sub(r"^\s*((re|fwd?|fw)\s*:\s*)+", "", m.subject or "", flags=re.I).strip()
                         for m in members if (m.subject or "").strip()], total, share)
    if subject:
        return Source(f"subject: {subject[:200]}", "subject", campaign)
    return Source(None, None, campaign)
