"""Which letters of an evaluation set the clustering misses, and how each campaign is split.

    python bench/batch_misses.py slogans [--sets bench/eval] [--show 5]

For every labelled campaign: how its letters were batched (batch -> count, "-" for none), then up to
``--show`` letters outside the campaign's main batch, normalised; then the batches that mix campaigns
(or take organic letters), with a sample of each side. A diagnostic for tuning, no database.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batching.cluster import cluster_texts  # noqa: E402
from batching.evalfile import read_rows  # noqa: E402
from batching.normalise import normalise  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind")
    ap.add_argument("--sets", type=Path, default=ROOT / "bench" / "eval")
    ap.add_argument("--show", type=int, default=5)
    ap.add_argument("--width", type=int, default=160)
    args = ap.parse_args()
    rows = read_rows(args.sets / f"{args.kind}.jsonl")
    labels = cluster_texts([str(r.get("text") or "") for r in rows]).labels
    by_label: dict[str, list[int]] = defaultdict(list)
    by_batch: dict[int, list[int]] = defaultdict(list)
    for i, (row, batch) in enumerate(zip(rows, labels, strict=True)):
        by_label[str(row.get("label") or "")].append(i)
        if batch >= 0:
            by_batch[batch].append(i)
    for label, items in sorted(by_label.items()):
        if not label:
            continue
        split = Counter(labels[i] for i in items)
        main_batch = max((b for b in split if b >= 0), key=lambda b: split[b], default=None)
        print(f"== {label}: {len(items)} letters; batches " +
              ", ".join(f"{'-' if b < 0 else b}:{n}" for b, n in split.most_common()))
        outside = [i for i in items if labels[i] != main_batch]
        for i in outside[:args.show]:
            b = labels[i]
            print(f"   [{'-' if b < 0 else b}] {normalise(rows[i]['text'])[:args.width]}")
    for batch, items in sorted(by_batch.items()):
        mix = Counter(str(rows[i].get("label") or "") for i in items)
        if len(mix) > 1 or "" in mix:
            print(f"!! batch {batch} mixes {dict(mix)}")
            for label in mix:
                i = next(i for i in items if str(rows[i].get("label") or "") == label)
                print(f"   <{label or 'organic'}> {normalise(rows[i]['text'])[:args.width]}")
    organic = by_label.get("", [])
    print(f"organic letters: {len(organic)}, batched: {sum(1 for i in organic if labels[i] >= 0)}")


if __name__ == "__main__":
    main()
