"""The Flask app factory: settings in, blueprints, sign-in, CSRF, security headers and error pages."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, g, render_template, request
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from config import Settings
from correspondence.db import Database, ReadReplica
from correspondence.errors import NotFound
from correspondence.models import Staffer
from intake.sanitise import clean_html
from web.access import enforce_access
from web.inputs import BadParameter

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


def create_app(settings: Settings) -> Flask:
    app = Flask(__name__, instance_path=str(settings.instance_dir), instance_relative_config=False)
    # Ids in paths stop at the id columns' range (bigger is a 404) and JSON bodies at a nesting depth (web/inputs.py).
    from web.inputs import BoundedIntConverter, BoundedRequest

    app.url_map.converters["int"] = BoundedIntConverter
    app.request_class = BoundedRequest
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="mailroom_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        MAX_CONTENT_LENGTH=25 * 1024 * 1024,
    )
    app.extensions["mailroom.settings"] = settings
    app.extensions["mailroom.db"] = Database.from_settings(settings)
    # Requests that change state take SQLite's write lock up front (see make_engine); pages only read.
    app.extensions["mailroom.db_write"] = Database.from_settings(settings, immediate=True)
    if settings.database_read_url:
        # Only the pages that ask for it read here (replica_session); every other page reads the primary.
        app.extensions["mailroom.db_replica"] = ReadReplica(settings.database_read_url, blob_dir=settings.blob_dir)
    if settings.trusted_proxies:
        # Behind that many reverse proxies, the client address and scheme come from their X-Forwarded-* headers.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    from web import ratelimit

    # Rate limits first: a flood of refused or forged requests counts as much as good ones.
    ratelimit.init_app(app, settings)
    from web.inputs import refuse_nul_characters

    app.before_request(refuse_nul_characters)

    # CSRFProtect checks the token of every POST before any view runs, so views do not check again.
    csrf.init_app(app)
    login_manager.init_app(app)
    app.before_request(enforce_access)

    from web import (
        admin,
        api,
        api_tokens,
        auth,
        batches,
        calls,
        cases,
        closing,
        constituents,
        dashboard,
        inbox,
        letters,
        messages,
        paragraphs,
        privacy,
        quarantine,
        reports,
        scans,
        search,
        subscriptions,
        unsubscribe,
    )

    for module in (auth, inbox, messages, dashboard, admin, api, quarantine, calls, scans, batches, letters, cases,
                   constituents, reports, search, paragraphs, unsubscribe, api_tokens,
                   closing, subscriptions, privacy):
        app.register_blueprint(module.bp)
    from web import admin_data

    app.register_blueprint(admin_data.bp)
    from web import webhooks

    app.register_blueprint(webhooks.bp)

    app.teardown_appcontext(_close_session)
    app.after_request(_security_headers)
    app.context_processor(_template_globals)
    app.add_template_filter(_sanitise, "sanitise")
    from web.times import ago, local, local_iso

    # Every time a page shows is the office's wall-clock time (MAILROOM_TIMEZONE), never UTC.
    app.add_template_filter(local, "local")
    app.add_template_filter(local_iso, "local_iso")
    app.add_template_filter(ago, "ago")
    _register_errors(app)
    # Everything built so far (the models, the routes, the templates' environment) lives as long as
    # the process; freezing it keeps the garbage collector from walking it on every full collection,
    # which otherwise shows up as the slowest 5% of page times.
    # (Not in tests, which build hundreds of apps: frozen objects are never collected.)
    if not settings.testing:
        import gc

        gc.collect()
        gc.freeze()
    return app


def db_session():
    """The request's database session; the view that changes state commits it."""
    from flask import current_app

    if "db_session" not in g:
        writes = request.method not in ("GET", "HEAD", "OPTIONS")
        g.db_session = current_app.extensions["mailroom.db_write" if writes else "mailroom.db"].sessions()
    return g.db_session


def replica_session():
    """The request's session for a page that only reads and may show data a moment old: the read replica.

    Only pages that never show what the same person has just changed may use it — the dashboard,
    analytics, search, CSV exports — since the replica replays the primary's changes a little later; a page
    a form redirects to reads db_session() to see its own write. Without DATABASE_READ_URL, or while the
    replica cannot be reached (ReadReplica falls back and logs a warning), this is the primary's session.
    Sign-in and the page frame (the approvals count) keep reading the primary through db_session().
    """
    from flask import current_app

    replica = current_app.extensions.get("mailroom.db_replica")
    if replica is None:
        return db_session()
    if "replica_session" not in g:
        g.replica_session = replica.session(current_app.extensions["mailroom.db"])
    return g.replica_session


def stream_from_database(make_rows, *, replica: bool = False):
    """Run a generator that reads the database while a response streams, in a session of its own.

    The request's session is closed when the view returns, before a streamed body is sent; a
    generator that used it would open a transaction nobody closes. This one closes in all cases.
    With replica, the rows come from the read replica when there is one (see replica_session).
    """
    from flask import current_app

    database = current_app.extensions["mailroom.db"]
    read_replica = current_app.extensions.get("mailroom.db_replica") if replica else None

    def generate():
        session = read_replica.session(database) if read_replica is not None else database.sessions()
        try:
            yield from make_rows(session)
        finally:
            session.rollback()
            session.close()

    return generate()


def settings() -> Settings:
    from flask import current_app

    return current_app.extensions["mailroom.settings"]


def _close_session(_exc: BaseException | None) -> None:
    token = g.pop("acting_for_token", None)
    if token is not None:
        from correspondence.services.audit import reset_acting_for

        reset_acting_for(token)
    for name in ("db_session", "replica_session"):
        session = g.pop(name, None)
        if session is not None:
            # close() rolls back whatever a view did not commit (it refused, raised, or only read), so
            # nothing is left behind; unlike rollback() it leaves loaded objects readable, which a
            # streamed body (a CSV built from them) still reads after this teardown.
            session.close()


@login_manager.user_loader
def _load_staffer(user_id: str) -> Staffer | None:
    """The session's staffer, if it is still theirs: active, and begun in their current session epoch.

    The id Flask-Login keeps (in the session and in any remember-me cookie) is "id:epoch"
    (Staffer.get_id); signing out, a password change, deactivation or a role change moves the
    epoch on, and every session that began before is signed out on its next request.
    """
    raw_id, _, raw_epoch = user_id.partition(":")
    try:
        staffer_id, epoch = int(raw_id), int(raw_epoch)
    except ValueError:
        return None
    staffer = db_session().get(Staffer, staffer_id)
    if staffer is None or not staffer.active or staffer.session_epoch != epoch:
        return None
    return _viewed_as(staffer)


def _viewed_as(staffer: Staffer) -> Staffer:
    """An admin who chose "view as" sees the app as that staffer; g.viewing_admin keeps who they really are.

    For the rest of the request every audit event is the admin's, on behalf of that staffer.
    """
    from flask import session as cookie

    from correspondence.models import Role
    from correspondence.services.audit import set_acting_for

    target_id = cookie.get("view_as")
    if not target_id or staffer.role != Role.ADMIN:
        return staffer
    target = db_session().get(Staffer, target_id)
    if target is None or not target.active or target.id == staffer.id:
        cookie.pop("view_as", None)
        return staffer
    g.viewing_admin = staffer
    g.acting_for_token = set_acting_for((staffer.id, target.id))
    return target


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    if settings().secure_cookies:
        # Secure cookies mean the site is served over HTTPS: tell browsers never to use plain HTTP for it.
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def _sanitise(markup: str | None) -> Markup:
    """Outside HTML is cleaned with nh3 every time it is shown, whatever was stored."""
    return Markup(clean_html(markup))  # noqa: S704 - nh3 has just removed anything unsafe


def _template_globals() -> dict[str, object]:
    from web.access import access_rule

    def can(endpoint: str) -> bool:
        from flask_login import current_user

        rule = access_rule(endpoint)
        if rule in ("public", "signed_in"):
            return True
        return bool(rule) and current_user.is_authenticated and current_user.role in rule  # type: ignore[operator]

    def pending_approvals() -> int:
        from drafting.letters import pending_count

        return pending_count(db_session())

    return {"office_name": settings().office_name, "can": can, "pending_approvals": pending_approvals,
            "viewing_admin": g.get("viewing_admin")}


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return _error_page(400, "The form expired or was not sent from Mailroom. Go back, reload the "
                                "page and try again.")

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        """Any service's NotFound, wherever a view let it rise: the transaction is undone, the page is a 404."""
        _roll_back()
        return _error_page(404, _sentence(str(exc)))

    @app.errorhandler(BadParameter)
    def _bad_parameter(exc: BadParameter):
        """A query or form value of the wrong type (web.inputs) outside an action: a 400 that names it."""
        _roll_back()
        return _error_page(400, str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        _roll_back()  # a view that aborts (403, 404, 400) has changed nothing that stays
        return _error_page(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _crash(exc: Exception):
        app.logger.exception("unhandled error path=%s", request.path)
        _roll_back()
        return _error_page(500, "Something went wrong on our side. The error has been logged.")


def _roll_back() -> None:
    """The error page reads the database too; a failed or half-done transaction would fail it again."""
    for name in ("db_session", "replica_session"):
        session = g.get(name)
        if session is not None:
            session.rollback()


def _sentence(reason: str) -> str:
    """A service's "no letter version 7" as the page says it: "There is no letter version 7."."""
    reason = reason.strip() or "not found"
    if reason.startswith("no "):
        reason = "there is " + reason
    return reason[0].upper() + reason[1:] + ("" if reason.endswith(".") else ".")


TITLES = {400: "That request could not be used", 401: "Sign-in needed", 403: "Not allowed",
          404: "Not found", 405: "Not allowed here", 413: "Too large", 429: "Too many attempts",
          500: "Server error"}


def _error_page(code: int, message: str):
    if request.path.startswith("/api/"):
        return {"error": {"code": code, "message": message}}, code
    return render_template("error.html", code=code, title=TITLES.get(code, "Error"), message=message), code
