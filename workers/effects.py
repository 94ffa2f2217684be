"""Dispatching effects after a commit: the one place a use case's requested jobs reach Redis.

Each boundary (web action helper, job wrapper, CLI decorator) calls `commit_and_dispatch` or, after
its own commit, `dispatch`. A Redis outage loses nothing: every job here is idempotent and the
database already holds what the job needs, so the periodic sweep (or a person's "try again") queues
it later; the failure is logged, never raised into a request that has already committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import lru_cache

from redis import Redis
from sqlalchemy.orm import Session

from config import Settings
from correspondence.effects import Effect, effects_of
from workers import queues

log = logging.getLogger(__name__)


def _ids(effect: Effect) -> list[int]:
    return list(effect.ids)


# The jobs a use case may ask for, by name: name -> enqueue(connection, effect).
JOBS: dict[str, Callable[[Redis, Effect], object]] = {
    "process_message": lambda r, e: [queues.enqueue_process(r, i) for i in e.ids],
    "apply_run": lambda r, e: [queues.enqueue_apply(r, i) for i in e.ids],
    "send": lambda r, e: [queues.enqueue_send(r, _ids(e)[s:s + 100]) for s in range(0, len(e.ids), 100)],
    "import": lambda r, e: [queues.enqueue_import(r, i) for i in e.ids],
    "report": lambda r, e: [queues.enqueue_report(r, i) for i in e.ids],
    "analytics": lambda r, e: queues.enqueue_analytics(r),
    "train_topics": lambda r, e: queues.enqueue_train_topics(r, e.ids[0] if e.ids else None),
    "recluster": lambda r, e: queues.enqueue_recluster(r),
    "help_confirmation": lambda r, e: [
        queues.enqueue_help_confirmation(r, i, by_staff=bool(dict(e.options).get("by_staff"))) for i in e.ids],
    "notice_emails": lambda r, e: [queues.enqueue_notice_emails(r, i) for i in e.ids],
    "closing_step": lambda r, e: queues.enqueue_closing_step(
        r, e.ids[0], step=str(dict(e.options)["step"]), dest=str(dict(e.options).get("dest", ""))),
    "newsletter": lambda r, e: [queues.enqueue_newsletter(r, i) for i in e.ids],
    "subscription_confirmation": lambda r, e: [queues.enqueue_subscription_confirmation(r, i) for i in e.ids],
    "export": lambda r, e: [queues.enqueue_export(r, i) for i in e.ids],
    "retention": lambda r, e: [queues.enqueue_retention(r, i) for i in e.ids],
    "subject_access": lambda r, e: [queues.enqueue_subject_access(r, i) for i in e.ids],
    "webhooks": lambda r, e: queues.enqueue_webhooks(r),
}


@lru_cache(maxsize=4)
def _client(url: str) -> Redis:
    """One client (and connection pool) per Redis URL per process, not one per request."""
    return Redis.from_url(url)


def redis_client(settings: Settings | None = None) -> Redis:
    """This process's client for the Redis named by `settings` (a job's or the CLI's own by default;
    the web passes the app's, which tests point at their own server)."""
    from workers.context import settings as from_env
    from workers.redis_conn import redis_url

    return _client(redis_url(settings or from_env()))


def dispatch(effects: Iterable[Effect], *, connection: Redis | None = None,
             settings: Settings | None = None) -> int:
    """Queue each effect's job; returns how many were queued. Failures are logged, not raised.

    Redis is reached only when there is something to queue, so a use case without effects never
    starts (or waits for) the embedded server.
    """
    queued = 0
    for effect in effects:
        enqueue = JOBS.get(effect.job)
        if enqueue is None:  # a programming error: fail loudly in tests, never silently drop
            raise KeyError(f"unknown effect job {effect.job!r}; known: {', '.join(sorted(JOBS))}")
        try:
            connection = connection or redis_client(settings)
            enqueue(connection, effect)
            queued += 1
        except Exception:
            log.warning("could not queue %s ids=%s; the sweep or a retry will queue it", effect.job,
                        list(effect.ids)[:20], exc_info=True)
    return queued


def commit_and_dispatch(session: Session, result: object = None, *,
                        effects: Iterable[Effect] = ()) -> int:
    """Commit the unit of work, then queue the effects `result` carries (and any given)."""
    session.commit()
    return dispatch((*effects_of(result), *effects))
