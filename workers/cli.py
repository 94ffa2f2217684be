"""The `mailroom` command: a Flask CLI group with init, run, worker, scheduler, demo, staff, export, restore,
verify and retention."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, overload

import click
from flask.cli import FlaskGroup

from config import Settings
from correspondence.effects import Done, effects_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

R = TypeVar("R")
P = ParamSpec("P")

# correspondence.models.staffer.STAFF_ROLES by value, least privileged first (the first is the default);
# spelled out so `mailroom --help` need not import the models (tests/test_safe_defaults.py checks they agree).
ROLE_CHOICES = ("correspondent", "caseworker", "supervisor", "admin")


def _create_app():  # type: ignore[no-untyped-def]
    from web import create_app

    return create_app(Settings.from_env())


def _logging() -> None:
    logging.basicConfig(level=os.environ.get("MAILROOM_LOG_LEVEL", "INFO"),
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")


class _PrivateFilesGroup(FlaskGroup):
    """Every command (demo, import, ...) creates files only Mailroom's own user can read (umask 077);
    init, run and worker also tighten what already exists (workers.setup.protect_instance)."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        from workers.setup import PRIVATE_UMASK

        os.umask(PRIVATE_UMASK)
        return super().invoke(ctx)


cli = _PrivateFilesGroup(create_app=_create_app, add_default_commands=False,
                         help="Mailroom: constituent correspondence and casework.")

# How long a writing command waits, in all, for the write lock of an embedded (SQLite) database that
# the running app, a worker or an import holds; each try already waits busy_timeout (30 s) itself.
LOCK_WAIT_SECONDS = 300


def _writer(settings: Settings):  # type: ignore[no-untyped-def]
    """A database for a command that writes, beside a running app in the embedded mode.

    Transactions start with BEGIN IMMEDIATE: a deferred one that read first could not take the write
    lock after another process committed ("database is locked" at once, SQLite cannot upgrade a stale
    snapshot); an immediate one waits its turn (busy_timeout) instead.
    """
    from correspondence.db import Database

    return Database.from_settings(settings, immediate=True)


def _locked(exc: BaseException) -> bool:
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def _waiting_for_lock(work, *, waited_for: float = LOCK_WAIT_SECONDS):  # type: ignore[no-untyped-def]
    """Run work(); while the database stays locked longer than busy_timeout, say so and try again."""
    deadline = time.monotonic() + waited_for
    while True:
        try:
            return work()
        except Exception as exc:
            if not _locked(exc) or time.monotonic() > deadline:
                raise
            click.echo("The database is busy (the running app or an import is writing); waiting…", err=True)
            time.sleep(1)


# The exit code of a command whose use case refused (a DomainError: not found, not allowed, not valid).
# Click's own usage errors exit 2; anything unexpected exits 1 with a traceback, like any crash.
REFUSED = 1


class Refused(click.ClickException):
    """A use case said no: "Error: <its reason>" on stderr and exit code REFUSED, no traceback."""

    exit_code = REFUSED


# Typed as workers.jobs.job is: the Done overload first, the command gets the value.
@overload
def use_case(work: Callable[Concatenate[Session, P], Done[R]]) -> Callable[P, R]: ...
@overload
def use_case(work: Callable[Concatenate[Session, P], R]) -> Callable[P, R]: ...
def use_case(work: Callable[Concatenate[Session, P], Any]) -> Callable[P, Any]:
    """The CLI boundary: `work(session, ...)` runs in one unit of work of the database the environment
    names (waiting its turn for the embedded database's write lock), commits, then the effects it
    returned are queued; the command gets the use case's value. A DomainError rolls back and becomes
    `Refused` (its message, exit code REFUSED).
    """

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> Any:
        from correspondence.errors import DomainError
        from workers.effects import dispatch

        settings = Settings.from_env()
        db = _writer(settings)

        def once() -> Any:
            with db.unit_of_work() as session:
                return work(session, *args, **kwargs)

        try:
            result = _waiting_for_lock(once)
        except DomainError as exc:
            raise Refused(str(exc)) from exc
        finally:
            db.dispose()
        dispatch(effects_of(result), settings=settings)
        return result.value if isinstance(result, Done) else result

    return run


def _frame(lines: list[str]) -> str:
    """Lines in a box, so the one thing to copy stands out at the end of pages of output."""
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line.ljust(width)} |" for line in lines), rule])


@cli.command("init", with_appcontext=False)
@click.option("--admin-email", default="admin@mailroom.local", show_default=True)
@click.option("--admin-name", default="Office Administrator", show_default=True)
def init_command(admin_email: str, admin_name: str) -> None:
    """Create or migrate the database; on a new database, create the first admin account."""
    from workers.setup import initialise, protect_instance

    settings = Settings.from_env()
    protect_instance(settings)
    result = _waiting_for_lock(lambda: initialise(settings, admin_email=admin_email, admin_name=admin_name))
    if result.one_time_password:
        # Printed last and framed: `make run` shows it after everything else, where nobody misses it.
        click.echo("Database created.")
        click.echo(_frame([f"Admin account:     {result.admin_email}",
                           f"One-time password: {result.one_time_password}",
                           "Sign in with it; you choose your own password at once."]))
    else:
        click.echo("Database is up to date.")


@cli.command("run", with_appcontext=False)
@click.option("--workers", default=2, show_default=True, help="RQ worker processes")
@click.option("--web-workers", default=2, show_default=True, help="gunicorn worker processes")
def run_command(workers: int, web_workers: int) -> None:
    """Start Redis (embedded unless REDIS_URL is set), RQ workers, the scheduler and the web server."""
    from workers.runner import Runner
    from workers.setup import initialise, protect_instance

    _logging()
    settings = Settings.from_env()
    protect_instance(settings)  # before Redis, workers and gunicorn start: they inherit the umask
    result = initialise(settings)
    if result.one_time_password:
        click.echo(_frame([f"Admin account:     {result.admin_email}",
                           f"One-time password: {result.one_time_password}"]))
    sys.exit(Runner(settings, workers=workers, web_workers=web_workers).serve_forever())


@cli.command("worker", with_appcontext=False)
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--fork", is_flag=True, help="Run each job in a fork of its own (for the long maintenance jobs).")
def worker_command(queues: tuple[str, ...], burst: bool, fork: bool) -> None:
    """Run an RQ worker on the given queues (all Mailroom queues by default).

    Jobs run in the worker's own process, which keeps the database connection and what the jobs load
    between them (workers/inprocess.py); with --fork each job runs in a fork of its own, which gives its
    memory back when it ends.
    """
    from rq import Worker

    import workers.jobs  # noqa: F401 - imported once here, so each forked job does not import it again
    from workers.inprocess import InProcessWorker
    from workers.queues import QUEUE_NAMES, get_queue
    from workers.redis_conn import connect
    from workers.setup import protect_instance

    _logging()
    settings = Settings.from_env()
    protect_instance(settings)
    connection = connect(settings)
    names = queues or QUEUE_NAMES
    worker_class = Worker if fork else InProcessWorker
    worker = worker_class([get_queue(n, connection) for n in names], connection=connection)
    # No RQ scheduler process: periodic jobs come from `mailroom scheduler`, and a forked RQ
    # scheduler would outlive a worker killed with SIGKILL.
    worker.work(burst=burst, with_scheduler=False, logging_level=os.environ.get("MAILROOM_LOG_LEVEL", "INFO"))


@cli.command("scheduler", with_appcontext=False)
@click.option("--interval", default=10.0, show_default=True, help="Seconds between checks.")
def scheduler_command(interval: float) -> None:
    """Enqueue periodic jobs (the sweeper and others) when they fall due."""
    from workers.queues import enqueue_due_periodic
    from workers.redis_conn import connect

    _logging()
    connection = connect(Settings.from_env())
    stop = False

    def _stop(*_args):  # type: ignore[no-untyped-def]
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop:
        enqueue_due_periodic(connection)
        for _ in range(int(interval * 10)):
            if stop:
                break
            time.sleep(0.1)


@cli.command("demo", with_appcontext=False)
@click.option("--messages", default=20000, show_default=True)
@click.option("--constituents", default=5000, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already holds messages.")
def demo_command(messages: int, constituents: int, seed: int, if_empty: bool) -> None:
    """Fill the database with a believable demo office."""
    from demo.office import build_demo_office

    settings = Settings.from_env()
    db = _writer(settings)
    # Not retried as a whole: the demo is two transactions, and a second run would add a second office.
    summary = build_demo_office(db, settings.instance_dir, messages=messages, constituents=constituents,
                                seed=seed, if_empty=if_empty)
    if summary.get("messages"):
        # The demo office's coded mail teaches a first topic model, so suggestions show from the start.
        from workers.jobs import run_train_topics

        summary["topic_model"] = run_train_topics()
    click.echo(json.dumps(summary, default=str))


@cli.group("import")
def import_group() -> None:
    """Import messages from files; prints a JSON summary accounting for every item."""


def _import(kind: str, paths: tuple[str, ...]) -> None:
    from correspondence.db import Database
    from intake.importer import import_items
    from intake.pipeline import Rules
    from intake.registry import file_adapter

    reader, adapter = file_adapter(kind)
    settings = Settings.from_env()
    db = Database.from_settings(settings, immediate=True, background=True)  # a bulk load lets staff go first
    summary = import_items(db, reader(paths), adapter, source=f"file:{kind}", max_bytes=settings.max_message_bytes,
                           rules=Rules.from_settings(settings))
    db.dispose()
    click.echo(json.dumps(summary.as_dict()))
    if summary.failed or summary.quarantined:
        # A script (cron, a migration from another system) must notice: every item is accounted for in
        # the summary above, and the quarantined ones wait for a person under Quarantine.
        click.echo(f"{summary.failed} item(s) failed and {summary.quarantined} were quarantined; "
                   "see the summary above.", err=True)
        sys.exit(1)


for _kind, _help in (("eml", "Import .eml files (directories are walked)."),
                     ("mbox", "Import mbox files, streaming."),
                     ("maildir", "Import Maildir folders (new/ and cur/)."),
                     ("cwc", "Import CWC 2.0 XML deliveries (files or directories)."),
                     ("social", "Import social media comment exports (CSV or JSON: author, handle, text, url, time)."),
                     ("scans", "Import scanned letters (PDF, PNG, JPEG, multi-page TIFF); OCR runs on images.")):
    def _make(kind: str):  # type: ignore[no-untyped-def]
        @click.argument("paths", nargs=-1, required=True, type=click.Path())
        def command(paths: tuple[str, ...]) -> None:
            _import(kind, paths)

        return command

    import_group.command(_kind, help=_help, with_appcontext=False)(_make(_kind))


@import_group.command("dsn", with_appcontext=False)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def import_dsn(paths: tuple[str, ...]) -> None:
    """Import bounce and complaint reports (.eml files, directories walked): mark addresses, quarantine the rest."""
    from pathlib import Path

    from correspondence.db import Database
    from outbound.bounces import BouncePolicy, import_reports

    settings = Settings.from_env()
    files = sorted(f for p in map(Path, paths) for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    db = Database.from_settings(settings, immediate=True, background=True)  # a bulk load lets staff go first
    summary = import_reports(db, ((str(f), f.read_bytes()) for f in files), source="file:dsn",
                             policy=BouncePolicy(settings.secret_key, settings.soft_bounce_limit))
    db.dispose()
    click.echo(json.dumps(summary.as_dict()))
    if summary.failed or summary.quarantined:
        click.echo(f"{summary.failed} report(s) failed and {summary.quarantined} were quarantined; "
                   "see the summary above.", err=True)
        sys.exit(1)


@import_group.command("history", with_appcontext=False)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--people", type=click.Path(exists=True, dir_okay=False),
              help="The same export's constituent CSV, when the history names people only by the vendor's key")
def import_history_command(path: str, people: str | None) -> None:
    """Import correspondence history from another system (CSV; columns in docs/vendor-import.md) onto the
    matched constituents' records; prints a JSON summary, exits 1 when a row could not be used."""
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from constituents.vendor_import import import_history
    from correspondence.db import Database
    from correspondence.errors import DomainError

    settings = Settings.from_env()
    db = Database.from_settings(settings, immediate=True)
    try:
        summary = import_history(db, Path(path).read_bytes(), source=f"history:{Path(path).name}"[:100],
                                 zone=ZoneInfo(settings.timezone),
                                 people=Path(people).read_bytes() if people else None)
    except DomainError as exc:
        raise Refused(str(exc)) from exc
    finally:
        db.dispose()
    click.echo(json.dumps(summary.as_dict()))
    if summary.bad:
        click.echo(f"{len(summary.bad)} row(s) could not be used; their lines and reasons are in the summary above.",
                   err=True)
        sys.exit(1)


@cli.group("mail")
def mail_group() -> None:
    """Outbound mail: deliverability checks and the advisory-opinion packet."""


@mail_group.command("check-dns", with_appcontext=False)
@click.argument("domain")
@click.option("--selector", default=None, help="DKIM selector (default: MAILROOM_DKIM_SELECTOR)")
@click.option("--nameserver", default=None, help="ask this name server (IP or IP:port) instead of the system's")
def mail_check_dns(domain: str, selector: str | None, nameserver: str | None) -> None:
    """Report the SPF, DKIM and DMARC records published for DOMAIN; exits 2 when DNS cannot be reached."""
    from outbound.dns import DnsUnreachable, check_domain, resolver_for

    selector = selector or os.environ.get("MAILROOM_DKIM_SELECTOR") or None
    try:
        findings = check_domain(domain, selector=selector, resolver=resolver_for(nameserver, lifetime=3.0))
    except DnsUnreachable as exc:
        click.echo(f"Could not check {domain}: {exc}. This machine may be offline; nothing was checked.", err=True)
        sys.exit(2)
    for f in findings:
        click.echo(f"{f.kind:6} {f.name}: {f.verdict}")
        if f.record:
            click.echo(f"       {f.record}")
    if not all(f.ok for f in findings):
        sys.exit(1)


@mail_group.command("packet", with_appcontext=False)
@click.argument("run_id", type=int)
@click.argument("folder", type=click.Path(file_okay=False))
def mail_packet(run_id: int, folder: str) -> None:
    """Write the advisory-opinion packet of run RUN_ID into FOLDER: message.eml and packet.pdf."""
    from outbound import franking
    from outbound.packet import build_packet, run_recipients

    settings = Settings.from_env()
    rules = franking.Rules.of(settings)

    @use_case
    def make(session):  # type: ignore[no-untyped-def]
        version_id, people, pieces = run_recipients(session, run_id)
        return build_packet(session, version_id, people, pieces=pieces, settings=settings, rules=rules,
                            today=rules.today())

    from pathlib import Path

    packet = make()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "message.eml").write_bytes(packet.eml)
    (out / "packet.pdf").write_bytes(packet.pdf)
    click.echo(f"Wrote {out / 'message.eml'} and {out / 'packet.pdf'} ({packet.filename}).")


@cli.command("poll-imap", with_appcontext=False)
def poll_imap_command() -> None:
    """Poll the IMAP accounts in MAILROOM_IMAP_ACCOUNTS once and print what each one stored."""
    from workers.jobs import run_poll_imap

    _logging()
    click.echo(json.dumps(run_poll_imap()))


@cli.group("batch")
def batch_group() -> None:
    """Campaign batching."""


@batch_group.command("run", with_appcontext=False)
def batch_run() -> None:
    """Cluster the unbatched messages now (the scheduler also does it every 15 minutes); prints a summary."""
    from batching.batches import recluster

    _logging()

    @use_case
    def cluster(session):  # type: ignore[no-untyped-def]
        return recluster(session).as_dict()

    click.echo(json.dumps(cluster()))


@batch_group.command("eval", with_appcontext=False)
@click.argument("file", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--out", type=click.Path(dir_okay=False), help="Write {id, batch} per row as JSONL.")
@click.option("--kind", "kinds", multiple=True,
              help="Score the evaluation set of this kind (bench/eval/KIND.jsonl); repeat for more. "
                   "With no FILE and no --kind, every kind.")
def batch_eval(file: str | None, out: str | None, kinds: tuple[str, ...]) -> None:
    """Cluster FILE (CSV or JSONL with text, optional label and id) exactly as production does, or the
    per-kind evaluation sets (one JSON line per kind); no database."""
    from pathlib import Path

    from batching.evalfile import evaluate_file, evaluate_kinds

    try:
        if file is None:
            for kind, result in evaluate_kinds(kinds).items():
                click.echo(json.dumps({"kind": kind, **result}))
            return
        if kinds:
            raise click.UsageError("give a FILE or --kind, not both")
        result = evaluate_file(Path(file), Path(out) if out else None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result))


@cli.group("topics")
def topics_group() -> None:
    """Topic and stance suggestions: train, evaluate, list and roll back model versions."""


@topics_group.command("train", with_appcontext=False)
def topics_train() -> None:
    """Train a new model version on everything coded so far and make it active; refresh open mail."""
    from workers.jobs import run_train_topics

    _logging()
    click.echo(json.dumps(run_train_topics(), default=str))


@topics_group.command("eval", with_appcontext=False)
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--folds", default=5, show_default=True)
@click.option("--sizes", default="25,50,100,200,400,800,1600,3200", show_default=True,
              help="Coded-example counts for the learning curve.")
@click.option("--stance", is_flag=True, help="Evaluate the stance model instead of topics (database only).")
def topics_eval(file: str | None, folds: int, sizes: str, stance: bool) -> None:
    """Cross-validated top-1/top-3 accuracy and a learning curve, on the database or FILE (CSV/JSONL: text, label)."""
    from coding.suggest import coded_examples, evaluate, read_labelled, stance_examples
    from correspondence.db import Database
    from correspondence.errors import ValidationFailed

    try:
        if file:
            texts, labels = read_labelled(file)
        else:
            db = Database.from_settings(Settings.from_env())
            with db.unit_of_work() as session:
                texts, labels = (stance_examples if stance else coded_examples)(session)
            db.dispose()
        steps = [int(n) for n in sizes.split(",") if n.strip()]
        result = evaluate(list(texts), list(labels), folds=folds, sizes=steps)
    except (ValidationFailed, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result.as_dict()))


@topics_group.command("list", with_appcontext=False)
def topics_list() -> None:
    """Model versions, newest first, with their held-out accuracy; * marks the active one."""
    from coding.suggest import versions
    from correspondence.db import Database

    db = Database.from_settings(Settings.from_env())
    with db.unit_of_work() as session:
        for v in versions(session):
            click.echo(f"{'*' if v.active else ' '} v{v.version}  {v.created_at:%Y-%m-%d %H:%M}  "
                       f"examples={v.examples} labels={v.labels} {json.dumps(v.metrics or {})}")
    db.dispose()


@topics_group.command("activate", with_appcontext=False)
@click.argument("version", type=int)
def topics_activate(version: int) -> None:
    """Make VERSION the active model (roll back a bad one)."""
    from coding.suggest import activate

    use_case(activate)(version, actor_id=None)
    click.echo(f"v{version} is active")


@cli.group("letters")
def letters_group() -> None:
    """Form letters: how well the suggested letter matches the office's own choices."""


@letters_group.command("eval", with_appcontext=False)
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--folds", default=5, show_default=True)
@click.option("--model", default=None, help="Model to evaluate (default: the one pages use).")
def letters_eval(file: str | None, folds: int, model: str | None) -> None:
    """Top-1/top-3 accuracy of the suggested letter by cross-validation, and a learning curve, on the office's
    history (read only) or on FILE (JSONL: {"text": ..., "letter": ...})."""
    from correspondence.errors import ValidationFailed
    from drafting.choose import DEFAULT_MODEL, evaluate, history, read_history_file, report_table

    try:
        if file:
            texts, labels = read_history_file(file)
        else:
            from sqlalchemy.orm import Session

            from correspondence.db import Database

            db = Database.from_settings(Settings.from_env())
            session = Session(bind=db.engine)
            try:
                texts, labels = history(session)
            finally:
                session.rollback()  # read only: nothing is ever written
                session.close()
                db.dispose()
        result = evaluate(texts, labels, folds=folds, model=model or DEFAULT_MODEL)
    except (ValidationFailed, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(report_table(result))
    click.echo(json.dumps(result.as_dict()))


@cli.group("mailbox")
def mailbox_group() -> None:
    """Mailboxes Mailroom polls (and may send as)."""


@mailbox_group.command("connect", with_appcontext=False)
@click.argument("name")
@click.option("--provider", type=click.Choice(["microsoft", "google", "generic"]), required=True,
              help="The app registration to use (MAILROOM_OAUTH_<PROVIDER>_CLIENT_ID).")
@click.option("--device-code", is_flag=True,
              help="Sign in on any other device with a code (for a server without a browser).")
@click.option("--username", default="", help="The mailbox's email address (a new mailbox only).")
@click.option("--host", default="", help="IMAP host (default: outlook.office365.com or imap.gmail.com).")
@click.option("--port", default="", help="IMAP port (default 993).")
@click.option("--security", type=click.Choice(["ssl", "starttls", "none"]), default="ssl", show_default=True)
@click.option("--folders", default="INBOX", show_default=True, help="Folders to poll, comma-separated.")
@click.option("--processed-folder", default="", help="Move stored mail here (default: flag it).")
def mailbox_connect(name: str, provider: str, device_code: bool, username: str, host: str, port: str,
                    security: str, folders: str, processed_folder: str) -> None:
    """Connect mailbox NAME (new, or one already added) with OAuth2: print the address and code to sign in
    with, wait until someone has, and keep the refresh token, encrypted, on the mailbox."""
    import dataclasses

    from correspondence.services import mailbox_oauth
    from correspondence.services.intake_sources import (
        connect_oauth_mailbox,
        plan_oauth_mailbox,
        plan_reconnect,
    )
    from correspondence.services.mailbox_signin import mailbox_named

    if not device_code:
        raise click.UsageError("only --device-code works from the command line; a browser can use the "
                               "intake sources page (Admin → Intake sources → Connect a mailbox with OAuth2)")
    settings = Settings.from_env()
    app = settings.oauth_app(provider)
    if app is None:
        raise Refused(f"{provider} is not set up: set MAILROOM_OAUTH_{provider.upper()}_CLIENT_ID "
                      "(see README, Mailboxes with OAuth2)")
    if provider == "microsoft":
        # The device code is a public-client flow at Microsoft: a token from it must be redeemed, and later
        # renewed, without the app's secret (AADSTS700025 otherwise), so none is sent or kept with the mailbox.
        app = dataclasses.replace(app, client_secret="")

    @use_case
    def plan(session):  # type: ignore[no-untyped-def]
        existing = mailbox_named(session, name.strip())
        if existing is not None:
            return plan_reconnect(session, existing.id, provider=provider)
        return plan_oauth_mailbox(session, provider=provider, name=name, username=username, host=host, port=port,
                                  security=security, folders=folders, processed_folder=processed_folder)

    planned = plan()
    try:
        device = mailbox_oauth.start_device_code(app)
    except (mailbox_oauth.OAuthError, ValueError) as exc:
        raise Refused(f"the provider did not start the sign-in: {exc}") from exc
    click.echo(_frame([f"Open {device.verification_uri}", f"and enter the code {device.user_code}",
                       f"signing in as {planned.username} (or someone allowed to open that mailbox)."]))
    click.echo("Waiting for the sign-in…", err=True)
    try:
        _access, refresh_token = mailbox_oauth.finish_device_code(app, device)
    except mailbox_oauth.OAuthError as exc:
        raise Refused(f"the mailbox was not connected: {exc}") from exc

    @use_case
    def connect(session):  # type: ignore[no-untyped-def]
        account = connect_oauth_mailbox(session, planned, provider=app, refresh_token=refresh_token,
                                        secret_key=settings.secret_key, actor_id=None)
        return account.name, account.username

    connected, as_user = connect()
    click.echo(f"Mailbox {connected} connected as {as_user}. It is polled every minute; check it in the intake "
               "sources page.")


@cli.group("staff")
def staff_group() -> None:
    """Manage staff accounts."""


@staff_group.command("create", with_appcontext=False)
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(ROLE_CHOICES), default=ROLE_CHOICES[0],
              show_default=True, help="Correspondent (the least privileged) unless you say otherwise.")
def staff_create(name: str, email: str, role: str) -> None:
    """Create a staff account with a one-time password."""
    from correspondence.models import Role
    from correspondence.services.staff import create_staffer

    @use_case
    def create(session):  # type: ignore[no-untyped-def]
        staffer, otp = create_staffer(session, name=name, email=email, role=Role(role), actor_id=None)
        return staffer.email, otp

    address, otp = create()
    click.echo(f"Created {address} ({role}).")
    click.echo(_frame([f"One-time password: {otp}", "They choose their own at their first sign-in."]))


@staff_group.command("reset-password", with_appcontext=False)
@click.argument("email")
def staff_reset_password(email: str) -> None:
    """Give EMAIL a new one-time password (printed once), end their sessions; they choose a new one at sign-in."""
    from correspondence.services.staff import reset_password_by_email

    otp = use_case(reset_password_by_email)(email, actor_id=None)
    click.echo(f"Password reset for {email.strip().lower()}; every session of theirs is signed out.")
    click.echo(_frame([f"One-time password: {otp}", "They must choose a new password when they sign in."]))


@staff_group.command("reset-2fa", with_appcontext=False)
@click.option("--email", required=True)
def staff_reset_2fa(email: str) -> None:
    """Remove a staffer's authenticator app, security keys and recovery codes (the only admin lost them)."""
    from sqlalchemy import select

    from correspondence.errors import NotFound
    from correspondence.models import Staffer
    from correspondence.services.second_factor import reset_second_factor

    @use_case
    def reset(session):  # type: ignore[no-untyped-def]
        staffer_id = session.scalar(select(Staffer.id).where(Staffer.email == email.strip().lower()))
        if staffer_id is None:
            raise NotFound(f"no staff account for {email}")
        reset_second_factor(session, staffer_id, actor_id=None)

    reset()
    click.echo(f"Second factor removed for {email}; they set one up again at their next sign-in.")


# Export, restore and verify (archive/, docs/archive-format.md). Not use cases: an export reads one snapshot,
# a restore writes a whole database, verify only reads; each says why it refuses as "Error: ..." (exit 1).
def _progress(name: str, rows: int) -> None:
    click.echo(f"  {name}: {rows}", err=True)


@cli.command("export", with_appcontext=False)
@click.argument("dest", type=click.Path(file_okay=False))
def export_command(dest: str) -> None:
    """Write the whole office (every table as JSON Lines, raw inputs and attachments, manifest.json) into DEST,
    a new or empty folder. Secrets (passwords, second factors, tokens) are left out."""
    from pathlib import Path

    from archive.export import export_archive
    from correspondence.db import Database
    from correspondence.errors import DomainError

    db = Database.from_settings(Settings.from_env())
    try:
        manifest = export_archive(db, Path(dest), progress=_progress)
    except DomainError as exc:
        raise Refused(str(exc)) from exc
    finally:
        db.dispose()
    rows = sum(t["rows"] for t in manifest["tables"])
    click.echo(f"Exported {rows} rows in {len(manifest['tables'])} tables and {manifest['blobs']['files']} "
               f"blob files to {dest}.")
    if manifest["blobs"]["missing"]:
        click.echo(f"{len(manifest['blobs']['missing'])} blob(s) named in the database had no file in the blob "
                   "store; they are listed in manifest.json.", err=True)
        sys.exit(1)


@cli.command("restore", with_appcontext=False)
@click.argument("src", type=click.Path(exists=True, file_okay=False))
def restore_command(src: str) -> None:
    """Restore the archive in SRC into the EMPTY database DATABASE_URL names (SQLite or PostgreSQL) and its
    blob folder. Restored staff have no password: give each one with `mailroom staff reset-password EMAIL`."""
    from pathlib import Path

    from archive.restore import restore_archive
    from correspondence.errors import DomainError

    settings = Settings.from_env()
    try:
        result = restore_archive(settings.database_url, settings.blob_dir, Path(src), progress=_progress)
    except DomainError as exc:
        raise Refused(str(exc)) from exc
    click.echo(f"Restored {sum(result['tables'].values())} rows and {result['blob_files']} blob files.")
    click.echo(_frame(["Passwords and second factors are never exported: nobody can sign in yet.",
                       "Give each person a one-time password:  mailroom staff reset-password EMAIL",
                       "Intake API tokens must be issued again, mailbox passwords entered again."]))


@cli.command("verify", with_appcontext=False)
@click.argument("src", type=click.Path(exists=True, file_okay=False))
def verify_command(src: str) -> None:
    """Compare the database and blob store with the archive in SRC (row counts and checksums per table, the
    archive's own files, every blob); exits 1 and lists the differences when they disagree."""
    from pathlib import Path

    from archive.verify import verify_archive
    from correspondence.db import Database
    from correspondence.errors import DomainError

    settings = Settings.from_env()
    db = Database.from_settings(settings)
    try:
        problems = verify_archive(db, settings.blob_dir, Path(src))
    except DomainError as exc:
        raise Refused(str(exc)) from exc
    finally:
        db.dispose()
    if problems:
        click.echo(f"{len(problems)} difference(s) between the database and {src}:", err=True)
        for line in problems:
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    click.echo(f"The database matches {src}: every table's rows and checksum, and every blob.")



@cli.command("backup", with_appcontext=False)
@click.argument("dest", required=False, type=click.Path(file_okay=False))
@click.option("--verify", "verify", is_flag=True,
              help="Restore a snapshot (DEST: a snapshot folder, or a backup folder for its newest) into a scratch "
                   "database and compare it with its manifest, instead of making a backup.")
def backup_command(dest: str | None, verify: bool) -> None:
    """Back up the running office into DEST (default MAILROOM_BACKUP_DIR): a consistent snapshot of the database
    and the new blob files, then prune to MAILROOM_BACKUP_KEEP_DAILY / _WEEKLY snapshots."""
    from pathlib import Path

    from archive.backup import Retention, back_up, record_verification, resolve_snapshot, verify_backup
    from correspondence.errors import DomainError

    settings = Settings.from_env()
    folder = Path(dest) if dest else settings.backup_dir
    if folder is None:
        raise Refused("say where the backup goes: mailroom backup DEST (or set MAILROOM_BACKUP_DIR)")
    db = _writer(settings)
    try:
        if verify:
            snapshot = resolve_snapshot(folder)
            click.echo(f"Restoring {snapshot} into a scratch database and comparing…", err=True)
            problems = verify_backup(snapshot, server_url=settings.database_url)
            with db.unit_of_work() as session:
                record_verification(session, snapshot, problems, actor_id=None)
            if problems:
                click.echo(f"{len(problems)} problem(s) with the backup {snapshot}:", err=True)
                for line in problems:
                    click.echo(f"  {line}", err=True)
                sys.exit(1)
            click.echo(f"The backup {snapshot} restores, and every table's rows and checksum and every blob match.")
            return
        done = back_up(db, folder, Retention(settings.backup_keep_daily, settings.backup_keep_weekly),
                       made_by="command")
    except DomainError as exc:
        raise Refused(str(exc)) from exc
    finally:
        db.dispose()
    manifest = done.manifest
    click.echo(f"Backed up {sum(manifest['rows'].values())} rows and {manifest['blobs']['files']} blob files "
               f"({manifest['blobs']['copied']} new) to {manifest['path']} in {manifest['seconds']} s.")
    if done.pruned:
        click.echo(f"Removed {len(done.pruned)} older snapshot(s): {', '.join(done.pruned)}.")
    if manifest["blobs"]["missing"]:
        click.echo(f"{len(manifest['blobs']['missing'])} blob(s) had no file in the blob store; see manifest.json.",
                   err=True)
        sys.exit(1)


# Closing the office (archive/closing.py): the same steps as the closing page (menu Closing), from a terminal.
@cli.group("office")
def office_group() -> None:
    """The office as a whole."""


@office_group.group("close")
def close_group() -> None:
    """Close the office at the end of a term, step by step: stop-intake, export, handover, purge."""


@close_group.command("stop-intake")
@click.option("--successor", required=True, help="Who takes over (e.g. the new Member's office)")
@click.option("--contact", required=True, help="How people reach them: address, phone, email, web site")
def close_stop_intake(successor: str, contact: str) -> None:
    """Step 1: pause every mailbox; the public forms answer "This office has closed" with the successor."""
    from archive.closing import stop_intake

    use_case(stop_intake)(actor_id=None, successor_name=successor, successor_contact=contact)
    click.echo("Intake stopped: mailboxes paused; the web form, CWC and help page now answer that the office has "
               "closed. New mail that still arrives gets one automatic reply per sender.")


@close_group.command("auto-replies")
def close_auto_replies() -> None:
    """Step 2 once now (`mailroom run` does it every minute): queue the closing reply to new senders."""
    from archive.closing import queue_auto_replies

    settings = Settings.from_env()
    made = use_case(queue_auto_replies)(office_name=settings.office_name, mail_domain=settings.mail_domain)
    click.echo(f"{made} closing repl{'y' if made == 1 else 'ies'} queued.")


def _closing_step(step: str, dest: str | None) -> dict[str, Any]:
    from pathlib import Path

    from archive.closing import run_step
    from correspondence.db import Database
    from correspondence.errors import DomainError

    settings = Settings.from_env()
    db = Database.from_settings(settings)
    try:
        return run_step(db, step, actor_id=None, dest=Path(dest) if dest else None, office_name=settings.office_name)
    except DomainError as exc:
        raise Refused(str(exc)) from exc
    finally:
        db.dispose()


@close_group.command("export")
@click.argument("dest", type=click.Path(file_okay=False))
def close_export(dest: str) -> None:
    """Step 3: the final export into DEST (a new folder), verified against the database and recorded."""
    result = _closing_step("final_export", dest)
    if not result["verified"]:
        click.echo("The final export does not match the database:", err=True)
        for line in result["problems"]:
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    click.echo(f"Final export written to {result['path']} and verified; manifest SHA-256 {result['manifest_sha256']}.")


@close_group.command("handover")
@click.argument("dest", type=click.Path(file_okay=False))
def close_handover(dest: str) -> None:
    """Step 4: the successor's hand-over (constituent list, open cases with consent) into DEST, a new folder."""
    result = _closing_step("handover", dest)
    click.echo(f"Hand-over written to {result['path']}: {result['constituents']} constituents, {result['cases']} "
               f"open cases with consent ({result['open_cases_without_consent']} without consent left out).")


@close_group.command("purge")
@click.option("--confirm", "typed_name", required=True, help="The office's name, typed exactly (MAILROOM_OFFICE_NAME)")
def close_purge(typed_name: str) -> None:
    """Step 5: delete the personal data, only while the verified final export still matches the database."""
    from archive.closing import check_purge

    settings = Settings.from_env()
    use_case(check_purge)(typed_name=typed_name, office_name=settings.office_name)
    counts = _closing_step("purge", None)
    click.echo("Personal data deleted: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v) + ".")
    click.echo("The history (audit log) and the closing record are kept.")


@cli.group("retention")
def retention_group() -> None:
    """Retention rules: how long the office keeps each kind of record (also on the admin's Retention page)."""


@retention_group.command("rules", with_appcontext=False)
def retention_rules() -> None:
    """List the rules: kind, years, on or off."""
    from archive.retention import rules

    @use_case
    def listing(session):  # type: ignore[no-untyped-def]
        return [(r.kind.key, r.years, r.active, r.kind.label) for r in rules(session)]

    for key, years, active, label in listing():
        click.echo(f"{key:14} {years:3} years  {'on ' if active else 'off'}  {label}")


@retention_group.command("set", with_appcontext=False)
@click.argument("kind")
@click.argument("years", type=int)
@click.option("--on/--off", "active", default=True, help="Turn the rule on (default) or off.")
def retention_set(kind: str, years: int, active: bool) -> None:
    """Set one kind's rule, e.g. `mailroom retention set campaign_mail 6 --on` (audited)."""
    from archive.retention import set_rule

    @use_case
    def save(session):  # type: ignore[no-untyped-def]
        set_rule(session, kind, actor_id=None, years=years, active=active)

    save()
    click.echo(f"{kind}: keep {years} years, rule {'on' if active else 'off'}.")


@retention_group.command("run", with_appcontext=False)
@click.option("--dry-run", is_flag=True, help="Count what the rules would remove (with a sample); remove nothing.")
def retention_run(dry_run: bool) -> None:
    """Run the retention rules now (anything under a legal hold is skipped); prints the counts as JSON."""
    from archive.retention import execute, start_run

    _logging()

    @use_case
    def start(session):  # type: ignore[no-untyped-def]
        return start_run(session, actor_id=None, dry_run=dry_run).value.id  # run here, not as a job

    run_id = start()
    settings = Settings.from_env()
    db = _writer(settings)
    try:
        result = _waiting_for_lock(lambda: execute(db, run_id))
    finally:
        db.dispose()
    for kind, part in result.items():
        verb = "would clear" if dry_run else "cleared"
        click.echo(f"{kind}: {verb} {part['removed']}, kept {part['held']} under a legal hold", err=True)
    click.echo(json.dumps({"run_id": run_id, "dry_run": dry_run, "result": result}))

if __name__ == "__main__":
    cli()
