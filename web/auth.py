"""Signing in and out, and changing one's password."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask import session as cookie
from flask_login import current_user, login_user, logout_user
from markupsafe import Markup
from webauthn import base64url_to_bytes
from webauthn.helpers import bytes_to_base64url

from correspondence.errors import ValidationFailed
from correspondence.models import Role, Staffer
from correspondence.services.second_factor import (
    authentication_options,
    confirm_totp,
    new_recovery_codes,
    pending_totp_secret,
    register_security_key,
    registration_options,
    security_keys,
    start_totp,
    totp_uri,
    unused_recovery_codes,
    verify_code,
    verify_security_key,
)
from correspondence.services.staff import (
    SignInPolicy,
    TooManyAttempts,
    authenticate,
    change_password,
    end_sessions,
    get_staffer,
    has_second_factor,
)
from web import db_session, settings
from web.access import public, signed_in
from web.forms import ActionForm, CodeForm, LoginForm, PasswordForm
from web.outcome import run_action

bp = Blueprint("auth", __name__)

# How long the second step of sign-in may follow a correct password.
PENDING_SECONDS = 300


def _safe_next(target: str | None) -> str | None:
    """Only follow a `next` that stays on this site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def home_for(role: Role) -> str:
    """Supervisors and admins start at the backlog; correspondents and caseworkers at their own mail, oldest first."""
    from web.inbox import MY_MAIL

    if role in (Role.ADMIN, Role.SUPERVISOR):
        return url_for("dashboard.index")
    return url_for("inbox.index", **MY_MAIL)


@bp.route("/")
@signed_in
def home():
    return redirect(home_for(current_user.role))


@bp.route("/healthz")
@public
def health():
    return {"status": "ok"}


def sign_in_policy() -> SignInPolicy:
    cfg = settings()
    return SignInPolicy(account_attempts=cfg.login_attempts, address_attempts=cfg.login_address_attempts,
                        window=timedelta(minutes=cfg.login_window_minutes),
                        backoff_max=timedelta(minutes=cfg.login_backoff_max_minutes))


def _too_many(exc: TooManyAttempts):
    """429 with Retry-After, so clients (and people) know when to try again."""
    wait = max(1, round(exc.retry_after / 60))
    body = render_template("error.html", code=429, title="Too many attempts",
                           message=f"{exc} (you can try again in about {wait} minute{'' if wait == 1 else 's'}).")
    return body, 429, {"Retry-After": str(exc.retry_after)}


def _finish_sign_in(staffer):
    """The staffer passed every factor: start the session (it carries their session epoch) and go on."""
    target = _safe_next(cookie.pop("pending_2fa", {}).get("next")) or _safe_next(request.args.get("next"))
    cookie.pop("view_as", None)
    login_user(staffer)
    if staffer.must_change_password:
        return redirect(url_for("auth.change_password"))
    return redirect(target or home_for(staffer.role))


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user.role))
    form = LoginForm()
    if form.validate_on_submit():
        session = db_session()
        cfg = settings()
        try:
            with current_app.extensions["mailroom.db"].sessions() as read:
                staffer = authenticate(session, email=form.email.data or "", password=form.password.data or "",
                                       max_attempts=cfg.login_attempts,
                                       window=timedelta(minutes=cfg.login_window_minutes),
                                       remote_addr=request.remote_addr, policy=sign_in_policy(), read=read)
        except TooManyAttempts as exc:
            session.rollback()
            return _too_many(exc)
        session.commit()
        if staffer is None:
            flash("That email and password do not match an active account.", "error")
            return render_template("login.html", form=form), 401
        if has_second_factor(session, staffer):
            # Not signed in yet: the password passed, the second factor is next (within PENDING_SECONDS).
            cookie["pending_2fa"] = {"id": staffer.id, "epoch": staffer.session_epoch, "at": int(time.time()),
                                     "next": _safe_next(request.args.get("next"))}
            return redirect(url_for("auth.second_factor"))
        return _finish_sign_in(staffer)
    return render_template("login.html", form=form), 400 if request.method == "POST" else 200


def _pending_staffer():
    """The staffer whose password passed in this browser in the last few minutes, or None."""
    data = cookie.get("pending_2fa")
    if not isinstance(data, dict) or time.time() - int(data.get("at", 0)) > PENDING_SECONDS:
        cookie.pop("pending_2fa", None)
        return None
    staffer = db_session().get(Staffer, int(data.get("id", 0)))
    if staffer is None or not staffer.active or staffer.session_epoch != data.get("epoch"):
        return None
    return staffer


@bp.route("/login/second-factor", methods=["GET", "POST"])
@public
def second_factor():
    """Step two of sign-in: a code from the authenticator app, a recovery code, or a security key."""
    staffer = _pending_staffer()
    if staffer is None:
        flash("Sign in with your password first (the second step expires after five minutes).", "error")
        return redirect(url_for("auth.login"))
    session = db_session()
    form = CodeForm()
    status = 200
    error = None
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                verify_code(session, staffer.id, form.code.data or "", secret_key=settings().secret_key,
                            remote_addr=request.remote_addr, policy=sign_in_policy())
            except TooManyAttempts as exc:
                session.rollback()
                return _too_many(exc)
            except ValidationFailed as exc:
                session.commit()  # the failed attempt counts toward the back-off
                error = str(exc)
                status = 401
            else:
                session.commit()
                return _finish_sign_in(staffer)
        else:
            error = "enter the code from your authenticator app, or a recovery code"
            status = 400
    return render_template("login_2fa.html", form=form, has_app=staffer.totp_confirmed_at is not None,
                           has_keys=bool(security_keys(session, staffer.id)), error=error), status


def _rp() -> tuple[str, str]:
    """The WebAuthn relying party id (the host name) and origin, both from this request's URL."""
    origin = request.host_url.rstrip("/")
    return urlsplit(origin).hostname or "", origin


def _json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description="send the security key's answer as a JSON object")
    return data


@bp.route("/login/security-key/options", methods=["POST"])
@public
def key_sign_in_options():
    staffer = _pending_staffer()
    if staffer is None:
        return jsonify({"error": "sign in with your password first"}), 401
    try:
        options, challenge = authentication_options(db_session(), staffer.id, rp_id=_rp()[0])
    except ValidationFailed as exc:
        return jsonify({"error": str(exc)}), 400
    cookie["webauthn_challenge"] = bytes_to_base64url(challenge)
    return current_app.response_class(options, mimetype="application/json")


@bp.route("/login/security-key", methods=["POST"])
@public
def key_sign_in():
    staffer = _pending_staffer()
    challenge = cookie.pop("webauthn_challenge", None)
    if staffer is None or not challenge:
        return jsonify({"error": "sign in with your password first"}), 401
    session = db_session()
    rp_id, origin = _rp()
    try:
        verify_security_key(session, staffer.id, credential=_json_body(), challenge=base64url_to_bytes(challenge),
                            rp_id=rp_id, origin=origin, remote_addr=request.remote_addr, policy=sign_in_policy())
    except TooManyAttempts as exc:
        session.rollback()
        return jsonify({"error": str(exc)}), 429, {"Retry-After": str(exc.retry_after)}
    except ValidationFailed as exc:
        session.commit()
        return jsonify({"error": str(exc)}), 401
    session.commit()
    response = _finish_sign_in(staffer)
    return jsonify({"redirect": response.location})


@bp.route("/logout", methods=["POST"])
@signed_in
def logout():
    """Sign out, which also ends every other session of this staffer (their session epoch moves on)."""
    form = ActionForm()
    if form.validate_on_submit():
        me = g.get("viewing_admin") or current_user
        session = db_session()
        end_sessions(session, me.id, actor_id=me.id, reason="signed out")
        session.commit()
        cookie.pop("view_as", None)
        logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/view-as/stop", methods=["POST"])
@signed_in
def stop_view_as():
    """Leave "view as" and be yourself again (audited)."""
    from correspondence.services.audit import record

    admin = g.get("viewing_admin")
    target_id = cookie.pop("view_as", None)
    if admin is not None and target_id:
        session = db_session()
        record(session, actor_id=admin.id, action="staff.view_as_stop", object_type="staffer", object_id=target_id)
        session.commit()
    return redirect(url_for("admin.staff")), 303


@bp.route("/account/password", methods=["GET", "POST"], endpoint="change_password")
@signed_in
def change_password_view():
    form = PasswordForm()
    if form.validate_on_submit():
        session = db_session()
        try:
            change_password(session, current_user.id, current=form.current.data or "", new=form.new.data or "")
        except ValidationFailed as exc:
            flash(str(exc), "error")
            return render_template("password.html", form=form), 400
        session.commit()
        # The change ended every session of this staffer; this one goes on with the new epoch.
        login_user(get_staffer(session, current_user.id))
        flash("Your password has been changed. Any other session of yours has been signed out.", "ok")
        return redirect(home_for(current_user.role))
    return render_template("password.html", form=form, action=ActionForm()), 400 if request.method == "POST" else 200


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@signed_in
def sign_out_everywhere():
    """End every other session of mine (a lost laptop, a shared computer); this one stays signed in."""
    session = db_session()
    staffer = end_sessions(session, current_user.id, actor_id=current_user.id, reason="signed out everywhere")
    session.commit()
    login_user(staffer)
    flash("Every other session of yours has been signed out.", "ok")
    return redirect(url_for("auth.change_password")), 303


@bp.route("/account/two-factor")
@signed_in
def two_factor():
    """Second factors: set up an authenticator app (QR code) or a security key; recovery codes."""
    import segno

    session = db_session()
    staffer = get_staffer(session, current_user.id)
    secret = pending_totp_secret(staffer, secret_key=settings().secret_key)
    qr_svg = None
    if secret:
        uri = totp_uri(secret, email=staffer.email, issuer=f"Mailroom ({settings().office_name})"[:60])
        qr_svg = Markup(segno.make(uri, error="m").svg_inline(  # noqa: S704 - segno's own SVG
            scale=4, light="#fff", omitsize=True, title="QR code to scan with your authenticator app"))
    required = current_user.role.value in settings().require_2fa
    return render_template("account_2fa.html", staffer=staffer, secret=secret, qr_svg=qr_svg, form=CodeForm(),
                           totp_link=uri if secret else None,
                           action=ActionForm(), keys=security_keys(session, staffer.id), required=required,
                           enrolled=has_second_factor(session, staffer),
                           codes_left=unused_recovery_codes(session, staffer.id))


@bp.route("/account/two-factor/app", methods=["POST"])
@signed_in
def totp_start():
    session = db_session()

    def start() -> tuple[str, str]:
        start_totp(session, current_user.id, secret_key=settings().secret_key)
        return ("Scan the QR code with your authenticator app, then enter the code it shows.",
                url_for("auth.two_factor"))

    return run_action(session, start, back=url_for("auth.two_factor"))


@bp.route("/account/two-factor/app/confirm", methods=["POST"])
@signed_in
def totp_confirm():
    session = db_session()
    form = CodeForm()
    if not form.validate_on_submit():
        flash("enter the six-digit code from your app", "field-error")
        return redirect(url_for("auth.two_factor")), 303
    try:
        codes = confirm_totp(session, current_user.id, form.code.data or "", secret_key=settings().secret_key)
    except ValidationFailed as exc:
        session.rollback()
        flash(str(exc), "field-error")  # shown next to the code field (base.html leaves it out of the top)
        return redirect(url_for("auth.two_factor")), 303
    session.commit()
    return render_template("recovery_codes.html", codes=codes, just_enrolled=True)


@bp.route("/account/two-factor/recovery-codes", methods=["POST"])
@signed_in
def recovery_codes():
    """New recovery codes (the old ones stop working), shown this once."""
    session = db_session()
    if not has_second_factor(session, get_staffer(session, current_user.id)):
        flash("Set up an authenticator app or a security key first.", "error")
        return redirect(url_for("auth.two_factor")), 303
    codes = new_recovery_codes(session, current_user.id, actor_id=current_user.id)
    session.commit()
    return render_template("recovery_codes.html", codes=codes, just_enrolled=False)


@bp.route("/account/two-factor/security-key/options", methods=["POST"])
@signed_in
def key_register_options():
    rp_id, _origin = _rp()
    options, challenge = registration_options(db_session(), current_user.id, rp_id=rp_id,
                                              rp_name=f"Mailroom ({settings().office_name})"[:60])
    cookie["webauthn_challenge"] = bytes_to_base64url(challenge)
    return current_app.response_class(options, mimetype="application/json")


@bp.route("/account/two-factor/security-key", methods=["POST"])
@signed_in
def key_register():
    challenge = cookie.pop("webauthn_challenge", None)
    if not challenge:
        return jsonify({"error": "start again: ask for the key's options first"}), 400
    body = _json_body()
    session = db_session()
    rp_id, origin = _rp()
    try:
        register_security_key(session, current_user.id, credential=body.get("credential") or {},
                              challenge=base64url_to_bytes(challenge), rp_id=rp_id, origin=origin,
                              name=str(body.get("name") or "Security key"))
    except ValidationFailed as exc:
        session.rollback()
        return jsonify({"error": str(exc)}), 400
    session.commit()
    flash("Security key added. It is asked for after your password from now on.", "ok")
    return jsonify({"redirect": url_for("auth.two_factor")})

