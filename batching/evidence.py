"""Why a letter belongs (or nearly belongs) to a campaign: a score, the stage that matched, and the
sentence pairs that show it.

This is the interface the batch page and the "possibly part of this campaign" list use. It needs no
database: give it the letter's text and the campaign's template text (``Batch.template_text``).

    ev = explain(letter_text, batch.template_text, key=batch.id)
    ev.band        -> "join" | "uncertain" | "apart"
    ev.score       -> 0..1, how much of the campaign the letter holds
    ev.stage       -> "exact" | "shingles" | "sentences" | "semantic" | "none": the first stage that matched
    ev.pairs       -> (SentencePair(letter=..., template=..., similarity=..., how=...), ...)

The batch page adds the letter's sentences marked for display
(``batching.templates.evidence_from_pairs(text, ev, template, pinned=...)`` fills ``pieces``,
``held``, ``of`` and ``pinned``): this is the one Evidence type, offline, online and on the page.

    candidates(letter_text, {batch.id: batch.template_text, ...}) -> [Evidence, ...] best first,
    only those in the "join" or "uncertain" band (``bands=`` to choose).

    possible_members({message.id: message.body_text, ...}, batch.template_text) -> [Evidence, ...]
    the letters in the uncertain band for one batch, best first (Evidence.key = the message id).

Stages, from the cheapest to the most forgiving:
- ``exact``: the normalised texts are equal (case, punctuation, greeting and signature ignored);
- ``shingles``: word 3-gram overlap, as clustering and the online join use (batching.cluster);
- ``sentences``: the letter's sentences aligned one to one with the template's by rapidfuzz on
  normalised words (light edits, retyped words, reordered points);
- ``semantic``: the same alignment where a pair is also accepted when the two sentences are close
  in a static word-embedding space (batching.semantic; synonyms swapped, words reordered).

The band: ``join`` when the letter would join the campaign on its own (the offline clustering and
the online join use the same measures), ``uncertain`` when it holds a good part of the campaign but
not enough to join without a person (``UNCERTAIN_FROM`` ≤ score < the join threshold), else
``apart``. Scores are comparable across stages: the share of the template's words that the letter's
aligned sentences hold (template coverage), since a letter may add any amount of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from batching.align import SentencePair, align, coverage
from batching.cluster import ClusterSettings, overlap_score, shingles
from batching.normalise import normalise

JOIN, UNCERTAIN, APART = "join", "uncertain", "apart"
STAGES = ("exact", "shingles", "sentences", "semantic", "none")
# Below the join threshold but at or above this score, a letter is listed for a person to decide.
UNCERTAIN_FROM = 0.4


@dataclass(frozen=True)
class Piece:
    """One sentence of a letter as the batch page shows it."""

    text: str
    kind: str  # "shared" (a template sentence), "edited" (a light edit of one), "meaning" (the same in other
    # words: the semantic stage), "added" (their own words), "other" (greetings, thanks, too short)


@dataclass(frozen=True)
class Evidence:
    key: int  # the batch id (or the cluster number offline) this evidence is about
    score: float  # 0..1: share of the template the letter holds, by the stage that matched
    stage: str  # one of STAGES
    band: str  # JOIN | UNCERTAIN | APART
    template_coverage: float  # share of the template's words found in aligned sentences
    letter_coverage: float  # share of the letter's words that are aligned template sentences
    pairs: tuple[SentencePair, ...] = ()
    # Filled for display by batching.templates.evidence_from_pairs:
    pieces: tuple[Piece, ...] = ()  # the letter's sentences, marked
    held: int = 0  # template sentences the letter holds (as written, lightly edited or in other words)
    of: int = 0  # template sentences
    pinned: bool = False  # placed by a person (added from the proposals, or split out)


def explain(text: str, template_text: str, *, key: int = 0, cfg: ClusterSettings | None = None,
            semantic: bool = True) -> Evidence:
    """Evidence for one letter against one template."""
    cfg = cfg or ClusterSettings()
    a, b = normalise(text), normalise(template_text)
    result = align(text, template_text, semantic=semantic)
    t_cov, l_cov = coverage(result)
    if a and a == b:
        return Evidence(key, 1.0, "exact", JOIN, 1.0, 1.0, result.pairs)
    sa, sb = shingles(a, cfg.shingle_words), shingles(b, cfg.shingle_words)
    if len(sa) >= cfg.min_shingles and len(sb) >= cfg.min_shingles:
        s_score = overlap_score(len(sa & sb), len(sa), len(sb), cfg)
        if s_score >= cfg.join_overlap:
            return Evidence(key, round(max(s_score, t_cov), 4), "shingles", JOIN, t_cov, l_cov, result.pairs)
    else:
        s_score = 0.0
    stage = "semantic" if any(p.how == "semantic" for p in result.pairs) else "sentences"
    score = max(t_cov, s_score)
    if not result.pairs:
        band = UNCERTAIN if s_score >= UNCERTAIN_FROM else APART
        return Evidence(key, round(s_score, 4), "shingles" if s_score > 0 else "none", band, 0.0, 0.0, ())
    band = JOIN if result.joins else UNCERTAIN if score >= UNCERTAIN_FROM else APART
    return Evidence(key, round(score, 4), stage, band, t_cov, l_cov, result.pairs)


def candidates(text: str, templates: Mapping[int, str], *, limit: int = 5,
               bands: Iterable[str] = (JOIN, UNCERTAIN), semantic: bool = True) -> list[Evidence]:
    """The campaigns this letter joins or nearly joins, best first (at most ``limit``)."""
    wanted = set(bands)
    found = [ev for key, template in templates.items()
             if (ev := explain(text, template, key=key, semantic=semantic)).band in wanted]
    order = {JOIN: 0, UNCERTAIN: 1, APART: 2}
    found.sort(key=lambda ev: (order[ev.band], -ev.score, ev.key))
    return found[:limit]


def possible_members(letters: Mapping[int, str], template_text: str, *, limit: int = 50,
                     semantic: bool = True) -> list[Evidence]:
    """For one campaign: the letters (id -> text, e.g. the unbatched pool) that nearly belong to it —
    the "possibly part of this campaign" list — best first. ``Evidence.key`` is the letter's id."""
    found = [ev for key, text in letters.items()
             if (ev := explain(text, template_text, key=key, semantic=semantic)).band == UNCERTAIN]
    found.sort(key=lambda ev: (-ev.score, ev.key))
    return found[:limit]
