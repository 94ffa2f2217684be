"""The paragraph library: standard paragraphs (writers propose, supervisors approve), and inserting them.

Inserting works without JavaScript: each paragraph is a submit button of the letter's own form, so the
text on the screen is posted with it, the server inserts the paragraph (drafting.paragraphs.insert_text)
and shows the form again (a new letter, a reply) or saves the draft (the draft editor).
static/paragraphs.js makes the same buttons insert at the cursor without a round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.errors import DomainError, NotFound, ValidationFailed
from correspondence.models import LetterVersion, ParagraphRevision, StandardParagraph, Topic
from drafting import letters
from drafting import paragraphs as service
from web import db_session, settings
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.inputs import optional_id, parse_id
from web.outcome import run_action

bp = Blueprint("paragraphs", __name__)

WRITERS = ALL_STAFF


def _topics(session: Session) -> list[Topic]:
    return list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name)))


def _library_page(session: Session, *, values: Mapping[str, str], error: str | None = None):
    topic_id = optional_id(request.args.get("topic"), "topic")
    entries = service.library(session, topic_id=topic_id, include_retired=request.args.get("retired") == "1")
    return render_template("paragraphs.html", entries=entries, topics=_topics(session), args=request.args,
                           values=values, error=error, form=ActionForm()), 400 if error else 200


@bp.route("/paragraphs/")
@roles(*WRITERS)
def library():
    return _library_page(db_session(), values={})


@bp.route("/paragraphs/new", methods=["POST"])
@roles(*WRITERS)
def propose():
    session = db_session()
    f = request.form
    try:
        revision = service.propose_paragraph(session, title=f.get("title", ""), text=f.get("text", ""),
                                             topic_id=optional_id(f.get("topic_id"), "topic"),
                                             actor_id=current_user.id)
    except DomainError as exc:
        session.rollback()
        return _library_page(session, values=f, error=str(exc))
    session.commit()
    flash("Paragraph proposed: writers can insert it once a supervisor approves it.", "ok")
    return redirect(url_for("paragraphs.paragraph", paragraph_id=revision.paragraph_id)), 303


@bp.route("/paragraphs/<int:paragraph_id>")
@roles(*WRITERS)
def paragraph(paragraph_id: int):
    session = db_session()
    item = service.get_paragraph(session, paragraph_id)
    return render_template("paragraph.html", paragraph=item, approved=service.approved_revision(session, item.id),
                           proposed=service.open_proposal(session, item.id),
                           revisions=sorted(item.revisions, key=lambda r: -r.number), form=ActionForm(),
                           approver=current_user.role in service.APPROVERS)


def _revision_id(session: Session, paragraph_id: int) -> int:
    """The revision of this paragraph the form names (a revision of another paragraph is not found)."""
    value = optional_id(request.form.get("revision_id"), "revision")
    revision = session.get(ParagraphRevision, value) if value else None
    if revision is None or revision.paragraph_id != paragraph_id:
        raise NotFound("no such revision of this paragraph")
    return revision.id


def _on_paragraph(paragraph_id: int, work: Callable[[Session], str]):
    """Run one decision on a paragraph that exists, and come back to its page."""
    session = db_session()
    here = url_for("paragraphs.paragraph", paragraph_id=paragraph_id)

    def step() -> tuple[str, str]:
        service.get_paragraph(session, paragraph_id)
        return work(session), here

    return run_action(session, step, back=here)


@bp.route("/paragraphs/<int:paragraph_id>/revise", methods=["POST"])
@roles(*WRITERS)
def revise(paragraph_id: int):
    def work(session: Session) -> str:
        revision = service.revise_paragraph(session, paragraph_id, text=request.form.get("text", ""),
                                            actor_id=current_user.id)
        return f"Revision {revision.number} proposed: the approved words stay in use until it is approved."

    return _on_paragraph(paragraph_id, work)


@bp.route("/paragraphs/<int:paragraph_id>/approve", methods=["POST"])
@roles(*service.APPROVERS)
def approve(paragraph_id: int):
    def work(session: Session) -> str:
        revision = service.approve_revision(session, _revision_id(session, paragraph_id), actor_id=current_user.id)
        return f"Revision {revision.number} approved: writers can insert it now."

    return _on_paragraph(paragraph_id, work)


@bp.route("/paragraphs/<int:paragraph_id>/withdraw", methods=["POST"])
@roles(*WRITERS)  # the author takes their proposal back, or a supervisor declines it: the service checks
def withdraw(paragraph_id: int):
    def work(session: Session) -> str:
        service.withdraw_revision(session, _revision_id(session, paragraph_id), actor_id=current_user.id,
                                  reason=request.form.get("reason", ""))
        return "Proposal taken back."

    return _on_paragraph(paragraph_id, work)


@bp.route("/paragraphs/<int:paragraph_id>/retire", methods=["POST"])
@roles(*service.APPROVERS)
def retire(paragraph_id: int):
    def work(session: Session) -> str:
        service.retire_paragraph(session, paragraph_id, actor_id=current_user.id)
        return "Paragraph retired: it is no longer offered to writers."

    return _on_paragraph(paragraph_id, work)


@bp.route("/letters/versions/<int:version_id>/insert-paragraph", methods=["POST"])
@roles(*WRITERS)
def insert_into_draft(version_id: int):
    """The draft editor's insert without JavaScript: the text on the screen, with the paragraph, saved."""
    session = db_session()
    f = request.form
    back = url_for("letters.version", version_id=version_id)

    def work() -> tuple[str, str]:
        paragraph_id = optional_id(f.get("insert_paragraph"), "paragraph")
        if paragraph_id is None:
            raise ValidationFailed("choose a paragraph to insert")
        version = letters.get_version(session, version_id)
        body = service.with_paragraph(session, f.get("body", version.body), paragraph_id)
        letters.edit_draft(session, version_id, body=body, subject=f.get("subject", version.subject),
                           actor_id=current_user.id)
        return "Paragraph inserted and the draft saved.", back

    return run_action(session, work, back=back)


def posted_with_paragraph(session: Session, form: Mapping[str, str]) -> tuple[str, str | None]:
    """For the new-letter and reply pages: the posted body with the chosen paragraph inserted, or it and why not."""
    body = form.get("body", "")
    try:
        paragraph_id = optional_id(form.get("insert_paragraph"), "paragraph")
        if paragraph_id is None:
            raise ValidationFailed("choose a paragraph to insert")
        return service.with_paragraph(session, body, paragraph_id), None
    except DomainError as exc:
        return body, str(exc)


def own_approval_notice(session: Session, version: LetterVersion) -> str | None:
    """What the writer of a reply that may skip review is told instead of "sent to a supervisor"."""
    if service.may_skip_review(session, version, office_allows=settings().approved_paragraphs_skip_review):
        return ("Reply saved. It is built only from approved paragraphs, so you may approve it yourself: "
                "it then goes out at once.")
    return None


@bp.app_context_processor
def _paragraph_helpers() -> dict[str, object]:
    """For _insert_paragraph.html on the letter pages; each runs a query only when a page calls it."""

    def approved_paragraphs(topic_id: object = None) -> list[tuple[StandardParagraph, ParagraphRevision]]:
        topic = parse_id(str(topic_id)) if topic_id not in (None, "") else None
        return service.approved_for(db_session(), topic)

    def built_from_approved(body: str | None) -> bool:
        return bool(body) and service.built_from_approved(db_session(), body or "")

    def may_approve_own(version: LetterVersion) -> bool:
        return (current_user.is_authenticated and version.author_id == current_user.id
                and service.may_skip_review(db_session(), version,
                                            office_allows=settings().approved_paragraphs_skip_review))

    return {"approved_paragraphs": approved_paragraphs, "built_from_approved": built_from_approved,
            "may_approve_own": may_approve_own}
