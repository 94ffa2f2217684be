"""Second look at the letters word 3-gram clustering left out (batching.cluster runs it last).

The first pass is precise: a letter joins a campaign when it copies most of its template. It misses
copies that were changed more than that. This pass looks at those leftovers only, in four stages,
each one checked by a measure that organic letters on the same topic do not pass:

1. **Pairs.** Two letters that are near-exact copies (overlap ≥ ``PAIR_OVERLAP``) are a batch
   even though a batch is otherwise three letters or more.
2. **Shared passages.** A letter's n-grams that no other letter has are its own (a story, an
   address); the rest are what it shares. Letters are clustered again on the shared part only, so
   a personal addition longer than the template no longer hides the template. A shared part must
   be a real passage (``PASSAGE_SHINGLES`` n-grams), so one common phrase joins nothing.
3. **Slogans.** Short letters (a one-line call to action) are compared by rapidfuzz on their
   normalised words: spelling, case and punctuation do not count, and for lines of
   ``ORDER_FREE_WORDS`` words or more neither does word order.
4. **Sentences.** Longer letters are aligned sentence by sentence (batching.align) with a campaign's
   leader letter, a pair of sentences counting when it is a light edit or close in the word-embedding
   space (batching.semantic): spun, paraphrased, rewritten and talking-point letters join when most
   of the template's sentences are found, in any order. Candidates come from nearest neighbours in the
   embedding space, so each letter is aligned with a handful of leaders only.
"""

from __future__ import annotations

import re
import zlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from operator import itemgetter

import numpy as np
from rapidfuzz import fuzz, process

from batching import semantic
from batching.align import align_keys, coverage
from batching.normalise import core_lines, normalise_line, sentences

PAIR_OVERLAP = 0.8
PASSAGE_SHINGLES = 20
COMMON_MIN = 64
COMMON_SHARE = 0.02
PASSAGE_OVERLAP = 0.6
SLOGAN_WORDS = 30
SLOGAN_SIMILARITY = 88
ORDER_FREE_WORDS = 6
PARTIAL_WORDS = 8
EXTRA_WORDS = 5
WORDS_FOUND = 0.9
NEIGHBOURS = 6
NEIGHBOUR_MIN = 0.9
LEADER_NEIGHBOUR_MIN = 0.8
BLOCK = 256
MIN_SENTENCES = 3
MIN_WORDS = 25
PREFILTER = 0.8


def pair_score(a: frozenset[int] | set[int], b: frozenset[int] | set[int]) -> float:
    """Symmetric overlap of two letters' n-grams (shared over the larger)."""
    if not a or not b:
        return 0.0
    return len(a & b) / max(len(a), len(b))


def shared_passages(units: Sequence[int], sets: Sequence[array], min_shingles: int
                    ) -> dict[int, int]:
    """Leader clustering of ``units`` on the n-grams each shares with another of them.

    Returns unit -> leader for units that joined a leader (leaders map to themselves only when
    something joined them).
    """
    # Document frequency of every n-gram among these letters, in numpy (a Counter of millions of
    # n-grams would cost hundreds of MB).
    arrays = {u: np.frombuffer(sets[u], dtype=np.uint64) if len(sets[u]) else np.zeros(0, np.uint64) for u in units}
    if not arrays:
        return {}
    flat = np.concatenate(list(arrays.values()))
    uniq, counts = np.unique(flat, return_counts=True)
    # Phrases in a good share of all the letters left ("I am writing about something that has been on
    # my mind") are how people write, not what a campaign shares.
    common = max(COMMON_MIN, COMMON_SHARE * len(units))
    # Every letter's kept n-grams at once (in its own order), then cut at the letters' boundaries.
    c = counts[np.searchsorted(uniq, flat)]
    keep = (c > 1) & (c <= common)
    del uniq, counts, c
    bounds = (np.r_[0, np.cumsum(keep)][np.r_[0, np.cumsum([len(a) for a in arrays.values()])]]).tolist()
    kept = flat[keep]
    del flat, keep
    restricted: dict[int, frozenset[int]] = {}
    for n, u in enumerate(arrays):
        if bounds[n + 1] - bounds[n] >= PASSAGE_SHINGLES:
            restricted[u] = frozenset(kept[bounds[n]:bounds[n + 1]].tolist())
    del arrays, kept
    order = sorted(restricted, key=lambda u: (len(restricted[u]), u))
    leaders: dict[int, frozenset[int]] = {}
    index: dict[int, list[int]] = defaultdict(list)
    joined: dict[int, int] = {}
    for u in order:
        r = restricted[u]
        # Counted in C: the postings of at most 64 leaders, chained.
        hits: Counter[int] = Counter(chain.from_iterable(
            posting for posting in map(index.get, r) if posting and len(posting) <= 64))
        best, best_score = None, 0.0
        # most_common(8) (ties in first-seen order) by one sort in C.
        for leader, shared in sorted(hits.items(), key=itemgetter(1), reverse=True)[:8]:
            if shared < PASSAGE_SHINGLES:
                break
            score = shared / min(len(r), len(leaders[leader]))
            if score > best_score:
                best, best_score = leader, score
        if best is not None and best_score >= PASSAGE_OVERLAP:
            joined[u] = best
            joined[best] = best
            continue
        leaders[u] = r
        for h in r:
            index[h].append(u)
    return joined


def _slogan_match(a: str, b: str) -> bool:
    """Two short lines are the same call to action, retyped."""
    wa, wb = a.split(), b.split()
    if fuzz.ratio(a, b) >= SLOGAN_SIMILARITY:
        return True
    if min(len(wa), len(wb)) < ORDER_FREE_WORDS:
        return False
    if fuzz.token_sort_ratio(a, b) >= SLOGAN_SIMILARITY:
        return True
    # One is the other with a few words before or after it ("I urge you to ...", "... please"), in any
    # order, words misspelt: nearly every word of the shorter has a close word in the longer.
    if abs(len(wa) - len(wb)) > EXTRA_WORDS:
        return False
    shorter, longer = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    # ... or, for a longer line, in the same order with a word misspelt past recognition: the shorter
    # line, lightly edited, is a stretch of the longer.
    if len(shorter) >= PARTIAL_WORDS and fuzz.partial_ratio(" ".join(shorter), " ".join(longer)) >= SLOGAN_SIMILARITY:
        return True
    found = sum(1 for w in shorter if process.extractOne(w, longer, scorer=fuzz.ratio, score_cutoff=75) is not None)
    return found >= WORDS_FOUND * len(shorter)


def slogans(units: Sequence[int], texts: Sequence[str], weight: Callable[[int], int],
            seeds: Sequence[int] = ()) -> dict[int, int]:
    """Leader clustering of short letters by rapidfuzz on their normalised words.

    ``seeds`` are leaders already (the first pass's short campaigns, heaviest first), which letters
    may join; a seed that is another seed's call to action retyped (the first pass found one campaign
    in pieces: the words in two orders, say) joins that seed, and is returned joined to it.
    """
    order = sorted(units, key=lambda u: (-weight(u), len(texts[u]), u))
    leaders: list[int] = []
    keys: list[str] = []
    sorted_keys: list[str] = []
    joined: dict[int, int] = {}
    seed_set = set(seeds)
    for u in chain(seeds, order):
        text = texts[u]
        words = text.split()
        if len(words) < 2:
            continue
        best = None
        # Two short campaigns (fewer than ORDER_FREE_WORDS words: "strongly oppose", "I strongly oppose")
        # are as their senders typed them: the exact words, each a campaign of its own.
        if keys and (u not in seed_set or len(words) >= ORDER_FREE_WORDS):
            found = process.extract(text, keys, scorer=fuzz.ratio, limit=3, score_cutoff=60)
            found += process.extract(" ".join(sorted(words)), sorted_keys, scorer=fuzz.ratio, limit=3,
                                     score_cutoff=60)
            for _key, _score, n in sorted(found, key=lambda f: -f[1]):
                if u in seed_set and leaders[n] in seed_set and len(keys[n].split()) < ORDER_FREE_WORDS:
                    continue
                if _slogan_match(text, keys[n]):
                    best = leaders[n]
                    break
        if best is not None:
            joined[u] = best
            joined.setdefault(best, best)
            continue
        leaders.append(u)
        keys.append(text)
        sorted_keys.append(" ".join(sorted(words)))
    return joined


class _Units:
    """A letter's sentences (as written, and normalised) and its vector, computed once."""

    def __init__(self, raw_of: Callable[[int], str]) -> None:
        self.raw_of = raw_of
        self.cache: dict[int, tuple[list[str], list[str]]] = {}
        self.vectors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.stock: set[str] = set()
        self.without_stock: dict[int, tuple[list[str], list[str]]] = {}

    def __call__(self, u: int) -> tuple[list[str], list[str]]:
        got = self.cache.get(u)
        if got is None:
            raw = sentences(self.raw_of(u))
            keys = [normalise_line(s) for s in raw]
            kept = [(r, k) for r, k in zip(raw, keys, strict=True) if k]
            got = ([r for r, _k in kept], [k for _r, k in kept])
            self.cache[u] = got
        if self.stock:
            # A letter is asked for its sentences several times while it is aligned: filtered once.
            filtered = self.without_stock.get(u)
            if filtered is None:
                kept = [(r, k) for r, k in zip(*got, strict=True) if k not in self.stock]
                filtered = self.without_stock[u] = ([r for r, _k in kept], [k for _r, k in kept])
            return filtered
        return got

    def drop_stock(self, units: Sequence[int]) -> None:
        """Sentences in a good share of these letters ("Thank you for reading this.") are how people
        write, not what a campaign shares: left out of alignment from now on."""
        df: Counter[str] = Counter()
        for u in units:
            df.update(set(self(u)[1]))
        common = max(COMMON_MIN, COMMON_SHARE * len(units))
        self.stock = {k for k, c in df.items() if c > common}
        self.vectors.clear()
        self.without_stock.clear()

    def vecs(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        got = self.vectors.get(u)
        if got is None:
            got = self.vectors[u] = semantic.matrix(self(u)[1])
        return got


def _may_align(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """A cheap test before aligning: enough sentences of one side have a close sentence on the other
    (a light edit is close in the embedding space too)."""
    (va, oka), (vb, okb) = a, b
    if not oka.any() or not okb.any():
        return True
    sims = va @ vb.T
    near = sims.max(axis=1) >= PREFILTER
    near_b = sims.max(axis=0) >= PREFILTER
    return bool(near.sum() >= 2 and near_b.sum() >= 2 and
                max(near.mean(), near_b.mean()) >= 0.5)


def _neighbours(vectors: np.ndarray, ok: np.ndarray, rows: range, k: int,
                minimum: float | None = None, similarity: dict[int, list[float]] | None = None
                ) -> dict[int, list[int]]:
    """For each row index in ``rows``, the ``k`` other rows nearest by cosine, at least NEIGHBOUR_MIN.

    Exact, by blocked matrix products; only the pairs above the threshold are kept (few, except
    inside a campaign), so the cost is the products themselves.
    """
    cut = NEIGHBOUR_MIN if minimum is None else minimum
    out: dict[int, list[int]] = {r: [] for r in rows}
    masked = np.where(ok[:, None], vectors, 0.0).astype(np.float32)
    for start in range(rows.start, rows.stop, BLOCK):
        stop = min(start + BLOCK, rows.stop)
        sims = masked[start:stop] @ masked.T
        sims[np.arange(stop - start), np.arange(start, stop)] = -1.0  # not itself
        # Positions in the flattened block (a 2-D nonzero costs ten times as much), row by row.
        flat = np.flatnonzero(sims >= cut)
        if not len(flat):
            continue
        rr, cc = np.divmod(flat, sims.shape[1])
        vals = sims.ravel()[flat]
        order = np.lexsort((cc, -vals, rr))  # by row, then most similar first
        rr, cc, vals = rr[order], cc[order], vals[order]
        first = np.searchsorted(rr, rr, side="left")
        keep = (np.arange(len(rr)) - first) < k
        for r, c in zip(rr[keep].tolist(), cc[keep].tolist(), strict=True):
            out[start + r].append(c)
        if similarity is not None:  # ``similarity[row]``: the cosines of ``out[row]``, in order
            for r, v in zip(rr[keep].tolist(), vals[keep].tolist(), strict=True):
                similarity.setdefault(start + r, []).append(v)
    return out


def sentence_stage(units: Sequence[int], leaders: Sequence[int], normalised: Sequence[str],
                   raw_of: Callable[[int], str], near_out: dict[int, list[int]] | None = None) -> dict[int, int]:
    """Letters joining a leader (an existing campaign's, or another leftover) sentence by sentence.

    Every letter's nearest neighbours in the embedding space are found at once (blocked matrix
    products); then each letter, shortest first, is aligned with the leaders among its neighbours
    (or the leaders they joined) and joins the first whose template sentences it mostly holds, else
    becomes a leader itself. ``near_out`` receives each letter's neighbours at the points stage's
    looser bar (unit -> units), so that stage need not find them again.
    """
    split = _Units(raw_of)

    def fit(u: int) -> bool:
        return len(normalised[u].split()) >= MIN_WORDS

    fixed = [u for u in dict.fromkeys(leaders) if fit(u)]
    fixed_set = set(fixed)
    usable = [u for u in dict.fromkeys(units) if u not in fixed_set and fit(u)]
    if not usable:
        return {}
    ids = fixed + usable
    vectors, ok = semantic.matrix([normalised[u] for u in ids])
    use_semantic = semantic.available()
    if use_semantic:
        # Found once at the looser of the two bars, then cut to this stage's.
        cosines: dict[int, list[float]] = {}
        loose = _neighbours(vectors, ok, range(len(fixed), len(ids)), max(NEIGHBOURS, POINTS_NEIGHBOURS),
                            minimum=min(NEIGHBOUR_MIN, POINTS_NEIGHBOUR_MIN), similarity=cosines)
        near = {r: [c for c, v in zip(found, cosines.get(r, ()), strict=True) if v >= NEIGHBOUR_MIN][:NEIGHBOURS]
                for r, found in loose.items()}
        if near_out is not None:
            for r, found in loose.items():
                near_out[ids[r]] = [ids[c] for c, v in zip(found, cosines.get(r, ()), strict=True)
                                    if v >= POINTS_NEIGHBOUR_MIN][:POINTS_NEIGHBOURS]
        del loose, cosines
    else:  # no model: every fixed leader is a candidate (small sets only)
        near = {r: list(range(len(fixed))) for r in range(len(fixed), len(ids))}
    row_of = {u: n for n, u in enumerate(ids)}
    # Only letters with a near neighbour are split into sentences (the costly part).
    usable = [u for u in usable if near[row_of[u]]]
    involved = set(usable) | {ids[r] for u in usable for r in near[row_of[u]]}
    split.drop_stock([u for u in ids if u in involved])
    usable = [u for u in usable if len(split(u)[1]) >= MIN_SENTENCES]
    is_leader = {u for u in fixed if u in involved and len(split(u)[1]) >= MIN_SENTENCES}
    joined: dict[int, int] = {}
    for u in sorted(usable, key=lambda u: (len(split(u)[1]), u)):
        raw_u, keys_u = split(u)
        best = None
        tried: set[int] = set()
        for r in near[row_of[u]]:
            v = ids[r]
            leader = v if v in is_leader else joined.get(v)
            if leader is None or leader in tried:
                continue
            tried.add(leader)
            if use_semantic and not _may_align(split.vecs(u), split.vecs(leader)):
                continue
            raw_l, keys_l = split(leader)
            vec = (split.vecs(u), split.vecs(leader)) if use_semantic else None
            if align_keys(raw_u, keys_u, raw_l, keys_l, semantic=use_semantic, vectors=vec).joins:
                best = leader
                break
            # The leader may be the one with additions: the letter holds nearly all of it the other way.
            back = align_keys(raw_l, keys_l, raw_u, keys_u, semantic=use_semantic,
                              vectors=(vec[1], vec[0]) if vec else None)
            if back.joins and coverage(back)[0] >= 0.85:
                best = leader
                break
        if best is not None:
            joined[u] = best
            joined.setdefault(best, best)
        else:
            is_leader.add(u)
    return {u: lead for u, lead in joined.items() if u != lead or lead not in fixed_set}


def merge_leaders(leaders: Sequence[int], weight: Callable[[int], int], normalised: Sequence[str],
                  raw_of: Callable[[int], str]) -> dict[int, int]:
    """Campaigns found in pieces: a smaller group whose leader aligns with a larger group's leader
    (the larger one's template mostly held) folds into it. Returns leader -> the leader it folds into."""
    split = _Units(raw_of)
    usable = [u for u in dict.fromkeys(leaders)
              if len(normalised[u].split()) >= MIN_WORDS and len(split(u)[1]) >= MIN_SENTENCES]
    if len(usable) < 2 or not semantic.available():
        return {}
    usable.sort(key=lambda u: (-weight(u), u))
    vectors, ok = semantic.matrix([normalised[u] for u in usable])
    # Leaders are few: look further afield than for single letters.
    near = _neighbours(vectors, ok, range(len(usable)), NEIGHBOURS, minimum=LEADER_NEIGHBOUR_MIN)
    into: dict[int, int] = {}
    for r in range(len(usable) - 1, -1, -1):  # smallest first
        u = usable[r]
        for c in near[r]:
            if c >= r:
                continue  # only into a larger group
            target = usable[c]
            while target in into:
                target = into[target]
            if not _may_align(split.vecs(u), split.vecs(target)):
                continue
            raw_u, keys_u = split(u)
            raw_t, keys_t = split(target)
            if align_keys(raw_u, keys_u, raw_t, keys_t, vectors=(split.vecs(u), split.vecs(target))).joins:
                into[u] = target
                break
            # The smaller group's template may be the larger one's with a sentence dropped (a paraphrasing
            # tool's copies): its sentences are mostly found in the larger template.
            if align_keys(raw_t, keys_t, raw_u, keys_u, vectors=(split.vecs(target), split.vecs(u))).joins:
                into[u] = target
                break
    return into


# --- talking points ----------------------------------------------------------------------------------

# A point is a clause of at least this many words (shorter pieces join the next one).
POINT_WORDS = 5
# Two letters make the same points when this many of their clauses pair up one to one ...
SHARED_POINTS = 3
# ... and those clauses hold at least this share of the words of the letter that makes fewer points,
# and this many words (one sentence cut at its commas is not a list of points).
POINTS_SHARE = 0.3
POINTS_MIN_WORDS = 24
# Letters this close as a whole (cosine) are compared point by point.
POINTS_NEIGHBOUR_MIN = 0.9
POINTS_NEIGHBOURS = 10
# A campaign is compared by its leader and this many of its other letters.
POINTS_MEMBERS = 4
# A letter is compared with at most this many campaigns (or letters leading one), nearest first.
POINTS_TRIES = 5
_CLAUSE = re.compile(r"(?<=[.!?;:,])\s+|\n+|\s+(?=\(?\d{1,2}[.)]\s)|\s+(?=[-*•]\s)")


def points(text: str) -> list[str]:
    """A letter's clauses, normalised: its sentences cut again at commas, semicolons, colons, line
    breaks and list marks (a list of points is often one long sentence), each at least POINT_WORDS
    words (a shorter piece is joined to the next)."""
    out: list[str] = []
    pending = ""
    for line in core_lines(text):
        for piece in _CLAUSE.split(line):
            key = normalise_line(piece)
            key = re.sub(r"^\d{1,2} ", "", key)  # a list number
            pending = f"{pending} {key}".strip() if pending else key
            if len(pending.split()) >= POINT_WORDS:
                out.append(pending)
                pending = ""
    if pending:
        if out and len(pending.split()) < POINT_WORDS:
            out[-1] = f"{out[-1]} {pending}"
        else:
            out.append(pending)
    return out


def word_masks(clauses: Sequence[str]) -> list[int]:
    """Each clause's words as a 256-bit mask (a word sets one bit, by its hash): a compact stand-in for
    the clause's word set, to count the words two clauses share (nearly: two words may share a bit)."""
    bit = _word_bit
    return [sum({bit(w) for w in k.split()}) for k in clauses]


@lru_cache(maxsize=262144)
def _word_bit(word: str) -> int:
    return 1 << (zlib.crc32(word.encode()) & 255)  # the same in every process (hash() is not)


def shared_points(a: list[str], b: list[str], masks_a: list[int] | None = None,
                  masks_b: list[int] | None = None) -> tuple[int, int, int]:
    """Clauses of two letters paired one to one (best first): a light edit (rapidfuzz, word order
    ignored), or one found in the other in order, words swapped for near ones counting
    (semantic.words_within). Returns (pairs, words of a's paired clauses, words of b's).
    ``masks_a``/``masks_b``: the clauses' ``word_masks``, when the caller keeps them."""
    if not a or not b:
        return 0, 0, 0
    masks_a = masks_a if masks_a is not None else word_masks(a)
    masks_b = masks_b if masks_b is not None else word_masks(b)
    wa = [len(k.split()) for k in a]
    wb = [len(k.split()) for k in b]
    # Pairs of clauses sharing half the words of the smaller (a light edit does too): unless three
    # clauses of each side are in one, nothing else need be computed.
    size_a = [m.bit_count() for m in masks_a]
    size_b = [m.bit_count() for m in masks_b]
    close = [(i, j) for i, x in enumerate(masks_a) for j, y in enumerate(masks_b)
             if (x & y).bit_count() >= POINT_WORDS_SHARED * min(size_a[i], size_b[j])]
    if len({i for i, _j in close}) < SHARED_POINTS or len({j for _i, j in close}) < SHARED_POINTS:
        return 0, 0, 0
    candidates: list[tuple[float, int, int]] = []
    for i, j in close:
        edit = fuzz.token_sort_ratio(a[i], b[j], score_cutoff=EDIT_POINT)
        if edit >= EDIT_POINT:
            candidates.append((edit / 100, i, j))
            continue
        # The point wrapped in other words: most of the shorter clause found in the longer, in order
        # (words swapped for near ones count), the longer not a paragraph.
        if max(wa[i], wb[j]) <= POINT_LENGTH_RATIO * min(wa[i], wb[j]):
            within = semantic.words_within(a[i], b[j], POINT_WITHIN, POINT_WORD_MIN)
            if within >= POINT_WITHIN:
                candidates.append((within - 0.01, i, j))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_a: set[int] = set()
    used_b: set[int] = set()
    for _s, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return len(used_a), sum(wa[i] for i in used_a), sum(wb[j] for j in used_b)


EDIT_POINT = 80
# A clause found in a longer one: at least this share of its words (in order, near words counting) ...
POINT_WITHIN = 0.6
# ... a word standing for another when this close (stricter than for a spun copy's in-place swaps: a
# clause wrapped in other words has more words around it to pair by chance).
POINT_WORD_MIN = 0.65
# ... the longer at most this many times its length, and this share of its words the same words.
POINT_LENGTH_RATIO = 2.5
POINT_WORDS_SHARED = 0.5


def points_stage(units: Sequence[int], leaders: Sequence[int], weight: Callable[[int], int],
                 normalised: Sequence[str], raw_of: Callable[[int], str], near_units: dict[int, list[int]],
                 owner: dict[int, int], members: dict[int, list[int]] | None = None) -> dict[int, int]:
    """Talking-point letters: letters (and campaigns, by their leaders) that make the same points,
    reordered and reworded, each wrapped in the sender's own words.

    A letter's points are its clauses (``points``); two letters make the same points when at least
    SHARED_POINTS clauses pair up one to one (``shared_points``: a light edit, or one found in the
    other with words swapped for near ones) and hold POINTS_SHARE of the words of the one with fewer
    points. Letters on one topic written by their own senders share words, seldom three clauses.
    Candidates are nearest neighbours as whole letters: ``near_units`` (sentence_stage's, unit ->
    units; a unit in a campaign stands for its leader, ``owner``) and, between campaigns, their
    leaders' own. Campaigns are visited heaviest first, then letters; each joins the first visited
    that it shares the points with (a letter joins a campaign when it shares them with its leader or
    one of its first POINTS_MEMBERS other letters, as ``members`` lists them — each letter makes three
    or four of the list's points, so two letters may share only two; a campaign joins another when
    most of the letters compared, its leader and POINTS_MEMBERS others, share them with the other's). Returns unit ->
    the unit (a leader, or a letter that became one) it joins; leaders that join another are in it too.
    """
    if not semantic.available():
        return {}
    leaders = sorted((u for u in dict.fromkeys(leaders) if len(normalised[u].split()) >= MIN_WORDS),
                     key=lambda u: (-weight(u), u))
    loose = set(units)
    candidates: dict[int, list[int]] = defaultdict(list)
    for u, found in near_units.items():
        for v in found:
            candidates[u].append(v)
            candidates[v].append(u)
    if len(leaders) > 1:
        vectors, ok = semantic.matrix([normalised[u] for u in leaders])
        for r, found in _neighbours(vectors, ok, range(len(leaders)), POINTS_NEIGHBOURS,
                                    minimum=POINTS_NEIGHBOUR_MIN).items():
            candidates[leaders[r]].extend(leaders[c] for c in found)
    order = [u for u in [*leaders, *(u for u in units if u in near_units)] if candidates.get(u)]
    pts: dict[int, list[str]] = {}
    df: Counter[str] = Counter()
    for u in order:
        pts[u] = points(raw_of(u))
        df.update(set(pts[u]))
    # Clauses in a good share of these letters ("this proposed rule would") are how people write.
    common = max(COMMON_MIN, COMMON_SHARE * len(order))
    masks: dict[int, list[int]] = {}
    for u in order:
        pts[u] = [k for k in pts[u] if df[k] <= common]
        masks[u] = word_masks(pts[u])
    others = {u: [v for v in (members or {}).get(u, ()) if v != u and len(normalised[v].split()) >= MIN_WORDS]
              [:POINTS_MEMBERS] for u in leaders}
    for vs in others.values():
        for v in vs:
            pts[v] = [k for k in points(raw_of(v)) if df[k] <= common]
    head: dict[int, int] = {}  # visited unit -> the unit it joined (itself when it leads)
    joined: dict[int, int] = {}
    for u in order:
        head[u] = u
        tried: set[int] = {u}
        for v in candidates[u]:
            v = owner.get(v, v) if v not in loose else v
            target = head.get(v)
            if target is None or target in tried:
                continue
            if len(tried) > POINTS_TRIES:
                break
            tried.add(target)
            # A letter is compared with a campaign's leader and a few of its letters; a campaign with
            # another letter by letter, and it joins when most of its letters compared share the points
            # (a letter pasting two templates among one campaign's letters must not join the two).
            against = [target, *others.get(target, ())]
            mine = [u, *others.get(u, ())]
            agree = sum(any(_same_points(pts[w], pts[x], masks.get(w), masks.get(x)) for x in against)
                        for w in mine) if len(mine) > 1 else 0
            if (len(mine) == 1 and any(_same_points(pts[u], pts[x], masks[u], masks.get(x)) for x in against)) \
                    or (len(mine) > 1 and 2 * agree > len(mine)):
                joined[u] = target
                head[u] = target
                break
    return joined


def _same_points(a: list[str], b: list[str], masks_a: list[int] | None, masks_b: list[int] | None) -> bool:
    """Two letters make the same points: SHARED_POINTS clauses paired, holding enough words."""
    if len(a) < SHARED_POINTS or len(b) < SHARED_POINTS:
        return False
    n, words_a, words_b = shared_points(a, b, masks_a, masks_b)
    if n < SHARED_POINTS:
        return False
    fewer_words = sum(len(k.split()) for k in (a if len(a) <= len(b) else b))
    return min(words_a, words_b) >= max(POINTS_SHARE * fewer_words, POINTS_MIN_WORDS)
