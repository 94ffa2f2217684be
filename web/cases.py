"""Casework pages: the case list, a case with its steps and the privacy-release gate, and the public
help-request form that opens a case with an electronic signature."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from casework import cases as service
from correspondence.effects import Effect
from correspondence.errors import DomainError, NotFound, ValidationFailed
from correspondence.models import (
    CasePriority,
    CaseStatus,
    Message,
    Role,
    Staffer,
)
from correspondence.services.blobs import load_blob
from correspondence.services.history import describe
from correspondence.services.staff import list_staff
from web import db_session, replica_session, settings
from web.access import ALL_STAFF, public, roles
from web.forms import ActionForm
from web.inputs import optional_id, parse_id, required_enum, required_id
from web.outcome import Step, run_action

bp = Blueprint("cases", __name__)
log = logging.getLogger(__name__)

CASE_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.CASEWORKER)


@bp.route("/cases/")
@roles(*ALL_STAFF)
def index():
    session = db_session()
    mine = request.args.get("who", "mine" if current_user.role == Role.CASEWORKER else "all") == "mine"
    items = service.list_cases(session, caseworker_id=current_user.id if mine else None,
                               open_only=request.args.get("closed") != "1")
    from casework.reminders import due_steps

    return render_template("cases.html", cases=items, mine=mine, args=request.args,
                           due=due_steps(session, staffer_id=current_user.id, limit=51).get(current_user.id, []))


@bp.route("/cases/export.csv")
@roles(*ALL_STAFF)
def export_csv():
    """The case list as CSV (mine or everyone's, open or all), formula-safe; read from the replica if any."""
    from correspondence.csvsafe import rows_to_csv

    session = replica_session()
    mine = request.args.get("who", "all") == "mine"
    items = service.list_cases(session, caseworker_id=current_user.id if mine else None,
                               open_only=request.args.get("closed") != "1", limit=100_000)
    header = ("id", "subject", "category", "status", "priority", "constituent_id", "constituent", "agency",
              "caseworker", "opened", "due", "closed", "release_on_file")
    rows = ((c.id, c.subject, c.category.name, c.status.value, c.priority.value, c.constituent_id,
             c.constituent.full_name, c.agency, c.caseworker.name if c.caseworker else "",
             c.opened_at.date().isoformat(), c.due_at.date().isoformat() if c.due_at else "",
             c.closed_at.date().isoformat() if c.closed_at else "", "yes" if service.release_on_file(c) else "no")
            for c in items)
    return Response(rows_to_csv(header, rows), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="cases.csv"'})


@bp.route("/cases/new", methods=["GET", "POST"])
@roles(*ALL_STAFF)
def new():
    """Open a case from a message (the usual way) — the constituent and subject come with it."""
    session = db_session()
    raw = request.values.get("message_id", "")
    message_id = parse_id(raw)
    message = session.get(Message, message_id) if message_id else None
    if message is None:
        abort(400, description="Open a case from a message: its page has an \"Open a case\" button.")
    error = None
    if request.method == "POST":
        try:
            category_id = required_id(request.form.get("category_id"), "category", missing="choose a case category")
            case = service.open_from_message(session, message.id, category_id=category_id, actor_id=current_user.id,
                                             caseworker_id=optional_id(request.form.get("caseworker_id"), "caseworker"))
        except DomainError as exc:
            session.rollback()
            error = str(exc)
        else:
            session.commit()
            flash("Case opened with its steps.", "ok")
            return redirect(url_for("cases.view", case_id=case.id)), 303
    workers = [s for s in list_staff(session, active_only=True) if s.role in CASE_ROLES]
    return render_template("case_new.html", message=message, categories=service.categories(session),
                           workers=workers, error=error, form=ActionForm()), 400 if error else 200


@bp.route("/cases/<int:case_id>")
@roles(*ALL_STAFF)
def view(case_id: int):
    session = db_session()
    case = service.get_case(session, case_id)
    me = current_user._get_current_object()
    # None when this staffer is not on the case (nor a supervisor or admin): the page says the parts exist.
    notes = service.private_notes(session, case, me)
    docs = service.private_documents(session, case, me)
    messages = list(session.scalars(select(Message).where(Message.constituent_id == case.constituent_id)
                                    .order_by(Message.received_at.desc()).limit(10)))
    from casework.help_requests import by_case, release_reason

    help_request = by_case(session, case.id)
    on_file = service.release_on_file(case)
    return render_template("case.html", case=case, steps=service.steps(session, case.id), notes=notes, docs=docs,
                           messages=messages, history=describe(session, service.timeline(session, case.id, viewer=me)),
                           may_see_private=notes is not None, private_explained=service.PRIVATE_EXPLAINED,
                           help_request=help_request,
                           release_reason=release_reason(help_request) if help_request and not on_file else None,
                           release_on_file=on_file, statuses=list(CaseStatus),
                           priorities=list(CasePriority), form=ActionForm(),
                           staff=list(session.scalars(select(Staffer).where(Staffer.active.is_(True))
                                                      .order_by(Staffer.name))))


def _on_case(case_id: int, work: Callable[[Session, int], str | tuple[str, tuple[Effect, ...]]]):
    """One caseworker action on a case that exists; work(session, me) -> message[, effects]."""
    session = db_session()
    here = url_for("cases.view", case_id=case_id)

    def step() -> Step:
        service.get_case(session, case_id)
        done = work(session, current_user.id)
        message, effects = (done, ()) if isinstance(done, str) else done
        return message, here, effects

    return run_action(session, step, back=here)


def _step_id() -> int:
    return required_id(request.form.get("step_id"), "step", missing="choose the step")


def _upload() -> tuple[bytes, str, str]:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationFailed("choose a file to upload")
    return upload.read(service.MAX_DOCUMENT_BYTES + 1), upload.filename, (upload.mimetype or "").split(";")[0]


@bp.route("/cases/<int:case_id>/step", methods=["POST"])
@roles(*CASE_ROLES)
def complete_step(case_id: int):
    def work(session: Session, me: int) -> str:
        step = service.complete_step(session, _step_id(), actor_id=me)
        if step.case_id != case_id:
            raise NotFound("that step belongs to another case")
        return f"Done: {step.title}."

    return _on_case(case_id, work)


@bp.route("/cases/<int:case_id>/status", methods=["POST"])
@roles(*CASE_ROLES)
def set_status(case_id: int):
    def work(session: Session, me: int) -> str:
        target = required_enum(CaseStatus, request.form.get("value"), "status", missing="choose a status")
        service.set_status(session, case_id, target, actor_id=me, outcome=request.form.get("outcome"))
        return f"Case is now {target.value.replace('_', ' ')}."

    return _on_case(case_id, work)


@bp.route("/cases/<int:case_id>/details", methods=["POST"])
@roles(*CASE_ROLES)
def update_details(case_id: int):
    def work(session: Session, me: int) -> str:
        service.update_details(session, case_id, {k: request.form.get(k, "") for k in (
            "subject", "agency", "agency_contact", "priority", "caseworker_id", "due") if k in request.form},
            actor_id=me)
        return "Case details saved."

    return _on_case(case_id, work)


@bp.route("/cases/<int:case_id>/add-step", methods=["POST"])
@roles(*CASE_ROLES)
def add_step(case_id: int):
    def work(session: Session, me: int) -> str:
        step = service.add_step(session, case_id, request.form.get("title", ""), due=request.form.get("due"),
                                assignee_id=request.form.get("assignee_id"), actor_id=me)
        return f"Step added: {step.title}."

    return _on_case(case_id, work)


@bp.route("/cases/<int:case_id>/reassign-step", methods=["POST"])
@roles(*CASE_ROLES)
def reassign_step(case_id: int):
    def work(session: Session, me: int) -> str:
        step = service.reassign_step(session, _step_id(), request.form.get("assignee_id"),
                                     due=request.form.get("due"), actor_id=me)
        if step.case_id != case_id:
            raise NotFound("that step belongs to another case")
        return f"Step updated: {step.title}."

    return _on_case(case_id, work)


@bp.route("/cases/<int:case_id>/note", methods=["POST"])
@roles(*CASE_ROLES)
def add_note(case_id: int):
    def work(session: Session, me: int) -> str:
        service.add_note(session, case_id, request.form.get("text", ""), actor_id=me)
        return "Note added."

    return _on_case(case_id, work)


@bp.route("/cases/<int:case_id>/document", methods=["POST"])
@roles(*CASE_ROLES)
def add_document(case_id: int):
    def work(session: Session, me: int) -> str:
        service.add_document(session, case_id, *_upload(), actor_id=me)
        return "Document added."

    return _on_case(case_id, work)


@bp.route("/cases/<int:case_id>/release", methods=["POST"])
@roles(*CASE_ROLES)
def record_release(case_id: int):
    def work(session: Session, me: int) -> str:
        service.record_release(session, case_id, *_upload(), actor_id=me)
        return "Signed privacy release on file: the agency inquiry can be sent."

    return _on_case(case_id, work)


def _decide_match(case_id: int, *, same: bool):
    from casework.help_requests import decide_match
    from correspondence.models import utcnow

    def work(session: Session, me: int) -> str:
        done = decide_match(session, case_id, same_person=same, actor_id=me, now=utcnow())
        return (f"Joined to {done.case.constituent.full_name}'s record." if same else
                "Kept as a separate person: the possible match is set aside.")

    return _on_case(case_id, work)


@bp.route("/cases/<int:case_id>/confirm-match", methods=["POST"])
@roles(*CASE_ROLES)
def confirm_match(case_id: int):
    return _decide_match(case_id, same=True)


@bp.route("/cases/<int:case_id>/reject-match", methods=["POST"])
@roles(*CASE_ROLES)
def reject_match(case_id: int):
    return _decide_match(case_id, same=False)


@bp.route("/cases/<int:case_id>/resend-link", methods=["POST"])
@roles(*CASE_ROLES)
def resend_link(case_id: int):
    from casework.help_requests import resend_confirmation

    def work(session: Session, me: int) -> tuple[str, tuple[Effect, ...]]:
        requested = resend_confirmation(session, case_id, actor_id=me)
        return "A new confirmation link is on its way to the constituent.", (_as_effect(requested),)

    return _on_case(case_id, work)


def _as_effect(requested) -> Effect:
    """The confirmation email a help-request use case asked for, as the job the boundary queues."""
    if isinstance(requested, Effect):
        return requested
    return Effect.of("help_confirmation", requested.object_id, by_staff=requested.name == "resend_help_confirmation")


@bp.route("/cases/<int:case_id>/documents/<int:document_id>")
@roles(*ALL_STAFF)
def document(case_id: int, document_id: int):
    session = db_session()
    try:
        doc = service.get_document(session, case_id, document_id, viewer=current_user._get_current_object())
    except service.PrivateToCase as exc:
        abort(403, description=str(exc))
    data = load_blob(session, doc.sha256)
    if data is None:
        abort(404, description="There is no such document.")
    from io import BytesIO

    from flask import send_file

    from casework.files import clean_filename

    # send_file writes RFC 6266 filename*=UTF-8''… for names beyond ASCII; cleaning again here covers
    # names stored before uploads were cleaned (a CR or LF in a header would be a 500).
    return send_file(BytesIO(data), mimetype=doc.content_type, as_attachment=True,
                     download_name=clean_filename(doc.filename), etag=False, max_age=0)


@bp.route("/cases/<int:case_id>/release.pdf")
@roles(*ALL_STAFF)
def release_pdf(case_id: int):
    """The privacy release, filled in with the constituent's details, to print and sign."""
    from casework.release import release_pdf as build

    session = db_session()
    try:
        case = service.get_case(session, case_id)
        # The form carries the constituent's details and is part of the release: need to know, like the rest.
        service.check_private(current_user._get_current_object(), case)
    except service.PrivateToCase as exc:
        abort(403, description=str(exc))
    return Response(build(case, settings()), mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="privacy-release-case-{case_id}.pdf"'})


@bp.route("/help", methods=["GET", "POST"])
@public
def help_request():
    """The office's public kickoff form: asks for help and signs the release online (proven later by email)."""
    from flask import session as cookie

    from casework import help_requests as helpdesk
    from correspondence.models import utcnow
    from web.humans import HONEYPOT_FIELD, STAMP_FIELD, NotAPerson, check_submission, issue_stamp

    session = db_session()
    from archive.closing import closed_successor

    if (successor := closed_successor(session)) is not None:
        # The office has closed: no request is taken; the page names the successor instead.
        return render_template("office_closed.html", office=settings().office_name,
                               successor=successor), 410 if request.method == "POST" else 200
    errors: dict[str, str] = {}
    form = ActionForm()
    f = request.form
    stamp = f.get(STAMP_FIELD, "")
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400, description="The form expired; reload the page and try again.")
        try:
            key = check_submission(settings().secret_key, stamp, f.get(HONEYPOT_FIELD),
                                   min_seconds=settings().help_min_fill_seconds)
        except NotAPerson as exc:
            abort(400, description=f"Your request was not accepted: {exc}. Reload the page, fill in the form "
                                   "and send it again, or call the office.")
        values = helpdesk.HelpValues(**{k: f.get(k) or "" for k in (
            "first_name", "last_name", "email", "phone", "street", "city", "state", "zip5", "category_id",
            "description", "signature")}, consent=f.get("consent") == "yes")
        try:
            done = helpdesk.submit_help_request(session, values, idempotency_key=key, ip=request.remote_addr,
                                                now=utcnow())
        except helpdesk.HelpFormInvalid as exc:
            session.rollback()
            errors = exc.errors
        except DomainError as exc:
            session.rollback()
            errors = {"form": str(exc)}
        else:
            reference = done.value.reference
            session.commit()
            _dispatch(done.effects)
            # Post/redirect/get: the reference travels in the signed session cookie, never in the URL,
            # so the "received" page cannot be used to look up anyone else's request.
            cookie["help_reference"] = reference
            return redirect(url_for("cases.help_received")), 303
    else:
        stamp = issue_stamp(settings().secret_key)
    return render_template("help.html", categories=service.categories(session), errors=errors, values=f,
                           form=form, office=settings().office_name, stamp=stamp,
                           honeypot=HONEYPOT_FIELD), 400 if errors else 200


@bp.route("/help/received")
@public
def help_received():
    """Where the help form lands (also after a refresh or a resubmission): this browser's reference only."""
    from flask import session as cookie

    return render_template("help_done.html", reference=cookie.get("help_reference"))


@bp.route("/help/confirm/<token>", methods=["GET", "POST"])
@public
def help_confirm(token: str):
    """The one-time link from the email: a page with a button (mail scanners that open links confirm nothing)."""
    from casework import help_requests as helpdesk
    from correspondence.models import utcnow

    session = db_session()
    form = ActionForm()
    try:
        if request.method == "POST":
            if not form.validate_on_submit():
                abort(400, description="The form expired; reload the page and try again.")
            help_request, reason = helpdesk.confirm_email(session, token[:200], now=utcnow())
            reference = help_request.reference
            session.commit()
            return render_template("help_confirm.html", state="confirmed", reference=reference,
                                   release_on_file=reason is None, form=form)
        help_request = helpdesk.find_by_token(session, token[:200], now=utcnow())
    except helpdesk.ConfirmLinkInvalid as exc:
        session.rollback()
        return render_template("help_confirm.html", state="invalid", problem=str(exc), form=form), 410
    return render_template("help_confirm.html", state="ask", reference=help_request.reference,
                           typed_name=help_request.typed_name, form=form)


def _dispatch(effects) -> None:
    """After the commit: queue the emails the use case asked for (workers.effects). A Redis outage loses
    nothing that matters: the case page shows the link was never sent and offers to send it again."""
    from workers.effects import dispatch

    dispatch(effects)
