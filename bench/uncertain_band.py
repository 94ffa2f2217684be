"""How many of the letters clustering leaves out of their campaign a person would be shown, and how many
letters that belong to no campaign would be shown too (the noise staff must reject).

    python bench/uncertain_band.py [kinds...]

For each evaluation set (bench/eval), clusters it with the production code, takes each campaign's batch
(the batch holding most of its letters) and its template (batching.templates.build_template of its
members, as production does), and runs batching.evidence.explain on every letter of the campaign that
is not in that batch. Counted per kind:

- ``missed``: campaign letters not in their campaign's batch; ``join`` / ``uncertain`` / ``apart``:
  their band by explain alone (what the page listed before the proposals were tightened, "uncertain" only);
- ``proposed``: those the production rule lists (batching.templates.worth_a_look: band join or
  uncertain, the aligned sentences hold at least UNCERTAIN_FROM of the template's own words, not
  sentences three or more templates share, and a match by meaning alone is mostly the template), and
  ``listed``: of those, the ones within PROPOSE_CAP per batch (closest first);
- ``organic_uncertain_before`` / ``organic_proposed``: unbatched organic letters (no label) in the
  uncertain band of some batch's template, before, and listed by the production rule, after.

Writes bench/results/uncertain_band.json when run on every kind.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batching.batches import PROPOSE_CAP  # noqa: E402
from batching.cluster import cluster_texts  # noqa: E402
from batching.evidence import UNCERTAIN, UNCERTAIN_FROM, explain  # noqa: E402
from batching.templates import Template, boilerplate, build_template, worth_a_look  # noqa: E402

KINDS = ["slogans", "spun", "rewrites", "talking_points", "talking_points_list", "pairs", "personalised", "organic"]


def _proposed(text: str, template: Template, common: frozenset[str]) -> tuple[str, float | None]:
    """(band, the score it would be listed with or None): the rule batching.batches.worth_proposing applies."""
    ev = explain(text, template.text)
    return ev.band, ev.score if worth_a_look(text, ev, template, common) else None


def measure(kind: str) -> dict[str, object]:
    rows = [json.loads(line) for line in (ROOT / "bench" / "eval" / f"{kind}.jsonl").open()]
    clustering = cluster_texts([r["text"] for r in rows])
    members: dict[int, list[str]] = defaultdict(list)
    for r, b in zip(rows, clustering.labels, strict=True):
        if b >= 0:
            members[b].append(r["text"])
    templates = {b: build_template(texts) for b, texts in members.items()}
    common = boilerplate([t.text for t in templates.values()])
    by_label: dict[str, Counter[int]] = defaultdict(Counter)
    for r, b in zip(rows, clustering.labels, strict=True):
        if r["label"]:
            by_label[r["label"]][b] += 1
    bands: Counter[str] = Counter()
    listed_scores: dict[int, list[float]] = defaultdict(list)
    proposed = 0
    for label, counts in by_label.items():
        batch = max((b for b in counts if b >= 0), key=lambda b: counts[b], default=None)
        if batch is None:
            bands["no batch at all"] += sum(counts.values())
            continue
        for r, b in zip(rows, clustering.labels, strict=True):
            if r["label"] == label and b != batch:
                band, score = _proposed(r["text"], templates[batch], common)
                bands[band] += 1
                if score is not None:
                    proposed += 1
                    listed_scores[batch].append(score)
    organic_before = organic_after = 0
    for r, b in zip(rows, clustering.labels, strict=True):
        if r["label"] or b >= 0:
            continue
        found = [_proposed(r["text"], t, common) for t in templates.values()]
        organic_before += any(band == UNCERTAIN for band, _s in found)
        organic_after += any(score is not None for _b, score in found)
    listed = sum(min(PROPOSE_CAP, len(s)) for s in listed_scores.values())
    return {"missed": sum(bands.values()), **dict(bands), "proposed": proposed, "listed": listed,
            "organic_uncertain_before": organic_before, "organic_proposed": organic_after}


def main() -> None:
    kinds = sys.argv[1:] or KINDS
    out: dict[str, object] = {}
    started = time.perf_counter()
    for kind in kinds:
        out[kind] = measure(kind)
        print(kind, json.dumps(out[kind]), flush=True)
    print(f"{time.perf_counter() - started:.1f} s", flush=True)
    if len(sys.argv) == 1:
        result = {"command": "python bench/uncertain_band.py", "uncertain_from": UNCERTAIN_FROM,
                  "propose_cap": PROPOSE_CAP, "kinds": out}
        (ROOT / "bench" / "results" / "uncertain_band.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
