"""Newsletters: an approved letter sent to a subscription list (or a segment) through the apply-to-all run.

There is no second sending path. ``start_newsletter`` records the newsletter (its web version rendered
once, for nobody in particular, behind an unguessable link) and asks for the ``newsletter`` job; the job
(``prepare``) makes one outbound message per subscribed address — the same kind of record a segment
follow-up makes — and starts an apply-to-all run over them, which renders one letter per person, leaves
out suppressed addresses (bounced, complained, unsubscribed) and queues the emails that ``drafting.send``
sends with the signed return path, the one-click unsubscribe headers and the footer below.

**Franking.** A piece to an opted-in subscriber has a message source starting with
``outbound.franking.SUBSCRIBER_SOURCE``: the guard classifies it as a newsletter (exempt) and does not
count it toward the threshold. A newsletter to a segment is an unsolicited mass communication like any
follow-up: counted, blocked in a blackout, and refused above the threshold without an approval.

**Unsubscribe.** The one-click link of a piece sent to a list takes that address off that list (the
subscription, audited); a piece sent to a segment suppresses the address for follow-ups and newsletters
(``outbound.suppression``), as a follow-up's link does.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from constituents import segments
from correspondence.effects import Done, Effect
from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    ApplyRun,
    Channel,
    Constituent,
    Direction,
    LetterVersion,
    Message,
    MessageStatus,
    Newsletter,
    Subscription,
    SubscriptionStatus,
    VersionState,
)
from correspondence.services.audit import record
from drafting.apply import queue_apply_run
from drafting.render import Budget, Office, context, render
from outbound import franking, subscriptions

SEGMENT_SOURCE = "newsletter-segment:"
_CHECK = 24  # hex characters of the web version's token: 96 bits


def web_token(newsletter_id: int, *, secret_key: str) -> str:
    mac = hmac.new(secret_key.encode(), f"newsletter-web:{newsletter_id}".encode(), hashlib.sha256)
    return f"n{newsletter_id}-{mac.hexdigest()[:_CHECK]}"


def newsletter_of_source(source: str | None) -> tuple[int, bool] | None:
    """(newsletter id, sent to a list's subscribers) for a newsletter piece's message source; else None."""
    text = source or ""
    for prefix, to_list in ((franking.SUBSCRIBER_SOURCE, True), (SEGMENT_SOURCE, False)):
        if text.startswith(prefix):
            number = text[len(prefix):].split(":", 1)[0]
            return (int(number), to_list) if number.isdigit() else None
    return None


def off_their_list(session: Session, pieces: Mapping[int, tuple[str | None, str]]) -> set[int]:
    """Of these letters (response id → (its message's source, its address)), the pieces of a newsletter to a
    list whose address is no longer subscribed to that list: someone who left the list while a long send
    was under way gets nothing more from it. Two queries for a group of letters."""
    wanted: dict[int, list[tuple[int, str]]] = {}
    for response_id, (source, address) in pieces.items():
        found = newsletter_of_source(source)
        if found is not None and found[1]:
            wanted.setdefault(found[0], []).append((response_id, address.strip().lower()))
    if not wanted:
        return set()
    lists = dict(session.execute(select(Newsletter.id, Newsletter.list_id)
                                 .where(Newsletter.id.in_(list(wanted)))).all())
    addresses = sorted({address for items in wanted.values() for _r, address in items})
    still = set(session.execute(select(Subscription.list_id, Subscription.address)
                                .where(Subscription.list_id.in_([i for i in lists.values() if i is not None]),
                                       Subscription.address.in_(addresses),
                                       Subscription.status == SubscriptionStatus.SUBSCRIBED)).tuples())
    return {response_id for newsletter_id, items in wanted.items() for response_id, address in items
            if (lists.get(newsletter_id), address) not in still}


def footer(web_url: str, unsubscribe_url: str) -> str:
    """What every newsletter email ends with: the web version and the unsubscribe link, in plain words."""
    return (f"\n\n--\nRead this newsletter in your browser: {web_url}\n"
            f"Stop getting these emails: {unsubscribe_url}\n")


@dataclass(frozen=True)
class Audience:
    """Who a newsletter goes to: a list's subscribers, or a saved segment's members."""

    list_id: int | None = None
    segment_id: int | None = None

    def __post_init__(self) -> None:
        if (self.list_id is None) == (self.segment_id is None):
            raise ValidationFailed("choose a subscription list or a segment to send the newsletter to")


@dataclass(frozen=True)
class Check:
    """What sending this newsletter now would do: the page shows it before the send button, and the send
    itself goes by the same count."""

    letter: str
    audience: str
    recipients: int
    left_out: tuple[tuple[str, int], ...]  # (why, how many), only the reasons that leave someone out
    mass_mail: franking.Verdict | None  # a segment's verdict; a list of subscribers is exempt

    @property
    def problems(self) -> list[str]:
        found = list(self.mass_mail.problems()) if self.mass_mail is not None else []
        if self.recipients <= 0:
            found.append("nobody would get this newsletter: the list has no subscribers who can be reached")
        return found


def check_newsletter(session: Session, version_id: int, audience: Audience, *, rules: franking.Rules | None = None,
                     today: date | None = None) -> Check:
    """The newsletter's dry run (changes nothing)."""
    version = session.get(LetterVersion, version_id)
    if version is None:
        raise NotFound(f"no letter version {version_id}")
    if version.state != VersionState.APPROVED:
        raise ValidationFailed("only an approved version can be sent; send it for review first")
    letter = f"{version.letter.title} (version {version.number})"
    if audience.list_id is not None:
        chosen = subscriptions.get_list(session, audience.list_id)
        summary = next((s for s in subscriptions.list_summaries(session) if s.item.id == chosen.id), None)
        if summary is None:
            return Check(letter, chosen.name, 0, (), None)
        why: tuple[tuple[str, int], ...] = (
            ("subscribed, but the address bounced, reported our mail as spam or unsubscribed from everything",
             summary.suppressed),
            ("signed up but never confirmed", summary.pending),
            ("unsubscribed from this list", summary.unsubscribed))
        return Check(letter, f"the list “{chosen.name}”", summary.reachable, tuple((w, n) for w, n in why if n), None)
    segment = segments.get_segment(session, audience.segment_id or 0)
    flt = segments.SegmentFilter.from_dict(segment.filters)
    dry = segments.follow_up_plan(session, flt, rules=rules or franking.Rules(), version=version, today=today)
    verdict = dry["franking"]
    why = (("no email address (a newsletter is not printed)", int(str(dry["print"])) + int(str(dry["no_address"]))),
           ("the address bounced, reported our mail as spam or unsubscribed", int(str(dry["suppressed"]))))
    return Check(letter, f"the saved segment “{segment.name}” (people who did not ask for it)", int(str(dry["email"])),
                 tuple((w, n) for w, n in why if n), verdict if isinstance(verdict, franking.Verdict) else None)


def start_newsletter(session: Session, version_id: int, audience: Audience, *, actor_id: int, secret_key: str,
                     office: Office, budget: Budget, rules: franking.Rules | None = None,
                     today: date | None = None) -> Done[Newsletter]:
    """Record a newsletter of this approved version and ask for its job (which starts the apply run)."""
    rules = rules or franking.Rules()
    check = check_newsletter(session, version_id, audience, rules=rules, today=today)
    if check.mass_mail is not None and check.mass_mail.problems():
        raise PermissionDenied("not started: " + "; ".join(check.mass_mail.problems()))
    if check.recipients <= 0:
        raise ValidationFailed("nobody would get this newsletter: the list has no subscribers")
    version = session.get(LetterVersion, version_id)
    if version is None:
        raise NotFound(f"no letter version {version_id}")
    recipients = check.recipients
    values = context(None, None, office, today)
    newsletter = Newsletter(version_id=version.id, list_id=audience.list_id, segment_id=audience.segment_id,
                            web_token="", subject=render(version.subject, values, budget)[:500],
                            body_text=render(version.body, values, budget), recipients=recipients,
                            created_by_id=actor_id)
    session.add(newsletter)
    session.flush()
    newsletter.web_token = web_token(newsletter.id, secret_key=secret_key)
    record(session, actor_id=actor_id, action="newsletter.start", object_type="newsletter", object_id=newsletter.id,
           after={"version_id": version.id, "list_id": audience.list_id, "segment_id": audience.segment_id,
                  "recipients": recipients,
                  "franking": franking.NEWSLETTER if audience.list_id is not None else franking.UNSOLICITED})
    return Done(newsletter, (Effect.of("newsletter", newsletter.id),))


def _pieces_for_list(session: Session, newsletter: Newsletter, subject: str, now: datetime,
                     checkpoint: Callable[[], None]) -> list[int]:
    source = f"{franking.SUBSCRIBER_SOURCE}{newsletter.id}"
    prefix = f"newsletter:{newsletter.id}:"
    existing = dict(session.execute(select(Message.idempotency_key, Message.id)
                                    .where(Message.idempotency_key.like(prefix + "%"))).all())
    ids: list[int] = []
    after = 0
    while True:
        page = subscriptions.subscribed_addresses(session, newsletter.list_id or 0, after_id=after, limit=2000)
        if not page:
            return ids
        new = []
        for subscription_id, address, constituent_id in page:
            key = f"{prefix}{subscription_id}"
            if key in existing:
                ids.append(existing[key])
                continue
            new.append(Message(idempotency_key=key, direction=Direction.OUTBOUND, channel=Channel.EMAIL,
                               received_at=now, from_address=address, subject=subject, body_text="",
                               constituent_id=constituent_id, status=MessageStatus.IN_PROGRESS,
                               processed_at=now, source=source))
        session.add_all(new)
        session.flush()
        ids.extend(m.id for m in new)
        checkpoint()
        after = page[-1][0]


def _pieces_for_segment(session: Session, newsletter: Newsletter, subject: str, now: datetime,
                        checkpoint: Callable[[], None]) -> list[int]:
    """One piece per member with an email address (a newsletter is not printed)."""
    segment = segments.get_segment(session, newsletter.segment_id or 0)
    flt = segments.SegmentFilter.from_dict(segment.filters)
    source = f"{SEGMENT_SOURCE}{newsletter.id}"
    prefix = f"newsletter:{newsletter.id}:c"
    existing = dict(session.execute(select(Message.idempotency_key, Message.id)
                                    .where(Message.idempotency_key.like(prefix + "%"))).all())
    ids: list[int] = []
    after = 0
    while True:
        people = list(session.scalars(segments.apply_filter(select(Constituent), flt).where(Constituent.id > after)
                                      .order_by(Constituent.id).limit(1000)
                                      .options(selectinload(Constituent.emails))))
        if not people:
            return ids
        new = []
        for person in people:
            key = f"{prefix}{person.id}"
            if key in existing:
                ids.append(existing[key])
            elif person.primary_email:
                new.append(Message(idempotency_key=key, direction=Direction.OUTBOUND, channel=Channel.EMAIL,
                                   received_at=now, from_name=person.full_name, from_address=person.primary_email,
                                   subject=subject, body_text="", constituent_id=person.id,
                                   status=MessageStatus.IN_PROGRESS, processed_at=now, source=source))
        session.add_all(new)
        session.flush()
        ids.extend(m.id for m in new)
        checkpoint()
        after = people[-1].id


def prepare(session: Session, newsletter_id: int, *, rules: franking.Rules | None = None,
            today: date | None = None, checkpoint: Callable[[], None] | None = None) -> Done[Newsletter]:
    """The job: one outbound message per recipient, then the apply-to-all run over them (its own job).
    Idempotent: the messages are keyed by newsletter and subscriber, and a newsletter with a run is done.

    `checkpoint` is called after each page of pieces (the job passes its session's commit): at 100,000
    subscribers one transaction held SQLite's write lock for longer than the 30 s every other writer
    waits, so staff saving a code saw "database is locked". Committed pages are safe to keep: a run of the
    job after a crash finds them by their keys and makes only the rest."""
    newsletter = session.get(Newsletter, newsletter_id)
    if newsletter is None:
        raise NotFound(f"no newsletter {newsletter_id}")
    if newsletter.run_id is not None:
        return Done(newsletter, ())
    now = datetime.now(UTC)
    subject = f"Newsletter: {newsletter.subject}"[:500]
    if newsletter.list_id is not None:
        ids = _pieces_for_list(session, newsletter, subject, now, checkpoint or (lambda: None))
    else:
        ids = _pieces_for_segment(session, newsletter, subject, now, checkpoint or (lambda: None))
    if not ids:
        raise ValidationFailed("nobody is left to send this newsletter to")
    started = queue_apply_run(session, newsletter.version_id, actor_id=newsletter.created_by_id or 0,
                              message_ids=ids, rules=rules, today=today)
    newsletter.run_id = started.value.id
    record(session, actor_id=newsletter.created_by_id, action="newsletter.prepare", object_type="newsletter",
           object_id=newsletter.id, after={"run_id": started.value.id, "pieces": len(ids)})
    return Done(newsletter, started.effects)


def by_web_token(session: Session, token: str) -> Newsletter | None:
    """The newsletter a public web-version link names (the token is its unique key)."""
    if not token or len(token) > 64:
        return None
    found = session.scalar(select(Newsletter).where(Newsletter.web_token == token.strip().lower()))
    return found if found is not None and found.run_id is not None else None


def recent(session: Session, limit: int = 20) -> list[tuple[Newsletter, ApplyRun | None]]:
    rows = session.execute(select(Newsletter, ApplyRun).outerjoin(ApplyRun, ApplyRun.id == Newsletter.run_id)
                           .order_by(Newsletter.id.desc()).limit(limit))
    return [(n, r) for n, r in rows]


def unsubscribe_piece(session: Session, message_source: str | None, address: str) -> str | None:
    """The one-click unsubscribe of a newsletter piece sent to a list: off that list; returns the list's name.
    None when the piece was not sent to a list (the caller suppresses the address as for a follow-up)."""
    found = newsletter_of_source(message_source)
    if found is None or not found[1]:
        return None
    newsletter = session.get(Newsletter, found[0])
    if newsletter is None or newsletter.list_id is None:
        return None
    subscriptions.unsubscribe_address(session, newsletter.list_id, address, how="one-click unsubscribe in a newsletter")
    return subscriptions.get_list(session, newsletter.list_id).name
