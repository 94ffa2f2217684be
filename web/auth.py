"""Signing in and out, and changing one's password."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from correspondence.errors import ValidationFailed
from correspondence.models import Role
from correspondence.services.staff import TooManyAttempts, authenticate, change_password
from web import db_session, settings
from web.access import public, signed_in
from web.forms import ActionForm, LoginForm, PasswordForm

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str | None:
    """Only follow a `next` that stays on this site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def home_for(role: Role) -> str:
    return url_for("dashboard.index") if role in (Role.ADMIN, Role.SUPERVISOR) else url_for("inbox.index")


@bp.route("/")
@signed_in
def home():  # type: ignore[no-untyped-def]
    return redirect(home_for(current_user.role))


@bp.route("/healthz")
@public
def health():  # type: ignore[no-untyped-def]
    return {"status": "ok"}


@bp.route("/login", methods=["GET", "POST"])
@public
def login():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        return redirect(home_for(current_user.role))
    form = LoginForm()
    if form.validate_on_submit():
        session = db_session()
        cfg = settings()
        try:
            staffer = authenticate(session, email=form.email.data or "", password=form.password.data or "",
                                   max_attempts=cfg.login_attempts,
                                   window=timedelta(minutes=cfg.login_window_minutes),
                                   remote_addr=request.remote_addr)
        except TooManyAttempts as exc:
            session.commit()
            abort(429, description=str(exc))
        session.commit()
        if staffer is None:
            flash("That email and password do not match an active account.", "error")
            return render_template("login.html", form=form), 401
        login_user(staffer)
        if staffer.must_change_password:
            return redirect(url_for("auth.change_password"))
        return redirect(_safe_next(request.args.get("next")) or home_for(staffer.role))
    return render_template("login.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/logout", methods=["POST"])
@signed_in
def logout():  # type: ignore[no-untyped-def]
    form = ActionForm()
    if form.validate_on_submit():
        from flask import session as cookie

        cookie.pop("view_as", None)
        logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/view-as/stop", methods=["POST"])
@signed_in
def stop_view_as():  # type: ignore[no-untyped-def]
    """Leave "view as" and be yourself again (audited)."""
    from flask import g
    from flask import session as cookie

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
def change_password_view():  # type: ignore[no-untyped-def]
    form = PasswordForm()
    if form.validate_on_submit():
        session = db_session()
        try:
            change_password(session, current_user.id, current=form.current.data or "", new=form.new.data or "")
        except ValidationFailed as exc:
            flash(str(exc), "error")
            return render_template("password.html", form=form), 400
        session.commit()
        flash("Your password has been changed.", "ok")
        return redirect(home_for(current_user.role))
    return render_template("password.html", form=form), 400 if request.method == "POST" else 200

