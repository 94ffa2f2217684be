"""The quarantine: items that could not be processed, each with its reason; retry or release them."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from correspondence.effects import Effect
from correspondence.models import Message, MessageStatus
from correspondence.services.messages import list_quarantined, release_message, retry_message
from correspondence.states import TRIAGE as STATE_TRIAGE
from web import db_session
from web.access import roles
from web.forms import ActionForm
from web.outcome import Step, run_action

bp = Blueprint("quarantine", __name__, url_prefix="/quarantine")

# The same staff the service lets release quarantined mail (correspondence.states.MESSAGE_MOVE_ROLES).
TRIAGE = sorted(STATE_TRIAGE)


@bp.route("/")
@roles(*TRIAGE)
def index():
    session = db_session()
    total = session.scalar(select(func.count(Message.id)).where(Message.status == MessageStatus.QUARANTINED))
    from outbound.bounces import quarantined

    return render_template("quarantine.html", items=list_quarantined(session), total=total, form=ActionForm(),
                           bounces=quarantined(session))


def _back() -> str:
    """Back to the page of the list the staffer acted from (only ever a quarantine page)."""
    wanted = request.form.get("next", "")
    return wanted if wanted.startswith("/quarantine") else url_for("quarantine.index")


@bp.route("/<int:message_id>/retry", methods=["POST"])
@roles(*TRIAGE)
def retry(message_id: int):
    """Process a quarantined message again (after the commit: its processing job)."""
    session = db_session()

    def work() -> Step:
        retry_message(session, message_id, actor_id=current_user.id)
        return (f"Message {message_id} is being processed again.", _back(),
                (Effect.of("process_message", message_id),))

    return run_action(session, work, back=url_for("quarantine.index"), refusal_is_403=True)


@bp.route("/<int:message_id>/release", methods=["POST"])
@roles(*TRIAGE)
def release(message_id: int):
    """Let a quarantined message into the inbox as it is."""
    session = db_session()

    def work() -> Step:
        release_message(session, message_id, actor_id=current_user.id)
        return f"Message {message_id} released to the inbox as it is.", _back()

    return run_action(session, work, back=url_for("quarantine.index"), refusal_is_403=True)
