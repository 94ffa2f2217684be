"""A newsletter to a large list, sent by the default worker pool to a local SMTP server; then 2% bounce.

    python bench/newsletter.py [--subscribers 100000] [--workers 2] [--bounce-share 0.02] [--tag NAME]

1. A subscription list of --subscribers addresses (bulk-inserted, source "import" with a legal basis) and
   an approved letter. The newsletter is started by the use case the staff page calls
   (``outbound.newsletters.start_newsletter``) and its effect dispatched to Redis; --workers processes
   of ``mailroom worker`` on every queue (what ``mailroom run`` starts by default: 2) do the rest — the
   newsletter job makes one piece per subscriber and starts the apply run, the apply job renders and
   queues the emails, the send jobs deliver them to a local aiosmtpd. Timed from the start until no
   letter is left queued or sending: "send_1.total_seconds" (target: <= 1800 for 100,000), with the
   phases ("prepare_seconds": pieces made and the run started; "rendered_seconds": the run finished)
   and "emails_per_second".
2. For --bounce-share of the recipients (picked at random), an RFC 3464 report (as Postfix writes one)
   addressed to the VERP return path the SMTP server saw in MAIL FROM is written to a folder and fed
   through ``mailroom import dsn FOLDER`` (the bounce import path): "bounces" (applied, quarantined, failed).
3. A second newsletter (another approved letter) to the same list: "send_2" — letters made, addresses left
   out as invalid, and "bounced_addresses_mailed_again" counted at the SMTP server (must be 0).
Prints JSON and writes bench/results/newsletter.json (or newsletter-TAG.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
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
    Newsletter,
    Response,
    ResponseState,
    Role,
    RunState,
    Staffer,
    Subscription,
)
from drafting import letters  # noqa: E402
from drafting.apply import budget_of, office_of  # noqa: E402
from outbound import franking, newsletters, subscriptions  # noqa: E402
from workers.effects import dispatch  # noqa: E402

BODY = ("{{ constituent.salutation }}\n\nThis month in the district: the new bridge on Route 9 opens on the 14th, "
        "town halls are on Tuesdays at the library, and the office can help with passports and veterans' "
        "benefits. Call us at 555-0100.\n\n{{ office.signature }}")


class Recording:
    """The SMTP server: counts each recipient and keeps the envelope sender (the VERP return path) per recipient."""

    def __init__(self) -> None:
        self.rcpt: Counter[str] = Counter()
        self.return_path: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            for to in envelope.rcpt_tos:
                self.rcpt[to.lower()] += 1
                self.return_path[to.lower()] = envelope.mail_from
        return "250 OK"


def dsn(return_path: str, recipient: str, key: str) -> bytes:
    """An RFC 3464 hard bounce as Postfix writes one, sent back to the letter's return path."""
    return f"""From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {return_path}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{key}@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown

--BOUND--
""".replace("\n", "\r\n").encode()


def approved_version(db: Database, title: str, writer_id: int, boss_id: int) -> int:
    with db.unit_of_work() as s:
        version = letters.create_letter(s, title=title, body=BODY, actor_id=writer_id)
        version.subject = title
        letters.submit(s, version.id, actor_id=writer_id)
        letters.approve(s, version.id, actor_id=boss_id)
        return version.id


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) of these worker processes and of the job processes they forked and reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / tick


def send(db: Database, redis: Redis, settings: Settings, version_id: int, list_id: int, boss_id: int,
         timeout: float, pids: list[int] | None = None) -> dict[str, object]:
    """Start a newsletter as the staff page does, let the workers do the rest, and time it."""
    pids = pids or []
    load_before, cpu_before, own_before = os.getloadavg()[0], cpu_seconds(pids), time.process_time()
    t0 = time.perf_counter()
    with db.unit_of_work() as s:
        done = newsletters.start_newsletter(s, version_id, newsletters.Audience(list_id=list_id), actor_id=boss_id,
                                            secret_key=settings.secret_key, office=office_of(settings),
                                            budget=budget_of(settings), rules=franking.Rules.of(settings))
        newsletter_id = done.value.id
    dispatch(done.effects, connection=redis)
    prepared = rendered = None
    run_id = None
    # Polled without BEGIN IMMEDIATE: watching must not queue for the write lock the workers hold.
    reader = Database(db.engine.url.render_as_string(hide_password=False))
    while time.perf_counter() - t0 < timeout:
        time.sleep(1.0)
        with reader.unit_of_work() as s:
            if run_id is None:
                run_id = s.scalar(select(Newsletter.run_id).where(Newsletter.id == newsletter_id))
                if run_id is None:
                    continue
                prepared = time.perf_counter() - t0
            run = s.get(ApplyRun, run_id)
            if run is None or run.state != RunState.DONE:
                continue
            if rendered is None:
                rendered = time.perf_counter() - t0
            left = s.scalar(select(func.count(Response.id)).where(
                Response.run_id == run_id, Response.state.in_((ResponseState.QUEUED, ResponseState.SENDING))))
            if not left:
                break
    total = time.perf_counter() - t0
    reader.dispose()
    # Job processes are reaped when they end, so their CPU is counted by the time the run is done.
    time.sleep(1.0)
    worker_cpu = cpu_seconds(pids) - cpu_before
    own_cpu = time.process_time() - own_before
    with db.unit_of_work() as s:
        run = s.get(ApplyRun, run_id) if run_id else None
        states = dict(Counter(st.value for st in s.scalars(select(Response.state).where(Response.run_id == run_id))))
        counts = dict(run.counts or {}) if run else {}
        made = run.created_count if run else 0
    sent = states.get("sent", 0)
    return {"newsletter_id": newsletter_id, "letters": made, "left_out": counts, "states": states,
            "prepare_seconds": round(prepared or 0, 1), "rendered_seconds": round(rendered or 0, 1),
            "total_seconds": round(total, 1), "emails_per_second": round(sent / total, 1) if total else None,
            "workers_cpu_seconds": round(worker_cpu, 1),
            "worker_cpu_ms_per_email": round(1000 * worker_cpu / sent, 2) if sent else None,
            "bench_process_cpu_seconds (SMTP server, polling)": round(own_cpu, 1),
            "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
            "finished": bool(run_id) and not states.get("queued") and not states.get("sending")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bounce-share", type=float, default=0.02)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailroom-newsletter-"))
    redis_server = RedisServer(work / "redis.sock")
    redis_server.start()
    handler = Recording()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    url = f"sqlite:///{work / 'newsletter.db'}"
    env = {**os.environ, "DATABASE_URL": url, "MAILROOM_INSTANCE_DIR": str(work),
           "SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
           "MAILROOM_BLOB_DIR": str(work / "blobs"), "REDIS_URL": f"unix://{work / 'redis.sock'}",
           "MAILROOM_SMTP_HOST": "127.0.0.1", "MAILROOM_SMTP_PORT": str(smtp_port), "MAILROOM_SMTP_SECURITY": "none",
           "MAILROOM_SMTP_RATE": "0", "MAILROOM_LOG_LEVEL": "WARNING",
           "MAILROOM_PUBLIC_URL": "https://mail.house.example", "MAILROOM_MAIL_FROM": "office@house.example",
           "MAILROOM_BOUNCE_MAILBOX": "bounces@house.example"}
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
        writer_id, boss_id = writer.id, boss.id
        list_id = subscriptions.create_list(s, "District update", actor_id=boss_id).id
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    with db.engine.begin() as conn:
        for start in range(0, args.subscribers, 5000):
            conn.execute(insert(Subscription), [
                {"list_id": list_id, "address": f"reader{i}@example.org", "status": "subscribed", "source": "import",
                 "legal_basis": "bench: sign-up sheets", "created_at": now, "subscribed_at": now, "updated_at": now}
                for i in range(start, min(start + 5000, args.subscribers))])
    result: dict[str, object] = {"subscribers": args.subscribers, "workers": args.workers,
                                 "database": "sqlite", "fill_seconds": round(time.perf_counter() - t0, 1),
                                 "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}
    first = approved_version(db, "District news, May", writer_id, boss_id)
    second = approved_version(db, "District news, June", writer_id, boss_id)
    pool = [subprocess.Popen([sys.executable, "-m", "workers.cli", "worker"], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(args.workers)]
    try:
        result["send_1"] = send(db, redis, settings, first, list_id, boss_id, args.timeout,
                                [w.pid for w in pool])
        print("send 1", result["send_1"], file=sys.stderr, flush=True)
        # 2. Bounces for a share of the recipients, through `mailroom import dsn`.
        rng = random.Random(7)
        received = sorted(handler.return_path)
        bounced = rng.sample(received, int(len(received) * args.bounce_share))
        folder = work / "dsn"
        folder.mkdir()
        for n, address in enumerate(bounced):
            (folder / f"{n}.eml").write_bytes(dsn(handler.return_path[address], address, f"bench-{n}"))
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "workers.cli", "import", "dsn", str(folder)], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=False)
        result["bounces"] = {"fed": len(bounced), "import_seconds": round(time.perf_counter() - t0, 1),
                             **json.loads(out.stdout.strip().splitlines()[0])}
        result["bounces"].pop("problems", None)  # type: ignore[attr-defined]
        print("bounces", result["bounces"], file=sys.stderr, flush=True)
        # 3. The next newsletter leaves them out.
        before = Counter(handler.rcpt)
        result["send_2"] = send(db, redis, settings, second, list_id, boss_id, args.timeout,
                                [w.pid for w in pool])
        result["send_2"]["bounced_addresses_mailed_again"] = sum(  # type: ignore[index]
            1 for a in bounced if handler.rcpt[a] > before[a])
        result["send_2"]["received_at_smtp"] = sum(handler.rcpt.values()) - sum(before.values())  # type: ignore[index]
        first_total = result["send_1"]["total_seconds"]  # type: ignore[index]
        if args.subscribers < 100_000 and first_total:
            result["extrapolated_100k_seconds (linear, NOT measured)"] = round(first_total * 100_000 / args.subscribers)
        result["load_average_at_end"] = os.getloadavg()[0]
    finally:
        for worker in pool:
            worker.terminate()
        for worker in pool:
            worker.wait(30)
        smtp.stop()
        redis_server.stop()
    name = f"newsletter-{args.tag}.json" if args.tag else "newsletter.json"
    out_path = ROOT / "bench" / "results" / name
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
