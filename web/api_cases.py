"""The staff API's cases: list, read, open from a message, add a note, complete a step, change the status.

The same use cases as the case pages (casework.cases); the private parts (notes) are shown only to whom
casework.cases.may_see_private allows, as on the case page.
"""

from __future__ import annotations

from flask import request

from casework import cases as service
from correspondence.errors import NotFound
from correspondence.models import Case, CasePriority, CaseStatus, CaseStep, Staffer, StepKind
from correspondence.services.api_tokens import record_api_write
from web import db_session
from web.api import bp
from web.api_core import JSON_OBJECT, ApiError, Reply, allowed_keys, body_object, caller, check_if_match, etag_of
from web.api_resources import (
    ID,
    NULLABLE_ID,
    NULLABLE_TEXT,
    NULLABLE_TIME,
    TEXT,
    TIME,
    _enum_field,
    _id_field,
    _iso,
    operation,
)
from web.api_resources import _text_field as text_field

STEP: JSON_OBJECT = {"type": "object", "required": ["id", "title", "kind"], "properties": {
    "id": ID, "position": {"type": "integer"}, "title": TEXT, "kind": {"enum": [k.value for k in StepKind]},
    "due_at": NULLABLE_TIME, "assignee_id": NULLABLE_ID, "done_at": NULLABLE_TIME}}
CASE: JSON_OBJECT = {"type": "object", "required": ["id", "subject", "status"], "properties": {
    "id": ID, "constituent_id": ID, "category_id": ID, "subject": TEXT, "agency": NULLABLE_TEXT,
    "status": {"enum": [s.value for s in CaseStatus]}, "priority": {"enum": [p.value for p in CasePriority]},
    "caseworker_id": NULLABLE_ID, "opened_at": TIME, "due_at": NULLABLE_TIME, "closed_at": NULLABLE_TIME,
    "release_on_file": {"type": "boolean"}, "source_message_id": NULLABLE_ID,
    "steps": {"type": "array", "items": STEP},
    "notes": {"type": ["array", "null"], "items": {"type": "object", "properties": {
        "id": ID, "author_id": NULLABLE_ID, "text": TEXT, "created_at": TIME}}}}}


def _viewer() -> Staffer | None:
    return db_session().get(Staffer, caller().staffer_id)


def case_json(case: Case, *, full: bool = True) -> JSON_OBJECT:
    data: JSON_OBJECT = {
        "id": case.id, "constituent_id": case.constituent_id, "category_id": case.category_id,
        "subject": case.subject, "agency": case.agency, "status": case.status.value, "priority": case.priority.value,
        "caseworker_id": case.caseworker_id, "opened_at": _iso(case.opened_at), "due_at": _iso(case.due_at),
        "closed_at": _iso(case.closed_at), "release_on_file": service.release_on_file(case),
        "source_message_id": case.source_message_id}
    if full:
        session = db_session()
        data["steps"] = [{"id": s.id, "position": s.position, "title": s.title, "kind": s.kind.value,
                          "due_at": _iso(s.due_at), "assignee_id": s.assignee_id, "done_at": _iso(s.done_at)}
                         for s in service.steps(session, case.id)]
        notes = service.private_notes(session, case, _viewer())
        data["notes"] = None if notes is None else [
            {"id": n.id, "author_id": n.author_id, "text": n.text, "created_at": _iso(n.created_at)} for n in notes]
    return data


@bp.route("/cases", methods=["GET"])
@operation(method="GET", scope="cases:read", tag="cases", summary="List cases",
           parameters=[{"name": "mine", "in": "query", "schema": {"enum": ["yes", "no"]},
                        "description": "Only the cases you are the caseworker of."},
                       {"name": "closed", "in": "query", "schema": {"enum": ["yes", "no"]},
                        "description": "Include resolved and closed cases."}],
           responses={200: ("Up to 200 cases, soonest due first", {
               "type": "object", "required": ["items", "next"],
               "properties": {"items": {"type": "array", "items": CASE}, "next": NULLABLE_TEXT}})})
def cases_list() -> Reply:
    items = service.list_cases(db_session(), caseworker_id=caller().staffer_id
                               if request.args.get("mine") == "yes" else None,
                               open_only=request.args.get("closed") != "yes", limit=200)
    return Reply({"items": [case_json(c, full=False) for c in items], "next": None})


@bp.route("/cases/<int:case_id>", methods=["GET"])
@operation(method="GET", scope="cases:read", tag="cases", summary="Read a case with its steps (and notes)",
           responses={200: ("The case; notes are null unless you may see its private parts; ETag for updates",
                            CASE)})
def cases_read(case_id: int) -> Reply:
    body = case_json(service.get_case(db_session(), case_id))
    return Reply(body, etag=etag_of(body))


CASE_OPEN: JSON_OBJECT = {"type": "object", "additionalProperties": False, "required": ["message_id", "category_id"],
                          "properties": {"message_id": ID, "category_id": ID, "caseworker_id": NULLABLE_ID}}


@bp.route("/cases", methods=["POST"])
@operation(method="POST", scope="cases:write", tag="cases", create=True, request_schema=CASE_OPEN,
           summary="Open a case from a message", responses={201: ("The case, with its category's steps", CASE)})
def cases_open() -> Reply:
    session = db_session()
    data = body_object()
    allowed_keys(data, CASE_OPEN["properties"])
    case = service.open_from_message(session, int(_id_field(data, "message_id", nullable=False) or 0),
                                     category_id=int(_id_field(data, "category_id", nullable=False) or 0),
                                     actor_id=caller().staffer_id, caseworker_id=_id_field(data, "caseworker_id"))
    record_api_write(session, caller(), operation="case.open", object_type="case", object_id=case.id)
    return Reply(case_json(case), status=201)


NOTE: JSON_OBJECT = {"type": "object", "additionalProperties": False, "required": ["text"],
                     "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 10000}}}


@bp.route("/cases/<int:case_id>/notes", methods=["POST"])
@operation(method="POST", scope="cases:write", tag="cases", create=True, request_schema=NOTE,
           summary="Add a private note to a case",
           responses={201: ("The note", {"type": "object", "required": ["id"], "properties": {
               "id": ID, "case_id": ID, "text": TEXT}})})
def cases_note(case_id: int) -> Reply:
    session = db_session()
    data = body_object()
    allowed_keys(data, NOTE["properties"])
    note = service.add_note(session, case_id, text_field(data, "text", limit=10_000, required=True) or "",
                            actor_id=caller().staffer_id)
    record_api_write(session, caller(), operation="case.note", object_type="case", object_id=case_id)
    return Reply({"id": note.id, "case_id": case_id, "text": note.text}, status=201)


@bp.route("/cases/<int:case_id>/steps/<int:step_id>/done", methods=["POST"])
@operation(method="POST", scope="cases:write", tag="cases", summary="Mark a step of a case done",
           responses={200: ("The case as it is now", CASE)})
def cases_step_done(case_id: int, step_id: int) -> Reply:
    """The agency inquiry step needs the signed privacy release on file first (409 otherwise is a 422)."""
    session = db_session()
    step = session.get(CaseStep, step_id)
    if step is None or step.case_id != case_id:
        raise NotFound(f"case {case_id} has no step {step_id}")
    service.complete_step(session, step_id, actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="case.step_done", object_type="case", object_id=case_id,
                     detail={"step_id": step_id})
    case = service.get_case(session, case_id)
    session.refresh(case)
    return Reply(case_json(case))


CASE_STATUS: JSON_OBJECT = {"type": "object", "additionalProperties": False, "required": ["status"], "properties": {
    "status": {"enum": [s.value for s in CaseStatus]}, "outcome": {"type": "string", "maxLength": 5000}}}


@bp.route("/cases/<int:case_id>", methods=["PATCH"])
@operation(method="PATCH", scope="cases:write", tag="cases", update=True, request_schema=CASE_STATUS,
           summary="Change a case's status (with the outcome when resolving)",
           responses={200: ("The case as it is now; its new ETag", CASE)})
def cases_status(case_id: int) -> Reply:
    session = db_session()
    data = body_object()
    allowed_keys(data, CASE_STATUS["properties"])
    target = _enum_field(CaseStatus, data, "status")
    if target is None:
        raise ApiError(422, "not_valid", "choose a status", {"status": "required"})
    outcome = text_field(data, "outcome", limit=5000)
    check_if_match(case_json(service.get_case(session, case_id)))
    service.set_status(session, case_id, target, actor_id=caller().staffer_id, outcome=outcome)
    session.flush()
    record_api_write(session, caller(), operation="case.status", object_type="case", object_id=case_id,
                     detail={"status": target.value})
    case = service.get_case(session, case_id)
    session.refresh(case)
    body = case_json(case)
    return Reply(body, etag=etag_of(body))
