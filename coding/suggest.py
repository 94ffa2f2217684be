"""Topic and stance suggestions that learn from staff coding.

A TF-IDF (words and word pairs) + logistic-regression model is trained on every message whose topic a
person or the delivery itself gave (CWC and web-form topics count; topics the model applied itself
never do, so it cannot teach itself its own mistakes). A second, smaller model learns stance
(support / oppose / neutral) the same way. Each training run is a numbered version stored as a file
in the blob store; one version is active, and activating an older one is the rollback.

``evaluate`` gives cross-validated top-1 / top-3 accuracy and a learning curve by number of coded
examples, for the database or for a CSV/JSONL file of ``text`` and ``label``.
"""

from __future__ import annotations

import pickle
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import OPEN_STATUSES, Direction, Message, Stance, TopicModel
from correspondence.services.audit import record
from correspondence.services.blobs import load_blob, store_blob

MIN_EXAMPLES = 20
MAX_EXAMPLES = 50_000  # the most recent coded messages a model learns from
TEXT_CHARS = 4000
SOURCES_NOT_TRAINED = ("model",)


def message_text(subject: str | None, body: str | None) -> str:
    return f"{subject or ''}\n{(body or '')[:TEXT_CHARS]}"


def _vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True,
                           strip_accents="unicode", lowercase=True, dtype=np.float32)


def _classifier() -> LogisticRegression:
    return LogisticRegression(C=20.0, max_iter=300, solver="lbfgs")


def _fitted_vectorizer(texts: Sequence[str]) -> TfidfVectorizer:
    vectorizer = _vectorizer() if len(texts) >= 50 else TfidfVectorizer(
        ngram_range=(1, 2), min_df=1, sublinear_tf=True, strip_accents="unicode", dtype=np.float32)
    return vectorizer.fit(texts)


@dataclass
class Classifier:
    """One text classifier: a vectorizer, a model and its labels."""

    vectorizer: TfidfVectorizer
    model: LogisticRegression

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[object],
            vectorizer: TfidfVectorizer | None = None) -> Classifier:
        """Fit on texts; with a vectorizer already fitted (shared with another model), only the model."""
        if vectorizer is None:
            vectorizer = _fitted_vectorizer(texts)
        model = _classifier().fit(vectorizer.transform(texts), list(labels))
        return cls(vectorizer, model)

    def top(self, texts: Sequence[str], k: int = 3, matrix: Any = None) -> list[list[tuple[Any, float]]]:
        probs = self.model.predict_proba(self.vectorizer.transform(texts) if matrix is None else matrix)
        classes = self.model.classes_
        out = []
        for row in probs:
            order = np.argsort(row)[::-1][:k]
            out.append([(classes[i].item() if hasattr(classes[i], "item") else classes[i], round(float(row[i]), 3))
                        for i in order])
        return out


@dataclass
class Suggester:
    version: int
    topics: Classifier | None
    stance: Classifier | None

    def suggest(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        # Both models read the same word features, so a letter is turned into features once.
        fitted = self.topics or self.stance
        vectorizer = fitted.vectorizer if fitted else None
        matrix = vectorizer.transform(texts) if vectorizer is not None else None
        topic_rows = self.topics.top(texts, 3, matrix) if self.topics else [[] for _ in texts]
        stance_rows = self.stance.top(texts, 1, matrix) if self.stance else [[] for _ in texts]
        return [{"model": self.version, "topics": [[int(t), p] for t, p in topics],
                 "stance": [str(s[0][0]), s[0][1]] if s else None}
                for topics, s in zip(topic_rows, stance_rows, strict=True)]


# --- training data ------------------------------------------------------------------------------

def coded_examples(session: Session, limit: int = MAX_EXAMPLES) -> tuple[list[str], list[int]]:
    rows = session.execute(select(Message.subject, Message.body_text, Message.topic_id).where(
        Message.topic_id.is_not(None), Message.direction == Direction.INBOUND,
        func.coalesce(Message.topic_source, "staff").not_in(SOURCES_NOT_TRAINED))
        .order_by(Message.id.desc()).limit(limit)).all()
    coded = [(s, b, t) for s, b, t in rows if t is not None]  # all of them: the query asks for coded ones
    return [message_text(s, b) for s, b, _ in coded], [t for _, _, t in coded]


def stance_examples(session: Session, limit: int = MAX_EXAMPLES) -> tuple[list[str], list[str]]:
    rows = session.execute(select(Message.subject, Message.body_text, Message.stance).where(
        Message.stance.is_not(None), Message.direction == Direction.INBOUND)
        .order_by(Message.id.desc()).limit(limit)).all()
    coded = [(s, b, v) for s, b, v in rows if v is not None]  # all of them: the query asks for coded ones
    return [message_text(s, b) for s, b, _ in coded], [Stance(v).value for _, _, v in coded]


def train(session: Session, *, actor_id: int | None, read: Session | None = None) -> TopicModel:
    """Train a new version on everything coded so far, store it, make it the active one.

    With `read` (a session that takes no write lock), the coded mail is read there and the model fitted
    before `session` is first used: on SQLite the write lock is held for storing the version, not for the
    seconds of training (which held every other writer past its wait on a big mailbox)."""
    source = read or session
    texts, labels = coded_examples(source)
    if len(texts) < MIN_EXAMPLES or len(set(labels)) < 2:
        raise ValidationFailed(f"code at least {MIN_EXAMPLES} messages with two or more topics first "
                               f"({len(texts)} coded so far)")
    s_texts, s_labels = stance_examples(source)
    if read is not None:
        read.rollback()
    holdout = _holdout_metrics(texts, labels)
    vectorizer = _fitted_vectorizer(texts + s_texts)  # one set of word features for both models
    topics = Classifier.fit(texts, labels, vectorizer)
    stance = (Classifier.fit(s_texts, s_labels, vectorizer)
              if len(s_texts) >= MIN_EXAMPLES and len(set(s_labels)) >= 2 else None)
    version = (session.scalar(select(func.max(TopicModel.version))) or 0) + 1
    bundle = Suggester(version, topics, stance)
    digest = store_blob(session, pickle.dumps(bundle, protocol=pickle.HIGHEST_PROTOCOL), "application/x-mailroom-model")
    session.execute(update(TopicModel).values(active=False))
    row = TopicModel(version=version, blob_sha256=digest, active=True, examples=len(texts),
                     stance_examples=len(s_texts) if stance else 0, labels=len(set(labels)), metrics=holdout,
                     trained_by_id=actor_id)
    session.add(row)
    session.flush()
    record(session, actor_id=actor_id, action="topic_model.train", object_type="topic_model", object_id=version,
           after={"examples": len(texts), "labels": len(set(labels)), **holdout})
    return row


def _holdout_metrics(texts: list[str], labels: list[int]) -> dict[str, Any]:
    """Accuracy on a fifth held out (when there is enough to hold out), for the version list."""
    if len(texts) < 50:
        return {"holdout": 0}
    rng = random.Random(17)  # noqa: S311 - sampling, not security
    order = list(range(len(texts)))
    rng.shuffle(order)
    cut = max(10, min(2000, len(order) // 5))
    test, learn = order[:cut], order[cut:]
    model = Classifier.fit([texts[i] for i in learn], [labels[i] for i in learn])
    top1, top3 = _accuracy(model, [texts[i] for i in test], [labels[i] for i in test])
    return {"holdout": cut, "top1": round(top1, 3), "top3": round(top3, 3)}


def _accuracy(model: Classifier, texts: list[str], labels: list[object]) -> tuple[float, float]:
    ranked = model.top(texts, 3)
    top1 = sum(1 for r, y in zip(ranked, labels, strict=True) if r and r[0][0] == y) / max(1, len(labels))
    top3 = sum(1 for r, y in zip(ranked, labels, strict=True) if y in [c for c, _ in r]) / max(1, len(labels))
    return top1, top3


def activate(session: Session, version: int, *, actor_id: int | None) -> TopicModel:
    row = session.scalar(select(TopicModel).where(TopicModel.version == version))
    if row is None:
        raise NotFound(f"no topic model version {version}")
    before = session.scalar(select(TopicModel.version).where(TopicModel.active.is_(True)))
    session.execute(update(TopicModel).values(active=False))
    row.active = True
    record(session, actor_id=actor_id, action="topic_model.activate", object_type="topic_model", object_id=version,
           before={"active": before}, after={"active": version})
    return row


KEEP_VERSIONS = 10


def prune_versions(session: Session, keep: int = KEEP_VERSIONS) -> list[str]:
    """Drop model versions older than the newest `keep` (never the active one); returns the digests
    whose files the caller removes once this transaction has committed."""
    from correspondence.models import Blob

    newest = set(session.scalars(select(TopicModel.version).order_by(TopicModel.version.desc()).limit(keep)))
    old = list(session.scalars(select(TopicModel).where(TopicModel.version.not_in(newest),
                                                        TopicModel.active.is_(False))))
    digests = []
    for row in old:
        digests.append(row.blob_sha256)
        session.delete(row)
    session.flush()
    gone = [d for d in set(digests) if session.scalar(select(TopicModel.id).where(
        TopicModel.blob_sha256 == d).limit(1)) is None]
    for digest in gone:
        blob = session.get(Blob, digest)
        if blob is not None:
            session.delete(blob)
    if old:
        record(session, actor_id=None, action="topic_model.prune", object_type="topic_model",
               object_id=min(r.version for r in old), after={"versions": sorted(r.version for r in old)})
    return gone


def versions(session: Session) -> list[TopicModel]:
    return list(session.scalars(select(TopicModel).order_by(TopicModel.version.desc()).limit(30)))


def active_suggester(session: Session) -> Suggester | None:
    row = session.execute(select(TopicModel.blob_sha256).where(TopicModel.active.is_(True))).first()
    if row is None:
        return None
    return _cached(session, row[0])


_BY_DIGEST: dict[str, Suggester] = {}


def _cached(session: Session, digest: str) -> Suggester | None:
    if digest not in _BY_DIGEST:
        data = load_blob(session, digest)
        if data is None:
            return None
        _BY_DIGEST.clear()  # one model in memory per process
        # Only files this module wrote are loaded: the digest comes from our own table, and the blob
        # store refuses any path that is not a checked SHA-256 below its root.
        _BY_DIGEST[digest] = pickle.loads(data)  # noqa: S301 - our own model file, addressed by its hash
    return _BY_DIGEST[digest]


def suggest_for(session: Session, messages: Sequence[Message], *, suggester: Suggester | None = None,
                autocode: float = 0.0) -> int:
    """Fill in suggestions for uncoded messages; apply the topic when the model is sure enough.

    Returns how many topics were applied automatically (``topic_source = "model"``).
    """
    suggester = suggester or active_suggester(session)
    todo = [m for m in messages if m.topic_id is None]
    if suggester is None or not todo:
        return 0
    applied = 0
    for message, result in zip(todo, suggester.suggest([message_text(m.subject, m.body_text) for m in todo]),
                               strict=True):
        message.suggestions = result
        if autocode and result["topics"] and result["topics"][0][1] >= autocode:
            message.topic_id, message.topic_source = result["topics"][0][0], "model"
            applied += 1
    return applied


def rescore_open(session: Session, *, autocode: float = 0.0, limit: int = 20_000,
                 checkpoint: Callable[[], None] | None = None) -> tuple[int, int]:
    """After a (re)train: fresh suggestions for the open, uncoded mail, newest first (`checkpoint`, the
    caller's commit, after each 500: no one transaction holds the write lock for all 20,000)."""
    suggester = active_suggester(session)
    if suggester is None:
        return 0, 0
    ids = list(session.scalars(select(Message.id).where(Message.topic_id.is_(None), Message.status.in_(OPEN_STATUSES),
                                                        Message.direction == Direction.INBOUND)
                               .order_by(Message.id.desc()).limit(limit)))
    scored = applied = 0
    for start in range(0, len(ids), 500):
        chunk = list(session.scalars(select(Message).where(Message.id.in_(ids[start:start + 500]))))
        applied += suggest_for(session, chunk, suggester=suggester, autocode=autocode)
        scored += len(chunk)
        session.flush()
        if checkpoint is not None:
            checkpoint()
    return scored, applied


# --- evaluation ------------------------------------------------------------------------------------

@dataclass
class Evaluation:
    examples: int
    labels: int
    folds: int
    top1: float
    top3: float
    curve: list[dict[str, Any]] = field(default_factory=list)
    label_counts: dict[Any, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "labels": self.labels, "folds": self.folds, "top1": round(self.top1, 4),
                "top3": round(self.top3, 4), "learning_curve": self.curve}


def evaluate(texts: list[str], labels: list[Any], *, folds: int = 5, sizes: Sequence[int] = (25, 50, 100, 200, 400, 800,
             1600, 3200), repeats: int = 3, max_examples: int = 20_000, seed: int = 7) -> Evaluation:
    """k-fold top-1/top-3 accuracy on everything, and a learning curve by number of coded examples."""
    if len(texts) < 10 or len(set(labels)) < 2:
        raise ValidationFailed("need at least 10 labelled examples and two labels to evaluate")
    rng = random.Random(seed)  # noqa: S311 - sampling, not security
    order = list(range(len(texts)))
    rng.shuffle(order)
    order = order[:max_examples]
    texts = [texts[i] for i in order]
    labels = [labels[i] for i in order]
    scores = []
    for k in range(folds):
        test = set(range(k, len(texts), folds))
        model = Classifier.fit([t for i, t in enumerate(texts) if i not in test],
                               [y for i, y in enumerate(labels) if i not in test])
        scores.append(_accuracy(model, [texts[i] for i in sorted(test)], [labels[i] for i in sorted(test)]))
    result = Evaluation(len(texts), len(set(labels)), folds, float(np.mean([s[0] for s in scores])),
                        float(np.mean([s[1] for s in scores])), label_counts=dict(Counter(labels).most_common(10)))
    test_pool = list(range(len(texts)))
    for n in sizes:
        if n >= len(texts) * 0.8:
            break
        runs = []
        for r in range(repeats):
            pick = random.Random(seed + r + n)  # noqa: S311 - sampling, not security
            shuffled = test_pool[:]
            pick.shuffle(shuffled)
            train_ids, test_ids = shuffled[:n], shuffled[n:n + 2000]
            if len({labels[i] for i in train_ids}) < 2:
                continue
            model = Classifier.fit([texts[i] for i in train_ids], [labels[i] for i in train_ids])
            runs.append(_accuracy(model, [texts[i] for i in test_ids], [labels[i] for i in test_ids]))
        if runs:
            result.curve.append({"coded": n, "top1": round(float(np.mean([a for a, _ in runs])), 4),
                                 "top3": round(float(np.mean([b for _, b in runs])), 4)})
    return result


def read_labelled(path: str) -> tuple[list[str], list[str]]:
    """A CSV or JSONL file of labelled examples (``text``, ``label``), read as `batch eval` reads files."""
    from pathlib import Path

    from batching.evalfile import read_rows

    try:
        rows = read_rows(Path(path))
    except ValueError as exc:
        if "no 'text' column" in str(exc):
            raise ValidationFailed(f"the file needs the columns text and label ({exc})") from None
        raise ValidationFailed(str(exc)) from None
    if rows and "label" not in rows[0]:
        raise ValidationFailed("the file needs the columns text and label")
    pairs = [(str(r["text"]), str(r["label"]).strip()) for r in rows
             if r.get("text") and r.get("label") not in (None, "")]
    return [t for t, _ in pairs], [label for _, label in pairs]


def retrain(db, *, actor_id: int | None, autocode: float,  # type: ignore[no-untyped-def]
            reader=None) -> dict[str, object]:
    """Train a new active version on everything coded so far, drop old versions, then refresh open mail's
    suggestions (the daily job, "Retrain now" and `mailroom topics train`).

    Three steps, each committed: the new version and the pruning; the pruned files, removed only after
    that commit (a row never points at a missing file); the rescoring. With too little coded mail it says
    so and changes nothing. Safe to run twice: a second run trains one more version from the same mail.
    """
    import logging

    try:
        with db.unit_of_work() as session:
            if reader is not None:  # `reader`: the same database, read without taking the write lock
                with reader.sessions() as read:
                    model = train(session, actor_id=actor_id, read=read)
            else:
                model = train(session, actor_id=actor_id)
            version, metrics = model.version, model.metrics
            dropped = prune_versions(session)
    except ValidationFailed as exc:
        logging.getLogger(__name__).info("topic model not trained: %s", exc)
        return {"trained": False, "reason": str(exc)}
    if db.blobs is not None:
        for digest in dropped:
            db.blobs.remove(digest)
    with db.unit_of_work() as session:
        scored, applied = rescore_open(session, autocode=autocode, checkpoint=session.commit)
    return {"trained": True, "version": version, "metrics": metrics, "rescored": scored, "applied": applied}
