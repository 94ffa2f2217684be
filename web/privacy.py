"""Legal holds, retention rules, subject access and erasure: the pages (each action calls one use case)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_login import current_user

from archive import holds, retention, rights
from correspondence.errors import ValidationFailed
from correspondence.models import Constituent, LegalHold, Role, Staffer
from web import db_session
from web.access import roles
from web.forms import ActionForm
from web.outcome import run_action

bp = Blueprint("privacy", __name__, url_prefix="/privacy")

HOLDERS = (Role.ADMIN, Role.SUPERVISOR)
KIND_WORDS = {"constituent": "this person", "case": "this case", "batch": "this batch"}


def _back(object_type: str, object_id: int) -> str:
    if object_type == "case":
        return url_for("cases.view", case_id=object_id)
    if object_type == "batch":
        return url_for("batches.view", batch_id=object_id)
    return url_for("constituents.view", constituent_id=object_id)


@bp.app_template_global("legal_holds")
def legal_holds(object_type: str, object_id: int) -> list[dict[str, Any]]:
    """The holds on one object for the _hold.html section, newest first, with the staff named."""
    session = db_session()
    found = holds.holds_on(session, object_type, object_id, include_released=True)
    ids = {i for h in found for i in (h.placed_by_id, h.released_by_id) if i}
    names = {s.id: s.name for s in session.query(Staffer).filter(Staffer.id.in_(ids))} if ids else {}
    return [{"hold": h, "placed_by": names.get(h.placed_by_id or 0, "Mailroom"),
             "released_by": names.get(h.released_by_id or 0, "Mailroom")} for h in found]


@bp.app_template_global("privacy_of")
def privacy_of(constituent_id: int) -> dict[str, Any]:
    """The constituent page's "Their data" section: access exports and any erasure."""
    session = db_session()
    return {"exports": rights.exports_of(session, constituent_id),
            "erasure": rights.erasure_of(session, constituent_id)}


@bp.route("/holds/<any(constituent, case, batch):object_type>/<int:object_id>", methods=["POST"])
@roles(*HOLDERS)
def place_hold(object_type: str, object_id: int):
    session = db_session()
    back = _back(object_type, object_id)

    def act() -> tuple[str, str]:
        holds.place_hold(session, object_type, object_id, actor_id=current_user.id,
                         reason=request.form.get("reason", ""))
        return f"Legal hold placed: nothing about {KIND_WORDS[object_type]} will be removed until it is released.", back

    return run_action(session, act, back=back, failed="No hold placed: ")


@bp.route("/holds/<int:hold_id>/release", methods=["POST"])
@roles(*HOLDERS)
def release_hold(hold_id: int):
    session = db_session()
    hold = session.get(LegalHold, hold_id)
    back = _back(hold.object_type, hold.object_id) if hold else url_for("auth.home")

    def act() -> tuple[str, str]:
        holds.release_hold(session, hold_id, actor_id=current_user.id, reason=request.form.get("reason", ""))
        return "Legal hold released.", back

    return run_action(session, act, back=back, failed="Hold not released: ")


# --- retention ------------------------------------------------------------------------------------------

@bp.route("/retention")
@roles(Role.ADMIN)
def retention_page():
    session = db_session()
    return render_template("retention.html", rules=retention.rules(session), runs=retention.latest_runs(session),
                           kinds=retention.KINDS, form=ActionForm())


@bp.route("/retention/rules", methods=["POST"])
@roles(Role.ADMIN)
def retention_rules():
    session = db_session()
    back = url_for("privacy.retention_page")

    def act() -> tuple[str, str]:
        for key in retention.KINDS:
            raw = request.form.get(f"years-{key}", "").strip()
            if not raw.isdigit():
                raise ValidationFailed(f"{retention.KINDS[key].label}: the number of years must be a whole number")
            retention.set_rule(session, key, actor_id=current_user.id, years=int(raw),
                               active=request.form.get(f"active-{key}") == "on")
        return "Retention rules saved. Nothing is removed until someone starts a run.", back

    return run_action(session, act, back=back, failed="Not saved: ")


@bp.route("/retention/run", methods=["POST"])
@roles(Role.ADMIN)
def retention_run():
    session = db_session()
    back = url_for("privacy.retention_page")
    dry_run = request.form.get("mode") != "run"

    def act() -> tuple[str, str, tuple]:
        done = retention.start_run(session, actor_id=current_user.id, dry_run=dry_run)
        words = "Dry run started: it lists what the rules would remove." if dry_run else "Retention run started."
        return words, url_for("privacy.retention_run_view", run_id=done.value.id), done.effects

    return run_action(session, act, back=back, failed="Not started: ")


@bp.route("/retention/runs/<int:run_id>")
@roles(Role.ADMIN)
def retention_run_view(run_id: int):
    session = db_session()
    run = retention.get_run(session, run_id)
    return render_template("retention_run.html", run=run, kinds=retention.KINDS)


# --- subject access and erasure ----------------------------------------------------------------------------

@bp.route("/constituents/<int:constituent_id>/access", methods=["POST"])
@roles(*HOLDERS)
def request_access(constituent_id: int):
    session = db_session()
    back = url_for("constituents.view", constituent_id=constituent_id) + "#their-data"

    def act() -> tuple[str, str, tuple]:
        done = rights.request_access(session, constituent_id, actor_id=current_user.id)
        return ("Gathering everything held about this person; the file appears here when it is ready.",
                back, done.effects)

    return run_action(session, act, back=back, failed="Not started: ")


# A POST (a button, with its CSRF token), as the whole-data export is: each download is audited, and another
# site must not be able to send a supervisor's browser here.
@bp.route("/access/<int:export_id>.zip", methods=["POST"])
@roles(*HOLDERS)
def access_download(export_id: int):
    session = db_session()
    try:
        export, data = rights.download_export(session, export_id, actor_id=current_user.id)
    except ValidationFailed as exc:
        abort(409, description=str(exc))  # the error handler rolls back
    session.commit()  # the download is audited
    return Response(data, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="subject-access-{export.constituent_id}-{export.id}.zip"'})


@bp.route("/constituents/<int:constituent_id>/erase", methods=["GET", "POST"])
@roles(Role.ADMIN)
def erase(constituent_id: int):
    session = db_session()
    person = session.get(Constituent, constituent_id)
    if person is None:
        abort(404)
    back = url_for("privacy.erase", constituent_id=constituent_id)
    if request.method == "POST":
        def act() -> tuple[str, str]:
            if request.form.get("confirm") != "erase":
                raise ValidationFailed("tick the box to confirm: an erasure cannot be undone")
            erasure = rights.erase_constituent(session, constituent_id, actor_id=current_user.id,
                                               reason=request.form.get("reason", ""))
            c = erasure.counts
            return (f"Erased: {c['messages']} messages, {c['cases']} cases and {c['answers']} answers no longer "
                    "hold anything about the person.", url_for("constituents.view", constituent_id=constituent_id))

        return run_action(session, act, back=back, failed="")
    in_force = [h for kind, oid in [("constituent", person.id)] for h in holds.holds_on(session, kind, oid)]
    return render_template("erase.html", person=person, holds=in_force, form=ActionForm(),
                           erasure=rights.erasure_of(session, person.id))
