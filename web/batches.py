"""Campaign batches: the list with growth, a batch's template and members, and what staff decide."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from batching import batches as service
from batching import queries
from batching.evidence import Evidence, explain
from batching.templates import evidence_from_pairs
from correspondence.models import AuditEvent, Batch, BatchStatus, Message, Role, Stance, Topic
from correspondence.services.history import history_of
from correspondence.services.staff import list_staff
from web import db_session
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.inputs import BadParameter, id_list, id_or_none, optional_enum, parse_id, required_id
from web.outcome import run_action

log = logging.getLogger(__name__)

bp = Blueprint("batches", __name__, url_prefix="/batches")

DECIDE = (Role.ADMIN, Role.SUPERVISOR, Role.CORRESPONDENT)
SHOWN = {"open": queries.LISTED, "not_campaign": (BatchStatus.NOT_CAMPAIGN,), "merged": (BatchStatus.MERGED,)}
ACTION_NAMES = {"batch.merge": "merge", "batch.split": "split", "batch.remove_member": "removal of a letter",
                "batch.not_campaign": "'not a campaign'", "batch.campaign": "'is a campaign'",
                "batch.assign": "assignment", "batch.topic": "topic", "batch.stance": "stance",
                "batch.add_member": "adding a proposed letter", "batch.reject_member": "'not part of it'"}
# Members per page: each visible member's evidence is computed when the page is drawn.
PAGE_SIZE = 50
# Which stage matched a letter (batching.evidence.STAGES), in words for office staff.
STAGE_NAMES = {"exact": "the same letter word for word", "shingles": "shares long runs of the template's wording",
               "sentences": "its sentences match the template's, some lightly edited",
               "semantic": "says the template's points in other words",
               "none": "little of the template's wording (a person or an earlier run placed it)"}
KIND_LABELS = {"question": "ask a question", "request": "make a request", "story": "tell their own story"}


@bp.route("/")
@roles(*ALL_STAFF)
def index():
    session = db_session()
    show = request.args.get("show", "open")
    if show not in SHOWN:
        raise BadParameter(f"show: {show[:40]!r} is not one of {', '.join(SHOWN)}")
    items = queries.list_batches(session, SHOWN[show])
    grown = queries.growth(session, [b.id for b in items])
    return render_template("batches.html", batches=items, growth=grown, show=show, form=ActionForm(),
                           spark=queries.sparkline_points)


@bp.route("/recluster", methods=["POST"])
@roles(*DECIDE)
def recluster_now():
    """Queue a clustering run of everything not yet in a batch (it also runs every 15 minutes)."""
    from correspondence.effects import Effect
    from web.outcome import after_commit

    if not after_commit((Effect.of("recluster"),)):  # Redis down: say so rather than fail the page
        flash("Could not reach the job queue; clustering still runs on its schedule.", "error")
    else:
        flash("Clustering queued: new batches appear here in a minute or two.", "ok")
    return redirect(url_for("batches.index")), 303


@bp.route("/<int:batch_id>")
@roles(*ALL_STAFF)
def view(batch_id: int):
    session = db_session()
    batch = service.get_batch(session, batch_id)
    kind = request.args.get("kind") or ("any" if request.args.get("added") == "1" else None)
    if kind is not None and kind not in queries.ADDITION_FILTERS:
        raise BadParameter(f"kind: {kind[:40]!r} is not one of {', '.join(queries.ADDITION_FILTERS)}")
    after = request.args.get("after", "")
    page = queries.members(session, batch.id, kind=kind, after_id=parse_id(after), limit=PAGE_SIZE)
    proposed_total, proposed = queries.proposals(session, batch.id)
    events = service.undoable_events(session, batch.id)
    history = history_of(session, "batch", batch.id, limit=20)
    return render_template(
        "batch.html", batch=batch, members=page, kind=kind, kind_labels=KIND_LABELS, stage_names=STAGE_NAMES,
        with_additions=queries.count_with_additions(session, batch.id),
        kind_counts=queries.addition_counts(session, batch.id),
        why=member_evidence(batch, page + [m for _p, m in proposed]),
        proposed=proposed, proposed_total=proposed_total, geo=queries.geography(session, batch.id),
        undoable=undo_names(session, events), history=history,
        others=queries.other_batches(session, batch.id), staff=list_staff(session, active_only=True),
        topics=list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name))),
        stances=list(Stance), form=ActionForm(), page_size=PAGE_SIZE)


def member_evidence(batch: Batch, letters: list[Message]) -> dict[int, Evidence]:
    """Why each visible letter is (or may be) in the batch: batching.evidence.explain against the template
    (score, band, the stage that matched, sentence pairs), its sentences marked for the page.

    Computed for the letters on the page only, so a batch of 50,000 opens as fast as one of 50.
    """
    template = service.template_of(batch)
    return {m.id: evidence_from_pairs(m.body_text or "", explain(m.body_text or "", batch.template_text or "",
                                                                 key=batch.id), template, pinned=m.batch_pinned)
            for m in letters}


# Decisions about one letter: the undo list names the letter ("removing the letter from Ana Ruiz").
LETTER_ACTIONS = {"batch.remove_member": "removing {}", "batch.add_member": "adding {}",
                  "batch.reject_member": "'not part of it' for {}"}


def undo_names(session: Session, events: list[AuditEvent]) -> list[tuple[AuditEvent, str]]:
    """Each undoable decision with the words its Undo button uses; one query for the letters named."""
    ids = {int(e.before["message_id"]) for e in events
           if e.action in LETTER_ACTIONS and isinstance(e.before, dict) and e.before.get("message_id")}
    letters = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))} if ids else {}
    named = []
    for e in events:
        name = ACTION_NAMES.get(e.action, "a change")
        if e.action in LETTER_ACTIONS and isinstance(e.before, dict) and e.before.get("message_id"):
            name = LETTER_ACTIONS[e.action].format(_letter_name(letters.get(int(e.before["message_id"]))))
        named.append((e, name))
    return named


def _letter_name(letter: Message | None) -> str:
    if letter is None:
        return "a letter"
    who = letter.from_name or letter.from_address
    return f"the letter from {who}" if who else "a letter without a sender"


def _decide(batch_id: int, work: Callable[[Session, int], tuple[str, int]]):
    """One staff decision on a batch; each is audited and listed under "Undo" on the batch page.
    work(session, me) -> (message, the batch to show next)."""
    session = db_session()

    def step() -> tuple[str, str]:
        message, target = work(session, current_user.id)
        return message, url_for("batches.view", batch_id=target)

    return run_action(session, step, back=url_for("batches.view", batch_id=batch_id))


def _chosen(name: str) -> int | None:
    """An id from the form; empty or "none" is no choice (unassign, no topic)."""
    return id_or_none(request.form.get(name) or None, name)


@bp.route("/<int:batch_id>/merge", methods=["POST"])
@roles(*DECIDE)
def merge(batch_id: int):
    def work(session: Session, me: int) -> tuple[str, int]:
        other = required_id(request.form.get("other_id"), "other_id", missing="choose the batch to merge into this one")
        service.merge_batches(session, batch_id, other, actor_id=me)
        return f"Batch {other} merged into this one.", batch_id

    return _decide(batch_id, work)


@bp.route("/<int:batch_id>/split", methods=["POST"])
@roles(*DECIDE)
def split(batch_id: int):
    def work(session: Session, me: int) -> tuple[str, int]:
        new = service.split_members(session, batch_id, id_list(request.form.getlist("message_id")), actor_id=me)
        return f"{new.member_count} letters split into batch {new.id}.", new.id

    return _decide(batch_id, work)


@bp.route("/<int:batch_id>/remove", methods=["POST"])
@roles(*DECIDE)
def remove(batch_id: int):
    def work(session: Session, me: int) -> tuple[str, int]:
        removed = required_id(request.form.get("message_id"), "message_id", missing="choose the letter to remove")
        service.remove_member(session, batch_id, removed, actor_id=me)
        return f"Message {removed} removed from the batch; clustering will leave it out.", batch_id

    return _decide(batch_id, work)


@bp.route("/<int:batch_id>/not_campaign", methods=["POST"])
@roles(*DECIDE)
def not_campaign(batch_id: int):
    def work(session: Session, me: int) -> tuple[str, int]:
        service.set_not_campaign(session, batch_id, True, actor_id=me)
        return "Marked as not a campaign.", batch_id

    return _decide(batch_id, work)


@bp.route("/<int:batch_id>/campaign", methods=["POST"])
@roles(*DECIDE)
def campaign(batch_id: int):
    def work(session: Session, me: int) -> tuple[str, int]:
        service.set_not_campaign(session, batch_id, False, actor_id=me)
        return "Marked as a campaign again.", batch_id

    return _decide(batch_id, work)


@bp.route("/<int:batch_id>/assign", methods=["POST"])
@roles(*DECIDE)
def assign(batch_id: int):
    def work(session: Session, me: int) -> tuple[str, int]:
        batch = service.assign_batch(session, batch_id, _chosen("staffer_id"), actor_id=me)
        return f"Batch and its open letters {'assigned' if batch.assignee_id else 'unassigned'}.", batch_id

    return _decide(batch_id, work)


@bp.route("/<int:batch_id>/topic", methods=["POST"])
@roles(*DECIDE)
def topic(batch_id: int):
    def work(session: Session, me: int) -> tuple[str, int]:
        service.set_batch_topic(session, batch_id, _chosen("topic_id"), actor_id=me)
        return "Topic set on the batch and every letter in it.", batch_id

    return _decide(batch_id, work)


@bp.route("/<int:batch_id>/stance", methods=["POST"])
@roles(*DECIDE)
def stance(batch_id: int):
    def work(session: Session, me: int) -> tuple[str, int]:
        service.set_batch_stance(session, batch_id, optional_enum(Stance, request.form.get("stance"), "stance"),
                                 actor_id=me)
        return "Stance set on the batch and every letter in it.", batch_id

    return _decide(batch_id, work)


@bp.route("/<int:batch_id>/undo", methods=["POST"])
@roles(*DECIDE)
def undo(batch_id: int):
    def work(session: Session, me: int) -> tuple[str, int]:
        event_id = required_id(request.form.get("event_id"), "event_id", missing="choose the change to undo")
        service.undo(session, event_id, actor_id=me)
        return "Undone.", batch_id

    return _decide(batch_id, work)


def _letter_from(letter: Message | None) -> str:
    """The proposals list names letters by their sender, so the flash after a decision does too."""
    if letter is None:
        return "The letter"
    who = letter.from_name or letter.from_address
    return f"The letter from {who} (message {letter.id})" if who else f"Message {letter.id}"


@bp.route("/<int:batch_id>/proposals/<int:message_id>/add", methods=["POST"])
@roles(*DECIDE)
def add_proposal(batch_id: int, message_id: int):
    """A letter listed as "possibly part of this campaign" joins it (audited; undo on the batch page)."""
    session = db_session()

    def decide() -> tuple[str, str]:
        letter = service.add_proposed(session, batch_id, message_id, actor_id=current_user.id)
        return (f"{_letter_from(letter)} added to the batch.", url_for("batches.view", batch_id=batch_id))

    return run_action(session, decide, back=url_for("batches.view", batch_id=batch_id))


@bp.route("/<int:batch_id>/proposals/<int:message_id>/reject", methods=["POST"])
@roles(*DECIDE)
def reject_proposal(batch_id: int, message_id: int):
    """A listed letter is not part of this campaign: it is never proposed for it or joined to it again."""
    session = db_session()

    def decide() -> tuple[str, str]:
        service.reject_proposed(session, batch_id, message_id, actor_id=current_user.id)
        letter = session.get(Message, message_id)
        return (f"{_letter_from(letter)} is not part of this batch; it will not be proposed again.",
                url_for("batches.view", batch_id=batch_id))

    return run_action(session, decide, back=url_for("batches.view", batch_id=batch_id))
