from sqlalchemy import select

from correspondence.models import AuditEvent, Channel, Message, MessageStatus, Role, RoutingRule, Topic
from correspondence.services.routing import create_rule, matching_rule
from intake.importer import import_items
from intake.registry import file_adapter
from tests.test_intake_cwc import FULL


def test_most_specific_rule_wins_and_team_is_round_robin(database, session, factory):
    a, b, c = factory.staffer(name="A"), factory.staffer(name="B"), factory.staffer(name="C")
    welfare = session.scalar(select(Topic.id).where(Topic.name == "Social Welfare"))
    catch_all = create_rule(session, name="everything", topic_id=None, channel=None, staffer_ids=[c.id], actor_id=a.id)
    team = create_rule(session, name="welfare team", topic_id=welfare, channel=None, staffer_ids=[a.id, b.id],
                       actor_id=a.id)
    session.commit()
    m = factory.message(topic_id=welfare, channel=Channel.CWC)
    other = factory.message(topic_id=None)
    assert matching_rule([catch_all, team], m).id == team.id
    assert matching_rule([catch_all, team], other).id == catch_all.id
    session.commit()

    deliveries = [FULL.replace(b"a1b2c3d4e5f60718293a4b5c6d7e8f90", f"d{i}".encode())
                  .replace(b"Rosa.Martinez@example.net", f"p{i}@example.net".encode()) for i in range(4)]
    reader, adapter = file_adapter("cwc")
    import_items(database, [(f"d{i}", d) for i, d in enumerate(deliveries)], adapter, source="t", max_bytes=10**6)
    routed = session.scalars(select(Message).where(Message.channel == Channel.CWC, Message.source == "t")
                             .order_by(Message.id)).all()
    assert [m.assignee_id for m in routed] == [a.id, b.id, a.id, b.id]
    assert all(m.status == MessageStatus.ASSIGNED for m in routed)
    audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "message.assign")).all()
    assert len(audit) == 4 and all(e.actor_id is None for e in audit)


def test_inactive_team_member_is_skipped(session, factory, database):
    a, b = factory.staffer(), factory.staffer()
    create_rule(session, name="all", topic_id=None, channel=None, staffer_ids=[a.id, b.id], actor_id=a.id)
    b.active = False
    session.commit()
    reader, adapter = file_adapter("cwc")
    import_items(database, [("x", FULL)], adapter, source="t", max_bytes=10**6)
    assert session.scalars(select(Message)).one().assignee_id == a.id


def test_routing_page(client, auth, session, factory):
    auth.login(Role.SUPERVISOR)
    lc = factory.staffer(name="Devon Carter")
    session.commit()
    token = auth.csrf("/admin/routing")
    bad = client.post("/admin/routing", data={"csrf_token": token, "name": "x"})
    assert bad.status_code == 400 and "choose at least one staffer" in bad.get_data(as_text=True)
    client.post("/admin/routing", data={"csrf_token": token, "name": "Phones to Devon", "channel": "phone",
                                        "staffer_ids": [str(lc.id)]})
    rule = session.scalars(select(RoutingRule)).one()
    assert rule.channel == "phone" and rule.staffer_ids == [lc.id]
    assert "Phones to Devon" in client.get("/admin/routing").get_data(as_text=True)
    client.post(f"/admin/routing/{rule.id}/deactivate", data={"csrf_token": token})
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert rule.active is False
