"""An office's worst day, measured: staff sessions, an intake flood and an apply-to-all at once.

    python bench/load.py --mode embedded [--messages 100000] [--staff 10] [--post-rate 10] [--burst-rate 0]
    python bench/load.py --mode scaled --database-url postgresql://... --redis-url redis://... \\
        [--messages 1000000] [--staff 30] [--post-rate 50] [--burst-rate 200] [--burst-seconds 60] \\
        [--apply-letters 50000] [--duration 300] [--tag NAME]

A bounded load generator of its own (threads and `requests`; loopback only; every phase stops by itself)
rather than locust: locust pins its own Flask and gevent, which the app's pinned Flask would have to
follow, and what is measured here needs three things at once that are simpler as plain threads — staff
sessions walking pages with think time, an open-loop poster at a fixed rate (a vendor does not slow down
because the server does), and a run started in the middle.

1. A fresh instance is filled with --messages messages from a quarter as many constituents (bench/pages.py's
   fill), --staff staff accounts, a batch of --apply-letters campaign letters (bench/apply_to_all.py's
   fill_batch) and an approved letter, an intake token and a staff API token.
2. The server starts: --mode embedded is `mailroom run` (SQLite, embedded Redis, its 2 RQ workers and
   gunicorn); --mode scaled is gunicorn (--web-workers processes × 4 threads) + --workers `mailroom
   worker` processes + `mailroom scheduler` on PostgreSQL and a Redis server. Emails go to a local SMTP
   server (aiosmtpd) that counts them by Message-ID.
3. For --duration seconds: --staff signed-in sessions follow staff paths (inbox → message → code and
   assign → next; batches; dashboard; search; approvals; a constituent's record) with 1–5 s of think time;
   the web-form API gets --post-rate posts a second, with --burst-rate posts a second for --burst-seconds
   starting a third of the way in; at half-time the supervisor starts the apply-to-all through the API.
4. Then: every accepted post must be stored and processed (the queue drains; "drain_seconds" after the
   last post, target <= 600), the run must finish ("apply_seconds", target <= 60) and no email may arrive
   twice.

Reported per page and per API call: count, errors, p50/p95/p99 in ms (targets: page p95 <= 300 ms, intake
p99 <= 500 ms, 0 errors, 0 lost). The load generator runs on the same machine as the server and takes some
of its CPU: the figures are for the machine as a whole, and "cpus" and the load average are reported.
Prints JSON and writes bench/results/load-<mode>[-TAG].json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from apply_to_all import Counting, fill_batch  # noqa: E402
from newsletter import approved_version  # noqa: E402
from pages import PASSWORD, fill  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from config import Settings  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import Message, Role, Staffer  # noqa: E402
from correspondence.passwords import hash_password  # noqa: E402
from correspondence.services.api_tokens import create_api_token  # noqa: E402
from correspondence.services.tokens import create_token  # noqa: E402

CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
WORDS = ["water", "veterans", "bridge", "farm", "taxes", "school", "medicare", "housing", "quarry", "energy"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Timings:
    """Latencies (ms) and errors per label, from many threads."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.lock = threading.Lock()

    def add(self, label: str, started: float, ok: bool, detail: str = "") -> None:
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.ms[label].append(elapsed)
            if not ok:
                self.errors[label] += 1
                self.examples.setdefault(label, detail[:300])

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for label, values in sorted(self.ms.items()):
            ordered = sorted(values)

            def pct(p: float, ordered: list[float] = ordered) -> float:
                return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

            out[label] = {"count": len(ordered), "errors": self.errors[label], "p50_ms": pct(0.50),
                          "p95_ms": pct(0.95), "p99_ms": pct(0.99), "mean_ms": round(statistics.fmean(ordered), 1)}
        return out


class Staff(threading.Thread):
    """One signed-in staffer following the paths of a working day until told to stop."""

    def __init__(self, base: str, email: str, staffer_id: int, topic_ids: list[int], timings: Timings,
                 stop: threading.Event, seed: int, think: tuple[float, float], supervisor: bool = False) -> None:
        super().__init__(daemon=True)
        self.supervisor = supervisor
        self.base, self.email, self.staffer_id, self.topic_ids = base, email, staffer_id, topic_ids
        self.timings, self.stop, self.rng, self.think = timings, stop, random.Random(seed), think
        self.http = requests.Session()
        self.csrf = ""

    def get(self, label: str, path: str) -> str | None:
        started = time.perf_counter()
        try:
            r = self.http.get(self.base + path, timeout=60, allow_redirects=False)
        except requests.RequestException as exc:
            self.timings.add(label, started, False, repr(exc))
            return None
        self.timings.add(label, started, r.status_code == 200, f"{r.status_code} {path}")
        if r.status_code != 200:
            return None
        if found := CSRF.search(r.text):
            self.csrf = found.group(1)
        return r.text

    def post(self, label: str, path: str, data: dict[str, object]) -> str | None:
        started = time.perf_counter()
        try:
            r = self.http.post(self.base + path, data={"csrf_token": self.csrf, **data}, timeout=60,
                               allow_redirects=False)
        except requests.RequestException as exc:
            self.timings.add(label, started, False, repr(exc))
            return None
        self.timings.add(label, started, r.status_code in (302, 303), f"{r.status_code} {path}")
        return r.headers.get("Location")

    def sign_in(self) -> None:
        self.get("GET /login", "/login")
        self.post("POST /login", "/login", {"email": self.email, "password": PASSWORD})

    def run(self) -> None:
        self.sign_in()
        # The dashboard and the approval queue are a supervisor's pages (a correspondent gets 403 there).
        paths = [self.triage, self.batches, self.search, self.constituent]
        weights = [55, 10, 12, 8]
        if self.supervisor:
            paths, weights = [*paths, self.dashboard, self.approvals], [*weights, 10, 5]
        while not self.stop.is_set():
            self.rng.choices(paths, weights)[0]()
            self.stop.wait(self.rng.uniform(*self.think))

    def triage(self) -> None:
        page = self.get("inbox", "/inbox/" if self.rng.random() < 0.7 else "/inbox/?status=new&sort=oldest")
        ids = re.findall(r'href="/messages/(\d+)', page or "")
        if not ids:
            return
        message_id = self.rng.choice(ids)
        if self.get("message", f"/messages/{message_id}") is None or self.stop.wait(self.rng.uniform(*self.think)):
            return
        nxt = self.post("code and assign (POST)", f"/messages/{message_id}/triage",
                        {"topic": self.rng.choice(self.topic_ids), "stance": self.rng.choice(["support", "oppose"]),
                         "assignee": self.staffer_id})
        if nxt:
            self.get("message", nxt.removeprefix(self.base))

    def batches(self) -> None:
        page = self.get("batches", "/batches/")
        ids = re.findall(r'href="/batches/(\d+)"', page or "")
        if ids:
            self.get("batch", f"/batches/{self.rng.choice(ids)}")

    def dashboard(self) -> None:
        self.get("dashboard", "/dashboard/")

    def search(self) -> None:
        self.get("search", f"/search/?q={self.rng.choice(WORDS)}")

    def approvals(self) -> None:
        self.get("approvals", "/approvals/")

    def constituent(self) -> None:
        self.get("constituent record", f"/constituents/{self.rng.randint(1, 1000)}")


class Poster:
    """Open-loop web-form posts: each is sent at its scheduled time whatever the server's pace."""

    def __init__(self, base: str, token: str, timings: Timings) -> None:
        self.url = base + "/api/v1/intake/webform"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.timings = timings
        self.accepted: list[int] = []
        self.refused: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.local = threading.local()
        self.late = 0

    def post(self, n: int) -> None:
        http = getattr(self.local, "http", None)
        if http is None:
            http = self.local.http = requests.Session()
        body = {"first_name": f"Load{n}", "last_name": "Tester", "email": f"load{n}@example.org", "zip5": "43215",
                "subject": "Protect the river", "message": f"Please protect the river. I fish there every week ({n})."}
        started = time.perf_counter()
        try:
            r = http.post(self.url, json=body, headers=self.headers, timeout=60)
        except requests.RequestException as exc:
            self.timings.add("POST /api/v1/intake/webform", started, False, repr(exc))
            return
        ok = r.status_code == 202
        self.timings.add("POST /api/v1/intake/webform", started, ok, f"{r.status_code} {r.text[:200]}")
        with self.lock:
            if ok:
                self.accepted.append(int(r.json()["message_id"]))
            else:
                self.refused[r.status_code] += 1

    def drive(self, schedule: list[tuple[float, float, float]], pool: ThreadPoolExecutor,
              stop: threading.Event) -> int:
        """schedule: (start second, end second, posts per second), relative to now. Returns posts sent."""
        t0 = time.perf_counter()
        n = 0
        for start, end, rate in schedule:
            if rate <= 0:
                continue
            k = 0
            while not stop.is_set():
                due = start + k / rate
                if due >= end:
                    break
                wait = t0 + due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -1:
                    self.late += 1
                pool.submit(self.post, n)
                n += 1
                k += 1
        return n


@dataclass
class Setup:
    fill_seconds: float
    batch_id: int
    version_id: int
    staff: list[tuple[int, str, bool]]  # (id, email, supervisor)
    topic_ids: list[int]
    intake_token: str
    api_token: str
    database_url: str


def prepare(args: argparse.Namespace, work: Path, env: dict[str, str]) -> Setup:
    url = env["DATABASE_URL"]
    settings = Settings.from_env(env)
    url = settings.database_url
    t0 = time.perf_counter()
    upgrade(url)
    db = Database(url, blob_dir=work / "blobs")
    fill(db, args.messages)
    batch_id = fill_batch(db, args.apply_letters, 0.0, "load", 11, people=int(args.apply_letters * 0.8))
    with db.unit_of_work() as s:
        staff = list(s.execute(select(Staffer.id, Staffer.email, Staffer.role).order_by(Staffer.id)))
        for i in range(len(staff), args.staff):
            s.add(Staffer(name=f"Staffer {i}", email=f"bench{i}@example.org", role=Role.CORRESPONDENT,
                          password_hash=hash_password(PASSWORD), active=True))
        s.flush()
        staff = list(s.execute(select(Staffer.id, Staffer.email, Staffer.role).order_by(Staffer.id)))
        boss = next(st for st in staff if st.role == Role.SUPERVISOR)
        writer = next(st for st in staff if st.role == Role.CORRESPONDENT)
        _token, intake_token = create_token(s, name="bench vendor", actor_id=None)
        _api, api_token = create_api_token(s, name="bench runs", scopes=["runs:read", "runs:write"], days=1,
                                           actor_id=boss.id)
        from correspondence.models import Topic

        topic_ids = list(s.scalars(select(Topic.id)))
    version_id = approved_version(db, "Clean water reply", writer.id, boss.id)
    db.dispose()
    return Setup(fill_seconds=round(time.perf_counter() - t0, 1), batch_id=batch_id, version_id=version_id,
                 staff=[(st.id, st.email, st.role == Role.SUPERVISOR) for st in staff][:args.staff],
                 topic_ids=topic_ids, intake_token=intake_token, api_token=api_token, database_url=url)


def start_servers(args: argparse.Namespace, env: dict[str, str]) -> list[subprocess.Popen]:
    out = open(Path(env["MAILROOM_INSTANCE_DIR"]) / "servers.log", "ab")  # noqa: SIM115 - kept for the run
    if args.mode == "embedded":
        return [subprocess.Popen([sys.executable, "-m", "workers.cli", "run", "--workers", str(args.workers),
                                  "--web-workers", str(args.web_workers)], env=env, cwd=ROOT, stdout=out,
                                 stderr=out, start_new_session=True)]
    procs = [subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", env["MAILROOM_BIND"], "--workers",
                               str(args.web_workers), "--threads", "4", "web.wsgi:app"], env=env, cwd=ROOT,
                              stdout=out, stderr=out, start_new_session=True),
             subprocess.Popen([sys.executable, "-m", "workers.cli", "scheduler"], env=env, cwd=ROOT, stdout=out,
                              stderr=out, start_new_session=True)]
    # The queues as README's scaled mode lays them out (and `mailroom run` does): new-mail-first and
    # outbound-first workers, and one for the long maintenance jobs.
    from workers.runner import MAINTENANCE_QUEUES, worker_queues

    queues = [worker_queues(i) for i in range(args.workers)] + [("--fork", *MAINTENANCE_QUEUES)]
    procs += [subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", *names], env=env, cwd=ROOT,
                               stdout=out, stderr=out, start_new_session=True) for names in queues]
    return procs


def wait_up(base: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer {base}/healthz within {timeout} s")


def start_run(base: str, api_token: str, version_id: int, batch_id: int, result: dict[str, object]) -> None:
    """The supervisor's apply-to-all, through the staff API; followed until it is done."""
    headers = {"Authorization": f"Bearer {api_token}", "Idempotency-Key": f"load-{batch_id}"}
    started = time.perf_counter()
    # The campaign mail is not coded yet: the supervisor confirms the letter fits it (the page's tick box).
    try:
        r = requests.post(base + "/api/v1/runs", headers=headers, timeout=300,
                          json={"version_id": version_id, "batch_id": batch_id, "confirm_mismatch": True})
    except requests.RequestException as exc:
        result["apply_error"] = repr(exc)[:300]
        return
    result["apply_start_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if r.status_code != 202:
        result["apply_error"] = f"{r.status_code} {r.text[:300]}"
        return
    run_id = r.json()["id"]
    progress: dict[str, object] = {}
    while True:
        try:  # a slow answer is a figure of its own (the pages' timings), not the end of following the run
            progress = requests.get(f"{base}/api/v1/runs/{run_id}", headers=headers, timeout=60).json()
        except (requests.RequestException, ValueError):
            result["apply_progress_timeouts"] = int(result.get("apply_progress_timeouts", 0)) + 1  # type: ignore[call-overload]
        if progress.get("state") in ("done", "failed", "finished"):
            break
        if time.perf_counter() - started > 1800:
            progress["state"] = "still running after 1,800 s"
            break
        time.sleep(1)
    result["apply_seconds"] = round(time.perf_counter() - started, 1)
    result["apply_run"] = {k: progress.get(k) for k in ("state", "letters", "people", "covered", "delivery",
                                                         "error")}


def drained(db: Database, accepted: list[int], timeout: float) -> tuple[float, int, int]:
    """Seconds until every accepted post is stored and processed; (seconds, missing, unprocessed)."""
    started = time.perf_counter()
    wanted = sorted(set(accepted))
    while True:
        stored = unprocessed = 0
        with db.unit_of_work() as s:
            for i in range(0, len(wanted), 5000):
                chunk = wanted[i:i + 5000]
                stored += s.scalar(select(func.count(Message.id)).where(Message.id.in_(chunk))) or 0
                unprocessed += s.scalar(select(func.count(Message.id)).where(
                    Message.id.in_(chunk), Message.processed_at.is_(None))) or 0
        if unprocessed == 0 or time.perf_counter() - started > timeout:
            return round(time.perf_counter() - started, 1), len(wanted) - stored, unprocessed
        time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["embedded", "scaled"], default="embedded")
    ap.add_argument("--database-url", default=None, help="scaled mode: PostgreSQL (emptied first)")
    ap.add_argument("--redis-url", default=None, help="scaled mode: a Redis server (its db is flushed)")
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--staff", type=int, default=10)
    ap.add_argument("--post-rate", type=float, default=10)
    ap.add_argument("--burst-rate", type=float, default=0)
    ap.add_argument("--burst-seconds", type=float, default=60)
    ap.add_argument("--apply-letters", type=int, default=5_000)
    ap.add_argument("--duration", type=float, default=180)
    ap.add_argument("--think", type=float, nargs=2, default=(1.0, 5.0))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--tag", default="")
    ap.add_argument("--keep-data", action="store_true",
                    help="scaled mode: keep what the database holds (a fill of --messages already there is reused)")
    ap.add_argument("--log-level", default="WARNING", help="the servers' log level (their log: <work>/servers.log)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (database, servers.log) afterwards")
    ap.add_argument("--lock-log", type=Path, default=None,
                    help="embedded mode: the servers log every SQLite write lock here (bench/lock_report.py)")
    args = ap.parse_args()
    if args.mode == "scaled" and not (args.database_url and args.redis_url):
        raise SystemExit("--mode scaled needs --database-url (PostgreSQL) and --redis-url")

    work = Path(tempfile.mkdtemp(prefix="mailroom-load-"))
    port = free_port()
    smtp_handler = Counting()
    smtp = Controller(smtp_handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("MAILROOM_", "REDIS_URL", "DATABASE_URL"))},
           "DATABASE_URL": args.database_url or f"sqlite:///{work / 'mailroom.db'}",
           "MAILROOM_INSTANCE_DIR": str(work), "MAILROOM_BLOB_DIR": str(work / "blobs"),
           "SECRET_KEY": "load-bench-secret-key-0123456789abcdef", "MAILROOM_BIND": f"127.0.0.1:{port}",
           "MAILROOM_REQUIRE_2FA": "", "MAILROOM_LOG_LEVEL": args.log_level,
           "MAILROOM_SMTP_HOST": "127.0.0.1", "MAILROOM_SMTP_PORT": str(smtp.port), "MAILROOM_SMTP_SECURITY": "none",
           "MAILROOM_SMTP_RATE": "0", "MAILROOM_MAIL_FROM": "office@house.example",
           "MAILROOM_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    if args.lock_log:
        env["MAILROOM_LOCK_LOG"] = str(args.lock_log)
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
        from redis import Redis

        Redis.from_url(args.redis_url).flushdb()
    if args.database_url and not args.keep_data:
        from sqlalchemy import create_engine, text

        engine = create_engine(Settings.from_env(env).database_url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    print(f"filling {args.messages:,} messages in {work} ...", file=sys.stderr, flush=True)
    setup = prepare(args, work, env)
    result: dict[str, object] = {
        "mode": args.mode, "database": "postgresql" if args.database_url else "sqlite", "messages": args.messages,
        "constituents": args.messages // 4, "staff_sessions": args.staff, "post_rate": args.post_rate,
        "burst_rate": args.burst_rate, "burst_seconds": args.burst_seconds if args.burst_rate else 0,
        "apply_letters": args.apply_letters, "duration_seconds": args.duration, "workers": args.workers,
        "web_workers": args.web_workers, "cpus": os.cpu_count(), "fill_seconds": setup.fill_seconds}
    base = f"http://127.0.0.1:{port}"
    procs = start_servers(args, env)
    timings = Timings()
    stop = threading.Event()
    try:
        wait_up(base)
        result["load_average_at_start"] = os.getloadavg()[0]
        think = (float(args.think[0]), float(args.think[1]))
        staff = [Staff(base, email, staffer_id, setup.topic_ids, timings, stop, seed=i, think=think,
                       supervisor=boss) for i, (staffer_id, email, boss) in enumerate(setup.staff)]
        for person in staff:
            person.start()
        poster = Poster(base, setup.intake_token, timings)
        schedule = [(0.0, args.duration, args.post_rate)]
        if args.burst_rate > 0:
            burst_from = args.duration / 3
            schedule = [(0.0, burst_from, args.post_rate),
                        (burst_from, burst_from + args.burst_seconds, args.burst_rate),
                        (burst_from + args.burst_seconds, args.duration, args.post_rate)]
        run_result: dict[str, object] = {}
        runner = threading.Timer(args.duration / 2, start_run, (base, setup.api_token, setup.version_id,
                                                                 setup.batch_id, run_result))
        runner.start()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=256) as pool:
            result["posts_sent"] = poster.drive(schedule, pool, stop)
        result["load_seconds"] = round(time.perf_counter() - t0, 1)
        stop.set()
        result["posts_scheduled_more_than_1s_late"] = poster.late
        result["load_average_at_end"] = os.getloadavg()[0]
        for person in staff:
            person.join(70)
        runner.join(1900)
        result.update(run_result)
        db = Database(setup.database_url)
        seconds, missing, unprocessed = drained(db, poster.accepted, timeout=600)
        result["intake"] = {"accepted": len(poster.accepted), "refused": dict(poster.refused),
                            "drain_seconds_after_load": seconds, "lost": missing, "not_processed": unprocessed}
        # The run is done when its letters are made and queued; the emails go out after, at the SMTP rate.
        apply_run = result.get("apply_run")
        letters = int(apply_run.get("letters") or 0) if isinstance(apply_run, dict) else 0
        waited = time.perf_counter()
        while sum(smtp_handler.ids.values()) < letters and time.perf_counter() - waited < 600:
            time.sleep(1)
        if letters:
            result["emails_all_at_smtp_seconds_after_drain"] = round(time.perf_counter() - waited, 1)
        result["emails_at_smtp"] = sum(smtp_handler.ids.values())
        result["emails_received_twice"] = sum(1 for n in smtp_handler.ids.values() if n > 1)
        db.dispose()
    finally:
        stop.set()
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        smtp.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    summary = timings.summary()
    pages = {k: v for k, v in summary.items() if not k.startswith("POST /api")}
    result["pages"] = pages
    result["api"] = {k: v for k, v in summary.items() if k.startswith("POST /api")}
    result["errors"] = sum(timings.errors.values())
    result["error_examples"] = timings.examples
    result["worst_page_p95_ms"] = max((v["p95_ms"] for k, v in pages.items()
                                       if not k.startswith(("POST", "GET /login"))), default=None)
    name = f"load-{args.mode}-{args.tag}.json" if args.tag else f"load-{args.mode}.json"
    (ROOT / "bench" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
