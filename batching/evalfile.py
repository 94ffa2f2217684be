"""`mailroom batch eval`: cluster a CSV/JSONL file with the production code and report quality."""

from __future__ import annotations

import csv
import json
import resource
import sys
import time
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


def evaluate_file(path: Path, out: Path | None = None, settings: ClusterSettings | None = None) -> dict:
    rows = read_rows(path)
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
    if out is not None:
        with out.open("w") as fh:
            for i, (row, batch) in enumerate(zip(rows, clustering.labels, strict=True)):
                fh.write(json.dumps({"id": row.get("id", i), "batch": batch if batch >= 0 else None}) + "\n")
    return result
