"""The processing pipeline every stored message goes through, as small named stages.

A stage that cannot go on raises StageFailed; the message is then quarantined with the
reason for a person to see (Mailman's shunt queue): nothing is dropped.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from typing import Protocol

import nh3
from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.models import ConstituentEmail, Message, MessageStatus, utcnow
from correspondence.services.messages import get_message, quarantine_message

log = logging.getLogger(__name__)


class StageFailed(Exception):
    """A stage found the message unusable; the text is the reason shown to staff."""


@dataclass
class Context:
    session: Session
    notes: list[str] = field(default_factory=list)


class Stage(Protocol):
    name: str

    def process(self, message: Message, ctx: Context) -> None: ...


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


class CleanText:
    """Make sure every message has readable plain text and only sanitised HTML."""

    name = "clean-text"

    def process(self, message: Message, ctx: Context) -> None:
        if message.body_html:
            message.body_html = nh3.clean(message.body_html)
            if not (message.body_text or "").strip():
                message.body_text = html_to_text(message.body_html)
        message.body_text = normalise_whitespace(message.body_text or "")
        if not message.body_text and not (message.subject or "").strip():
            raise StageFailed("the message has neither a subject nor any text")


class MatchConstituent:
    """Link the message to the constituent who uses its sender address."""

    name = "match-constituent"

    def process(self, message: Message, ctx: Context) -> None:
        if message.constituent_id is not None or not message.from_address:
            return
        address = message.from_address.strip().lower()
        constituent_id = ctx.session.scalar(
            select(ConstituentEmail.constituent_id).where(ConstituentEmail.address == address))
        if constituent_id is not None:
            message.constituent_id = constituent_id


STAGES: tuple[Stage, ...] = (CleanText(), MatchConstituent())


def process_message(session: Session, message_id: int, stages: tuple[Stage, ...] = STAGES) -> Message:
    """Run every stage once; a message already processed is left as it is (safe to run twice)."""
    message = get_message(session, message_id)
    if message.processed_at is not None or message.status == MessageStatus.QUARANTINED:
        return message
    ctx = Context(session)
    for stage in stages:
        try:
            with session.begin_nested():
                stage.process(message, ctx)
        except StageFailed as exc:
            reason = f"{stage.name}: {exc}"
            break
        except Exception as exc:
            # Bad input must not crash a worker: keep the message and tell a person what broke.
            log.exception("stage crashed stage=%s message_id=%s", stage.name, message_id)
            reason = f"{stage.name}: unexpected error ({type(exc).__name__}: {exc})"
            break
    else:
        reason = None
    if reason:
        quarantine_message(session, message.id, reason=reason, actor_id=None)
    message.processed_at = utcnow()
    session.flush()
    return message
