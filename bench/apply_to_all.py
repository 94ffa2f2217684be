"""Apply to all at scale, then delivery to a real SMTP server, then delivery while workers are killed.

    python bench/apply_to_all.py [--messages 50000] [--people 30000] [--postal-share 0.02] [--workers 2]
                                 [--kills 30] [--render-only]

1. A batch of --messages letters from --people people (every person writes at least once; the rest
   of the letters are second, third... copies from people picked at random, as campaign mail is),
   email and a share on paper with a postal address, and an approved letter. The apply job
   (drafting.apply.execute_run, in this process) groups the batch by person, renders ONE letter per
   person covering all their messages, and queues the email deliveries in Redis:
   "render_and_queue_seconds", with "letters", "people", "messages" and "covered" (messages answered).
   The print file for the postal share is built separately: "print_seconds", "print_pages".
2. --workers `mailroom worker outbound` processes send the queued emails to a local aiosmtpd:
   "send_per_second".
3. The same again with a fresh batch while a chaos loop SIGKILLs a worker every few hundred
   milliseconds (--kills in all) and starts a new one; then the sweeper runs until nothing is left.
   Counted at the SMTP server: letters received twice (must be 0), and letters never received,
   split into those a person is asked to check ("uncertain": the worker died between recording
   its attempt and finishing it) and those simply lost (must be 0).
--render-only stops after step 1 (and the print file).
Prints JSON and writes bench/results/apply_to_all.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from aiosmtpd.controller import Controller  # noqa: E402
from intake_chaos import RedisServer  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from config import Settings  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import (  # noqa: E402
    ApplyRun,
    Batch,
    Constituent,
    Message,
    Response,
    ResponseState,
    Role,
    Staffer,
)
from drafting import letters  # noqa: E402
from drafting.apply import execute_run, office_of, start_run  # noqa: E402
from drafting.printing import letters_pdf, print_responses  # noqa: E402
from workers.queues import OUTBOUND, enqueue_send, get_queue  # noqa: E402

BODY = ("{{ constituent.salutation }}\n\nThank you for writing to me about {{ message.subject }}. I share your "
        "concern for the rivers and lakes of {{ constituent.city }}, and I will vote to protect them.\n\n"
        "{{ office.signature }}")


class Counting:
    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                with self.lock:
                    self.ids[line.split(b":", 1)[1].strip().decode()] += 1
                break
        return "250 OK"


def fill_batch(db: Database, n: int, postal_share: float, tag: str, seed: int, people: int | None = None) -> int:
    """n messages from `people` people (default: one each); a person's messages share their address and channel."""
    rng = random.Random(seed)
    people = min(people or n, n)
    now = datetime.now(UTC)
    with db.unit_of_work() as s:
        batch = Batch(title=f"Clean water {tag}", template_text="Protect clean water.", member_count=n)
        s.add(batch)
        s.flush()
        batch_id = batch.id
        first: int = s.execute(select(func.coalesce(func.max(Constituent.id), 0))).scalar_one()
    # Message i is from person i for the first `people` messages, then from a person picked at random.
    writer = list(range(people)) + [rng.randrange(people) for _ in range(n - people)]
    paper = [rng.random() < postal_share for _ in range(people)]
    with db.engine.begin() as conn:
        for start in range(0, people, 5000):
            size = min(5000, people - start)
            conn.execute(insert(Constituent), [
                {"prefix": rng.choice(["Ms", "Mr", "Dr", None]), "first_name": f"First{start + i}",
                 "last_name": f"Last{start + i}", "address1": f"{start + i} Main St", "city": "Columbus",
                 "state": "OH", "zip5": "43215", "district_status": "in_district", "created_at": now}
                for i in range(size)])
        for start in range(0, n, 5000):
            size = min(5000, n - start)
            conn.execute(insert(Message), [
                {"idempotency_key": f"{tag}:{start + i}",
                 "channel": "postal" if paper[writer[start + i]] else "email", "direction": "inbound",
                 "received_at": now - timedelta(minutes=start + i),
                 "from_address": f"writer{tag}{writer[start + i]}@example.org",
                 "subject": "Clean water", "body_text": "Please protect clean water.",
                 "constituent_id": first + writer[start + i] + 1, "status": "new", "batch_id": batch_id,
                 "processed_at": now, "created_at": now, "updated_at": now, "batch_pinned": False}
                for i in range(size)])
    return batch_id


def wait_sent(db: Database, run_id: int, timeout: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        with db.unit_of_work() as s:
            left = s.scalar(select(func.count(Response.id)).where(
                Response.run_id == run_id, Response.state.in_((ResponseState.QUEUED, ResponseState.SENDING))))
        if not left:
            break
        time.sleep(0.5)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--people", type=int, default=30_000)
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--chaos-messages", type=int, default=10_000)
    ap.add_argument("--postal-share", type=float, default=0.02)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kills", type=int, default=30)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailroom-apply-"))
    redis_server = RedisServer(work / "redis.sock")
    redis_server.start()
    handler = Counting()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    url = f"sqlite:///{work / 'apply.db'}"
    env = {**os.environ, "DATABASE_URL": url, "MAILROOM_INSTANCE_DIR": str(work),
           "SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
           "MAILROOM_BLOB_DIR": str(work / "blobs"), "REDIS_URL": f"unix://{work / 'redis.sock'}",
           "MAILROOM_SMTP_HOST": "127.0.0.1", "MAILROOM_SMTP_PORT": str(smtp_port), "MAILROOM_SMTP_SECURITY": "none",
           "MAILROOM_SMTP_RATE": "0", "MAILROOM_SWEEP_AFTER_MINUTES": "0", "MAILROOM_LOG_LEVEL": "WARNING"}
    os.environ.update({k: v for k, v in env.items() if k.startswith(("MAILROOM_", "DATABASE_URL", "REDIS_URL",
                                                                     "SECRET_KEY"))})
    settings = Settings.from_env()
    upgrade(url)
    db = Database(url, immediate=True, blob_dir=work / "blobs")
    redis = Redis(unix_socket_path=str(work / "redis.sock"))
    with db.unit_of_work() as s:
        writer = Staffer(name="Writer", email="w@example.org", role=Role.CORRESPONDENT, password_hash="x")
        boss = Staffer(name="Boss", email="b@example.org", role=Role.SUPERVISOR, password_hash="x")
        s.add_all([writer, boss])
        s.flush()
        version = letters.create_letter(s, title="Clean water", body=BODY, actor_id=writer.id)
        letters.submit(s, version.id, actor_id=writer.id)
        letters.approve(s, version.id, actor_id=boss.id)
        version_id, writer_id = version.id, writer.id

    def enqueue_email(ids: list[int]) -> None:
        for start in range(0, len(ids), 100):
            enqueue_send(redis, ids[start:start + 100])

    def spawn() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", OUTBOUND], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    result: dict[str, object] = {"messages": args.messages, "workers": args.workers}
    # 1. Render and queue.
    batch_id = fill_batch(db, args.messages, args.postal_share, "a", 1, args.people)
    with db.unit_of_work() as s:
        run_id = start_run(s, version_id, batch_id=batch_id, actor_id=writer_id).id
    t0 = time.perf_counter()
    execute_run(db, run_id, settings, enqueue_email=enqueue_email)
    result["render_and_queue_seconds"] = round(time.perf_counter() - t0, 1)
    with db.unit_of_work() as s:
        run = s.get(ApplyRun, run_id)
        assert run is not None
        result["letters"] = run.created_count
        result["people"] = run.people
        result["covered"] = run.covered
        t0 = time.perf_counter()
        items = print_responses(s, run)
        pdf = letters_pdf(items, office_of(settings), "November 28, 2026")
        result["print_pages"] = len(items)
        result["print_seconds"] = round(time.perf_counter() - t0, 1)
        result["print_mb"] = round(len(pdf) / 1e6, 1)
        emails: int = s.execute(select(func.count(Response.id)).where(Response.run_id == run_id,
                                                                          Response.method == "email")).scalar_one()
    result["queued_jobs"] = get_queue(OUTBOUND, redis).count
    print("rendered", result, file=sys.stderr, flush=True)
    out = ROOT / "bench" / "results" / "apply_to_all.json"
    if args.render_only:
        smtp.stop()
        redis_server.stop()
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return
    # 2. Send.
    workers = [spawn() for _ in range(args.workers)]
    seconds = wait_sent(db, run_id, 1800)
    result["emails"] = emails
    result["send_seconds"] = round(seconds, 1)
    result["send_per_second"] = round(emails / seconds, 1) if seconds else None

    # 3. The same with workers killed.
    chaos_batch = fill_batch(db, args.chaos_messages, args.postal_share, "b", 2,
                             args.chaos_messages * args.people // max(args.messages, 1))
    with db.unit_of_work() as s:
        chaos_run = start_run(s, version_id, batch_id=chaos_batch, actor_id=writer_id).id
    execute_run(db, chaos_run, settings, enqueue_email=enqueue_email)
    rng = random.Random(3)
    kills = 0
    while kills < args.kills:
        time.sleep(rng.uniform(0.1, 0.5))
        victim = rng.randrange(len(workers))
        if workers[victim].poll() is None:
            workers[victim].send_signal(signal.SIGKILL)
            kills += 1
        workers[victim].wait()
        workers[victim] = spawn()
    from workers.jobs import run_sweep

    for _ in range(20):  # the sweeper restarts whatever the kills left queued
        wait_sent(db, chaos_run, 120)
        with db.unit_of_work() as s:
            left = s.scalar(select(func.count(Response.id)).where(Response.run_id == chaos_run,
                                                                  Response.state == ResponseState.QUEUED))
        if not left:
            break
        run_sweep()
    for w in workers:
        w.terminate()
        w.wait(10)
    with db.unit_of_work() as s:
        rows = s.execute(select(Response.email_message_id, Response.state).where(
            Response.run_id == chaos_run, Response.method == "email")).all()
    received = handler.ids
    states = Counter(state.value for _id, state in rows)
    never = [(mid, state) for mid, state in rows if received[mid] == 0]
    result["chaos"] = {
        "emails": len(rows), "workers_sigkilled": kills,
        "received_twice": sum(1 for mid, _s in rows if received[mid] > 1),
        "states": dict(states),
        "not_received_flagged_uncertain": sum(1 for _m, st in never if st == ResponseState.UNCERTAIN),
        "not_received_lost": sum(1 for _m, st in never if st != ResponseState.UNCERTAIN),
        "received_but_flagged_uncertain": sum(1 for mid, st in rows
                                              if st == ResponseState.UNCERTAIN and received[mid] == 1),
    }
    smtp.stop()
    redis_server.stop()
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
