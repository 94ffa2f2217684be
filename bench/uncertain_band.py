"""How many of the letters clustering leaves out of their campaign land in the uncertain band.

    python bench/uncertain_band.py [kinds...]

For each evaluation set (bench/eval), clusters it, takes each campaign's batch (the batch holding
most of its letters) and its leader letter as the template, and runs batching.evidence.explain on
every letter of the campaign that is not in that batch: how many are "uncertain" (listed for a
person as "possibly part of this campaign"), how many "apart". Also how many organic letters land
in the uncertain band of some batch (what a person would have to reject). Writes
bench/results/uncertain_band.json.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batching.cluster import cluster_texts  # noqa: E402
from batching.evidence import UNCERTAIN, explain  # noqa: E402


def main() -> None:
    kinds = sys.argv[1:] or ["slogans", "spun", "rewrites", "talking_points", "pairs", "personalised"]
    out = {}
    for kind in kinds:
        rows = [json.loads(line) for line in (ROOT / "bench" / "eval" / f"{kind}.jsonl").open()]
        clustering = cluster_texts([r["text"] for r in rows])
        by_label: dict[str, Counter] = defaultdict(Counter)
        for r, b in zip(rows, clustering.labels, strict=True):
            if r["label"]:
                by_label[r["label"]][b] += 1
        bands: Counter[str] = Counter()
        templates = {}
        for label, counts in by_label.items():
            batch = max((b for b in counts if b >= 0), key=lambda b: counts[b], default=None)
            if batch is None:
                bands["no batch at all"] += sum(counts.values())
                continue
            template = rows[clustering.leaders[batch]]["text"] if batch in clustering.leaders else None
            templates[batch] = template
            for r, b in zip(rows, clustering.labels, strict=True):
                if r["label"] == label and b != batch and template:
                    bands[explain(r["text"], template).band] += 1
        organic_uncertain = sum(
            1 for r, b in zip(rows, clustering.labels, strict=True) if not r["label"] and b < 0
            and any(explain(r["text"], t).band == UNCERTAIN for t in templates.values() if t))
        out[kind] = {"missed": sum(bands.values()), **dict(bands), "organic_in_uncertain_band": organic_uncertain}
        print(kind, json.dumps(out[kind]), flush=True)
    if len(sys.argv) == 1:
        (ROOT / "bench" / "results" / "uncertain_band.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
