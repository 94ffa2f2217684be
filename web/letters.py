"""Form letters: the library, the editor with preview, review and approval, and apply to all."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from correspondence.errors import DomainError, NotFound, ValidationFailed
from correspondence.models import ApplyRun, LetterVersion, ReviewComment, Role, Stance, Topic, VersionState
from correspondence.services.blobs import load_blob
from correspondence.services.history import history_of
from drafting import letters as service
from drafting.apply import batch_message_ids, budget_of, office_of, plan, start_run
from drafting.printing import mail_house_csv, print_responses
from drafting.render import FIELD_LIST, LetterError, context, render
from web import db_session, settings
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.inputs import parse_id

log = logging.getLogger(__name__)

bp = Blueprint("letters", __name__)

WRITERS = ALL_STAFF
APPROVERS = (Role.SUPERVISOR, Role.ADMIN)
SENDERS = (Role.ADMIN, Role.SUPERVISOR, Role.CORRESPONDENT)


def _topics(session):  # type: ignore[no-untyped-def]
    return list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name)))


def _optional_int(raw: str | None, name: str) -> int | None:
    if not raw:
        return None
    value = parse_id(raw)
    if value is None:
        raise ValidationFailed(f"{name}: {raw[:40]!r} is not a number")
    return value


def _stance(raw: str | None) -> Stance | None:
    try:
        return Stance(raw) if raw else None
    except ValueError as exc:
        raise ValidationFailed(f"stance: {raw!r} is not a stance") from exc


@bp.route("/letters/")
@roles(*WRITERS)
def library():  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        topic_id = _optional_int(request.args.get("topic"), "topic")
        stance = _stance(request.args.get("stance"))
    except ValidationFailed as exc:
        abort(400, description=str(exc))
    found = service.search_letters(session, text=request.args.get("q", "")[:200], topic_id=topic_id, stance=stance,
                                   include_retired=request.args.get("retired") == "1")
    return render_template("letters.html", letters=found, topics=_topics(session), stances=list(Stance),
                           args=request.args, form=ActionForm())


@bp.route("/letters/new", methods=["GET", "POST"])
@roles(*WRITERS)
def new():  # type: ignore[no-untyped-def]
    session = db_session()
    form = ActionForm()
    error = None
    if request.method == "POST":
        f = request.form
        try:
            version = service.create_letter(
                session, title=f.get("title", ""), body=f.get("body", ""), subject=f.get("subject", ""),
                topic_id=_optional_int(f.get("topic_id"), "topic"), stance=_stance(f.get("stance")),
                tags=f.get("tags", "").split(","), actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            error = str(exc)
        else:
            session.commit()
            flash("Letter saved as a draft. Preview it, then send it for review.", "ok")
            return redirect(url_for("letters.version", version_id=version.id)), 303
    return render_template("letter_new.html", form=form, topics=_topics(session), stances=list(Stance),
                           values=request.form, error=error, fields=FIELD_LIST), 400 if error else 200


@bp.route("/letters/<int:letter_id>")
@roles(*WRITERS)
def letter(letter_id: int):  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        item = service.get_letter(session, letter_id)
    except NotFound:
        abort(404, description=f"There is no letter {letter_id}.")
    return render_template("letter.html", letter=item, versions=service.letter_history(session, letter_id),
                           runs=service.runs_of(session, letter_id), form=ActionForm())


@bp.route("/letters/<int:letter_id>/<action>", methods=["POST"])
@roles(*WRITERS)
def letter_act(letter_id: int, action: str):  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        if action == "copy":
            version = service.copy_letter(session, letter_id, actor_id=current_user.id)
            session.commit()
            flash("Copied into a new letter; edit the draft.", "ok")
            return redirect(url_for("letters.version", version_id=version.id)), 303
        if action == "retire":
            service.retire_letter(session, letter_id, actor_id=current_user.id)
            session.commit()
            flash("Letter retired: it can no longer be sent.", "ok")
            return redirect(url_for("letters.letter", letter_id=letter_id)), 303
    except NotFound:
        abort(404, description=f"There is no letter {letter_id}.")
    except DomainError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("letters.letter", letter_id=letter_id)), 303
    abort(404, description=f"Unknown action {action!r}.")


@bp.route("/letters/versions/<int:version_id>")
@roles(*WRITERS)
def version(version_id: int):  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        v = service.get_version(session, version_id)
    except NotFound:
        abort(404, description=f"There is no letter version {version_id}.")
    sample = service.sample_message(session, v.letter)
    preview = preview_error = None
    try:
        values = context(sample, sample.constituent if sample else None, office_of(settings()))
        budget = budget_of(settings())
        preview = (render(v.subject, values, budget), render(v.body, values, budget))
    except LetterError as exc:
        preview_error = str(exc)
    base = session.get(LetterVersion, v.based_on_id) if v.based_on_id else None
    comments = list(session.scalars(select(ReviewComment).where(ReviewComment.version_id == v.id)
                                    .order_by(ReviewComment.id)))
    if base is not None:  # the reviewer's comments on the version this one answers
        comments = list(session.scalars(select(ReviewComment).where(ReviewComment.version_id == base.id)
                                        .order_by(ReviewComment.id))) + comments
    return render_template("letter_version.html", v=v, preview=preview, preview_error=preview_error, sample=sample,
                           diff=service.word_diff(base.body, v.body) if base else None, base=base,
                           comments=comments, form=ActionForm(), fields=FIELD_LIST,
                           paragraphs=[p for p in v.body.split("\n\n") if p.strip()],
                           history=history_of(session, "letter_version", v.id))


@bp.route("/letters/versions/<int:version_id>/<action>", methods=["POST"])
@roles(*WRITERS)
def version_act(version_id: int, action: str):  # type: ignore[no-untyped-def]
    """Edit, submit, comment and start a new version (writers); approve and request changes (supervisors)."""
    session = db_session()
    me = current_user.id
    f = request.form
    target = version_id
    reply_run = None
    try:
        if action == "edit":
            service.edit_draft(session, version_id, body=f.get("body", ""), subject=f.get("subject", ""), actor_id=me)
            message = "Draft saved."
        elif action == "submit":
            service.submit(session, version_id, actor_id=me)
            message = "Sent for review: a supervisor will approve it or ask for changes."
        elif action == "approve":
            approved = service.approve(session, version_id, actor_id=me)
            message = "Approved: this version is now the one letters go out with."
            if approved.letter.one_off_message_id is not None:  # a one-off reply goes out once approved
                reply_run = start_run(session, approved.id, message_ids=[approved.letter.one_off_message_id],
                                      actor_id=me)
                message = "Approved: the reply is on its way."
        elif action == "request_changes":
            service.request_changes(session, version_id, comment=f.get("comment", ""), actor_id=me,
                                    paragraph=_optional_int(f.get("paragraph"), "paragraph"))
            message = "Changes requested; the author sees your comment."
        elif action == "comment":
            service.add_comment(session, version_id, text=f.get("comment", ""), actor_id=me,
                                paragraph=_optional_int(f.get("paragraph"), "paragraph"))
            message = "Comment added."
        elif action == "new_version":
            target = service.new_version(session, version_id, actor_id=me).id
            message = "New draft version started from this one."
        else:
            abort(404, description=f"Unknown action {action!r}.")
    except NotFound:
        session.rollback()
        abort(404, description=f"There is no letter version {version_id}.")
    except DomainError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("letters.version", version_id=version_id)), 303
    session.commit()
    if reply_run is not None:
        enqueue_run(reply_run.id)
    flash(message, "ok")
    return redirect(url_for("letters.version", version_id=target)), 303


@bp.route("/messages/<int:message_id>/reply", methods=["GET", "POST"])
@roles(*SENDERS)
def reply(message_id: int):  # type: ignore[no-untyped-def]
    """A one-off reply to one message, optionally starting from an approved letter."""
    from correspondence.models import Message

    session = db_session()
    message = session.get(Message, message_id)
    if message is None:
        abort(404, description=f"There is no message {message_id}.")
    cfg = settings()
    approved = approved_letters(session)
    start = next((v for v in approved if str(v.id) == request.args.get("from")), None)
    subject = request.form.get("subject") or (start.subject if start else "Re: {{ message.subject }}")
    body = request.form.get("body") or (start.body if start else
                                        "{{ constituent.salutation }}\n\n\n\n{{ office.signature }}")
    error = None
    if request.method == "POST":
        try:
            if cfg.one_off_approval:
                version = service.start_reply(session, message.id, subject=subject, body=body,
                                              actor_id=current_user.id)
                session.commit()
                flash("Reply sent to a supervisor for approval; it goes out when approved.", "ok")
                return redirect(url_for("letters.version", version_id=version.id)), 303
            from drafting.apply import respond

            problems = validate_letter(subject, body)
            if problems:
                raise ValidationFailed("; ".join(problems))
            answer = respond(session, message, subject, body, settings=cfg, version_id=None, run_id=None,
                             actor_id=current_user.id)
            if answer is None:
                raise ValidationFailed("this message cannot be answered: it has no address, or is closed")
            session.commit()
            if answer.method.value == "email":
                _enqueue_send([answer.id])
            flash("Reply sent." if answer.method.value == "email" else "Reply ready to print.", "ok")
            return redirect(url_for("messages.view", message_id=message.id)), 303
        except (DomainError, LetterError) as exc:
            session.rollback()
            error = str(exc)
    return render_template("reply.html", message=message, approved=approved, subject=subject, body=body,
                           error=error, fields=FIELD_LIST, form=ActionForm(), needs_approval=cfg.one_off_approval,
                           ), 400 if error else 200


def validate_letter(subject: str, body: str) -> list[str]:
    from drafting.render import validate

    return validate(body) + [f"subject: {p}" for p in validate(subject)]


def _enqueue_send(ids: list[int]) -> None:
    from workers.queues import enqueue_send
    from workers.redis_conn import connect

    try:
        enqueue_send(connect(settings()), ids)
    except Exception:  # the sweeper queues it within minutes
        log.warning("could not queue send %s", ids, exc_info=True)


@bp.route("/responses/<int:response_id>/<action>", methods=["POST"])
@roles(*SENDERS)
def settle_response(response_id: int, action: str):  # type: ignore[no-untyped-def]
    """Resend an uncertain or failed letter, or record that an uncertain one did arrive."""
    from correspondence.models import Response as Answer
    from drafting.send import settle

    session = db_session()
    answer = session.get(Answer, response_id)
    if answer is None or action not in ("resend", "mark_sent"):
        abort(404, description="There is no such letter or action.")
    try:
        settle(session, response_id, action, actor_id=current_user.id)
    except DomainError as exc:
        session.rollback()
        flash(str(exc), "error")
    else:
        session.commit()
        if action == "resend":
            _enqueue_send([response_id])
        flash("Queued to send again." if action == "resend" else "Recorded as sent.", "ok")
    return redirect(url_for("messages.view", message_id=answer.message_id)), 303


@bp.route("/approvals/")
@roles(*APPROVERS)
def approvals():  # type: ignore[no-untyped-def]
    session = db_session()
    return render_template("approvals.html", queue=service.approval_queue(session), form=ActionForm())


@bp.route("/batches/<int:batch_id>/answer", methods=["GET", "POST"])
@roles(*SENDERS)
def answer_batch(batch_id: int):  # type: ignore[no-untyped-def]
    """Apply to all: choose an approved letter, see what will happen, confirm."""
    from correspondence.models import Batch

    session = db_session()
    batch = session.get(Batch, batch_id)
    if batch is None:
        abort(404, description=f"There is no batch {batch_id}.")
    approved = approved_letters(session, batch.topic_id)
    if request.method == "POST":
        try:
            version_id = _optional_int(request.form.get("version_id"), "letter")
            if version_id is None:
                raise ValidationFailed("choose the approved letter to send")
            run = start_run(session, version_id, batch_id=batch.id, actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            flash(str(exc), "error")
            return redirect(url_for("letters.answer_batch", batch_id=batch_id)), 303
        session.commit()
        enqueue_run(run.id)
        return redirect(url_for("letters.run", run_id=run.id)), 303
    counts = plan(session, batch_message_ids(session, batch.id))
    chosen = approved[0] if approved else None
    return render_template("answer_batch.html", batch=batch, approved=approved, counts=counts, chosen=chosen,
                           form=ActionForm())


@bp.route("/letters/answer", methods=["GET", "POST"])
@roles(*SENDERS)
def answer_selection():  # type: ignore[no-untyped-def]
    """Apply to all for messages chosen in the inbox (a selection), or everything an inbox filter matches."""
    from urllib.parse import parse_qs, urlencode

    from werkzeug.datastructures import MultiDict

    from correspondence.services.inbox import matching_ids
    from web.inbox import parse_filter

    session = db_session()
    query = request.form.get("filter") if request.method == "POST" else urlencode(list(request.args.items(multi=True)))
    ids = sorted({n for i in request.form.getlist("ids") if (n := parse_id(i))}) if request.method == "POST" else []
    if not ids:
        try:
            flt = parse_filter(MultiDict(parse_qs(query or "", keep_blank_values=False)), current_user.id)
        except ValidationFailed as exc:
            abort(400, description=str(exc))
        ids = matching_ids(session, flt)
        query = query or ""
    else:
        query = ""
    approved = approved_letters(session)
    if request.method == "POST" and request.form.get("confirm") == "1":
        try:
            version_id = _optional_int(request.form.get("version_id"), "letter")
            if version_id is None:
                raise ValidationFailed("choose the approved letter to send")
            run = start_run(session, version_id, message_ids=ids, actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            flash(str(exc), "error")
            return redirect(url_for("inbox.index")), 303
        session.commit()
        enqueue_run(run.id)
        return redirect(url_for("letters.run", run_id=run.id)), 303
    return render_template("answer_selection.html", ids=ids, filter_query=query, approved=approved,
                           counts=plan(session, ids), form=ActionForm())


def approved_letters(session, topic_id: int | None = None) -> list[LetterVersion]:  # type: ignore[no-untyped-def]
    from correspondence.models import FormLetter

    query = (select(LetterVersion).join(FormLetter, FormLetter.current_version_id == LetterVersion.id)
             .where(LetterVersion.state == VersionState.APPROVED, FormLetter.retired.is_(False),
                    FormLetter.one_off_message_id.is_(None)))
    order = [(FormLetter.topic_id == topic_id).desc()] if topic_id is not None else []
    return list(session.scalars(query.order_by(*order, FormLetter.title)))


def enqueue_run(run_id: int) -> None:
    from workers.queues import enqueue_apply
    from workers.redis_conn import connect

    try:
        enqueue_apply(connect(settings()), run_id)
    except Exception:  # the sweeper re-queues runs left waiting
        log.warning("could not queue apply run %s", run_id, exc_info=True)


def _run_or_404(session, run_id: int) -> ApplyRun:  # type: ignore[no-untyped-def]
    item = session.get(ApplyRun, run_id)
    if item is None:
        abort(404, description=f"There is no run {run_id}.")
    return item


@bp.route("/runs/<int:run_id>")
@roles(*SENDERS)
def run(run_id: int):  # type: ignore[no-untyped-def]
    item = _run_or_404(db_session(), run_id)
    return render_template("run.html", run=item, form=ActionForm())


@bp.route("/runs/<int:run_id>.json")
@roles(*SENDERS)
def run_progress(run_id: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import func

    from correspondence.models import Response as Answer

    session = db_session()
    item = _run_or_404(session, run_id)
    states = dict(session.execute(select(Answer.state, func.count()).where(Answer.run_id == run_id)
                                  .group_by(Answer.state)).all())
    return jsonify({"state": item.state, "total": item.total, "done": item.done, "created": item.created_count,
                    "skipped": item.skipped, "error": item.error, "print_ready": bool(item.print_sha256),
                    "delivery": {k.value: v for k, v in states.items()}})


@bp.route("/runs/<int:run_id>/letters.pdf")
@roles(*SENDERS)
def run_pdf(run_id: int):  # type: ignore[no-untyped-def]
    session = db_session()
    item = _run_or_404(session, run_id)
    data = load_blob(session, item.print_sha256) if item.print_sha256 else None
    if data is None:
        abort(404, description="There is no print file for this run (yet).")
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="run-{run_id}-letters.pdf"'})


@bp.route("/runs/<int:run_id>/addresses.csv")
@roles(*SENDERS)
def run_csv(run_id: int):  # type: ignore[no-untyped-def]
    session = db_session()
    item = _run_or_404(session, run_id)
    return Response(mail_house_csv(print_responses(session, item)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="run-{run_id}-addresses.csv"'})
