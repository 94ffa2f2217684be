"""Online join speed: a new letter finding its campaign batch, with many messages stored.

    python bench/batch_join.py --messages 1000000 --corpus 10000

Stores --messages filler messages (as bench/pages.py does), puts the first half of a demo-office
corpus in the pool and clusters it into batches (the offline job), then stores the second half one
letter at a time and times the `batch` stage (batching.batches.join_message) on each: p50/p95/p99,
and how many joined. Prints JSON and writes bench/results/batch_join.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from demo_corpus import write_corpus  # noqa: E402
from pages import fill  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from batching.batches import join_message, recluster  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import AuditEvent, Batch, Channel, Message, Role, Staffer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--corpus", type=int, default=10_000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--assign", action="store_true",
                    help="give every batch an assignee, so each join also assigns its message (an audited move)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailroom-join-"))
    url = args.database_url or f"sqlite:///{work / 'join.db'}"
    upgrade(url)
    db = Database(url, blob_dir=work / "blobs")
    t0 = time.perf_counter()
    fill(db, args.messages)
    with db.engine.begin() as conn:  # the filler is not campaign mail: keep it out of the clustering pool
        conn.execute(update(Message).values(batch_pinned=True))
    fill_s = time.perf_counter() - t0
    corpus_path = work / "corpus.jsonl"
    write_corpus(args.corpus, 3, corpus_path)
    rows = [json.loads(line) for line in corpus_path.open()]
    half = len(rows) // 2
    now = datetime.now(UTC)

    def message(i: int, row: dict) -> Message:
        return Message(idempotency_key=f"join:{i}", channel=Channel.EMAIL, received_at=now, subject="",
                       body_text=row["text"], processed_at=now)

    with db.unit_of_work() as s:
        s.add_all(message(i, r) for i, r in enumerate(rows[:half]))
    t0 = time.perf_counter()
    with db.unit_of_work() as s:
        run = recluster(s)
    cluster_s = time.perf_counter() - t0
    if args.assign:
        with db.unit_of_work() as s:
            owner = Staffer(name="Bench Owner", email="owner@bench.invalid", role=Role.CORRESPONDENT, password_hash="x")
            s.add(owner)
            s.flush()
            s.execute(update(Batch).values(assignee_id=owner.id))
    samples, with_commit, joined = [], [], 0
    for i, row in enumerate(rows[half:], start=half):
        with db.unit_of_work() as s:
            m = message(i, row)
            m.processed_at = None
            s.add(m)
            s.flush()
            t = time.perf_counter()
            batch = join_message(s, m)
            samples.append((time.perf_counter() - t) * 1000)
            joined += batch is not None
        with_commit.append((time.perf_counter() - t) * 1000)  # the join and its commit: all the work it causes
    with db.unit_of_work() as s:
        stored = s.scalar(select(func.count(Message.id)))
        batches = s.scalar(select(func.count(Batch.id)))
        assigned = s.scalar(select(func.count(Message.id)).where(Message.idempotency_key.like("join:%"),
                                                                 Message.assignee_id.is_not(None)))
        assign_events = s.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "message.assign"))
    samples.sort()
    with_commit.sort()

    def pct(p: float, values: list[float] = samples) -> float:
        return round(values[min(len(values) - 1, int(p * len(values)))], 2)

    result = {"database": db.engine.dialect.name, "messages_stored": stored, "batches": batches,
              "fill_seconds": round(fill_s, 1), "cluster_pool": run.pool, "cluster_seconds": round(cluster_s, 1),
              "joins_timed": len(samples), "joined": joined, "assigned_by_join": assigned,
              "assign_audit_events": assign_events, "join_p50_ms": pct(0.50),
              "join_p95_ms": pct(0.95), "join_p99_ms": pct(0.99), "join_max_ms": round(samples[-1], 2),
              "join_mean_ms": round(statistics.mean(samples), 2),
              "join_commit_p50_ms": pct(0.50, with_commit), "join_commit_p95_ms": pct(0.95, with_commit),
              "join_commit_mean_ms": round(statistics.mean(with_commit), 2)}
    out = ROOT / "bench" / "results" / ("batch_join_assign.json" if args.assign else "batch_join.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
