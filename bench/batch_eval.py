"""Pairwise precision, recall and F1 per kind of campaign letter: `mailroom batch eval` on each set.

    python bench/batch_eval.py [--sets bench/eval] [--tag after]

Runs the production clustering (batching.evalfile.evaluate_file, no database) on every
bench/eval/<kind>.jsonl (bench/eval_sets.py makes them) and writes bench/results/batch_eval-<tag>.json.
For the organic set, where nothing belongs together, the figure that matters is ``false_pairs``
(pairs of letters put in one batch): it must be 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batching.cluster import ClusterSettings  # noqa: E402
from batching.evalfile import evaluate_file  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", type=Path, default=ROOT / "bench" / "eval")
    ap.add_argument("--tag", default="after")
    ap.add_argument("--baseline", action="store_true",
                    help="the first pass only (word 3-grams, batches of three or more): the algorithm before issue 16")
    ap.add_argument("kinds", nargs="*")
    args = ap.parse_args()
    results = {}
    for path in sorted(args.sets.glob("*.jsonl")):
        if args.kinds and path.stem not in args.kinds:
            continue
        out = Path(tempfile.gettempdir()) / f"mailroom-batch-eval-{path.stem}.jsonl"
        result = evaluate_file(path, out, ClusterSettings(recall=False) if args.baseline else None)
        batches: dict[int, int] = {}
        for line in out.read_text().splitlines():
            b = json.loads(line)["batch"]
            if b is not None:
                batches[b] = batches.get(b, 0) + 1
        result["batched_letters"] = sum(batches.values())
        result["false_pairs"] = None
        if path.stem == "organic":
            result["false_pairs"] = sum(n * (n - 1) // 2 for n in batches.values())
        results[path.stem] = result
        print(path.stem, json.dumps(result), flush=True)
    out = ROOT / "bench" / "results" / f"batch_eval-{args.tag}.json"
    if not args.kinds:
        out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
