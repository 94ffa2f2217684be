"""An RQ worker that runs each job in its own process rather than in a fork made for that job.

RQ's default worker forks a "work horse" per job, and everything a job warms up dies with the fork: the
database engine and its connection, SQLAlchemy's compiled statements, the topic model, parsed templates.
A first call in a fresh process costs about 220 ms (engine 117 ms, the first query's compilation 100 ms),
the second 3 ms, so a forking worker processed at most four or five messages a second and fell behind a
10 posts/s flood (`python bench/job_overhead.py`). This worker keeps all of it between jobs.

What the fork gave, kept: the job's heartbeat is sent every `job_monitoring_interval` seconds while it
runs (a forking worker's parent does it), so a long job is not taken for abandoned
(workers.queues.ABANDONED_AFTER) and queued again; the job timeout still holds (RQ's SIGALRM death
penalty, in this main thread). What it does not: a job that leaks memory leaks it into the worker, so
the long, memory-hungry maintenance jobs keep a forking worker (`mailroom worker --fork maintenance`).
"""

from __future__ import annotations

import logging
import threading

from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

log = logging.getLogger(__name__)


class InProcessWorker(SimpleWorker):
    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.job_monitoring_interval):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # a missed beat is retried at the next one; the job goes on
                    log.warning("could not send the heartbeat of job %s", job.id, exc_info=True)

        beating = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
        beating.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            beating.join(timeout=5)
        self.set_state(WorkerStatus.IDLE)
