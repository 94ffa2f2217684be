"""A batch's template (the consensus of its members) and each member's personal additions.

The template is built from sentences: a sentence belongs to it when at least half of the members
hold it (compared on normalised words), and sentences keep the order they usually have. A member's
additions are its sentences that are neither in the template nor a light edit of a template
sentence (rapidfuzz ratio ≥ 85 on normalised words): the personal story a staffer must read.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from batching.cluster import ClusterSettings, overlap_score, shingles
from batching.normalise import normalise, sentences

# Consensus is computed on at most this many members: enough to be stable, bounded in time.
SAMPLE = 400
EDIT_SIMILARITY = 85


@dataclass(frozen=True)
class Template:
    text: str
    keys: tuple[str, ...]  # normalised sentences, in order
    shingles: frozenset[int]


def build_template(texts: Sequence[str], *, share: float = 0.5) -> Template:
    sample = list(texts[:: max(1, len(texts) // SAMPLE)])[:SAMPLE]
    holders: Counter[str] = Counter()
    positions: dict[str, list[float]] = defaultdict(list)
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for text in sample:
        parts = sentences(text)
        seen = set()
        for i, sentence in enumerate(parts):
            key = normalise(sentence)
            if not key or key in seen:
                continue
            seen.add(key)
            holders[key] += 1
            positions[key].append(i / max(1, len(parts)))
            forms[key][sentence] += 1
    needed = max(1, share * len(sample))
    keys = [k for k, n in holders.items() if n >= needed]
    if not keys and holders:  # no sentence most share (heavily edited copies): the most common ones
        top = holders.most_common(1)[0][1]
        keys = [k for k, n in holders.items() if n == top]
    keys.sort(key=lambda k: statistics.median(positions[k]))
    text = " ".join(forms[k].most_common(1)[0][0] for k in keys)
    return Template(text, tuple(keys), shingles(normalise(text)))


def personal_additions(text: str, template: Template) -> list[str]:
    """The member's sentences that the template does not hold, in the member's words."""
    known = set(template.keys)
    added = []
    for sentence in sentences(text):
        key = normalise(sentence)
        if not key or key in known or len(key.split()) < 3:
            continue
        match = process.extractOne(key, template.keys, scorer=fuzz.ratio) if template.keys else None
        if match is None or match[1] < EDIT_SIMILARITY:
            added.append(sentence)
    return added


def similarity(text: str, template: Template, cfg: ClusterSettings | None = None) -> float:
    """How much of the template the letter holds (or, for a short template, how alike the two are)."""
    cfg = cfg or ClusterSettings()
    s = shingles(normalise(text), cfg.shingle_words)
    if not s or not template.shingles:
        return 1.0 if normalise(text) == normalise(template.text) else 0.0
    return overlap_score(len(s & template.shingles), len(s), len(template.shingles), cfg)
