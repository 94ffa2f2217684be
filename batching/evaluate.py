"""Measuring clustering against known groups: pairwise precision, recall, F1 and adjusted Rand index."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sklearn.metrics import adjusted_rand_score


def _pairs(counts: Counter) -> int:
    return sum(c * (c - 1) // 2 for c in counts.values())


def pairwise_scores(truth: Sequence[str | None], predicted: Sequence[int]) -> dict[str, float]:
    """Pairs of items put together: right ones over all put together (precision) and over all that
    belong together (recall). Items with no label, or a label seen once, belong to no group; items
    predicted -1 are in no batch."""
    label_counts = Counter(t for t in truth if t)
    true_group = [t if t and label_counts[t] > 1 else None for t in truth]
    true_pairs = _pairs(Counter(t for t in true_group if t is not None))
    pred_pairs = _pairs(Counter(p for p in predicted if p >= 0))
    both = _pairs(Counter((t, p) for t, p in zip(true_group, predicted, strict=True) if t is not None and p >= 0))
    precision = both / pred_pairs if pred_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # For ARI every ungrouped item is its own cluster, on both sides.
    t_ids = [t if t is not None else f"__single_{i}" for i, t in enumerate(true_group)]
    p_ids = [str(p) if p >= 0 else f"__single_{i}" for i, p in enumerate(predicted)]
    return {"pairwise_precision": round(precision, 4), "pairwise_recall": round(recall, 4),
            "pairwise_f1": round(f1, 4), "ari": round(float(adjusted_rand_score(t_ids, p_ids)), 4)}
