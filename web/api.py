"""The JSON API: intake endpoints for web forms and CWC deliveries, authenticated by source token; the
staff API's OpenAPI document and reference page (its resources: web/api_resources.py, plumbing:
web/api_core.py)."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from correspondence.errors import DomainError
from correspondence.services.tokens import verify_token
from intake.cwc import incoming_cwc
from intake.receive import Received, receive
from intake.webform import WebformInvalid, incoming_webform, validate
from web import csrf, db_session, settings
from web.access import api_token, public
from web.outcome import after_commit

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _error(code: int, message: str, **extra: object):
    return {"error": {"code": code, "message": message, **extra}}, code


def _token():
    header = request.headers.get("Authorization", "")
    plain = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("X-Mailroom-Token")
    return verify_token(db_session(), plain)



def _closed():
    """The office has closed (archive.closing): a form that still posts is told so, with the successor."""
    from archive.closing import closed_message, closed_successor

    successor = closed_successor(db_session())
    if successor is None:
        return None
    return _error(410, closed_message(settings().office_name, successor),
                  successor={"name": successor.name, "contact": successor.contact})


def _accepted(result: Received):
    if result.quarantined:
        return _error(422, f"stored but quarantined: {result.quarantined}", message_id=result.message_id)
    return {"message_id": result.message_id, "duplicate": result.duplicate}, 202


@bp.route("/intake/webform", methods=["POST"])
@csrf.exempt
@api_token
def intake_webform():
    session = db_session()
    if (closed := _closed()) is not None:
        return closed
    token = _token()
    if token is None:
        return _error(401, "a valid intake token is required (Authorization: Bearer <token>)")
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        return _error(400, "send a JSON object or a form-encoded body")
    try:
        fields = validate(data)
        result = receive(session, incoming_webform(fields, token_id=token.id, source=f"webform:{token.name}"),
                         max_bytes=settings().max_message_bytes)
    except WebformInvalid as exc:
        session.commit()  # the token's last use is still worth recording
        return _error(400, "some fields are missing or not valid", fields=exc.errors)
    except DomainError as exc:
        session.rollback()
        return _error(400, str(exc))
    session.commit()
    after_commit(result.effects)
    return _accepted(result)


@bp.route("/intake/cwc", methods=["POST"])
@csrf.exempt
@api_token
def intake_cwc():
    session = db_session()
    if (closed := _closed()) is not None:
        return closed
    token = _token()
    if token is None:
        return _error(401, "a valid intake token is required (Authorization: Bearer <token>)")
    raw = request.get_data(cache=False)
    if not raw:
        return _error(400, "the request body must be a CWC XML delivery")
    result = receive(session, incoming_cwc(raw, f"cwc:{token.name}"), max_bytes=settings().max_message_bytes)
    session.commit()
    after_commit(result.effects)
    current_app.logger.info("cwc delivery message_id=%s duplicate=%s", result.message_id, result.duplicate)
    return _accepted(result)


# --- The staff API: its document and reference page; the resources live in web/api_resources.py ----

@bp.route("/openapi.json")
@public
def openapi():
    """The OpenAPI 3.1 document, generated from the operations the views declare (web.api_core)."""
    return jsonify(_spec())


@bp.route("/reference")
@public
def reference():
    """The API reference, rendered on the server from the same document (nothing is fetched from elsewhere)."""
    spec = _spec()
    return render_template("api_reference.html", spec=spec, operations=_reference_rows(spec))


def _spec() -> dict[str, Any]:
    from web.api_core import build_spec
    from web.api_resources import SCHEMAS

    cached = current_app.extensions.get("mailroom.openapi")
    if cached is None:
        cached = current_app.extensions["mailroom.openapi"] = build_spec(current_app, SCHEMAS)
    return cached


def _reference_rows(spec: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Operations grouped by tag, in the document's order, each with its method, path and shapes."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            ok = {code: r for code, r in op.get("responses", {}).items() if code.startswith("2")}
            groups.setdefault(op["tags"][0], []).append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""), "parameters": op.get("parameters", []),
                "body": json.dumps(body, indent=2) if body else None,
                "answers": [(code, r.get("description", ""),
                             json.dumps(r.get("content", {}).get("application/json", {}).get("schema"), indent=2)
                             if r.get("content") else None) for code, r in ok.items()],
                "errors": sorted(code for code in op.get("responses", {}) if not code.startswith("2"))})
    return list(groups.items())


from web import api_cases, api_resources, api_runs  # noqa: E402,F401 - registers the staff API's routes on bp
