"""Choosing the letter: approved letters ranked by fit, a suggestion that learns, and a preview.

``rank_letters`` orders the approved letters for a batch or a selection: letters on the mail's own
topic and stance first, then letters already used for earlier messages of the same campaign, then by
what the office's history suggests. A letter that does not fit is marked with the reason, and
``check_choice`` refuses it unless the staffer confirmed. Nothing is suggested unless it fits.

The suggestion learns from the office's history (which approved letter answered which message):
TF-IDF over words and word pairs, then the nearest letter centroid by cosine (each letter is the mean
of the messages it answered; a softmax over the similarities gives scores we can average over a
batch). On the demo office it is as accurate as a logistic regression or added character n-grams, and
trains several times faster, which matters because a page pays for training after new letters went
out (`mailroom letters eval --model` compares the alternatives in ``MODELS``; figures in the README).
One model per office (database) is trained on demand and kept per process, keyed by the number of
responses and the newest response id, so a page only pays for training after new letters went out.

``preview`` renders a letter exactly as ``drafting.apply.respond`` will for three real recipients.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql import Select

from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    Batch,
    Constituent,
    DeliveryMethod,
    FormLetter,
    LetterVersion,
    Message,
    MessageStatus,
    Response,
    Stance,
    Topic,
    VersionState,
)
from correspondence.states import can_move
from drafting.apply import PAPER_CHANNELS, budget_of, delivery_for, office_of
from drafting.headers import header_text
from drafting.render import LetterError, address_block, context, render

log = logging.getLogger(__name__)

TEXT_CHARS = 4000
MIN_HISTORY = 10  # answered messages before anything is suggested
MAX_HISTORY = 20_000  # the most recent answers a model learns from
SCORE_SAMPLE = 200  # messages of a selection read to score the letters for it
CHUNK = 2000


# --- the approved letters ------------------------------------------------------------------------

def approved_versions(session: Session) -> list[LetterVersion]:
    """The versions letters can go out with: approved, current, of a letter that is neither retired nor one-off."""
    query = (select(LetterVersion).join(FormLetter, FormLetter.current_version_id == LetterVersion.id)
             .where(LetterVersion.state == VersionState.APPROVED, FormLetter.retired.is_(False),
                    FormLetter.one_off_message_id.is_(None))
             .options(selectinload(LetterVersion.letter).selectinload(FormLetter.topic))
             .order_by(FormLetter.title, LetterVersion.id))
    return list(session.scalars(query))


@dataclass
class RankedLetter:
    version: LetterVersion
    fits: bool
    reasons: list[str]
    suggested: bool = False
    score: float = 0.0  # what the office's history says, 0..1
    used: int = 0  # letters already sent with it for this campaign
    matches: bool = False  # same topic, and no stance that contradicts the mail's

    @property
    def title(self) -> str:
        return self.version.letter.title


def _chunks(items: Sequence[int], size: int = CHUNK):
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def _majority(counts: Counter, total: int) -> object | None:
    """The most common coded value when it covers at least half of what was coded (None otherwise)."""
    counts.pop(None, None)
    if not counts:
        return None
    value, n = counts.most_common(1)[0]
    return value if n * 2 >= sum(counts.values()) else None


@dataclass
class _Mail:
    """What the selection is about: its dominant topic and stance, and its campaign."""

    topic_id: int | None = None
    stance: Stance | None = None
    batch_id: int | None = None
    campaign_id: str | None = None


def _mail(session: Session, ids: Sequence[int], batch_id: int | None) -> _Mail:
    mail = _Mail()
    if batch_id is not None:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id}")
        mail = _Mail(batch.topic_id, batch.stance, batch.id, batch.campaign_id)
    if mail.topic_id is not None and mail.stance is not None and mail.campaign_id is not None:
        return mail
    topics: Counter = Counter()
    stances: Counter = Counter()
    batches: Counter = Counter()
    campaigns: Counter = Counter()
    for chunk in _chunks(sorted(set(ids))):
        for topic_id, stance, b, c in session.execute(select(Message.topic_id, Message.stance, Message.batch_id,
                                                             Message.campaign_id).where(Message.id.in_(chunk))):
            topics[topic_id] += 1
            stances[stance] += 1
            batches[b] += 1
            campaigns[c] += 1
    total = len(ids)
    mail.topic_id = mail.topic_id if mail.topic_id is not None else _majority(topics, total)  # type: ignore[assignment]
    mail.stance = mail.stance if mail.stance is not None else _majority(stances, total)  # type: ignore[assignment]
    mail.batch_id = mail.batch_id if mail.batch_id is not None else _majority(batches, total)  # type: ignore[assignment]
    mail.campaign_id = mail.campaign_id or _majority(campaigns, total)  # type: ignore[assignment]
    return mail


def campaign_usage(session: Session, batch_id: int | None, campaign_id: str | None) -> dict[int, int]:
    """Letter id -> how many responses it was used for, for messages of this batch or campaign.

    Read from ``Response.version_id`` (the version's letter), so it counts letters sent, however many
    messages one letter covered.
    """
    where = []
    if batch_id is not None:
        where.append(Message.batch_id == batch_id)
    if campaign_id:
        where.append(Message.campaign_id == campaign_id)
    if not where:
        return {}
    rows = session.execute(select(LetterVersion.letter_id, func.count(Response.id))
                           .select_from(Response).join(LetterVersion, LetterVersion.id == Response.version_id)
                           .join(Message, Message.id == Response.message_id).where(or_(*where))
                           .group_by(LetterVersion.letter_id))
    return {letter_id: n for letter_id, n in rows}


def _stance_text(stance: Stance | None) -> str:
    return stance.value if stance is not None else "none"


def _fit(letter: FormLetter, mail: _Mail, topic_names: dict[int, str], used: int) -> tuple[bool, bool, list[str]]:
    """(matches, fits, reasons) of one letter for the mail."""
    reasons: list[str] = []
    topic_same = mail.topic_id is not None and letter.topic_id == mail.topic_id
    conflict = mail.stance is not None and letter.stance is not None and letter.stance != mail.stance
    if mail.topic_id is None:
        reasons.append("the mail has no topic coded")
    elif letter.topic_id is None:
        reasons.append(f"the letter has no topic (the mail is on {topic_names.get(mail.topic_id, '?')})")
    elif not topic_same:
        reasons.append(f"topic differs: {topic_names.get(letter.topic_id, '?')} vs "
                       f"{topic_names.get(mail.topic_id, '?')}")
    if conflict:
        reasons.append(f"stance differs: {_stance_text(letter.stance)} vs {_stance_text(mail.stance)}")
    matches = topic_same and not conflict
    if matches:
        if mail.stance is not None and letter.stance == mail.stance:
            reasons.insert(0, "same topic and stance")
        elif mail.stance is None:
            reasons.insert(0, "same topic (the mail's stance is not coded)")
        else:
            reasons.insert(0, "same topic (the letter takes no stance)")
    if used:
        reasons.append(f"used for {used:,} earlier letter{'s' if used != 1 else ''} of this campaign")
    return matches, matches or used > 0, reasons


def rank_letters(session: Session, message_ids: Sequence[int], *, batch_id: int | None = None,
                 learn: bool = True) -> list[RankedLetter]:
    """The approved letters, best fit first; the first is ``suggested`` only when it fits.

    ``learn=False`` skips the learnt score (a POST only needs to know whether the choice fits).
    """
    ids = sorted(set(message_ids))
    mail = _mail(session, ids, batch_id)
    versions = approved_versions(session)
    if not versions:
        return []
    topic_names = {t.id: t.name for t in session.scalars(select(Topic))}
    used = campaign_usage(session, mail.batch_id, mail.campaign_id)
    scores = _letter_scores(session, ids) if learn and ids else {}
    ranked = []
    for version in versions:
        n = used.get(version.letter_id, 0)
        matches, fits, reasons = _fit(version.letter, mail, topic_names, n)
        score = scores.get(version.letter_id, 0.0)
        if score >= 0.2:
            reasons.append(f"past answers point to it ({score:.0%})")
        ranked.append(RankedLetter(version=version, fits=fits, reasons=reasons, score=score, used=n,
                                   matches=matches))
    ranked.sort(key=lambda r: (not r.matches, r.used == 0, -r.score, -r.used, r.title.lower(), r.version.id))
    if ranked and ranked[0].fits:
        ranked[0].suggested = True
    return ranked


def check_choice(session: Session, version_id: int, message_ids: Sequence[int], batch_id: int | None,
                 confirmed: bool) -> RankedLetter:
    """The chosen letter, if it may be sent to this mail: an approved current letter that fits, or one the
    staffer confirmed after being told how it differs. Raises ValidationFailed otherwise."""
    version = session.get(LetterVersion, version_id)
    own = version.letter.one_off_message_id if version is not None else None
    if own is not None:
        raise PermissionDenied(f"this is a one-off reply to message {own}; it answers that message only")
    ranked = rank_letters(session, message_ids, batch_id=batch_id, learn=False)
    chosen = next((r for r in ranked if r.version.id == version_id), None)
    if chosen is None:
        raise ValidationFailed("that letter is not an approved, current letter; choose one from the list")
    if not chosen.fits and not confirmed:
        raise ValidationFailed(f"“{chosen.title}” does not fit this mail ({'; '.join(chosen.reasons)}); "
                               "tick the box to confirm you want to send it anyway")
    return chosen


# --- the suggestion that learns -----------------------------------------------------------------

def message_text(subject: str | None, body: str | None) -> str:
    return f"{subject or ''}\n{(body or '')[:TEXT_CHARS]}"


def _words() -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, 2), min_df=1, max_features=100_000, sublinear_tf=True,
                           strip_accents="unicode", dtype=np.float32)


def _chars() -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_features=100_000,
                           sublinear_tf=True, strip_accents="unicode", dtype=np.float32)


class _Centroid:
    """Nearest centroid by cosine: each letter is the mean of the (normalised) messages it answered."""

    def fit(self, matrix, labels: Sequence[int | str]):
        self.classes_ = np.array(sorted(set(labels)))
        index = {c: i for i, c in enumerate(self.classes_)}
        rows = np.array([index[y] for y in labels])
        centroids = np.vstack([np.asarray(matrix[rows == i].mean(axis=0)).ravel() for i in range(len(self.classes_))])
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        self.centroids = centroids / np.where(norms == 0, 1, norms)
        return self

    def predict_proba(self, matrix):
        sims = np.asarray(matrix @ self.centroids.T)
        exp = np.exp((sims - sims.max(axis=1, keepdims=True)) * 20)  # a softmax over cosine similarities
        return exp / exp.sum(axis=1, keepdims=True)


def _logreg() -> LogisticRegression:
    return LogisticRegression(C=20.0, max_iter=300)


# name -> (features, classifier): `mailroom letters eval --model` compares them; DEFAULT_MODEL is used.
MODELS: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
    "words+chars/logreg": (lambda: FeatureUnion([("w", _words()), ("c", _chars())]), _logreg),
    "words/logreg": (_words, _logreg),
    "words+chars/centroid": (lambda: FeatureUnion([("w", _words()), ("c", _chars())]), _Centroid),
    "words/centroid": (_words, _Centroid),
}
DEFAULT_MODEL = "words/centroid"


@dataclass
class LetterModel:
    """Message text -> probability of each letter (labels are letter ids, or names in an eval file)."""

    features: object
    classifier: object
    seconds: float = 0.0

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[object], model: str = DEFAULT_MODEL) -> LetterModel:
        if model not in MODELS:
            raise ValidationFailed(f"unknown model {model!r} (one of: {', '.join(MODELS)})")
        started = time.perf_counter()
        make_features, make_classifier = MODELS[model]
        features = make_features()
        matrix = features.fit_transform(texts)  # type: ignore[attr-defined]
        classifier = make_classifier().fit(matrix, list(labels))  # type: ignore[attr-defined]
        return cls(features, classifier, time.perf_counter() - started)

    @property
    def labels(self) -> list:
        return [c.item() if hasattr(c, "item") else c for c in self.classifier.classes_]  # type: ignore[attr-defined]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.classifier.predict_proba(self.features.transform(texts))  # type: ignore[attr-defined]

    def top(self, texts: Sequence[str], k: int = 3) -> list[list[tuple[object, float]]]:
        labels = self.labels
        return [[(labels[i], float(row[i])) for i in np.argsort(row)[::-1][:k]] for row in self.probabilities(texts)]


def history(session: Session, letter_ids: Sequence[int] | None = None,
            limit: int = MAX_HISTORY) -> tuple[list[str], list[int]]:
    """(message text, letter id) for the most recent answers sent with a form letter.

    ``letter_ids`` limits it to those letters (the ones still approved and current).
    """
    query = (select(Message.subject, Message.body_text, LetterVersion.letter_id).select_from(Response)
             .join(LetterVersion, LetterVersion.id == Response.version_id)
             .join(Message, Message.id == Response.message_id)
             .join(FormLetter, FormLetter.id == LetterVersion.letter_id)
             .where(FormLetter.one_off_message_id.is_(None)))
    if letter_ids is not None:
        query = query.where(LetterVersion.letter_id.in_(list(letter_ids)))
    rows = session.execute(query.order_by(Response.id.desc()).limit(limit)).all()
    return [message_text(s, b) for s, b, _ in rows], [letter_id for _, _, letter_id in rows]


_CACHE: dict[tuple, LetterModel | None] = {}
_LOCK = threading.Lock()


def office_model(session: Session) -> tuple[LetterModel | None, dict[int, LetterVersion]]:
    """The office's model (None while there is too little history) and the letters it may suggest."""
    allowed = {v.letter_id: v for v in approved_versions(session)}
    count, newest = session.execute(select(func.count(Response.id), func.max(Response.id))
                                    .where(Response.version_id.is_not(None))).one()
    if count < MIN_HISTORY or len(allowed) < 2:
        return None, allowed  # cheap when there is no history: two small queries
    key = (str(session.get_bind().engine.url), count, newest, tuple(sorted(allowed)))
    with _LOCK:
        if key not in _CACHE:
            texts, labels = history(session, sorted(allowed))
            model = None
            if len(texts) >= MIN_HISTORY and len(set(labels)) >= 2:
                model = LetterModel.fit(texts, labels)
                log.info("letter suggestion trained examples=%s letters=%s seconds=%.2f", len(texts),
                         len(set(labels)), model.seconds)
            if len(_CACHE) >= 4:  # a few offices (databases) per process at most; tests use several
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = model
        return _CACHE[key], allowed


@dataclass(frozen=True)
class Suggestion:
    version: LetterVersion
    score: float

    @property
    def title(self) -> str:
        return self.version.letter.title


def _sample(ids: Sequence[int], n: int = SCORE_SAMPLE) -> list[int]:
    """Evenly spaced ids: the same messages every time for the same selection."""
    ids = sorted(set(ids))
    if len(ids) <= n:
        return ids
    step = len(ids) / n
    return [ids[int(i * step)] for i in range(n)]


def _letter_scores(session: Session, message_ids: Sequence[int]) -> dict[int, float]:
    """Letter id -> the model's mean probability over (a sample of) the messages."""
    model, allowed = office_model(session)
    if model is None:
        return {}
    rows = session.execute(select(Message.subject, Message.body_text).where(Message.id.in_(_sample(message_ids))))
    texts = [message_text(s, b) for s, b in rows]
    if not texts:
        return {}
    mean = model.probabilities(texts).mean(axis=0)
    return {int(label): float(p) for label, p in zip(model.labels, mean, strict=True) if label in allowed}


def suggest_for_messages(session: Session, message_ids: Sequence[int], k: int = 3) -> list[Suggestion]:
    """The k letters the office's history suggests for these messages, best first (none without history)."""
    scores = _letter_scores(session, message_ids)
    if not scores:
        return []
    _model, allowed = office_model(session)
    best = sorted(scores.items(), key=lambda item: -item[1])[:k]
    return [Suggestion(allowed[letter_id], round(p, 3)) for letter_id, p in best]


def suggest_for_message(session: Session, message_id: int, k: int = 3) -> list[Suggestion]:
    return suggest_for_messages(session, [message_id], k)


# --- evaluation ------------------------------------------------------------------------------------

@dataclass
class Evaluation:
    examples: int
    letters: int
    folds: int
    model: str
    top1: float
    top3: float
    train_seconds: float
    curve: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"examples": self.examples, "letters": self.letters, "folds": self.folds, "model": self.model,
                "top1": round(self.top1, 4), "top3": round(self.top3, 4),
                "train_seconds": round(self.train_seconds, 2), "learning_curve": self.curve}


def _accuracy(model: LetterModel, texts: list[str], labels: list) -> tuple[float, float]:
    ranked = model.top(texts, 3)
    top1 = sum(1 for r, y in zip(ranked, labels, strict=True) if r[0][0] == y)
    top3 = sum(1 for r, y in zip(ranked, labels, strict=True) if y in [c for c, _ in r])
    return top1 / max(1, len(labels)), top3 / max(1, len(labels))


def evaluate(texts: Sequence[str], labels: Sequence[object], *, folds: int = 5,
             fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0), model: str = DEFAULT_MODEL,
             seed: int = 7) -> Evaluation:
    """k-fold top-1/top-3 accuracy, and the same folds trained on a fraction of their training part."""
    if len(texts) < max(10, folds) or len(set(labels)) < 2:
        raise ValidationFailed("need at least 10 answered messages and two letters to evaluate")
    if model not in MODELS:
        raise ValidationFailed(f"unknown model {model!r} (one of: {', '.join(MODELS)})")
    rng = random.Random(seed)  # noqa: S311 - sampling, not security
    order = list(range(len(texts)))
    rng.shuffle(order)
    texts = [texts[i] for i in order]
    labels = [labels[i] for i in order]
    by_fraction: dict[float, list[tuple[float, float, int]]] = {f: [] for f in fractions}
    seconds = []
    for k in range(folds):
        test = [i for i in range(len(texts)) if i % folds == k]
        learn = [i for i in range(len(texts)) if i % folds != k]
        test_texts, test_labels = [texts[i] for i in test], [labels[i] for i in test]
        for fraction in fractions:
            part = learn[:max(2, round(len(learn) * fraction))]  # learn is already in random order
            if len({labels[i] for i in part}) < 2:
                continue
            fitted = LetterModel.fit([texts[i] for i in part], [labels[i] for i in part], model)
            if fraction == 1.0:
                seconds.append(fitted.seconds)
            by_fraction[fraction].append((*_accuracy(fitted, test_texts, test_labels), len(part)))
    full = by_fraction.get(1.0) or by_fraction[max(by_fraction)]
    result = Evaluation(len(texts), len(set(labels)), folds, model, float(np.mean([a for a, _, _ in full])),
                        float(np.mean([b for _, b, _ in full])), float(np.mean(seconds)) if seconds else 0.0)
    for fraction in fractions:
        runs = by_fraction[fraction]
        if runs:
            result.curve.append({"fraction": fraction, "examples": int(np.mean([n for _, _, n in runs])),
                                 "top1": round(float(np.mean([a for a, _, _ in runs])), 4),
                                 "top3": round(float(np.mean([b for _, b, _ in runs])), 4)})
    return result


def read_history_file(path: str) -> tuple[list[str], list[str]]:
    """A JSONL file of {"text": ..., "letter": ...} per line (blank lines skipped)."""
    import json

    texts, labels = [], []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationFailed(f"line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not row.get("text") or row.get("letter") in (None, ""):
                raise ValidationFailed(f"line {number}: needs \"text\" and \"letter\"")
            texts.append(str(row["text"]))
            labels.append(str(row["letter"]))
    return texts, labels


# --- preview -------------------------------------------------------------------------------------

@dataclass
class Preview:
    message_id: int
    why: str
    method: str  # "email" or "print"
    to: str  # the email address, or the postal address block
    subject: str = ""
    body: str = ""
    error: str | None = None
    addition: str | None = None  # what the writer added to the campaign text, to read beside the letter


def _answerable(message: Message) -> bool:
    return delivery_for(message) is not None and can_move(message.status, MessageStatus.ANSWER_QUEUED)


# How many of a constituent's name and address fields are filled in (fewer: a letter that reads thinner).
_FILLED = sum(case((func.coalesce(col, "") == "", 0), else_=1) for col in (
    Constituent.prefix, Constituent.first_name, Constituent.last_name, Constituent.address1, Constituent.city,
    Constituent.state, Constituent.zip5))


def _candidates(session: Session, ids: list[int], kind: str, limit: int = 10) -> list[int]:
    """Message ids of the selection that look like `kind`, cheapest query first; checked by the caller."""
    found: list[tuple[int, int]] = []
    for chunk in _chunks(ids):
        if kind == "addition":
            query: Select[int, Any] = (
                select(Message.id, Message.id).where(Message.id.in_(chunk), Message.batch_additions.is_not(None))
                     .limit(limit))
        elif kind == "paper":
            query = (select(Message.id, Message.id).join(Constituent, Constituent.id == Message.constituent_id)
                     .where(Message.id.in_(chunk), Constituent.address1.is_not(None), Constituent.zip5.is_not(None),
                            or_(Message.channel.in_(PAPER_CHANNELS), func.coalesce(Message.from_address, "") == ""))
                     .order_by(Message.channel.in_(PAPER_CHANNELS).desc(), Message.id).limit(limit))
        else:  # fewest fields
            query = (select(Message.id, func.coalesce(_FILLED, 0))
                     .outerjoin(Constituent, Constituent.id == Message.constituent_id)
                     .where(Message.id.in_(chunk)).order_by(func.coalesce(_FILLED, 0), Message.id).limit(limit))
        found.extend((row[0], row[1]) for row in session.execute(query))
        if kind != "fewest" and len(found) >= limit:
            break
    if kind == "fewest":
        found.sort(key=lambda row: (row[1], row[0]))
    return [message_id for message_id, _ in found[:limit * 2]]


def _missing(c: Constituent | None) -> str:
    if c is None:
        return "no constituent record"
    names = {"first name": c.first_name, "last name": c.last_name, "street address": c.address1, "city": c.city,
             "ZIP": c.zip5}
    gone = [name for name, value in names.items() if not value]
    return "missing " + ", ".join(gone) if gone else "every name and address field filled"


def _additions(message: Message) -> str | None:
    extra = [str(a).strip() for a in (message.batch_additions or []) if str(a).strip()]
    return " ".join(extra) if extra else None


def pick_recipients(session: Session, message_ids: Sequence[int]) -> list[tuple[Message, str]]:
    """Three real recipients from the selection, each with why it was picked, never the same one twice."""
    ids = sorted(set(message_ids))
    chosen: list[tuple[Message, str]] = []
    seen: set[int] = set()
    # Several messages of one person get one letter: show three different people when we can.
    people: set[int] = set()

    def load(candidate_ids: list[int]) -> list[Message]:
        if not candidate_ids:
            return []
        rows = session.scalars(select(Message).where(Message.id.in_(candidate_ids))
                               .options(selectinload(Message.constituent), selectinload(Message.topic)))
        by_id = {m.id: m for m in rows}
        return [by_id[i] for i in candidate_ids if i in by_id]

    def take(messages: list[Message], test: Callable[[Message], bool], why: Callable[[Message], str]) -> bool:
        for strict in (True, False):
            for m in messages:
                if m.id in seen or not _answerable(m) or not test(m):
                    continue
                if strict and m.constituent_id is not None and m.constituent_id in people:
                    continue
                chosen.append((m, why(m)))
                seen.add(m.id)
                if m.constituent_id is not None:
                    people.add(m.constituent_id)
                return True
        return False

    kinds = (
        ("addition", lambda m: _additions(m) is not None, lambda m: "wrote something of their own",
         "no one in the selection added words of their own"),
        ("paper", lambda m: delivery_for(m) == DeliveryMethod.PRINT, lambda m: "answered on paper (by post)",
         "no one in the selection is answered on paper"),
        ("fewest", lambda m: True, lambda m: f"fewest details on file ({_missing(m.constituent)})", ""),
    )
    for kind, test, why, absent in kinds:
        if take(load(_candidates(session, ids, kind)), test, why):
            continue
        # Fall back to another real recipient, saying which kind was missing.
        fallback = [i for i in ids[:200] if i not in seen]

        def another(m: Message, absent: str = absent) -> str:
            return f"another recipient ({absent})" if absent else "another recipient"

        take(load(fallback), lambda m: True, another)
    return chosen


def preview(session: Session, version_id: int, message_ids: Sequence[int], settings) -> list[Preview]:
    """The letter rendered exactly as it will be sent (drafting.apply.respond) for three real recipients."""
    version = session.get(LetterVersion, version_id)
    if version is None:
        raise NotFound(f"no letter version {version_id}")
    office, budget = office_of(settings), budget_of(settings)
    previews = []
    for message, why in pick_recipients(session, message_ids):
        method = delivery_for(message)
        to = (message.from_address or "") if method == DeliveryMethod.EMAIL else address_block(message.constituent)
        item = Preview(message_id=message.id, why=why, method=method.value if method else "", to=to,
                       addition=_additions(message))
        try:
            values = context(message, message.constituent, office)
            item.subject = header_text(render(version.subject, values, budget))[:500] or "Your letter"
            item.body = render(version.body, values, budget)
        except LetterError as exc:
            item.error = str(exc)
        previews.append(item)
    return previews


def report_table(result: Evaluation) -> str:
    """The evaluation as a small table for a terminal."""
    lines = [f"model {result.model}: {result.examples:,} answered messages, {result.letters} letters, "
             f"{result.folds}-fold cross-validation, {result.train_seconds:.1f} s to train on all",
             f"{'training data':>14} {'examples':>9} {'top-1':>7} {'top-3':>7}"]
    lines += [f"{point['fraction']:>13.0%} {point['examples']:>9,} {point['top1']:>7.3f} {point['top3']:>7.3f}"
              for point in result.curve]
    return "\n".join(lines)
