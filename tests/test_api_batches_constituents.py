"""The staff API's batch decisions and constituent create: the batch page's use cases with its role rule
(batches:write only for the roles that decide on the page), ETag/If-Match on the batch, one error shape,
an audit event naming the token for each write, and Idempotency-Key replay for a create."""

from sqlalchemy import select

from correspondence.models import (
    AuditEvent,
    Batch,
    BatchStatus,
    Constituent,
    ConstituentEmail,
    Message,
    Role,
    Topic,
)
from correspondence.services.api_tokens import scopes_for
from tests.test_api_staff import _error, _token


def _batch(session, factory, members=2, title="Save the clinic"):
    batch = Batch(title=title, member_count=members)
    session.add(batch)
    session.flush()
    ids = [factory.message(batch_id=batch.id, subject=title).id for _ in range(members)]
    session.commit()
    return batch.id, ids


def _writes(session, operation):
    session.commit()  # a fresh transaction sees what the app committed
    return [e for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "api_token.write"))
            if e.after.get("operation") == operation]


# --- Batches ------------------------------------------------------------------------------------------

def test_read_a_batch_then_assign_code_and_mark_it_with_if_match(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    topic = Topic(name="Health clinics")
    session.add(topic)
    batch_id, ids = _batch(session, factory)
    headers = _token(session, lc)
    url = f"/api/v1/batches/{batch_id}"
    read = client.get(url, headers=headers)
    assert read.status_code == 200 and read.get_json()["member_count"] == 2
    change = {"assignee_id": lc.id, "topic_id": topic.id, "stance": "oppose"}
    assert _error(client.patch(url, json=change, headers=headers))["code"] == "if_match_required"
    done = client.patch(url, json=change, headers={**headers, "If-Match": read.headers["ETag"]})
    assert done.status_code == 200, done.get_json()
    assert (done.get_json()["assignee_id"], done.get_json()["topic_id"], done.get_json()["stance"]) == (
        lc.id, topic.id, "oppose")
    stale = client.patch(url, json={"not_campaign": True}, headers={**headers, "If-Match": read.headers["ETag"]})
    assert stale.status_code == 412
    marked = client.patch(url, json={"not_campaign": True}, headers={**headers, "If-Match": done.headers["ETag"]})
    assert marked.status_code == 200 and marked.get_json()["status"] == "not_campaign"
    session.commit()
    letters = session.scalars(select(Message).where(Message.id.in_(ids))).all()
    assert {(m.assignee_id, m.topic_id, m.stance.value) for m in letters} == {(lc.id, topic.id, "oppose")}
    # The page's own audited decisions (undoable there), and one event per API write naming the token.
    actions = {e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.object_type == "batch"))}
    assert {"batch.assign", "batch.topic", "batch.stance", "batch.not_campaign"} <= actions
    writes = _writes(session, "batch.update")
    assert len(writes) == 2 and all(w.after["token_name"] == "script" and w.actor_id == lc.id for w in writes)
    back = client.patch(url, json={"not_campaign": False}, headers={**headers, "If-Match": marked.headers["ETag"]})
    assert back.status_code == 200 and back.get_json()["status"] == "open"


def test_batch_update_refuses_bad_values_with_422(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    batch_id, ids = _batch(session, factory)
    headers = _token(session, lc)
    url = f"/api/v1/batches/{batch_id}"
    etag = client.get(url, headers=headers).headers["ETag"]
    for bad in ({"topic_id": 999999}, {"assignee_id": 999999}, {"stance": "maybe"}, {"not_campaign": "yes"},
                {"topic_id": "one"}, {"assignee_id": lc.id, "topic_id": 999999}):
        response = client.patch(url, json=bad, headers={**headers, "If-Match": etag})
        assert response.status_code == 422, (bad, response.get_json())
        assert _error(response)["code"] == "not_valid"
    assert client.patch(url, json={"colour": "red"}, headers={**headers, "If-Match": etag}).status_code == 400
    assert client.get("/api/v1/batches/999999", headers=headers).status_code == 404
    assert _writes(session, "batch.update") == []
    # All or nothing: the assignment taken before the unknown topic was refused did not stay.
    assert {m.assignee_id for m in session.scalars(select(Message).where(Message.id.in_(ids)))} == {None}
    assert client.get(url, headers=headers).headers["ETag"] == etag


def test_merge_another_batch_into_this_one(session, factory, client):
    boss = factory.staffer(Role.SUPERVISOR)
    keep, _k = _batch(session, factory, members=2)
    other, moved = _batch(session, factory, members=3, title="Save the clinic now")
    headers = _token(session, boss)
    merged = client.post(f"/api/v1/batches/{keep}/merge", json={"other_id": other}, headers=headers)
    assert merged.status_code == 200, merged.get_json()
    assert merged.get_json()["member_count"] == 5 and merged.headers["ETag"]
    assert client.get(f"/api/v1/batches/{other}", headers=headers).get_json()["status"] == "merged"
    session.commit()
    assert {m.batch_id for m in session.scalars(select(Message).where(Message.id.in_(moved)))} == {keep}
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "batch.merge")) is not None
    [write] = _writes(session, "batch.merge")
    assert write.after["merged_id"] == other and write.after["token_name"] == "script"
    again = client.post(f"/api/v1/batches/{keep}/merge", json={"other_id": other}, headers=headers)
    assert again.status_code == 422 and "merged" in _error(again)["message"]
    itself = client.post(f"/api/v1/batches/{keep}/merge", json={"other_id": keep}, headers=headers)
    assert itself.status_code == 422
    assert client.post(f"/api/v1/batches/{keep}/merge", json={}, headers=headers).status_code == 422


def test_take_a_letter_out_of_a_batch(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    batch_id, ids = _batch(session, factory, members=3)
    headers = _token(session, lc)
    url = f"/api/v1/batches/{batch_id}/remove"
    done = client.post(url, json={"message_id": ids[0]}, headers=headers)
    assert done.status_code == 200 and done.get_json()["member_count"] == 2
    session.commit()
    letter = session.get(Message, ids[0])
    assert letter.batch_id is None and letter.batch_pinned  # clustering leaves it out
    [write] = _writes(session, "batch.remove_member")
    assert write.after["message_id"] == ids[0] and write.actor_id == lc.id
    again = client.post(url, json={"message_id": ids[0]}, headers=headers)
    assert again.status_code == 404 and _error(again)["code"] == "not_found"
    bad = client.post(url, json={"message_id": 0}, headers=headers)
    assert bad.status_code == 422 and "message_id" in _error(bad)["fields"]


def test_a_caseworker_may_read_batches_but_not_decide(session, factory, client):
    """The batch page lets admins, supervisors and correspondents decide; a caseworker's token cannot hold
    batches:write, and one made before a move to caseworker loses it."""
    worker = factory.staffer(Role.CASEWORKER)
    batch_id, ids = _batch(session, factory)
    assert "batches:write" not in scopes_for(Role.CASEWORKER) and "batches:read" in scopes_for(Role.CASEWORKER)
    headers = _token(session, worker)
    etag = client.get(f"/api/v1/batches/{batch_id}", headers=headers).headers["ETag"]
    for response in (client.patch(f"/api/v1/batches/{batch_id}", json={"stance": "support"},
                                  headers={**headers, "If-Match": etag}),
                     client.post(f"/api/v1/batches/{batch_id}/merge", json={"other_id": 1}, headers=headers),
                     client.post(f"/api/v1/batches/{batch_id}/remove", json={"message_id": ids[0]},
                                 headers=headers)):
        assert response.status_code == 403 and "batches:write" in _error(response)["message"]
    lc = factory.staffer(Role.CORRESPONDENT)
    moved = _token(session, lc)
    lc.role = Role.CASEWORKER
    session.commit()
    refused = client.post(f"/api/v1/batches/{batch_id}/remove", json={"message_id": ids[0]}, headers=moved)
    assert refused.status_code == 403 and _error(refused)["code"] == "scope_missing"
    session.commit()
    assert session.get(Message, ids[0]).batch_id == batch_id


def test_a_token_without_batches_write_cannot_decide(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    batch_id, ids = _batch(session, factory)
    headers = _token(session, lc, ["batches:read"])
    response = client.post(f"/api/v1/batches/{batch_id}/remove", json={"message_id": ids[0]}, headers=headers)
    assert response.status_code == 403 and _error(response)["code"] == "scope_missing"
    assert client.get(f"/api/v1/batches/{batch_id}", headers=_token(session, lc, ["messages:read"])).status_code == 403


# --- Constituents -------------------------------------------------------------------------------------

def test_create_a_constituent_read_as_the_import_reads_it(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    headers = _token(session, lc)
    made = client.post("/api/v1/constituents", headers=headers, json={
        "first_name": " Rosa ", "last_name": "Diaz", "address1": "12 Oak St", "city": "Columbus", "state": "Ohio",
        "zip5": "43215-1234", "email": "Rosa.Diaz@Example.NET", "phone": "(614) 555-0100"})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert (body["first_name"], body["state"], body["zip5"], body["zip4"]) == ("Rosa", "OH", "43215", "1234")
    assert body["emails"] == ["rosa.diaz@example.net"] and body["phones"] == ["+16145550100"]
    assert made.headers["ETag"]
    read = client.get(f"/api/v1/constituents/{body['id']}", headers=headers)
    assert read.get_json() == body
    session.commit()
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "constituent.create"))
    assert event.actor_id == lc.id and event.object_id == str(body["id"]) and "email" in event.after["fields"]
    [write] = _writes(session, "constituent.create")
    assert write.after["token_name"] == "script" and write.object_id == str(body["id"])


def test_an_email_on_file_answers_409_with_the_existing_record(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    person = factory.constituent(email="ana@example.net")
    headers = _token(session, lc)
    response = client.post("/api/v1/constituents", json={"last_name": "Ruiz", "email": "ANA@example.net"},
                           headers=headers)
    assert response.status_code == 409
    error = _error(response)
    assert error["code"] == "already_on_file" and error["fields"] == {"constituent_id": str(person.id)}
    session.commit()
    assert session.scalars(select(ConstituentEmail).where(ConstituentEmail.address == "ana@example.net")).all()
    assert len(session.scalars(select(Constituent)).all()) == 1
    assert _writes(session, "constituent.create") == []


def test_create_refuses_bad_values_with_422(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    headers = _token(session, lc)
    for bad in ({"last_name": "Diaz", "zip5": "12"}, {"last_name": "Diaz", "email": "not-an-address"},
                {"last_name": "Diaz", "phone": "12"}, {"last_name": "Diaz", "state": "Atlantis"},
                {"first_name": "Rosa"}, {"last_name": 7}, {"last_name": "x" * 300}):
        response = client.post("/api/v1/constituents", json=bad, headers=headers)
        assert response.status_code == 422, (bad, response.get_json())
    assert client.post("/api/v1/constituents", json={"age": 40}, headers=headers).status_code == 400
    session.commit()
    assert session.scalars(select(Constituent)).all() == []


def test_create_replays_for_the_same_idempotency_key(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    headers = {**_token(session, lc), "Idempotency-Key": "crm-row-17"}
    body = {"first_name": "Lee", "last_name": "Wong", "phone": "614 555 0199"}
    first = client.post("/api/v1/constituents", json=body, headers=headers)
    again = client.post("/api/v1/constituents", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/api/v1/constituents", json={"last_name": "Other"}, headers=headers)
    assert other.status_code == 422 and _error(other)["code"] == "idempotency_key_reused"
    session.commit()
    assert len(session.scalars(select(Constituent)).all()) == 1
    assert len(_writes(session, "constituent.create")) == 1


def test_a_read_only_token_cannot_create_a_constituent(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    headers = _token(session, lc, ["constituents:read"])
    response = client.post("/api/v1/constituents", json={"last_name": "Diaz"}, headers=headers)
    assert response.status_code == 403 and "constituents:write" in _error(response)["message"]
    session.commit()
    assert session.scalars(select(Constituent)).all() == []


def test_the_document_lists_the_new_operations(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert {"get", "patch"} <= set(spec["paths"]["/api/v1/batches/{batch_id}"])
    assert "post" in spec["paths"]["/api/v1/batches/{batch_id}/merge"]
    assert "post" in spec["paths"]["/api/v1/batches/{batch_id}/remove"]
    create = spec["paths"]["/api/v1/constituents"]["post"]
    assert "409" in create["responses"] and "Idempotency-Key" in [p["name"] for p in create["parameters"]]
    assert "Permission: `batches:write`" in spec["paths"]["/api/v1/batches/{batch_id}"]["patch"]["description"]
    assert BatchStatus.MERGED.value in str(spec["components"]["schemas"]["Batch"])
