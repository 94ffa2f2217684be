"""All RQ plumbing in one place: queue names, timeouts, retries, periodic jobs and enqueue helpers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Queue, Retry
from rq.job import Job

log = logging.getLogger(__name__)

INTAKE, PROCESS, OUTBOUND, MAINTENANCE = "intake", "process", "outbound", "maintenance"
QUEUE_NAMES = (INTAKE, PROCESS, OUTBOUND, MAINTENANCE)

DEFAULT_TIMEOUTS = {INTAKE: 600, PROCESS: 120, OUTBOUND: 120, MAINTENANCE: 1800}
FAILURE_TTL = 30 * 24 * 3600  # keep failed jobs a month so a person can see why
RESULT_TTL = 3600
# Retries run again at once. Workers run without RQ's scheduler (`mailroom worker`), and a retry with
# an interval waits, "scheduled", for that scheduler: it would never run, and enqueue_process (so the
# sweep) would take the parked job for one still waiting, leaving its message unprocessed for good.
IMMEDIATE_RETRY = Retry(max=3)


def get_queue(name: str, connection: Redis) -> Queue:
    if name not in QUEUE_NAMES:
        raise KeyError(f"unknown queue {name!r}; known: {', '.join(QUEUE_NAMES)}")
    return Queue(name, connection=connection, default_timeout=DEFAULT_TIMEOUTS[name])


def enqueue_process(connection: Redis, message_id: int) -> str:
    """Queue processing of one stored message; the job id makes a second enqueue a no-op."""
    job_id = f"process-message-{message_id}"
    queue = get_queue(PROCESS, connection)
    if _waiting_or_running(queue.fetch_job(job_id)):
        return job_id
    # A message's own faults are quarantined by the pipeline; what still fails the job is the
    # database (connection lost, deadlock), which is worth a few more tries at once; after those the
    # job is kept failed and the sweep queues the message again.
    queue.enqueue("workers.jobs.run_process_message", message_id, job_id=job_id,
                  failure_ttl=FAILURE_TTL, result_ttl=RESULT_TTL, retry=IMMEDIATE_RETRY)
    return job_id


# A started job whose worker has not sent a heartbeat for this long died with its worker (SIGKILL,
# a lost machine); running it again is safe because jobs are idempotent.
ABANDONED_AFTER = timedelta(seconds=90)


def enqueue_apply(connection: Redis, run_id: int) -> str:
    """Queue an apply-to-all run; one job per run (a second enqueue while it waits is a no-op)."""
    job_id = f"apply-{run_id}"
    queue = get_queue(OUTBOUND, connection)
    if not _waiting_or_running(queue.fetch_job(job_id)):
        queue.enqueue("workers.jobs.run_apply", run_id, job_id=job_id, job_timeout=3600,
                      failure_ttl=FAILURE_TTL, result_ttl=RESULT_TTL)
    return job_id


def enqueue_once(connection: Redis, function: str, object_id: int, *, job_id: str, queue: str = MAINTENANCE,
                 timeout: int = 3600) -> str:
    """Queue a job that works on one record (an import, a report) unless it is already waiting or running."""
    q = get_queue(queue, connection)
    if not _waiting_or_running(q.fetch_job(job_id)):
        q.enqueue(function, object_id, job_id=job_id, job_timeout=timeout, failure_ttl=FAILURE_TTL,
                  result_ttl=RESULT_TTL)
    return job_id


def enqueue_import(connection: Redis, import_id: int) -> str:
    return enqueue_once(connection, "workers.jobs.run_import", import_id, job_id=f"import-{import_id}")


def enqueue_report(connection: Redis, run_id: int) -> str:
    return enqueue_once(connection, "workers.jobs.run_report", run_id, job_id=f"report-{run_id}")


def enqueue_retention(connection: Redis, run_id: int) -> str:
    return enqueue_once(connection, "workers.jobs.run_retention", run_id, job_id=f"retention-{run_id}",
                        timeout=4 * 3600)


def enqueue_subject_access(connection: Redis, export_id: int) -> str:
    return enqueue_once(connection, "workers.jobs.run_subject_access", export_id, job_id=f"subject-access-{export_id}")


def enqueue_train_topics(connection: Redis, actor_id: int | None = None) -> str:
    """The "Retrain now" button: one training job at a time."""
    return enqueue_once(connection, "workers.jobs.run_train_topics", actor_id or 0, job_id="train-topics-now")


def enqueue_analytics(connection: Redis) -> str:
    return enqueue_once(connection, "workers.jobs.run_analytics", 0, job_id="analytics-now", timeout=900)


def enqueue_recluster(connection: Redis) -> str:
    """The "Re-group now" button: one waiting clustering run at a time (the job itself holds a lock)."""
    q = get_queue(MAINTENANCE, connection)
    if not _waiting_or_running(q.fetch_job("recluster-now")):
        q.enqueue("workers.jobs.run_recluster", job_id="recluster-now", failure_ttl=FAILURE_TTL,
                  result_ttl=RESULT_TTL)
    return "recluster-now"


def enqueue_send(connection: Redis, response_ids: list[int]) -> str:
    """Queue the delivery of a chunk of email responses (one SMTP connection per chunk).

    No RQ retry: letters the server could not take stay "queued" and the sweeper queues them again
    at each sweep (every five minutes), which is the retry; RQ's delayed retries would need its own scheduler.
    """
    job = get_queue(OUTBOUND, connection).enqueue("workers.jobs.run_send", response_ids,
                                                  failure_ttl=FAILURE_TTL, result_ttl=RESULT_TTL)
    return job.id


def _waiting_or_running(job: Job | None) -> bool:
    """True when a job with this id is waiting in a queue or running on a live worker: a second enqueue is a no-op.

    A job whose worker died (SIGKILL, a whole host lost) stays "started" in Redis until RQ's own
    maintenance (every ten minutes, on a live worker) fails it; without this check the sweep would
    leave such an apply run, import or report waiting for that, and a whole-host stop would hold up
    the run for up to ten minutes more (tests/test_multihost.py).
    """
    if job is None:
        return False
    status = job.get_status(refresh=True)
    if status in ("queued", "deferred", "scheduled"):
        return True
    return status == "started" and not _abandoned(job)


def _abandoned(job: Job) -> bool:
    beat = job.last_heartbeat or job.started_at
    if beat is None:
        return False
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    return datetime.now(UTC) - beat > ABANDONED_AFTER


@dataclass(frozen=True)
class PeriodicJob:
    """A job to enqueue every `every_seconds`; its id for each slot is deterministic."""

    name: str
    func: str
    queue: str
    every_seconds: int

    def slot(self, now: datetime) -> int:
        return int(now.timestamp()) // self.every_seconds

    def job_id(self, now: datetime) -> str:
        return f"periodic-{self.name}-{self.slot(now)}"


PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("sweep", "workers.jobs.run_sweep", MAINTENANCE, 300),
    PeriodicJob("poll-imap", "workers.jobs.run_poll_imap", INTAKE, 60),
    PeriodicJob("recluster", "workers.jobs.run_recluster", MAINTENANCE, 900),
    PeriodicJob("case-reminders", "workers.jobs.run_case_reminders", MAINTENANCE, 86400),
    PeriodicJob("train-topics", "workers.jobs.run_train_topics", MAINTENANCE, 86400),
    PeriodicJob("analytics", "workers.jobs.run_analytics", MAINTENANCE, 300),
    PeriodicJob("prune-login-attempts", "workers.jobs.run_prune_login_attempts", MAINTENANCE, 86400),
    PeriodicJob("closing-auto-replies", "workers.jobs.run_closing_auto_replies", OUTBOUND, 60),
    # Once a day (the slot is a UTC day); the job does nothing unless MAILROOM_BACKUP_DIR is set.
    PeriodicJob("backup", "workers.jobs.run_backup", MAINTENANCE, 86400),
    # Export files and subject access ZIPs are deleted 30 days after they were made (archive.downloads).
    PeriodicJob("expire-downloads", "workers.jobs.run_expire_downloads", MAINTENANCE, 86400),
    # The webhook outbox: due deliveries and retries (the rows in the database are what is owed).
    PeriodicJob("webhooks", "workers.jobs.run_webhooks", OUTBOUND, 30),
    # Delivered and failed notices leave the outbox after 30 and 90 days (MAILROOM_WEBHOOK_KEEP_*_DAYS).
    PeriodicJob("prune-webhooks", "workers.jobs.run_prune_webhooks", MAINTENANCE, 86400),
)


def enqueue_due_periodic(connection: Redis, now: datetime | None = None,
                         jobs: tuple[PeriodicJob, ...] = PERIODIC_JOBS) -> list[str]:
    """Enqueue each periodic job once per slot, even with several schedulers running."""
    now = now or datetime.now(UTC)
    enqueued = []
    for job in jobs:
        job_id = job.job_id(now)
        # SET NX is the claim: only the first scheduler to reach this slot enqueues it.
        if connection.set(f"mailroom:periodic:{job_id}", "1", nx=True, ex=job.every_seconds * 2):
            get_queue(job.queue, connection).enqueue(job.func, job_id=job_id, failure_ttl=FAILURE_TTL,
                                                     result_ttl=RESULT_TTL)
            enqueued.append(job_id)
            log.info("periodic enqueued job_id=%s", job_id)
    return enqueued


def enqueue_help_confirmation(connection: Redis, request_id: int, *, by_staff: bool = False) -> str:
    """Queue the email that carries a help request's one-time link (one waiting job per request and kind)."""
    if by_staff:
        return enqueue_once(connection, "workers.jobs.run_help_confirmation_by_staff", request_id,
                            job_id=f"help-resend-{request_id}", queue=OUTBOUND, timeout=120)
    return enqueue_once(connection, "workers.jobs.run_help_confirmation", request_id,
                        job_id=f"help-confirm-{request_id}", queue=OUTBOUND, timeout=120)


def enqueue_notice_emails(connection: Redis, staffer_id: int) -> str:
    """Queue the email copies of a staffer's new notices (one waiting job per staffer covers them all)."""
    return enqueue_once(connection, "workers.jobs.run_notice_emails", staffer_id,
                        job_id=f"notice-emails-{staffer_id}", queue=OUTBOUND, timeout=120)


def enqueue_closing_step(connection: Redis, actor_id: int, *, step: str, dest: str = "") -> str:
    """A long step of closing the office (archive.closing): one at a time, with a day to finish."""
    q = get_queue(MAINTENANCE, connection)
    job = q.enqueue("workers.jobs.run_closing_step", actor_id, step, dest, job_id=f"closing-{step}",
                    job_timeout=86400, failure_ttl=FAILURE_TTL, result_ttl=RESULT_TTL)
    return job.id


def enqueue_newsletter(connection: Redis, newsletter_id: int) -> str:
    """Queue a newsletter's preparation (its pieces, then its apply run); one waiting job per newsletter."""
    return enqueue_once(connection, "workers.jobs.run_newsletter", newsletter_id, job_id=f"newsletter-{newsletter_id}",
                        queue=OUTBOUND)


def enqueue_subscription_confirmation(connection: Redis, subscription_id: int) -> str:
    """Queue the double opt-in email of a public sign-up (one waiting job per sign-up)."""
    return enqueue_once(connection, "workers.jobs.run_subscription_confirmation", subscription_id,
                        job_id=f"subscribe-confirm-{subscription_id}", queue=OUTBOUND, timeout=120)


def enqueue_export(connection: Redis, run_id: int) -> str:
    """The admin page's "Export all data": one job per export (a whole office can take a while)."""
    return enqueue_once(connection, "workers.jobs.run_export", run_id, job_id=f"export-{run_id}", timeout=6 * 3600)


def enqueue_webhooks(connection: Redis) -> str:
    """Deliver the webhook outbox now (a test event); one waiting sweep at a time."""
    return enqueue_once(connection, "workers.jobs.run_webhooks", 0, job_id="webhooks-now", queue=OUTBOUND,
                        timeout=600)
