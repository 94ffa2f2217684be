"""The staff API: tokens and their scopes, role rules, ETag/If-Match, Idempotency-Key, and each resource
calling the same use cases as the pages (the audit log shows the change and the token that made it)."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from correspondence.errors import PermissionDenied, ValidationFailed
from correspondence.models import (
    ApiIdempotencyKey,
    AuditEvent,
    Batch,
    FormLetter,
    LetterVersion,
    MessageStatus,
    Role,
    StaffApiToken,
    Topic,
    VersionState,
    utcnow,
)
from correspondence.services.api_tokens import SCOPES, create_api_token, revoke_api_token, scopes_for

ALL_SCOPES = list(SCOPES)


def _token(session, staffer, scopes=None, days=30):
    _t, plain = create_api_token(session, name="script", scopes=scopes or scopes_for(staffer.role), days=days,
                                 actor_id=staffer.id)
    session.commit()
    return {"Authorization": f"Bearer {plain}"}


def _error(response):
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"]), body
    return body["error"]


# --- Tokens -----------------------------------------------------------------------------------------

def test_token_is_stored_as_a_hash_and_shown_once(session, factory):
    lc = factory.staffer(Role.CORRESPONDENT)
    token, plain = create_api_token(session, name="CRM", scopes=["messages:read"], days=10, actor_id=lc.id)
    session.commit()
    assert plain.startswith("mrs_") and len(plain) > 40
    row = session.get(StaffApiToken, token.id)
    assert plain not in (row.token_sha256, row.prefix) and len(row.token_sha256) == 64
    assert row.expires_at - row.created_at == timedelta(days=10)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "api_token.create"))
    assert event.actor_id == lc.id and event.after["scopes"] == ["messages:read"]


def test_a_token_never_exceeds_its_staffers_role(session, factory):
    lc = factory.staffer(Role.CORRESPONDENT)
    with pytest.raises(ValidationFailed, match="letters:approve"):
        create_api_token(session, name="x", scopes=["letters:approve"], days=10, actor_id=lc.id)
    caseworker = factory.staffer(Role.CASEWORKER)
    with pytest.raises(ValidationFailed, match="runs:write"):
        create_api_token(session, name="x", scopes=["runs:write"], days=10, actor_id=caseworker.id)
    with pytest.raises(ValidationFailed, match="no such permission"):
        create_api_token(session, name="x", scopes=["everything"], days=10, actor_id=lc.id)
    with pytest.raises(PermissionDenied):
        create_api_token(session, name="x", scopes=["messages:read"], days=10, actor_id=lc.id, staffer_id=caseworker.id)
    assert "letters:approve" in scopes_for(Role.SUPERVISOR) and "letters:approve" not in scopes_for(Role.CORRESPONDENT)


def test_admin_makes_a_token_for_a_service_account(session, factory, client):
    admin = factory.staffer(Role.ADMIN)
    service = factory.staffer(Role.CORRESPONDENT, name="CRM sync")
    _t, plain = create_api_token(session, name="CRM", scopes=["messages:read"], days=5, actor_id=admin.id,
                                 staffer_id=service.id)
    session.commit()
    assert _t.staffer_id == service.id
    assert client.get("/api/v1/messages", headers={"Authorization": f"Bearer {plain}"}).status_code == 200


def test_unknown_expired_and_revoked_tokens_are_refused(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    assert _error(client.get("/api/v1/messages"))["code"] == "token_refused"
    assert client.get("/api/v1/messages", headers={"Authorization": "Bearer mrs_nope"}).status_code == 401
    headers = _token(session, lc)
    assert client.get("/api/v1/messages", headers=headers).status_code == 200
    token = session.scalars(select(StaffApiToken)).one()
    token.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert client.get("/api/v1/messages", headers=headers).status_code == 401
    token.expires_at = utcnow() + timedelta(days=1)
    session.commit()
    assert client.get("/api/v1/messages", headers=headers).status_code == 200
    revoke_api_token(session, token.id, actor_id=lc.id)
    session.commit()
    assert client.get("/api/v1/messages", headers=headers).status_code == 401


def test_a_staffer_turned_off_or_moved_to_a_smaller_role_takes_their_token_down(session, factory, client):
    boss = factory.staffer(Role.SUPERVISOR)
    headers = _token(session, boss, ["letters:read", "letters:approve"])
    boss.role = Role.CORRESPONDENT
    session.commit()
    response = client.post("/api/v1/letter-versions/1/approve", headers=headers)
    assert response.status_code == 403 and _error(response)["code"] == "scope_missing"
    boss.active = False
    session.commit()
    assert client.get("/api/v1/letters", headers=headers).status_code == 401


def test_tokens_page_makes_shows_once_and_revokes(client, auth, session):
    me = auth.login(Role.CORRESPONDENT)
    page = client.get("/account/api-tokens/")
    assert page.status_code == 200 and "Make a token" in page.get_data(as_text=True)
    assert "approve letter versions" not in page.get_data(as_text=True)  # not offered beyond the role
    made = client.post("/account/api-tokens/", data={"csrf_token": auth.csrf("/account/api-tokens/"),
                                                     "name": "Report script", "scope": ["messages:read"],
                                                     "days": "30"})
    assert made.status_code == 201
    text = made.get_data(as_text=True)
    assert "mrs_" in text and "shown only this once" in text
    again = client.get("/account/api-tokens/").get_data(as_text=True)
    assert "Report script" in again and 'id="new-token"' not in again
    token = session.scalars(select(StaffApiToken).where(StaffApiToken.staffer_id == me.id)).one()
    refused = client.post("/account/api-tokens/", data={"csrf_token": auth.csrf("/account/api-tokens/"),
                                                        "name": "x", "scope": ["letters:approve"], "days": "30"})
    assert refused.status_code == 400 and "does not allow" in refused.get_data(as_text=True)
    revoked = client.post(f"/account/api-tokens/{token.id}/revoke",
                          data={"csrf_token": auth.csrf("/account/api-tokens/")})
    assert revoked.status_code == 303
    session.commit()  # a new transaction sees the request's commit
    session.refresh(token)
    assert token.revoked_at is not None


def test_tokens_page_refuses_a_form_without_csrf(client, auth):
    auth.login(Role.CORRESPONDENT)
    assert client.post("/account/api-tokens/", data={"name": "x", "scope": ["messages:read"],
                                                     "days": "3"}).status_code == 400


# --- Messages -----------------------------------------------------------------------------------------

def test_messages_list_with_the_inbox_filters_and_keyset_paging(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    made = [factory.message() for _ in range(5)]
    factory.message(status=MessageStatus.CLOSED)
    headers = _token(session, lc, ["messages:read"])
    first = client.get("/api/v1/messages?limit=3", headers=headers).get_json()
    assert len(first["items"]) == 3 and first["next"]
    second = client.get(f"/api/v1/messages?limit=3&after={first['next']}", headers=headers).get_json()
    seen = [m["id"] for m in first["items"] + second["items"]]
    assert sorted(seen) == sorted(m.id for m in made)  # open only, each once
    closed = client.get("/api/v1/messages?status=closed", headers=headers).get_json()
    assert [m["status"] for m in closed["items"]] == ["closed"]
    bad = client.get("/api/v1/messages?status=lost", headers=headers)
    assert bad.status_code == 400 and _error(bad)["code"] == "bad_parameter"


def test_a_token_without_messages_write_cannot_code_a_message(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    message = factory.message()
    headers = _token(session, lc, ["messages:read"])
    etag = client.get(f"/api/v1/messages/{message.id}", headers=headers).headers["ETag"]
    response = client.patch(f"/api/v1/messages/{message.id}", json={"stance": "oppose"},
                            headers={**headers, "If-Match": etag})
    assert response.status_code == 403 and "messages:write" in _error(response)["message"]


def test_code_assign_and_close_a_message_with_etags(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    topic = Topic(name="Roads and bridges")
    session.add(topic)
    message = factory.message()
    headers = _token(session, lc, ["messages:read", "messages:write"])
    url = f"/api/v1/messages/{message.id}"
    read = client.get(url, headers=headers)
    etag = read.headers["ETag"]
    assert client.patch(url, json={"stance": "support"}, headers=headers).status_code == 428
    changed = client.patch(url, json={"topic_id": topic.id, "stance": "support", "assignee_id": lc.id},
                           headers={**headers, "If-Match": etag})
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["topic_id"], body["stance"], body["assignee_id"], body["status"]) == (
        topic.id, "support", lc.id, "assigned")
    stale = client.patch(url, json={"status": "closed"}, headers={**headers, "If-Match": etag})
    assert stale.status_code == 412 and _error(stale)["code"] == "changed_since_read"
    closed = client.patch(url, json={"status": "closed"}, headers={**headers, "If-Match": changed.headers["ETag"]})
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.object_id == str(message.id))
                                                 .order_by(AuditEvent.id))]
    # The same audited moves as the message page, and one event per API write naming the token.
    assert {"message.set_topic", "message.set_stance", "message.assign", "message.close"} <= set(actions)
    writes = session.scalars(select(AuditEvent).where(AuditEvent.action == "api_token.write")).all()
    assert len(writes) == 2 and all(w.after["token_name"] == "script" and w.actor_id == lc.id for w in writes)


def test_message_update_refusals_are_in_the_error_shape(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    message = factory.message()
    headers = _token(session, lc)
    url = f"/api/v1/messages/{message.id}"
    etag = client.get(url, headers=headers).headers["ETag"]
    unknown = client.patch(url, json={"colour": "red"}, headers={**headers, "If-Match": etag})
    assert unknown.status_code == 400 and "colour" in _error(unknown)["fields"]
    no_topic = client.patch(url, json={"topic_id": 999999}, headers={**headers, "If-Match": etag})
    assert no_topic.status_code == 422 and _error(no_topic)["code"] == "not_valid"
    missing = client.get("/api/v1/messages/999999", headers=headers)
    assert missing.status_code == 404 and _error(missing)["code"] == "not_found"


# --- Constituents -------------------------------------------------------------------------------------

def test_constituents_search_read_update_and_merge(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    keep = factory.constituent(first_name="Dana", last_name="Reyes")
    other = factory.constituent(first_name="Dana", last_name="Reyes", email="dana.other@example.net")
    factory.constituent(first_name="Lee", last_name="Wong")
    headers = _token(session, lc, ["constituents:read", "constituents:write"])
    found = client.get("/api/v1/constituents?find=Reyes", headers=headers).get_json()
    assert sorted(c["id"] for c in found["items"]) == sorted([keep.id, other.id])
    url = f"/api/v1/constituents/{keep.id}"
    read = client.get(url, headers=headers)
    assert read.get_json()["last_name"] == "Reyes"
    bad = client.patch(url, json={"zip5": "12"}, headers={**headers, "If-Match": read.headers["ETag"]})
    assert bad.status_code == 422
    done = client.patch(url, json={"address1": "55 Elm St", "zip5": "43215-1234"},
                        headers={**headers, "If-Match": read.headers["ETag"]})
    assert done.status_code == 200 and (done.get_json()["zip5"], done.get_json()["zip4"]) == ("43215", "1234")
    merged = client.post(f"{url}/merge", json={"other_id": other.id}, headers=headers)
    assert merged.status_code == 200, merged.get_json()
    assert "dana.other@example.net" in merged.get_json()["emails"]
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "constituent.merge")) is not None


def test_constituents_read_only_token_cannot_change_a_record(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    person = factory.constituent()
    headers = _token(session, lc, ["constituents:read"])
    etag = client.get(f"/api/v1/constituents/{person.id}", headers=headers).headers["ETag"]
    response = client.patch(f"/api/v1/constituents/{person.id}", json={"city": "Dayton"},
                            headers={**headers, "If-Match": etag})
    assert response.status_code == 403


# --- Letters ------------------------------------------------------------------------------------------

def test_letter_draft_submit_and_approve_with_the_right_tokens(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    boss = factory.staffer(Role.SUPERVISOR)
    writer = _token(session, lc)
    draft = {"title": "Clinic funding", "body": "Dear {{ constituent.first_name }},\n\nThank you.",
             "stance": "support", "tags": ["health"]}
    created = client.post("/api/v1/letters", json=draft, headers=writer)
    assert created.status_code == 201, created.get_json()
    version = created.get_json()
    assert version["state"] == "draft"
    url = f"/api/v1/letter-versions/{version['id']}"
    etag = client.get(url, headers=writer).headers["ETag"]
    edited = client.patch(url, json={"body": "Dear {{ constituent.first_name }},\n\nThank you for writing."},
                          headers={**writer, "If-Match": etag})
    assert edited.status_code == 200 and "for writing" in edited.get_json()["body"]
    # A correspondent's token cannot hold letters:approve, so it cannot approve.
    refused = client.post(f"{url}/approve", headers=writer)
    assert refused.status_code == 403 and "letters:approve" in _error(refused)["message"]
    submitted = client.post(f"{url}/submit", headers=writer)
    assert submitted.status_code == 200 and submitted.get_json()["state"] == "in_review"
    approver = _token(session, boss, ["letters:read", "letters:approve"])
    approved = client.post(f"{url}/approve", headers=approver)
    assert approved.status_code == 200 and approved.get_json()["state"] == "approved"
    letter = client.get(f"/api/v1/letters/{version['letter_id']}", headers=writer).get_json()
    assert letter["current_version_id"] == version["id"] and len(letter["versions"]) == 1
    assert session.get(LetterVersion, version["id"]).state == VersionState.APPROVED
    listed = client.get("/api/v1/letters?q=clinic", headers=writer).get_json()
    assert [item["id"] for item in listed["items"]] == [version["letter_id"]]


def test_a_supervisor_cannot_approve_their_own_version_through_the_api(session, factory, client):
    boss = factory.staffer(Role.SUPERVISOR)
    headers = _token(session, boss)
    version = client.post("/api/v1/letters", json={"title": "Own", "body": "Hello."}, headers=headers).get_json()
    client.post(f"/api/v1/letter-versions/{version['id']}/submit", headers=headers)
    response = client.post(f"/api/v1/letter-versions/{version['id']}/approve", headers=headers)
    assert response.status_code == 403 and "own version" in _error(response)["message"]


def test_idempotent_create_replays_the_first_answer(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    headers = {**_token(session, lc), "Idempotency-Key": "letter-42"}
    body = {"title": "Once only", "body": "Hello."}
    first = client.post("/api/v1/letters", json=body, headers=headers)
    again = client.post("/api/v1/letters", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(session.scalars(select(FormLetter)).all()) == 1
    other = client.post("/api/v1/letters", json={"title": "Another", "body": "Hi."}, headers=headers)
    assert other.status_code == 422 and _error(other)["code"] == "idempotency_key_reused"
    session.commit()
    assert len(session.scalars(select(ApiIdempotencyKey)).all()) == 1
    fresh = client.post("/api/v1/letters", json={"title": "Another", "body": "Hi."},
                        headers={**headers, "Idempotency-Key": "letter-43"})
    session.commit()
    assert fresh.status_code == 201 and len(session.scalars(select(FormLetter)).all()) == 2


# --- Batches, segments, search, the document ---------------------------------------------------------

def test_batches_segments_and_search(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    batch = Batch(title="Clinic campaign", member_count=2)
    session.add(batch)
    session.flush()
    person = factory.constituent(last_name="Okafor")
    for _ in range(2):
        factory.message(batch_id=batch.id, constituent_id=person.id, subject="Save the clinic")
    headers = _token(session, lc)
    batches = client.get("/api/v1/batches", headers=headers).get_json()
    assert [b["id"] for b in batches["items"]] == [batch.id]
    members = client.get(f"/api/v1/batches/{batch.id}/messages", headers=headers).get_json()
    assert len(members["items"]) == 2
    assert client.get("/api/v1/segments/count?find=Okafor", headers=headers).get_json() == {"count": 1}
    members = client.get("/api/v1/segments/members?find=Okafor", headers=headers).get_json()
    assert [c["id"] for c in members["items"]] == [person.id]
    found = client.get("/api/v1/search?q=clinic", headers=headers)
    assert found.status_code == 200, found.get_json()
    assert len(found.get_json()["items"]) == 2
    assert client.get("/api/v1/batches", headers=_token(session, lc, ["messages:read"])).status_code == 403


def test_openapi_document_and_reference_page(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    assert {"get", "patch"} <= set(spec["paths"]["/api/v1/messages/{message_id}"])
    patch = spec["paths"]["/api/v1/messages/{message_id}"]["patch"]
    assert {"412", "428"} <= set(patch["responses"]) and "Permission: `messages:write`" in patch["description"]
    page = client.get("/api/v1/reference")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "PATCH /api/v1/messages/{message_id}" in text
    assert "<script src=\"http" not in text and "cdn" not in text.lower()


def test_the_intake_endpoints_still_refuse_a_staff_token(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    headers = _token(session, lc)
    assert client.post("/api/v1/intake/webform", json={"x": 1}, headers=headers).status_code == 401


# --- Apply-to-all runs --------------------------------------------------------------------------------

def _approved_letter(session, factory, client):
    lc, boss = factory.staffer(Role.CORRESPONDENT), factory.staffer(Role.SUPERVISOR)
    writer, approver = _token(session, lc), _token(session, boss)
    version = client.post("/api/v1/letters", json={"title": "Clinic", "body": "Dear {{ constituent.first_name }},\n\n"
                                                                               "Thank you."}, headers=writer).get_json()
    client.post(f"/api/v1/letter-versions/{version['id']}/submit", headers=writer)
    assert client.post(f"/api/v1/letter-versions/{version['id']}/approve", headers=approver).status_code == 200
    return version["id"], writer


def test_run_dry_run_start_and_progress(session, factory, client, job_env, redis):
    from rq import SimpleWorker

    from workers.queues import OUTBOUND, get_queue

    version_id, writer = _approved_letter(session, factory, client)
    ids = [factory.message(constituent_id=factory.constituent(first_name=f"P{n}").id).id for n in range(2)]
    session.commit()
    request = {"version_id": version_id, "message_ids": ids, "confirm_mismatch": True}
    dry = client.post("/api/v1/runs/dry-run", json=request, headers=writer)
    assert dry.status_code == 200, dry.get_json()
    assert (dry.get_json()["messages"], dry.get_json()["letters"]) == (2, 2)
    started = client.post("/api/v1/runs", json=request, headers={**writer, "Idempotency-Key": "run-1"})
    assert started.status_code == 202, started.get_json()
    run_id = started.get_json()["id"]
    replayed = client.post("/api/v1/runs", json=request, headers={**writer, "Idempotency-Key": "run-1"})
    assert replayed.status_code == 202 and replayed.get_json()["id"] == run_id  # not a second run
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    progress = client.get(f"/api/v1/runs/{run_id}", headers=writer).get_json()
    assert progress["state"] == "done" and progress["letters"] == 2, progress


def test_a_caseworker_token_cannot_start_runs(session, factory, client):
    caseworker = factory.staffer(Role.CASEWORKER)
    headers = _token(session, caseworker)
    response = client.post("/api/v1/runs", json={"version_id": 1, "message_ids": [1]}, headers=headers)
    assert response.status_code == 403 and "runs:write" in _error(response)["message"]


# --- Cases --------------------------------------------------------------------------------------------

def test_cases_open_note_step_and_status(session, factory, client):
    from correspondence.models import CaseCategory

    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "Passports"))
    worker = factory.staffer(Role.CASEWORKER)
    message = factory.message(constituent_id=factory.constituent().id)
    headers = _token(session, worker)
    opened = client.post("/api/v1/cases", json={"message_id": message.id, "category_id": category.id,
                                                "caseworker_id": worker.id}, headers=headers)
    assert opened.status_code == 201, opened.get_json()
    case = opened.get_json()
    assert case["steps"] and case["steps"][0]["kind"] == "release"
    note = client.post(f"/api/v1/cases/{case['id']}/notes", json={"text": "Called the passport office."},
                       headers=headers)
    assert note.status_code == 201
    read = client.get(f"/api/v1/cases/{case['id']}", headers=headers)
    assert [n["text"] for n in read.get_json()["notes"]] == ["Called the passport office."]
    inquiry = next(s for s in case["steps"] if s["kind"] == "inquiry")
    gated = client.post(f"/api/v1/cases/{case['id']}/steps/{inquiry['id']}/done", headers=headers)
    assert gated.status_code == 422 and "privacy release" in _error(gated)["message"]
    task = next(s for s in case["steps"] if s["kind"] not in ("release", "inquiry"))
    done = client.post(f"/api/v1/cases/{case['id']}/steps/{task['id']}/done", headers=headers)
    assert done.status_code == 200 and any(s["done_at"] for s in done.get_json()["steps"])
    etag = client.get(f"/api/v1/cases/{case['id']}", headers=headers).headers["ETag"]
    closed = client.patch(f"/api/v1/cases/{case['id']}", json={"status": "resolved", "outcome": "Passport issued."},
                          headers={**headers, "If-Match": etag})
    assert closed.status_code == 200 and closed.get_json()["status"] == "resolved"
    listed = client.get("/api/v1/cases?mine=yes&closed=yes", headers=headers).get_json()
    assert [c["id"] for c in listed["items"]] == [case["id"]]


def test_a_correspondents_token_has_no_case_scopes_and_sees_no_private_notes(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    headers = _token(session, lc)
    assert client.get("/api/v1/cases", headers=headers).status_code == 403
    with pytest.raises(ValidationFailed):
        create_api_token(session, name="x", scopes=["cases:read"], days=5, actor_id=lc.id)
