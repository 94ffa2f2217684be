"""The scaled mode on two hosts, and one of them stopped dead in the middle of the load.

Two "hosts" are two process trees, each with its own working directory and instance folder, each running
gunicorn (web.wsgi:app), one `mailroom worker` and one `mailroom scheduler`; they share one PostgreSQL
database (a scratch database made for the test), one Redis server (started by the fixture) and one blob
folder, and send their email to one SMTP server (aiosmtpd, tests/smtp.py). Web-form posts go to both hosts
in turn while an apply-to-all run started on host A runs; the host whose worker holds the run is killed
with SIGKILL, all its processes at once (web, worker, the job it runs, scheduler: a whole-host stop). Every
post that was answered 202 is stored and processed, the run completes on the other host, every recipient
got exactly one email, and the killed host, started again, serves requests and its worker takes jobs.
A second case kills only one host's worker in the middle of a send, and follows its letters through
"uncertain" to a person's decision: still no email twice.

Each test prints its figures (run with -s to see them).

PostgreSQL only (the embedded mode is one host by design): skipped without TEST_DATABASE_URL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from redis import Redis
from sqlalchemy import create_engine, func, insert, select, text, update

from config import Settings
from correspondence.db import Database
from correspondence.migrate import upgrade
from correspondence.models import (
    ApplyRun,
    AuditEvent,
    Batch,
    Constituent,
    Message,
    Response,
    ResponseState,
    Role,
    Staffer,
)
from tests.conftest import TEST_SECRET_KEY, need

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_RUN = os.environ.get("TEST_DATABASE_URL")
LETTERS = 240  # people in the campaign batch the run answers, one email each
# Web-form posts, alternating between the hosts, spread evenly over POST_SECONDS: about what the
# workers process on a small shared CI machine (a message takes one 0.5-2 s there, a fork and a
# pipeline run). Workers take the process queue before the outbound one, so the run is started just
# after the first posts, and the host holding it is stopped a few seconds into the load.
POSTS = 40
POST_SECONDS = 25.0
RUN_AFTER_SECONDS = 5.0
# How long a step may take before the test gives up: a stop for a hung test, not a timed assert. Work a
# dead worker held comes back after its heartbeat is 90 s old (workers.queues.ABANDONED_AFTER).
GIVE_UP_SECONDS = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(what: str, ready: Callable[[], bool], seconds: float = GIVE_UP_SECONDS, every: float = 0.2) -> float:
    """Poll until ready(); returns the seconds it took."""
    started = time.monotonic()
    while not ready():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(every)
    return time.monotonic() - started


# --- the shared servers --------------------------------------------------------------------------------

@pytest.fixture
def scratch_database() -> Iterator[str]:
    """An empty database of its own (mr_mh_<pid>) on TEST_DATABASE_URL's server, migrated; dropped after."""
    if not POSTGRES_RUN:
        pytest.skip("PostgreSQL only: set TEST_DATABASE_URL (the scaled mode runs on PostgreSQL)")
    from sqlalchemy.engine import make_url

    server = make_url(Settings.from_env({"DATABASE_URL": POSTGRES_RUN, "SECRET_KEY": TEST_SECRET_KEY}).database_url)
    name = f"mr_mh_{os.getpid()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_process() -> Iterator[str]:
    """A Redis server of the test's own on a free port (the hosts share it; CI's server stays untouched)."""
    binary = shutil.which("redis-server")
    need(binary is not None, "redis-server not installed (apt-get install redis-server)")
    assert binary is not None
    work = Path(tempfile.mkdtemp(prefix="mailroom-mh-redis-"))
    port = _free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",  # noqa: S603
                                "--appendonly", "no", "--dir", str(work)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        assert process.poll() is None, "redis-server exited"
        with contextlib.suppress(Exception):
            return bool(Redis.from_url(url).ping())
        return False

    try:
        _wait_for("redis-server answering", answers, 30)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(work, ignore_errors=True)


# --- a host --------------------------------------------------------------------------------------------

@dataclass
class Host:
    """One machine's share of the scaled mode: gunicorn, a worker and a scheduler in one process group."""

    name: str
    folder: Path
    env: dict[str, str]
    port: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "host.log"

    def start(self) -> None:
        out = self.log.open("ab")
        exe = [sys.executable, "-m"]
        # The first process leads a new process group; the others join it, so one killpg stops the host
        # (a group, not a session: a process may join another's group only within its own session).
        self.procs = []
        # gunicorn 23+ opens a control socket under $HOME: one per host, not one shared.
        web = subprocess.Popen([*exe, "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",  # noqa: S603
                                "--threads", "4", "--control-socket", str(self.folder / "gunicorn.ctl"),
                                "web.wsgi:app"], env=self.env, cwd=self.folder, stdout=out, stderr=out,
                               process_group=0)
        self.procs.append(web)
        try:
            for command in ("worker", "scheduler"):
                self.procs.append(subprocess.Popen([*exe, "workers.cli", command], env=self.env,  # noqa: S603
                                                   cwd=self.folder, stdout=out, stderr=out, process_group=web.pid))
        finally:
            out.close()

    @property
    def worker_pid(self) -> int:
        return self.procs[1].pid

    def wait_up(self) -> None:
        def healthy() -> bool:
            for proc in self.procs:
                assert proc.poll() is None, f"host {self.name}: a process exited\n{self.tail()}"
            with contextlib.suppress(requests.RequestException):
                return requests.get(self.base + "/healthz", timeout=2).status_code == 200
            return False

        _wait_for(f"host {self.name} serving", healthy, 60, 0.3)

    def kill(self) -> None:
        """The whole-host stop: SIGKILL to every process of the host at once, nothing cleaned up.

        The host's group is frozen first (SIGSTOP: nothing forks or exits meanwhile), then every process
        of its tree is killed: RQ runs each job in a forked work-horse that leaves the worker's process
        group (os.setpgrp), and a horse that outlived its worker would finish the job as if nothing had
        happened — a machine that stops takes its horses with it.
        """
        group = self.procs[0].pid
        os.killpg(group, signal.SIGSTOP)
        tree = {p.pid for p in self.procs} | {child for p in self.procs for child in _descendants(p.pid)}
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(30)

    def kill_worker(self) -> None:
        """SIGKILL the host's worker and the job process it forked; its web and scheduler go on."""
        worker = self.procs[1]
        os.kill(worker.pid, signal.SIGSTOP)  # frozen: it forks no new job process meanwhile
        for pid in [*_descendants(worker.pid), worker.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait(30)

    def stop(self) -> None:
        if not self.procs or all(p.poll() is not None for p in self.procs):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[0].pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.procs[0].pid, signal.SIGKILL)
                proc.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def _descendants(pid: int) -> list[int]:
    """Every process below pid (Linux: /proc/<pid>/task/<tid>/children)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        for task in Path(f"/proc/{stack.pop()}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                stack += children
    return found


def _worker_name(redis: Redis, pid: int) -> str | None:
    from rq import Worker

    return next((w.name for w in Worker.all(connection=redis) if w.pid == pid), None)


# --- the office's data ---------------------------------------------------------------------------------

@dataclass
class Office:
    batch_id: int
    version_id: int
    intake_token: str
    api_token: str
    supervisor_id: int


def _seed(db: Database) -> Office:
    """Two staff, an approved letter, a campaign batch of LETTERS messages from as many people, and the
    tokens of a web-form vendor and of the supervisor's API client."""
    from correspondence.services.api_tokens import create_api_token
    from correspondence.services.tokens import create_token
    from drafting import letters

    now = datetime.now(UTC)
    with db.unit_of_work() as s:
        writer = Staffer(name="Writer", email="writer@house.example", role=Role.CORRESPONDENT, password_hash="x")
        boss = Staffer(name="Boss", email="boss@house.example", role=Role.SUPERVISOR, password_hash="x")
        s.add_all([writer, boss])
        s.flush()
        version = letters.create_letter(s, title="Clean water", actor_id=writer.id, body=(
            "{{ constituent.salutation }}\n\nThank you for writing about clean water.\n\n{{ office.signature }}"))
        letters.submit(s, version.id, actor_id=writer.id)
        letters.approve(s, version.id, actor_id=boss.id)
        batch = Batch(title="Clean water", template_text="Protect clean water.", member_count=LETTERS)
        s.add(batch)
        s.flush()
        s.execute(insert(Constituent), [
            {"first_name": f"First{i}", "last_name": f"Last{i}", "address1": f"{i} Main St", "city": "Columbus",
             "state": "OH", "zip5": "43215", "district_status": "in_district", "created_at": now}
            for i in range(LETTERS)])
        first = s.scalar(select(func.min(Constituent.id)))
        assert first is not None
        s.execute(insert(Message), [
            {"idempotency_key": f"mh:{i}", "channel": "email", "direction": "inbound", "received_at": now,
             "from_address": f"writer{i}@example.org", "subject": "Clean water", "body_text": "Protect clean water.",
             "constituent_id": first + i, "status": "new", "batch_id": batch.id, "processed_at": now,
             "created_at": now, "updated_at": now, "batch_pinned": False}
            for i in range(LETTERS)])
        _token, intake_token = create_token(s, name="multi-host vendor", actor_id=None)
        _api, api_token = create_api_token(s, name="multi-host runs", scopes=["runs:read", "runs:write"], days=1,
                                           actor_id=boss.id)
        return Office(batch.id, version.id, intake_token, api_token, boss.id)


# --- the load ------------------------------------------------------------------------------------------

class Poster:
    """Web-form posts at a fixed pace, to each host in turn. A post the chosen host cannot take (its
    connection refused or cut: the host is down) is sent once more to the other host, as a vendor's retry
    or a load balancer would; the same content is the same message (the web form's idempotency key)."""

    def __init__(self, hosts: list[Host], token: str) -> None:
        self.hosts = hosts
        self.headers = {"Authorization": f"Bearer {token}"}
        self.accepted: dict[int, str] = {}  # message id -> the host that answered 202
        self.refused: Counter[str] = Counter()
        self.failed_over = 0
        self.lock = threading.Lock()

    def post(self, n: int) -> None:
        body = {"first_name": f"Poster{n}", "last_name": "Tester", "email": f"poster{n}@example.org",
                "zip5": "43215", "subject": "Protect the river", "message": f"Please protect the river ({n})."}
        for attempt, host in enumerate((self.hosts[n % 2], self.hosts[(n + 1) % 2])):
            try:
                r = requests.post(host.base + "/api/v1/intake/webform", json=body, headers=self.headers, timeout=30)
            except requests.ConnectionError:
                if attempt == 0:
                    with self.lock:
                        self.failed_over += 1
                continue
            with self.lock:
                if r.status_code == 202:
                    self.accepted.setdefault(int(r.json()["message_id"]), host.name)
                else:
                    self.refused[f"{host.name} {r.status_code}"] += 1
            return
        with self.lock:
            self.refused["no host answered"] += 1

    def drive(self, count: int, seconds: float) -> None:
        with ThreadPoolExecutor(max_workers=16) as pool:
            t0 = time.monotonic()
            for n in range(count):
                wait = t0 + n * seconds / count - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                pool.submit(self.post, n)


def _api(host: Host, office: Office, method: str, path: str, **kw: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {office.api_token}", **kw.pop("headers", {})}  # type: ignore[dict-item]
    return requests.request(method, host.base + "/api/v1" + path, headers=headers, timeout=60, **kw)  # type: ignore[arg-type]


def _hosts(tmp_path: Path, database_url: str, redis_url: str, smtp_port: int, smtp_rate: int = 0) -> list[Host]:
    """Hosts A and B: their own folders and instance folders, everything else shared."""
    shared = {k: v for k, v in os.environ.items()
              if not k.startswith(("MAILROOM_", "DATABASE_", "REDIS_URL", "TEST_DATABASE_URL", "SECRET_KEY"))}
    shared.update({
        "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        # Shared by every host: sessions, CSRF tokens and stored secrets must read the same everywhere.
        "SECRET_KEY": TEST_SECRET_KEY, "MAILROOM_BLOB_DIR": str(tmp_path / "blobs"),
        "MAILROOM_SMTP_HOST": "127.0.0.1", "MAILROOM_SMTP_PORT": str(smtp_port),
        "MAILROOM_SMTP_SECURITY": "none", "MAILROOM_SMTP_RATE": str(smtp_rate),
        "MAILROOM_MAIL_FROM": "office@house.example",
        # The sweep takes anything unfinished at once (the test cannot wait ten minutes), see below.
        "MAILROOM_SWEEP_AFTER_MINUTES": "0", "MAILROOM_REQUIRE_2FA": "",
        "MAILROOM_LOG_LEVEL": os.environ.get("MAILROOM_TEST_HOST_LOG_LEVEL", "WARNING")})
    hosts = []
    for name in ("A", "B"):
        folder = tmp_path / f"host-{name}"
        folder.mkdir()
        port = _free_port()
        hosts.append(Host(name, folder, {**shared, "MAILROOM_INSTANCE_DIR": str(folder / "instance"),
                                         "MAILROOM_PUBLIC_URL": f"http://127.0.0.1:{port}"}, port))
    return hosts


def _start(hosts: list[Host], redis: Redis) -> dict[str | None, str]:
    """Start the hosts and let their first periodic jobs pass; returns each worker's RQ name -> its host."""
    from workers.queues import QUEUE_NAMES, get_queue

    for host in hosts:
        host.start()
    for host in hosts:
        host.wait_up()
    _wait_for("both workers registered", lambda: all(_worker_name(redis, h.worker_pid) for h in hosts), 60)
    names = {_worker_name(redis, h.worker_pid): h.name for h in hosts}
    # The schedulers' first slots queue every periodic job at once: let the workers finish those first.
    queues = [get_queue(name, redis) for name in QUEUE_NAMES]
    _wait_for("the first periodic jobs done", lambda: all(
        q.count == 0 and q.started_job_registry.count == 0 for q in queues), 120, 0.5)
    return names


# --- the tests -----------------------------------------------------------------------------------------

def test_two_hosts_one_stopped_dead_nothing_lost_nothing_sent_twice(scratch_database, redis_process, smtp_server,
                                                                      tmp_path):
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from workers.queues import MAINTENANCE, get_queue

    db = Database(scratch_database, blob_dir=tmp_path / "blobs")
    office = _seed(db)
    redis = Redis.from_url(redis_process)
    hosts = _hosts(tmp_path, scratch_database, redis_process, smtp_server.port)
    figures: dict[str, object] = {}
    try:
        workers_at_start = _start(hosts, redis)
        a, b = hosts
        # 1. The load: posts to A and B in turn; a few seconds in, the supervisor starts the run on A.
        poster = Poster(hosts, office.intake_token)
        load = threading.Thread(target=poster.drive, args=(POSTS, POST_SECONDS))
        load_started = time.monotonic()
        load.start()
        time.sleep(RUN_AFTER_SECONDS)
        started = _api(a, office, "POST", "/runs", headers={"Idempotency-Key": "multi-host-run"},
                       json={"version_id": office.version_id, "batch_id": office.batch_id, "confirm_mismatch": True})
        assert started.status_code == 202, started.text
        run_id = int(started.json()["id"])
        # The run is one row in the shared database: B answers for it as A does.
        assert _api(b, office, "GET", f"/runs/{run_id}").json()["id"] == run_id

        # 2. The whole-host stop: the host whose worker has just started the run is killed with SIGKILL.
        holder: dict[str, str] = {}

        def run_started() -> bool:
            try:
                job = Job.fetch(f"apply-{run_id}", connection=redis)
            except NoSuchJobError:
                return False
            status = job.get_status()
            assert status in ("queued", "started"), f"the run's job is {status} before any host was stopped"
            if status == "started" and job.worker_name:
                holder["worker"] = job.worker_name
                return True
            return False

        _wait_for("a worker starting the run", run_started, 120, 0.01)
        victim = next(h for h in hosts if workers_at_start.get(holder["worker"]) == h.name)
        survivor = b if victim is a else a
        victim.kill()
        killed_at = time.monotonic()
        with db.unit_of_work() as s:
            at_kill = s.get_one(ApplyRun, run_id)
            figures["run_at_kill"] = {"state": str(at_kill.state), "people_done": at_kill.people_done}
        figures["killed_host"] = victim.name
        figures["killed_seconds_into_the_load"] = round(killed_at - load_started, 1)
        load.join(POST_SECONDS + 60)
        assert not load.is_alive()

        # 3. Recovery on the survivor alone. The sweep is the scheduler's every five minutes (the surviving
        # host's scheduler carries on); queued here every ten seconds in its place, since the test cannot wait.
        accepted = sorted(poster.accepted)
        sweeps: list[tuple[float, str]] = []

        def everything_done() -> bool:
            with db.unit_of_work() as s:
                unprocessed = s.scalar(select(func.count(Message.id)).where(
                    Message.id.in_(accepted), Message.processed_at.is_(None)))
                run = s.get_one(ApplyRun, run_id)
                unsent = s.scalar(select(func.count(Response.id)).where(
                    Response.run_id == run_id, Response.state != ResponseState.SENT))
            if unprocessed == 0 and str(run.state) == "done" and unsent == 0:
                return True
            if not sweeps or time.monotonic() - sweeps[-1][0] > 10:
                job = get_queue(MAINTENANCE, redis).enqueue("workers.jobs.run_sweep", job_id=f"sweep-now-{len(sweeps)}")
                sweeps.append((time.monotonic(), job.id))
            return False

        _wait_for("every post processed and every letter sent on the surviving host", everything_done, every=0.5)
        recovered_at = time.monotonic()

        # 4. Nothing lost: every post answered 202 is stored, processed, and kept its raw submission.
        with db.unit_of_work() as s:
            stored = dict(s.execute(select(Message.id, Message.processed_at).where(Message.id.in_(accepted))).all())
            assert set(stored) == set(accepted) and all(stored.values())
            run = s.get_one(ApplyRun, run_id)
            assert str(run.state) == "done" and run.created_count == LETTERS and run.people == LETTERS
            letters = s.execute(select(Response.email_message_id, Response.to_address, Response.state)
                                .where(Response.run_id == run_id)).all()
            restarts = s.scalar(select(func.count(AuditEvent.id)).where(
                AuditEvent.object_type == "apply_run", AuditEvent.object_id == str(run_id),
                AuditEvent.action == "apply_run.run"))
        assert len(letters) == LETTERS and {state for _m, _t, state in letters} == {ResponseState.SENT}

        # 5. Nothing sent twice, nothing missing: each recipient got exactly one email at the SMTP server.
        with smtp_server.inbox.lock:
            received = list(smtp_server.inbox.messages)
        by_id = Counter(str(m["Message-ID"]) for m in received)
        by_to = Counter(str(m["To"]) for m in received)
        assert [mid for mid, _t, _s in letters if by_id[mid] != 1] == []
        assert sorted(by_to) == sorted(str(to) for _m, to, _s in letters) and set(by_to.values()) == {1}
        # The run's job, started by the stopped host's worker, was finished by the survivor's.
        finished_by = Job.fetch(f"apply-{run_id}", connection=redis).worker_name
        assert workers_at_start.get(finished_by or "") == survivor.name, (holder, finished_by, workers_at_start)

        # Which worker processed each post: the two hosts really share the work (a post received by one
        # host's web, its raw submission in the shared blob folder, processed by the other host's worker).
        processed_by = {i: workers_at_start.get(Job.fetch(f"process-message-{i}", connection=redis).worker_name or "")
                        for i in accepted}
        crossed = sum(1 for i, web_host in poster.accepted.items() if processed_by[i] not in (None, web_host))
        left_by_victim = sum(1 for i, web_host in poster.accepted.items()
                             if web_host == victim.name and processed_by[i] == survivor.name)

        # 6. The stopped host rejoins: started again from the same folder, it serves and its worker takes jobs.
        victim.start()
        victim.wait_up()
        _wait_for("the restarted worker registered", lambda: _worker_name(redis, victim.worker_pid) is not None, 60)
        rejoined = _worker_name(redis, victim.worker_pid)
        fresh = Poster([victim, victim], office.intake_token)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(fresh.post, range(POSTS, POSTS + 10)))
        assert len(fresh.accepted) == 10 and set(fresh.accepted.values()) == {victim.name}, fresh.refused

        def fresh_processed() -> bool:
            with db.unit_of_work() as s:
                return not s.scalar(select(func.count(Message.id)).where(
                    Message.id.in_(list(fresh.accepted)), Message.processed_at.is_(None)))

        _wait_for("the posts to the rejoined host processed", fresh_processed, 60)
        takers = Counter(Job.fetch(f"process-message-{i}", connection=redis).worker_name for i in fresh.accepted)
        assert takers[rejoined] >= 1, f"the rejoined worker took none of the new jobs: {takers}"

        figures.update({
            "posts_sent": POSTS, "posts_accepted": len(accepted),
            "posts_accepted_by": dict(Counter(poster.accepted.values())), "posts_failed_over": poster.failed_over,
            "posts_refused": dict(poster.refused), "posts_processed_by_the_other_host": crossed,
            "posts_taken_by_the_stopped_host_processed_by_the_survivor": left_by_victim,
            "letters": LETTERS, "emails_received": len(received), "emails_received_twice": sum(
                1 for n in by_id.values() if n > 1),
            "run_moves_to_running": restarts, "sweeps_queued": len(sweeps),
            "run_job_started_by": victim.name, "run_job_finished_by": survivor.name,
            "seconds_from_stop_to_all_done": round(recovered_at - killed_at, 1),
            "rejoined_worker_jobs": takers[rejoined], "surviving_worker_jobs": sum(takers.values()) - takers[rejoined],
        })
        print("\nmulti-host figures:", figures)
    finally:
        for host in hosts:
            host.stop()
        db.dispose()
        redis.close()


def test_a_worker_killed_in_the_middle_of_a_send_sends_no_letter_twice(scratch_database, redis_process, smtp_server,
                                                                        tmp_path):
    """The other stop: one host's worker (and the job process it forked) killed while it hands a run's letters
    to the SMTP server, its web still up. The letters it had not claimed go out from the other host; the ones
    it had claimed ("sending", at most one group) turn "uncertain" once the attempt is old, and a person
    settles each (it arrived: mark it sent; it did not: send it again). No recipient gets two emails."""
    from rq import Worker

    from drafting.send import CLAIM_GROUP, IN_FLIGHT, settle
    from workers.queues import MAINTENANCE, OUTBOUND, get_queue

    db = Database(scratch_database, blob_dir=tmp_path / "blobs")
    office = _seed(db)
    redis = Redis.from_url(redis_process)
    # Ten emails a second per worker: a send job of 100 letters takes ten seconds, long enough to stop it in.
    hosts = _hosts(tmp_path, scratch_database, redis_process, smtp_server.port, smtp_rate=10)

    def received() -> Counter[str]:
        with smtp_server.inbox.lock:
            return Counter(str(m["Message-ID"]) for m in smtp_server.inbox.messages)

    def run_letters(state: ResponseState | None = None) -> list[tuple[int, str]]:
        with db.unit_of_work() as s:
            query = select(Response.id, Response.email_message_id).where(Response.run_id == run_id)
            return [(rid, str(mid)) for rid, mid in s.execute(
                query if state is None else query.where(Response.state == state)).all()]

    sweeps: list[float] = []

    def sweep_now() -> None:
        """The scheduler's sweep (every five minutes), queued here every ten seconds instead."""
        if not sweeps or time.monotonic() - sweeps[-1] > 10:
            get_queue(MAINTENANCE, redis).enqueue("workers.jobs.run_sweep", job_id=f"sweep-now-{len(sweeps)}")
            sweeps.append(time.monotonic())

    try:
        names = _start(hosts, redis)
        a, _b = hosts
        started = _api(a, office, "POST", "/runs", headers={"Idempotency-Key": "multi-host-send"},
                       json={"version_id": office.version_id, "batch_id": office.batch_id, "confirm_mismatch": True})
        assert started.status_code == 202, started.text
        run_id = int(started.json()["id"])

        # A worker in the middle of a send job: its job is run_send, and letters are out and others claimed.
        chosen: list[Host] = []

        def in_the_middle_of_a_send() -> bool:
            if sum(received().values()) < 5 or not run_letters(ResponseState.SENDING):
                return False
            for worker in Worker.all(connection=redis):
                job = worker.get_current_job()
                if job is not None and job.func_name == "workers.jobs.run_send" and worker.name in names:
                    chosen.append(next(h for h in hosts if h.name == names[worker.name]))
                    return True
            return False

        _wait_for("a worker in the middle of a send", in_the_middle_of_a_send, 120, 0.05)
        victim = chosen[0]
        victim.kill_worker()
        emails_before_kill = sum(received().values())

        dead = next(name for name, host in names.items() if host == victim.name)

        # The other host's worker sends every letter the dead one had not claimed (the sweep queues them).
        def only_dead_claims_left() -> bool:
            if run_letters(ResponseState.QUEUED):
                sweep_now()
                return False
            busy = [w for w in Worker.all(connection=redis) if w.name != dead and w.get_current_job() is not None]
            return not busy and get_queue(OUTBOUND, redis).count == 0

        _wait_for("every unclaimed letter sent by the other host", only_dead_claims_left, every=0.5)
        stuck = run_letters(ResponseState.SENDING)
        assert 0 < len(stuck) <= CLAIM_GROUP, stuck
        assert max(received().values()) == 1

        # Ten minutes on (IN_FLIGHT, the age after which an attempt is taken for dead rather than still going
        # in another worker): made so by moving the claims' time back rather than waited for.
        with db.unit_of_work() as s:
            s.execute(update(Response).where(Response.run_id == run_id, Response.state == ResponseState.SENDING)
                      .values(sending_since=datetime.now(UTC) - IN_FLIGHT - timedelta(minutes=1)))

        def none_sending() -> bool:
            if run_letters(ResponseState.SENDING):
                sweep_now()
                return False
            return True

        _wait_for("the dead attempt's letters turned uncertain", none_sending, every=0.5)
        uncertain = run_letters(ResponseState.UNCERTAIN)
        assert sorted(uncertain) == sorted(stuck)  # never resent blindly: each is for a person to check

        # A person checks each: the SMTP server has it (marked sent) or not (sent again).
        arrived = received()
        with db.unit_of_work() as s:
            for rid, mid in uncertain:
                settle(s, rid, "mark_sent" if arrived[mid] else "resend", actor_id=office.supervisor_id)

        def all_sent() -> bool:
            if len(run_letters(ResponseState.SENT)) < LETTERS:
                sweep_now()
                return False
            return True

        _wait_for("every letter sent", all_sent, every=0.5)
        final = received()
        assert sorted(final) == sorted(mid for _rid, mid in run_letters()) and set(final.values()) == {1}
        print("\nworker killed mid-send:", {
            "killed_worker_of_host": victim.name, "emails_at_kill": emails_before_kill, "claimed_by_the_dead_attempt":
                len(stuck), "of_those_arrived_before_the_kill": sum(1 for _r, mid in uncertain if arrived[mid]),
            "letters": LETTERS, "emails_received": sum(final.values()), "emails_received_twice": 0})
    finally:
        for host in hosts:
            host.stop()
        db.dispose()
        redis.close()
