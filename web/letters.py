"""Form letters: the library, the editor with preview, review and approval, and apply to all.

Also the writer's notices (a letter approved, changes asked for) and approval delegation, which
belong to review: their routes live here beside the approval queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.effects import Done, Effect
from correspondence.errors import DomainError, NotFound, ValidationFailed
from correspondence.models import ApplyRun, LetterVersion, ReviewComment, Role, Stance, Topic, VersionState
from correspondence.services.blobs import load_blob
from correspondence.services.history import history_of
from drafting import letters as service
from drafting import review
from drafting.apply import (
    Options,
    Policy,
    batch_message_ids,
    budget_of,
    office_of,
    plan,
    waiting_emails,
)
from drafting.printing import mail_house_csv, print_responses
from drafting.render import FIELD_LIST, LetterError, context, render
from web import db_session, settings
from web.access import ALL_STAFF, roles, signed_in
from web.forms import ActionForm
from web.inputs import id_list, optional_enum, optional_id, required_id
from web.outcome import Step, run_action
from web.paragraphs import own_approval_notice, posted_with_paragraph

log = logging.getLogger(__name__)

bp = Blueprint("letters", __name__)

WRITERS = ALL_STAFF
APPROVERS = (Role.SUPERVISOR, Role.ADMIN)
SENDERS = (Role.ADMIN, Role.SUPERVISOR, Role.CORRESPONDENT)


@bp.app_context_processor
def _email_banner() -> dict[str, object]:
    """The no-SMTP banner (``_banners.html``): counted only when sending is not set up, on the state index."""

    def email_waiting() -> int:
        return waiting_emails(db_session())

    return {"smtp_configured": bool(settings().smtp_host), "email_waiting": email_waiting}


OPTION_KEYS = ("district", "skip_answered_campaign", "leave_additions")


def _options() -> Options:
    """The dry run's options: from the confirm form, else from the query the options form made (GET)."""
    source = request.form if request.method == "POST" and any(k in request.form for k in OPTION_KEYS) \
        else request.args
    try:
        return Options.from_mapping({k: source.get(k) for k in OPTION_KEYS})
    except ValidationFailed as exc:
        abort(400, description=str(exc))


def _planned_version(ranked) -> LetterVersion | None:
    """The letter the dry run is worked out for: the one asked for (?version_id=, or the letter a confirm
    form chose), else the suggested one — which exists only when a letter fits this mail."""
    wanted = request.values.get("version_id")
    asked = next((r.version for r in ranked if str(r.version.id) == wanted), None)
    return asked or next((r.version for r in ranked if r.suggested), None)


def _confirm(session, ids: list[int], batch_id: int | None, options: Options):
    """Start the run the dry run showed, or say why not.

    Returns (Done(run, its job), None) when started; (None, version) when the staffer chose another letter than the one
    the numbers on the page were for: the page is shown again for that letter, to be confirmed again, so
    the dry run's numbers are always what confirming does."""
    from drafting.apply import queue_apply_run
    from drafting.choose import check_choice
    from outbound.franking import Rules

    if not ids:
        raise ValidationFailed("there are no messages to answer: nothing is selected, or the filter matches nothing")
    version_id = optional_id(request.form.get("version_id"), "letter")
    if version_id is None:
        raise ValidationFailed("choose the approved letter to send")
    chosen = check_choice(session, version_id, ids, batch_id, request.form.get("confirm_mismatch") == "1")
    if request.form.get("planned_version") != str(version_id):
        return None, chosen.version
    if batch_id is not None:
        return queue_apply_run(session, version_id, batch_id=batch_id, actor_id=current_user.id,
                               options=options, rules=Rules.of(settings())), None
    return queue_apply_run(session, version_id, message_ids=ids, actor_id=current_user.id, options=options,
                           rules=Rules.of(settings())), None


def _topics(session):
    return list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name)))


@bp.route("/letters/")
@roles(*WRITERS)
def library():
    session = db_session()
    topic_id = optional_id(request.args.get("topic"), "topic")
    stance = optional_enum(Stance, request.args.get("stance"), "stance")
    found = service.search_letters(session, text=request.args.get("q", "")[:200], topic_id=topic_id, stance=stance,
                                   include_retired=request.args.get("retired") == "1")
    return render_template("letters.html", letters=found, topics=_topics(session), stances=list(Stance),
                           args=request.args, form=ActionForm())


@bp.route("/letters/new", methods=["GET", "POST"])
@roles(*WRITERS)
def new():
    session = db_session()
    form = ActionForm()
    error = None
    values: Mapping[str, str] = request.form
    if request.method == "POST" and "insert_paragraph" in values:  # the paragraph library, without JavaScript
        body, error = posted_with_paragraph(session, values)
        values = {**request.form.to_dict(), "body": body}
    elif request.method == "POST":
        f = request.form
        try:
            version = service.create_letter(
                session, title=f.get("title", ""), body=f.get("body", ""), subject=f.get("subject", ""),
                topic_id=optional_id(f.get("topic_id"), "topic"),
                stance=optional_enum(Stance, f.get("stance"), "stance"), tags=f.get("tags", "").split(","),
                actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            error = str(exc)
        else:
            session.commit()
            flash("Letter saved as a draft. Preview it, then send it for review.", "ok")
            return redirect(url_for("letters.version", version_id=version.id)), 303
    return render_template("letter_new.html", form=form, topics=_topics(session), stances=list(Stance),
                           values=values, error=error, fields=FIELD_LIST), 400 if error else 200


@bp.route("/letters/<int:letter_id>")
@roles(*WRITERS)
def letter(letter_id: int):
    session = db_session()
    item = service.get_letter(session, letter_id)
    return render_template("letter.html", letter=item, versions=service.letter_history(session, letter_id),
                           runs=service.runs_of(session, letter_id), form=ActionForm())


@bp.route("/letters/<int:letter_id>/copy", methods=["POST"])
@roles(*WRITERS)
def copy_letter(letter_id: int):
    session = db_session()

    def work() -> tuple[str, str]:
        version = service.copy_letter(session, letter_id, actor_id=current_user.id)
        return "Copied into a new letter; edit the draft.", url_for("letters.version", version_id=version.id)

    return run_action(session, work, back=url_for("letters.letter", letter_id=letter_id))


@bp.route("/letters/<int:letter_id>/retire", methods=["POST"])
@roles(*APPROVERS)
def retire_letter(letter_id: int):
    session = db_session()
    here = url_for("letters.letter", letter_id=letter_id)

    def work() -> tuple[str, str]:
        service.retire_letter(session, letter_id, actor_id=current_user.id)
        return "Letter retired: it can no longer be sent.", here

    return run_action(session, work, back=here)


@bp.route("/letters/versions/<int:version_id>")
@roles(*WRITERS)
def version(version_id: int):
    session = db_session()
    v = service.get_version(session, version_id)
    return _version_page(session, v)


def _version_page(session, v: LetterVersion, *, draft: tuple[str, str] | None = None,
                  error: str | None = None):
    """The version page; `draft` is the editor's text when saving or sending it failed, so none of it is lost."""
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
                           diff=service.paragraph_diff(base.body, v.body) if base else None, base=base,
                           comments=comments, form=ActionForm(), fields=FIELD_LIST,
                           paragraphs=service.paragraphs(v.body),
                           may_review=service.may_review(session, current_user.id),
                           draft_subject=draft[0] if draft else v.subject, draft_body=draft[1] if draft else v.body,
                           history=history_of(session, "letter_version", v.id), error=error), 400 if error else 200


def _save_draft(version_id: int, save: Callable[[Session], str]):
    """Edit or send for review: saved with its message, or the page again with the writer's text kept."""
    session = db_session()
    f = request.form
    try:
        message = save(session)
    except NotFound:
        raise
    except DomainError as exc:
        session.rollback()
        if "body" in f:  # show the page again with the writer's text kept
            return _version_page(session, service.get_version(session, version_id),
                                 draft=(f.get("subject", ""), f.get("body", "")), error=str(exc))
        flash(str(exc), "error")
        return redirect(url_for("letters.version", version_id=version_id)), 303
    session.commit()
    flash(message, "ok")
    return redirect(url_for("letters.version", version_id=version_id)), 303


@bp.route("/letters/versions/<int:version_id>/edit", methods=["POST"])
@roles(*WRITERS)
def edit_version(version_id: int):
    def save(session: Session) -> str:
        service.edit_draft(session, version_id, body=request.form.get("body", ""),
                           subject=request.form.get("subject", ""), actor_id=current_user.id)
        return "Draft saved."

    return _save_draft(version_id, save)


@bp.route("/letters/versions/<int:version_id>/submit", methods=["POST"])
@roles(*WRITERS)
def submit_version(version_id: int):
    def save(session: Session) -> str:
        # The draft page posts the editor's text with "Send for review", so unsaved edits go with it.
        service.submit(session, version_id, actor_id=current_user.id, subject=request.form.get("subject"),
                       body=request.form.get("body"))
        return "Sent for review: a supervisor will approve it or ask for changes."

    return _save_draft(version_id, save)


def _approved_step(done: Done[LetterVersion]) -> Step:
    message = ("Approved: the reply is on its way." if done.value.letter.one_off_message_id is not None
               else "Approved: this version is now the one letters go out with.")
    return message, url_for("letters.version", version_id=done.value.id), done.effects


@bp.route("/letters/versions/<int:version_id>/approve", methods=["POST"])
@roles(*APPROVERS)  # and an active approval delegate: web.access.APPROVAL_DELEGATE_OK
def approve_version(version_id: int):
    """A supervisor (or their delegate) approves; a one-off reply then goes out (drafting.review)."""
    session = db_session()
    return run_action(session, lambda: _approved_step(review.approve_version(
        session, version_id, actor_id=current_user.id, email_author=bool(settings().smtp_host))),
        back=url_for("letters.version", version_id=version_id))


@bp.route("/letters/versions/<int:version_id>/approve_own", methods=["POST"])
@roles(*WRITERS)  # the author's own version built from approved paragraphs: drafting.paragraphs checks
def approve_own_version(version_id: int):
    session = db_session()
    f = request.form

    def work() -> Step:
        return _approved_step(review.approve_own_version(
            session, version_id, actor_id=current_user.id, body=f.get("body"), subject=f.get("subject"),
            office_allows=settings().approved_paragraphs_skip_review))

    return run_action(session, work, back=url_for("letters.version", version_id=version_id))


@bp.route("/letters/versions/<int:version_id>/request_changes", methods=["POST"])
@roles(*APPROVERS)  # and an active approval delegate: web.access.APPROVAL_DELEGATE_OK
def request_changes(version_id: int):
    session = db_session()
    here = url_for("letters.version", version_id=version_id)

    def work() -> Step:
        done = review.request_changes(session, version_id, comment=request.form.get("comment", ""),
                                      actor_id=current_user.id, email_author=bool(settings().smtp_host),
                                      paragraph=optional_id(request.form.get("paragraph"), "paragraph"))
        return "Changes requested; the author sees your comment.", here, done.effects

    return run_action(session, work, back=here)


@bp.route("/letters/versions/<int:version_id>/comment", methods=["POST"])
@roles(*WRITERS)
def comment_version(version_id: int):
    session = db_session()
    here = url_for("letters.version", version_id=version_id)

    def work() -> tuple[str, str]:
        service.add_comment(session, version_id, text=request.form.get("comment", ""), actor_id=current_user.id,
                            paragraph=optional_id(request.form.get("paragraph"), "paragraph"))
        return "Comment added.", here

    return run_action(session, work, back=here)


@bp.route("/letters/versions/<int:version_id>/new_version", methods=["POST"])
@roles(*WRITERS)
def new_version(version_id: int):
    session = db_session()

    def work() -> tuple[str, str]:
        made = service.new_version(session, version_id, actor_id=current_user.id)
        return "New draft version started from this one.", url_for("letters.version", version_id=made.id)

    return run_action(session, work, back=url_for("letters.version", version_id=version_id))


@bp.route("/messages/<int:message_id>/reply", methods=["GET", "POST"])
@roles(*SENDERS)
def reply(message_id: int):
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
    if request.method == "POST" and "insert_paragraph" in request.form:  # the paragraph library, without JavaScript
        body, error = posted_with_paragraph(session, request.form)
    elif request.method == "POST":
        try:
            if cfg.one_off_approval:
                version = service.start_reply(session, message.id, subject=subject, body=body,
                                              actor_id=current_user.id)
                session.commit()
                flash(own_approval_notice(session, version)
                      or "Reply sent to a supervisor for approval; it goes out when approved.", "ok")
                return redirect(url_for("letters.version", version_id=version.id)), 303
            from drafting.apply import reply_now
            from web.outcome import after_commit

            done = reply_now(session, message.id, subject=subject, body=body, settings=cfg,
                             actor_id=current_user.id)
            session.commit()
            after_commit(done.effects)
            flash("Reply sent." if done.value.method.value == "email" else "Reply ready to print.", "ok")
            return redirect(url_for("messages.view", message_id=message.id)), 303
        except (DomainError, LetterError) as exc:
            session.rollback()
            error = str(exc)
    return render_template("reply.html", message=message, approved=approved, subject=subject, body=body,
                           error=error, fields=FIELD_LIST, form=ActionForm(), needs_approval=cfg.one_off_approval,
                           ), 400 if error else 200



def _settle(response_id: int, action: str, message: str):
    """Resend an uncertain or failed letter, or record that an uncertain one did arrive."""
    from correspondence.models import Response as Answer
    from drafting.send import settle

    session = db_session()
    answer = session.get(Answer, response_id)
    if answer is None:
        raise NotFound("no such letter")
    back = url_for("messages.view", message_id=answer.message_id)

    def work() -> Step:
        settle(session, response_id, action, actor_id=current_user.id)
        return message, back, (Effect.of("send", response_id),) if action == "resend" else ()

    return run_action(session, work, back=back)


@bp.route("/responses/<int:response_id>/resend", methods=["POST"])
@roles(*SENDERS)
def resend_response(response_id: int):
    return _settle(response_id, "resend", "Queued to send again.")


@bp.route("/responses/<int:response_id>/mark_sent", methods=["POST"])
@roles(*SENDERS)
def mark_response_sent(response_id: int):
    return _settle(response_id, "mark_sent", "Recorded as sent.")


@bp.route("/approvals/")
@roles(*APPROVERS)  # and an active approval delegate: web.access.APPROVAL_DELEGATE_OK
def approvals():
    from drafting import delegation

    session = db_session()
    return render_template("approvals.html", queue=service.approval_queue(session), form=ActionForm(),
                           delegations=delegation.current_delegations(session),
                           candidates=delegation.delegate_candidates(session),
                           acting_for=delegation.active_delegation(session, current_user.id),
                           today=datetime.now(settings().zone).date())


def _day_start(raw: str | None, name: str, *, next_day: bool = False) -> datetime:
    """A date from the form, as the start of that day (or of the day after) in the office's time zone, in UTC."""
    try:
        day = date.fromisoformat((raw or "").strip())
        if next_day:
            day += timedelta(days=1)
        return datetime.combine(day, time(), tzinfo=settings().zone).astimezone(UTC)
    except ValueError as exc:
        raise ValidationFailed(f"{name}: give a date (YYYY-MM-DD)") from exc
    except OverflowError as exc:  # 9999-12-31 has no day after; 0001-01-01 east of UTC has no UTC
        raise ValidationFailed(f"{name}: that date is out of range") from exc


@bp.route("/approvals/delegations", methods=["POST"])
@roles(*APPROVERS)
def delegate():
    """A supervisor away: lend their approval to a colleague for a range of days (inclusive)."""
    from drafting.delegation import delegate_approval

    session = db_session()
    f = request.form
    back = url_for("letters.approvals")

    def work() -> tuple[str, str]:
        delegate_id = required_id(f.get("delegate_id"), "delegate", missing="choose who approves while you are away")
        made = delegate_approval(session, delegate_id=delegate_id, actor_id=current_user.id,
                                 starts_at=_day_start(f.get("starts_on"), "first day"),
                                 ends_at=_day_start(f.get("ends_on"), "last day", next_day=True))
        return f"{made.delegate.name} may approve letters on your behalf for those days.", back

    return run_action(session, work, back=back)


@bp.route("/approvals/delegations/<int:delegation_id>/end", methods=["POST"])
@roles(*APPROVERS)
def end_delegation(delegation_id: int):
    from drafting.delegation import end_delegation as end

    session = db_session()
    back = url_for("letters.approvals")

    def work() -> tuple[str, str]:
        end(session, delegation_id, actor_id=current_user.id)
        return "Delegation ended.", back

    return run_action(session, work, back=back)


@bp.route("/notices/")
@signed_in
def notices():
    """The signed-in staffer's own notices (nobody sees another's)."""
    from correspondence.services.notices import notices_for

    return render_template("notices.html", notices=notices_for(db_session(), current_user.id), form=ActionForm())


@bp.route("/notices/<int:notice_id>/read", methods=["POST"])
@signed_in
def notice_read(notice_id: int):
    from correspondence.services.notices import mark_read

    session = db_session()
    notice = mark_read(session, notice_id, actor_id=current_user.id)
    link = notice.link
    session.commit()
    if request.form.get("open") == "1" and link.startswith("/") and not link.startswith("//"):
        return redirect(link), 303
    return redirect(url_for("letters.notices")), 303


@bp.route("/notices/read-all", methods=["POST"])
@signed_in
def notices_read_all():
    from correspondence.services.notices import mark_all_read

    session = db_session()
    count = mark_all_read(session, actor_id=current_user.id)
    session.commit()
    flash(f"{count} notices marked read." if count != 1 else "1 notice marked read.", "ok")
    return redirect(url_for("letters.notices")), 303


@bp.app_context_processor
def _review_globals() -> dict[str, object]:
    """Template helpers for the nav partial (_notices.html) and the dashboard's review figures."""

    def unread_notices() -> int:
        from correspondence.services.notices import unread_count

        return unread_count(db_session(), current_user.id) if current_user.is_authenticated else 0

    def approval_delegate() -> bool:
        """Signed in as a staffer approving for an absent supervisor (not a supervisor themselves)."""
        if not current_user.is_authenticated or current_user.role in APPROVERS:
            return False
        return service.may_review(db_session(), current_user.id)

    def review_times():
        from insight.dashboard import review_times as compute

        return compute(db_session())

    return {"unread_notices": unread_notices, "approval_delegate": approval_delegate, "review_times": review_times,
            "office_zone": settings().zone, "one_day": timedelta(days=1)}


@bp.route("/batches/<int:batch_id>/answer", methods=["GET", "POST"])
@roles(*SENDERS)
def answer_batch(batch_id: int):
    """Apply to all: choose an approved letter, see what will happen, confirm."""
    from correspondence.models import Batch

    session = db_session()
    batch = session.get(Batch, batch_id)
    if batch is None:
        abort(404, description=f"There is no batch {batch_id}.")
    return _answer_page(session, batch_message_ids(session, batch.id), batch.id, "answer_batch.html",
                        request.method == "POST", batch=batch)


@bp.route("/letters/answer", methods=["GET", "POST"])
@roles(*SENDERS)
def answer_selection():
    """Apply to all for messages chosen in the inbox (a selection), or everything an inbox filter matches."""
    from urllib.parse import parse_qs, urlencode

    from werkzeug.datastructures import MultiDict

    from correspondence.services.inbox import matching_ids
    from web.inbox import parse_filter

    session = db_session()
    query = request.form.get("filter") if request.method == "POST" else urlencode(list(request.args.items(multi=True)))
    posted = request.form.getlist("ids") if request.method == "POST" else []
    ids = sorted(set(id_list(posted)))
    if posted and not ids:  # a selection of nothing usable is not "everything the inbox filter matches"
        abort(400, description="The selection names no messages.")
    if not ids:
        flt = parse_filter(MultiDict(parse_qs(query or "", keep_blank_values=False)), current_user.id)
        ids = matching_ids(session, flt)
        query = query or ""
    else:
        query = ""
    return _answer_page(session, ids, None, "answer_selection.html",
                        request.method == "POST" and request.form.get("confirm") == "1", ids=ids, filter_query=query)


def _answer_page(session, message_ids: list[int], batch_id: int | None, template: str, confirming: bool,
                 **page):
    """The dry run and the letter choice of an apply to all (a batch, or a selection), and its confirm."""
    from drafting.choose import rank_letters
    from outbound.franking import Rules

    options = _options()
    ranked = rank_letters(session, message_ids, batch_id=batch_id)
    chosen = _planned_version(ranked)
    again = None
    if confirming:
        from web.outcome import after_commit

        try:
            started, again = _confirm(session, message_ids, batch_id, options)
        except DomainError as exc:
            session.rollback()
            flash(str(exc), "error")  # the page again, the staffer's options and selection kept
            started = None
        if started is not None:
            session.commit()
            after_commit(started.effects)
            return redirect(url_for("letters.run", run_id=started.value.id)), 303
        chosen = again or chosen
    policy = Policy.of(settings())
    counts = plan(session, message_ids, version_id=chosen.id if chosen else None, options=options, policy=policy,
                  rules=Rules.of(settings()))
    return render_template(template, approved=[r.version for r in ranked], ranked=ranked, counts=counts,
                           chosen=chosen, again=again, options=options, policy=policy, show_smtp_banner=True,
                           form=ActionForm(), **page)


@bp.route("/letters/preview")
@roles(*SENDERS)
def preview():
    """A letter rendered for three real recipients of a batch (?batch_id=) or a selection (?ids=1,2,3 or
    ?filter=<inbox filter>); ?partial=1 returns only the fragment the answer pages load beside the choice."""
    from urllib.parse import parse_qs

    from werkzeug.datastructures import MultiDict

    from correspondence.services.inbox import matching_ids
    from drafting.choose import preview as render_previews
    from web.inbox import parse_filter

    session = db_session()
    try:
        version_id = optional_id(request.args.get("version_id"), "letter")
        batch_id = optional_id(request.args.get("batch_id"), "batch")
        if version_id is None:
            raise ValidationFailed("choose a letter to preview")
        if batch_id is not None:
            ids = batch_message_ids(session, batch_id)
        elif request.args.get("ids"):
            ids = id_list(request.args["ids"].split(","))
        else:
            flt = parse_filter(MultiDict(parse_qs(request.args.get("filter", ""))), current_user.id)
            ids = matching_ids(session, flt)
        previews = render_previews(session, version_id, ids, settings())
    except NotFound:
        raise  # the app's 404 handler
    except DomainError as exc:
        abort(400, description=str(exc))
    version_ = session.get(LetterVersion, version_id)
    template = "_preview.html" if request.args.get("partial") == "1" else "letter_preview.html"
    return render_template(template, previews=previews, version=version_)


def approved_letters(session, topic_id: int | None = None) -> list[LetterVersion]:
    from correspondence.models import FormLetter

    query = (select(LetterVersion).join(FormLetter, FormLetter.current_version_id == LetterVersion.id)
             .where(LetterVersion.state == VersionState.APPROVED, FormLetter.retired.is_(False),
                    FormLetter.one_off_message_id.is_(None)))
    order = [(FormLetter.topic_id == topic_id).desc()] if topic_id is not None else []
    return list(session.scalars(query.order_by(*order, FormLetter.title)))



def _run_or_404(session, run_id: int) -> ApplyRun:
    item = session.get(ApplyRun, run_id)
    if item is None:
        abort(404, description=f"There is no run {run_id}.")
    return item


@bp.route("/runs/<int:run_id>")
@roles(*SENDERS)
def run(run_id: int):
    item = _run_or_404(db_session(), run_id)
    return render_template("run.html", run=item, show_smtp_banner=True, form=ActionForm())


@bp.route("/runs/<int:run_id>.json")
@roles(*SENDERS)
def run_progress(run_id: int):
    from sqlalchemy import func

    from correspondence.models import Message, MessageStatus, ResponseMessage
    from correspondence.models import Response as Answer

    session = db_session()
    item = _run_or_404(session, run_id)
    states = dict(session.execute(select(Answer.state, func.count()).where(Answer.run_id == run_id)
                                  .group_by(Answer.state)).all())
    answers = dict(session.execute(select(Message.status, func.count()).where(
        Message.id.in_(select(ResponseMessage.message_id).join(Answer, Answer.id == ResponseMessage.response_id)
                       .where(Answer.run_id == run_id))).group_by(Message.status)).all())
    return jsonify({"state": item.state, "total": item.total, "done": item.done, "created": item.created_count,
                    "letters": item.created_count, "people": item.people, "people_done": item.people_done,
                    "covered": item.covered, "closed": item.closed, "skipped": item.skipped, "error": item.error,
                    "print_ready": bool(item.print_sha256), "counts": item.counts or {},
                    "delivery": {k.value: v for k, v in states.items()},
                    "messages": {"answer_queued": answers.get(MessageStatus.ANSWER_QUEUED, 0),
                                 "responded": answers.get(MessageStatus.RESPONDED, 0)}})


@bp.route("/runs/<int:run_id>/letters.pdf")
@roles(*SENDERS)
def run_pdf(run_id: int):
    session = db_session()
    item = _run_or_404(session, run_id)
    data = load_blob(session, item.print_sha256) if item.print_sha256 else None
    if data is None:
        abort(404, description="There is no print file for this run (yet).")
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="run-{run_id}-letters.pdf"'})


@bp.route("/runs/<int:run_id>/addresses.csv")
@roles(*SENDERS)
def run_csv(run_id: int):
    session = db_session()
    item = _run_or_404(session, run_id)
    return Response(mail_house_csv(print_responses(session, item)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="run-{run_id}-addresses.csv"'})
