"""The staff API's plumbing: token and scope checks, one error shape, ETag/If-Match, Idempotency-Key,
and the OpenAPI 3.1 document built (with apispec) from the operations the views declare.

Each view is declared with `@operation(...)`: its scope, what it takes and what it answers. The same
declaration checks the caller and is the view's entry in /api/v1/openapi.json, so the document cannot
drift from the code. A view returns `Reply(body, status, effects, etag)`; the decorator maps domain
errors to the JSON error shape, commits, and queues the use case's effects only after the commit
(web.outcome.after_commit), the same as web.outcome.run_action does for the pages.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Response, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest

from correspondence.effects import Effect
from correspondence.errors import DomainError, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from correspondence.models import ApiIdempotencyKey
from correspondence.services.api_tokens import SCOPES, Caller, verify_api_token
from web import csrf, db_session
from web.access import api_token
from web.outcome import after_commit

JSON_OBJECT = dict[str, Any]


class ApiError(Exception):
    """A refusal the API answers in its one error shape."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "fields": fields or {}}})
    response.status_code = status
    return response


@dataclass
class Reply:
    body: JSON_OBJECT
    status: int = 200
    effects: tuple[Effect, ...] = ()
    etag: str | None = None


def etag_of(representation: JSON_OBJECT) -> str:
    """A strong ETag from what the client sees: any change to the resource's fields changes it."""
    text = json.dumps(representation, sort_keys=True, default=str)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def check_if_match(current: JSON_OBJECT) -> None:
    """An update must name the version it changes (428 without If-Match, 412 when it is not current)."""
    header = request.headers.get("If-Match")
    if not header:
        raise ApiError(428, "if_match_required",
                       "send If-Match with the ETag from your last read, so two programs cannot overwrite each other")
    tags = [t.strip() for t in header.split(",")]
    # Strong comparison (RFC 9110 13.1.1): a weak tag (W/"...") never matches, so it is not looked for.
    if "*" not in tags and etag_of(current) not in tags:
        raise ApiError(412, "changed_since_read", "it changed since you read it: read it again and retry")


def body_object() -> JSON_OBJECT:
    """The request's JSON object (400 when the body is not one)."""
    try:
        data = request.get_json(silent=True) if request.is_json else None
    except BadRequest as exc:
        raise ApiError(400, "bad_body", exc.description or "the body could not be read") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "bad_body", "send a JSON object (Content-Type: application/json)")
    return data


def allowed_keys(data: JSON_OBJECT, names: Iterable[str]) -> None:
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ApiError(400, "unknown_fields", "these fields are not part of this request",
                       {k[:60]: "not a field of this request" for k in unknown[:20]})


def _map_domain_error(exc: DomainError) -> ApiError:
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc) or "not found")
    if isinstance(exc, PermissionDenied):
        return ApiError(403, "not_allowed", str(exc))
    if isinstance(exc, InvalidTransition):
        return ApiError(409, "not_now", str(exc))
    if isinstance(exc, ValidationFailed):
        return ApiError(422, "not_valid", str(exc))
    return ApiError(400, "refused", str(exc))


def caller() -> Caller:
    """The token behind the current request (set by @operation)."""
    found: Caller = g.api_caller
    return found


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


# --- Declared operations, for the checks and for the OpenAPI document ------------------------------


@dataclass
class Operation:
    endpoint: str
    method: str
    scope: str
    summary: str
    tag: str
    parameters: list[JSON_OBJECT] = field(default_factory=list)
    request_schema: JSON_OBJECT | None = None
    responses: dict[int, tuple[str, JSON_OBJECT | None]] = field(default_factory=dict)
    update: bool = False  # takes If-Match
    create: bool = False  # takes Idempotency-Key
    description: str = ""


OPERATIONS: dict[str, Operation] = {}


def operation(bp_name: str, *, method: str, scope: str, summary: str, tag: str,
              parameters: list[JSON_OBJECT] | None = None, request_schema: JSON_OBJECT | None = None,
              responses: dict[int, tuple[str, JSON_OBJECT | None]], update: bool = False, create: bool = False,
              description: str = "") -> Callable[[Callable[..., Reply]], Callable[..., Response]]:
    """Declare a staff API view: its scope and shapes; check the token, commit, answer in JSON."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    def wrap(view: Callable[..., Reply]) -> Callable[..., Response]:
        op = Operation(f"{bp_name}.{view.__name__}", method, scope, summary, tag, parameters or [],
                       request_schema, responses, update, create, description or (view.__doc__ or "").strip())
        OPERATIONS[op.endpoint] = op

        @wraps(view)
        def run(**kwargs: Any) -> Response:
            session = db_session()
            try:
                found = verify_api_token(session, _bearer())
                if found is None:
                    raise ApiError(401, "token_refused", "send a valid, unexpired staff API token "
                                                         "(Authorization: Bearer mrs_...)")
                session.commit()  # the token's last use is recorded whatever happens next
                if scope not in found.scopes:
                    raise ApiError(403, "scope_missing", f"this token does not have the {scope} permission")
                g.api_caller = found
                if create and request.headers.get("Idempotency-Key") is not None:
                    return _idempotent(found, lambda: _run(view, kwargs))
                return _finish(_run(view, kwargs))
            except ApiError as exc:
                session.rollback()
                return error_response(exc.status, exc.code, exc.message, exc.fields)

        csrf.exempt(run)
        return api_token(run)

    return wrap


def _run(view: Callable[..., Reply], kwargs: dict[str, Any]) -> Reply:
    try:
        return view(**kwargs)
    except DomainError as exc:
        if request.method == "GET" and isinstance(exc, ValidationFailed):
            # A read refused for its query (an unusable page link, a bad filter) is a bad request.
            raise ApiError(400, "bad_parameter", str(exc)) from exc
        raise _map_domain_error(exc) from exc


def _finish(reply: Reply) -> Response:
    db_session().commit()
    after_commit(reply.effects)
    response = jsonify(reply.body)
    response.status_code = reply.status
    if reply.etag:
        response.headers["ETag"] = reply.etag
    return response


_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def _idempotent(found: Caller, work: Callable[[], Reply]) -> Response:
    """A create with an Idempotency-Key: the first answer is stored; the same key and request again gets
    that answer back (nothing is created twice); the same key with another request is refused."""
    key = request.headers.get("Idempotency-Key", "")
    if not _KEY.match(key):
        raise ApiError(400, "bad_idempotency_key", "Idempotency-Key must be 1 to 200 visible ASCII characters")
    digest = hashlib.sha256(b"\n".join([request.method.encode(), request.path.encode(),
                                        request.get_data(cache=True)])).hexdigest()
    session = db_session()

    def stored() -> ApiIdempotencyKey | None:
        return session.scalar(select(ApiIdempotencyKey).where(ApiIdempotencyKey.token_id == found.token_id,
                                                               ApiIdempotencyKey.key == key))

    def replay(row: ApiIdempotencyKey) -> Response:
        if row.request_sha256 != digest:
            raise ApiError(422, "idempotency_key_reused",
                           "this Idempotency-Key was used for a different request; use a new key")
        response = jsonify(row.response)
        response.status_code = row.status_code
        response.headers["Idempotent-Replayed"] = "true"
        return response

    if (row := stored()) is not None:
        return replay(row)
    reply = work()
    session.add(ApiIdempotencyKey(token_id=found.token_id, key=key, request_sha256=digest,
                                  status_code=reply.status, response=reply.body))
    try:
        return _finish(reply)
    except IntegrityError:
        # Another request with the same key committed first: what it created stands, and this one answers
        # with that request's reply (the same pattern as intake.receive).
        session.rollback()
        if (row := stored()) is not None:
            return replay(row)
        raise


# --- The OpenAPI 3.1 document --------------------------------------------------------------------

ERROR_SCHEMA: JSON_OBJECT = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {
            # A short word (e.g. "not_found"); the intake endpoints and the app's own 404/405/429 answers
            # give the HTTP status number here instead.
            "code": {"type": ["string", "integer"]},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": ["string", "array", "object"]}},
        }}},
}
_ERRORS = {400: "The request could not be read", 401: "No valid token", 403: "The token may not do this",
           404: "Not found", 405: "Method not allowed", 429: "Too many requests (see Retry-After)"}


def _flask_path(rule: str) -> tuple[str, list[JSON_OBJECT]]:
    params = []
    for converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", rule):
        schema: JSON_OBJECT = ({"type": "integer", "minimum": 0, "maximum": 2147483647} if converter == "int"
                               else {"type": "string"})
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule), params


def build_spec(app: Any, schemas: dict[str, JSON_OBJECT]) -> JSON_OBJECT:
    """The OpenAPI 3.1 document for every declared operation, from the app's URL map."""
    from apispec import APISpec

    spec = APISpec(title="Mailroom API", version="1", openapi_version="3.1.0",
                   info={"description": "Mailroom's staff API. Authenticate with a staff API token made on "
                                        "your account's \u201cAPI tokens\u201d page: "
                                        "`Authorization: Bearer mrs_...`. Each operation names the permission "
                                        "(scope) it needs."})
    spec.components.security_scheme("token", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", ERROR_SCHEMA)
    for name, schema in schemas.items():
        spec.components.schema(name, schema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        op = OPERATIONS.get(rule.endpoint)
        if op is None or op.method not in (rule.methods or ()):
            continue
        path, path_params = _flask_path(rule.rule)
        spec.path(path=path, operations={op.method.lower(): _operation_doc(op, path_params)})
    return spec.to_dict()


def _operation_doc(op: Operation, path_params: list[JSON_OBJECT]) -> JSON_OBJECT:
    params = list(path_params) + list(op.parameters)
    if op.update:
        params.append({"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "The ETag from your last read. Required: without it the answer is 428."})
    if op.create:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"},
                       "description": "Send the same key again to get the first answer back instead of a "
                                      "second copy."})
    responses: JSON_OBJECT = {}
    for status, (words, schema) in sorted(op.responses.items()):
        entry: JSON_OBJECT = {"description": words}
        if schema is not None:
            entry["content"] = {"application/json": {"schema": schema}}
        if "ETag" in words:
            entry["headers"] = {"ETag": {"schema": {"type": "string"}}}
        responses[str(status)] = entry
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    extra = dict(_ERRORS)
    if op.update:
        extra.update({409: "Not possible in its current state", 412: "Changed since you read it",
                      422: "Values not valid", 428: "If-Match is required"})
    if op.method in ("POST", "PATCH"):
        extra.update({409: "Not possible in its current state", 422: "Values not valid"})
    for status, words in extra.items():
        responses.setdefault(str(status), {"description": words, "content": error_ref})
    doc: JSON_OBJECT = {"operationId": op.endpoint.replace(".", "_"), "summary": op.summary, "tags": [op.tag],
                        "security": [{"token": []}], "parameters": params, "responses": responses,
                        "description": (op.description + f"\n\nPermission: `{op.scope}`.").strip()}
    if op.request_schema is not None:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.request_schema}}}
    return doc
