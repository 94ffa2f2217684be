"""History in words and times in the office's zone: every audit action the app writes reads as a sentence."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event as sa_event

from correspondence.models import AuditEvent, MessageStatus, Role, Topic
from correspondence.services.history import SENTENCES, describe
from insight.dashboard import backlog

ROOT = Path(__file__).resolve().parent.parent

# Every action written to the audit log, as found by grepping `action="` in the code (the test below keeps
# this list honest: a new action in the code and not here fails it). f-string actions are listed expanded.
ACTIONS = [
    "mass_mail.split",
    "apply_run.fail", "apply_run.finish", "apply_run.refused", "apply_run.run", "apply_run.start",
    "batch.add_member", "batch.assign", "batch.campaign", "batch.create", "batch.merge", "batch.not_campaign",
    "batch.reject_member", "batch.remove_member", "batch.split", "batch.stance", "batch.topic", "batch.undo_event",
    "case.document", "case.edit", "case.note", "case.open", "case.release", "case.release_withdrawn",
    "case.reminder", "case.status", "case.step_add", "case.step_done", "case.step_reassign",
    "case_category.active", "case_category.create", "case_category.edit",
    "constituent.add_email", "constituent.add_phone", "constituent.create", "constituent.edit",
    "constituent.import_create", "constituent.import_match", "constituent.merge", "constituent.remove_email",
    "constituent.remove_phone",
    "constituent.tag", "constituent.unmerge", "constituent.untag", "constituents.export",
    "demo.loaded", "district_zips.set",
    "help_request.email_confirmed", "help_request.link_sent", "help_request.link_withheld",
    "help_request.match_confirmed", "help_request.match_rejected", "help_request.received", "help_request.resend",
    "import.fail", "import.finish", "import.run", "import.start", "import.upload",
    "intake_token.create", "intake_token.revoke",
    "api_token.create", "api_token.revoke", "api_token.write",
    "letter.create", "letter.retire", "letter_version.approve", "letter_version.comment", "letter_version.create",
    "letter_version.edit", "letter_version.request_changes", "letter_version.retire", "letter_version.submit",
    "login.failed", "login.password_ok", "login.second_factor_failed", "login.succeeded",
    "mailbox.activate", "mailbox.check", "mailbox.create", "mailbox.deactivate", "mailbox.oauth_connect",
    "message.archive", "message.assign", "message.close", "message.quarantine", "message.received",
    "message.release", "message.reopen", "message.responded", "message.retry", "message.set_stance",
    "message.set_topic", "message.start", "message.submit_for_approval", "message.unassign", "message.undo_close",
    "report.fail", "report.finish", "report.run", "report.start",
    "response.failed", "response.mark_sent", "response.resend", "response.sent", "response.to_print",
    "response.uncertain", "response.queued",
    "routing_rule.create", "routing_rule.deactivate",
    "segment.create", "segment.delete", "segment.edit", "segment.follow_up",
    "staff.view_as", "staff.view_as_stop",
    "staffer.activated", "staffer.create", "staffer.deactivated", "staffer.password_changed",
    "staffer.password_reset", "staffer.recovery_code_used", "staffer.recovery_codes_created",
    "staffer.role_changed", "staffer.second_factor_reset", "staffer.security_key_added", "staffer.sessions_ended",
    "staffer.totp_enabled",
    "topic_model.activate", "topic_model.prune", "topic_model.train",
    "approval_delegation.create", "approval_delegation.end", "demo.history", "message.answer_queued",
    "notice.create", "notice.email", "notice.read", "notice.read_all", "paragraph.create", "paragraph.retire",
    "paragraph_revision.approve", "paragraph_revision.decline", "paragraph_revision.edit",
    "paragraph_revision.propose", "paragraph_revision.retire", "paragraph_revision.withdraw",
    "address.complaint", "address.invalid", "address.restored", "address.soft_bounce", "address.unsubscribed",
    "bounce.quarantined", "response.bounced",
    "election.add", "election.remove", "mass_mail_approval.record",
    "closing.intake_stopped", "closing.successor", "closing.auto_reply", "closing.step_requested",
    "closing.final_export", "closing.handover", "closing.purge", "closing.purge_refused",
    "case.transfer_consent", "case.transfer_consent_withdrawn", "history_import.finish",
    "subscription_list.create", "subscription.subscribe", "subscription.pending", "subscription.confirm",
    "subscription.resubscribe", "subscription.unsubscribe", "subscription.import", "newsletter.start",
    "newsletter.prepare",
    "backup.made", "backup.failed", "backup.verified", "backup.verify_failed",
    "export.start", "export.run", "export.fail", "export.finish", "export.download", "export.expire",
    "legal_hold.place", "legal_hold.release", "retention_rule.set", "retention.start", "retention.run",
    "retention.dry_run", "retention.finish", "retention.fail", "subject_access.request", "subject_access.run",
    "subject_access.finish", "subject_access.fail", "subject_access.download", "subject_access.expire",
    "constituent.erase",
    "webhook.create", "webhook.pause", "webhook.resume", "webhook.delete", "webhook.test", "webhook.prune",
]

_ACTION_LINE = re.compile(r"action=|else \"")
_NAME = re.compile(r"f?\"([a-z_]+\.[a-z_{}.]+)\"")


def _actions_in_code() -> set[str]:
    found: set[str] = set()
    for package in ("correspondence", "casework", "drafting", "intake", "batching", "web", "workers",
                    "outbound", "archive"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            for match in re.finditer(r"action=f?\"[^\"]+\"(?: if [^\n]+? else \"[^\"]+\")?", text):
                found.update(_NAME.findall(match.group(0)))
    return found


def test_the_list_holds_every_action_the_code_writes():
    in_code = _actions_in_code()
    assert len(in_code) > 80  # the grep found the app's actions, not nothing
    for name in in_code:
        if "{" in name:  # an f-string: some listed action must fit it
            pattern = re.compile(re.sub(r"\\\{[^}]*\\\}", "[a-z_]+", re.escape(name)) + "$")
            assert any(pattern.match(a) for a in ACTIONS), name
        else:
            assert name in ACTIONS, f"{name} is written by the code: add it to ACTIONS and to services/history.py"


# Realistic before/after for the actions whose sentences use them.
SHAPES: dict[str, tuple[dict | None, dict | None]] = {
    "message.assign": ({"status": "new", "assignee_id": None}, {"status": "assigned", "assignee_id": "DEVON"}),
    "message.unassign": ({"status": "assigned", "assignee_id": "DEVON"}, {"status": "new", "assignee_id": None}),
    "message.set_topic": ({"topic_id": None}, {"topic_id": "TOPIC", "source": "staff"}),
    "message.set_stance": ({"stance": None}, {"stance": "support"}),
    "message.received": (None, {"channel": "email", "source": "imap:office", "key": "<a@b>"}),
    "batch.assign": ({"assignee_id": None, "messages": []}, {"assignee_id": "DEVON"}),
    "batch.topic": ({"topic_id": None, "messages": []}, {"topic_id": "TOPIC"}),
    "case.edit": ({"caseworker_id": None, "due_at": "2026-03-01T17:00:00+00:00"},
                  {"caseworker_id": "DEVON", "due_at": "2026-03-09T17:00:00+00:00"}),
    "case.step_reassign": ({"step_id": 4, "assignee_id": None}, {"step_id": 4, "assignee_id": "DEVON"}),
    "constituent.edit": ({"city": "Dayton", "zip5": "45402"}, {"city": "Columbus", "zip5": "43215"}),
    "routing_rule.create": (None, {"name": "Veterans", "topic_id": "TOPIC", "channel": None,
                                   "staffer_ids": ["DEVON"]}),
    "constituent.merge": ({"merged_id": 9, "moved": {"messages": [1, 2]}, "filled": ["city"]},
                          {"merged_id": 9, "moved_counts": {"messages": 2}}),
}


def _fill(values: dict | None, ids: dict[str, int]) -> dict | None:
    if values is None:
        return None

    def one(v):
        if isinstance(v, list):
            return [one(i) for i in v]
        return ids.get(v, v) if isinstance(v, str) else v

    return {k: one(v) for k, v in values.items()}


def test_every_action_reads_as_a_sentence_with_names_not_ids_or_json(session, factory):
    priya = factory.staffer(name="Priya Shah", role=Role.SUPERVISOR)
    devon = factory.staffer(name="Devon Carter")
    topic = Topic(name="Veterans' benefits")
    session.add(topic)
    session.flush()
    ids = {"DEVON": devon.id, "TOPIC": topic.id}
    events = []
    for action in ACTIONS:
        before, after = SHAPES.get(action, (None, None))
        event = AuditEvent(actor_id=priya.id, action=action, object_type="message", object_id="1",
                           before=_fill(before, ids), after=_fill(after, ids), at=datetime.now(UTC))
        session.add(event)
        events.append(event)
    session.flush()
    lines = describe(session, events)
    assert len(lines) == len(ACTIONS)
    for action, line in zip(ACTIONS, lines, strict=True):
        assert action in SENTENCES, f"{action} has no sentence of its own"
        text = line.sentence
        assert text and text[0].isupper(), (action, text)
        for raw in ("{", "}", "\"", "_id", "None", "[", "]"):
            assert raw not in text, (action, text)
    by_action = dict(zip(ACTIONS, (line.sentence for line in lines), strict=True))
    assert by_action["message.assign"] == "Priya Shah assigned this to Devon Carter"
    assert by_action["message.unassign"] == "Priya Shah unassigned this from Devon Carter"
    assert by_action["message.set_topic"] == "Priya Shah coded the topic as Veterans' benefits"
    assert by_action["message.set_stance"] == "Priya Shah set the stance to support"
    assert "the caseworker from nobody to Devon Carter" in by_action["case.edit"]
    assert "the due date from 2026-03-01 to 2026-03-09" in by_action["case.edit"]
    assert "the city from Dayton to Columbus" in by_action["constituent.edit"]
    assert "(to Devon Carter)" in by_action["routing_rule.create"]


def test_an_unknown_action_gets_a_readable_sentence_never_json(session, factory):
    priya = factory.staffer(name="Priya Shah")
    devon = factory.staffer(name="Devon Carter")
    event = AuditEvent(actor_id=priya.id, action="message.future_thing", object_type="message", object_id="3",
                       before={"status": "assigned", "assignee_id": devon.id},
                       after={"status": "answer_queued", "assignee_id": None, "response_id": 77,
                              "extra": {"deep": [1, 2]}}, at=datetime.now(UTC))
    session.add(event)
    session.flush()
    [line] = describe(session, [event])
    assert line.sentence.startswith("Priya Shah: future thing (message)")
    assert "the status from assigned to answer queued" in line.sentence
    assert "the assignee from Devon Carter to nobody" in line.sentence
    assert "77" not in line.sentence and "{" not in line.sentence and "deep" not in line.sentence


def test_names_are_looked_up_once_per_page_not_once_per_event(session, factory, database):
    staff = [factory.staffer(name=f"Person {i}") for i in range(5)]
    events = [AuditEvent(actor_id=staff[i % 5].id, action="message.assign", object_type="message", object_id=str(i),
                         before={"assignee_id": staff[(i + 1) % 5].id}, after={"assignee_id": staff[(i + 2) % 5].id},
                         at=datetime.now(UTC)) for i in range(30)]
    session.add_all(events)
    session.flush()
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    engine = session.get_bind()
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        lines = describe(session, events)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert len(lines) == 30 and all(" assigned this to Person " in line.sentence for line in lines)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1  # staff only: no topics


def test_a_system_event_names_mailroom_and_view_as_names_both(session, factory):
    admin = factory.staffer(name="Ada Admin", role=Role.ADMIN)
    devon = factory.staffer(name="Devon Carter")
    system = AuditEvent(actor_id=None, action="message.close", object_type="message", object_id="1",
                        before={"status": "new"}, after={"status": "closed"}, detail="spam", at=datetime.now(UTC))
    viewed = AuditEvent(actor_id=admin.id, on_behalf_of_id=devon.id, action="message.start", object_type="message",
                        object_id="1", at=datetime.now(UTC))
    session.add_all([system, viewed])
    session.flush()
    first, second = describe(session, [system, viewed])
    assert first.sentence == "Mailroom closed this: spam"
    assert second.sentence == "Ada Admin (viewing as Devon Carter) started work on this"


# --- times in the office's zone -------------------------------------------------------------------------


def test_a_message_received_0630_utc_on_8_march_shows_in_new_york_time(client, auth, factory, session, settings):
    assert settings.timezone == "America/New_York"
    me = auth.login("correspondent", name="Priya Shah")
    m = factory.message(subject="Daylight saving", received_at=datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
                        assignee_id=me.id, status=MessageStatus.ASSIGNED)
    session.commit()
    inbox = client.get("/inbox/?status=all").get_data(as_text=True)
    assert "Mar 08, 01:30" in inbox and "06:30" not in inbox  # 01:30 EST: DST starts at 2 am local that day
    page = client.get(f"/messages/{m.id}").get_data(as_text=True)
    assert "Mar 08 2026 01:30" in page and "06:30" not in page
    assert "UTC" not in page and "UTC" not in inbox


def test_the_filter_dates_are_office_days(client, auth, factory, session):
    auth.login("supervisor")
    late = factory.message(subject="Late on the 7th", received_at=datetime(2026, 3, 8, 3, 0, tzinfo=UTC))  # 10 pm
    session.commit()
    on_7th = client.get("/inbox/?status=all&from=2026-03-07&to=2026-03-07").get_data(as_text=True)
    on_8th = client.get("/inbox/?status=all&from=2026-03-08&to=2026-03-08").get_data(as_text=True)
    assert late.subject in on_7th and late.subject not in on_8th


def test_dashboard_ages_count_office_days(session, factory):
    lc = factory.staffer(name="Devon Carter")
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 8 am in New York
    # 11 pm on 7 March in New York, but already 8 March in UTC: three office days old, two UTC days.
    factory.message(assignee_id=lc.id, status=MessageStatus.ASSIGNED,
                    received_at=datetime(2026, 3, 8, 4, 0, tzinfo=UTC),
                    due_at=datetime(2026, 3, 10, 2, 0, tzinfo=UTC))  # 10 pm yesterday in New York, today in UTC
    session.flush()
    local = next(r for r in backlog(session, now=now, zone=ZoneInfo("America/New_York")).staff
                 if r.staffer_id == lc.id)
    utc = next(r for r in backlog(session, now=now).staff if r.staffer_id == lc.id)
    assert local.buckets == [0, 1, 0, 0, 0] and utc.buckets == [1, 0, 0, 0, 0]
    assert local.overdue == 1 and utc.overdue == 0  # due yesterday (office day) is overdue; due today is not


def test_history_on_the_message_page_is_words_with_ago(client, auth, factory, session):
    me = auth.login("correspondent", name="Priya Shah")
    devon = factory.staffer(name="Devon Carter")
    m = factory.message(subject="Bridge")
    session.add(AuditEvent(actor_id=me.id, action="message.assign", object_type="message", object_id=str(m.id),
                           before={"status": "new", "assignee_id": None},
                           after={"status": "assigned", "assignee_id": devon.id},
                           at=datetime.now(UTC) - timedelta(hours=2, minutes=5)))
    session.commit()
    page = client.get(f"/messages/{m.id}").get_data(as_text=True)
    assert "Priya Shah assigned this to Devon Carter · <time" in page
    assert ">2 hours ago</time>" in page
    assert "assignee_id" not in page and "&#34;status&#34;" not in page


def test_a_letter_version_shows_its_history_in_words(client, auth, session):
    from drafting.letters import create_letter, submit

    me = auth.login("correspondent", name="Priya Shah")
    version = create_letter(session, title="Bridge funding", body="Dear friend,\n\nThank you.", actor_id=me.id)
    submit(session, version.id, actor_id=me.id)
    session.commit()
    page = client.get(f"/letters/versions/{version.id}").get_data(as_text=True)
    assert "Priya Shah submitted this version for approval · <time" in page and "just now</time>" in page
