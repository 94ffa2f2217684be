"""The "API tokens" page under a staffer's account: make a token (shown once) and revoke tokens."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from correspondence.errors import DomainError
from correspondence.models import utcnow
from correspondence.services.api_tokens import (
    DEFAULT_DAYS,
    MAX_DAYS,
    SCOPES,
    create_api_token,
    list_api_tokens,
    revoke_api_token,
    scopes_for,
    token_state,
)
from web import db_session
from web.access import signed_in
from web.forms import ActionForm
from web.inputs import parse_id
from web.outcome import run_action

bp = Blueprint("api_tokens", __name__, url_prefix="/account/api-tokens")

STATE_WORDS = {"active": "in use", "expired": "expired", "revoked": "revoked"}


@bp.route("/", methods=["GET", "POST"])
@signed_in
def index():
    """Your API tokens; a new one is shown on this page once, right after it is made."""
    session = db_session()
    new_token, error, status = None, None, 200
    if request.method == "POST":
        raw_days = request.form.get("days", str(DEFAULT_DAYS)).strip()
        days = (parse_id(raw_days) or 0) if raw_days.isdigit() else 0
        try:
            _token, new_token = create_api_token(session, name=request.form.get("name", ""),
                                                 scopes=request.form.getlist("scope"), days=days,
                                                 actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            error, status = str(exc), 400
        else:
            session.commit()
            status = 201
    now = utcnow()
    tokens = [(t, STATE_WORDS[token_state(t, now)]) for t in list_api_tokens(session, current_user.id)]
    allowed = scopes_for(current_user.role)
    return render_template("api_tokens.html", tokens=tokens, form=ActionForm(), new_token=new_token, error=error,
                           scopes=[(name, SCOPES[name][0]) for name in allowed], max_days=MAX_DAYS,
                           default_days=DEFAULT_DAYS, scope_words={k: v[0] for k, v in SCOPES.items()}), status


@bp.route("/<int:token_id>/revoke", methods=["POST"])
@signed_in
def revoke(token_id: int):
    session = db_session()
    back = url_for("api_tokens.index")

    def act() -> tuple[str, str]:
        token = revoke_api_token(session, token_id, actor_id=current_user.id)
        return f"Revoked “{token.name}”: programs using it are refused from now on.", back

    return run_action(session, act, back=back)


__all__ = ["bp", "flash", "redirect"]
