"""Casework pages: the case list, a case with its steps and the privacy-release gate, and the public
help-request form that opens a case with an electronic signature."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from casework import cases as service
from correspondence.errors import DomainError, NotFound, ValidationFailed
from correspondence.models import (
    CaseCategory,
    CaseDocument,
    CaseNote,
    CasePriority,
    CaseStatus,
    Constituent,
    ConstituentEmail,
    Message,
    Role,
    Staffer,
)
from correspondence.services.blobs import load_blob
from correspondence.services.staff import list_staff
from web import db_session, settings
from web.access import ALL_STAFF, public, roles
from web.forms import ActionForm
from web.inputs import parse_id
from web.outcome import run_action

bp = Blueprint("cases", __name__)

CASE_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.CASEWORKER)


@bp.route("/cases/")
@roles(*ALL_STAFF)
def index():  # type: ignore[no-untyped-def]
    session = db_session()
    mine = request.args.get("who", "mine" if current_user.role == Role.CASEWORKER else "all") == "mine"
    items = service.list_cases(session, caseworker_id=current_user.id if mine else None,
                               open_only=request.args.get("closed") != "1")
    from casework.reminders import due_steps

    return render_template("cases.html", cases=items, mine=mine, args=request.args,
                           due=due_steps(session, staffer_id=current_user.id, limit=51).get(current_user.id, []))


@bp.route("/cases/export.csv")
@roles(*ALL_STAFF)
def export_csv():  # type: ignore[no-untyped-def]
    """The case list as CSV (mine or everyone's, open or all), formula-safe."""
    from correspondence.csvsafe import rows_to_csv

    session = db_session()
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
def new():  # type: ignore[no-untyped-def]
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
            category = request.form.get("category_id", "")
            worker = request.form.get("caseworker_id", "")
            case = service.open_from_message(session, message.id, category_id=parse_id(category) or 0,
                                             actor_id=current_user.id, caseworker_id=parse_id(worker))
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
def view(case_id: int):  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        case = service.get_case(session, case_id)
    except NotFound:
        abort(404, description=f"There is no case {case_id}.")
    notes = list(session.scalars(select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.id.desc())))
    docs = list(session.scalars(select(CaseDocument).where(CaseDocument.case_id == case.id)
                                .order_by(CaseDocument.id.desc())))
    messages = list(session.scalars(select(Message).where(Message.constituent_id == case.constituent_id)
                                    .order_by(Message.received_at.desc()).limit(10)))
    return render_template("case.html", case=case, steps=service.steps(session, case.id), notes=notes, docs=docs,
                           messages=messages, history=service.timeline(session, case.id),
                           release_on_file=service.release_on_file(case), statuses=list(CaseStatus),
                           priorities=list(CasePriority), form=ActionForm(),
                           staff=list(session.scalars(select(Staffer).where(Staffer.active.is_(True))
                                                      .order_by(Staffer.name))))


@bp.route("/cases/<int:case_id>/<action>", methods=["POST"])
@roles(*CASE_ROLES)
def act(case_id: int, action: str):  # type: ignore[no-untyped-def]
    session = db_session()
    me = current_user.id

    def decide() -> tuple[str, str]:
        service.get_case(session, case_id)
        if action == "step":
            raw = request.form.get("step_id", "")
            if parse_id(raw) is None:
                raise ValidationFailed("choose the step")
            step = service.complete_step(session, parse_id(raw), actor_id=me)
            if step.case_id != case_id:
                raise NotFound("that step belongs to another case")
            message = f"Done: {step.title}."
        elif action == "status":
            try:
                target = CaseStatus(request.form.get("value", ""))
            except ValueError as exc:
                raise ValidationFailed("choose a status") from exc
            service.set_status(session, case_id, target, actor_id=me, outcome=request.form.get("outcome"))
            message = f"Case is now {target.value.replace('_', ' ')}."
        elif action == "details":
            service.update_details(session, case_id, {k: request.form.get(k, "") for k in (
                "subject", "agency", "agency_contact", "priority", "caseworker_id", "due") if k in request.form},
                actor_id=me)
            message = "Case details saved."
        elif action == "add-step":
            step = service.add_step(session, case_id, request.form.get("title", ""), due=request.form.get("due"),
                                    assignee_id=request.form.get("assignee_id"), actor_id=me)
            message = f"Step added: {step.title}."
        elif action == "reassign-step":
            raw = request.form.get("step_id", "")
            if parse_id(raw) is None:
                raise ValidationFailed("choose the step")
            step = service.reassign_step(session, parse_id(raw), request.form.get("assignee_id"),
                                         due=request.form.get("due"), actor_id=me)
            if step.case_id != case_id:
                raise NotFound("that step belongs to another case")
            message = f"Step updated: {step.title}."
        elif action == "note":
            service.add_note(session, case_id, request.form.get("text", ""), actor_id=me)
            message = "Note added."
        elif action in ("document", "release"):
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                raise ValidationFailed("choose a file to upload")
            data = upload.read(service.MAX_DOCUMENT_BYTES + 1)
            kind = (upload.mimetype or "").split(";")[0]
            if action == "release":
                service.record_release(session, case_id, data, upload.filename, kind, actor_id=me)
                message = "Signed privacy release on file: the agency inquiry can be sent."
            else:
                service.add_document(session, case_id, data, upload.filename, kind, actor_id=me)
                message = "Document added."
        else:
            abort(404, description=f"Unknown case action {action!r}.")
        return message, url_for("cases.view", case_id=case_id)

    return run_action(session, decide, back=url_for("cases.view", case_id=case_id))


@bp.route("/cases/<int:case_id>/documents/<int:document_id>")
@roles(*ALL_STAFF)
def document(case_id: int, document_id: int):  # type: ignore[no-untyped-def]
    session = db_session()
    doc = session.get(CaseDocument, document_id)
    data = load_blob(session, doc.sha256) if doc is not None and doc.case_id == case_id else None
    if data is None:
        abort(404, description="There is no such document.")
    return Response(data, mimetype=doc.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{doc.filename}"'})


@bp.route("/cases/<int:case_id>/release.pdf")
@roles(*ALL_STAFF)
def release_pdf(case_id: int):  # type: ignore[no-untyped-def]
    """The privacy release, filled in with the constituent's details, to print and sign."""
    from casework.release import release_pdf as build

    session = db_session()
    try:
        case = service.get_case(session, case_id)
    except NotFound:
        abort(404, description=f"There is no case {case_id}.")
    return Response(build(case, settings()), mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="privacy-release-case-{case_id}.pdf"'})


@bp.route("/help", methods=["GET", "POST"])
@public
def help_request():  # type: ignore[no-untyped-def]
    """The office's public kickoff form: asks for help, opens a case, signs the release online."""
    session = db_session()
    cats = service.categories(session)
    errors: dict[str, str] = {}
    form = ActionForm()
    f = request.form
    if request.method == "POST" and form.validate_on_submit():
        values = {k: (f.get(k) or "").strip() for k in ("first_name", "last_name", "email", "phone", "street",
                                                         "city", "state", "zip5", "description", "signature")}
        for key, label in (("first_name", "first name"), ("last_name", "last name"), ("email", "email"),
                           ("street", "street"), ("city", "city"), ("state", "state"), ("zip5", "ZIP code"),
                           ("description", "what you need help with")):
            if not values[key]:
                errors[key] = f"enter your {label}"
        if values["zip5"] and not (len(values["zip5"]) == 5 and values["zip5"].isdigit()):
            errors["zip5"] = "must be 5 digits"
        if values["email"] and "@" not in values["email"]:
            errors["email"] = "is not an email address"
        category_id = parse_id(f.get("category_id", ""))
        category = session.get(CaseCategory, category_id) if category_id else None
        if category is None:
            errors["category_id"] = "choose what your request is about"
        if f.get("consent") != "yes":
            errors["consent"] = "tick the box to authorise the office to act for you"
        full = f"{values['first_name']} {values['last_name']}".strip().lower()
        if " ".join(values["signature"].lower().split()) != " ".join(full.split()):
            errors["signature"] = "type your full name exactly as above to sign"
        if not errors:
            address = values["email"].lower()
            person_id = session.scalar(select(ConstituentEmail.constituent_id)
                                       .where(ConstituentEmail.address == address))
            if person_id is None:
                person = Constituent(first_name=values["first_name"][:100], last_name=values["last_name"][:100],
                                     address1=values["street"][:200], city=values["city"][:100],
                                     state=values["state"][:2].upper(), zip5=values["zip5"])
                person.emails.append(ConstituentEmail(address=address[:320]))
                session.add(person)
                session.flush()
                person_id = person.id
            case = service.open_case(session, constituent_id=person_id, category_id=category.id,
                                     subject=values["description"][:120], actor_id=None,
                                     priority=CasePriority.NORMAL)
            service.add_note(session, case.id, f"Request from the help form:\n{values['description']}",
                             actor_id=None)
            service.record_e_signature(session, case.id, typed_name=values["signature"], ip=request.remote_addr)
            session.commit()
            return render_template("help_done.html", case_id=case.id)
    elif request.method == "POST":
        errors = {"form": "the form expired; reload the page and try again"}
    return render_template("help.html", categories=cats, errors=errors, values=f, form=form,
                           office=settings().office_name), 400 if errors else 200
