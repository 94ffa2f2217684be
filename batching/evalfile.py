"""`mailroom batch eval`: cluster a CSV/JSONL file with the production code and report quality; with
``--kind``, the per-kind evaluation sets in bench/eval (bench/eval_sets.py makes them, bench/README.md
says how each is labelled). No database either way."""

from __future__ import annotations

import csv
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from batching.cluster import ClusterSettings, cluster_texts
from batching.evaluate import pairwise_scores

csv.field_size_limit(sys.maxsize)


def read_rows(path: Path) -> list[dict]:
    """Rows with `text`, optional `label` and `id`, from CSV (any dialect with a header) or JSONL.

    Read line by line and kept to those three fields, so a large file is never held twice.
    """
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        head = fh.read(4096)
        fh.seek(0)
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or head.lstrip().startswith("{"):
            rows = []
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number} is not JSON: {exc}") from exc
                if not isinstance(row, dict):
                    raise ValueError(f"line {number} is not a JSON object")
                rows.append(_keep(row))
        else:
            rows = [_keep(r) for r in csv.DictReader(fh)]
    if rows and "text" not in rows[0]:
        raise ValueError(f"{path} has no 'text' column (columns: {', '.join(map(str, rows[0]))})")
    return rows


def _keep(row: dict) -> dict:
    return {k: row[k] for k in ("text", "label", "id") if k in row} or row


# The per-kind evaluation sets shipped with the source (bench/eval/<kind>.jsonl).
EVAL_SETS = Path(__file__).resolve().parent.parent / "bench" / "eval"


def eval_kinds(sets: Path = EVAL_SETS) -> list[str]:
    """The kinds there are sets for, sorted."""
    return sorted(p.stem for p in sets.glob("*.jsonl"))


def evaluate_kinds(kinds: Sequence[str] = (), sets: Path = EVAL_SETS,
                   settings: ClusterSettings | None = None) -> dict[str, dict]:
    """Pairwise precision, recall and F1 per kind (all kinds when none are given), plus how many letters
    were batched and, for the organic set, where nothing belongs together, ``false_pairs``: pairs of
    letters put in one batch (it must be 0)."""
    known = eval_kinds(sets)
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise ValueError(f"no evaluation set for {', '.join(unknown)} in {sets} (there are: {', '.join(known)})")
    results = {}
    for kind in kinds or known:
        result, labels = _evaluate(read_rows(sets / f"{kind}.jsonl"), settings)
        sizes = Counter(b for b in labels if b >= 0)
        result["batched_letters"] = sum(sizes.values())
        result["false_pairs"] = sum(n * (n - 1) // 2 for n in sizes.values()) if kind == "organic" else None
        results[kind] = result
    return results


def evaluate_file(path: Path, out: Path | None = None, settings: ClusterSettings | None = None) -> dict:
    rows = read_rows(path)
    result, labels = _evaluate(rows, settings)
    if out is not None:
        with out.open("w") as fh:
            for i, (row, batch) in enumerate(zip(rows, labels, strict=True)):
                fh.write(json.dumps({"id": row.get("id", i), "batch": batch if batch >= 0 else None}) + "\n")
    return result


def _evaluate(rows: list[dict], settings: ClusterSettings | None) -> tuple[dict, list[int]]:
    texts = [str(r.get("text") or "") for r in rows]
    has_labels = any("label" in r for r in rows)
    t0 = time.perf_counter()
    clustering = cluster_texts(texts, settings)
    seconds = time.perf_counter() - t0
    result: dict[str, object] = {
        "n": len(rows), "batches": clustering.batches, "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if has_labels:
        labels = [str(r["label"]).strip() if r.get("label") not in (None, "") else None for r in rows]
        result.update(pairwise_scores(labels, clustering.labels))
    return result, list(clustering.labels)
