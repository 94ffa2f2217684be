"""The paragraph library: approved standard paragraphs writers build letters from.

    proposed ──approve (a supervisor or admin, never the author)──▶ approved ──(a newer revision approved,
       │                                                                      or the paragraph retired)──▶ retired
       └──withdraw (the author) / decline (a supervisor)──▶ withdrawn

Editing an approved paragraph makes a new proposed revision; the approved one keeps being offered
until the new one is approved. Every move is audited.

"Built only from approved paragraphs" (``built_from``) is decided on the letter's text alone:

* line ends are normalised (CRLF and lone CR become LF), then the body is split into paragraphs at
  blank lines (lines holding nothing but spaces or tabs count as blank);
* each paragraph is compared after removing trailing spaces from its lines and blank space around
  it — nothing else is forgiven: one changed character, word or line break makes it a different
  paragraph;
* each paragraph must be the text of a currently approved standard paragraph, or one of the
  boilerplate lines in ``BOILERPLATE`` (a single merge field such as ``{{ constituent.salutation }}``
  or ``{{ office.signature }}``, with any spacing inside the braces);
* and at least one paragraph must be an approved standard paragraph (a letter of boilerplate
  alone says nothing anybody approved).

A standard paragraph is one paragraph: its text may not contain a blank line, and it must pass the
letter checks (drafting.render.validate) on its own, so letters built from them are valid too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    LetterVersion,
    ParagraphRevision,
    ParagraphState,
    Role,
    StandardParagraph,
    Topic,
    VersionState,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.services.staff import active_staffer
from correspondence.states import StateMachine
from correspondence.text import normalise_newlines
from drafting.render import validate

P = ParagraphState
TRANSITIONS: dict[ParagraphState, frozenset[ParagraphState]] = {
    P.PROPOSED: frozenset({P.APPROVED, P.WITHDRAWN}),
    P.APPROVED: frozenset({P.RETIRED}),
    P.RETIRED: frozenset(),
    P.WITHDRAWN: frozenset(),
}
# Who may approve, withdraw or decline is decided by the services below (never the author approves).
REVISIONS = StateMachine(ParagraphState, TRANSITIONS, "paragraph_revision", noun="paragraph revision")
APPROVERS = (Role.SUPERVISOR, Role.ADMIN)
MAX_TEXT = 5000

# Paragraphs that may stand in a letter built only from approved paragraphs besides the approved
# ones: a single merge field that carries no words of the writer's own.
BOILERPLATE = frozenset({"constituent.salutation", "office.signature", "today", "office.letterhead",
                         "constituent.address_block"})
# The subject a self-approved letter must carry (Mailroom's default): the subject is words the
# constituent reads too, and nobody approved any other.
STANDARD_SUBJECTS = frozenset({"Re: {{ message.subject }}"})
SELF_APPROVAL_REASON = "self-approved: built only from approved paragraphs"

_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_ONE_FIELD = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)?)\s*\}\}")
_SIGNATURE_AT_END = re.compile(r"(?:^|\n[ \t]*\n)\s*(\{\{\s*office\.signature\s*\}\}\s*)$")


# --- text ------------------------------------------------------------------------------------------

def normalise_paragraph(text: str) -> str:
    """One paragraph as it is compared and stored: LF line ends, no trailing spaces, no blank space around it."""
    return "\n".join(line.rstrip() for line in normalise_newlines(text).split("\n")).strip()


def split_paragraphs(body: str) -> list[str]:
    """The body's paragraphs (split at blank lines), each normalised; empty ones dropped."""
    pieces = (normalise_paragraph(p) for p in _BLANK_LINE.split(normalise_newlines(body)))
    return [p for p in pieces if p]


def is_boilerplate(paragraph: str) -> bool:
    match = _ONE_FIELD.fullmatch(paragraph.strip())
    return match is not None and match.group(1) in BOILERPLATE


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def built_from(body: str, approved: Collection[str]) -> bool:
    """Whether every paragraph of body is an approved text or boilerplate, with at least one approved text."""
    pieces = split_paragraphs(body)
    if not pieces or not all(p in approved or is_boilerplate(p) for p in pieces):
        return False
    return any(p in approved for p in pieces)


def approved_texts(session: Session, candidates: Collection[str]) -> frozenset[str]:
    """Those of the candidate texts that are a currently approved standard paragraph (by hash, then equality)."""
    wanted = {sha(t): t for t in candidates}
    if not wanted:
        return frozenset()
    found = session.scalars(select(ParagraphRevision.text).join(StandardParagraph).where(
        ParagraphRevision.state == P.APPROVED, ParagraphRevision.text_sha256.in_(list(wanted)),
        StandardParagraph.retired.is_(False)))
    return frozenset(t for t in found if t in wanted.values())


def built_from_approved(session: Session, body: str) -> bool:
    """Whether a letter's body consists only of approved paragraphs (plus boilerplate lines); see the module doc."""
    pieces = split_paragraphs(body)
    return built_from(body, approved_texts(session, [p for p in pieces if not is_boilerplate(p)]))


def standard_subject(subject: str) -> bool:
    spaced = _ONE_FIELD.sub(lambda m: "{{ " + m.group(1) + " }}", subject.strip())
    return spaced in STANDARD_SUBJECTS


def insert_text(body: str, text: str) -> str:
    """The body with a paragraph added at its end — before the signature when the letter ends with one."""
    body = normalise_newlines(body)
    text = normalise_paragraph(text)
    match = _SIGNATURE_AT_END.search(body)
    if match:
        head = body[:match.start()].rstrip()
        return (f"{head}\n\n" if head else "") + f"{text}\n\n{match.group(1).strip()}"
    head = body.rstrip()
    return f"{head}\n\n{text}" if head else text


# --- the library -----------------------------------------------------------------------------------

def get_paragraph(session: Session, paragraph_id: int) -> StandardParagraph:
    paragraph = session.get(StandardParagraph, paragraph_id)
    if paragraph is None:
        raise NotFound(f"no standard paragraph {paragraph_id}")
    return paragraph


def get_revision(session: Session, revision_id: int) -> ParagraphRevision:
    revision = session.get(ParagraphRevision, revision_id)
    if revision is None:
        raise NotFound(f"no paragraph revision {revision_id}")
    return revision


def approved_revision(session: Session, paragraph_id: int) -> ParagraphRevision | None:
    return session.scalar(select(ParagraphRevision).where(ParagraphRevision.paragraph_id == paragraph_id,
                                                          ParagraphRevision.state == P.APPROVED))


def open_proposal(session: Session, paragraph_id: int) -> ParagraphRevision | None:
    return session.scalar(select(ParagraphRevision).where(ParagraphRevision.paragraph_id == paragraph_id,
                                                          ParagraphRevision.state == P.PROPOSED))


def _checked_text(text: str) -> str:
    text = normalise_paragraph(text)
    if not text:
        raise ValidationFailed("the paragraph is empty")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"a standard paragraph is at most {MAX_TEXT} characters")
    if _BLANK_LINE.search(text):
        raise ValidationFailed("a standard paragraph is one paragraph (no blank lines); propose each paragraph "
                               "on its own")
    if is_boilerplate(text):
        raise ValidationFailed("a lone merge field is boilerplate every letter may use, not a standard paragraph")
    problems = validate(text)
    if problems:
        raise ValidationFailed("; ".join(problems))
    return text


def _move(session: Session, revision: ParagraphRevision, target: ParagraphState, *, actor_id: int, action: str,
          detail: str | None = None) -> ParagraphRevision:
    return REVISIONS.move(session, revision, target, actor_id=actor_id, action=action, detail=detail,
                          after={"paragraph_id": revision.paragraph_id})


def _new_revision(session: Session, paragraph: StandardParagraph, text: str, *, actor_id: int,
                  based_on: ParagraphRevision | None) -> ParagraphRevision:
    number = (session.scalar(select(func.max(ParagraphRevision.number))
                             .where(ParagraphRevision.paragraph_id == paragraph.id)) or 0) + 1
    revision = ParagraphRevision(paragraph_id=paragraph.id, number=number, text=text, text_sha256=sha(text),
                                 author_id=actor_id, based_on_id=based_on.id if based_on else None)
    session.add(revision)
    session.flush()
    record(session, actor_id=actor_id, action="paragraph_revision.propose", object_type="paragraph_revision",
           object_id=revision.id, after={"paragraph_id": paragraph.id, "number": number, "state": P.PROPOSED.value,
                                         "based_on": revision.based_on_id})
    return revision


def propose_paragraph(session: Session, *, title: str, text: str, topic_id: int | None = None,
                      actor_id: int) -> ParagraphRevision:
    """A new standard paragraph, proposed: it is offered to writers once a supervisor approves it."""
    active_staffer(session, actor_id)
    title = title.strip()
    if not title:
        raise ValidationFailed("give the paragraph a title")
    if topic_id is not None and session.get(Topic, topic_id) is None:
        raise ValidationFailed(f"no topic {topic_id}")
    text = _checked_text(text)
    paragraph = StandardParagraph(title=title[:200], topic_id=topic_id, created_by_id=actor_id)
    session.add(paragraph)
    session.flush()
    record(session, actor_id=actor_id, action="paragraph.create", object_type="standard_paragraph",
           object_id=paragraph.id, after={"title": paragraph.title, "topic_id": topic_id})
    return _new_revision(session, paragraph, text, actor_id=actor_id, based_on=None)


def revise_paragraph(session: Session, paragraph_id: int, *, text: str, actor_id: int) -> ParagraphRevision:
    """Propose new words for a paragraph (the approved ones stay in use until these are approved).

    The author of the open proposal edits it in place; anyone else waits until it is decided.
    """
    active_staffer(session, actor_id)
    paragraph = get_paragraph(session, paragraph_id)
    if paragraph.retired:
        raise ValidationFailed("this paragraph is retired; propose a new one instead")
    text = _checked_text(text)
    pending = open_proposal(session, paragraph.id)
    if pending is not None:
        if pending.author_id != actor_id:
            raise PermissionDenied(f"revision {pending.number} is waiting for approval; it must be approved or "
                                   "declined before another change is proposed")
        if pending.text != text:
            record(session, actor_id=actor_id, action="paragraph_revision.edit", object_type="paragraph_revision",
                   object_id=pending.id, before={"chars": len(pending.text)}, after={"chars": len(text)})
            pending.text, pending.text_sha256 = text, sha(text)
        return pending
    current = approved_revision(session, paragraph.id)
    if current is not None and current.text == text:
        raise ValidationFailed("these are the approved words already")
    return _new_revision(session, paragraph, text, actor_id=actor_id, based_on=current)


def approve_revision(session: Session, revision_id: int, *, actor_id: int) -> ParagraphRevision:
    """A supervisor or admin (never the author) approves a proposal; the revision it replaces is retired."""
    revision = get_revision(session, revision_id)
    staffer = active_staffer(session, actor_id)
    if staffer.role not in APPROVERS:
        raise PermissionDenied("only a supervisor approves standard paragraphs")
    if revision.author_id == actor_id:
        raise PermissionDenied("nobody approves their own paragraph; another supervisor must review it")
    if revision.paragraph.retired:
        raise ValidationFailed("this paragraph is retired")
    _checked_text(revision.text)
    previous = approved_revision(session, revision.paragraph_id)
    _move(session, revision, P.APPROVED, actor_id=actor_id, action="paragraph_revision.approve")
    revision.decided_by_id, revision.decided_at = actor_id, utcnow()
    if previous is not None and previous.id != revision.id:
        _move(session, previous, P.RETIRED, actor_id=actor_id, action="paragraph_revision.retire",
              detail=f"replaced by revision {revision.number}")
    return revision


def withdraw_revision(session: Session, revision_id: int, *, actor_id: int, reason: str = "") -> ParagraphRevision:
    """Its author withdraws a proposal, or a supervisor declines it (saying why)."""
    revision = get_revision(session, revision_id)
    staffer = active_staffer(session, actor_id)
    if revision.author_id != actor_id and staffer.role not in APPROVERS:
        raise PermissionDenied("only the author or a supervisor takes a proposal back")
    declined = revision.author_id != actor_id
    if declined and not reason.strip():
        raise ValidationFailed("say why the proposal is declined")
    _move(session, revision, P.WITHDRAWN, actor_id=actor_id,
          action="paragraph_revision.decline" if declined else "paragraph_revision.withdraw",
          detail=reason.strip()[:500] or None)
    revision.decided_by_id, revision.decided_at = actor_id, utcnow()
    return revision


def retire_paragraph(session: Session, paragraph_id: int, *, actor_id: int) -> StandardParagraph:
    """A supervisor retires a paragraph: it is no longer offered, and letters using it no longer count as built
    only from approved paragraphs."""
    paragraph = get_paragraph(session, paragraph_id)
    staffer = active_staffer(session, actor_id)
    if staffer.role not in APPROVERS:
        raise PermissionDenied("only a supervisor retires standard paragraphs")
    if paragraph.retired:
        return paragraph
    for revision in list(paragraph.revisions):
        if revision.state == P.APPROVED:
            _move(session, revision, P.RETIRED, actor_id=actor_id, action="paragraph_revision.retire",
                  detail="the paragraph was retired")
        elif revision.state == P.PROPOSED:
            _move(session, revision, P.WITHDRAWN, actor_id=actor_id, action="paragraph_revision.decline",
                  detail="the paragraph was retired")
    paragraph.retired = True
    record(session, actor_id=actor_id, action="paragraph.retire", object_type="standard_paragraph",
           object_id=paragraph.id, before={"retired": False}, after={"retired": True})
    return paragraph


@dataclass(frozen=True)
class LibraryEntry:
    paragraph: StandardParagraph
    approved: ParagraphRevision | None
    proposed: ParagraphRevision | None


def library(session: Session, *, topic_id: int | None = None, include_retired: bool = False,
            limit: int = 500) -> list[LibraryEntry]:
    """The library page: each paragraph with its approved words and any proposal waiting."""
    query = select(StandardParagraph)
    if topic_id is not None:
        query = query.where(StandardParagraph.topic_id == topic_id)
    if not include_retired:
        query = query.where(StandardParagraph.retired.is_(False))
    paragraphs = list(session.scalars(query.order_by(StandardParagraph.title, StandardParagraph.id).limit(limit)))
    ids = [p.id for p in paragraphs]
    live = list(session.scalars(select(ParagraphRevision).where(
        ParagraphRevision.paragraph_id.in_(ids), ParagraphRevision.state.in_((P.APPROVED, P.PROPOSED))))) if ids else []
    approved = {r.paragraph_id: r for r in live if r.state == P.APPROVED}
    proposed = {r.paragraph_id: r for r in live if r.state == P.PROPOSED}
    return [LibraryEntry(p, approved.get(p.id), proposed.get(p.id)) for p in paragraphs]


def approved_for(session: Session, topic_id: int | None = None) -> list[tuple[StandardParagraph, ParagraphRevision]]:
    """Approved paragraphs a writer may insert: the topic's own and the general ones (all when no topic)."""
    query = (select(StandardParagraph, ParagraphRevision).join(ParagraphRevision)
             .where(ParagraphRevision.state == P.APPROVED, StandardParagraph.retired.is_(False)))
    if topic_id is not None:
        query = query.where(or_(StandardParagraph.topic_id == topic_id, StandardParagraph.topic_id.is_(None)))
        query = query.order_by(StandardParagraph.topic_id.is_(None), StandardParagraph.title)
    else:
        query = query.order_by(StandardParagraph.title)
    return [(p, r) for p, r in session.execute(query.limit(300)).all()]


def with_paragraph(session: Session, body: str, paragraph_id: int) -> str:
    """The body with an approved paragraph's text inserted (see insert_text); refused for any other paragraph."""
    paragraph = get_paragraph(session, paragraph_id)
    revision = approved_revision(session, paragraph.id) if not paragraph.retired else None
    if revision is None:
        raise ValidationFailed(f"“{paragraph.title}” is not an approved paragraph")
    return insert_text(body, revision.text)


# --- letters that skip review ----------------------------------------------------------------------

def may_skip_review(session: Session, version: LetterVersion, *, office_allows: bool) -> bool:
    """Whether this version's author may approve it themselves (the office setting, the words, the subject)."""
    return (office_allows and version.state in (VersionState.DRAFT, VersionState.IN_REVIEW)
            and standard_subject(version.subject) and built_from_approved(session, version.body))


def own_approval_reason(session: Session, version: LetterVersion, *, actor_id: int) -> str:
    """The audit reason an author may approve their own version, or PermissionDenied saying why not.

    Called by drafting.letters.approve only when the office allows it (the setting), so this decides the words.
    """
    active_staffer(session, actor_id)
    if version.author_id != actor_id:
        raise PermissionDenied("only the author approves a version built from approved paragraphs themselves")
    if not standard_subject(version.subject):
        raise PermissionDenied("the subject is not the standard “Re: {{ message.subject }}”, so a supervisor "
                               "must review this version")
    if not built_from_approved(session, version.body):
        raise PermissionDenied("this version is not built only from approved paragraphs, so a supervisor must "
                               "review it")
    return SELF_APPROVAL_REASON


def approve_own(session: Session, version_id: int, *, actor_id: int, office_allows: bool,
                body: str | None = None, subject: str | None = None) -> LetterVersion:
    """The writer approves their own version built only from approved paragraphs (when the office allows it).

    A draft is first saved with the text on the writer's screen (body/subject, when given) and sent for
    review, so what is approved is what they saw; then the one approve path decides (drafting.letters.approve).
    """
    # drafting.letters imports this module for the approve rule, so it is imported here, when used.
    from drafting import letters

    if not office_allows:
        raise PermissionDenied("this office has every letter reviewed by a supervisor "
                               "(MAILROOM_APPROVED_PARAGRAPHS_SKIP_REVIEW is off)")
    version = letters.get_version(session, version_id)
    if version.author_id != actor_id:
        raise PermissionDenied("only the author approves their own version this way")
    if version.state == VersionState.DRAFT:
        body = None if body is None else normalise_newlines(body)  # browsers post CRLF
        subject = version.subject if subject is None else subject.strip()
        if body is not None and (body != normalise_newlines(version.body) or subject != version.subject):
            letters.edit_draft(session, version.id, body=body, subject=subject, actor_id=actor_id)
        letters.submit(session, version.id, actor_id=actor_id)
    return letters.approve(session, version.id, actor_id=actor_id, skip_review=office_allows)
