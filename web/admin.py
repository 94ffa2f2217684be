"""Admin: staff accounts and roles, intake sources, routing rules."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask import session as cookie
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.errors import DomainError, NotFound
from correspondence.models import Channel, MailboxAccount, Role, Topic
from correspondence.services import mailbox_oauth
from correspondence.services.intake_sources import (
    MailboxPlan,
    add_mailbox,
    connect_oauth_mailbox,
    district_zips,
    list_mailboxes,
    plan_oauth_mailbox,
    plan_reconnect,
    record_check,
    set_district_zips,
    set_mailbox_active,
)
from correspondence.services.mailbox_oauth import PROVIDERS, OAuthError, TokenUnreadable
from correspondence.services.mailbox_signin import locked_renewal
from correspondence.services.routing import create_rule, deactivate_rule, list_rules
from correspondence.services.staff import create_staffer, list_staff, reset_password, set_active, set_role
from correspondence.services.tokens import create_token, list_tokens, revoke_token
from intake.imap import InsecureConnection, account_from_record, accounts_from_json, check_connection
from web import db_session, oauth_pending, settings
from web.access import roles
from web.forms import ActionForm, StaffForm
from web.inputs import every_id, optional_id, required_enum, required_id
from web.outcome import run_action
from workers.effects import redis_client

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/staff", methods=["GET", "POST"])
@roles(Role.ADMIN)
def staff():
    session = db_session()
    form = StaffForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                staffer, otp = create_staffer(session, name=form.name.data or "", email=form.email.data or "",
                                              role=Role(form.role.data), actor_id=current_user.id)
            except DomainError as exc:
                session.rollback()
                flash(str(exc), "error")
                status = 400
            else:
                session.commit()
                flash(f"Created {staffer.email}. One-time password: {otp} — give it to them in person; "
                      "they choose their own at first sign-in.", "ok")
                return redirect(url_for("admin.staff"))
        else:
            status = 400
    return render_template("admin_staff.html", staff=list_staff(session), form=form, action=ActionForm(),
                           roles=list(Role)), status


def _on_staffer(work: Callable[[Session], str]):
    """One change to a staff account, back to the staff page with what happened (or why not)."""
    session = db_session()
    return run_action(session, lambda: (work(session), url_for("admin.staff")), back=url_for("admin.staff"))


@bp.route("/staff/<int:staffer_id>/role", methods=["POST"])
@roles(Role.ADMIN)
def set_staff_role(staffer_id: int):
    def work(session: Session) -> str:
        role = required_enum(Role, request.form.get("value"), "role", missing="choose a role")
        set_role(session, staffer_id, role, actor_id=current_user.id)
        return "Role changed."

    return _on_staffer(work)


@bp.route("/staff/<int:staffer_id>/deactivate", methods=["POST"])
@roles(Role.ADMIN)
def deactivate_staffer(staffer_id: int):
    def work(session: Session) -> str:
        set_active(session, staffer_id, False, actor_id=current_user.id)
        return "Account deactivated."

    return _on_staffer(work)


@bp.route("/staff/<int:staffer_id>/activate", methods=["POST"])
@roles(Role.ADMIN)
def activate_staffer(staffer_id: int):
    def work(session: Session) -> str:
        set_active(session, staffer_id, True, actor_id=current_user.id)
        return "Account activated."

    return _on_staffer(work)


@bp.route("/staff/<int:staffer_id>/reset-2fa", methods=["POST"])
@roles(Role.ADMIN)
def reset_staff_2fa(staffer_id: int):
    from correspondence.services.second_factor import reset_second_factor

    def work(session: Session) -> str:
        reset_second_factor(session, staffer_id, actor_id=current_user.id)
        return "Second factor removed; they set one up again at their next sign-in."

    return _on_staffer(work)


@bp.route("/staff/<int:staffer_id>/reset-password", methods=["POST"])
@roles(Role.ADMIN)
def reset_staff_password(staffer_id: int):
    def work(session: Session) -> str:
        otp = reset_password(session, staffer_id, actor_id=current_user.id)
        return f"New one-time password: {otp}"

    return _on_staffer(work)


@bp.route("/staff/<int:staffer_id>/view-as", methods=["POST"])
@roles(Role.ADMIN)
def view_as(staffer_id: int):
    return _start_view_as(db_session(), staffer_id)


def _start_view_as(session, staffer_id: int):
    """See Mailroom as this staffer sees it (support, training): read-only, audited, flagged on every page."""
    from flask import session as cookie

    from correspondence.models import Staffer
    from correspondence.services.audit import record

    target = session.get(Staffer, staffer_id)
    if target is None:
        raise NotFound(f"no staffer {staffer_id}")
    if target.id == current_user.id or not target.active:
        flash("Choose another, active staffer to view as.", "error")
        return redirect(url_for("admin.staff")), 303
    record(session, actor_id=current_user.id, action="staff.view_as", object_type="staffer", object_id=target.id,
           detail=f"{current_user.name} viewed Mailroom as {target.name}")
    session.commit()
    cookie["view_as"] = target.id
    flash(f"You are seeing Mailroom as {target.name} ({target.role.value}). Changes are turned off.", "ok")
    return redirect(url_for("auth.home")), 303


@bp.route("/intake", methods=["GET", "POST"])
@roles(Role.ADMIN)
def intake():
    """Intake sources: API tokens for the web form and CWC deliveries, and the office's settings."""
    session = db_session()
    form = ActionForm()
    new_token = None
    if request.method == "POST":
        try:
            _token, new_token = create_token(session, name=request.form.get("name", ""), actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            flash(str(exc), "error")
        else:
            session.commit()
    cfg = settings()
    return render_template("admin_intake.html", tokens=list_tokens(session), form=form, new_token=new_token,
                           env_zips=sorted(cfg.district_zips), office_zips=_zip_text(district_zips(session)),
                           cwc_offices=sorted(cfg.cwc_offices), max_mb=cfg.max_message_bytes // 1048576,
                           mailboxes=list_mailboxes(session), env_mailboxes=_env_mailboxes(cfg),
                           oauth_apps=[(app.kind, PROVIDER_NAMES[app.kind]) for app in cfg.oauth_apps],
                           provider_names=PROVIDER_NAMES, smtp_oauth_mailbox=cfg.smtp_oauth_mailbox)


def _zip_text(zips: set[str]) -> str:
    return "\n".join(z if len(z) == 5 else f"{z[:5]}-{z[5:]}" for z in sorted(zips))


def _env_mailboxes(cfg) -> list[str]:
    try:
        return [a.name for a in accounts_from_json(cfg.imap_accounts_json)]
    except ValueError as exc:
        return [f"(MAILROOM_IMAP_ACCOUNTS cannot be read: {exc})"]


@bp.route("/intake/mailboxes", methods=["POST"])
@roles(Role.ADMIN)
def mailbox_add():
    session = db_session()
    f = request.form
    back = url_for("admin.intake")

    def add() -> tuple[str, str]:
        account = add_mailbox(session, secret_key=settings().secret_key, name=f.get("name", ""),
                              host=f.get("host", ""), port=f.get("port", ""), security=f.get("security", "ssl"),
                              username=f.get("username", ""), password=f.get("password", ""),
                              folders=f.get("folders", ""), processed_folder=f.get("processed_folder", ""),
                              actor_id=current_user.id)
        return f"Mailbox {account.name} added; it is polled every minute. Check the connection below.", back

    return run_action(session, add, back=back, failed="Mailbox not added: ")


CHECK_FAILED = "could not connect or sign in; check host, port and credentials"


@bp.route("/intake/mailboxes/<int:account_id>/check", methods=["POST"])
@roles(Role.ADMIN)
def mailbox_check(account_id: int):
    """Sign in to the mailbox now and list its folders, so the admin knows polling will work."""
    session = db_session()
    row = session.get(MailboxAccount, account_id)
    if row is None:
        abort(404, description=f"There is no mailbox {account_id}.")
    login = None
    try:
        account = account_from_record(row, settings().secret_key)
        if (login := account.oauth) is not None:
            # A renewal during the check takes the mailbox's lock in this request's transaction and keeps a
            # rotated refresh token with the check's commit (mailbox_signin.locked_renewal).
            login.renew = locked_renewal(session, row.id, login.provider, secret_key=settings().secret_key)
        folders = check_connection(account, timeout=10)
    except InsecureConnection as exc:  # our own refusal: it says nothing about the far side
        result, ok = f"failed: {exc}", False
    except (OAuthError, TokenUnreadable) as exc:
        # The provider (an address in the settings, not one typed here) refused to renew the sign-in, or
        # could not be reached, or the stored token was encrypted under another key: say which.
        result, ok = f"failed: the OAuth2 sign-in could not be renewed ({exc}); connect the mailbox again", False
    except Exception:
        # The page answers the same for a closed port, a host that does not answer, a TLS
        # mismatch and a wrong password, so the check cannot be used to map which ports are open
        # on other machines; the detail goes to the log for whoever runs the server.
        log.warning("mailbox check failed mailbox_id=%s host=%s port=%s", row.id, row.host, row.port,
                    exc_info=True)
        result, ok = f"failed: {CHECK_FAILED}", False
    else:
        missing = [f for f in account.folders if f not in folders]
        ok = not missing
        result = (f"connected; folders: {', '.join(folders[:20])}" if ok
                  else f"connected, but these folders do not exist: {', '.join(missing)}")
    if login is not None:
        login.renew = None  # the request's session closes after this; the next user sets its own
    record_check(session, account_id, result, actor_id=current_user.id)
    session.commit()
    flash(f"{row.name}: {result}", "ok" if ok else "error")
    return redirect(url_for("admin.intake")), 303


PROVIDER_NAMES = {"microsoft": "Microsoft 365", "google": "Google", "generic": "your OAuth2 provider"}


def _oauth_redirect_uri() -> str:
    """The callback address registered at the provider: on MAILROOM_PUBLIC_URL when set, so it is the same
    whatever host name the admin typed; else the address of this request."""
    path = url_for("admin.mailbox_oauth_callback")
    public = settings().public_url
    return public.rstrip("/") + path if public else url_for("admin.mailbox_oauth_callback", _external=True)


@bp.route("/intake/mailboxes/oauth", methods=["POST"])
@roles(Role.ADMIN)
def mailbox_oauth_start():
    """Send the admin to the provider's sign-in and consent page for a new mailbox (or one to connect again).

    The PKCE verifier and the state stay on the server (web.oauth_pending: in Redis, encrypted, bound to this
    admin, good for ten minutes); the admin's cookie carries only an opaque id, and the return takes the
    entry out, so each sign-in works once.
    """
    session = db_session()
    f = request.form
    back = url_for("admin.intake")
    kind = f.get("provider", "")
    app = settings().oauth_app(kind) if kind in PROVIDERS else None
    if app is None:
        flash("Mailbox not connected: this provider is not set up for Mailroom (MAILROOM_OAUTH_"
              f"{kind.upper() if kind in PROVIDERS else '<PROVIDER>'}_CLIENT_ID); see README, Mailboxes with OAuth2.",
              "error")
        return redirect(back), 303
    try:
        account_id = optional_id(f.get("account_id"), "mailbox")
        plan = (plan_reconnect(session, account_id, provider=kind) if account_id is not None else
                plan_oauth_mailbox(session, provider=kind, name=f.get("name", ""), username=f.get("username", ""),
                                   host=f.get("host", ""), port=f.get("port", ""), security=f.get("security", "ssl"),
                                   folders=f.get("folders", ""), processed_folder=f.get("processed_folder", "")))
        redirect_uri = _oauth_redirect_uri()
        start = mailbox_oauth.start_authorization(app, redirect_uri, login_hint=plan.username)
    except NotFound:
        raise
    except (DomainError, ValueError) as exc:
        session.rollback()
        flash(f"Mailbox not connected: {exc}", "error")
        return redirect(back), 303
    try:
        cookie[OAUTH_PENDING] = oauth_pending.keep(
            redis_client(settings()), {"state": start.state, "verifier": start.verifier,
                                       "redirect_uri": redirect_uri, "plan": plan.as_dict()},
            staffer_id=current_user.id, secret_key=settings().secret_key)
    except oauth_pending.PendingUnavailable as exc:
        log.warning("mailbox oauth2 sign-in not started: redis unreachable: %s", exc)
        flash("Mailbox not connected: Mailroom's job queue (Redis), which holds the sign-in while you are at the "
              "provider, cannot be reached; try again in a minute.", "error")
        return redirect(back), 303
    log.info("mailbox oauth2 sign-in started staffer_id=%s provider=%s mailbox=%s", current_user.id, kind, plan.name)
    return redirect(start.url), 303


OAUTH_PENDING = "mailbox_oauth"
_PROVIDER_REFUSALS = {
    "access_denied": "the sign-in was cancelled, or consent was not given, at the provider",
    "consent_required": "an administrator of your organisation must first allow this app (admin consent)",
    "interaction_required": "the provider needs you to sign in again; start again",
    "invalid_scope": "the provider does not allow the mail permissions this app asked for",
    "unauthorized_client": "the provider does not allow this app to sign in this way",
    "temporarily_unavailable": "the provider is busy; try again in a few minutes",
    "server_error": "the provider had an error; try again in a few minutes",
}


@bp.route("/mailboxes/oauth/callback")
@roles(Role.ADMIN)
def mailbox_oauth_callback():
    """Where the provider sends the admin back: trade the code for tokens and keep the refresh token,
    encrypted, on the mailbox. Every failure is said in plain words on the intake page, never a 500."""
    session = db_session()
    back = url_for("admin.intake")

    def refuse(why: str):
        flash(f"Mailbox not connected: {why}.", "error")
        return redirect(back), 303

    try:  # one use, whatever happens next: the entry is taken out of Redis and the cookie forgets its id
        taken = oauth_pending.take(redis_client(settings()), cookie.pop(OAUTH_PENDING, None),
                                   staffer_id=current_user.id, secret_key=settings().secret_key)
    except oauth_pending.PendingUnavailable as exc:
        log.warning("mailbox oauth2 return refused: redis unreachable: %s", exc)
        return refuse("Mailroom's job queue (Redis), which holds the sign-in in progress, cannot be reached; "
                      "start again in a minute")
    if taken.refused == "expired":
        return refuse("the sign-in took longer than ten minutes; start again")
    if taken.refused:
        return refuse("this sign-in was not started from this page (or was started by someone else, or was "
                      "used already); start again")
    pending = taken.values
    state = request.args.get("state", "")
    if not state or not secrets.compare_digest(state.encode(), str(pending.get("state", "")).encode()):
        return refuse("the sign-in came back for another request; start again")
    plan = MailboxPlan.from_dict(pending["plan"])
    if error := request.args.get("error", ""):
        log.info("mailbox oauth2 refused by the provider mailbox=%s error=%s", plan.name, error[:80])
        return refuse(_PROVIDER_REFUSALS.get(error, f"the provider refused ({error[:80]})"))
    app = settings().oauth_app(plan.provider)
    code = request.args.get("code", "")
    if app is None or not code:
        return refuse("the provider sent no sign-in code back" if app else "this provider is no longer set up")
    start = mailbox_oauth.AuthorizationStart("", str(pending["state"]), str(pending["verifier"]))
    try:
        _access, refresh_token = mailbox_oauth.finish_authorization(
            app, start, state=state, code=code, redirect_uri=str(pending["redirect_uri"]))
    except OAuthError as exc:
        # The provider's words, never a token: the error field of its answer, or why it could not be reached.
        log.warning("mailbox oauth2 code exchange failed mailbox=%s reason=%s", plan.name, exc)
        return refuse(f"could not finish signing in at the provider: {exc}")

    def connect() -> tuple[str, str]:
        account = connect_oauth_mailbox(session, plan, provider=app, refresh_token=refresh_token,
                                        secret_key=settings().secret_key, actor_id=current_user.id)
        return (f"Mailbox {account.name} connected as {account.username} through "
                f"{PROVIDER_NAMES[plan.provider]}. Check the connection below.", back)

    return run_action(session, connect, back=back, failed="Mailbox not connected: ")


@bp.route("/intake/mailboxes/<int:account_id>/active", methods=["POST"])
@roles(Role.ADMIN)
def mailbox_active(account_id: int):
    session = db_session()
    active = request.form.get("value") == "on"
    account = set_mailbox_active(session, account_id, active, actor_id=current_user.id)
    session.commit()
    flash(f"Mailbox {account.name} {'is polled again' if active else 'is no longer polled'}.", "ok")
    return redirect(url_for("admin.intake")), 303


@bp.route("/intake/zips", methods=["POST"])
@roles(Role.ADMIN)
def district_zip_list():
    """Replace the office's ZIP list; new mail is placed in or out of district by it."""
    session = db_session()
    back = url_for("admin.intake")

    def save() -> tuple[str, str]:
        zips = set_district_zips(session, request.form.get("zips", ""), actor_id=current_user.id)
        return f"District ZIP list saved: {len(zips)} codes. It applies to mail processed from now on.", back

    return run_action(session, save, back=back, failed="ZIP list not saved: ")


@bp.route("/intake/tokens/<int:token_id>/revoke", methods=["POST"])
@roles(Role.ADMIN)
def revoke(token_id: int):
    session = db_session()
    revoke_token(session, token_id, actor_id=current_user.id)
    session.commit()
    flash("Token revoked; the source can no longer deliver with it.", "ok")
    return redirect(url_for("admin.intake")), 303


@bp.route("/routing", methods=["GET", "POST"])
@roles(Role.ADMIN, Role.SUPERVISOR)
def routing():
    """Assignment rules: new mail on a topic or channel goes to a staffer, or round-robin to a team."""
    session = db_session()
    form = ActionForm()
    status = 200
    if request.method == "POST":
        topic = request.form.get("topic_id", "")
        try:
            refusal = "choose topics and staff from the lists"
            create_rule(session, name=request.form.get("name", ""),
                        topic_id=every_id([topic], refusal=refusal)[0] if topic else None,
                        channel=request.form.get("channel") or None,
                        staffer_ids=every_id(request.form.getlist("staffer_ids"), refusal=refusal),
                        actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            flash(str(exc), "error")
            status = 400
        else:
            session.commit()
            flash("Rule saved; it applies to mail processed from now on.", "ok")
            return redirect(url_for("admin.routing")), 303
    topics = list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name)))
    staff = {s.id: s for s in list_staff(session)}
    return render_template("admin_routing.html", rules=list_rules(session), topics=topics, staff=staff,
                           channels=list(Channel), form=form), status


@bp.route("/routing/<int:rule_id>/deactivate", methods=["POST"])
@roles(Role.ADMIN, Role.SUPERVISOR)
def routing_deactivate(rule_id: int):
    session = db_session()
    deactivate_rule(session, rule_id, actor_id=current_user.id)
    session.commit()
    flash("Rule turned off.", "ok")
    return redirect(url_for("admin.routing")), 303


@bp.route("/topics")
@roles(Role.ADMIN, Role.SUPERVISOR)
def topics():
    """Topic suggestions: the model versions, how well each did, retrain now, roll back."""
    from sqlalchemy import func

    from coding.suggest import SOURCES_NOT_TRAINED, versions
    from correspondence.models import Message

    session = db_session()
    coded = session.scalar(select(func.count()).select_from(Message).where(
        Message.topic_id.is_not(None), func.coalesce(Message.topic_source, "staff").not_in(SOURCES_NOT_TRAINED))) or 0
    auto = session.scalar(select(func.count()).select_from(Message).where(Message.topic_source == "model")) or 0
    return render_template("admin_topics.html", versions=versions(session), coded=coded, auto=auto,
                           threshold=settings().autocode_confidence, form=ActionForm())


@bp.route("/topics/retrain", methods=["POST"])
@roles(Role.ADMIN, Role.SUPERVISOR)
def topics_retrain():
    from correspondence.effects import Effect
    from web.outcome import after_commit

    if not after_commit((Effect.of("train_topics", current_user.id),)):  # Redis down: say so rather than pretend
        flash("Could not queue the training job (the queue is not reachable); try again in a minute.", "error")
        return redirect(url_for("admin.topics")), 303
    flash("Training queued: the new version appears here in a minute or two and becomes active.", "ok")
    return redirect(url_for("admin.topics")), 303


@bp.route("/topics/<int:version>/activate", methods=["POST"])
@roles(Role.ADMIN, Role.SUPERVISOR)
def topics_activate(version: int):
    from coding.suggest import activate

    session = db_session()

    def act() -> tuple[str, str]:
        activate(session, version, actor_id=current_user.id)
        return f"Version {version} is now the active model.", url_for("admin.topics")

    return run_action(session, act, back=url_for("admin.topics"))


@bp.route("/case-categories", methods=["GET", "POST"])
@roles(Role.ADMIN, Role.SUPERVISOR)
def case_categories():
    """The office's list of case categories and the steps a new case of each starts with."""
    from casework import cases as casework
    from correspondence.models import CaseCategory

    session = db_session()
    if request.method == "POST":
        raw_id = request.form.get("category_id", "")

        def act() -> tuple[str, str]:
            if request.form.get("active") in ("0", "1"):
                chosen = required_id(raw_id, "category", missing="choose the category")
                category = casework.set_category_active(session, chosen, request.form["active"] == "1",
                                                        actor_id=current_user.id)
                return (f"{category.name} is {'offered' if category.active else 'no longer offered'} for new cases.",
                        url_for("admin.case_categories"))
            category = casework.save_category(session, request.form.get("name", ""), request.form.get("steps", ""),
                                              actor_id=current_user.id,
                                              category_id=optional_id(raw_id, "category"))
            return f"Category {category.name} saved.", url_for("admin.case_categories")

        return run_action(session, act, back=url_for("admin.case_categories"), failed="Not saved: ")
    items = list(session.scalars(select(CaseCategory).order_by(CaseCategory.name)))
    return render_template("admin_case_categories.html", categories=items, steps_text=casework.steps_text,
                           form=ActionForm())


# --- the mass-communication guard: the blackout calendar and advisory-opinion approvals ------------

def _date(raw: str | None, name: str):
    from datetime import date

    from correspondence.errors import ValidationFailed

    try:
        return date.fromisoformat((raw or "").strip())
    except ValueError as exc:
        raise ValidationFailed(f"{name} must be a date like 2026-11-03") from exc


@bp.route("/franking")
@roles(Role.ADMIN)
def franking():
    """Election dates (each closes a blackout window for unsolicited mass mail) and recorded approvals."""
    from correspondence.models import ElectionKind, FormLetter
    from outbound import franking as rules

    session = db_session()
    office = rules.Rules.of(settings())
    today = office.today()
    now_in, upcoming = rules.blackouts(session, today, office)
    letters = list(session.scalars(select(FormLetter).where(FormLetter.one_off_message_id.is_(None))
                                   .order_by(FormLetter.title)))
    from datetime import timedelta

    elections = rules.list_elections(session)
    starts = {e.id: e.election_date - timedelta(days=office.blackout_days) for e in elections}
    return render_template("admin_franking.html", elections=elections, starts=starts,
                           approvals=rules.list_approvals(session), kinds=list(ElectionKind), letters=letters,
                           rules=office, today=today, blocked=now_in, upcoming=upcoming,
                           year=rules.legislative_year(today), form=ActionForm())


def _report_year() -> int:
    from datetime import date

    raw = request.args.get("year", "")
    try:
        year = int(raw) if raw.strip() else date.today().year
    except ValueError:
        abort(400, description="The year must be a number like 2026.")
    if not 2000 <= year <= 2100:
        abort(400, description="The year must be between 2000 and 2100.")
    return year


@bp.route("/franking/quarterly")
@roles(Role.ADMIN, Role.SUPERVISOR)
def franking_quarterly():
    """Mass communications per calendar quarter and legislative year, with counts and costs."""
    from outbound.franking import Rules
    from outbound.quarterly import Costs, quarterly_report

    year = _report_year()
    costs = Costs.of(settings())
    periods = quarterly_report(db_session(), year, costs=costs, timezone=Rules.of(settings()).timezone)
    return render_template("admin_franking_quarterly.html", year=year, periods=periods, costs=costs)


@bp.route("/franking/quarterly.csv")
@roles(Role.ADMIN, Role.SUPERVISOR)
def franking_quarterly_csv():
    from flask import Response

    from outbound.franking import Rules
    from outbound.quarterly import Costs, quarterly_report, report_csv

    year = _report_year()
    periods = quarterly_report(db_session(), year, costs=Costs.of(settings()), timezone=Rules.of(settings()).timezone)
    return Response(report_csv(periods), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="mass-mail-by-quarter-{year}.csv"'})


@bp.route("/franking/elections", methods=["POST"])
@roles(Role.ADMIN)
def election_add():
    from outbound.franking import add_election

    session = db_session()

    def act() -> tuple[str, str]:
        election = add_election(session, kind=request.form.get("kind", ""),
                                election_date=_date(request.form.get("election_date"), "the election date"),
                                note=request.form.get("note", ""), actor_id=current_user.id)
        return (f"The {election.kind.value} election on {election.election_date.isoformat()} is on the calendar.",
                url_for("admin.franking"))

    return run_action(session, act, back=url_for("admin.franking"), failed="Election not added: ")


@bp.route("/franking/elections/<int:election_id>/remove", methods=["POST"])
@roles(Role.ADMIN)
def election_remove(election_id: int):
    from outbound.franking import remove_election

    session = db_session()

    def act() -> tuple[str, str]:
        remove_election(session, election_id, actor_id=current_user.id)
        return "Election removed from the calendar.", url_for("admin.franking")

    return run_action(session, act, back=url_for("admin.franking"))


@bp.route("/franking/approvals", methods=["POST"])
@roles(Role.ADMIN)
def approval_record():
    from correspondence.errors import ValidationFailed
    from outbound.franking import Rules, record_approval

    session = db_session()

    def act() -> tuple[str, str]:
        letter_id = optional_id(request.form.get("letter_id"), "letter_id")
        if letter_id is None:
            raise ValidationFailed("choose the letter the opinion approves")
        approval = record_approval(session, letter_id, opinion_number=request.form.get("opinion_number", ""),
                                   opinion_date=_date(request.form.get("opinion_date"), "the opinion's date"),
                                   actor_id=current_user.id, rules=Rules.of(settings()))
        return (f"Advisory opinion {approval.opinion_number} recorded for the legislative year from "
                f"{approval.year_start.isoformat()}.", url_for("admin.franking"))

    return run_action(session, act, back=url_for("admin.franking"), failed="Approval not recorded: ")
