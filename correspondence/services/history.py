"""History in words: every audit event as a sentence a person reads ("Priya Shah assigned this to Devon Carter").

One describer for every page that shows what happened (the message page, a case's timeline, a
constituent's record, a batch, a form letter): events in, sentences out, staff and topics named,
never JSON and never a bare staff or topic id. Names are looked up in one query per kind for a
whole page of events. An action this module does not know yet still reads as a sentence (the
action's words and the fields that changed), so a new kind of event never shows up as raw data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.models import AuditEvent, Staffer, Topic

SYSTEM = "Mailroom"


@dataclass(frozen=True)
class Line:
    """One event as shown: when, who (a name, or "Mailroom" for the system) and the whole sentence."""

    event_id: int
    at: datetime
    actor: str
    sentence: str
    action: str


class _Names:
    """Staff and topic names for a page of events, each kind fetched in one query."""

    def __init__(self, session: Session, events: list[AuditEvent]) -> None:
        staff_ids: set[int] = set()
        topic_ids: set[int] = set()
        for e in events:
            staff_ids.update(i for i in (e.actor_id, e.on_behalf_of_id) if i)
            for values in (e.before or {}, e.after or {}):
                if not isinstance(values, Mapping):
                    continue
                for key in STAFF_KEYS:
                    if isinstance(values.get(key), int):
                        staff_ids.add(values[key])
                for sid in values.get("staffer_ids") or ():
                    if isinstance(sid, int):
                        staff_ids.add(sid)
                if isinstance(values.get("topic_id"), int):
                    topic_ids.add(values["topic_id"])
        # Reminders and sign-ins name the staffer as the object of the event.
        staff_ids.update(int(e.object_id) for e in events if e.object_type == "staffer" and e.object_id.isdigit())
        self.staff: dict[int, str] = dict(
            session.execute(select(Staffer.id, Staffer.name).where(Staffer.id.in_(staff_ids))).all()
        ) if staff_ids else {}
        self.topics: dict[int, str] = dict(
            session.execute(select(Topic.id, Topic.name).where(Topic.id.in_(topic_ids))).all()
        ) if topic_ids else {}

    def staffer(self, staffer_id: object, none: str = "nobody") -> str:
        if staffer_id is None:
            return none
        return self.staff.get(staffer_id, "a former staffer") if isinstance(staffer_id, int) else "a former staffer"

    def topic(self, topic_id: object, none: str = "not coded") -> str:
        if topic_id is None:
            return none
        return self.topics.get(topic_id, "a removed topic") if isinstance(topic_id, int) else "a removed topic"


STAFF_KEYS = ("assignee_id", "caseworker_id", "staffer_id")


@dataclass
class _Event:
    """What a sentence template sees: the event, its actor's name and the page's names."""

    e: AuditEvent
    who: str
    names: _Names

    @property
    def b(self) -> dict[str, Any]:
        return self.e.before if isinstance(self.e.before, dict) else {}

    @property
    def a(self) -> dict[str, Any]:
        return self.e.after if isinstance(self.e.after, dict) else {}

    @property
    def detail(self) -> str:
        return f": {self.e.detail}" if self.e.detail else ""

    def staff(self, staffer_id: object, none: str = "nobody") -> str:
        return self.names.staffer(staffer_id, none)

    @property
    def subject(self) -> str:
        """The staffer an event is about (sign-ins, reminders, "view as"), by name."""
        return self.staff(int(self.e.object_id) if self.e.object_id.isdigit() else None, "someone")

    def topic(self, topic_id: object, none: str = "not coded") -> str:
        return self.names.topic(topic_id, none)


def words(value: object) -> str:
    """A stored value as words: a status "in_progress" reads "in progress"; nothing reads "nothing"."""
    if value is None or value == "":
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return f"{len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return f"{len(value)} setting{'s' if len(value) != 1 else ''}"
    text = str(value)
    if len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-":  # an ISO date or time: the date reads best
        return text[:10]
    return text.replace("_", " ")


def _election(values: dict[str, Any]) -> str:
    kind = values.get("kind")
    day = f" on {values['date']}" if values.get("date") else ""
    return f"the {kind} election{day}" if kind else f"an election{day}"


def _plural(n: object, one: str, many: str | None = None) -> str:
    count = n if isinstance(n, int) else 0
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _status_move(x: _Event, verb: str) -> str:
    return f"{x.who} {verb}{x.detail}"


def _assign(x: _Event) -> str:
    was = x.b.get("assignee_id")
    sentence = f"{x.who} assigned this to {x.staff(x.a.get('assignee_id'))}"
    return sentence + (f" (was {x.staff(was)})" if was and was != x.a.get("assignee_id") else "")


def _topic(x: _Event) -> str:
    who = "Mailroom's suggestion model" if x.a.get("source") == "model" and x.e.actor_id is None else x.who
    if x.a.get("topic_id") is None:
        return f"{who} cleared the topic (was {x.topic(x.b.get('topic_id'))})"
    was = f" (was {x.topic(x.b.get('topic_id'))})" if x.b.get("topic_id") is not None else ""
    return f"{who} coded the topic as {x.topic(x.a.get('topic_id'))}{was}"


def _stance(x: _Event, what: str = "the stance") -> str:
    if x.a.get("stance") is None:
        return f"{x.who} cleared {what}"
    was = f" (was {x.b['stance']})" if x.b.get("stance") else ""
    return f"{x.who} set {what} to {x.a['stance']}{was}"


def _fields(x: _Event, labels: Mapping[str, str] | None = None) -> str:
    """ "the city from Dayton to Columbus, the ZIP from 45402 to 43215" for the fields that changed."""
    labels = labels or {}
    parts = []
    for key in sorted(set(x.b) | set(x.a)):
        before, after = x.b.get(key), x.a.get(key)
        if before == after:
            continue
        label = labels.get(key, key.removesuffix("_id").replace("_", " "))
        if key in STAFF_KEYS:
            parts.append(f"the {label} from {x.staff(before)} to {x.staff(after)}")
        elif key == "topic_id":
            parts.append(f"the topic from {x.topic(before)} to {x.topic(after)}")
        elif key.endswith("_id"):
            continue  # a bare record number means nothing to a reader
        elif key in x.b and key in x.a:
            parts.append(f"the {label} from {words(before)} to {words(after)}")
        else:
            parts.append(f"the {label} to {words(after)}" if key in x.a else f"the {label} (was {words(before)})")
    return ", ".join(parts)


def _changed(x: _Event, what: str, labels: Mapping[str, str] | None = None) -> str:
    fields = _fields(x, labels)
    return f"{x.who} changed {what}" + (f": {fields}" if fields else "")


CONSTITUENT_FIELDS = {"zip5": "ZIP", "zip4": "ZIP+4", "address1": "address", "address2": "address line 2",
                      "first_name": "first name", "last_name": "last name"}
CASE_FIELDS = {"due_at": "due date", "agency_contact": "agency contact"}

_CLOSING_STEPS = {"final_export": "final export", "handover": "hand-over export", "purge": "final purge"}

SENTENCES: dict[str, Callable[[_Event], str]] = {
    # Messages
    "message.received": lambda x: f"Received by {words(x.a.get('channel') or 'mail')}"
                                  + (f" via {x.a['source']}" if x.a.get("source") else ""),
    "message.assign": _assign,
    "message.unassign": lambda x: f"{x.who} unassigned this from {x.staff(x.b.get('assignee_id'))}",
    "message.start": lambda x: _status_move(x, "started work on this"),
    "message.submit_for_approval": lambda x: _status_move(x, "sent this for approval"),
    "message.responded": lambda x: (f"Responded: the answer left ({words(x.a['how'])})" if x.a.get("how")
                                    else _status_move(x, "marked this responded")),
    "message.answer_queued": lambda x: f"{x.who} answered this with a letter; it is queued to leave"
                                       + (f" (was {words(x.a['from'])})" if x.a.get("from") else ""),
    "message.close": lambda x: _status_move(x, "closed this"),
    "message.reopen": lambda x: _status_move(x, "reopened this"),
    "message.quarantine": lambda x: _status_move(x, "quarantined this"),
    "message.release": lambda x: _status_move(x, "returned this to the inbox as new"),
    "message.retry": lambda x: _status_move(x, "sent this through processing again"),
    "message.archive": lambda x: _status_move(x, "archived this"),
    "message.undo_close": lambda x: f"{x.who} undid the close; this is {words(x.a.get('status'))} again",
    "message.set_topic": _topic,
    "message.set_stance": _stance,
    # Batches
    "batch.create": lambda x: f"{x.who} created this batch of {_plural(x.a.get('size'), 'message')}"
                              + (f" ({words(x.a['by'])})" if x.a.get("by") else ""),
    "batch.merge": lambda x: f"{x.who} merged another batch into this one "
                             f"({_plural(len(x.b.get('message_ids') or []), 'message')} moved; "
                             f"now {_plural(x.a.get('size'), 'message')})",
    "batch.split": lambda x: f"{x.who} split {_plural(len(x.a.get('message_ids') or []), 'message')} "
                             "off into a new batch",
    "batch.remove_member": lambda x: f"{x.who} took a message out of this batch",
    "batch.add_member": lambda x: f"{x.who} added a letter that nearly matched to this batch",
    "batch.reject_member": lambda x: f"{x.who} said a letter that nearly matched is not part of this batch",
    "batch.not_campaign": lambda x: f"{x.who} marked this batch as not a campaign",
    "batch.campaign": lambda x: f"{x.who} marked this batch as a campaign again",
    "batch.assign": lambda x: f"{x.who} assigned this batch to {x.staff(x.a.get('assignee_id'))}",
    "batch.topic": lambda x: f"{x.who} coded this batch's topic as {x.topic(x.a.get('topic_id'))}",
    "batch.stance": lambda x: _stance(x, "this batch's stance"),
    "batch.undo_event": lambda x: f"{x.who} undid an earlier change ({label(str(x.b.get('action', '')))})",
    # Form letters and answers
    "letter.create": lambda x: f"{x.who} created the form letter “{x.a.get('title', '')}”",
    "letter.retire": lambda x: f"{x.who} retired this form letter",
    "letter_version.create": lambda x: f"{x.who} started version {x.a.get('number', '')}",
    "letter_version.edit": lambda x: f"{x.who} edited this version",
    "letter_version.submit": lambda x: _status_move(x, "submitted this version for approval"),
    "letter_version.approve": lambda x: _status_move(x, "approved this version"),
    "letter_version.request_changes": lambda x: _status_move(x, "asked for changes"),
    "letter_version.retire": lambda x: _status_move(x, "retired this version"),
    "approval_delegation.create": lambda x: f"{x.who} let {x.staff(x.a.get('delegate_id'))} approve letters for "
                                            f"{x.staff(x.a.get('supervisor_id'))} from {words(x.a.get('starts_at'))} "
                                            f"to {words(x.a.get('ends_at'))}",
    "approval_delegation.end": lambda x: f"{x.who} ended a delegation of approval",
    "notice.create": lambda x: f"{x.who} sent a notice{x.detail}",
    "notice.email": lambda x: f"{x.who} emailed a notice{x.detail}",
    "notice.read": lambda x: f"{x.who} read a notice",
    "notice.read_all": lambda x: f"{x.who} marked every notice read",
    "paragraph.create": lambda x: f"{x.who} created the standard paragraph “{x.a.get('title', '')}”",
    "paragraph.retire": lambda x: f"{x.who} retired this standard paragraph",
    "paragraph_revision.propose": lambda x: f"{x.who} proposed revision {x.a.get('number', '')} of a paragraph",
    "paragraph_revision.edit": lambda x: f"{x.who} edited a proposed paragraph",
    "paragraph_revision.approve": lambda x: _status_move(x, "approved this paragraph"),
    "paragraph_revision.decline": lambda x: _status_move(x, "declined this paragraph"),
    "paragraph_revision.withdraw": lambda x: _status_move(x, "withdrew this paragraph"),
    "paragraph_revision.retire": lambda x: _status_move(x, "retired this paragraph revision"),
    "demo.history": lambda x: "The demo office's past answers were loaded",
    "letter_version.comment": lambda x: f"{x.who} commented"
                                        + (f" on paragraph {x.a['paragraph']}" if x.a.get("paragraph") else ""),
    "response.queued": lambda x: f"{x.who} queued the letter to be sent again",
    "response.resend": lambda x: f"{x.who} queued the letter to be sent again",
    "response.mark_sent": lambda x: f"{x.who} recorded that the letter did arrive",
    "response.sent": lambda x: "The letter was sent",
    "response.to_print": lambda x: "The letter went into a print file",
    "response.failed": lambda x: f"The letter could not be sent{x.detail}",
    "response.uncertain": lambda x: "Sending was interrupted: the letter may or may not have gone; a person must check",
    "response.bounced": lambda x: {"hard": "The letter bounced: the address does not take mail",
                                   "soft": "The letter bounced for now (a temporary failure)",
                                   "complaint": "The recipient reported the letter as spam"}.get(
                                       str(x.a.get("kind")), "The letter bounced") + x.detail,
    # Email addresses (outbound.suppression)
    "address.invalid": lambda x: f"{x.who} marked {x.a.get('address', 'the address')} invalid{x.detail}",
    "address.complaint": lambda x: f"{x.who} stopped mail to {x.a.get('address', 'the address')}: "
                                   "its owner reported our mail as spam",
    "address.unsubscribed": lambda x: f"{x.a.get('address', 'The address')} unsubscribed from follow-ups",
    "address.soft_bounce": lambda x: f"Mail to {x.a.get('address', 'the address')} bounced for now "
                                     f"({_plural(x.a.get('soft_bounces'), 'temporary failure')}){x.detail}",
    "address.restored": lambda x: f"{x.who} let mail go to {x.a.get('address', 'the address')} again",
    "bounce.quarantined": lambda x: f"A delivery report was quarantined{x.detail}",
    # Subscription lists and newsletters (outbound.subscriptions, outbound.newsletters)
    "subscription_list.create": lambda x: f"{x.who} made the subscription list {x.a.get('name', '')}",
    "subscription.subscribe": lambda x: f"{x.a.get('address', 'The address')} was subscribed{x.detail}",
    "subscription.pending": lambda x: f"{x.a.get('address', 'The address')} signed up; waiting for them to "
                                      "confirm by email",
    "subscription.confirm": lambda x: "The sign-up was confirmed by email",
    "subscription.resubscribe": lambda x: f"{x.a.get('address', 'The address')} was subscribed again{x.detail}",
    "subscription.unsubscribe": lambda x: f"Unsubscribed{x.detail}",
    "subscription.import": lambda x: f"{x.who} imported {_plural(x.a.get('added'), 'address', 'addresses')} "
                                     f"into this list{x.detail}",
    "newsletter.start": lambda x: f"{x.who} sent a newsletter to {_plural(x.a.get('recipients'), 'person', 'people')}",
    "newsletter.prepare": lambda x: f"The newsletter's {_plural(x.a.get('pieces'), 'letter')} were queued",
    # The mass-communication guard (outbound.franking)
    "election.add": lambda x: f"{x.who} entered {_election(x.a)} on the blackout calendar",
    "election.remove": lambda x: f"{x.who} removed {_election(x.b)} from the blackout calendar",
    "mass_mail_approval.record": lambda x: f"{x.who} recorded advisory opinion "
                                           f"{x.a.get('opinion_number') or '(no number)'}"
                                           + (f" of {x.a['opinion_date']}" if x.a.get("opinion_date") else "")
                                           + ", allowing this letter as a mass communication",
    "mass_mail.split": lambda x: f"{x.who} sent only the first {_plural(x.a.get('pieces'), 'letter')} of a "
                                 "mass mailing, the limit without approval "
                                 f"({_plural(x.a.get('left_out'), 'person', 'people')} left out)",
    # Legal holds, retention, subject access and erasure (archive.holds, archive.retention, archive.rights)
    "legal_hold.place": lambda x: f"{x.who} placed a legal hold{x.detail}",
    "legal_hold.release": lambda x: f"{x.who} released a legal hold{x.detail}",
    "retention_rule.set": lambda x: f"{x.who} set the retention rule to keep {words(x.a.get('kind'))} for "
                                    f"{_plural(x.a.get('years'), 'year')}, "
                                    + ("turned on" if x.a.get("active") else "turned off"),
    "retention.start": lambda x: f"{x.who} started a " + ("dry run of the retention rules" if x.a.get("dry_run")
                                                          else "retention run"),
    "retention.run": lambda x: "Mailroom began applying the retention rules",
    "retention.dry_run": lambda x: "The dry run finished: nothing was removed",
    "retention.finish": lambda x: "The retention run finished",
    "retention.fail": lambda x: f"The retention run stopped{x.detail}",
    "subject_access.request": lambda x: f"{x.who} asked for a copy of everything held about this person",
    "subject_access.run": lambda x: "Mailroom began gathering everything held about this person",
    "subject_access.finish": lambda x: "The copy of everything held about this person is ready",
    "subject_access.fail": lambda x: "The copy of everything held about this person could not be made",
    "subject_access.download": lambda x: f"{x.who} downloaded the copy of everything held about this person",
    "subject_access.expire": lambda x: "The copy of everything held about this person was deleted 30 days after "
                                       "it was made",
    "constituent.erase": lambda x: f"{x.who} erased this person's data ({_plural(x.a.get('messages'), 'message')}, "
                                   f"{_plural(x.a.get('cases'), 'case')}){x.detail}",
    "apply_run.start": lambda x: f"{x.who} started answering {_plural(x.a.get('messages'), 'message')} "
                                 "with a form letter",
    "apply_run.finish": lambda x: f"Answering finished: {_plural(x.a.get('created'), 'letter')} made, "
                                  f"{_plural(x.a.get('skipped'), 'message')} skipped",
    "apply_run.refused": lambda x: f"Answering was refused{x.detail}",
    "apply_run.run": lambda x: "Mailroom began answering"
                               + (" again, where it stopped" if x.b.get("state") in ("running", "failed") else ""),
    "apply_run.fail": lambda x: f"Answering stopped with an error{x.detail}",
    # Cases
    "case.open": lambda x: f"{x.who} opened this case"
                           + (f" ({x.a['category']})" if x.a.get("category") else ""),
    "case.status": lambda x: f"{x.who} moved the case from {words(x.b.get('status'))} to "
                             f"{words(x.a.get('status'))}{x.detail}",
    "case.edit": lambda x: _changed(x, "the case", CASE_FIELDS),
    "case.note": lambda x: f"{x.who} added a note",
    "case.document": lambda x: f"{x.who} added the document {x.a.get('filename', '')}",
    "case.release": lambda x: (f"{x.who} filed the signed privacy release" if x.a.get("method") == "upload" else
                               f"The privacy release was signed electronically as “{x.a.get('typed_name', '')}”"),
    "case.release_withdrawn": lambda x: f"The privacy release was set aside{x.detail}",
    "case.step_add": lambda x: f"{x.who} added the step “{x.a.get('title', '')}”",
    "case.step_done": lambda x: f"{x.who} finished the step “{x.a.get('step', '')}”",
    "case.step_reassign": lambda x: f"{x.who} gave a step to {x.staff(x.a.get('assignee_id'))}"
                                    + (f", due {words(x.a['due_at'])}" if x.a.get("due_at") else ""),
    "case.reminder": lambda x: f"Mailroom reminded {x.subject}"
                               f" of {_plural(x.a.get('steps'), 'due step')}",
    "case_category.create": lambda x: f"{x.who} created the case category “{x.a.get('name', '')}”",
    "case_category.edit": lambda x: f"{x.who} edited the case category “{x.a.get('name', '')}”",
    "case_category.active": lambda x: f"{x.who} {'turned on' if x.a.get('active') else 'turned off'} a case category",
    "help_request.received": lambda x: "A request for help arrived from the public form"
                                       + (f" (reference {x.a['reference']})" if x.a.get("reference") else ""),
    "help_request.link_sent": lambda x: f"Mailroom emailed a confirmation link to {x.a.get('email', 'the sender')}",
    "help_request.link_withheld": lambda x: f"Mailroom did not send another confirmation link{x.detail}",
    "help_request.email_confirmed": lambda x: f"The sender confirmed their email address {x.a.get('email', '')}",
    "help_request.match_confirmed": lambda x: f"{x.who} confirmed the request comes from the constituent on file",
    "help_request.match_rejected": lambda x: f"{x.who} said the request is from a different person",
    "help_request.resend": lambda x: f"{x.who} sent the confirmation link again",
    # Constituents
    "constituent.edit": lambda x: _changed(x, "the record", CONSTITUENT_FIELDS),
    "constituent.create": lambda x: f"{x.who} added this record",
    "constituent.tag": lambda x: f"{x.who} tagged this record “{x.a.get('tag', '')}”",
    "constituent.untag": lambda x: f"{x.who} removed the tag “{x.b.get('tag', '')}”",
    "constituent.add_email": lambda x: f"{x.who} added the email {x.a.get('email', '')}",
    "constituent.remove_email": lambda x: f"{x.who} removed the email {x.b.get('email', '')}",
    "constituent.add_phone": lambda x: f"{x.who} added the phone {x.a.get('phone', '')}",
    "constituent.remove_phone": lambda x: f"{x.who} removed the phone {x.b.get('phone', '')}",
    "constituent.merge": lambda x: f"{x.who} merged a duplicate record into this one",
    "constituent.unmerge": lambda x: f"{x.who} undid a merge of a duplicate record",
    "constituent.import_create": lambda x: f"{x.who} created this record from a spreadsheet import "
                                           f"(line {x.a.get('row', '?')})",
    "constituent.import_match": lambda x: f"{x.who} matched this record in a spreadsheet import "
                                          f"(line {x.a.get('row', '?')})",
    "constituents.export": lambda x: f"{x.who} downloaded constituents as a spreadsheet",
    "segment.create": lambda x: f"{x.who} saved the segment “{x.a.get('name', '')}”",
    "segment.edit": lambda x: f"{x.who} changed the segment “{x.a.get('name', '')}”",
    "segment.delete": lambda x: f"{x.who} deleted the segment “{x.b.get('name', '')}”",
    "segment.follow_up": lambda x: f"{x.who} sent a follow-up letter to "
                                   f"{_plural(x.a.get('people'), 'person', 'people')}",
    "import.upload": lambda x: f"{x.who} uploaded {x.a.get('filename', 'a spreadsheet')} "
                               f"({_plural(x.a.get('rows'), 'row')})",
    "import.start": lambda x: f"{x.who} started an import",
    "import.run": lambda x: "Mailroom began importing"
                            + (" again, where it stopped" if x.b.get("state") in ("running", "failed") else ""),
    "import.fail": lambda x: f"The import stopped{x.detail}",
    "import.finish": lambda x: f"The import finished: {_plural(x.a.get('created'), 'record')} created, "
                               f"{x.a.get('matched', 0)} matched, {_plural(x.a.get('bad'), 'bad row')}",
    # Staff and sign-in
    "staffer.create": lambda x: f"{x.who} created the account {x.a.get('email', '')} ({words(x.a.get('role'))})",
    "staffer.role_changed": lambda x: f"{x.who} changed the role from {words(x.b.get('role'))} "
                                      f"to {words(x.a.get('role'))}",
    "staffer.activated": lambda x: f"{x.who} turned the account on",
    "staffer.deactivated": lambda x: f"{x.who} turned the account off",
    "staffer.password_changed": lambda x: f"{x.who} changed their password",
    "staffer.password_reset": lambda x: f"{x.who} reset the password",
    "staffer.sessions_ended": lambda x: f"{x.who} signed the account out everywhere{x.detail}",
    "staffer.totp_enabled": lambda x: f"{x.who} turned on an authenticator app",
    "staffer.security_key_added": lambda x: f"{x.who} added a security key{x.detail}",
    "staffer.recovery_codes_created": lambda x: f"{x.who} made new recovery codes",
    "staffer.recovery_code_used": lambda x: f"{x.who} signed in with a recovery code{x.detail}",
    "staffer.second_factor_reset": lambda x: f"{x.who} reset the second factor",
    "staff.view_as": lambda x: f"{x.who} viewed Mailroom as {x.subject}",
    "staff.view_as_stop": lambda x: f"{x.who} stopped viewing Mailroom as "
                                    f"{x.subject}",
    "login.succeeded": lambda x: f"{x.who} signed in{x.detail}",
    "login.password_ok": lambda x: f"{x.who} gave the right password{x.detail}",
    "login.failed": lambda x: f"A sign-in as {x.e.object_id} failed{x.detail}",
    "login.second_factor_failed": lambda x: f"A second-factor check for "
                                            f"{x.subject} "
                                            f"failed{x.detail}",
    # Office set-up
    "intake_token.create": lambda x: f"{x.who} created the intake token “{x.a.get('name', '')}”",
    "intake_token.revoke": lambda x: f"{x.who} revoked an intake token",
    "api_token.create": lambda x: f"{x.who} made the API token “{x.a.get('name', '')}”",
    "api_token.revoke": lambda x: f"{x.who} revoked the API token “{x.a.get('name', '')}”",
    "api_token.write": lambda x: f"{x.who} made a change through the API with the token "
                                 f"“{x.a.get('token_name', '')}”",
    "webhook.create": lambda x: f"{x.who} added the webhook “{x.a.get('name', '')}” sending to {x.a.get('url', '')}",
    "webhook.pause": lambda x: f"{x.who} paused the webhook “{x.a.get('name', '')}”",
    "webhook.resume": lambda x: f"{x.who} resumed the webhook “{x.a.get('name', '')}”",
    "webhook.delete": lambda x: f"{x.who} deleted the webhook “{x.b.get('name', '')}”",
    "webhook.test": lambda x: f"{x.who} sent a test event to the webhook “{x.a.get('name', '')}”",
    "webhook.prune": lambda x: (f"Mailroom deleted {_plural(x.a.get('delivered'), 'notice')} delivered"
                                if "delivered" in x.a else
                                f"Mailroom deleted {_plural(x.a.get('failed'), 'notice')} given up on")
                               + f" more than {x.a.get('older_than_days', '')} days ago from the webhook's outbox",
    "mailbox.create": lambda x: f"{x.who} added the mailbox “{x.a.get('name', '')}”",
    "mailbox.activate": lambda x: f"{x.who} turned a mailbox on",
    "mailbox.deactivate": lambda x: f"{x.who} turned a mailbox off",
    "mailbox.check": lambda x: f"{x.who} checked a mailbox: {words(x.a.get('result'))}",
    "mailbox.oauth_connect": lambda x: f"{x.who} connected the mailbox “{x.a.get('name', '')}” with "
                                       + {"microsoft": "Microsoft 365", "google": "Google"}.get(
                                           str(x.a.get("oauth_provider")), "OAuth2") + " sign-in",
    "district_zips.set": lambda x: f"{x.who} changed the district ZIP list "
                                   f"(from {_plural(x.b.get('count'), 'ZIP')} to {_plural(x.a.get('count'), 'ZIP')})",
    "routing_rule.create": lambda x: f"{x.who} created the routing rule “{x.a.get('name', '')}”"
                                     + (f" (to {', '.join(x.staff(i) for i in x.a['staffer_ids'])})"
                                        if x.a.get("staffer_ids") else ""),
    "routing_rule.deactivate": lambda x: f"{x.who} turned a routing rule off",
    "topic_model.train": lambda x: f"{x.who} trained the topic model on {_plural(x.a.get('examples'), 'example')}",
    "topic_model.activate": lambda x: f"{x.who} switched to topic model version {x.a.get('active', '')}",
    "topic_model.prune": lambda x: f"Mailroom removed {_plural(len(x.a.get('versions') or []), 'old topic model')}",
    "report.start": lambda x: f"{x.who} started a report",
    "report.run": lambda x: "Mailroom began counting the report",
    "report.fail": lambda x: f"The report could not be made{x.detail}",
    "report.finish": lambda x: "The report is ready",
    "demo.loaded": lambda x: f"The demo office was loaded ({_plural(x.a.get('messages'), 'message')})",
    # Closing the office (archive/closing.py)
    "closing.intake_stopped": lambda x: f"{x.who} stopped intake to close the office"
                                        + (f"; the successor is {x.a['successor']}" if x.a.get("successor") else ""),
    "closing.successor": lambda x: f"{x.who} changed the successor's contact",
    "closing.auto_reply": lambda x: "Mailroom queued the “this office has closed” reply",
    "closing.step_requested": lambda x: f"{x.who} started the {_CLOSING_STEPS.get(str(x.a.get('step')), 'next step')}",
    "closing.final_export": lambda x: "The final export was made"
                                      + (" and checked against the database" if x.a.get("verified")
                                         else ", but it does not match the database"),
    "closing.handover": lambda x: f"The hand-over for the successor was made: "
                                  f"{_plural(x.a.get('constituents'), 'constituent')}, "
                                  f"{_plural(x.a.get('cases'), 'case')}",
    "closing.purge": lambda x: "The personal data was deleted (final purge)",
    "closing.purge_refused": lambda x: "The final purge was refused: the database no longer matches the final export",
    "history_import.finish": lambda x: f"{x.who} imported correspondence history from another system: "
                                       f"{_plural(x.a.get('imported'), 'message')} added, "
                                       f"{_plural(x.a.get('bad'), 'row')} not usable",
    "case.transfer_consent": lambda x: f"{x.who} recorded that the constituent agreed to pass this case to the "
                                       "successor office",
    "case.transfer_consent_withdrawn": lambda x: f"{x.who} withdrew the consent to pass this case to the "
                                                 "successor office",
    "backup.made": lambda x: f"{x.who} made a backup" + (f" ({x.a['snapshot']})" if x.a.get("snapshot") else ""),
    "backup.failed": lambda x: f"A backup could not be made{x.detail}",
    "backup.verified": lambda x: f"{x.who} restored a backup into a scratch database and found it complete"
                                 + (f" ({x.a['snapshot']})" if x.a.get("snapshot") else ""),
    "backup.verify_failed": lambda x: f"{x.who} tested a backup and found problems{x.detail}",
    "export.start": lambda x: f"{x.who} asked for an export of all the office's data",
    "export.run": lambda x: "Mailroom began exporting all the office's data",
    "export.fail": lambda x: f"The export could not be made{x.detail}",
    "export.finish": lambda x: "The export of all the office's data is ready to download",
    "export.download": lambda x: f"{x.who} downloaded the export of all the office's data",
    "export.expire": lambda x: "The export's file was deleted 30 days after it was made",
}


def label(action: str) -> str:
    """A short name for an action, for lists ("message close" -> "close")."""
    return action.rsplit(".", 1)[-1].replace("_", " ") if action else "a change"


def _generic(x: _Event) -> str:
    """An action this module does not know: its words, then what changed, still never JSON."""
    thing, _, verb = x.e.action.partition(".")
    sentence = f"{x.who}: {(verb or thing).replace('_', ' ')}"
    if verb:
        sentence += f" ({thing.replace('_', ' ')})"
    fields = _fields(x)
    return sentence + (f" — {fields}" if fields else "") + x.detail


def _who(e: AuditEvent, names: _Names) -> str:
    if e.actor_id is None:
        return SYSTEM
    who = names.staffer(e.actor_id)
    if e.on_behalf_of_id and e.action.startswith("letter_version."):  # a delegate deciding for a supervisor
        who += f" (for {names.staffer(e.on_behalf_of_id)})"
    elif e.on_behalf_of_id:
        who += f" (viewing as {names.staffer(e.on_behalf_of_id)})"
    return who


def describe(session: Session, events: Iterable[AuditEvent]) -> list[Line]:
    """Every event as a sentence, in the order given."""
    events = list(events)
    names = _Names(session, events)
    lines = []
    for e in events:
        x = _Event(e, _who(e, names), names)
        make = SENTENCES.get(e.action, _generic)
        try:
            sentence = make(x)
        except (KeyError, TypeError, ValueError, AttributeError):
            sentence = _generic(x)  # an old event with an unexpected shape still reads as words
        lines.append(Line(e.id, e.at, x.who, sentence, e.action))
    return lines


def history_of(session: Session, object_type: str, object_id: object, limit: int = 50) -> list[Line]:
    """The newest events on one object, described."""
    events = session.scalars(select(AuditEvent).where(AuditEvent.object_type == object_type,
                                                      AuditEvent.object_id == str(object_id))
                             .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit))
    return describe(session, events)
