"""Jobs run through a real Redis with SimpleWorker; they take ids, are idempotent and quarantine bad input."""

from datetime import UTC, datetime, timedelta

from rq import SimpleWorker

from correspondence.models import MessageStatus
from workers import jobs
from workers.queues import PROCESS, PeriodicJob, enqueue_due_periodic, enqueue_process, get_queue


def _work(redis, *names):
    SimpleWorker([get_queue(n, redis) for n in names], connection=redis).work(burst=True)


def test_process_job_cleans_text_and_matches_constituent(job_env, redis, session, factory):
    person = factory.constituent(email="pat@example.net")
    m = factory.message(from_address="PAT@example.net", body_text="",
                        body_html="<p>Fix the <b>bridge</b></p><script>x()</script>", processed_at=None)
    session.commit()
    enqueue_process(redis, m.id)
    enqueue_process(redis, m.id)  # a second enqueue of the same id is a no-op
    assert get_queue(PROCESS, redis).count == 1
    _work(redis, PROCESS)
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert m.processed_at is not None
    assert m.body_text == "Fix the bridge"
    assert "<script>" not in m.body_html
    assert m.constituent_id == person.id


def test_unusable_message_is_quarantined_with_reason_not_crashed(job_env, redis, session, factory):
    m = factory.message(subject="", body_text="   ", processed_at=None)
    session.commit()
    enqueue_process(redis, m.id)
    _work(redis, PROCESS)
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert m.status == MessageStatus.QUARANTINED
    assert m.status_reason.startswith("decode: ") and "neither a subject nor any text" in m.status_reason
    assert get_queue(PROCESS, redis).failed_job_registry.count == 0


def test_running_a_job_twice_changes_nothing_more(job_env, session, factory):
    m = factory.message(processed_at=None)
    session.commit()
    jobs.run_process_message(m.id)
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    first = m.processed_at
    jobs.run_process_message(m.id)
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert m.processed_at == first


def test_sweeper_requeues_unfinished_messages(job_env, redis, session, factory):
    old = datetime.now(UTC) - timedelta(hours=1)
    stuck = factory.message(processed_at=None, created_at=old)
    factory.message(processed_at=None)  # just arrived: its own job is still on the way
    factory.message(processed_at=old, created_at=old)
    session.commit()
    assert jobs.run_sweep() == 1
    _work(redis, PROCESS)
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert stuck.processed_at is not None
    assert jobs.run_sweep() == 0


def test_periodic_jobs_have_deterministic_ids_and_enqueue_once_per_slot(redis):
    job = PeriodicJob("sweep", "workers.jobs.run_sweep", "maintenance", 300)
    t = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    assert job.job_id(t) == job.job_id(t + timedelta(seconds=200))
    assert job.job_id(t) != job.job_id(t + timedelta(seconds=300))
    assert enqueue_due_periodic(redis, t, (job,)) == [job.job_id(t)]
    assert enqueue_due_periodic(redis, t + timedelta(seconds=5), (job,)) == []  # a second scheduler
    assert get_queue("maintenance", redis).count == 1


def test_job_of_a_killed_worker_is_requeued_after_its_heartbeat_stops(redis):
    from rq.job import JobStatus

    queue = get_queue(PROCESS, redis)
    job_id = enqueue_process(redis, 42)
    job = queue.fetch_job(job_id)
    assert job is not None
    queue.remove(job)  # a worker took it ...
    job.set_status(JobStatus.STARTED)
    job.heartbeat(datetime.now(UTC), 60)  # ... and is alive
    assert enqueue_process(redis, 42) == job_id and queue.count == 0
    job.heartbeat(datetime.now(UTC) - timedelta(minutes=5), 60)  # ... and died without a word
    enqueue_process(redis, 42)
    assert queue.count == 1


def test_a_worker_that_runs_jobs_in_its_own_process_keeps_their_heartbeat_going(redis):
    """Jobs run in the worker itself (no fork per job), and a long job still sends its heartbeat, so the
    enqueue functions do not take it for a job abandoned by a dead worker and queue it twice."""
    import threading
    import time as clock

    from rq.job import Job

    from workers.inprocess import InProcessWorker
    from workers.queues import ABANDONED_AFTER, MAINTENANCE, _abandoned

    queue = get_queue(MAINTENANCE, redis)
    job = queue.enqueue("time.sleep", 3.5, job_timeout=30)
    worker = InProcessWorker([queue], connection=redis)
    worker.job_monitoring_interval = 1
    beats: list[object] = []

    def watch() -> None:
        for _ in range(40):
            clock.sleep(0.1)
            seen = Job.fetch(job.id, connection=redis)
            if seen.get_status() == "started" and seen.last_heartbeat is not None:
                beats.append(seen.last_heartbeat)

    watcher = threading.Thread(target=watch)
    watcher.start()
    worker.work(burst=True)
    watcher.join()
    assert Job.fetch(job.id, connection=redis).get_status() == "finished"
    assert len(set(beats)) >= 3  # a new beat about every second while it slept
    assert ABANDONED_AFTER.total_seconds() > 3 and not _abandoned(Job.fetch(job.id, connection=redis))

def test_apply_run_of_a_killed_worker_is_queued_again_after_its_heartbeat_stops(redis):
    """An apply run (and any one-job-per-record work) whose worker died is not left "started" until RQ's
    ten-minute maintenance: the sweep's enqueue takes it again once the heartbeat is old."""
    from rq.job import JobStatus

    from workers.queues import OUTBOUND, enqueue_apply, enqueue_report

    for enqueue, queue_name in ((enqueue_apply, OUTBOUND), (enqueue_report, "maintenance")):
        queue = get_queue(queue_name, redis)
        job_id = enqueue(redis, 7)
        assert enqueue(redis, 7) == job_id and queue.count == 1  # waiting: a second enqueue is a no-op
        job = queue.fetch_job(job_id)
        assert job is not None
        queue.remove(job)  # a worker took it ...
        job.set_status(JobStatus.STARTED)
        job.heartbeat(datetime.now(UTC), 60)  # ... and is alive
        enqueue(redis, 7)
        assert queue.count == 0
        job.heartbeat(datetime.now(UTC) - timedelta(minutes=5), 60)  # ... and its host was lost
        enqueue(redis, 7)
        assert queue.count == 1 and queue.job_ids == [job_id]
