"""The staff API's apply-to-all runs: the dry run, the start, and the progress of a run.

The same use cases as the answer pages (web/letters.py): drafting.apply.plan for the dry run,
drafting.choose.check_choice then drafting.apply.queue_apply_run for the start, whose job is queued
only after the commit (web.api_core).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from correspondence.errors import NotFound, ValidationFailed
from correspondence.ids import MAX_ID
from correspondence.models import ApplyRun, Message, MessageStatus, ResponseMessage
from correspondence.models import Response as Answer
from correspondence.services.api_tokens import record_api_write
from drafting.apply import Options, Plan, Policy, batch_message_ids, plan, queue_apply_run
from drafting.choose import check_choice
from outbound.franking import Rules
from web import db_session, settings
from web.api import bp
from web.api_core import JSON_OBJECT, ApiError, Reply, allowed_keys, body_object, caller
from web.api_resources import ID, operation

RUN_REQUEST: JSON_OBJECT = {
    "type": "object", "additionalProperties": False, "required": ["version_id"],
    "properties": {
        "version_id": ID,
        "batch_id": ID,
        "message_ids": {"type": "array", "items": ID, "minItems": 1, "maxItems": 5000},
        "district": {"enum": ["everyone", "in_district"]},
        "skip_answered_campaign": {"type": "boolean"},
        "leave_additions": {"type": "boolean"},
        "confirm_mismatch": {"type": "boolean"}}}
COUNT = {"type": "integer"}
PLAN: JSON_OBJECT = {"type": "object", "required": ["messages", "people", "letters"], "properties": {
    **{k: COUNT for k in ("messages", "people", "letters", "covered", "email", "print", "with_additions", "closed",
                          "unsolicited")},
    "left_out": {"type": "object", "additionalProperties": COUNT},
    "mass_mail": {"type": ["object", "null"]}}}
RUN: JSON_OBJECT = {"type": "object", "required": ["id", "state"], "properties": {
    "id": ID, "state": {"type": "string"}, "version_id": ID, "batch_id": {"type": ["integer", "null"]},
    **{k: COUNT for k in ("total", "done", "letters", "people", "people_done", "covered", "closed", "skipped")},
    "error": {"type": ["string", "null"]}, "print_ready": {"type": "boolean"},
    "delivery": {"type": "object", "additionalProperties": COUNT},
    "messages": {"type": "object", "additionalProperties": COUNT}}}


def _selection(data: JSON_OBJECT) -> tuple[int, int | None, list[int], Options]:
    """The letter, the batch or the messages, and the options of a run request."""
    allowed_keys(data, RUN_REQUEST["properties"])
    version_id = data.get("version_id")
    batch_id = data.get("batch_id")
    ids = data.get("message_ids")
    fields: dict[str, str] = {}
    if isinstance(version_id, bool) or not isinstance(version_id, int) or not 1 <= version_id <= MAX_ID:
        fields["version_id"] = "the approved letter version to send"
    if (batch_id is None) == (ids is None):
        fields["batch_id"] = "give a batch_id or message_ids, not both"
    if batch_id is not None and (isinstance(batch_id, bool) or not isinstance(batch_id, int)
                                 or not 1 <= batch_id <= MAX_ID):
        fields["batch_id"] = "a batch number"
    if ids is not None and (not isinstance(ids, list) or not 1 <= len(ids) <= 5000 or not all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in ids)):
        fields["message_ids"] = "a list of 1 to 5000 message numbers"
    for flag in ("skip_answered_campaign", "leave_additions", "confirm_mismatch"):
        if flag in data and not isinstance(data[flag], bool):
            fields[flag] = "true or false"
    if fields:
        raise ApiError(422, "not_valid", "the run request is not complete", fields)
    try:
        options = Options.from_mapping({k: data.get(k) for k in ("district", "skip_answered_campaign",
                                                                 "leave_additions")})
    except ValidationFailed as exc:
        raise ApiError(422, "not_valid", str(exc), {"district": "everyone or in_district"}) from exc
    message_ids = batch_message_ids(db_session(), batch_id) if batch_id is not None else sorted(set(ids or []))
    return int(version_id or 0), batch_id if batch_id is None else int(batch_id), message_ids, options


def plan_json(result: Plan) -> JSON_OBJECT:
    verdict = result.franking
    return {"messages": result.messages, "people": result.people, "letters": result.letters,
            "covered": result.covered, "email": result.email, "print": result.print,
            "with_additions": result.with_additions, "closed": result.closed, "unsolicited": result.unsolicited,
            "left_out": dict(result.counts),
            "mass_mail": None if verdict is None else {"kind": verdict.kind, "pieces": verdict.pieces,
                                                       "threshold": verdict.threshold,
                                                       "in_blackout": bool(verdict.blocked_by)}}


@bp.route("/runs/dry-run", methods=["POST"])
@operation(method="POST", scope="runs:read", tag="runs", request_schema=RUN_REQUEST,
           summary="Dry run: what answering this mail with this letter would do",
           responses={200: ("The letters, people and messages it would make, answer and leave out", PLAN)})
def runs_dry_run() -> Reply:
    """Changes nothing; the same walk and rules as the run itself (and the mass-mail guard's verdict)."""
    version_id, _batch_id, message_ids, options = _selection(body_object())
    result = plan(db_session(), message_ids, version_id=version_id, options=options, policy=Policy.of(settings()),
                  rules=Rules.of(settings()))
    return Reply(plan_json(result))


@bp.route("/runs", methods=["POST"])
@operation(method="POST", scope="runs:write", tag="runs", request_schema=RUN_REQUEST, create=True,
           summary="Start an apply-to-all run",
           responses={202: ("The run, queued; follow it with GET /api/v1/runs/{run_id}", RUN)})
def runs_start() -> Reply:
    """The letter must be approved and current, and fit this mail (or confirm_mismatch: true)."""
    session = db_session()
    data = body_object()
    version_id, batch_id, message_ids, options = _selection(data)
    if not message_ids:
        raise ApiError(422, "not_valid", "there are no messages to answer in that batch or selection")
    check_choice(session, version_id, message_ids, batch_id, bool(data.get("confirm_mismatch")))
    rules = Rules.of(settings())
    done = (queue_apply_run(session, version_id, batch_id=batch_id, actor_id=caller().staffer_id, options=options,
                            rules=rules) if batch_id is not None else
            queue_apply_run(session, version_id, message_ids=message_ids, actor_id=caller().staffer_id,
                            options=options, rules=rules))
    session.flush()
    record_api_write(session, caller(), operation="apply_run.start", object_type="apply_run",
                     object_id=done.value.id)
    return Reply(run_json(done.value), status=202, effects=tuple(done.effects))


def run_json(item: ApplyRun) -> JSON_OBJECT:
    session = db_session()
    states = dict(session.execute(select(Answer.state, func.count()).where(Answer.run_id == item.id)
                                  .group_by(Answer.state)).all()) if item.id else {}
    answers: dict[Any, int] = dict(session.execute(select(Message.status, func.count()).where(
        Message.id.in_(select(ResponseMessage.message_id).join(Answer, Answer.id == ResponseMessage.response_id)
                       .where(Answer.run_id == item.id))).group_by(Message.status)).all()) if item.id else {}
    return {"id": item.id, "state": str(item.state), "version_id": item.version_id, "batch_id": item.batch_id,
            "total": item.total or 0, "done": item.done or 0, "letters": item.created_count or 0,
            "people": item.people or 0, "people_done": item.people_done or 0, "covered": item.covered or 0,
            "closed": item.closed or 0, "skipped": item.skipped or 0, "error": item.error,
            "print_ready": bool(item.print_sha256),
            "delivery": {str(getattr(k, "value", k)): v for k, v in states.items()},
            "messages": {"answer_queued": answers.get(MessageStatus.ANSWER_QUEUED, 0),
                         "responded": answers.get(MessageStatus.RESPONDED, 0)}}


@bp.route("/runs/<int:run_id>", methods=["GET"])
@operation(method="GET", scope="runs:read", tag="runs", summary="The progress of a run",
           responses={200: ("Where the run is", RUN)})
def runs_progress(run_id: int) -> Reply:
    item = db_session().get(ApplyRun, run_id)
    if item is None:
        raise NotFound(f"no run {run_id}")
    return Reply(run_json(item))
