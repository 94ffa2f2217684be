"""The staff API's remaining batch decisions (issue 19): split, the undo list and undo, and the letters
proposed for a batch (add, reject). The batch page's use cases and role rule, 409 when the state no longer
allows the decision, an audit event naming the token for each write."""

from sqlalchemy import select

from batching.batches import join_message, recluster
from correspondence.models import AuditEvent, Batch, BatchProposal, BatchStatus, Message, ProposalStatus, Role, utcnow
from tests.test_api_batches_constituents import _batch, _writes
from tests.test_api_staff import _error, _token
from tests.test_batch_review import NEAR, _water_batch


def _fresh(session):
    """See what the app committed: a new transaction, and no object kept from before."""
    session.commit()
    session.expire_all()


def test_split_then_undo_puts_every_letter_back(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    batch_id, ids = _batch(session, factory, members=4)
    headers = _token(session, lc)
    split = client.post(f"/api/v1/batches/{batch_id}/split", json={"message_ids": ids[:2]}, headers=headers)
    assert split.status_code == 201, split.get_json()
    new = split.get_json()
    assert new["id"] != batch_id and new["member_count"] == 2 and split.headers["ETag"]
    assert client.get(f"/api/v1/batches/{batch_id}", headers=headers).get_json()["member_count"] == 2
    session.commit()
    assert {m.batch_id for m in session.scalars(select(Message).where(Message.id.in_(ids[:2])))} == {new["id"]}
    [write] = _writes(session, "batch.split")
    assert write.after["new_batch_id"] == new["id"] and write.after["token_name"] == "script"
    assert write.actor_id == lc.id

    history = client.get(f"/api/v1/batches/{batch_id}/history", headers=headers)
    assert history.status_code == 200
    [decision] = history.get_json()["items"]
    assert decision["action"] == "batch.split" and decision["words"] == "split" and decision["actor_id"] == lc.id
    undone = client.post(f"/api/v1/batches/{batch_id}/undo", json={"event_id": decision["event_id"]},
                         headers=headers)
    assert undone.status_code == 200, undone.get_json()
    assert undone.get_json()["member_count"] == 4
    _fresh(session)
    assert {m.batch_id for m in session.scalars(select(Message).where(Message.id.in_(ids)))} == {batch_id}
    assert session.get(Batch, new["id"]).status == BatchStatus.MERGED
    assert client.get(f"/api/v1/batches/{batch_id}/history", headers=headers).get_json()["items"] == []
    [write] = _writes(session, "batch.undo")
    assert write.after["event_id"] == decision["event_id"] and write.after["undone"] == "batch.split"
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "batch.undo_event")) is not None
    # A decision is undone once: again is a conflict with its current state, not bad input.
    again = client.post(f"/api/v1/batches/{batch_id}/undo", json={"event_id": decision["event_id"]},
                        headers=headers)
    assert again.status_code == 409 and _error(again)["code"] == "not_now"
    assert len(_writes(session, "batch.undo")) == 1


def test_undo_restores_what_a_patch_changed(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    batch_id, ids = _batch(session, factory)
    headers = _token(session, lc)
    url = f"/api/v1/batches/{batch_id}"
    etag = client.get(url, headers=headers).headers["ETag"]
    assert client.patch(url, json={"stance": "support"}, headers={**headers, "If-Match": etag}).status_code == 200
    [decision] = client.get(f"{url}/history", headers=headers).get_json()["items"]
    assert decision["action"] == "batch.stance"
    undone = client.post(f"{url}/undo", json={"event_id": decision["event_id"]}, headers=headers)
    assert undone.status_code == 200 and undone.get_json()["stance"] is None
    assert undone.headers["ETag"] == etag  # the batch reads as it did before the PATCH
    _fresh(session)
    assert {m.stance for m in session.scalars(select(Message).where(Message.id.in_(ids)))} == {None}


def test_split_refuses_a_letter_no_longer_in_the_batch_and_changes_nothing(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    batch_id, ids = _batch(session, factory, members=3)
    other_id, others = _batch(session, factory, members=2, title="Another campaign")
    headers = _token(session, lc)
    url = f"/api/v1/batches/{batch_id}/split"
    stale = client.post(url, json={"message_ids": [ids[0], others[0]]}, headers=headers)
    assert stale.status_code == 409 and _error(stale)["code"] == "not_in_batch"
    assert str(others[0]) in _error(stale)["message"]
    everything = client.post(url, json={"message_ids": ids}, headers=headers)
    assert everything.status_code == 422 and "not all" in _error(everything)["message"]
    bodies: list[dict[str, object]] = [{"message_ids": []}, {"message_ids": ["one"]}, {"message_ids": [0]},
                                       {"message_ids": 5}, {}]
    for bad in bodies:
        response = client.post(url, json=bad, headers=headers)
        assert response.status_code == 422, (bad, response.get_json())
    assert client.post(url, json={"message_ids": ids[:1], "title": "x"}, headers=headers).status_code == 400
    assert client.post("/api/v1/batches/999999/split", json={"message_ids": ids[:1]},
                       headers=headers).status_code == 404
    session.commit()
    assert session.scalars(select(Batch)).all() == [session.get(Batch, batch_id), session.get(Batch, other_id)]
    assert {m.batch_id for m in session.scalars(select(Message).where(Message.id.in_(ids)))} == {batch_id}
    assert _writes(session, "batch.split") == []


def test_undo_takes_only_a_decision_of_this_batch(session, factory, client):
    lc = factory.staffer(Role.CORRESPONDENT)
    batch_id, ids = _batch(session, factory, members=3)
    other_id, _others = _batch(session, factory, members=3, title="Another campaign")
    headers = _token(session, lc)
    assert client.post(f"/api/v1/batches/{batch_id}/remove", json={"message_id": ids[0]},
                       headers=headers).status_code == 200
    [decision] = client.get(f"/api/v1/batches/{batch_id}/history", headers=headers).get_json()["items"]
    assert decision["action"] == "batch.remove_member" and "removing the letter from" in decision["words"]
    elsewhere = client.post(f"/api/v1/batches/{other_id}/undo", json={"event_id": decision["event_id"]},
                            headers=headers)
    assert elsewhere.status_code == 404 and _error(elsewhere)["code"] == "not_found"
    [write_event] = _writes(session, "batch.remove_member")
    not_a_decision = client.post(f"/api/v1/batches/{batch_id}/undo", json={"event_id": write_event.id},
                                 headers=headers)
    assert not_a_decision.status_code == 404
    _fresh(session)
    assert session.get(Message, ids[0]).batch_id is None
    assert client.get("/api/v1/batches/999999/history", headers=headers).status_code == 404


def test_proposals_are_listed_added_and_rejected_and_a_rejected_one_is_not_proposed_again(session, factory, client):
    _made, batch = _water_batch(session, factory)
    lc = factory.staffer(Role.CORRESPONDENT)
    near = factory.message(body_text=NEAR, processed_at=utcnow())
    again = factory.message(body_text=NEAR.replace("Maria Gomez", "Lee Wong"), processed_at=utcnow())
    join_message(session, near)
    join_message(session, again)
    session.commit()
    headers = _token(session, lc)
    url = f"/api/v1/batches/{batch.id}/proposals"
    listed = client.get(url, headers=headers).get_json()
    assert listed["total"] == 2 and {p["message"]["id"] for p in listed["items"]} == {near.id, again.id}
    assert all(0 < p["score"] < 1 and p["stage"] for p in listed["items"])
    size = batch.member_count

    added = client.post(f"{url}/{near.id}/add", headers=headers)
    assert added.status_code == 200, added.get_json()
    assert added.get_json()["member_count"] == size + 1
    twice = client.post(f"{url}/{near.id}/add", headers=headers)
    assert twice.status_code == 409 and "already added" in _error(twice)["message"]
    rejected = client.post(f"{url}/{again.id}/reject", headers=headers)
    assert rejected.status_code == 200 and rejected.get_json()["member_count"] == size + 1
    assert client.post(f"{url}/{again.id}/add", headers=headers).status_code == 409
    assert client.get(url, headers=headers).get_json() == {"total": 0, "items": []}
    assert client.post(f"{url}/999999/reject", headers=headers).status_code == 404
    _fresh(session)
    assert session.get(Message, near.id).batch_id == batch.id
    assert [w.after["message_id"] for w in _writes(session, "batch.add_member")] == [near.id]
    assert [w.after["message_id"] for w in _writes(session, "batch.reject_member")] == [again.id]

    # Neither the intake join (a retry) nor clustering proposes the rejected letter again.
    letter = session.get(Message, again.id)
    join_message(session, letter)
    recluster(session)
    session.commit()
    assert letter.batch_id is None
    assert client.get(url, headers=headers).get_json()["total"] == 0
    [row] = session.scalars(select(BatchProposal).where(BatchProposal.message_id == again.id)).all()
    assert row.status == ProposalStatus.REJECTED

    # Undoing the rejection through the API lists it again.
    [newest, *_rest] = client.get(f"/api/v1/batches/{batch.id}/history", headers=headers).get_json()["items"]
    assert newest["action"] == "batch.reject_member"
    assert client.post(f"/api/v1/batches/{batch.id}/undo", json={"event_id": newest["event_id"]},
                       headers=headers).status_code == 200
    assert [p["message"]["id"] for p in client.get(url, headers=headers).get_json()["items"]] == [again.id]


def test_a_caseworker_reads_the_undo_list_and_proposals_but_decides_nothing(session, factory, client):
    worker = factory.staffer(Role.CASEWORKER)
    batch_id, ids = _batch(session, factory, members=3)
    session.add(BatchProposal(batch_id=batch_id, message_id=factory.message().id, score=0.5, stage="sentences",
                              status=ProposalStatus.OPEN))
    session.commit()
    headers = _token(session, worker)
    assert client.get(f"/api/v1/batches/{batch_id}/history", headers=headers).status_code == 200
    assert client.get(f"/api/v1/batches/{batch_id}/proposals", headers=headers).get_json()["total"] == 1
    for path, body in ((f"{batch_id}/split", {"message_ids": ids[:1]}), (f"{batch_id}/undo", {"event_id": 1}),
                       (f"{batch_id}/proposals/{ids[0]}/add", None), (f"{batch_id}/proposals/{ids[0]}/reject", None)):
        response = client.post(f"/api/v1/batches/{path}", json=body, headers=headers)
        assert response.status_code == 403 and "batches:write" in _error(response)["message"], path
    lc = factory.staffer(Role.CORRESPONDENT)
    read_only = _token(session, lc, ["batches:read"])
    response = client.post(f"/api/v1/batches/{batch_id}/split", json={"message_ids": ids[:1]}, headers=read_only)
    assert response.status_code == 403 and _error(response)["code"] == "scope_missing"
    assert client.get(f"/api/v1/batches/{batch_id}/proposals",
                      headers=_token(session, lc, ["messages:read"])).status_code == 403
    session.commit()
    assert {m.batch_id for m in session.scalars(select(Message).where(Message.id.in_(ids)))} == {batch_id}
    assert session.scalars(select(AuditEvent).where(AuditEvent.object_type == "batch")).all() == []


def test_the_document_lists_the_batch_decisions(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path, method in (("split", "post"), ("history", "get"), ("undo", "post"), ("proposals", "get"),
                         ("proposals/{message_id}/add", "post"), ("proposals/{message_id}/reject", "post")):
        op = paths[f"/api/v1/batches/{{batch_id}}/{path}"][method]
        scope = "batches:read" if method == "get" else "batches:write"
        assert f"Permission: `{scope}`" in op["description"], path
        if method == "post":
            assert "409" in op["responses"], path
    assert "201" in paths["/api/v1/batches/{batch_id}/split"]["post"]["responses"]
