"""One search box: messages (full text, ranked and highlighted), constituents, cases and letters."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, request
from sqlalchemy.exc import DBAPIError

from insight import search as service
from web import replica_session
from web.access import ALL_STAFF, roles
from web.inputs import parse_id

bp = Blueprint("search", __name__, url_prefix="/search")
log = logging.getLogger(__name__)


@bp.route("/")
@roles(*ALL_STAFF)
def index():
    raw = request.args.get("q", "")[:500]
    page = parse_id(request.args.get("page", "")) or 1  # anything but a positive number is the first page
    # Search reads the replica: a message received a moment ago may be missing for that moment.
    session = replica_session()
    problem = None
    try:
        results = service.search(session, raw, page=page)
    except DBAPIError as exc:  # never a 500 for what a person typed; say what happened instead
        session.rollback()
        log.warning("search failed q=%r: %s", raw, exc)
        results = service.Results(service.parse(""))
        problem = "That search could not be run; try fewer or simpler words."
    return render_template("search.html", q=raw, results=results, problem=problem)
