"""The send path's shape at volume: letters are claimed in groups (one commit per group, sent letters
recorded in bulk with the next claim), so a newsletter costs a few commits per twenty letters instead of one
per letter — and every letter is still claimed before the server sees it, recorded once, and audited."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import event, func, select

from correspondence.models import AuditEvent, Message, MessageStatus, Response, ResponseState
from drafting import send as send_module
from drafting.render import to_html
from drafting.send import Outgoing, build_email, send_responses
from outbound import sending
from tests.test_deliverability import _smtp
from tests.test_newsletter import _approved, _send, _subscribers


def test_a_newsletter_is_sent_in_claimed_groups_with_few_commits_and_every_letter_recorded(
        session, factory, database, settings, smtp_server):
    version, boss = _approved(session, factory)
    addresses = [f"reader{i}@example.org" for i in range(45)]
    chosen = _subscribers(session, factory, boss, *addresses)
    session.commit()
    _newsletter, queued = _send(session, database, settings, version, boss, list_id=chosen.id)
    assert len(queued) == 45
    commits: list[int] = []

    def counted(_conn) -> None:
        commits.append(1)

    event.listen(database.engine, "commit", counted)
    try:
        result = send_responses(database, queued, _smtp(settings, smtp_server))
    finally:
        event.remove(database.engine, "commit", counted)
    assert (result.sent, result.failed, result.uncertain, result.skipped) == (45, 0, 0, 0)
    # 45 letters = 3 groups: 3 claims (each also recording the group before) and 1 for the last group's outcome.
    groups = -(-45 // send_module.CLAIM_GROUP)
    assert len(commits) == groups + 1
    assert sorted(m["To"] for m in smtp_server.inbox.messages) == sorted(addresses)
    session.expire_all()
    states = list(session.scalars(select(Response.state).where(Response.id.in_(queued))))
    assert states == [ResponseState.SENT] * 45
    assert all(session.scalars(select(Response.sent_at).where(Response.id.in_(queued))))
    events = session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.action == "response.sent", AuditEvent.object_id.in_([str(i) for i in queued])))
    assert events == 45
    pieces = list(session.scalars(select(Message.status).where(Message.source.like("newsletter-subscribers:%"))))
    assert pieces == [MessageStatus.RESPONDED] * 45
    # Sending the same chunk again sends nothing twice.
    again = send_responses(database, queued, _smtp(settings, smtp_server))
    assert (again.sent, again.skipped) == (0, 45) and len(smtp_server.inbox.messages) == 45


def test_the_unsubscribe_footer_written_before_encoding_is_what_the_old_path_wrote(settings):
    cfg = _smtp(settings, type("S", (), {"port": 25})())
    body = "Dear Ana,\n\nThe bridge opens on the 14th & the town hall is on Tuesday <at 6>.\n\nRep. Doe\n"
    letter = Outgoing("ana@example.org", "News", body, "<m1@house.example>", None, response_id=7, follow_up=True)
    built = build_email(letter, cfg)
    old = EmailMessage()
    old.set_content(body)
    old.add_alternative(f"<!doctype html><html><body>{to_html(body)}</body></html>", subtype="html")
    sending.add_list_unsubscribe(old, 7, cfg)
    for kind in ("plain", "html"):
        assert built.get_body((kind,)).get_content() == old.get_body((kind,)).get_content()
    assert built["List-Unsubscribe"] == old["List-Unsubscribe"]
    assert built["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sending.unsubscribe_url(7, cfg) in built.get_body(("plain",)).get_content()
