"""Sentence-level alignment of a letter with a template: which of the letter's sentences stand for
which of the template's, and how much of each side that covers.

A pair is accepted when the two normalised sentences are a light edit of each other (rapidfuzz,
word order ignored) or, with the semantic stage on, when they are close in a static word-embedding
space (batching.semantic) and share some words. Each template sentence is used once and each
letter sentence once (greedy, best pairs first), so one repeated sentence cannot stand for a whole
template. Coverage is counted in words: a template's long sentences weigh more than its short ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz, process

from batching.normalise import normalise_line, sentences

# A pair of sentences this alike (0–100, word order ignored) is the same sentence, lightly edited.
EDIT = 80
# Sentences shorter than this (in words) count only when they are the same words.
SHORT = 3
# A letter joins a template when its aligned sentences hold this share of the template's words ...
JOIN_TEMPLATE = 0.7
# ... and, for a short template (a slogan, a two-line form), also this share of the letter's words.
JOIN_LETTER_SHORT = 0.5
SHORT_TEMPLATE_WORDS = 25
# Sentences paired by meaning alone are at most this many times longer one than the other.
LENGTH_RATIO = 1.6
# Sentences less close than the semantic stage's minimum but at least this close (cosine) are paired
# when one is the other with words swapped (semantic.swapped_words at least SWAPPED).
SWAP_GATE = 0.65
SWAPPED = 0.65


@dataclass(frozen=True)
class SentencePair:
    letter: str  # the letter's sentence, as the sender wrote it
    template: str  # the template sentence it stands for, as the template has it
    similarity: float  # 0..1
    how: str  # "exact" | "edit" | "semantic"


@dataclass(frozen=True)
class Alignment:
    pairs: tuple[SentencePair, ...]
    template_words: int
    letter_words: int
    template_matched: int  # words of the template's aligned sentences
    letter_matched: int  # words of the letter's aligned sentences

    @property
    def joins(self) -> bool:
        t_cov, l_cov = coverage(self)
        if t_cov < JOIN_TEMPLATE:
            return False
        # Found by meaning alone, a letter must also be mostly the template (a spun copy is), and
        # one sentence proves nothing.
        if all(p.how == "semantic" for p in self.pairs) and (len(self.pairs) < 2 or l_cov < JOIN_LETTER_SHORT):
            return False
        return self.template_words >= SHORT_TEMPLATE_WORDS or l_cov >= JOIN_LETTER_SHORT


def coverage(a: Alignment) -> tuple[float, float]:
    """(share of the template's words aligned, share of the letter's words aligned)."""
    t = a.template_matched / a.template_words if a.template_words else 0.0
    s = a.letter_matched / a.letter_words if a.letter_words else 0.0
    return round(t, 4), round(s, 4)


def _units(text: str) -> tuple[list[str], list[str]]:
    raw = sentences(text)
    keys = [normalise_line(s) for s in raw]
    kept = [(r, k) for r, k in zip(raw, keys, strict=True) if k]
    return [r for r, _k in kept], [k for _r, k in kept]


def align(text: str, template_text: str, *, semantic: bool = True,
          edit: float = EDIT, semantic_min: float | None = None) -> Alignment:
    letter_raw, letter_keys = _units(text)
    tmpl_raw, tmpl_keys = _units(template_text)
    return align_keys(letter_raw, letter_keys, tmpl_raw, tmpl_keys, semantic=semantic, edit=edit,
                      semantic_min=semantic_min)


def align_keys(letter_raw: list[str], letter_keys: list[str], tmpl_raw: list[str], tmpl_keys: list[str], *,
               semantic: bool = True, edit: float = EDIT, semantic_min: float | None = None,
               vectors: tuple | None = None) -> Alignment:
    """``vectors``: the two sides' sentence vectors and masks (semantic.matrix), when already made."""
    l_words = [len(k.split()) for k in letter_keys]
    t_words = [len(k.split()) for k in tmpl_keys]
    if not letter_keys or not tmpl_keys:
        return Alignment((), sum(t_words), sum(l_words), 0, 0)
    if len(letter_keys) * len(tmpl_keys) > 400:
        scores = process.cdist(letter_keys, tmpl_keys, scorer=fuzz.token_sort_ratio, workers=1,
                               score_cutoff=edit).tolist()
    else:  # small: one call per pair costs less than setting up cdist
        sort_l = [" ".join(sorted(k.split())) for k in letter_keys]
        sort_t = [" ".join(sorted(k.split())) for k in tmpl_keys]
        scores = [[fuzz.ratio(a, b, score_cutoff=edit) for b in sort_t] for a in sort_l]
    candidates: list[tuple[float, int, int, str]] = []
    for i in range(len(letter_keys)):
        for j in range(len(tmpl_keys)):
            s = float(scores[i][j])
            if letter_keys[i] == tmpl_keys[j]:
                candidates.append((100.0, i, j, "exact"))
            elif s >= edit and min(l_words[i], t_words[j]) >= SHORT:
                candidates.append((s, i, j, "edit"))
    if semantic:
        from batching import semantic as sem

        taken = {(i, j) for _s, i, j, _h in candidates}
        cut = sem.SENTENCE_MIN if semantic_min is None else semantic_min
        for s, i, j in sem.sentence_pairs(letter_keys, tmpl_keys, minimum=min(cut, SWAP_GATE), vectors=vectors):
            # A paraphrase keeps a sentence's length roughly: a short line is not a long one's meaning.
            if (i, j) in taken or min(l_words[i], t_words[j]) < SHORT or \
                    max(l_words[i], t_words[j]) > LENGTH_RATIO * min(l_words[i], t_words[j]):
                continue
            if s < cut:
                # Not close enough as a whole: a spun copy still, when its words are the template's
                # in order, the rest swapped for near ones.
                swapped = sem.swapped_words(letter_keys[i], tmpl_keys[j], SWAPPED)
                if swapped < SWAPPED:
                    continue
                s = max(s, swapped)
            candidates.append((s * 100 - 0.5, i, j, "semantic"))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_l: set[int] = set()
    used_t: set[int] = set()
    pairs = []
    for s, i, j, how in candidates:
        if i in used_l or j in used_t:
            continue
        used_l.add(i)
        used_t.add(j)
        pairs.append((j, SentencePair(letter_raw[i], tmpl_raw[j], round(min(s, 100.0) / 100, 4), how)))
    pairs.sort(key=lambda p: p[0])
    return Alignment(tuple(p for _j, p in pairs), sum(t_words), sum(l_words),
                     sum(t_words[j] for j in used_t), sum(l_words[i] for i in used_l))
