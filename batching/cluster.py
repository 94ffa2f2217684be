"""Campaign detection: group letters that are copies of the same template, personal additions and all.

How it works, and why:
1. Each letter is normalised (batching.normalise) and cut into overlapping word 3-grams
   ("shingles"), hashed to integers. Identical normalised texts are handled once.
2. Texts are visited from the most repeated to the least, shorter first: the pure template of a
   campaign is usually its most common text, so it becomes the campaign's *leader*.
3. A text joins the leader it overlaps most, if that overlap is large relative to the smaller of
   the two (the overlap coefficient) and covers enough shingles: a letter that adds a personal
   story still contains the whole template, and a letter that drops a sentence still shares most
   of it. Otherwise the text becomes a leader itself. Candidate leaders come from an inverted
   index of shingles (phrases common to many leaders are skipped), so each text is compared with
   a handful of leaders, never with everything.
4. Letters only ever join a *leader*, never another member: a few bridge letters that mix two
   templates cannot chain two campaigns together.
5. A second pass builds each cluster's core (the shingles most of its members share), folds a
   cluster whose core lies mostly inside a larger cluster's core into it (the same campaign with a
   sentence dropped), and re-assigns every text to the best remaining core, which fixes letters
   that reached the wrong leader early. Clusters below the minimum size are not batches.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain, count
from operator import itemgetter

import numpy as np

from batching.normalise import normalise_many

NOT_A_BATCH = -1


@dataclass(frozen=True)
class ClusterSettings:
    shingle_words: int = 3
    # Overlap coefficient |A ∩ B| / min(|A|, |B|) needed to join a leader or a core.
    join_overlap: float = 0.55
    # ... and at least this many shared shingles (a short note inside a long letter is not a copy).
    min_shared: int = 6
    # Texts with fewer shingles than this are batched only as exact copies (too short to tell).
    min_shingles: int = 6
    # A template this large is matched by containment (letters that add to it); a smaller one only
    # by symmetric overlap, so one shared sentence does not make unrelated letters a campaign.
    min_template_shingles: int = 24
    # Exact copies need at least this many words to be a batch on their own.
    min_copy_words: int = 2
    # Clusters smaller than this are not batches (but see pair_overlap).
    min_batch_size: int = 3
    # Two letters this alike (n-gram overlap over the larger) are a batch of two.
    pair_overlap: float = 0.8
    # Look again at what the n-gram pass left out (batching.recall): shared passages, slogans,
    # sentence alignment with the semantic stage.
    recall: bool = True
    # Shingles found in more leaders than this are too common to point at any one campaign.
    max_posting: int = 64
    # Core of a cluster: shingles found in at least this share of its members.
    core_share: float = 0.5
    # A cluster whose core lies at least this much inside a larger cluster's core is folded into it.
    absorb_overlap: float = 0.5


@dataclass
class Clustering:
    labels: list[int]  # per input text: batch number, or NOT_A_BATCH
    leaders: dict[int, int] = field(default_factory=dict)  # batch -> index of its leader text

    @property
    def batches(self) -> int:
        return len({label for label in self.labels if label != NOT_A_BATCH})


def shingles(normalised: str, size: int = 3) -> frozenset[int]:
    """Word n-grams as 64-bit hashes, the same in every process (they are stored, and runs repeat)."""
    words = normalised.split()
    if len(words) < size:
        return frozenset()
    grams = (" ".join(words[i:i + size]) for i in range(len(words) - size + 1))
    return frozenset(int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams)


def _shingle_sets(texts: Sequence[str], size: int) -> list[array]:
    """The texts' word n-grams for one clustering run, packed from word numbers (no hashing).

    Words are numbered in order of first appearance, so a run over the same input is the same
    run; n word numbers are packed into one integer (wrapping, harmlessly, past 2^(64/n) words).
    About 3× faster than hashing each n-gram; stored shingles use ``shingles`` instead.
    """
    bits = 64 // size
    mask = (1 << bits) - 1
    # Word numbers by first appearance, looked up without a Python call per word (a defaultdict
    # whose factory is a counter: ``map`` of its ``__getitem__`` runs in C).
    vocab: defaultdict[str, int] = defaultdict(count().__next__)
    number = vocab.__getitem__
    flat: list[int] = []
    lengths: list[int] = []
    for text in texts:
        ids = list(map(number, text.split()))
        flat.extend(ids)
        lengths.append(len(ids))
    del vocab
    # Every position's n-gram packed at once in numpy; a text's n-grams are those starting in it with
    # all n words inside it. Each text's set is built from them in the same order as one built word
    # by word (so sets iterate, and ties break, as before).
    words = np.array(flat, dtype=np.uint64) & np.uint64(mask)
    del flat
    n_grams = max(len(words) - size + 1, 0)
    packed = np.zeros(n_grams, dtype=np.uint64)
    for k in range(size):
        packed = (packed << np.uint64(bits)) | words[k:k + n_grams]
    del words
    result = []
    start = 0
    for length in lengths:
        if length < size:
            result.append(array("Q"))
        else:
            result.append(array("Q", set(packed[start:start + length - size + 1].tolist())))
        start += length
    return result


def cluster_texts(texts: Sequence[str], settings: ClusterSettings | None = None) -> Clustering:
    cfg = settings or ClusterSettings()
    # Identical normalised texts are one "unique text" with a count.
    unique_of: dict[str, int] = {}
    members: list[list[int]] = []
    for i, text in enumerate(normalise_many(texts)):
        u = unique_of.setdefault(text, len(members))
        if u == len(members):
            members.append([])
        members[u].append(i)
    unique_texts = list(unique_of)
    del unique_of
    # Every text's n-grams as a compact array (8 bytes each); only leaders and cores are kept as
    # sets, which is what intersections need. This keeps 100,000 letters within a few hundred MB.
    sets = _shingle_sets(unique_texts, cfg.shingle_words)
    n_unique = len(unique_texts)
    words = [text.count(" ") + 1 if text else 0 for text in unique_texts]

    order = sorted(range(n_unique), key=lambda u: (-len(members[u]), len(sets[u]), u))
    # Only n-grams some other text has too can point at a leader: the rest (a quarter of them, the
    # personal parts) are never indexed nor looked up, which keeps the index small.
    repeated = _repeated(sets)
    leader_of = [-1] * n_unique
    leader_size: dict[int, int] = {}
    index: dict[int, list[int]] = defaultdict(list)  # shingle -> leaders containing it (the rare ones)
    common: set[int] = set()  # shingles in more than max_posting leaders
    leader_common: dict[int, set[int]] = defaultdict(set)  # leader -> its shingles in ``common``
    for u in order:
        s = sets[u]
        if len(s) < cfg.min_shingles:
            continue
        grams = repeated(u)
        best, best_score = _best_match(grams, len(s), index, common, leader_size, leader_common, cfg)
        if best is not None and best_score >= cfg.join_overlap:
            leader_of[u] = best
            continue
        leader_of[u] = u
        leader_size[u] = len(s)
        for h in grams:
            if h in common:
                leader_common[u].add(h)
                continue
            posting = index[h]
            posting.append(u)
            if len(posting) > cfg.max_posting:
                # Too common to point at a campaign, now and from now on (postings only grow).
                for leader in posting:
                    leader_common[leader].add(h)
                del index[h]
                common.add(h)
    del repeated

    # Second pass: each cluster's core, then every text to its best core.
    groups: dict[int, list[int]] = defaultdict(list)
    for u, leader in enumerate(leader_of):
        if leader >= 0:
            groups[leader].append(u)
    cores: dict[int, frozenset[int]] = {}
    for leader, us in groups.items():
        weight = sum(len(members[u]) for u in us)
        if weight < cfg.min_batch_size:
            continue
        core = _core(us, sets, members, weight, cfg.core_share)
        cores[leader] = core if len(core) >= cfg.min_shingles else frozenset(sets[leader])
    # A cluster whose core is mostly inside a larger cluster's core is that campaign with a sentence
    # dropped or a phrase edited: it joins the larger one. A cluster of letters pasting two templates
    # together is not absorbed (its core is only half inside either), so it cannot chain them.
    weights = {leader: sum(len(members[u]) for u in groups[leader]) for leader in cores}
    by_weight = sorted(cores, key=lambda lead: (weights[lead], lead))
    core_lookup: dict[int, list[int]] = defaultdict(list)
    for leader in cores:
        for h in cores[leader]:
            core_lookup[h].append(leader)
    absorbed: set[int] = set()
    for leader in by_weight:
        hits: Counter[int] = Counter()
        for h in cores[leader]:
            posting = core_lookup[h]
            if len(posting) <= cfg.max_posting:
                hits.update(other for other in posting if other != leader and other not in absorbed
                            and (weights[other], other) > (weights[leader], leader))
        for _other, shared in hits.most_common(3):
            if shared >= cfg.min_shared and shared / len(cores[leader]) >= cfg.absorb_overlap:
                absorbed.add(leader)
                break
    cores = {leader: core for leader, core in cores.items() if leader not in absorbed}
    final = [-1] * n_unique
    comparable = []
    for u, s in enumerate(sets):
        if len(s) < cfg.min_shingles or not cores:
            # Too short to compare: only exact copies (enough of them, with enough words) batch.
            if len(members[u]) >= cfg.min_batch_size and words[u] >= cfg.min_copy_words:
                final[u] = n_unique + u  # a batch of its own, keyed apart from leaders
            continue
        comparable.append(u)
    for u, best in _best_cores(comparable, sets, cores, cfg).items():
        final[u] = best

    kept_pairs: set[int] = set()
    # The first pass's indexes are not needed any more: free them before the second look needs memory.
    del index, common, leader_common, leader_size, core_lookup, cores
    if cfg.recall:
        kept_pairs = _second_look(texts, members, unique_texts, sets, words, final, cfg)
    del unique_texts
    sizes: Counter[int] = Counter()
    for u, leader in enumerate(final):
        if leader >= 0:
            sizes[leader] += len(members[u])
    numbering = {leader: n for n, (leader, _size) in enumerate(
        sorted(((lead, size) for lead, size in sizes.items() if size >= cfg.min_batch_size or lead in kept_pairs),
               key=lambda item: (-item[1], item[0])))}
    labels = [NOT_A_BATCH] * len(texts)
    for u, leader in enumerate(final):
        batch = numbering.get(leader, NOT_A_BATCH)
        for i in members[u]:
            labels[i] = batch
    return Clustering(labels, {n: members[leader % n_unique][0] for leader, n in numbering.items()})


def _second_look(texts: Sequence[str], members: list[list[int]], unique_texts: list[str], sets: list[array],
                 words: list[int], final: list[int], cfg: ClusterSettings) -> set[int]:
    """batching.recall's stages on the texts the n-gram pass left out; changes ``final`` in place.

    Returns the keys of groups of two kept as batches (near-exact pairs).
    """
    from batching import recall

    n_unique = len(unique_texts)
    groups: dict[int, list[int]] = defaultdict(list)
    for u, key in enumerate(final):
        if key >= 0:
            groups[key].append(u)

    def weight(us: list[int]) -> int:
        return sum(len(members[u]) for u in us)

    kept: set[int] = set()
    leftovers = [u for u, key in enumerate(final) if key < 0]
    for key, us in groups.items():
        if weight(us) >= cfg.min_batch_size:
            continue
        if weight(us) == 2 and _near_pair(us, sets, cfg):
            kept.add(key)
            continue
        for u in us:
            final[u] = -1
        leftovers.extend(us)
    # New groups are keyed 2 * n_unique + their leader, apart from the first pass's keys.
    fresh = 2 * n_unique
    long_ones = [u for u in leftovers if len(sets[u]) >= cfg.min_shingles]
    for u, leader in recall.shared_passages(long_ones, sets, cfg.min_shingles).items():
        final[u] = fresh + leader
    short = [u for u in leftovers if final[u] < 0 and 0 < words[u] <= recall.SLOGAN_WORDS]
    # The first pass's short campaigns are leaders already: a retyped copy joins them.
    seeds = {us[0] if key >= n_unique else key: key for key, us in groups.items()
             if (key in kept or weight(us) >= cfg.min_batch_size)
             and words[us[0] if key >= n_unique else key] <= recall.SLOGAN_WORDS}
    seed_order = sorted(seeds, key=lambda lead: (-weight(groups[seeds[lead]]), lead))
    for u, leader in recall.slogans(short, unique_texts, lambda u: len(members[u]), seed_order).items():
        if u in seeds:
            if leader != u:  # one short campaign the first pass found in two pieces
                for v in groups[seeds[u]]:
                    final[v] = seeds[leader]
        elif final[u] < 0:
            final[u] = seeds.get(leader, fresh + leader)
    rest = [u for u in leftovers if final[u] < 0 and words[u] > 0]
    first_leaders = [key for key in groups if key < n_unique and key in kept or
                     (key < n_unique and weight(groups[key]) >= cfg.min_batch_size)]
    new_leaders = sorted({key - fresh for key in final if key >= fresh})
    leader_key = {lead: lead for lead in first_leaders} | {lead: fresh + lead for lead in new_leaders}
    near_units: dict[int, list[int]] = {}
    joined = recall.sentence_stage(rest, [*first_leaders, *new_leaders], unique_texts,
                                   lambda u: texts[members[u][0]], near_out=near_units)
    for u, leader in joined.items():
        if final[u] < 0:
            final[u] = leader_key.get(leader, fresh + leader)
    # A campaign found in pieces (a spun copy leading a group of its own) becomes one.
    regrouped: dict[int, list[int]] = defaultdict(list)
    for u, key in enumerate(final):
        if key >= 0:
            regrouped[key].append(u)
    leader_of_key = {key: (key - fresh if key >= fresh else key if key < n_unique else us[0])
                     for key, us in regrouped.items()}
    key_of_leader = {lead: key for key, lead in leader_of_key.items()}
    into = recall.merge_leaders(list(key_of_leader), lambda lead: weight(regrouped[key_of_leader[lead]]),
                                unique_texts, lambda u: texts[members[u][0]])
    for lead, target in into.items():
        while target in into:
            target = into[target]
        for u in regrouped[key_of_leader[lead]]:
            final[u] = key_of_leader[target]
    # Talking points: letters, and campaigns by their leaders, making the same points in their own words.
    regrouped = defaultdict(list)
    for u, key in enumerate(final):
        if key >= 0:
            regrouped[key].append(u)
    leader_of_key = {key: (key - fresh if key >= fresh else key if key < n_unique else us[0])
                     for key, us in regrouped.items() if weight(us) >= cfg.min_batch_size}
    key_of_leader = {lead: key for key, lead in leader_of_key.items()}
    loose = [u for u in leftovers if final[u] < 0 and words[u] > 0]
    owner = {v: lead for lead, key in key_of_leader.items() for v in regrouped[key]}
    for u, target in recall.points_stage(loose, list(key_of_leader), lambda u: weight(regrouped[key_of_leader[u]])
                                         if u in key_of_leader else len(members[u]),
                                         unique_texts, lambda u: texts[members[u][0]], near_units, owner,
                                         {lead: regrouped[key] for lead, key in key_of_leader.items()}).items():
        key = key_of_leader.get(target, fresh + target)
        if u in key_of_leader:
            for v in regrouped[key_of_leader[u]]:
                final[v] = key
        else:
            final[u] = key
            final[target] = key if target not in key_of_leader else final[target]
    # A letter sent twice word for word (and long enough to tell) is a batch of two.
    for u in leftovers:
        if final[u] < 0 and len(members[u]) == 2 and len(sets[u]) >= cfg.min_shingles:
            final[u] = fresh + u
    # Groups of two formed here are batches only when near-exact.
    regrouped = defaultdict(list)
    for u, key in enumerate(final):
        if key >= fresh:
            regrouped[key].append(u)
    for key, us in regrouped.items():
        if weight(us) == 2 and _near_pair(us, sets, cfg):
            kept.add(key)
    return kept


def _near_pair(us: list[int], sets: list[array], cfg: ClusterSettings) -> bool:
    if len(us) == 1:
        return len(sets[us[0]]) >= cfg.min_shingles
    a, b = frozenset(sets[us[0]]), frozenset(sets[us[1]])
    if min(len(a), len(b)) < cfg.min_shingles:
        return False
    # One holds nearly all of the other (a sentence dropped, a typo), and they are mostly the same text.
    shared = len(a & b)
    return shared / min(len(a), len(b)) >= cfg.pair_overlap and shared / max(len(a), len(b)) >= 0.5


def overlap_score(shared: int, n_text: int, n_template: int, cfg: ClusterSettings) -> float:
    """Overlap coefficient of a text with a template (or leader, or core) of the given sizes.

    A template large enough is matched by containment (a letter that adds to it still scores 1); a
    small one by the larger of the two sizes, so one shared sentence does not make a copy.
    """
    if shared < cfg.min_shared:
        return 0.0
    smaller = n_template if n_template >= cfg.min_template_shingles else max(n_text, n_template)
    return shared / min(n_text, smaller)


def signed(h: int) -> int:
    """A 64-bit shingle hash as a signed integer, for a BIGINT column."""
    return h - (1 << 64) if h >= 1 << 63 else h


def _core(us: list[int], sets: Sequence[array], members: list[list[int]], weight: int, share: float
          ) -> frozenset[int]:
    """The n-grams found in at least ``share`` of a group's letters (each text counted as its copies)."""
    if len(us) == 1:
        return frozenset(sets[us[0]])
    grams = np.concatenate([np.frombuffer(sets[u], dtype=np.uint64) for u in us])
    copies = np.repeat(np.array([len(members[u]) for u in us], dtype=np.int64),
                       np.array([len(sets[u]) for u in us], dtype=np.int64))
    order = np.argsort(grams, kind="stable")
    grams, copies = grams[order], copies[order]
    if not len(grams):
        return frozenset()
    starts = np.flatnonzero(np.r_[True, grams[1:] != grams[:-1]])
    counts = np.add.reduceat(copies, starts)
    return frozenset(grams[starts][counts >= share * weight].tolist())


def _best_cores(units: Sequence[int], sets: Sequence[array], cores: dict[int, frozenset[int]],
                cfg: ClusterSettings, chunk: int = 1024) -> dict[int, int]:
    """Every unit's best core (overlap coefficient at least ``join_overlap``), all at once in numpy.

    The cores are fixed here (unlike the first pass, where leaders appear as texts are visited), so
    the shared n-grams of every (text, core) pair are counted in one table, a chunk of texts at a
    time, instead of a Python loop over each text's n-grams. A core is a candidate when the text
    shares with it at least one n-gram found in at most ``max_posting`` cores (as ``_best_match``).
    """
    if not cores or not units:
        return {}
    leaders = list(cores)
    sizes = np.array([len(cores[lead]) for lead in leaders], dtype=np.int64)
    shingle = np.concatenate([np.fromiter(cores[lead], dtype=np.uint64, count=len(cores[lead])) for lead in leaders])
    owner = np.repeat(np.arange(len(leaders), dtype=np.int64), sizes)
    order = np.argsort(shingle, kind="stable")
    shingle, owner = shingle[order], owner[order]
    uniq, start, df = np.unique(shingle, return_index=True, return_counts=True)
    rare = df <= cfg.max_posting
    n_cores = len(leaders)
    # The counting table of a chunk holds at most about a million cells.
    chunk = max(1, min(chunk, 1_000_000 // n_cores))
    out: dict[int, int] = {}
    for first in range(0, len(units), chunk):
        block = units[first:first + chunk]
        lens = np.array([len(sets[u]) for u in block], dtype=np.int64)
        flat = np.concatenate([np.frombuffer(sets[u], dtype=np.uint64) for u in block])
        row = np.repeat(np.arange(len(block), dtype=np.int64), lens)
        pos = np.minimum(np.searchsorted(uniq, flat), len(uniq) - 1)
        found = uniq[pos] == flat
        pos, row = pos[found], row[found]
        if not len(pos):
            continue
        # Each shared n-gram stands for one hit on every core holding it.
        per = df[pos]
        ends = np.cumsum(per)
        offsets = np.arange(int(ends[-1]), dtype=np.int64) - np.repeat(ends - per, per)
        core = owner[np.repeat(start[pos], per) + offsets]
        # (text, core) pairs counted in a table of the chunk's texts by all cores (no sort): its
        # shared n-grams, and its hits (the n-grams not too common to count).
        pair = np.repeat(row, per) * n_cores + core
        cells = len(block) * n_cores
        hits_all = np.bincount(pair[np.repeat(rare[pos], per)], minlength=cells)
        candidate = np.flatnonzero(hits_all)  # by text, then core
        hits = hits_all[candidate]
        del hits_all
        shared = np.bincount(pair, minlength=cells)[candidate]
        r, c = np.divmod(candidate, n_cores)
        # As _best_match: only the 8 cores with the most hits are scored (a letter sharing stock phrases
        # with many campaigns must not drift to one of them on the strength of its common words).
        order = np.lexsort((c, -hits, r))
        r, c, shared = r[order], c[order], shared[order]
        row_start = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        rank = np.arange(len(r)) - np.repeat(row_start, np.diff(np.r_[row_start, len(r)]))
        top = rank < 8
        r, c, shared = r[top], c[top], shared[top]
        n_text, n_core = lens[r], sizes[c]
        smaller = np.where(n_core >= cfg.min_template_shingles, n_core, np.maximum(n_text, n_core))
        score = np.where(shared >= cfg.min_shared, shared / np.minimum(n_text, smaller), 0.0)
        keep = score >= cfg.join_overlap
        r, c, score = r[keep], c[keep], score[keep]
        # The best core per text: highest score, then the earliest core.
        order = np.lexsort((c, -score, r))
        r, c = r[order], c[order]
        firsts = np.r_[True, r[1:] != r[:-1]]
        for rr, cc in zip(r[firsts].tolist(), c[firsts].tolist(), strict=True):
            out[block[rr]] = leaders[cc]
    return out


def _repeated(sets: Sequence[array]) -> Callable[[int], list[int]]:
    """Per text, its n-grams that at least one other text has too, in the text's own order."""
    lengths = np.array([len(s) for s in sets], dtype=np.int64)
    if not lengths.sum():
        return lambda _u: []
    flat = np.concatenate([np.frombuffer(s, dtype=np.uint64) for s in sets if len(s)])
    # The values seen twice or more, from one sort (cheaper than np.unique's inverse, a stable argsort).
    ordered = np.sort(flat)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    twice = twice[np.r_[True, twice[1:] != twice[:-1]]] if len(twice) else twice
    if len(twice):
        keep = twice[np.minimum(np.searchsorted(twice, flat), len(twice) - 1)] == flat
    else:
        keep = np.zeros(len(flat), dtype=bool)
    # Kept n-grams before each position, read at the texts' boundaries.
    before = np.r_[0, np.cumsum(keep)]
    starts = before[np.r_[0, np.cumsum(lengths)]].tolist()
    kept = flat[keep]
    del flat, keep, before
    return lambda u: kept[starts[u]:starts[u + 1]].tolist()


def _best_match(grams: list[int], size: int, index: dict[int, list[int]], common: set[int],
                leader_size: dict[int, int], leader_common: dict[int, set[int]], cfg: ClusterSettings
                ) -> tuple[int | None, float]:
    """The leader with the highest overlap coefficient with a text of ``size`` n-grams.

    A leader's hits are the text's n-grams in its postings; with the text's n-grams too common to be
    indexed that the leader holds too, they are exactly the n-grams the two share (so no set of each
    leader's n-grams need be kept, nor intersected).
    """
    # The index holds only postings of at most max_posting leaders: counted without a Python loop.
    candidates: Counter[int] = Counter(chain.from_iterable(filter(None, map(index.get, grams))))
    best, best_score = None, 0.0
    if not candidates:
        return best, best_score
    mine_common = common.intersection(grams) if common else set()
    # Counter.most_common(8), ties in first-seen order as there, by one sort in C (heapq.nlargest
    # with a key runs in Python, and its documented equivalent is this sort).
    for candidate, hits in sorted(candidates.items(), key=itemgetter(1), reverse=True)[:8]:
        shared = hits
        if mine_common:
            theirs = leader_common.get(candidate)
            if theirs:
                shared += len(theirs & mine_common)
        score = overlap_score(shared, size, leader_size[candidate], cfg)
        if score > best_score:
            best, best_score = candidate, score
            if score >= 1.0:
                break  # no score is above 1 (shared n-grams are at most the smaller side's)
    return best, best_score
