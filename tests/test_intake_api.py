"""The intake API: web-form and CWC deliveries with per-source tokens, answered 202/400/401/422."""

from pathlib import Path

from rq import SimpleWorker
from sqlalchemy import select

from correspondence.models import Channel, IntakeToken, Message, MessageStatus, Role
from correspondence.services.tokens import create_token
from workers.queues import PROCESS, get_queue

CWC = (Path(__file__).parent / "data" / "cwc" / "full.xml").read_bytes()
FORM = {"first_name": "Dana", "last_name": "Reyes", "street": "55 Elm St", "city": "Columbus", "state": "oh",
        "zip5": "43215", "phone": "614-555-0199", "email": "Dana.Reyes@Example.org", "topic": "Health",
        "subject": "Clinic closing", "message": "The clinic on Elm St is closing. Please help keep it open."}


def _token(session, name="website"):
    _t, plain = create_token(session, name=name, actor_id=None)
    session.commit()
    return {"Authorization": f"Bearer {plain}"}


def _work(redis):
    SimpleWorker([get_queue(PROCESS, redis)], connection=redis).work(burst=True)


def test_webform_json_is_accepted_processed_and_deduplicated(client, session, redis, job_env):
    headers = _token(session)
    response = client.post("/api/v1/intake/webform", json=FORM, headers=headers)
    assert response.status_code == 202, response.get_json()
    message_id = response.get_json()["message_id"]
    again = client.post("/api/v1/intake/webform", json=FORM, headers=headers)
    assert again.status_code == 202 and again.get_json() == {"message_id": message_id, "duplicate": True}
    _work(redis)
    m = session.get(Message, message_id)
    assert m.channel == Channel.WEBFORM and m.processed_at is not None and m.status == MessageStatus.NEW
    assert m.topic.name == "Health"
    c = m.constituent
    assert (c.first_name, c.state, c.emails[0].address) == ("Dana", "OH", "dana.reyes@example.org")


def test_webform_form_encoded_with_member_form_names(client, session):
    headers = _token(session)
    data = {"$NAME_FIRST": "Lee", "$NAME_LAST": "Wong", "$EMAIL": "lee@example.org", "$ADDRESS_ZIP5": "43215-0001",
            "$MESSAGE": "Thanks for the town hall.", "$TOPIC": "Congress"}
    response = client.post("/api/v1/intake/webform", data=data, headers=headers)
    assert response.status_code == 202, response.get_json()
    m = session.get(Message, response.get_json()["message_id"])
    assert m.facts["constituent"]["zip4"] == "0001"


def test_webform_errors_per_field(client, session):
    headers = _token(session)
    response = client.post("/api/v1/intake/webform", json={"first_name": "X", "email": "not-an-email",
                                                           "zip5": "123", "state": "Atlantis"}, headers=headers)
    assert response.status_code == 400
    fields = response.get_json()["error"]["fields"]
    assert set(fields) == {"last_name", "email", "message", "zip5", "state"}
    assert session.scalars(select(Message)).all() == []
    assert client.post("/api/v1/intake/webform", data="[1,2]", content_type="application/json",
                       headers=headers).status_code == 400


def test_tokens_are_required_and_revocable(client, session, auth):
    assert client.post("/api/v1/intake/webform", json=FORM).status_code == 401
    assert client.post("/api/v1/intake/webform", json=FORM,
                       headers={"Authorization": "Bearer mrt_wrong"}).status_code == 401
    headers = _token(session)
    token = session.scalars(select(IntakeToken)).one()
    auth.login(Role.ADMIN)
    client.post(f"/admin/intake/tokens/{token.id}/revoke", data={"csrf_token": auth.csrf("/admin/intake")})
    response = client.post("/api/v1/intake/webform", json=FORM, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == 401


def test_admin_creates_token_shown_once(client, auth, session):
    auth.login(Role.ADMIN)
    html = client.post("/admin/intake", data={"csrf_token": auth.csrf("/admin/intake"), "name": "vendor X"}
                       ).get_data(as_text=True)
    assert 'id="new-token">mrt_' in html
    token = session.scalars(select(IntakeToken)).one()
    assert token.name == "vendor X" and "mrt_" not in token.token_sha256
    assert "mrt_" not in client.get("/admin/intake").get_data(as_text=True)


def test_cwc_endpoint(client, session, redis, job_env):
    headers = _token(session, "vendor")
    response = client.post("/api/v1/intake/cwc", data=CWC, content_type="application/xml", headers=headers)
    assert response.status_code == 202
    assert client.post("/api/v1/intake/cwc", data=CWC, content_type="application/xml",
                       headers=headers).get_json()["duplicate"] is True
    broken = client.post("/api/v1/intake/cwc", data=b"<CWC><x>", content_type="application/xml", headers=headers)
    assert broken.status_code == 422 and "not well-formed" in broken.get_json()["error"]["message"]
    assert session.get(Message, broken.get_json()["error"]["message_id"]).status == MessageStatus.QUARANTINED
    _work(redis)
    session.rollback()  # end the read snapshot taken before the worker ran
    m = session.get(Message, response.get_json()["message_id"])
    assert m.processed_at is not None and m.campaign_id == "hands-off-ss-2026"


def test_quarantine_page_retry_and_release(client, auth, factory, session, redis, job_env):
    auth.login(Role.CORRESPONDENT)
    bad = factory.message(status=MessageStatus.QUARANTINED, status_reason="decode: broken", subject="<b>x</b>")
    other = factory.message(status=MessageStatus.QUARANTINED, status_reason="check-delivery: another office")
    session.commit()
    html = client.get("/quarantine/").get_data(as_text=True)
    assert "decode: broken" in html and "&lt;b&gt;x&lt;/b&gt;" in html
    token = auth.csrf("/quarantine/")
    client.post(f"/quarantine/{bad.id}/retry", data={"csrf_token": token})
    client.post(f"/quarantine/{other.id}/release", data={"csrf_token": token})
    _work(redis)
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert bad.status == MessageStatus.NEW and bad.processed_at is not None
    assert other.status == MessageStatus.NEW
    response = client.post(f"/quarantine/{other.id}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert "only quarantined messages" in response.get_data(as_text=True)


def test_message_view_shows_how_the_sender_was_matched(client, auth, session, redis, job_env):
    headers = _token(session)
    message_id = client.post("/api/v1/intake/webform", json=FORM, headers=headers).get_json()["message_id"]
    _work(redis)
    auth.login()
    html = client.get(f"/messages/{message_id}").get_data(as_text=True)
    assert "Matched by created (100% sure)" in html
    assert "via webform:website" in html
