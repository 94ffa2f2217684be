"""RQ entry points: thin functions that take ids, open a unit of work and call one service."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from correspondence.models import Message, MessageStatus, utcnow
from intake.pipeline import Rules, process_message
from workers import context
from workers.queues import enqueue_process
from workers.redis_conn import connect

log = logging.getLogger(__name__)


def run_process_message(message_id: int) -> str:
    """Process one stored message. Idempotent: a processed message is left unchanged."""
    with context.database().unit_of_work() as session:
        message = process_message(session, message_id, rules=Rules.from_settings(context.settings()))
        status = message.status.value
    log.info("processed message_id=%s status=%s", message_id, status)
    return status


def find_unfinished(session, older_than: timedelta) -> list[int]:  # type: ignore[no-untyped-def]
    """Messages stored but never processed, older than the grace period."""
    cutoff = utcnow() - older_than
    return list(session.scalars(
        select(Message.id).where(Message.processed_at.is_(None), Message.created_at < cutoff,
                                 Message.status != MessageStatus.QUARANTINED)
        .order_by(Message.id).limit(10_000)
    ))


def _stalled_office_jobs(session, older_than: timedelta) -> tuple[list[int], list[int]]:  # type: ignore[no-untyped-def]
    """CSV imports and reports that were queued or running and never finished (a lost job)."""
    from correspondence.models import ConstituentImport, ReportRun

    cutoff = utcnow() - older_than
    imports = list(session.scalars(select(ConstituentImport.id).where(
        ConstituentImport.state.in_(("queued", "running")), ConstituentImport.created_at < cutoff)))
    reports = list(session.scalars(select(ReportRun.id).where(
        ReportRun.state.in_(("queued", "running")), ReportRun.created_at < cutoff)))
    return imports, reports


def run_import(import_id: int) -> dict[str, int]:
    """Import a mapped CSV of constituents (resumable; see constituents.imports)."""
    from constituents.imports import run_import as execute

    imp = execute(context.database(), import_id)
    return {"created": imp.created, "matched": imp.matched, "bad": imp.bad}


def run_report(run_id: int) -> str:
    """Compute a long activity report with progress."""
    from insight.reports import execute

    execute(context.database(), run_id)
    return "done"


def run_sweep() -> int:
    """Re-enqueue anything left unfinished. Idempotent: enqueueing by message id is deduplicated."""
    settings = context.settings()
    with context.database().unit_of_work() as session:
        ids = find_unfinished(session, timedelta(minutes=settings.sweep_after_minutes))
    from drafting.send import stalled
    from workers.queues import enqueue_apply, enqueue_import, enqueue_report, enqueue_send

    with context.database().unit_of_work() as session:
        runs, queued, dead = stalled(session, timedelta(minutes=settings.sweep_after_minutes))
        imports, reports = _stalled_office_jobs(session, timedelta(minutes=settings.sweep_after_minutes))
    redis = connect(settings)
    if not settings.smtp_host:
        # Without an SMTP server the letters wait, queued; sending jobs would only fail. One line per sweep.
        with context.database().unit_of_work() as session:
            from drafting.apply import waiting_emails

            waiting = waiting_emails(session)
        if waiting:
            log.warning("email sending is not set up: %d letters waiting (set MAILROOM_SMTP_HOST)", waiting)
        queued, dead = [], []
    for message_id in ids:
        enqueue_process(redis, message_id)
    for run_id in runs:
        enqueue_apply(redis, run_id)
    for import_id in imports:
        enqueue_import(redis, import_id)
    for report_id in reports:
        enqueue_report(redis, report_id)
    # Sending is idempotent per response, so a chunk queued twice sends nothing twice; a dead
    # attempt is turned "uncertain" by the send job itself when it finds it.
    pending = queued + dead
    for start in range(0, len(pending), 100):
        enqueue_send(redis, pending[start:start + 100])
    log.info("sweep re-enqueued messages=%d runs=%d responses=%d", len(ids), len(runs), len(pending))
    return len(ids) + len(runs) + len(pending)


def _bounce_store(settings, account):  # type: ignore[no-untyped-def]
    """The bounce mailbox's messages go to the bounce intake, not the inbox (MAILROOM_IMAP_ACCOUNTS "purpose")."""
    if account.purpose != "bounces":
        return None
    from outbound.bounces import BouncePolicy, import_reports

    policy = BouncePolicy(settings.secret_key, settings.soft_bounce_limit)
    return lambda db, items, source: import_reports(db, items, source=source, policy=policy)


def run_poll_imap() -> dict[str, int]:
    """Poll every configured IMAP account. Idempotent: stored messages are found again by their key."""
    from intake.imap import accounts_from_db, accounts_from_json, poll_account

    settings = context.settings()
    with context.database().unit_of_work() as session:
        accounts = accounts_from_json(settings.imap_accounts_json) + accounts_from_db(session, settings.secret_key)
    totals: dict[str, int] = {}
    for account in accounts:
        try:
            result = poll_account(context.database(), account, max_bytes=settings.max_message_bytes,
                                  rules=Rules.from_settings(settings), store=_bounce_store(settings, account))
            totals[account.name] = (sum(result.folders.values()) if account.purpose == "bounces"
                                  else result.summary.received)
        except Exception:
            # One unreachable mailbox must not stop the others; the next poll tries again.
            log.exception("imap poll failed account=%s", account.name)
            totals[account.name] = -1
    return totals


def run_recluster() -> dict[str, float | int]:
    """Cluster the unbatched pool into campaign batches. One run at a time (a Redis lock).

    Idempotent: it only places messages that have no batch, so a second run finds nothing new.
    """
    from batching.batches import recluster

    redis = connect(context.settings())
    lock = redis.lock("mailroom:lock:recluster", timeout=1800, blocking=False)
    if not lock.acquire():
        log.info("recluster already running; skipped")
        return {"skipped": 1}
    try:
        with context.database().unit_of_work() as session:
            return recluster(session).as_dict()
    finally:
        lock.release()


def run_apply(run_id: int) -> dict[str, int]:
    """Apply an approved letter to a run's messages, queue the emails, build the print file."""
    from datetime import date

    from correspondence.services.blobs import store_blob
    from drafting.apply import execute_run, office_of
    from drafting.printing import letters_pdf, print_responses
    from workers.queues import enqueue_send

    settings = context.settings()
    redis = connect(settings)

    def enqueue_email(ids: list[int]) -> None:
        if not settings.smtp_host:
            return  # no server to send through: the letters wait queued, and the sweeper says so once per sweep
        for start in range(0, len(ids), 100):
            enqueue_send(redis, ids[start:start + 100])

    def build_print(session, run):  # type: ignore[no-untyped-def]
        items = print_responses(session, run)
        if not items:
            return None
        pdf = letters_pdf(items, office_of(settings), date.today().strftime("%B %-d, %Y"))
        return store_blob(session, pdf, "application/pdf")

    run = execute_run(context.database(), run_id, settings, enqueue_email=enqueue_email, build_print=build_print)
    return {"letters": run.created_count, "people": run.people, "covered": run.covered, "closed": run.closed,
            "skipped": run.skipped}


def run_send(response_ids: list[int]) -> dict[str, int]:
    """Send a chunk of email responses; letters the server asked us to retry make the job retry."""
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
    """Retrain the topic/stance suggester on everything coded so far, then refresh open mail's suggestions.

    Scheduled daily and on demand; with too little coded mail it says so and changes nothing.
    """
    from coding.suggest import prune_versions, rescore_open, train
    from correspondence.errors import ValidationFailed

    settings = context.settings()
    try:
        with context.database().unit_of_work() as session:
            model = train(session, actor_id=actor_id or None)
            version, metrics = model.version, model.metrics
            dropped = prune_versions(session)
    except ValidationFailed as exc:
        log.info("topic model not trained: %s", exc)
        return {"trained": False, "reason": str(exc)}
    store = context.database().blobs
    for digest in dropped:  # after the commit: a row never points at a missing file
        if store is not None:
            store.remove(digest)
    with context.database().unit_of_work() as session:
        scored, applied = rescore_open(session, autocode=settings.autocode_confidence)
    return {"trained": True, "version": version, "metrics": metrics, "rescored": scored, "applied": applied}


def run_analytics(_unused: int = 0) -> dict[str, float]:
    """Recompute the dashboard's analytics snapshot (every five minutes)."""
    from insight.analytics import refresh

    with context.database().unit_of_work() as session:
        snapshot = refresh(session)
        return {"seconds": snapshot.seconds}


def run_prune_login_attempts() -> int:
    """Daily: drop sign-in attempts older than the throttle looks at. Idempotent."""
    from correspondence.services.staff import prune_login_attempts

    with context.database().unit_of_work() as session:
        return prune_login_attempts(session)


def run_case_reminders() -> dict[str, int]:
    """Daily: email each caseworker the steps due or overdue (the Cases page shows the same list)."""
    from email.message import EmailMessage

    from casework.reminders import due_steps, reminder_text
    from correspondence.models import Staffer
    from correspondence.services.audit import record
    from drafting.headers import header_text
    from drafting.send import TryLater
    from drafting.send import connect as smtp_connect

    settings = context.settings()
    sent = 0
    with context.database().unit_of_work() as session:
        due = due_steps(session)
        if not due:
            return {"caseworkers": 0, "emailed": 0}
        client = None
        try:
            client = smtp_connect(settings) if settings.smtp_host else None
        except TryLater:
            log.warning("case reminders: SMTP unreachable; the Cases page still shows what is due")
        for staffer_id, steps in due.items():
            staffer = session.get(Staffer, staffer_id)
            if staffer is None or not staffer.active or client is None:
                continue
            email = EmailMessage()
            email["From"], email["To"] = header_text(settings.mail_from), header_text(staffer.email)
            email["Subject"] = header_text(f"{len(steps)} case steps due or overdue")
            email.set_content(reminder_text(staffer.name, steps, f"http://{settings.bind}"))
            client.send_message(email)
            sent += 1
            record(session, actor_id=None, action="case.reminder", object_type="staffer", object_id=staffer.id,
                   after={"steps": len(steps)})
        if client is not None:
            client.quit()
    return {"caseworkers": len(due), "emailed": sent}


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
    client = smtp_connect(settings)  # TryLater fails the job; the case page offers "send again"
    try:
        client.send_message(email)
    finally:
        client.quit()
    log.info("help confirmation sent request_id=%s", request_id)
    return "sent"


def run_notice_emails(staffer_id: int) -> int:
    """Email a staffer the notices they have not been emailed yet (fresh and unread ones only).

    Each notice is marked emailed after the server accepts it, in its own commit; a crash between the
    two sends that one again on the next run (notices need not be exactly-once, and are never lost:
    the in-app notice is the record). An unreachable server raises, so RQ keeps the failed job.
    """
    from email.message import EmailMessage

    from correspondence.services.notices import mark_emailed, unsent_emails
    from drafting.headers import header_text
    from drafting.send import connect as smtp_connect

    settings = context.settings()
    if not settings.smtp_host:
        return 0
    with context.database().unit_of_work() as session:
        pending = [(n.id, n.text, n.link, s.email, s.name) for n, s in unsent_emails(session, staffer_id)]
    if not pending:
        return 0
    client = smtp_connect(settings)
    sent = 0
    try:
        for notice_id, text, link, address, name in pending:
            email = EmailMessage()
            email["From"], email["To"] = header_text(settings.mail_from), header_text(address)
            email["Subject"] = header_text(f"Mailroom: {text}"[:150])
            email.set_content(f"{name},\n\n{text}\n\n{settings.base_url}{link}\n\n"
                              "(Also on your Notices page in Mailroom.)\n")
            client.send_message(email)
            with context.database().unit_of_work() as session:
                mark_emailed(session, notice_id)
            sent += 1
    finally:
        client.quit()
    log.info("notice emails sent staffer_id=%s count=%s", staffer_id, sent)
    return sent
