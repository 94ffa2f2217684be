"""The staff API's resources: messages, constituents, letters and versions, batches, segments, search.

Each view parses its input, calls the same use case the pages call (with the token's staffer as the
actor, so the same role rules apply), adds the audit event naming the token for a write, and answers
with the resource as JSON. Declarations (@operation) are the OpenAPI document (web.api_core).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from flask import Response, request
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from batching import batches as batch_service
from batching import queries as batch_queries
from constituents import duplicates, segments
from constituents import records as constituent_records
from correspondence.errors import NotFound
from correspondence.ids import MAX_ID
from correspondence.models import (
    AuditEvent,
    Batch,
    BatchStatus,
    Constituent,
    FormLetter,
    LetterVersion,
    Message,
    MessageStatus,
    Stance,
    VersionState,
)
from correspondence.services import messages as message_service
from correspondence.services.api_tokens import record_api_write
from correspondence.services.inbox import SORTS, list_inbox
from drafting import letters as letter_service
from drafting import review
from web import db_session, settings
from web.api import bp
from web.api_core import JSON_OBJECT, ApiError, Reply, allowed_keys, body_object, caller, check_if_match, etag_of
from web.api_core import operation as _operation
from web.inputs import BadParameter, segment_filter

E = TypeVar("E", bound=Enum)


def operation(**kwargs: Any) -> Callable[[Callable[..., Reply]], Callable[..., Response]]:
    """web.api_core.operation on this blueprint."""
    return _operation(bp.name, **kwargs)


# --- Shapes -----------------------------------------------------------------------------------------

def _ref(name: str) -> JSON_OBJECT:
    return {"$ref": f"#/components/schemas/{name}"}


ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
NULLABLE_ID = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ID}
TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": ["string", "null"]}
STANCE = {"type": ["string", "null"], "enum": [s.value for s in Stance] + [None]}

SCHEMAS: dict[str, JSON_OBJECT] = {
    "Message": {"type": "object", "properties": {
        "id": ID, "received_at": TIME, "channel": TEXT, "status": {"enum": [s.value for s in MessageStatus]},
        "subject": TEXT, "from_name": NULLABLE_TEXT, "from_address": NULLABLE_TEXT, "constituent_id": NULLABLE_ID,
        "assignee_id": NULLABLE_ID, "topic_id": NULLABLE_ID, "stance": STANCE, "batch_id": NULLABLE_ID,
        "due_at": NULLABLE_TIME, "body_text": TEXT},
        "required": ["id", "received_at", "channel", "status", "subject"]},
    "Constituent": {"type": "object", "properties": {
        "id": ID, **{k: NULLABLE_TEXT for k in constituent_records.EDITABLE},
        "district_status": TEXT, "merged_into_id": NULLABLE_ID, "created_at": TIME,
        "emails": {"type": "array", "items": TEXT}, "phones": {"type": "array", "items": TEXT},
        "tags": {"type": "array", "items": TEXT}},
        "required": ["id", "emails", "phones", "tags"]},
    "LetterVersion": {"type": "object", "properties": {
        "id": ID, "letter_id": ID, "number": {"type": "integer"}, "state": {"enum": [s.value for s in VersionState]},
        "subject": TEXT, "body": TEXT, "author_id": NULLABLE_ID, "based_on_id": NULLABLE_ID,
        "submitted_at": NULLABLE_TIME, "decided_by_id": NULLABLE_ID, "decided_at": NULLABLE_TIME,
        "updated_at": TIME}, "required": ["id", "letter_id", "number", "state", "subject", "body"]},
    "Letter": {"type": "object", "properties": {
        "id": ID, "title": TEXT, "topic_id": NULLABLE_ID, "stance": STANCE, "tags": {"type": "array", "items": TEXT},
        "current_version_id": NULLABLE_ID, "retired": {"type": "boolean"}, "usage_count": {"type": "integer"},
        "versions": {"type": "array", "items": _ref("LetterVersion")}},
        "required": ["id", "title", "retired"]},
    "Batch": {"type": "object", "properties": {
        "id": ID, "title": TEXT, "status": {"enum": [s.value for s in BatchStatus]}, "topic_id": NULLABLE_ID,
        "stance": STANCE, "assignee_id": NULLABLE_ID, "member_count": {"type": "integer"},
        "source": NULLABLE_TEXT, "created_at": TIME}, "required": ["id", "title", "status", "member_count"]},
}


def _page(item: str) -> JSON_OBJECT:
    return {"type": "object", "required": ["items", "next"], "properties": {
        "items": {"type": "array", "items": _ref(item)}, "next": NULLABLE_TEXT}}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def message_json(m: Message, *, full: bool = True) -> JSON_OBJECT:
    data: JSON_OBJECT = {
        "id": m.id, "received_at": _iso(m.received_at), "channel": m.channel.value, "status": m.status.value,
        "subject": m.subject, "from_name": m.from_name, "from_address": m.from_address,
        "constituent_id": m.constituent_id, "assignee_id": m.assignee_id, "topic_id": m.topic_id,
        "stance": m.stance.value if m.stance else None, "batch_id": m.batch_id, "due_at": _iso(m.due_at)}
    if full:
        data["body_text"] = m.body_text
    return data


def constituent_json(c: Constituent) -> JSON_OBJECT:
    data: JSON_OBJECT = {"id": c.id, **{k: getattr(c, k) for k in constituent_records.EDITABLE}}
    data.update({"district_status": c.district_status.value, "merged_into_id": c.merged_into_id,
                 "created_at": _iso(c.created_at), "emails": [e.address for e in c.emails],
                 "phones": [p.number for p in c.phones], "tags": sorted(t.tag for t in c.tags)})
    return data


def version_json(v: LetterVersion) -> JSON_OBJECT:
    return {"id": v.id, "letter_id": v.letter_id, "number": v.number, "state": v.state.value,
            "subject": v.subject, "body": v.body, "author_id": v.author_id, "based_on_id": v.based_on_id,
            "submitted_at": _iso(v.submitted_at), "decided_by_id": v.decided_by_id,
            "decided_at": _iso(v.decided_at), "updated_at": _iso(v.updated_at)}


def letter_json(letter: FormLetter, versions: list[LetterVersion] | None = None) -> JSON_OBJECT:
    data: JSON_OBJECT = {
        "id": letter.id, "title": letter.title, "topic_id": letter.topic_id,
        "stance": letter.stance.value if letter.stance else None, "tags": list(letter.tags or []),
        "current_version_id": letter.current_version_id, "retired": letter.retired,
        "usage_count": letter.usage_count}
    if versions is not None:
        data["versions"] = [version_json(v) for v in versions]
    return data


def batch_json(b: Batch) -> JSON_OBJECT:
    return {"id": b.id, "title": b.title, "status": b.status.value, "topic_id": b.topic_id,
            "stance": b.stance.value if b.stance else None, "assignee_id": b.assignee_id,
            "member_count": b.member_count, "source": b.source, "created_at": _iso(b.created_at)}


# --- Reading typed values from a JSON body ---------------------------------------------------------

def _id_field(data: JSON_OBJECT, key: str, *, nullable: bool = True) -> int | None:
    value = data.get(key)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ApiError(422, "not_valid", f"{key} must be a number", {key: "must be a number"})
    return value


def _text_field(data: JSON_OBJECT, key: str, *, limit: int, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError(422, "not_valid", f"{key} must be text of at most {limit} characters",
                       {key: f"text of at most {limit} characters"})
    return value


def _enum_field(kind: type[E], data: JSON_OBJECT, key: str) -> E | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError as exc:
        raise ApiError(422, "not_valid", f"{key} is not one of the allowed values",
                       {key: "one of " + ", ".join(str(m.value) for m in kind)}) from exc


def _limit() -> int:
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise ApiError(400, "bad_parameter", "limit must be a number from 1 to 200", {"limit": "1 to 200"})
    return int(raw)


def _after_id() -> int:
    raw = request.args.get("after", "0") or "0"
    if not raw.isdigit() or int(raw) > MAX_ID:
        raise ApiError(400, "bad_parameter", "after must be the next value of the previous page",
                       {"after": "a value from next"})
    return int(raw)


def _bad(exc: BadParameter) -> ApiError:
    return ApiError(400, "bad_parameter", str(exc))


LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200},
         "description": "How many to return (default 50)."}
AFTER_ID = {"name": "after", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{0,10}$"},
            "description": "The `next` value of the previous page."}


# --- Messages ---------------------------------------------------------------------------------------

_INBOX_PARAMS = [
    {"name": "status", "in": "query", "schema": {"enum": ["open", "all", *[s.value for s in MessageStatus]]},
     "description": "A status, or open (the default) or all."},
    {"name": "channel", "in": "query", "schema": {"type": "string"}},
    {"name": "topic", "in": "query", "schema": {"type": "string"}, "description": "A topic id, or none."},
    {"name": "assignee", "in": "query", "schema": {"type": "string"},
     "description": "A staffer id, me, or none."},
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
    {"name": "sort", "in": "query", "schema": {"enum": list(SORTS)}},
    {"name": "after", "in": "query", "schema": {"type": "string"}, "description": "The `next` of the last page."},
    LIMIT,
]


@bp.route("/messages", methods=["GET"])
@operation(method="GET", scope="messages:read", tag="messages", summary="List messages (the inbox)",
           parameters=_INBOX_PARAMS, responses={200: ("A page of messages, oldest or newest first", _page("Message"))})
def messages_list() -> Reply:
    """The inbox's filters and keyset paging: pass `next` back as `after` for the following page."""
    from web.inbox import parse_filter

    try:
        flt = parse_filter(MultiDict(request.args), caller().staffer_id)
    except BadParameter as exc:
        raise _bad(exc) from exc
    page = list_inbox(db_session(), flt, after=request.args.get("after") or None, page_size=_limit(),
                      with_counts=False)
    return Reply({"items": [message_json(m, full=False) for m in page.messages], "next": page.next_cursor})


@bp.route("/messages/<int:message_id>", methods=["GET"])
@operation(method="GET", scope="messages:read", tag="messages", summary="Read a message",
           responses={200: ("The message; ETag for updates", _ref("Message"))})
def messages_read(message_id: int) -> Reply:
    body = message_json(message_service.get_message(db_session(), message_id))
    return Reply(body, etag=etag_of(body))


MESSAGE_UPDATE: JSON_OBJECT = {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
    "topic_id": NULLABLE_ID, "stance": STANCE, "assignee_id": NULLABLE_ID,
    "status": {"enum": [s.value for s in MessageStatus]}}}


@bp.route("/messages/<int:message_id>", methods=["PATCH"])
@operation(method="PATCH", scope="messages:write", tag="messages", update=True,
           summary="Code, assign or change the status of a message", request_schema=MESSAGE_UPDATE,
           responses={200: ("The message as it is now; its new ETag", _ref("Message"))})
def messages_update(message_id: int) -> Reply:
    """Each field given goes through the same use case as the message page: topic, stance, assignee
    (null unassigns), then status. All or nothing."""
    session = db_session()
    data = body_object()
    allowed_keys(data, MESSAGE_UPDATE["properties"])
    actor = caller().staffer_id
    check_if_match(message_json(message_service.get_message(session, message_id)))
    if "topic_id" in data:
        message_service.set_topic(session, message_id, _id_field(data, "topic_id"), actor_id=actor)
    if "stance" in data:
        message_service.set_stance(session, message_id, _enum_field(Stance, data, "stance"), actor_id=actor)
    if "assignee_id" in data:
        assignee = _id_field(data, "assignee_id")
        if assignee is None:
            message_service.unassign_message(session, message_id, actor_id=actor)
        else:
            message_service.assign_message(session, message_id, assignee, actor_id=actor)
    if "status" in data:
        target = _enum_field(MessageStatus, data, "status")
        if target is not None:
            message_service.change_status(session, message_id, target, actor_id=actor)
    session.flush()
    record_api_write(session, caller(), operation="message.update", object_type="message", object_id=message_id,
                     detail={"fields": sorted(data)})
    message = message_service.get_message(session, message_id)
    session.refresh(message)
    body = message_json(message)
    return Reply(body, etag=etag_of(body))


# --- Constituents -------------------------------------------------------------------------------------

_FIND_PARAMS = [
    {"name": "find", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "Name, email, phone, street or ZIP, as in the constituents page's find box."},
    {"name": "zips", "in": "query", "schema": {"type": "string"}, "description": "ZIP codes, comma separated."},
    {"name": "city", "in": "query", "schema": {"type": "string"}},
    {"name": "district", "in": "query", "schema": {"enum": ["", "in_district", "out_of_district", "unknown"]}},
    {"name": "topic_id", "in": "query", "schema": {"type": "string"}},
    {"name": "stance", "in": "query", "schema": {"enum": ["", *[s.value for s in Stance]]}},
    {"name": "batch_id", "in": "query", "schema": {"type": "string"}},
    {"name": "active_from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "active_to", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "tags", "in": "query", "schema": {"type": "string"}},
]


def _segment_filter() -> segments.SegmentFilter:
    args = MultiDict([(k, v) for k, v in request.args.items(multi=True) if k not in ("after", "limit")])
    return segment_filter(args)


@bp.route("/constituents", methods=["GET"])
@operation(method="GET", scope="constituents:read", tag="constituents", summary="Search constituents",
           parameters=[*_FIND_PARAMS, AFTER_ID, LIMIT],
           responses={200: ("A page of constituents by record number", _page("Constituent"))})
def constituents_search() -> Reply:
    """The constituents page's filter (find box and segment fields); pass `next` back as `after`."""
    flt, limit, after = _segment_filter(), _limit(), _after_id()
    people = segments.members(db_session(), flt, limit=limit, after_id=after)
    return Reply({"items": [constituent_json(c) for c in people],
                  "next": str(people[-1].id) if len(people) == limit else None})


@bp.route("/constituents/<int:constituent_id>", methods=["GET"])
@operation(method="GET", scope="constituents:read", tag="constituents", summary="Read a constituent",
           responses={200: ("The record; ETag for updates", _ref("Constituent"))})
def constituents_read(constituent_id: int) -> Reply:
    body = constituent_json(constituent_records.get_constituent(db_session(), constituent_id))
    return Reply(body, etag=etag_of(body))


CONSTITUENT_CREATE: JSON_OBJECT = {"type": "object", "additionalProperties": False, "minProperties": 1,
                      "properties": {**{k: {"type": ["string", "null"], "maxLength": 200}
                                        for k in constituent_records.EDITABLE},
                                     "email": {"type": ["string", "null"], "maxLength": 254},
                                     "phone": {"type": ["string", "null"], "maxLength": 40}}}


@bp.route("/constituents", methods=["POST"])
@operation(method="POST", scope="constituents:write", tag="constituents", create=True,
           request_schema=CONSTITUENT_CREATE,
           summary="Add a constituent (409 with the existing record's id in fields.constituent_id when the "
                   "email is already on file)",
           responses={201: ("The new record; its ETag", _ref("Constituent"))})
def constituents_create() -> Reply:
    """Each value is read as the CSV import reads it (ZIP, state, phone, email); a last name, an email or a
    phone is needed to know the person by. An email on file is never made into a second record: the
    answer is 409 naming that record, to read or change instead."""
    session = db_session()
    data = body_object()
    allowed_keys(data, CONSTITUENT_CREATE["properties"])
    values = {k: _text_field(data, k, limit=200) for k in constituent_records.EDITABLE if k in data}
    email = _text_field(data, "email", limit=254)
    phone = _text_field(data, "phone", limit=40)
    try:
        person = constituent_records.create_constituent(session, values, email=email, phone=phone,
                                                        actor_id=caller().staffer_id)
    except constituent_records.EmailOnFile as exc:
        raise ApiError(409, "already_on_file", str(exc), {"constituent_id": str(exc.constituent_id)}) from exc
    record_api_write(session, caller(), operation="constituent.create", object_type="constituent",
                     object_id=person.id)
    session.refresh(person)
    body = constituent_json(person)
    return Reply(body, status=201, etag=etag_of(body))


CONSTITUENT_UPDATE: JSON_OBJECT = {"type": "object", "additionalProperties": False, "minProperties": 1,
                      "properties": {k: {"type": ["string", "null"], "maxLength": 200}
                                     for k in constituent_records.EDITABLE}}


@bp.route("/constituents/<int:constituent_id>", methods=["PATCH"])
@operation(method="PATCH", scope="constituents:write", tag="constituents", update=True,
           summary="Change a constituent's name or address", request_schema=CONSTITUENT_UPDATE,
           responses={200: ("The record as it is now; its new ETag", _ref("Constituent"))})
def constituents_update(constituent_id: int) -> Reply:
    session = db_session()
    data = body_object()
    allowed_keys(data, constituent_records.EDITABLE)
    values = {k: _text_field(data, k, limit=200) or "" for k in data}
    check_if_match(constituent_json(constituent_records.get_constituent(session, constituent_id)))
    person = constituent_records.update_constituent(session, constituent_id, values, actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="constituent.update", object_type="constituent",
                     object_id=constituent_id, detail={"fields": sorted(data)})
    body = constituent_json(person)
    return Reply(body, etag=etag_of(body))


MERGE: JSON_OBJECT = {"type": "object", "additionalProperties": False, "required": ["other_id"],
         "properties": {"other_id": ID}}


@bp.route("/constituents/<int:constituent_id>/merge", methods=["POST"])
@operation(method="POST", scope="constituents:write", tag="constituents", request_schema=MERGE,
           summary="Merge another record into this one",
           responses={200: ("The kept record, now holding the other's mail and details", _ref("Constituent"))})
def constituents_merge(constituent_id: int) -> Reply:
    """The same merge as the duplicates page (it can be undone there)."""
    session = db_session()
    data = body_object()
    allowed_keys(data, ("other_id",))
    other = _id_field(data, "other_id", nullable=False)
    constituent_records.get_constituent(session, constituent_id)
    duplicates.merge(session, constituent_id, int(other or 0), actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="constituent.merge", object_type="constituent",
                     object_id=constituent_id, detail={"merged_id": other})
    person = constituent_records.get_constituent(session, constituent_id)
    session.refresh(person)
    return Reply(constituent_json(person))


# --- Letters and versions ---------------------------------------------------------------------------

@bp.route("/letters", methods=["GET"])
@operation(method="GET", scope="letters:read", tag="letters", summary="Find form letters",
           parameters=[{"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                       {"name": "topic_id", "in": "query", "schema": ID},
                       {"name": "stance", "in": "query", "schema": {"enum": [s.value for s in Stance]}},
                       {"name": "retired", "in": "query", "schema": {"enum": ["yes", "no"]}}],
           responses={200: ("Up to 200 letters, most recently used first", _page("Letter"))})
def letters_list() -> Reply:
    args = request.args
    topic = args.get("topic_id")
    if topic is not None and (not topic.isdigit() or not 1 <= int(topic) <= MAX_ID):
        raise ApiError(400, "bad_parameter", "topic_id must be a topic number", {"topic_id": "a topic number"})
    stance = args.get("stance")
    if stance is not None and stance not in {s.value for s in Stance}:
        raise ApiError(400, "bad_parameter", "stance must be support, oppose or neutral", {"stance": "not valid"})
    found = letter_service.search_letters(db_session(), text=args.get("q", "")[:200],
                                          topic_id=int(topic) if topic else None,
                                          stance=Stance(stance) if stance else None,
                                          include_retired=args.get("retired") == "yes")
    return Reply({"items": [letter_json(item) for item in found], "next": None})


@bp.route("/letters/<int:letter_id>", methods=["GET"])
@operation(method="GET", scope="letters:read", tag="letters", summary="Read a form letter and its versions",
           responses={200: ("The letter with every version", _ref("Letter"))})
def letters_read(letter_id: int) -> Reply:
    session = db_session()
    letter = letter_service.get_letter(session, letter_id)
    return Reply(letter_json(letter, letter_service.letter_history(session, letter_id)))


LETTER_CREATE: JSON_OBJECT = {"type": "object", "additionalProperties": False, "required": ["title", "body"],
                              "properties": {
    "title": {"type": "string", "minLength": 1, "maxLength": 300}, "body": {"type": "string", "maxLength": 100000},
    "subject": {"type": "string", "maxLength": 300}, "topic_id": NULLABLE_ID, "stance": STANCE,
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 20}}}


@bp.route("/letters", methods=["POST"])
@operation(method="POST", scope="letters:write", tag="letters", create=True, request_schema=LETTER_CREATE,
           summary="Write a new form letter (a draft)",
           responses={201: ("The letter's first version, a draft", _ref("LetterVersion"))})
def letters_create() -> Reply:
    """Merge fields as in the letter editor ({{ constituent.first_name }}, ...); send it for review next."""
    session = db_session()
    data = body_object()
    allowed_keys(data, LETTER_CREATE["properties"])
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 60 for t in tags) or len(tags) > 20:
        raise ApiError(422, "not_valid", "tags must be a list of short words", {"tags": "a list of words"})
    version = letter_service.create_letter(
        session, title=_text_field(data, "title", limit=300, required=True) or "",
        body=_text_field(data, "body", limit=100_000, required=True) or "",
        subject=_text_field(data, "subject", limit=300) or "", topic_id=_id_field(data, "topic_id"),
        stance=_enum_field(Stance, data, "stance"), tags=tags, actor_id=caller().staffer_id)
    record_api_write(session, caller(), operation="letter.create", object_type="form_letter",
                     object_id=version.letter_id, detail={"version_id": version.id})
    return Reply(version_json(version), status=201)


@bp.route("/letter-versions/<int:version_id>", methods=["GET"])
@operation(method="GET", scope="letters:read", tag="letters", summary="Read a letter version",
           responses={200: ("The version; ETag for edits", _ref("LetterVersion"))})
def versions_read(version_id: int) -> Reply:
    body = version_json(letter_service.get_version(db_session(), version_id))
    return Reply(body, etag=etag_of(body))


VERSION_EDIT: JSON_OBJECT = {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
    "subject": {"type": "string", "maxLength": 300}, "body": {"type": "string", "maxLength": 100000}}}


@bp.route("/letter-versions/<int:version_id>", methods=["PATCH"])
@operation(method="PATCH", scope="letters:write", tag="letters", update=True, request_schema=VERSION_EDIT,
           summary="Edit a draft version", responses={200: ("The draft as saved; its new ETag", _ref("LetterVersion"))})
def versions_edit(version_id: int) -> Reply:
    session = db_session()
    data = body_object()
    allowed_keys(data, VERSION_EDIT["properties"])
    version = letter_service.get_version(session, version_id)
    check_if_match(version_json(version))
    subject = _text_field(data, "subject", limit=300)
    body = _text_field(data, "body", limit=100_000)
    letter_service.edit_draft(session, version_id, subject=version.subject if subject is None else subject,
                              body=version.body if body is None else body, actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="letter_version.edit", object_type="letter_version",
                     object_id=version_id)
    session.refresh(version)
    out = version_json(version)
    return Reply(out, etag=etag_of(out))


@bp.route("/letter-versions/<int:version_id>/submit", methods=["POST"])
@operation(method="POST", scope="letters:write", tag="letters", summary="Send your draft for review",
           responses={200: ("The version, now in review", _ref("LetterVersion"))})
def versions_submit(version_id: int) -> Reply:
    session = db_session()
    version = letter_service.submit(session, version_id, actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="letter_version.submit", object_type="letter_version",
                     object_id=version_id)
    return Reply(version_json(version))


@bp.route("/letter-versions/<int:version_id>/approve", methods=["POST"])
@operation(method="POST", scope="letters:approve", tag="letters", summary="Approve a version in review",
           responses={200: ("The version, approved", _ref("LetterVersion"))})
def versions_approve(version_id: int) -> Reply:
    """A supervisor's (or admin's) token only, and never for their own version; a one-off reply then goes out."""
    session = db_session()
    done = review.approve_version(session, version_id, actor_id=caller().staffer_id,
                                  email_author=bool(settings().smtp_host))
    session.flush()
    record_api_write(session, caller(), operation="letter_version.approve", object_type="letter_version",
                     object_id=version_id)
    return Reply(version_json(done.value), effects=tuple(done.effects))


# --- Batches (read and decide), segments, search (read only) ---------------------------------------

@bp.route("/batches", methods=["GET"])
@operation(method="GET", scope="batches:read", tag="batches", summary="List batches",
           parameters=[{"name": "status", "in": "query", "schema": {"enum": [s.value for s in BatchStatus]}},
                       AFTER_ID, LIMIT],
           responses={200: ("A page of batches, newest first", _page("Batch"))})
def batches_list() -> Reply:
    status = request.args.get("status")
    if status is not None and status not in {s.value for s in BatchStatus}:
        raise ApiError(400, "bad_parameter", "status is not a batch status", {"status": "not valid"})
    limit, after = _limit(), _after_id()
    query = select(Batch).where(Batch.merged_into_id.is_(None))
    if status:
        query = query.where(Batch.status == BatchStatus(status))
    if after:
        query = query.where(Batch.id < after)
    found = list(db_session().scalars(query.order_by(Batch.id.desc()).limit(limit)))
    return Reply({"items": [batch_json(b) for b in found],
                  "next": str(found[-1].id) if len(found) == limit else None})


@bp.route("/batches/<int:batch_id>/messages", methods=["GET"])
@operation(method="GET", scope="batches:read", tag="batches", summary="The messages in a batch",
           parameters=[AFTER_ID, LIMIT], responses={200: ("A page of the batch's messages", _page("Message"))})
def batches_members(batch_id: int) -> Reply:
    session = db_session()
    if session.get(Batch, batch_id) is None:
        raise NotFound(f"no batch {batch_id}")
    limit, after = _limit(), _after_id()
    query = select(Message).where(Message.batch_id == batch_id, Message.id > after)
    found = list(session.scalars(query.order_by(Message.id).limit(limit)))
    return Reply({"items": [message_json(m, full=False) for m in found],
                  "next": str(found[-1].id) if len(found) == limit else None})


@bp.route("/batches/<int:batch_id>", methods=["GET"])
@operation(method="GET", scope="batches:read", tag="batches", summary="Read a batch",
           responses={200: ("The batch; ETag for decisions", _ref("Batch"))})
def batches_read(batch_id: int) -> Reply:
    """A merged batch is still read (its status says merged); decisions are taken on the batch it joined."""
    body = batch_json(batch_service.get_batch(db_session(), batch_id))
    return Reply(body, etag=etag_of(body))


# The batch page's decisions, each through the same use case (batching.batches) as its button. They are
# split the way the rest of this API is, not one POST /decisions taking a "kind": the batch's own values
# (assignee, topic, stance, "not a campaign") are one PATCH with If-Match, as for a message, because two
# programs setting them could overwrite each other; merge and taking a letter out are actions naming what
# they act on (like a constituent merge), refused when that no longer holds, so they need no If-Match.
# One route per shape also keeps each request schema plain for the OpenAPI document and for schemathesis.
BATCH_UPDATE: JSON_OBJECT = {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
    "assignee_id": NULLABLE_ID, "topic_id": NULLABLE_ID, "stance": STANCE, "not_campaign": {"type": "boolean"}}}


@bp.route("/batches/<int:batch_id>", methods=["PATCH"])
@operation(method="PATCH", scope="batches:write", tag="batches", update=True, request_schema=BATCH_UPDATE,
           summary="Assign, code, or mark (or unmark) a batch as not a campaign",
           responses={200: ("The batch as it is now; its new ETag", _ref("Batch"))})
def batches_update(batch_id: int) -> Reply:
    """As the batch page's buttons: the assignee (null unassigns) goes to the batch and its open letters,
    the topic and stance to every letter in it; not_campaign true takes it off the batch list (false puts it
    back). All or nothing; each decision can be undone on the batch page."""
    session = db_session()
    data = body_object()
    allowed_keys(data, BATCH_UPDATE["properties"])
    actor = caller().staffer_id
    check_if_match(batch_json(batch_service.get_batch(session, batch_id)))
    # Every value is read before any decision is taken, so a bad one changes nothing.
    assignee, topic_id = _id_field(data, "assignee_id"), _id_field(data, "topic_id")
    stance = _enum_field(Stance, data, "stance")
    not_campaign = data.get("not_campaign")
    if "not_campaign" in data and not isinstance(not_campaign, bool):
        raise ApiError(422, "not_valid", "not_campaign must be true or false", {"not_campaign": "true or false"})
    if not_campaign is False:  # back on the list first, then the other decisions, as a person would
        batch_service.set_not_campaign(session, batch_id, False, actor_id=actor)
    if "assignee_id" in data:
        batch_service.assign_batch(session, batch_id, assignee, actor_id=actor)
    if "topic_id" in data:
        batch_service.set_batch_topic(session, batch_id, topic_id, actor_id=actor)
    if "stance" in data:
        batch_service.set_batch_stance(session, batch_id, stance, actor_id=actor)
    if not_campaign is True:
        batch_service.set_not_campaign(session, batch_id, True, actor_id=actor)
    session.flush()
    record_api_write(session, caller(), operation="batch.update", object_type="batch", object_id=batch_id,
                     detail={"fields": sorted(data)})
    return _batch_reply(batch_id)


def _batch_reply(batch_id: int) -> Reply:
    session = db_session()
    batch = batch_service.get_batch(session, batch_id)
    session.refresh(batch)
    body = batch_json(batch)
    return Reply(body, etag=etag_of(body))


BATCH_MERGE: JSON_OBJECT = {"type": "object", "additionalProperties": False, "required": ["other_id"],
                            "properties": {"other_id": ID}}


@bp.route("/batches/<int:batch_id>/merge", methods=["POST"])
@operation(method="POST", scope="batches:write", tag="batches", request_schema=BATCH_MERGE,
           summary="Merge another batch into this one",
           responses={200: ("This batch, now holding the other's letters; its new ETag", _ref("Batch"))})
def batches_merge(batch_id: int) -> Reply:
    """The batch page's merge: the other batch's letters move here and it is marked merged (undo there)."""
    session = db_session()
    data = body_object()
    allowed_keys(data, ("other_id",))
    other = int(_id_field(data, "other_id", nullable=False) or 0)
    batch_service.merge_batches(session, batch_id, other, actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="batch.merge", object_type="batch", object_id=batch_id,
                     detail={"merged_id": other})
    return _batch_reply(batch_id)


BATCH_REMOVE: JSON_OBJECT = {"type": "object", "additionalProperties": False, "required": ["message_id"],
                             "properties": {"message_id": ID}}


@bp.route("/batches/<int:batch_id>/remove", methods=["POST"])
@operation(method="POST", scope="batches:write", tag="batches", request_schema=BATCH_REMOVE,
           summary="Take a letter out of a batch",
           responses={200: ("The batch without it; its new ETag", _ref("Batch"))})
def batches_remove(batch_id: int) -> Reply:
    """The batch page's "not part of this batch" for a member: it stays out (clustering leaves it out)."""
    session = db_session()
    data = body_object()
    allowed_keys(data, ("message_id",))
    removed = int(_id_field(data, "message_id", nullable=False) or 0)
    batch_service.remove_member(session, batch_id, removed, actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="batch.remove_member", object_type="batch", object_id=batch_id,
                     detail={"message_id": removed})
    return _batch_reply(batch_id)


BATCH_SPLIT: JSON_OBJECT = {"type": "object", "additionalProperties": False, "required": ["message_ids"],
                            "properties": {"message_ids": {"type": "array", "items": ID, "minItems": 1,
                                                           "maxItems": 1000}}}


@bp.route("/batches/<int:batch_id>/split", methods=["POST"])
@operation(method="POST", scope="batches:write", tag="batches", request_schema=BATCH_SPLIT,
           summary="Split letters out of a batch into a new batch",
           responses={201: ("The new batch holding the letters named; its ETag", _ref("Batch"))})
def batches_split(batch_id: int) -> Reply:
    """The batch page's split: the letters named (some of its members, not all) move to a batch of their own,
    kept there by a person's decision (undo on the batch page or through /undo). A letter named that is not
    in the batch (any more) refuses the whole split with 409, so nothing is split on a stale view."""
    session = db_session()
    data = body_object()
    allowed_keys(data, ("message_ids",))
    raw = data.get("message_ids")
    if (not isinstance(raw, list) or not 1 <= len(raw) <= 1000
            or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_ID for v in raw)):
        raise ApiError(422, "not_valid", "message_ids must be a list of 1 to 1000 message numbers",
                       {"message_ids": "a list of message numbers"})
    wanted = set(raw)
    batch_service.get_batch(session, batch_id)
    members = set(session.scalars(select(Message.id).where(Message.id.in_(wanted), Message.batch_id == batch_id)))
    if wanted - members:
        outside = sorted(wanted - members)
        raise ApiError(409, "not_in_batch", f"not in batch {batch_id} now: {', '.join(map(str, outside[:20]))}",
                       {"message_ids": "read the batch's messages again"})
    new = batch_service.split_members(session, batch_id, sorted(wanted), actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="batch.split", object_type="batch", object_id=batch_id,
                     detail={"new_batch_id": new.id, "message_ids": sorted(wanted)})
    reply = _batch_reply(new.id)
    reply.status = 201
    return reply


DECISION = {"type": "object", "required": ["event_id", "action", "words", "at"], "properties": {
    "event_id": ID, "action": TEXT, "words": TEXT, "actor_id": NULLABLE_ID, "at": TIME}}


@bp.route("/batches/<int:batch_id>/history", methods=["GET"])
@operation(method="GET", scope="batches:read", tag="batches", summary="The batch's decisions that can be undone",
           responses={200: ("Its recent decisions not undone yet, newest first", {
               "type": "object", "required": ["items"], "properties": {
                   "items": {"type": "array", "items": DECISION}}})})
def batches_history(batch_id: int) -> Reply:
    """The batch page's "Undo" list: each decision's event_id (for /undo) and the words its button uses."""
    from web.batches import undo_names

    session = db_session()
    batch_service.get_batch(session, batch_id)
    named = undo_names(session, batch_service.undoable_events(session, batch_id))
    return Reply({"items": [{"event_id": e.id, "action": e.action, "words": words, "actor_id": e.actor_id,
                             "at": _iso(e.at)} for e, words in named]})


BATCH_UNDO: JSON_OBJECT = {"type": "object", "additionalProperties": False, "required": ["event_id"],
                           "properties": {"event_id": ID}}


@bp.route("/batches/<int:batch_id>/undo", methods=["POST"])
@operation(method="POST", scope="batches:write", tag="batches", request_schema=BATCH_UNDO,
           summary="Undo one of the batch's decisions",
           responses={200: ("The batch as it is after the undo; its new ETag", _ref("Batch"))})
def batches_undo(batch_id: int) -> Reply:
    """The batch page's Undo: event_id from /history. A decision is undone once; again answers 409."""
    session = db_session()
    data = body_object()
    allowed_keys(data, ("event_id",))
    event_id = int(_id_field(data, "event_id", nullable=False) or 0)
    batch_service.get_batch(session, batch_id)
    event = session.get(AuditEvent, event_id)
    # The event must be one of this batch's decisions: an id from another batch's history is not found here.
    if event is None or event.object_type != "batch" or event.object_id != str(batch_id):
        raise NotFound(f"no decision {event_id} on batch {batch_id}")
    batch_service.undo(session, event_id, actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="batch.undo", object_type="batch", object_id=batch_id,
                     detail={"event_id": event_id, "undone": event.action})
    return _batch_reply(batch_id)


PROPOSAL = {"type": "object", "required": ["message", "score", "stage"], "properties": {
    "message": _ref("Message"), "score": {"type": "number"}, "stage": TEXT}}


@bp.route("/batches/<int:batch_id>/proposals", methods=["GET"])
@operation(method="GET", scope="batches:read", tag="batches",
           summary="Letters that are possibly part of this campaign",
           responses={200: ("How many there are and the closest first", {
               "type": "object", "required": ["total", "items"], "properties": {
                   "total": {"type": "integer"}, "items": {"type": "array", "items": PROPOSAL}}})})
def batches_proposals(batch_id: int) -> Reply:
    """The batch page's "possibly part of this campaign" list: letters outside every batch that nearly match,
    for a person to add or reject. A rejected letter is never proposed for this batch again."""
    session = db_session()
    batch_service.get_batch(session, batch_id)
    total, listed = batch_queries.proposals(session, batch_id, limit=batch_service.PROPOSE_CAP)
    return Reply({"total": total, "items": [{"message": message_json(m, full=False), "score": p.score,
                                             "stage": p.stage} for p, m in listed]})


@bp.route("/batches/<int:batch_id>/proposals/<int:message_id>/add", methods=["POST"])
@operation(method="POST", scope="batches:write", tag="batches", summary="Add a proposed letter to the batch",
           responses={200: ("The batch with it; its new ETag", _ref("Batch"))})
def batches_proposal_add(batch_id: int, message_id: int) -> Reply:
    """The letter joins the batch, kept there by a person's decision (undo through /undo). A proposal decided
    since it was listed, or a letter that has joined another batch since, answers 409."""
    session = db_session()
    batch_service.add_proposed(session, batch_id, message_id, actor_id=caller().staffer_id)
    session.flush()
    record_api_write(session, caller(), operation="batch.add_member", object_type="batch", object_id=batch_id,
                     detail={"message_id": message_id})
    return _batch_reply(batch_id)


@bp.route("/batches/<int:batch_id>/proposals/<int:message_id>/reject", methods=["POST"])
@operation(method="POST", scope="batches:write", tag="batches",
           summary="Say a proposed letter is not part of the batch",
           responses={200: ("The batch, unchanged in size; its ETag", _ref("Batch"))})
def batches_proposal_reject(batch_id: int, message_id: int) -> Reply:
    """The letter is never proposed for this batch or joined to it again (undo through /undo)."""
    session = db_session()
    batch_service.reject_proposed(session, batch_id, message_id, actor_id=caller().staffer_id)
    record_api_write(session, caller(), operation="batch.reject_member", object_type="batch", object_id=batch_id,
                     detail={"message_id": message_id})
    return _batch_reply(batch_id)


@bp.route("/segments/count", methods=["GET"])
@operation(method="GET", scope="segments:read", tag="segments", summary="Count the constituents a filter finds",
           parameters=_FIND_PARAMS, responses={200: ("How many", {"type": "object", "required": ["count"],
                                                                 "properties": {"count": {"type": "integer"}}})})
def segments_count() -> Reply:
    """The same filter and count as the constituents page's live count."""
    return Reply({"count": segments.count(db_session(), _segment_filter())})


@bp.route("/segments/members", methods=["GET"])
@operation(method="GET", scope="segments:read", tag="segments", summary="The constituents a filter finds",
           parameters=[*_FIND_PARAMS, AFTER_ID, LIMIT],
           responses={200: ("A page of them by record number", _page("Constituent"))})
def segments_members() -> Reply:
    """The same filter and members as the constituents page (a saved segment's filter gives its members)."""
    flt, limit, after = _segment_filter(), _limit(), _after_id()
    people = segments.members(db_session(), flt, limit=limit, after_id=after)
    return Reply({"items": [constituent_json(c) for c in people],
                  "next": str(people[-1].id) if len(people) == limit else None})


@bp.route("/search", methods=["GET"])
@operation(method="GET", scope="search:read", tag="search", summary="Search the office's mail",
           parameters=[{"name": "q", "in": "query", "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200}}, LIMIT],
           responses={200: ("Matching messages, newest first", _page("Message"))})
def search_messages() -> Reply:
    """The search page's words and filters (e.g. `clinic from:2026-01-01 topic:Health`)."""
    from insight import search

    raw = request.args.get("q", "")
    if not raw.strip() or len(raw) > 200:
        raise ApiError(400, "bad_parameter", "q must be 1 to 200 characters", {"q": "1 to 200 characters"})
    hits, _more, _capped = search.page_of_messages(db_session(), search.parse(raw), limit=_limit())
    return Reply({"items": [message_json(hit.message, full=False) for hit in hits], "next": None})
