"""The backlog dashboard, the supervisor's first screen."""

from __future__ import annotations

from flask import Blueprint, render_template

from correspondence.models import Role
from correspondence.services.dashboard import AGE_BUCKETS, backlog
from web import db_session
from web.access import roles

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.route("/")
@roles(Role.ADMIN, Role.SUPERVISOR)
def index():  # type: ignore[no-untyped-def]
    from casework.reminders import CASE_AGES, case_ageing

    session = db_session()
    return render_template("dashboard.html", data=backlog(session),
                           buckets=[label for label, _a, _b in AGE_BUCKETS], cases=case_ageing(session),
                           case_buckets=[label for label, _a, _b in CASE_AGES])
