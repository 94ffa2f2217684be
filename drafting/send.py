"""Email delivery over SMTP, exactly once per response.

Each response moves queued → sending → sent. "sending" is committed *before* the SMTP
conversation starts, so a job that finds a response already "sending" knows an earlier attempt
died part-way: the letter may or may not have reached the server, so it is marked "uncertain" for
a person to check and is never resent blindly. A server that answers 4xx (try later) or cannot be
reached puts the response back to "queued" and fails the job (RQ keeps it, with the reason, in the
failed registry; no RQ retry is attached); the periodic sweep (`restart_stalled`, every five minutes)
queues every letter still "queued" after MAILROOM_SWEEP_AFTER_MINUTES again, which is the retry. A 5xx
refusal marks it "failed" with the server's words. A letter whose email cannot be built (an address Python's mail
package cannot parse, one that is really two addresses, a non-ASCII address the server cannot take)
is marked "failed" with the reason and the rest of the chunk goes on: nothing is left "sending".
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email import errors, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from correspondence.db import Database
from correspondence.effects import Done, Effect
from correspondence.models import Channel, Direction, Message, Response, ResponseState, SuppressionReason, utcnow
from correspondence.services import mailbox_signin
from correspondence.services.audit import record, record_many
from correspondence.services.mailbox_oauth import OAuthError, OAuthLogin, xoauth2_string
from correspondence.services.messages import answers_left
from correspondence.states import StateMachine
from drafting.headers import header_text
from drafting.render import to_html
from outbound import newsletters, sending, suppression

log = logging.getLogger(__name__)


# An attempt younger than this may still be in progress in another worker; an older one died.
IN_FLIGHT = timedelta(minutes=10)

RS = ResponseState
RESPONSE_TRANSITIONS: dict[ResponseState, frozenset[ResponseState]] = {
    # A queued letter whose address was suppressed after it was made (a bounce, a complaint, an
    # unsubscribe) is not sent: it fails with the reason.
    RS.QUEUED: frozenset({RS.SENDING, RS.FAILED}),
    # The attempt's outcome: the server took it, refused it for good, said "later" (or could not be
    # reached), or the connection broke mid-send (or the worker died: the next claim finds it so).
    RS.SENDING: frozenset({RS.SENT, RS.FAILED, RS.QUEUED, RS.UNCERTAIN}),
    # A person settles it: send it again, or (uncertain only) record that it did arrive.
    RS.UNCERTAIN: frozenset({RS.QUEUED, RS.SENT}),
    RS.FAILED: frozenset({RS.QUEUED}),
    RS.SENT: frozenset(),
    RS.TO_PRINT: frozenset(),  # the print file is made by the run; nothing moves it afterwards
}
RESPONSES = StateMachine(ResponseState, RESPONSE_TRANSITIONS, "response", noun="letter")


class TryLater(Exception):
    """The server could not take the letters now; they stay "queued" and the next sweep queues them again."""


@dataclass(frozen=True)
class SmtpConfig:
    """What a use case that sends mail needs of the settings: the server and the From address.

    The field names are the settings' own, so `connect` takes either.
    """

    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    smtp_password: str
    mail_from: str
    # Sign in with OAuth2 as this connected mailbox (its refresh token is read with secret_key).
    smtp_oauth_mailbox: str = ""
    secret_key: str = field(default="", repr=False)

    @classmethod
    def of(cls, settings) -> SmtpConfig:
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.smtp_username,
                   settings.smtp_password, settings.mail_from, settings.smtp_oauth_mailbox, settings.secret_key)

    @property
    def configured(self) -> bool:
        return bool(self.smtp_host)


@dataclass
class SendResult:
    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    skipped: int = 0
    retry: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Outgoing:
    """What a letter's email needs, read inside the claim so the email is built after the commit."""

    to_address: str | None
    subject: str
    body_text: str
    email_message_id: str
    in_reply_to: str | None
    response_id: int = 0
    # A follow-up to a segment (an outbound message of ours, not an answer): it gets one-click unsubscribe.
    follow_up: bool = False
    # A newsletter piece (outbound.newsletters): its id, for the footer's web-version link.
    newsletter_id: int | None = None

    @classmethod
    def of(cls, response: Response, channel: Channel, external_id: str | None,
           direction: Direction = Direction.INBOUND, source: str | None = None) -> Outgoing:
        incoming = external_id if channel == Channel.EMAIL else None
        piece = newsletters.newsletter_of_source(source) if direction == Direction.OUTBOUND else None
        return cls(response.to_address, response.subject, response.body_text, response.email_message_id,
                   incoming if incoming and incoming.startswith("<") else None, response.id,
                   direction == Direction.OUTBOUND, piece[0] if piece else None)


def _one_recipient(value: str | None) -> Address | str:
    """Exactly one address: "a,b@x.org" or "a:b@x.org" would otherwise become other recipients."""
    text = header_text(value)
    try:
        return Address(addr_spec=text)
    except errors.NonASCIILocalPartDefect:
        # Allowed with SMTPUTF8 (RFC 6531): smtplib refuses it if the server cannot take it.
        parsed = policy.default.header_factory("To", text).addresses
        if len(parsed) == 1 and parsed[0].addr_spec == text:
            return text
        raise ValueError(f"{text!r} is not one email address") from None


def _one_address(email: EmailMessage, name: str) -> None:
    """A From or Reply-To that parses as a group or a list (a ':' or ',' in the name) is refused."""
    if len(email[name].addresses) != 1:
        raise ValueError(f"{name} must be exactly one address (check MAILROOM_MAIL_FROM / MAILROOM_REPLY_TO)")


def build_email(letter: Outgoing, settings) -> EmailMessage:
    """The letter's email; every header value is one line (``header_text``), and To is exactly one address.

    Raises (ValueError and others from the email package) when the letter cannot be built; the
    caller marks that one letter failed.
    """
    email = EmailMessage()
    email["From"] = header_text(settings.mail_from)
    _one_address(email, "From")
    email["To"] = _one_recipient(letter.to_address)
    email["Subject"] = header_text(letter.subject) or "Your letter"
    email["Message-ID"] = header_text(letter.email_message_id)
    email["Date"] = format_datetime(utcnow())
    if settings.reply_to:
        email["Reply-To"] = header_text(settings.reply_to)
        _one_address(email, "Reply-To")
    if letter.in_reply_to:
        email["In-Reply-To"] = header_text(letter.in_reply_to)
        email["References"] = header_text(letter.in_reply_to)
    body = letter.body_text
    unsubscribe = sending.unsubscribe_url(letter.response_id, settings) if letter.follow_up else None
    if letter.newsletter_id is not None:  # the web version and the unsubscribe link, in the text itself too
        web = f"{settings.base_url}/n/{newsletters.web_token(letter.newsletter_id, secret_key=settings.secret_key)}"
        body += newsletters.footer(web, unsubscribe or sending.unsubscribe_url(letter.response_id, settings))
    html = f"<!doctype html><html><body>{to_html(body)}</body></html>"
    if unsubscribe is not None:
        # The footer is written into the text before the parts are made (each part is encoded once).
        body, html = sending.with_unsubscribe_footer(body, html, unsubscribe)
        sending.add_list_unsubscribe_headers(email, unsubscribe)
    email.set_content(body)
    email.add_alternative(html, subtype="html")
    if (key := sending.dkim_key(settings)) is not None:
        sending.sign(email, key, sending.envelope_sender(letter.response_id, settings))
    return email


def login_xoauth2(client: smtplib.SMTP, username: str, oauth: OAuthLogin) -> None:
    """AUTH XOAUTH2 with the current access token; if the server refuses it, renew it once and retry."""

    def answer(token: str):  # smtplib calls it with no challenge first, then with the server's error
        return lambda challenge=None: xoauth2_string(username, token) if challenge is None else ""

    client.ehlo_or_helo_if_needed()
    try:
        client.auth("XOAUTH2", answer(oauth.access_token()), initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as refused:
        log.info("smtp: server refused the access token (%s); renewing it", refused.smtp_code)
        client.auth("XOAUTH2", answer(oauth.access_token(force=True)), initial_response_ok=True)


def mailbox_sign_in(settings, store: Database | Session | None) -> tuple[OAuthLogin, str] | None:
    """The OAuth2 sign-in and user name of the mailbox MAILROOM_SMTP_OAUTH_MAILBOX names (None when it names
    none), set to keep each refresh token the provider rotates: in its own commit with a Database, flushed
    into the caller's transaction with a Session."""
    name = getattr(settings, "smtp_oauth_mailbox", "")
    if not name:
        return None
    if store is None:
        raise TryLater("MAILROOM_SMTP_OAUTH_MAILBOX is set, but this sender has no database to read the sign-in")
    secret_key = settings.secret_key
    try:
        if isinstance(store, Database):
            with store.sessions() as s:
                row = mailbox_signin.mailbox_named(s, name)
                login = mailbox_signin.login_for(row, secret_key) if row is not None else None
        else:
            row = mailbox_signin.mailbox_named(store, name)
            login = mailbox_signin.login_for(row, secret_key) if row is not None else None
    except ValueError as exc:  # no sign-in stored, or one encrypted under another key (TokenUnreadable)
        raise TryLater(f"MAILROOM_SMTP_OAUTH_MAILBOX={name!r}: {exc}") from exc
    if row is None or login is None:
        raise TryLater(f"MAILROOM_SMTP_OAUTH_MAILBOX={name!r} names no mailbox; connect it in the intake page")
    # Renewed under the mailbox's lock, shared with every other process using it, the rotated token stored
    # before the lock is released (mailbox_signin.locked_renewal).
    login.renew = mailbox_signin.locked_renewal(store, row.id, login.provider, secret_key=secret_key)
    return login, row.username


def connect(settings, *, oauth: OAuthLogin | None = None, store: Database | Session | None = None) -> smtplib.SMTP:
    """An SMTP connection, signed in with the password, or with OAuth2 (AUTH XOAUTH2) when `oauth` is given or
    the settings name a connected mailbox (MAILROOM_SMTP_OAUTH_MAILBOX, read from `store`)."""
    if not settings.smtp_host:
        raise TryLater("no SMTP server is configured (MAILROOM_SMTP_HOST)")
    username = settings.smtp_username
    if oauth is None and (found := mailbox_sign_in(settings, store)) is not None:
        oauth, username = found[0], settings.smtp_username or found[1]
    try:
        if settings.smtp_security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=30,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30)
            if settings.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
        if oauth is not None:
            login_xoauth2(client, username, oauth)
        elif settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password)
    except OAuthError as exc:
        raise TryLater(f"cannot renew the mailbox's sign-in: {exc}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TryLater(f"cannot reach the SMTP server: {exc}") from exc
    return client


def _held(db: Database, response_ids: Sequence[int]) -> dict[int, SuppressionReason]:
    """The suppression reason of each of these letters' addresses that has one — or "unsubscribed" for a
    newsletter piece whose address has left the newsletter's list since it was made: a few queries for a
    group, instead of one per letter."""
    with db.sessions() as s:  # one short read of its own, closed before the chunk's claims begin
        rows = s.execute(select(Response.id, Response.to_address, Message.source)
                         .join(Message, Message.id == Response.message_id)
                         .where(Response.id.in_(response_ids), Response.to_address.is_not(None))).all()
        addresses: dict[int, str] = {rid: address for rid, address, _source in rows if address}
        found = suppression.suppressed(s, addresses.values())
        left = newsletters.off_their_list(s, {rid: (source, address) for rid, address, source in rows if address})
    held = {rid: found[key].reason for rid, address in addresses.items()
            if (key := suppression.normalise(address)) in found}
    for rid in left:
        held.setdefault(rid, SuppressionReason.UNSUBSCRIBED)
    return {rid: reason for rid, reason in held.items() if reason is not None}


def _finish(db: Database, response_id: int, state: ResponseState, error: str | None = None) -> None:
    with db.unit_of_work() as s:
        _record_outcome(s, response_id, state, error)


def _record_outcome(s, response_id: int, state: ResponseState, error: str | None) -> None:
    """The outcome of an attempt this worker claimed (so the letter is "sending"): one UPDATE, one event;
    when the server took it, one more UPDATE moves the messages it answers to "responded" (and their events).
    The UPDATE moves the letter only if it is still "sending" (the move the table allows)."""
    RESPONSES.check(ResponseState.SENDING, state)
    values: dict[str, object] = {"state": state, "last_error": error}
    if state == ResponseState.SENT:
        values["sent_at"] = utcnow()
    s.execute(update(Response).where(Response.id == response_id, Response.state == ResponseState.SENDING)
              .values(**values).execution_options(synchronize_session=False))
    record(s, actor_id=None, action=f"response.{state.value}", object_type="response", object_id=response_id,
           before={"state": "sending"}, after={"state": state.value}, detail=error)
    if state == ResponseState.SENT:
        answers_left(s, [response_id], how="email accepted by the server")


CLAIM_GROUP = 20  # letters claimed ("sending") in one commit, then sent one after another over the connection


def _record_sent(s, response_ids: list[int]) -> None:
    """Letters the server took, recorded together: one UPDATE, one INSERT of events, and the messages they
    answer moved to "responded" (``answers_left``: one UPDATE, one INSERT) — four statements for a group."""
    if not response_ids:
        return
    RESPONSES.check(ResponseState.SENDING, ResponseState.SENT)
    s.execute(update(Response).where(Response.id.in_(response_ids), Response.state == ResponseState.SENDING)
              .values(state=ResponseState.SENT, last_error=None, sent_at=utcnow())
              .execution_options(synchronize_session=False))
    record_many(s, actor_id=None, action="response.sent", object_type="response",
                events=[(rid, {"state": "sent", "from": "sending"}) for rid in response_ids])
    answers_left(s, response_ids, how="email accepted by the server")


def _claim_group(db: Database, response_ids: Sequence[int], sent: list[int], *,
                 held: dict[int, SuppressionReason]) -> tuple[list[Outgoing], SendResult]:
    """One commit: record the previous group's sent letters and claim these ("sending") before any byte of
    theirs goes to the server. Letters another worker is sending now are skipped, attempts that died are
    marked uncertain, letters to suppressed addresses fail."""
    result = SendResult()
    letters: list[Outgoing] = []
    with db.unit_of_work() as s:
        _record_sent(s, sent)
        rows = {row.Response.id: row for row in s.execute(
            select(Response, Message.channel, Message.external_id, Message.direction, Message.source)
            .join(Message, Message.id == Response.message_id)
            .where(Response.id.in_(list(response_ids))).with_for_update(of=Response))}
        now = utcnow()
        for response_id in response_ids:
            row = rows.get(response_id)
            if row is None:
                result.skipped += 1
                continue
            r = row.Response
            if r.state == ResponseState.SENDING:
                if r.sending_since is not None and r.sending_since > now - IN_FLIGHT:
                    result.skipped += 1  # another worker is sending it right now
                    continue
                r.last_error = "a delivery attempt was interrupted; check whether it arrived before resending"
                RESPONSES.move(s, r, ResponseState.UNCERTAIN, actor_id=None, action="response.uncertain")
                result.uncertain += 1
                continue
            if r.state != ResponseState.QUEUED:
                result.skipped += 1
                continue
            follow_up = row.direction == Direction.OUTBOUND
            reason = held.get(r.id)
            if reason is not None and suppression.blocks(reason, follow_up=follow_up):
                # Suppressed after the letter was made (a bounce, a complaint, an unsubscribe): it is not sent.
                r.last_error = f"not sent: the address is {suppression.LABELS[reason]}"
                RESPONSES.move(s, r, ResponseState.FAILED, actor_id=None, action="response.failed",
                               detail=r.last_error)
                result.failed += 1
                continue
            # The attempt is recorded on the row (attempts, sending_since); its outcome is audited.
            RESPONSES.check(r.state, ResponseState.SENDING)
            r.state, r.sending_since, r.attempts = ResponseState.SENDING, now, r.attempts + 1
            letters.append(Outgoing.of(r, row.channel, row.external_id, row.direction, row.source))
    return letters, result  # the emails are built after the commit: the write lock is free


def send_responses(db: Database, response_ids: Sequence[int], settings) -> SendResult:
    """Send a chunk over one SMTP connection, paced to the configured rate.

    Letters are claimed in groups of ``CLAIM_GROUP`` (one commit), and the group's sent letters are
    recorded with the next group's claim (one commit): two commits per twenty letters instead of one
    per letter. A failure is recorded at once, in its own commit. If the job stops part-way (an
    exception), the claimed letters it had not tried yet go back to "queued" (nothing of theirs reached
    the server); only a killed worker leaves them "sending", and the sweep's next claim marks those
    uncertain for a person to check — at most one group, never a letter sent twice.
    """
    result = SendResult()
    client: smtplib.SMTP | None = None
    gap = 1.0 / settings.smtp_rate_per_second if settings.smtp_rate_per_second > 0 else 0.0
    last = 0.0
    sent: list[int] = []  # taken by the server, recorded with the next group's claim
    untried: list[int] = []  # claimed in this group, not yet given to the server
    try:
        # Suppressions are read per group of letters rather than per letter: one that arrives while a
        # group is being sent (seconds) is honoured from the next group, and by the next run in any case.
        for i in range(0, len(response_ids), CLAIM_GROUP):
            group = response_ids[i:i + CLAIM_GROUP]
            held = _held(db, group)
            letters, claimed = _claim_group(db, group, sent, held=held)
            sent = []
            result.uncertain += claimed.uncertain
            result.failed += claimed.failed
            result.skipped += claimed.skipped
            untried = [letter.response_id for letter in letters]
            for letter in letters:
                response_id = letter.response_id
                untried.remove(response_id)
                try:
                    email = build_email(letter, settings)
                except Exception as exc:  # whatever this one letter's fault is, the rest of the chunk goes on
                    log.warning("letter cannot be built response_id=%s error=%r", response_id, exc)
                    _finish(db, response_id, ResponseState.FAILED,
                            f"the email could not be built: {type(exc).__name__}: {exc}"[:500])
                    result.failed += 1
                    continue
                if client is None:
                    try:
                        client = connect(settings, store=db)
                    except TryLater as exc:
                        _finish(db, response_id, ResponseState.QUEUED, str(exc)[:500])
                        result.retry.append(response_id)
                        continue
                wait = last + gap - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                last = time.monotonic()
                try:
                    client.send_message(email, from_addr=sending.envelope_sender(response_id, settings))
                except smtplib.SMTPResponseException as exc:
                    text = f"{exc.smtp_code} {exc.smtp_error!r}"[:500]
                    if 400 <= exc.smtp_code < 500:
                        _finish(db, response_id, ResponseState.QUEUED, text)
                        result.retry.append(response_id)
                    else:
                        _finish(db, response_id, ResponseState.FAILED, text)
                        result.failed += 1
                except smtplib.SMTPRecipientsRefused as exc:
                    _finish(db, response_id, ResponseState.FAILED, f"recipient refused: {exc.recipients}"[:500])
                    result.failed += 1
                except smtplib.SMTPNotSupportedError as exc:
                    # Raised before MAIL FROM (e.g. a non-ASCII address and no SMTPUTF8): nothing went out.
                    _finish(db, response_id, ResponseState.FAILED,
                            f"the server cannot take this letter: {exc}"[:500])
                    result.failed += 1
                except (ValueError, TypeError) as exc:
                    # smtplib could not encode this letter (UnicodeError is a ValueError): its data never went
                    # out. Reset the half-started transaction so the next letter starts clean.
                    _finish(db, response_id, ResponseState.FAILED,
                            f"the email could not be encoded: {type(exc).__name__}: {exc}"[:500])
                    result.failed += 1
                    try:
                        client.rset()
                    except (OSError, smtplib.SMTPException):
                        client = None
                except (OSError, smtplib.SMTPException) as exc:
                    # The connection broke mid-conversation: the server may have the letter.
                    _finish(db, response_id, ResponseState.UNCERTAIN,
                            f"connection lost while sending: {exc}"[:500])
                    result.uncertain += 1
                    client = None
                else:
                    sent.append(response_id)
                    result.sent += 1
        if sent:
            with db.unit_of_work() as s:
                _record_sent(s, sent)
            sent = []
    finally:
        if sent or untried:
            # The loop broke off: record what the server took (else it reads uncertain), and give back
            # the letters it had claimed but not tried (none of their bytes went out).
            try:
                with db.unit_of_work() as s:
                    _record_sent(s, sent)
                    if untried:
                        RESPONSES.check(ResponseState.SENDING, ResponseState.QUEUED)
                        s.execute(update(Response).where(Response.id.in_(untried),
                                                         Response.state == ResponseState.SENDING)
                                  .values(state=ResponseState.QUEUED, sending_since=None,
                                          last_error="not tried: the sending job stopped; it goes with the next")
                                  .execution_options(synchronize_session=False))
                        record_many(s, actor_id=None, action="response.queued", object_type="response",
                                    events=[(rid, {"state": "queued", "from": "sending"}) for rid in untried])
            except Exception:
                log.exception("could not record sent letters response_ids=%s untried=%s", sent, untried)
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                log.debug("smtp quit failed", exc_info=True)
    return result


def stalled(session, older_than: timedelta) -> tuple[list[int], list[int], list[int]]:
    """What the sweeper restarts: unfinished runs, queued emails, and attempts that died mid-send.

    A letter stays "queued" until the server takes it, so every sweep after `older_than` queues it again
    until it goes (or a person settles it): the sweep is the retry for letters the server deferred.
    """
    from correspondence.models import ApplyRun

    cutoff = utcnow() - older_than
    runs = list(session.scalars(select(ApplyRun.id).where(ApplyRun.state.in_(("queued", "running")),
                                                          ApplyRun.created_at < cutoff)))
    queued = list(session.scalars(select(Response.id).where(Response.state == ResponseState.QUEUED,
                                                            Response.created_at < cutoff).limit(50_000)))
    dead = list(session.scalars(select(Response.id).where(Response.state == ResponseState.SENDING,
                                                          Response.sending_since < utcnow() - IN_FLIGHT)))
    return runs, queued, dead


def restart_stalled(session: Session, *, older_than: timedelta, can_send: bool) -> Done[int]:
    """The sweep's outbound part: apply runs left unfinished, and (when an SMTP server is set up) letters
    still queued or whose attempt died mid-send. Returns how many were restarted.

    Sending is idempotent per response, so a chunk queued twice sends nothing twice; a dead attempt is
    turned "uncertain" by the send job itself when it finds it. Without a server the letters wait,
    queued (sending jobs would only fail), and this says so in one log line per sweep.
    """
    from drafting.apply import waiting_emails

    runs, queued, dead = stalled(session, older_than)
    if not can_send:
        waiting = waiting_emails(session)
        if waiting:
            log.warning("email sending is not set up: %d letters waiting (set MAILROOM_SMTP_HOST)", waiting)
        queued, dead = [], []
    pending = queued + dead
    effects = ([Effect.of("apply_run", *runs)] if runs else []) + ([Effect.of("send", *pending)] if pending else [])
    return Done(len(runs) + len(pending), tuple(effects))


def settle(session, response_id: int, action: str, *, actor_id: int) -> Response:
    """A person checked an uncertain or failed letter: send it (again), or record that it did arrive."""
    from correspondence.errors import NotFound, ValidationFailed

    r = session.get(Response, response_id)
    if r is None:
        raise NotFound(f"no response {response_id}")
    if r.state not in (ResponseState.UNCERTAIN, ResponseState.FAILED):
        raise ValidationFailed(f"this letter is {r.state.value.replace('_', ' ')}; only an uncertain or failed "
                               "letter can be resent or marked sent")
    if action == "resend":
        target = ResponseState.QUEUED
    elif action == "mark_sent" and r.state == ResponseState.UNCERTAIN:
        target = ResponseState.SENT
        r.sent_at = r.sending_since or utcnow()
    else:
        raise ValidationFailed("a failed letter can only be resent")
    RESPONSES.move(session, r, target, actor_id=actor_id, action=f"response.{action}")
    if target == ResponseState.SENT:
        answers_left(session, [r.id], actor_id=actor_id, how="a person recorded that the letter arrived")
    return r


def email_notices(db: Database, staffer_id: int, *, mail: SmtpConfig, base_url: str) -> int:
    """Email a staffer the notices they have not been emailed yet (fresh and unread ones only); how many.

    Each notice is marked emailed after the server accepts it, in its own commit; a crash between the
    two sends that one again on the next run (notices need not be exactly-once, and are never lost:
    the in-app notice is the record). An unreachable server raises TryLater, so RQ keeps the failed job.
    Without a server configured nothing is tried.
    """
    from correspondence.services.notices import mark_emailed, unsent_emails

    if not mail.configured:
        return 0
    with db.unit_of_work() as session:
        pending = [(n.id, n.text, n.link, s.email, s.name) for n, s in unsent_emails(session, staffer_id)]
    if not pending:
        return 0
    client = connect(mail, store=db)
    sent = 0
    try:
        for notice_id, text, link, address, name in pending:
            email = EmailMessage()
            email["From"], email["To"] = header_text(mail.mail_from), header_text(address)
            email["Subject"] = header_text(f"Mailroom: {text}"[:150])
            email.set_content(f"{name},\n\n{text}\n\n{base_url}{link}\n\n(Also on your Notices page in Mailroom.)\n")
            client.send_message(email)
            with db.unit_of_work() as session:
                mark_emailed(session, notice_id)
            sent += 1
    finally:
        client.quit()
    log.info("notice emails sent staffer_id=%s count=%s", staffer_id, sent)
    return sent
