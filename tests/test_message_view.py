from datetime import UTC, datetime, timedelta

from correspondence.models import AuditEvent, MessageStatus, Role, Topic
from correspondence.services.blobs import store_blob
from insight.dashboard import backlog

RAW = b"""From: Pat Lopez <pat@example.net>
To: office@house.example
Subject: Bridge on Route 9
Message-ID: <abc123@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain; charset=utf-8

The bridge is crumbling.
--XX
Content-Type: application/pdf
Content-Disposition: attachment; filename="photo-report.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--XX--
"""


def test_message_view_shows_clean_text_original_and_history(client, auth, factory, session):
    auth.login()
    person = factory.constituent(first_name="Pat", last_name="Lopez")
    earlier = factory.message(constituent_id=person.id, subject="Earlier note",
                              received_at=datetime.now(UTC) - timedelta(days=30))
    m = factory.message(constituent_id=person.id, subject="Bridge on Route 9", body_text="The bridge is crumbling.",
                        body_html='<p onclick="steal()">The bridge</p><script>alert(1)</script>',
                        raw_sha256=store_blob(session, RAW, "message/rfc822"))
    session.commit()
    html = client.get(f"/messages/{m.id}").get_data(as_text=True)
    assert "The bridge is crumbling." in html
    assert "photo-report.pdf" in html and "application/pdf" in html
    assert "Message-ID" in html
    assert "<script>alert(1)</script>" not in html and "onclick" not in html
    assert "Earlier note" in html and f"/messages/{earlier.id}" in html
    assert "Pat Lopez" in html


def test_actions_change_state_through_services(client, auth, factory, session):
    me = auth.login(Role.CORRESPONDENT)
    m = factory.message()
    topic = session.query(Topic).filter_by(name="Taxation").one()
    session.commit()
    token = auth.csrf(f"/messages/{m.id}")
    assert client.post(f"/messages/{m.id}/assign", data={"csrf_token": token, "value": me.id}).status_code == 303
    client.post(f"/messages/{m.id}/topic", data={"csrf_token": token, "value": topic.id})
    client.post(f"/messages/{m.id}/stance", data={"csrf_token": token, "value": "support"})
    client.post(f"/messages/{m.id}/status", data={"csrf_token": token, "value": "in_progress"})
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert (m.assignee_id, m.topic_id, m.stance.value, m.status) == (me.id, topic.id, "support",
                                                                       MessageStatus.IN_PROGRESS)
    events = session.query(AuditEvent).filter_by(object_type="message", object_id=str(m.id))
    actions = [e.action for e in events.order_by(AuditEvent.id)]
    assert actions == ["message.assign", "message.set_topic", "message.set_stance", "message.start"]


def test_refused_transition_is_explained_not_a_500(client, auth, factory, session):
    auth.login()
    m = factory.message()
    session.commit()
    response = client.post(f"/messages/{m.id}/status", data={"csrf_token": auth.csrf(f"/messages/{m.id}"),
                                                             "value": "awaiting_approval"}, follow_redirects=True)
    assert response.status_code == 200
    assert "cannot go from new to awaiting_approval" in response.get_data(as_text=True)


def test_missing_message_and_bad_values(client, auth, factory, session):
    auth.login()
    m = factory.message()
    session.commit()
    assert client.get("/messages/999999").status_code == 404
    token = auth.csrf(f"/messages/{m.id}")
    assert client.post(f"/messages/{m.id}/teleport", data={"csrf_token": token}).status_code == 404
    response = client.post(f"/messages/{m.id}/status", data={"csrf_token": token, "value": "nonsense"},
                           follow_redirects=True)
    assert response.status_code == 200 and "nonsense" in response.get_data(as_text=True)
    assert client.post(f"/messages/{m.id}/status", data={"value": "closed"}).status_code == 400


def test_backlog_counts_by_staffer_and_age(session, factory):
    now = datetime.now(UTC)
    lc = factory.staffer(name="Devon")
    for days in (0, 1, 5, 10, 20, 45):
        factory.message(assignee_id=lc.id, status=MessageStatus.ASSIGNED, received_at=now - timedelta(days=days),
                        due_at=now - timedelta(days=1) if days > 15 else now + timedelta(days=3))
    factory.message(received_at=now - timedelta(days=2))
    factory.message(status=MessageStatus.CLOSED, assignee_id=lc.id)
    data = backlog(session, now=now)
    row = next(r for r in data.staff if r.staffer_id == lc.id)
    assert row.open_items == 6
    assert row.buckets == [2, 1, 1, 1, 1]
    assert row.overdue == 2
    assert row.oldest is not None
    assert abs((row.oldest - (now - timedelta(days=45))).total_seconds()) < 1
    assert data.unassigned.open_items == 1
    assert data.by_status["closed"] == 1 and data.open_total == 7


def test_dashboard_page(client, auth, factory, session):
    auth.login(Role.SUPERVISOR)
    lc = factory.staffer(name="Priya Shah")
    factory.message(assignee_id=lc.id, status=MessageStatus.ASSIGNED)
    session.commit()
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "Priya Shah" in html and 'id="unassigned-count">0<' in html
