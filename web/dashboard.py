"""The backlog dashboard, the supervisor's first screen."""

from __future__ import annotations

from flask import Blueprint, render_template

from correspondence.effects import Effect
from correspondence.models import Role
from insight.dashboard import AGE_BUCKETS, backlog
from web import replica_session
from web.access import roles
from web.forms import ActionForm
from web.outcome import after_commit

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


# The backlog counts half a large mailbox (every open message); supervisors open the page many times
# a day, so each web process keeps the last count for MAILROOM_DASHBOARD_CACHE_SECONDS (default 30;
# 0 in tests) and says how old it is, with a link that counts again.


@bp.route("/")
@roles(Role.ADMIN, Role.SUPERVISOR)
def index():
    import time

    from flask import current_app, request

    from casework.reminders import CASE_AGES, case_ageing

    session = replica_session()  # counts a few seconds old are fine here: the page says how old they are
    ttl = current_app.extensions["mailroom.settings"].dashboard_cache_seconds
    cached = current_app.extensions.get("mailroom.backlog")
    if cached is None or time.monotonic() - cached[0] >= ttl or request.args.get("fresh"):
        cached = (time.monotonic(), backlog(session, zone=current_app.extensions["mailroom.settings"].zone),
                  case_ageing(session))
        current_app.extensions["mailroom.backlog"] = cached
    from archive.backup import backup_status

    backups = backup_status(session, configured=current_app.extensions["mailroom.settings"].backup_dir is not None)
    return render_template("dashboard.html", data=cached[1], age_seconds=int(time.monotonic() - cached[0]),
                           buckets=[label for label, _a, _b in AGE_BUCKETS], cases=cached[2],
                           case_buckets=[label for label, _a, _b in CASE_AGES], backups=backups)


@bp.route("/analytics")
@roles(Role.ADMIN, Role.SUPERVISOR)
def analytics():
    """The office at a glance: read from the latest snapshot (a job refreshes it every five minutes)."""
    from insight import analytics as service
    from web.charts import draw

    session = replica_session()  # the snapshot is minutes old by design; the replica's lag adds nothing
    snapshot = service.latest(session)
    if snapshot is None:  # a new install: the job has not run yet; ask for it and say so
        after_commit((Effect.of("analytics"),))
        return render_template("analytics.html", snapshot=None, charts={}, draw=draw, stale=True, form=ActionForm())
    charts = snapshot.data.get("charts", {})
    return render_template("analytics.html", snapshot=snapshot, charts=charts, draw=draw,
                           stale=service.is_stale(snapshot), form=ActionForm())


@bp.route("/analytics/recompute", methods=["POST"])
@roles(Role.ADMIN, Role.SUPERVISOR)
def analytics_recompute():
    from flask import flash, redirect, url_for

    if after_commit((Effect.of("analytics"),)):
        flash("Recomputing: reload this page in a few seconds.", "ok")
    else:
        flash("Could not queue the recompute (the queue is not reachable); try again in a minute.", "error")
    return redirect(url_for("dashboard.analytics")), 303


@bp.route("/analytics/<chart>.csv")
@roles(Role.ADMIN, Role.SUPERVISOR)
def analytics_csv(chart: str):
    from flask import Response, abort

    from correspondence.csvsafe import to_csv
    from insight import analytics as service

    snapshot = service.latest(replica_session())
    data = (snapshot.data.get("charts", {}) if snapshot else {}).get(chart)
    if data is None:
        abort(404, description=f"There is no chart {chart!r}.")
    return Response(to_csv(data["columns"], data["rows"]), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{chart}.csv"'})
