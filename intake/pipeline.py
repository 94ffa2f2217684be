"""The processing pipeline every stored message goes through, as small named stages.

A stage that cannot go on raises StageFailed; the message is then quarantined with the
reason for a person to see (Mailman's shunt queue): nothing is dropped. Every stage may run
again on the same message without changing the result.
"""

from __future__ import annotations

import html
import logging
import re
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Protocol, cast

import nh3
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.orm import Session

from batching.batches import join_message
from coding.suggest import active_suggester, suggest_for
from constituents.identity import Known, PersonFacts, find_or_create, identifiable
from constituents.values import parse_state, split_name
from correspondence.errors import ValidationFailed
from correspondence.models import (
    Batch,
    Constituent,
    Direction,
    DistrictStatus,
    DistrictZip,
    Message,
    MessageStatus,
    RoutingRule,
    Topic,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.services.blobs import load_blob, store_blob
from correspondence.services.messages import get_message, quarantine_message
from correspondence.services.routing import list_rules, route_message
from intake.mail import address_from_signature, parse_email
from intake.sanitise import clean_html, one_line, one_line_person
from intake.scans import REVIEW_BELOW, ScanLimits, ScanText, ScanUnreadable, extract_text, sender_from_text

log = logging.getLogger(__name__)


class StageFailed(Exception):
    """A stage found the message unusable; the text is the reason shown to staff."""


@dataclass(frozen=True)
class Rules:
    """The office's settings that stages apply."""

    district_zips: frozenset[str] = frozenset()
    cwc_offices: frozenset[str] = frozenset()
    max_attachment_bytes: int = 10 * 1024 * 1024
    # Topic suggestions at or above this confidence are applied (marked "model"); 0 turns it off.
    autocode_confidence: float = 0.0
    # Pages, page size, pixels and reading time one scanned upload may cost.
    scan_limits: ScanLimits = ScanLimits()
    # Facts looked up once per Rules (one import, one job) rather than once per message.
    cache: dict = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_settings(cls, settings) -> Rules:
        return cls(settings.district_zips, settings.cwc_offices, settings.max_attachment_bytes,
                   settings.autocode_confidence, ScanLimits(
                       max_pages=settings.scan_max_pages, max_page_points=settings.scan_max_page_points,
                       max_pixels=settings.scan_max_pixels, ocr_seconds=settings.scan_ocr_seconds,
                       ocr_page_seconds=min(settings.scan_ocr_seconds, ScanLimits.ocr_page_seconds)))


@dataclass
class Context:
    session: Session
    rules: Rules = field(default_factory=Rules)
    # Raw inputs already in memory (a batch import), by SHA-256, so decode need not read them back.
    raw_cache: dict[str, bytes] = field(default_factory=dict)
    # Constituents created earlier in the same batch, by email and phone, not yet flushed.
    created: dict[str, Constituent] = field(default_factory=dict)
    # Active routing rules, loaded once per context.
    routing_rules: list[RoutingRule] | None = None
    # Whether the office keeps a ZIP list in the database (None until the district stage asks).
    office_zips: bool | None = None
    # Sender addresses already looked up for a whole batch: address -> constituent id, or None
    # when no constituent has it. An address not in the dict is looked up on its own.
    known_emails: dict[str, int | None] = field(default_factory=dict)


class Stage(Protocol):
    """One step of the pipeline. A stage may also define `process_many(messages, ctx)`: `run` then hands it
    a whole chunk at once (the topic model reads many letters in one call) instead of one message at a time;
    it must do what `process` would do to each of them."""

    name: str

    def process(self, message: Message, ctx: Context) -> None: ...


class ManyStage(Stage, Protocol):
    def process_many(self, messages: list[Message], ctx: Context) -> None: ...


_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(markup: str) -> str:
    """Plain text from HTML: block tags become line breaks, every tag and script is dropped."""
    markup = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])>", "\n", markup)
    text = html.unescape(nh3.clean(markup, tags=set(), clean_content_tags={"script", "style"}))
    return normalise_whitespace(text)


def normalise_whitespace(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


class Decode:
    """Decode a stored raw email into text, sanitised HTML and an attachment list."""

    name = "decode"

    def process(self, message: Message, ctx: Context) -> None:
        if message.raw_sha256 and message.channel.value == "email" and not message.body_text:
            raw = ctx.raw_cache.get(message.raw_sha256) or load_blob(ctx.session, message.raw_sha256) or b""
            parsed = parse_email(raw)
            message.body_text = parsed.text
            if parsed.html is not None:
                message.body_html = clean_html(parsed.html)
            if parsed.attachments:
                message.facts = {**(message.facts or {}), "attachments": [
                    {"filename": a.filename, "type": a.content_type, "size": a.size} for a in parsed.attachments]}
                limit = ctx.rules.max_attachment_bytes
                for a in parsed.attachments:
                    if a.size > limit:
                        raise StageFailed(f"attachment {a.filename!r} is {a.size / 1048576:.1f} MB, over the "
                                          f"{limit / 1048576:.0f} MB limit for one attachment")
            if parsed.problems:
                message.facts = {**(message.facts or {}), "decode_problems": parsed.problems[:10]}
            # Read before Clean drops the signature block; FillAddress may put it on the sender's record.
            signature = address_from_signature(parsed.text or "")
            if signature:
                message.facts = {**(message.facts or {}), "signature_address": one_line_person(signature)}
        if message.raw_sha256 and message.channel.value == "postal" and not message.body_text:
            self._read_scan(message, ctx)
        if message.body_html:
            message.body_html = clean_html(message.body_html)
            if not (message.body_text or "").strip():
                message.body_text = html_to_text(message.body_html)
        message.body_text = (message.body_text or "").replace("\x00", "")
        if not message.body_text.strip() and not (message.subject or "").strip():
            raise StageFailed("the message has neither a subject nor any text")


    @staticmethod
    def _read_scan(message: Message, ctx: Context) -> None:
        raw = ctx.raw_cache.get(message.raw_sha256 or "") or load_blob(ctx.session, message.raw_sha256 or "") or b""
        try:
            scan = extract_text(raw, ctx.rules.scan_limits)
        except ScanUnreadable as exc:
            raise StageFailed(str(exc)) from exc
        if not scan.text.strip():
            raise StageFailed("no text could be read from the scan")
        Decode._apply_scan(message, ctx, scan)

    @staticmethod
    def _apply_scan(message: Message, ctx: Context, scan: ScanText) -> None:
        """The text, page images, sender and subject a scan gave, onto its message."""
        images = [store_blob(ctx.session, p.image_png, "image/png") if p.image_png else None for p in scan.pages]
        facts = dict(message.facts or {})
        facts["ocr"] = {"confidence": scan.confidence,
                        "pages": [{"method": p.method, "confidence": p.confidence, "image": img}
                                  for p, img in zip(scan.pages, images, strict=True)]}
        if scan.confidence < REVIEW_BELOW:
            facts["review"] = (f"OCR confidence is {scan.confidence:.0f}% on at least one page: check the text "
                               "against the scan")
        sender = sender_from_text(scan.text)
        if sender and not facts.get("constituent"):
            facts["constituent"] = one_line_person(sender)
            name = one_line(" ".join(x for x in (sender.get("first_name"), sender.get("last_name")) if x))
            message.from_name = message.from_name or name or None
        message.facts = facts
        message.body_text = scan.text
        subject = re.search(r"^(?:Re|RE|Subject):\s*(.{3,200})$", scan.text, re.MULTILINE)
        if subject:
            message.subject = one_line(subject.group(1)) or ""
        elif message.from_name:
            message.subject = f"Letter from {message.from_name}"


_QUOTE_HEADER = re.compile(r"^(On .{4,200} wrote:|-{2,} ?Original Message ?-{2,}|From: .+)$",
                           re.IGNORECASE)
_SIGNATURE = re.compile(r"^(-- ?|__+|Sent from my (iPhone|iPad|Android|mobile).*)$", re.IGNORECASE)


def strip_quoted(text: str) -> str:
    """Drop quoted replies and signature blocks; the original stays in the stored raw input."""
    kept: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if kept and (_QUOTE_HEADER.match(stripped) or _SIGNATURE.match(stripped)):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


class Clean:
    """Readable plain text for staff and for batching: quotes, signatures and noise removed."""

    name = "clean"

    def process(self, message: Message, ctx: Context) -> None:
        cleaned = normalise_whitespace(strip_quoted(message.body_text or ""))
        # A reply that was nothing but a quote keeps its text rather than becoming empty.
        message.body_text = cleaned or normalise_whitespace(message.body_text or "")


class CheckDelivery:
    """Deliveries that name their recipient and address (CWC, web forms) must be for this office
    and carry a postal address the office can answer."""

    name = "check-delivery"

    def process(self, message: Message, ctx: Context) -> None:
        facts = message.facts or {}
        office = facts.get("recipient_office")
        if office and ctx.rules.cwc_offices and office not in ctx.rules.cwc_offices:
            raise StageFailed(f"the delivery is for another office ({office}); this office accepts "
                              f"{', '.join(sorted(ctx.rules.cwc_offices))}")
        if message.channel.value != "cwc":
            return
        person = facts.get("constituent") or {}
        missing = [label for key, label in (("address1", "street address"), ("city", "city"),
                                            ("state", "state"), ("zip5", "ZIP code")) if not person.get(key)]
        if person.get("zip_raw") and not person.get("zip5"):
            raise StageFailed(f"bad address: ZIP code {person['zip_raw']!r} is not 5 or 9 digits")
        if missing:
            raise StageFailed(f"bad address: no {', '.join(missing)}")
        try:
            parse_state(person.get("state"))
        except ValidationFailed as exc:
            raise StageFailed(f"bad address: {exc}") from None


class MatchConstituent:
    """Link the message to its constituent by the office's one rule (constituents.identity), else a new record."""

    name = "match-constituent"

    def process(self, message: Message, ctx: Context) -> None:
        if message.constituent_id is not None or message.constituent is not None:
            return
        person = (message.facts or {}).get("constituent") or {}
        facts = PersonFacts.from_dict({**person, "email": person.get("email") or message.from_address})
        if not identifiable(facts):
            return  # nothing to know them by: the message stays unlinked for a person to match
        if not (facts.first_name or facts.last_name):
            first, last = split_name(message.from_name)
            facts = replace(facts, first_name=first, last_name=last)
        # Constituents made earlier in this batch (not yet flushed) and a batch's known senders are shared.
        known = Known(emails=ctx.known_emails, made=ctx.created)
        match = find_or_create(ctx.session, facts, known=known)
        if match.method == "ambiguous":
            message.match_method = "ambiguous"
            message.facts = {**(message.facts or {}), "match_candidates": list(match.candidates)}
        elif match.constituent is not None:
            message.constituent = match.constituent
        elif match.constituent_id is not None:
            message.constituent_id = match.constituent_id
        if match.found:
            message.match_method, message.match_confidence = match.method, match.confidence


class FillAddress:
    """An email sender's postal address from their signature block, on a record that has none.

    Only a record with no street and no ZIP is filled (an address someone typed or imported always
    wins); an existing record's change is audited like an edit. District runs next and places them.
    """

    name = "fill-address"
    FIELDS = ("address1", "address2", "city", "state", "zip5", "zip4")

    def process(self, message: Message, ctx: Context) -> None:
        found = (message.facts or {}).get("signature_address")
        if not found:
            return
        person = message.constituent or (ctx.session.get(Constituent, message.constituent_id)
                                         if message.constituent_id else None)
        if person is None or person.address1 or person.zip5:
            return
        # A message not yet flushed does not load its constituent by id: link the object, so District sees it.
        message.constituent = person
        values = {k: found.get(k) for k in self.FIELDS if found.get(k)}
        for key, value in values.items():
            setattr(person, key, value)
        person.district_status = DistrictStatus.UNKNOWN
        if person.id is not None:  # a record made by this very message is new, not edited
            record(ctx.session, actor_id=None, action="constituent.edit", object_type="constituent",
                   object_id=person.id, before={k: None for k in values}, after=values,
                   detail=f"address from the signature of message {message.id}")


class District:
    """In or out of district from the office's ZIP list (the setting and the list kept in the UI); else unknown."""

    name = "district"

    def process(self, message: Message, ctx: Context) -> None:
        c = message.constituent
        if c is None or c.district_status != DistrictStatus.UNKNOWN or not c.zip5:
            return
        if ctx.office_zips is None:  # whether an admin keeps a list in the UI, asked once per Rules
            if "office_zips" not in ctx.rules.cache:
                ctx.rules.cache["office_zips"] = ctx.session.scalar(select(DistrictZip.zip).limit(1)) is not None
            ctx.office_zips = ctx.rules.cache["office_zips"]
        zips = ctx.rules.district_zips
        if not zips and not ctx.office_zips:
            return
        codes = [c.zip5] + ([f"{c.zip5}{c.zip4}"] if c.zip4 else [])
        inside = any(code in zips for code in codes) or bool(
            ctx.office_zips and any(ctx.session.get(DistrictZip, code) is not None for code in codes))
        c.district_status = DistrictStatus.IN_DISTRICT if inside else DistrictStatus.OUT_OF_DISTRICT


class Classify:
    """The topic a CWC delivery or web form already carries, matched to the office's topics by name."""

    name = "classify"

    def process(self, message: Message, ctx: Context) -> None:
        if message.topic_id is not None:
            return
        for name in (message.facts or {}).get("topics", []):
            topic_id = ctx.session.scalar(select(Topic.id).where(func.lower(Topic.name) == str(name).strip().lower()))
            if topic_id is not None:
                message.topic_id, message.topic_source = topic_id, "delivery"
                return


class BatchStage:
    """Join the campaign batch whose template the letter copies (batching.batches.join_message)."""

    name = "batch"

    def process(self, message: Message, ctx: Context) -> None:
        if "has_batches" not in ctx.rules.cache:  # no batches yet: nothing to join (asked once per Rules)
            ctx.rules.cache["has_batches"] = ctx.session.scalar(select(Batch.id).limit(1)) is not None
        if ctx.rules.cache["has_batches"]:
            join_message(ctx.session, message)


class Route:
    """Assign new mail by the office's routing rules (topic or channel to a staffer or a team)."""

    name = "route"

    def process(self, message: Message, ctx: Context) -> None:
        if message.assignee_id is not None or message.status != MessageStatus.NEW:
            return
        if ctx.routing_rules is None:  # loaded once per session (a batch import shares one per chunk)
            if "mailroom.routing_rules" not in ctx.session.info:
                ctx.session.info["mailroom.routing_rules"] = list_rules(ctx.session, active_only=True)
            ctx.routing_rules = ctx.session.info["mailroom.routing_rules"]
        if ctx.routing_rules:
            route_message(ctx.session, message, ctx.routing_rules)


class Suggest:
    """Topic and stance suggestions from the active model (coding.suggest) for mail still uncoded;
    above the office's confidence the topic is applied and marked as the model's."""

    name = "suggest"

    def process(self, message: Message, ctx: Context) -> None:
        self.process_many([message], ctx)

    def process_many(self, messages: list[Message], ctx: Context) -> None:
        """The whole chunk in one call to the model: a letter costs ~0.1 ms that way instead of ~0.7 ms."""
        todo = [m for m in messages if m.topic_id is None and m.direction == Direction.INBOUND]
        if not todo:
            return
        if "suggester" not in ctx.rules.cache:  # the active model, asked once per import chunk or job
            ctx.rules.cache["suggester"] = active_suggester(ctx.session)
        suggester = ctx.rules.cache["suggester"]
        if suggester is not None:
            suggest_for(ctx.session, todo, suggester=suggester, autocode=ctx.rules.autocode_confidence)


class NewsletterOptIn:
    """A CWC delivery's NewsletterOptIn, or the web form's newsletter_opt_in, subscribes the sender to the
    office's newsletter list (outbound.subscriptions, with the message as the legal basis)."""

    name = "newsletter-opt-in"

    def process(self, message: Message, ctx: Context) -> None:
        from outbound.subscriptions import opt_in_from_message

        if (message.facts or {}).get("newsletter_opt_in"):
            opt_in_from_message(ctx.session, message)


STAGES: tuple[Stage, ...] = (Decode(), CheckDelivery(), Clean(), MatchConstituent(), FillAddress(), District(),
                             Classify(), BatchStage(), Suggest(), Route(), NewsletterOptIn())


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def process_message(session: Session, message_id: int | Message, stages: tuple[Stage, ...] = STAGES, *,
                    rules: Rules | None = None, raw_cache: dict[str, bytes] | None = None,
                    created: dict[str, Constituent] | None = None, isolate: bool = True,
                    known_emails: dict[str, int | None] | None = None, finish: bool = True) -> Message:
    """Run every stage once; a message already processed is left as it is (safe to run twice).

    With isolate (the default) the run is one savepoint, so a failing stage undoes what earlier
    stages did. A batch import turns it off for speed and retries one by one if the batch fails.
    """
    message = message_id if isinstance(message_id, Message) else get_message(session, message_id)
    if message.processed_at is not None or message.status == MessageStatus.QUARANTINED:
        return message
    ctx = Context(session, rules or Rules(), raw_cache if raw_cache is not None else {},
                  created if created is not None else {}, known_emails=known_emails or {})
    _run_stages(message, ctx, stages, isolate=isolate, finish=finish)
    return message


def run(messages: list[Message], ctx: Context, stages: tuple[Stage, ...] = STAGES) -> None:
    """Run the stages over many messages in the caller's transaction (a batch import's chunk).

    Each message goes through the stages in order, as with process_message; a stage with `process_many`
    is called once for every message still going at that point, after the stages before it have run on
    all of them. A StageFailed quarantines that message with the reason; any other error is raised, and
    the caller retries the chunk message by message (there are no savepoints here, for speed).
    """
    going = messages
    for group in _groups(stages):
        going = [m for m in going if m.processed_at is None and m.status != MessageStatus.QUARANTINED]
        if isinstance(group, tuple):
            for message in going:
                _run_stages(message, ctx, group, isolate=False, finish=False)
        elif going:
            group.process_many(going, ctx)
    for message in going:
        if message.processed_at is None and message.status != MessageStatus.QUARANTINED:
            message.processed_at = utcnow()


def _groups(stages: tuple[Stage, ...]) -> list[tuple[Stage, ...] | ManyStage]:
    """The stages cut at each one that takes many messages: runs of one-at-a-time stages between them."""
    groups: list[tuple[Stage, ...] | ManyStage] = []
    single: list[Stage] = []
    for stage in stages:
        if hasattr(stage, "process_many"):
            groups += [tuple(single), cast(ManyStage, stage)] if single else [cast(ManyStage, stage)]
            single = []
        else:
            single.append(stage)
    return groups + ([tuple(single)] if single else [])


def _run_stages(message: Message, ctx: Context, stages: tuple[Stage, ...], *, isolate: bool, finish: bool) -> None:
    session = ctx.session
    reason = None
    current = stages[0].name if stages else ""
    try:
        with session.begin_nested() if isolate else nullcontext():
            for stage in stages:
                current = stage.name
                stage.process(message, ctx)
    except StageFailed as exc:
        reason = f"{current}: {exc}"
    except DataError as exc:
        if not isolate:
            raise  # no savepoint to roll back to: the batch is retried message by message
        # The database refused a value of this message (a number out of range, text it cannot
        # store): running again would fail the same way, so a person gets it with the reason.
        log.warning("database refused a value stage=%s message_id=%s: %s", current, message.id, exc.orig)
        reason = f"{current}: the database refused a value of this message ({_first_line(exc.orig)})"
    except DBAPIError:
        # Connection lost, deadlock, serialization failure, a locked database: the database, not
        # the message, is the problem. Fail the job so RQ (and later the sweeper) runs it again.
        raise
    except Exception as exc:
        if not isolate:
            raise  # the batch is retried message by message, each in its own savepoint
        # Bad input must not crash a worker: keep the message and tell a person what broke.
        log.exception("stage crashed stage=%s message_id=%s", current, message.id)
        reason = f"{current}: unexpected error ({type(exc).__name__}: {str(exc)[:200]})"
    if reason:
        quarantine_message(session, message.id, reason=reason, actor_id=None)
    if finish or reason:
        message.processed_at = utcnow()
