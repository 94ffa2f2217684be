"""How many "possibly part of this campaign" proposals each open batch lists, on a demo office.

    MAILROOM_INSTANCE_DIR=/tmp/demo mailroom init && mailroom demo      # the office to count
    python bench/batch_proposals.py --before sqlite:////tmp/demo-old/mailroom.db \\
        --after sqlite:////tmp/demo/mailroom.db --out bench/results/batch_proposals-demo.json

Counts, per open batch, the proposals the batch page lists (batching.queries.proposals: open, the letter
still outside every batch and not closer to another batch) and their total; and titles that are
generic, numbered or shared. With --before and --after, both offices side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from batching.queries import LISTED, proposals  # noqa: E402
from correspondence.models import Batch  # noqa: E402


def count(url: str) -> dict[str, object]:
    engine = create_engine(url)
    with Session(engine) as session:
        batches = list(session.scalars(select(Batch).where(Batch.status.in_(LISTED)).order_by(Batch.id)))
        per = {}
        for b in batches:
            total, _shown = proposals(session, b.id)
            per[b.title] = {"letters": b.member_count, "proposals": total}
        titles = [b.title.casefold() for b in batches]
    engine.dispose()
    numbered = [b.title for b in batches if b.title.rstrip().endswith(")") and " (" in b.title]
    return {"batches": len(batches), "proposals": sum(int(v["proposals"]) for v in per.values()),
            "batches_with_proposals": sum(1 for v in per.values() if v["proposals"]),
            "most_on_one_batch": max((int(v["proposals"]) for v in per.values()), default=0),
            "shared_titles": len(titles) - len(set(titles)), "numbered_titles": numbered, "per_batch": per}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before")
    ap.add_argument("--after", required=True)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    sides = {"before": count(args.before)} if args.before else {}
    sides["after"] = count(args.after)
    for side, counted in sides.items():
        print(side, json.dumps({k: v for k, v in counted.items() if k != "per_batch"}))
    result: dict[str, object] = {"command": " ".join(["python", "bench/batch_proposals.py", *sys.argv[1:]]), **sides}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
