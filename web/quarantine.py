"""The quarantine: items that could not be processed, each with its reason; retry or release them."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from correspondence.errors import DomainError, NotFound, PermissionDenied
from correspondence.models import Message, MessageStatus
from correspondence.services.messages import list_quarantined, release_message, retry_message
from correspondence.states import TRIAGE as STATE_TRIAGE
from web import db_session
from web.access import roles
from web.api import _enqueue
from web.forms import ActionForm

bp = Blueprint("quarantine", __name__, url_prefix="/quarantine")

# The same staff the service lets release quarantined mail (correspondence.states.MESSAGE_MOVE_ROLES).
TRIAGE = sorted(STATE_TRIAGE)


@bp.route("/")
@roles(*TRIAGE)
def index():  # type: ignore[no-untyped-def]
    session = db_session()
    total = session.scalar(select(func.count(Message.id)).where(Message.status == MessageStatus.QUARANTINED))
    from outbound.bounces import quarantined

    return render_template("quarantine.html", items=list_quarantined(session), total=total, form=ActionForm(),
                           bounces=quarantined(session))


@bp.route("/<int:message_id>/<action>", methods=["POST"])
@roles(*TRIAGE)
def act(message_id: int, action: str):  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        if action == "retry":
            retry_message(session, message_id, actor_id=current_user.id)
        elif action == "release":
            release_message(session, message_id, actor_id=current_user.id)
        else:
            abort(404, description=f"Unknown action {action!r}.")
    except NotFound:
        abort(404, description=f"There is no message {message_id}.")
    except PermissionDenied as exc:
        session.rollback()
        abort(403, description=str(exc))
    except DomainError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("quarantine.index")), 303
    session.commit()
    if action == "retry":
        _enqueue(message_id)
        flash(f"Message {message_id} is being processed again.", "ok")
    else:
        flash(f"Message {message_id} released to the inbox as it is.", "ok")
    return redirect(request.form.get("next") if request.form.get("next", "").startswith("/quarantine")
                    else url_for("quarantine.index")), 303
