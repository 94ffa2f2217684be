"""Admin: the office's data whole — "Export all data" as a job with progress and a download, and backups."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, jsonify, render_template, send_file, url_for
from flask_login import current_user

from archive import export_runs
from archive.backup import backup_status
from correspondence.models import Role
from web import db_session, settings
from web.access import roles
from web.forms import ActionForm
from web.outcome import run_action

bp = Blueprint("admin_data", __name__, url_prefix="/admin/data")


def _exports_dir() -> Path:
    return settings().instance_dir / "exports"


@bp.route("/")
@roles(Role.ADMIN)
def index():
    session = db_session()
    status = backup_status(session, configured=settings().backup_dir is not None)
    return render_template("admin_data.html", exports=export_runs.recent_exports(session), backups=status,
                           backup_dir=settings().backup_dir, form=ActionForm())


@bp.route("/export", methods=["POST"])
@roles(Role.ADMIN)
def export_start():
    session = db_session()

    def work():
        done = export_runs.queue_export(session, actor_id=current_user.id)
        return ("Exporting all data: this page shows its progress.",
                url_for("admin_data.export_view", run_id=done.value.id), done.effects)

    return run_action(session, work, back=url_for("admin_data.index"), failed="No export: ")


@bp.route("/export/<int:run_id>")
@roles(Role.ADMIN)
def export_view(run_id: int):
    run = export_runs.get_export(db_session(), run_id)
    return render_template("admin_data_export.html", run=run, form=ActionForm())


@bp.route("/export/<int:run_id>.json")
@roles(Role.ADMIN)
def export_progress(run_id: int):
    run = export_runs.get_export(db_session(), run_id)
    return jsonify({"state": run.state, "done": run.progress, "total": 100, "error": run.error})


# A POST (a button, with its CSRF token): taking a copy of everything is audited, so it changes the database.
@bp.route("/export/<int:run_id>/download", methods=["POST"])
@roles(Role.ADMIN)
def export_download(run_id: int):
    session = db_session()
    run = export_runs.get_export(session, run_id)
    path = export_runs.export_path(_exports_dir(), run)  # NotFound (404) until it is ready
    export_runs.record_download(session, run.id, actor_id=current_user.id)
    session.commit()
    return send_file(path, mimetype="application/gzip", as_attachment=True, download_name=path.name)
