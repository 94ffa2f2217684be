"""Who holds SQLite's write lock, and for how long: sums up the files MAILROOM_LOCK_LOG=DIR makes.

    MAILROOM_LOCK_LOG=/tmp/locks python bench/load.py --mode embedded ...   (or any run of the app)
    python bench/lock_report.py /tmp/locks [--top 25]

Per writer (the outermost and innermost project function that began the transaction): transactions, the
total and the longest hold, the p50/p95 hold, and the p95 wait for the lock. The share of the run's wall
time each writer held the lock is what the other writers waited behind.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    rows = [json.loads(line) for path in sorted(args.folder.glob("locks-*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"no lock records in {args.folder}")
    span = max(r["at"] for r in rows) - min(r["at"] for r in rows) or 1.0
    held: dict[str, list[float]] = defaultdict(list)
    waited: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        held[r["who"]].append(r["held_ms"])
        waited[r["who"]].append(r["wait_ms"])
    total_held = sum(sum(v) for v in held.values())
    print(f"{len(rows)} write transactions over {span:.0f} s; the lock was held {total_held / 1000:.1f} s "
          f"({100 * total_held / 1000 / span:.0f}% of the time)")
    print(f"{'writer':90} {'n':>6} {'held s':>7} {'share':>6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>8} "
          f"{'wait p95':>8}")
    for who, values in sorted(held.items(), key=lambda kv: -sum(kv[1]))[: args.top]:
        print(f"{who[-90:]:90} {len(values):6d} {sum(values) / 1000:7.1f} "
              f"{100 * sum(values) / total_held:5.1f}% {statistics.median(values):7.1f} {_pct(values, 0.95):7.1f} "
              f"{max(values):8.1f} {_pct(waited[who], 0.95):8.1f}")


if __name__ == "__main__":
    main()
