"""RQ entry points: load ids → one use case → commit → queue its effects.

Most jobs are `@job` four-liners: the wrapper opens the unit of work, the body calls one use case with
the ids, the wrapper commits and then dispatches the effects the use case returned (never before the
commit, so a job never sees a transaction that did not happen). Jobs take ids, are idempotent, and may
run twice (DESIGN invariant 2); each docstring says why running it twice is safe.

Long, resumable work (apply to all, CSV imports, reports, sending) commits in chunks inside its service
— a crash keeps every finished chunk, and sending commits each attempt before SMTP is touched — so those
entry points hand the service the database instead of one session.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from sqlalchemy.orm import Session

from correspondence.effects import Done, Effect, effects_of
from correspondence.models import utcnow
from intake.pipeline import Rules, process_message
from workers import context
from workers.effects import dispatch, redis_client

log = logging.getLogger(__name__)

R = TypeVar("R")
P = ParamSpec("P")


# A use case returns either its value or `Done(value, effects)`; the entry point returns the value. Two
# overloads (a `R | Done[R]` parameter would leave R unsolvable when `work` returns a Done), the Done one
# first; `work`'s parameters after the session are the entry point's.
@overload
def job(work: Callable[Concatenate[Session, P], Done[R]]) -> Callable[P, R]: ...
@overload
def job(work: Callable[Concatenate[Session, P], R]) -> Callable[P, R]: ...
def job(work: Callable[Concatenate[Session, P], Any]) -> Callable[P, Any]:
    """Make `work(session, *ids)` an RQ entry point taking `*ids`: one unit of work that commits (or
    rolls back and raises, so RQ keeps the failed job), then the effects it returned are queued.

    The job's result (kept by RQ for an hour) is the use case's value.
    """

    @functools.wraps(work)
    def entry(*args: P.args, **kwargs: P.kwargs) -> Any:
        with context.database().unit_of_work() as session:
            result = work(session, *args, **kwargs)
        dispatch(effects_of(result))
        return result.value if isinstance(result, Done) else result

    return entry


@job
def run_process_message(session: Session, message_id: int) -> str:
    """Process one stored message. Idempotent: a processed (or quarantined) message is left unchanged."""
    message = process_message(session, message_id, rules=Rules.from_settings(context.settings()))
    log.info("processed message_id=%s status=%s", message_id, message.status.value)
    return message.status.value


def run_import(import_id: int) -> dict[str, int]:
    """Import a mapped CSV of constituents; resumable (chunks commit with the import's progress, and a
    second run continues after the last one), see constituents.imports."""
    from constituents.imports import run_import as execute

    imp = execute(context.database(), import_id)
    return {"created": imp.created, "matched": imp.matched, "bad": imp.bad}


def run_report(run_id: int) -> str:
    """Compute a long activity report with progress. Idempotent: a finished report is left alone."""
    from insight.reports import execute

    execute(context.database(), run_id)
    return "done"


def run_retention(run_id: int) -> str:
    """A retention run or dry run (archive.retention.execute). Idempotent: a finished run is left alone, and a
    run picked up again removes only what is still there."""
    from archive.retention import execute

    execute(context.database(), run_id)
    return "done"


def run_subject_access(export_id: int) -> str:
    """Build one subject access ZIP (archive.rights.build_access). Idempotent: a finished export is left alone."""
    from archive.rights import build_access

    build_access(context.database(), export_id)
    return "done"


@job
def run_sweep(session: Session) -> Done[int]:
    """Queue again whatever was left unfinished (lost jobs, a flushed Redis, letters the server deferred).

    Idempotent: every job it queues is, and queueing a waiting message, run or import again is a no-op.
    """
    settings = context.settings()
    age = timedelta(minutes=settings.sweep_after_minutes)
    return _sweep(session, older_than=age, can_send=bool(settings.smtp_host))


def _sweep(session: Session, *, older_than: timedelta, can_send: bool) -> Done[int]:
    from constituents.imports import restart_stalled_imports
    from drafting.send import restart_stalled
    from insight.reports import restart_stalled_reports
    from intake.receive import requeue_unfinished

    parts = Done.gather((requeue_unfinished(session, older_than=older_than),
                         restart_stalled(session, older_than=older_than, can_send=can_send),
                         restart_stalled_imports(session, older_than=older_than),
                         restart_stalled_reports(session, older_than=older_than)))
    messages, outbound, imports, reports = parts.value
    log.info("sweep re-enqueued messages=%d runs_and_letters=%d imports=%d reports=%d",
             messages, outbound, imports, reports)
    from archive.export_runs import restart_stalled_exports

    exports = restart_stalled_exports(session, older_than=older_than)
    return Done(sum(parts.value) + exports.value, (*parts.effects, *exports.effects))


def _bounce_store(settings, account):
    """The bounce mailbox's messages go to the bounce intake, not the inbox (MAILROOM_IMAP_ACCOUNTS "purpose")."""
    if account.purpose != "bounces":
        return None
    from outbound.bounces import BouncePolicy, import_reports

    policy = BouncePolicy(settings.secret_key, settings.soft_bounce_limit)
    return lambda db, items, source: import_reports(db, items, source=source, policy=policy)


def run_poll_imap() -> dict[str, int]:
    """Poll every configured IMAP account (intake.imap.poll_all). Idempotent: stored messages are found
    again by their key, and a message is acknowledged on the server only after its commit."""
    from archive.closing import closed_successor
    from intake.imap import poll_all

    settings = context.settings()
    accounts_json = settings.imap_accounts_json
    with context.database().unit_of_work() as session:
        closed = closed_successor(session) is not None
    if closed:
        # The office has closed (archive.closing): no mailbox is polled, not even one turned on again or set in
        # the environment, except the bounce mailbox, which still hears about the closing auto-replies.
        accounts_json = json.dumps([a for a in json.loads(accounts_json or "[]")
                                    if isinstance(a, dict) and a.get("purpose") == "bounces"])
    return poll_all(context.database(), accounts_json=accounts_json, secret_key=settings.secret_key,
                    max_bytes=settings.max_message_bytes, rules=Rules.from_settings(settings),
                    store_for=lambda account: _bounce_store(settings, account), include_db=not closed)


def run_recluster() -> dict[str, float | int]:
    """Cluster the unbatched pool into campaign batches. One run at a time (a Redis lock).

    Idempotent: it only places messages that have no batch, so a second run finds nothing new.
    """
    lock = redis_client().lock("mailroom:lock:recluster", timeout=1800, blocking=False)
    if not lock.acquire():
        log.info("recluster already running; skipped")
        return {"skipped": 1}
    try:
        return _recluster()
    finally:
        lock.release()


@job
def _recluster(session: Session) -> dict[str, float | int]:
    from batching.batches import recluster

    # The pool is read and clustered in a session that takes no write lock, and the batches are written in
    # commits of 50 groups: clustering a big pool (a flood day, an imported history) held SQLite's write lock
    # for longer than every other writer waits, and intake and staff got "database is locked" (bench/load.py).
    days = context.settings().recluster_days
    since = utcnow() - timedelta(days=days) if days else None
    with context.reader().sessions() as read:
        return recluster(session, read=read, checkpoint=session.commit, since=since).as_dict()


def run_apply(run_id: int) -> dict[str, int]:
    """Apply an approved letter to a run's messages (a chunk of people per transaction), queue each
    chunk's emails after its commit, and build the print file. Resumable and safe to run twice (see
    drafting.apply.execute_run)."""
    from datetime import date

    from drafting.apply import execute_run, office_of, print_file

    settings = context.settings()

    def send(ids: list[int]) -> None:
        # Without a server the letters wait, queued, and the sweeper says so once per sweep.
        if settings.smtp_host:
            dispatch((Effect.of("send", *ids),))

    run = execute_run(context.database(), run_id, settings, enqueue_email=send,
                      build_print=lambda session, run: print_file(session, run, office_of(settings), date.today()))
    return {"letters": run.created_count, "people": run.people, "covered": run.covered, "closed": run.closed,
            "skipped": run.skipped}


def run_send(response_ids: list[int]) -> dict[str, int]:
    """Send a chunk of email responses, each at most once (drafting.send).

    Letters the server deferred (4xx, or unreachable) stay "queued" and fail this job, which RQ keeps
    with the reason; no RQ retry is attached: the sweep queues letters still "queued" again.
    """
    from drafting.send import TryLater, send_responses

    settings = context.settings()
    if not settings.smtp_host:
        # Not an error to retry with tracebacks: the letters stay queued until an SMTP server is set up,
        # and the sweeper (which logs one line about it) sends them then.
        return {"sent": 0, "waiting": len(response_ids)}
    result = send_responses(context.database(), response_ids, settings)
    if result.retry:
        raise TryLater(f"{len(result.retry)} letters to retry")
    return {"sent": result.sent, "failed": result.failed, "uncertain": result.uncertain, "skipped": result.skipped}


def run_train_topics(actor_id: int = 0) -> dict[str, object]:
    """Retrain the topic/stance suggester and refresh open mail's suggestions (coding.suggest.retrain).

    Scheduled daily and on demand; with too little coded mail it says so and changes nothing.
    """
    from coding.suggest import retrain

    return retrain(context.database(), actor_id=actor_id or None, autocode=context.settings().autocode_confidence,
                   reader=context.reader())


@job
def run_analytics(session: Session, _unused: int = 0) -> dict[str, float]:
    """Recompute the dashboard's analytics snapshot (every five minutes). Idempotent: it replaces it."""
    from insight.analytics import refresh

    # Counted through a reader: on SQLite the job's own session would hold the write lock while it counts.
    with context.reader().sessions() as read:
        return {"seconds": refresh(session, read=read).seconds}


@job
def run_prune_login_attempts(session: Session) -> int:
    """Daily: drop sign-in attempts older than the throttle looks at. Idempotent."""
    from correspondence.services.staff import prune_login_attempts

    return prune_login_attempts(session)


@job
def run_case_reminders(session: Session) -> dict[str, int]:
    """Daily: email each caseworker the steps due or overdue (casework.reminders.remind_due_cases).

    Scheduled once a day by a claimed slot; run twice, a caseworker gets the same reminder twice.
    """
    from casework.reminders import remind_due_cases
    from correspondence.models import utcnow
    from drafting.send import SmtpConfig

    settings = context.settings()
    return remind_due_cases(session, now=utcnow(), mail=SmtpConfig.of(settings), base_url=settings.base_url).as_dict()


def run_help_confirmation_by_staff(request_id: int) -> str:
    """A caseworker's "send again": the same as the automatic link, without the per-address cap."""
    return run_help_confirmation(request_id, by_staff=True)


def run_help_confirmation(request_id: int, by_staff: bool = False) -> str:
    """Email a help request's one-time link. The link is made and committed (as a hash) before SMTP is
    touched; a second run makes a new link that replaces the first, so at most one link ever works."""
    from casework.help_requests import confirmation_email, issue_confirmation
    from correspondence.models import utcnow
    from drafting.send import connect as smtp_connect

    settings = context.settings()
    with context.database().unit_of_work() as session:
        issued = issue_confirmation(session, request_id, now=utcnow(), by_staff=by_staff)
        if issued is None:
            return "nothing to confirm"
        request, token = issued
        email = confirmation_email(request, f"{settings.base_url}/help/confirm/{token}",
                                   office_name=settings.office_name, mail_from=settings.mail_from)
    # TryLater fails the job; the case page offers "send again".
    client = smtp_connect(settings, store=context.database())
    try:
        client.send_message(email)
    finally:
        client.quit()
    log.info("help confirmation sent request_id=%s", request_id)
    return "sent"


def run_notice_emails(staffer_id: int) -> int:
    """Email a staffer their new notices (drafting.send.email_notices). Run twice, it sends only what the
    first run had not marked emailed."""
    from drafting.send import SmtpConfig, email_notices

    settings = context.settings()
    return email_notices(context.database(), staffer_id, mail=SmtpConfig.of(settings), base_url=settings.base_url)


@job
def run_closing_auto_replies(session: Session) -> Done[int]:
    """Every minute once the office has closed: one "this office has closed" email per new sender
    (archive.closing.queue_auto_replies). Idempotent: an answered sender is kept (by address hash) and skipped."""
    from archive.closing import queue_auto_replies

    settings = context.settings()
    return queue_auto_replies(session, office_name=settings.office_name, mail_domain=settings.mail_domain)


def run_closing_step(actor_id: int, step: str, dest: str = "") -> dict[str, Any]:
    """A long closing step queued by the closing page: the final export, the hand-over or the purge
    (archive.closing.run_step). Run twice: an export into a folder already written refuses (not empty), and a
    second purge finds the data purged and refuses; each records its outcome on the closing record."""
    from pathlib import Path

    from archive.closing import run_step

    return run_step(context.database(), step, actor_id=actor_id or None, dest=Path(dest) if dest else None,
                    office_name=context.settings().office_name)


@job
def run_newsletter(session: Session, newsletter_id: int) -> Done[int]:
    """Make a newsletter's pieces and start its apply run (outbound.newsletters.prepare). Safe to run twice:
    the pieces are keyed by newsletter and subscriber, and a newsletter that has its run is left alone."""
    from outbound.franking import Rules as FrankingRules
    from outbound.newsletters import prepare

    done = prepare(session, newsletter_id, rules=FrankingRules.of(context.settings()), checkpoint=session.commit)
    return Done(done.value.run_id or 0, done.effects)


def run_subscription_confirmation(subscription_id: int) -> str:
    """Email a public sign-up its confirmation link. Running it twice sends a second link; both work (each
    only confirms that one sign-up) until they expire, so a retry does no harm."""
    from email.message import EmailMessage

    from correspondence.models import Subscription, SubscriptionList, SubscriptionStatus
    from drafting.headers import header_text
    from drafting.send import connect as smtp_connect
    from outbound.subscriptions import confirm_token, confirmation_text
    from outbound.suppression import blocks, suppressed

    settings = context.settings()
    with context.database().unit_of_work() as session:
        found = session.get(Subscription, subscription_id)
        if found is None or found.status != SubscriptionStatus.PENDING:
            return "nothing to confirm"
        # Anyone can type an address into the sign-up page: one that reported our mail as spam or bounced
        # gets no email at all (outbound.suppression), this one included.
        held = suppressed(session, [found.address]).get(found.address)
        if held is not None and blocks(held.reason, follow_up=False):
            log.info("subscription confirmation not sent (address suppressed) subscription_id=%s", subscription_id)
            return "suppressed"
        chosen = session.get_one(SubscriptionList, found.list_id)
        token = confirm_token(found.id, secret_key=settings.secret_key)
        subject, body = confirmation_text(chosen.name, f"{settings.base_url}/subscribe/confirm/{token}")
        address = found.address
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = header_text(settings.mail_from), address, header_text(subject)
    email.set_content(body)
    # TryLater fails the job (RQ keeps it); the person can sign up again.
    client = smtp_connect(settings, store=context.database())
    try:
        client.send_message(email)
    finally:
        client.quit()
    log.info("subscription confirmation sent subscription_id=%s", subscription_id)
    return "sent"


def run_backup() -> dict[str, object]:
    """The daily backup, when MAILROOM_BACKUP_DIR is set (otherwise nothing). Running it twice makes a second
    snapshot of the same day; retention keeps the newest of each day, and blob files are never copied twice."""
    from archive.backup import Retention, back_up

    settings = context.settings()
    if settings.backup_dir is None:
        return {"skipped": "MAILROOM_BACKUP_DIR is not set"}
    done = back_up(context.database(), settings.backup_dir,
                   Retention(settings.backup_keep_daily, settings.backup_keep_weekly), made_by="schedule")
    log.info("backup snapshot=%s bytes=%s pruned=%d", done.manifest["snapshot"], done.manifest["size_bytes"],
             len(done.pruned))
    return {"snapshot": done.manifest["snapshot"], "size_bytes": done.manifest["size_bytes"], "pruned": done.pruned}


def run_expire_downloads() -> dict[str, int]:
    """Daily: delete the export files and subject access ZIPs made more than 30 days ago (archive.downloads).
    Idempotent: an expired one has no file left to expire."""
    from archive.downloads import delete_files, expire_downloads

    with context.database().unit_of_work() as session:
        expired = expire_downloads(session)
    deleted = delete_files(context.settings().instance_dir / "exports", expired.files)  # after the commit
    return {"exports": expired.exports, "access_zips": expired.access_zips, "files_deleted": deleted}


def run_export(run_id: int) -> str:
    """An admin's "Export all data". Idempotent: a finished export is left alone, an interrupted one restarts."""
    from archive.export_runs import execute_export

    execute_export(context.database(), run_id, context.settings().instance_dir / "exports")
    return "done"


def run_webhooks(_unused: int = 0) -> dict[str, int]:
    """Every 30 seconds (and after "Send a test event"): deliver the due rows of the webhook outbox
    (outbound.webhooks.deliver_due). Safe to run twice at once: each row is claimed (leased) in a committed
    transaction before it is sent, and PostgreSQL skips rows another sweep holds."""
    from outbound.webhooks import deliver_due

    return deliver_due(context.database(), secret_key=context.settings().secret_key)


def run_prune_webhooks() -> dict[str, int]:
    """Daily: delete webhook outbox rows delivered more than MAILROOM_WEBHOOK_KEEP_DELIVERED_DAYS ago or failed
    more than MAILROOM_WEBHOOK_KEEP_FAILED_DAYS ago (outbound.webhooks.prune_deliveries), in short chunks,
    each audited. Idempotent: a second run finds nothing old enough."""
    from outbound.webhooks import prune_deliveries

    settings = context.settings()
    return prune_deliveries(context.database(), delivered_days=settings.webhook_keep_delivered_days,
                            failed_days=settings.webhook_keep_failed_days)
