"""The activity report: a date range and a segment (or everyone) → counts, response times, a CSV."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from constituents.segments import list_segments
from correspondence.csvsafe import rows_to_csv
from correspondence.errors import DomainError
from correspondence.models import Role
from insight import reports
from web import db_session
from web.access import roles
from web.forms import ActionForm
from web.outcome import after_commit

bp = Blueprint("reports", __name__, url_prefix="/reports")
READERS = (Role.ADMIN, Role.SUPERVISOR)
log = logging.getLogger(__name__)


@bp.route("/activity", methods=["GET", "POST"])
@roles(*READERS)
def activity():
    session = db_session()
    if request.method == "POST":
        try:
            params = reports.parse_params(request.form, session=session)
            done = reports.queue_report(session, params, actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            flash(f"No report: {exc}", "error")
            return redirect(url_for("reports.activity")), 303
        session.commit()
        after_commit(done.effects)  # always a job: no page waits on counting (DESIGN invariant 6)
        return redirect(url_for("reports.view", run_id=done.value.id)), 303
    today = date.today()
    return render_template("report_new.html", segments=list_segments(session), form=ActionForm(),
                           start=(today - timedelta(days=30)).isoformat(), end=today.isoformat())


def _run_or_404(session, run_id: int):
    return reports.get_run(session, run_id)


@bp.route("/<int:run_id>")
@roles(*READERS)
def view(run_id: int):
    session = db_session()
    run = _run_or_404(session, run_id)
    segment = None
    if run.params.get("segment_id"):
        from correspondence.models import Segment

        segment = session.get(Segment, run.params["segment_id"])
    return render_template("report.html", run=run, result=run.result, segment=segment)


@bp.route("/<int:run_id>.json")
@roles(*READERS)
def progress(run_id: int):
    run = _run_or_404(db_session(), run_id)
    return jsonify({"state": run.state, "done": run.progress, "total": 100, "error": run.error})


@bp.route("/<int:run_id>.csv")
@roles(*READERS)
def download(run_id: int):
    run = _run_or_404(db_session(), run_id)
    if run.result is None:
        abort(409, description="The report is not finished yet.")
    return Response(rows_to_csv(("section", "item", "value"), reports.csv_rows(run.result)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="activity-report-{run.id}.csv"'})

