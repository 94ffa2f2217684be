"""Deciding on a letter version, whoever decides and however: the page, a delegate, a script, a test.

Approving a version is one use case: the approval itself (drafting.letters.approve, with its checks
and audit), and, when the letter is a one-off reply to one message, starting the run that sends it;
the author is told by a notice, and its email copy is an effect. Approving through any path therefore
sends a one-off reply, not only approving through the page.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from correspondence.effects import Done, Effect
from correspondence.models import LetterVersion
from drafting import letters


def _after_approval(session: Session, version: LetterVersion, *, actor_id: int,
                    email_author: bool) -> Done[LetterVersion]:
    """Start a one-off reply's send, and email the author their notice (after the commit)."""
    from drafting.apply import start_run

    effects: list[Effect] = []
    own = version.letter.one_off_message_id
    if own is not None:  # a one-off reply goes out once approved
        run = start_run(session, version.id, message_ids=[own], actor_id=actor_id)
        effects.append(Effect.of("apply_run", run.id))
    if email_author and version.author_id is not None and version.author_id != actor_id:
        effects.append(Effect.of("notice_emails", version.author_id))
    return Done(version, tuple(effects))


def approve_version(session: Session, version_id: int, *, actor_id: int,
                    email_author: bool = True) -> Done[LetterVersion]:
    """A supervisor (or their delegate) approves a version in review; a one-off reply then starts sending.

    email_author: the office sends email (SMTP is set up), so the author's notice gets an email copy;
    without it the notice stays in the app only."""
    version = letters.approve(session, version_id, actor_id=actor_id)
    return _after_approval(session, version, actor_id=actor_id, email_author=email_author)


def approve_own_version(session: Session, version_id: int, *, actor_id: int, office_allows: bool,
                        body: str | None = None, subject: str | None = None) -> Done[LetterVersion]:
    """The author approves their own version built only from approved paragraphs (drafting.paragraphs.approve_own);
    a one-off reply then starts sending."""
    from drafting.paragraphs import approve_own

    version = approve_own(session, version_id, actor_id=actor_id, office_allows=office_allows, body=body,
                          subject=subject)
    return _after_approval(session, version, actor_id=actor_id, email_author=False)  # the author is the actor


def request_changes(session: Session, version_id: int, *, actor_id: int, comment: str,
                    paragraph: int | None = None, email_author: bool = True) -> Done[LetterVersion]:
    """A reviewer sends a version back with a comment; the author's notice is emailed after the commit
    (when email_author: the office sends email)."""
    version = letters.request_changes(session, version_id, comment=comment, actor_id=actor_id, paragraph=paragraph)
    author = version.author_id
    if email_author and author is not None and author != actor_id:
        return Done(version, (Effect.of("notice_emails", author),))
    return Done(version)
