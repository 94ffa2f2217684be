"""The constituent record: profile, edit with an audit trail, and one timeline of everything."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user
from sqlalchemy import select

from correspondence.errors import NotFound
from correspondence.models import AuditEvent
from correspondence.services import constituents as service
from web import db_session
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.outcome import run_action

bp = Blueprint("constituents", __name__, url_prefix="/constituents")


@bp.route("/<int:constituent_id>")
@roles(*ALL_STAFF)
def view(constituent_id: int):  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        person = service.get_constituent(session, constituent_id)
    except NotFound:
        abort(404, description=f"There is no constituent {constituent_id}.")
    changes = list(session.scalars(select(AuditEvent).where(AuditEvent.object_type == "constituent",
                                                            AuditEvent.object_id == str(person.id))
                                   .order_by(AuditEvent.id.desc()).limit(50)))
    return render_template("constituent.html", person=person, timeline=service.timeline(session, person.id),
                           changes=changes, fields=service.EDITABLE, form=ActionForm())


@bp.route("/<int:constituent_id>/edit", methods=["POST"])
@roles(*ALL_STAFF)
def edit(constituent_id: int):  # type: ignore[no-untyped-def]
    from flask import request, url_for

    session = db_session()
    back = url_for("constituents.view", constituent_id=constituent_id)

    def change() -> tuple[str, str]:
        service.update_constituent(session, constituent_id, {k: request.form.get(k, "") for k in service.EDITABLE},
                                   actor_id=current_user.id)
        return "Saved.", back

    return run_action(session, change, back=back)
