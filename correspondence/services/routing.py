"""Assignment rules: who new mail goes to, by topic and channel, round-robin inside a team."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import Channel, Message, RoutingRule, Staffer, Topic
from correspondence.services.audit import record
from correspondence.services.messages import assign_message


def list_rules(session: Session, *, active_only: bool = False) -> list[RoutingRule]:
    query = select(RoutingRule).order_by(RoutingRule.active.desc(), RoutingRule.name)
    if active_only:
        query = query.where(RoutingRule.active.is_(True))
    return list(session.scalars(query))


def create_rule(session: Session, *, name: str, topic_id: int | None, channel: str | None,
                staffer_ids: list[int], actor_id: int) -> RoutingRule:
    name = name.strip()
    if not name:
        raise ValidationFailed("name the rule (e.g. 'Veterans mail to the casework team')")
    if not staffer_ids:
        raise ValidationFailed("choose at least one staffer")
    if topic_id is not None and session.get(Topic, topic_id) is None:
        raise ValidationFailed(f"no topic {topic_id}")
    if channel:
        try:
            Channel(channel)
        except ValueError as exc:
            raise ValidationFailed(f"{channel!r} is not a channel") from exc
    found = set(session.scalars(select(Staffer.id).where(Staffer.id.in_(staffer_ids), Staffer.active.is_(True))))
    if missing := [i for i in staffer_ids if i not in found]:
        raise ValidationFailed(f"not active staff: {', '.join(map(str, missing))}")
    rule = RoutingRule(name=name[:120], topic_id=topic_id, channel=channel or None,
                       staffer_ids=list(dict.fromkeys(staffer_ids)), next_index=0, active=True)
    session.add(rule)
    session.flush()
    record(session, actor_id=actor_id, action="routing_rule.create", object_type="routing_rule",
           object_id=rule.id, after={"name": rule.name, "topic_id": topic_id, "channel": rule.channel,
                                     "staffer_ids": rule.staffer_ids})
    return rule


def deactivate_rule(session: Session, rule_id: int, *, actor_id: int) -> RoutingRule:
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(f"no routing rule {rule_id}")
    if rule.active:
        rule.active = False
        record(session, actor_id=actor_id, action="routing_rule.deactivate", object_type="routing_rule",
               object_id=rule.id, before={"active": True}, after={"active": False})
    return rule


def matching_rule(rules: list[RoutingRule], message: Message) -> RoutingRule | None:
    """The most specific active rule for the message: topic and channel, then topic, channel, catch-all."""
    candidates = [r for r in rules if r.active
                  and (r.topic_id is None or r.topic_id == message.topic_id)
                  and (r.channel is None or r.channel == message.channel.value)]
    return max(candidates, key=lambda r: (r.specificity, -r.id), default=None)


def route_message(session: Session, message: Message, rules: list[RoutingRule]) -> Staffer | None:
    """Assign an unassigned new message by the rules; the team's next active member gets it."""
    rule = matching_rule(rules, message)
    if rule is None or not rule.staffer_ids:
        return None
    active = {s.id: s for s in session.scalars(select(Staffer).where(Staffer.id.in_(rule.staffer_ids),
                                                                        Staffer.active.is_(True)))}
    for offset in range(len(rule.staffer_ids)):
        candidate = rule.staffer_ids[(rule.next_index + offset) % len(rule.staffer_ids)]
        if candidate in active:
            rule.next_index = (rule.next_index + offset + 1) % len(rule.staffer_ids)
            assign_message(session, message.id, candidate, actor_id=None)
            return active[candidate]
    return None
