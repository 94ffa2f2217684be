"""The form-letter library and the review/approval state machine of its versions.

    draft ──submit──▶ in_review ──approve──▶ approved ──(a newer version approved, or retire)──▶ retired
                          └──request changes──▶ changes_requested ──new version──▶ (new) draft

Only a supervisor or an admin approves or requests changes, never on their own version (or a
staffer they delegated approval to while away: drafting.delegation); an approved version is never
edited (editing makes a new version). Every transition is audited, and the author is told of each
decision by a notice (correspondence.services.notices).

Line endings are normalised to "\n" when a letter is saved (a browser posts "\r\n"), and paragraphs
(for review comments and the diff) are split on blank lines whatever the line endings.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    ApplyRun,
    Batch,
    FormLetter,
    LetterVersion,
    Message,
    ReviewComment,
    Role,
    Staffer,
    Stance,
    Topic,
    VersionState,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.services.notices import notify
from correspondence.services.staff import active_staffer
from correspondence.states import StateMachine
from correspondence.text import normalise_newlines
from drafting.delegation import active_delegation
from drafting.paragraphs import own_approval_reason
from drafting.render import validate

V = VersionState
TRANSITIONS: dict[VersionState, frozenset[VersionState]] = {
    V.DRAFT: frozenset({V.IN_REVIEW}),
    V.IN_REVIEW: frozenset({V.APPROVED, V.CHANGES_REQUESTED}),
    V.CHANGES_REQUESTED: frozenset(),  # a new draft version carries the changes
    V.APPROVED: frozenset({V.RETIRED}),
    V.RETIRED: frozenset(),
}
# Who may review is decided by the services below (a supervisor or admin, or their delegate; never the author).
VERSIONS = StateMachine(VersionState, TRANSITIONS, "letter_version", noun="version")
APPROVERS = (Role.SUPERVISOR, Role.ADMIN)


def get_version(session: Session, version_id: int) -> LetterVersion:
    version = session.get(LetterVersion, version_id)
    if version is None:
        raise NotFound(f"no letter version {version_id}")
    return version


def get_letter(session: Session, letter_id: int) -> FormLetter:
    letter = session.get(FormLetter, letter_id)
    if letter is None:
        raise NotFound(f"no form letter {letter_id}")
    return letter


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def paragraphs(body: str) -> list[str]:
    """The letter's paragraphs (separated by blank lines), as review comments number them from 1."""
    return [p.strip("\n") for p in _PARAGRAPH_BREAK.split(normalise_newlines(body)) if p.strip()]


def _check(subject: str, body: str) -> None:
    problems = validate(body) + [f"subject: {p}" for p in validate(subject)]
    if not body.strip():
        problems.insert(0, "the letter is empty")
    if problems:
        raise ValidationFailed("; ".join(problems))


def _move(session: Session, version: LetterVersion, target: VersionState, *, actor_id: int, action: str,
          detail: str | None = None, on_behalf_of: Staffer | None = None) -> LetterVersion:
    after: dict[str, object] = {}
    if on_behalf_of is not None:  # a delegate's decision names the supervisor it was made for
        after["on_behalf_of"] = on_behalf_of.id
        detail = f"on behalf of {on_behalf_of.name}" + (f": {detail}" if detail else "")
    return VERSIONS.move(session, version, target, actor_id=actor_id, action=action, detail=detail, after=after,
                         on_behalf_of_id=on_behalf_of.id if on_behalf_of is not None else None)


def create_letter(session: Session, *, title: str, body: str, subject: str = "", topic_id: int | None = None,
                  stance: Stance | None = None, tags: Sequence[str] = (), actor_id: int) -> LetterVersion:
    active_staffer(session, actor_id)
    title = title.strip()
    if not title:
        raise ValidationFailed("give the letter a title")
    if topic_id is not None and session.get(Topic, topic_id) is None:
        raise ValidationFailed(f"no topic {topic_id}")
    subject = normalise_newlines(subject).strip() or "Re: {{ message.subject }}"
    body = normalise_newlines(body)
    _check(subject, body)
    letter = FormLetter(title=title[:300], topic_id=topic_id, stance=stance,
                        tags=sorted({t.strip().lower() for t in tags if t.strip()}), created_by_id=actor_id)
    session.add(letter)
    session.flush()
    version = LetterVersion(letter_id=letter.id, number=1, subject=subject[:300], body=body, author_id=actor_id)
    session.add(version)
    session.flush()
    record(session, actor_id=actor_id, action="letter.create", object_type="form_letter", object_id=letter.id,
           after={"title": letter.title, "version_id": version.id})
    return version


def start_reply(session: Session, message_id: int, *, subject: str, body: str, actor_id: int) -> LetterVersion:
    """A one-off reply to one message, put through review like any letter (the office requires it)."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(f"no message {message_id}")
    version = create_letter(session, title=f"Reply to message {message_id}: {message.subject or ''}"[:300],
                            body=body, subject=subject, topic_id=message.topic_id, actor_id=actor_id)
    version.letter.one_off_message_id = message_id
    return submit(session, version.id, actor_id=actor_id)


def edit_draft(session: Session, version_id: int, *, body: str, subject: str, actor_id: int) -> LetterVersion:
    version = get_version(session, version_id)
    if version.state != V.DRAFT:
        raise ValidationFailed("only a draft can be edited; make a new version of this one instead")
    if version.author_id != actor_id:
        raise PermissionDenied("only the author edits a draft; make your own version of it")
    body, subject = normalise_newlines(body), normalise_newlines(subject)
    _check(subject, body)
    before = {"subject": version.subject, "body_chars": len(version.body)}
    version.body, version.subject = body, subject.strip()[:300]
    record(session, actor_id=actor_id, action="letter_version.edit", object_type="letter_version",
           object_id=version.id, before=before, after={"subject": version.subject, "body_chars": len(body)})
    return version


def new_version(session: Session, version_id: int, *, actor_id: int) -> LetterVersion:
    """Start a new draft from any version (the way to change an approved or returned letter)."""
    active_staffer(session, actor_id)
    source = get_version(session, version_id)
    number = (session.scalar(select(func.max(LetterVersion.number))
                             .where(LetterVersion.letter_id == source.letter_id)) or 0) + 1
    version = LetterVersion(letter_id=source.letter_id, number=number, subject=source.subject, body=source.body,
                            author_id=actor_id, based_on_id=source.id)
    session.add(version)
    session.flush()
    record(session, actor_id=actor_id, action="letter_version.create", object_type="letter_version",
           object_id=version.id, after={"letter_id": source.letter_id, "number": number, "based_on": source.id})
    return version


def submit(session: Session, version_id: int, *, actor_id: int, subject: str | None = None,
           body: str | None = None) -> LetterVersion:
    """Send a draft for review. Given the editor's subject and body, save them first (the same checks
    as edit_draft), so what goes to review is always what the writer sees; if they cannot be saved,
    nothing is sent."""
    version = get_version(session, version_id)
    if version.author_id != actor_id:
        raise PermissionDenied("the author submits their own draft for review")
    if version.state == V.DRAFT and (subject is not None or body is not None):
        new_subject = normalise_newlines(subject if subject is not None else version.subject).strip()[:300]
        new_body = normalise_newlines(body if body is not None else version.body)
        if (new_subject, new_body) != (version.subject, version.body):
            try:
                edit_draft(session, version.id, body=new_body, subject=new_subject, actor_id=actor_id)
            except ValidationFailed as exc:
                raise ValidationFailed(f"Not sent for review: your changes could not be saved ({exc}). "
                                       "Correct the letter and send it again.") from exc
    _check(version.subject, version.body)
    version.submitted_at = utcnow()
    return _move(session, version, V.IN_REVIEW, actor_id=actor_id, action="letter_version.submit")


def _reviewer(session: Session, version: LetterVersion, actor_id: int) -> tuple[Staffer, Staffer | None]:
    """The reviewer, and the supervisor they act for when approval was delegated to them (else None)."""
    staffer = active_staffer(session, actor_id)
    on_behalf_of = None
    if staffer.role not in APPROVERS:
        delegation = active_delegation(session, actor_id)
        if delegation is None:
            raise PermissionDenied("only a supervisor approves letters")
        on_behalf_of = delegation.supervisor
    if version.author_id == actor_id:
        raise PermissionDenied("nobody approves their own version; another supervisor must review it")
    return staffer, on_behalf_of


def may_review(session: Session, staffer_id: int) -> bool:
    """A supervisor or admin, or a staffer approving for one while they are away."""
    staffer = session.get(Staffer, staffer_id)
    if staffer is None or not staffer.active:
        return False
    return staffer.role in APPROVERS or active_delegation(session, staffer_id) is not None


def _tell_author(session: Session, version: LetterVersion, reviewer: Staffer, on_behalf_of: Staffer | None,
                 kind: str, what: str, comment: str = "") -> None:
    if version.author_id is None or version.author_id == reviewer.id:
        return
    who = reviewer.name + (f" (for {on_behalf_of.name})" if on_behalf_of else "")
    text = f"{who} {what} \u201c{version.letter.title}\u201d version {version.number}"
    if comment.strip():
        text += f": {comment.strip()}"
    notify(session, version.author_id, kind=kind, link=f"/letters/versions/{version.id}", actor_id=reviewer.id,
           text=text[:500])


def approve(session: Session, version_id: int, *, actor_id: int, skip_review: bool = False) -> LetterVersion:
    """The approval state move itself. Callers deciding for a person use drafting.review.approve_version,
    which also starts a one-off reply's send. skip_review: the office lets an author approve their own
    version built only from approved paragraphs."""
    version = get_version(session, version_id)
    why, on_behalf_of = None, None
    if skip_review and version.author_id == actor_id:  # only when built from approved paragraphs; audited why
        why = own_approval_reason(session, version, actor_id=actor_id)
        reviewer = active_staffer(session, actor_id)
    else:
        reviewer, on_behalf_of = _reviewer(session, version, actor_id)
    _check(version.subject, version.body)
    _move(session, version, V.APPROVED, actor_id=actor_id, action="letter_version.approve", detail=why,
          on_behalf_of=on_behalf_of)
    version.decided_by_id, version.decided_at = actor_id, utcnow()
    letter = version.letter
    previous = session.get(LetterVersion, letter.current_version_id) if letter.current_version_id else None
    if previous is not None and previous.id != version.id and previous.state == V.APPROVED:
        _move(session, previous, V.RETIRED, actor_id=actor_id, action="letter_version.retire",
              detail=f"replaced by version {version.number}")
    letter.current_version_id = version.id
    _tell_author(session, version, reviewer, on_behalf_of, "letter.approved", "approved")
    return version


def request_changes(session: Session, version_id: int, *, comment: str, actor_id: int,
                    paragraph: int | None = None) -> LetterVersion:
    version = get_version(session, version_id)
    reviewer, on_behalf_of = _reviewer(session, version, actor_id)
    if not comment.strip():
        raise ValidationFailed("say what should change")
    add_comment(session, version.id, text=comment, paragraph=paragraph, actor_id=actor_id)
    version.decided_by_id, version.decided_at = actor_id, utcnow()
    _move(session, version, V.CHANGES_REQUESTED, actor_id=actor_id, action="letter_version.request_changes",
          detail=comment[:500], on_behalf_of=on_behalf_of)
    _tell_author(session, version, reviewer, on_behalf_of, "letter.changes_requested",
                 f"asked for changes to{' paragraph ' + str(paragraph) + ' of' if paragraph else ''}",
                 comment)
    return version


def add_comment(session: Session, version_id: int, *, text: str, actor_id: int,
                paragraph: int | None = None) -> ReviewComment:
    version = get_version(session, version_id)
    if not text.strip():
        raise ValidationFailed("the comment is empty")
    if paragraph is not None and paragraph > len(paragraphs(version.body)):
        raise ValidationFailed(f"this version has {len(paragraphs(version.body))} paragraphs, not {paragraph}")
    comment = ReviewComment(version_id=version_id, author_id=actor_id, text=text.strip()[:5000],
                            paragraph=paragraph if paragraph and paragraph > 0 else None)
    session.add(comment)
    session.flush()
    record(session, actor_id=actor_id, action="letter_version.comment", object_type="letter_version",
           object_id=version_id, after={"comment_id": comment.id, "paragraph": comment.paragraph})
    return comment


def retire_letter(session: Session, letter_id: int, *, actor_id: int) -> FormLetter:
    letter = get_letter(session, letter_id)
    staffer = active_staffer(session, actor_id)
    if staffer.role not in APPROVERS:
        raise PermissionDenied("only a supervisor retires letters")
    if not letter.retired:
        letter.retired = True
        current = session.get(LetterVersion, letter.current_version_id) if letter.current_version_id else None
        if current is not None and current.state == V.APPROVED:
            _move(session, current, V.RETIRED, actor_id=actor_id, action="letter_version.retire")
        record(session, actor_id=actor_id, action="letter.retire", object_type="form_letter", object_id=letter.id,
               before={"retired": False}, after={"retired": True})
    return letter


def copy_letter(session: Session, letter_id: int, *, actor_id: int) -> LetterVersion:
    letter = get_letter(session, letter_id)
    current = session.get(LetterVersion, letter.current_version_id) if letter.current_version_id else None
    source = current or session.scalar(
        select(LetterVersion).where(LetterVersion.letter_id == letter.id).order_by(LetterVersion.number.desc()))
    if source is None:
        raise ValidationFailed("this letter has no version to copy")
    return create_letter(session, title=f"Copy of {letter.title}"[:300], body=source.body, subject=source.subject,
                         topic_id=letter.topic_id, stance=letter.stance, tags=letter.tags, actor_id=actor_id)


def search_letters(session: Session, *, text: str = "", topic_id: int | None = None, stance: Stance | None = None,
                   include_retired: bool = False, limit: int = 200) -> list[FormLetter]:
    query = select(FormLetter)
    if text.strip():
        like = f"%{text.strip().lower()}%"
        query = query.where(or_(func.lower(FormLetter.title).like(like),
                                func.lower(func.cast(FormLetter.tags, type_=FormLetter.title.type)).like(like)))
    if topic_id is not None:
        query = query.where(FormLetter.topic_id == topic_id)
    if stance is not None:
        query = query.where(FormLetter.stance == stance)
    if not include_retired:
        query = query.where(FormLetter.retired.is_(False))
    query = query.where(FormLetter.one_off_message_id.is_(None))
    return list(session.scalars(query.order_by(FormLetter.last_used_at.desc().nulls_last(), FormLetter.title)
                                .limit(limit)))


_WORDS = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(op, text) pieces: op is "same", "del" or "add"; whitespace kept so the text reads naturally."""
    a, b = _WORDS.findall(normalise_newlines(old)), _WORDS.findall(normalise_newlines(new))
    pieces: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            pieces.append(("same", "".join(a[i1:i2])))
        if tag in ("delete", "replace"):
            pieces.append(("del", "".join(a[i1:i2])))
        if tag in ("insert", "replace"):
            pieces.append(("add", "".join(b[j1:j2])))
    return pieces


# Two paragraphs this alike (difflib's ratio on their words) are one paragraph changed, shown word by word;
# less alike, the old one is shown removed and the new one added.
SAME_PARAGRAPH = 0.5


@dataclass
class ParagraphChange:
    """One paragraph of the diff: op is "same", "del", "add" or "changed" (then words holds the word diff)."""

    op: str
    text: str
    words: list[tuple[str, str]] = field(default_factory=list)


def paragraph_diff(old: str, new: str) -> list[ParagraphChange]:
    """The changes from one version's body to another's, paragraph by paragraph, words inside changed ones."""
    a, b = paragraphs(old), paragraphs(new)
    result: list[ParagraphChange] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            result.extend(ParagraphChange("same", p) for p in a[i1:i2])
            continue
        olds, news = a[i1:i2], b[j1:j2]
        # Pair old and new paragraphs in order while they stay alike; the rest are removed or added.
        while olds and news:
            ratio = difflib.SequenceMatcher(a=_WORDS.findall(olds[0]), b=_WORDS.findall(news[0]),
                                            autojunk=False).ratio()
            if ratio < SAME_PARAGRAPH:
                break
            result.append(ParagraphChange("changed", news[0], word_diff(olds.pop(0), news[0])))
            news.pop(0)
        result.extend(ParagraphChange("del", p) for p in olds)
        result.extend(ParagraphChange("add", p) for p in news)
    return result


# Versions waiting longer than these are flagged on the approval queue (the longest that applies).
AGE_FLAGS: tuple[tuple[timedelta, str], ...] = ((timedelta(hours=72), "over 72 h"), (timedelta(hours=24), "over 24 h"))


@dataclass
class QueueItem:
    """A version in review with the batches waiting on it, the letters it holds back and how long it waited."""

    version: LetterVersion
    batches: list[tuple[Batch, int]]
    held: int
    waited: timedelta
    flag: str | None

    def __getitem__(self, index: int) -> object:  # (version, batches, held), as callers index it
        return (self.version, self.batches, self.held)[index]

    @property
    def waited_text(self) -> str:
        hours = int(self.waited.total_seconds() // 3600)
        if hours < 1:
            return f"{max(0, int(self.waited.total_seconds() // 60))} min"
        return f"{hours} h" if hours < 48 else f"{hours // 24} days {hours % 24} h"


def review_age(version: LetterVersion, now: datetime) -> tuple[timedelta, str | None]:
    """How long a version has been in review (since submitted_at), and its age flag, if any."""
    waited = now - (version.submitted_at or version.created_at)
    return waited, next((label for limit, label in AGE_FLAGS if waited > limit), None)


def approval_queue(session: Session, now: datetime | None = None) -> list[QueueItem]:
    """Versions in review, oldest first, each with the batches waiting on its letter and their size.

    A batch waits on a letter when the letter's topic and stance match the batch's (or a run of an
    earlier version of the letter was applied to it). The one holding the most letters is seen first.
    """
    now = now or utcnow()
    pending = list(session.scalars(select(LetterVersion).where(LetterVersion.state == V.IN_REVIEW)
                                   .order_by(LetterVersion.submitted_at, LetterVersion.id)))
    result: list[QueueItem] = []
    for version in pending:
        letter = version.letter
        waiting: list[tuple[Batch, int]] = []
        if letter.one_off_message_id is not None:
            result.append(QueueItem(version, [], 1, *review_age(version, now)))
            continue
        if letter.topic_id is not None:
            query = select(Batch).where(Batch.topic_id == letter.topic_id, Batch.status.in_(("open",
                                                                                            "letter_pending")))
            if letter.stance is not None:
                query = query.where(Batch.stance == letter.stance)
            waiting = [(b, b.member_count) for b in session.scalars(query.order_by(Batch.member_count.desc())
                                                                     .limit(5))]
        result.append(QueueItem(version, waiting, sum(n for _b, n in waiting), *review_age(version, now)))
    result.sort(key=lambda item: (-item.held, item.version.submitted_at or item.version.created_at))
    return result


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count(LetterVersion.id)).where(LetterVersion.state == V.IN_REVIEW)) or 0


def letter_history(session: Session, letter_id: int) -> list[LetterVersion]:
    return list(session.scalars(select(LetterVersion).where(LetterVersion.letter_id == letter_id)
                                .order_by(LetterVersion.number.desc())))


def runs_of(session: Session, letter_id: int) -> list[ApplyRun]:
    return list(session.scalars(select(ApplyRun).join(LetterVersion, LetterVersion.id == ApplyRun.version_id)
                                .where(LetterVersion.letter_id == letter_id).order_by(ApplyRun.id.desc())
                                .limit(20)))


def sample_message(session: Session, letter: FormLetter) -> Message | None:
    """A real message to preview the letter with: one on the letter's topic if there is one."""
    query = select(Message).where(Message.constituent_id.is_not(None))
    if letter.topic_id is not None:
        found = session.scalar(query.where(Message.topic_id == letter.topic_id).order_by(Message.id.desc()).limit(1))
        if found is not None:
            return found
    return session.scalar(query.order_by(Message.id.desc()).limit(1))
