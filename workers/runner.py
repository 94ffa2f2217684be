"""`mailroom run`: the embedded Redis (unless REDIS_URL names a server), RQ workers, the scheduler and gunicorn as
one process tree."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis

from config import Settings
from workers.queues import INTAKE, MAINTENANCE, OUTBOUND, PROCESS
from workers.redis_conn import EmbeddedRedis, _socket_alive

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Children get SIGTERM if the runner itself is killed, so a crash leaves no orphans."""
    # Not Linux (no libc.so.6): the runner's own signal handler is the only cleanup.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_queues(index: int) -> tuple[str, ...]:
    """The queues worker `index` takes work from, first queue first (maintenance has a worker of its own).

    Odd workers put the outbound queue (apply-to-all runs, their sends, newsletters) first, the others
    new mail: with one order for all, a flood of new mail kept every worker busy processing while a
    supervisor's run waited (bench/load.py: 0 of 5,000 letters sent during a 10 posts/s flood), and a
    50,000-letter run would keep new mail waiting.
    """
    if index % 2:
        return (OUTBOUND, INTAKE, PROCESS)
    return (INTAKE, PROCESS, OUTBOUND)


# Clustering, topic training, analytics, reports, backups: long jobs on a worker of their own. When the
# two workers also took them, a restart on a busy day had both busy for minutes training topics and
# clustering while new mail and a run waited (bench/load.py).
MAINTENANCE_QUEUES = (MAINTENANCE,)


class Runner:
    def __init__(self, settings: Settings, *, workers: int = 2, web_workers: int = 2) -> None:
        self.settings = settings
        self.workers = workers
        self.web_workers = web_workers
        self.pidfile: Path = settings.instance_dir / "run.pid"
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.redis: EmbeddedRedis | None = None
        self.adopted_redis = False
        self.stopping = False

    def _claim_pidfile(self) -> None:
        self.settings.instance_dir.mkdir(parents=True, exist_ok=True)
        if self.pidfile.exists():
            try:
                old = int(self.pidfile.read_text().strip())
            except ValueError:
                old = 0
            if old and old != os.getpid() and _pid_alive(old):
                raise SystemExit(f"Mailroom is already running (pid {old}); stop it first.")
            log.info("removing stale pidfile pid=%s", old)
        self.pidfile.write_text(str(os.getpid()))

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log.info("starting %s: %s", name, " ".join(argv))
        self.children[name] = subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent)  # noqa: S603

    def start(self) -> None:
        self._claim_pidfile()
        env = dict(os.environ)
        env["MAILROOM_INSTANCE_DIR"] = str(self.settings.instance_dir)
        if self.settings.embedded_redis:
            if _socket_alive(self.settings.redis_socket_path):
                # An embedded Redis that outlived a crashed run still holds queued work: reuse it.
                env["REDIS_URL"] = f"unix://{self.settings.redis_socket_path}"
                self.adopted_redis = True
            else:
                self.redis = EmbeddedRedis(self.settings)
                env["REDIS_URL"] = self.redis.start()
        exe = [sys.executable, "-m", "workers.cli"]
        for i in range(self.workers):
            self._spawn(f"worker-{i + 1}", [*exe, "worker", *worker_queues(i)], env)
        self._spawn("worker-maintenance", [*exe, "worker", "--fork", *MAINTENANCE_QUEUES], env)
        self._spawn("scheduler", [*exe, "scheduler"], env)
        self._spawn("web", [sys.executable, "-m", "gunicorn", "--bind", self.settings.bind,
                            "--workers", str(self.web_workers), "--threads", "4",
                            "--graceful-timeout", "5", "--access-logfile", "-", "web.wsgi:app"], env)

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 15
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("killing %s after timeout", name)
                child.kill()
                child.wait()
        if self.redis is not None:
            self.redis.stop()
        elif self.adopted_redis:
            with contextlib.suppress(Exception):  # already gone is what we want
                Redis(unix_socket_path=str(self.settings.redis_socket_path)).shutdown(nosave=True)
        self.pidfile.unlink(missing_ok=True)
        log.info("mailroom stopped")

    def serve_forever(self) -> int:
        def _on_signal(signum, _frame):
            log.info("signal %s received, stopping", signum)
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _on_signal)
        self.start()
        print(f"Mailroom is running at http://{self.settings.bind}/  (Ctrl-C stops it)", flush=True)
        code = 0
        try:
            while True:
                for name, child in self.children.items():
                    if child.poll() is not None:
                        log.error("%s exited with code %s; stopping everything", name, child.returncode)
                        code = 1
                        raise KeyboardInterrupt
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
        return code
