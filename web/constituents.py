"""The constituent record: profile, tags, duplicates and merge, segments with CSV and follow-ups, import."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from constituents import duplicates, imports, segments
from constituents import records as service
from correspondence.csvsafe import rows_to_csv
from correspondence.errors import DomainError, ValidationFailed
from correspondence.models import AuditEvent, Constituent, Message, Role, Segment
from correspondence.models import Response as Answer
from correspondence.services.history import history_of
from web import db_session, settings, stream_from_database
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.inbox import UrlValues
from web.inputs import parse_id, segment_filter
from web.outcome import run_action

bp = Blueprint("constituents", __name__, url_prefix="/constituents")

IMPORTERS = (Role.ADMIN, Role.SUPERVISOR)
SENDERS = (Role.ADMIN, Role.SUPERVISOR, Role.CORRESPONDENT)


def _person_or_404(session, constituent_id: int) -> Constituent:
    return service.get_constituent(session, constituent_id)


@bp.route("/<int:constituent_id>")
@roles(*ALL_STAFF)
def view(constituent_id: int):
    session = db_session()
    person = _person_or_404(session, constituent_id)
    changes = history_of(session, "constituent", person.id)
    merged_into = session.get(Constituent, person.merged_into_id) if person.merged_into_id else None
    from casework.cases import may_see_private

    me = current_user._get_current_object()
    history = service.timeline(session, person.id, notes_of=lambda case: may_see_private(me, case))
    from outbound.subscriptions import STATUS_LABELS, list_summaries, subscriptions_of
    from outbound.suppression import LABELS, standing

    return render_template("constituent.html", person=person, timeline=history,
                           subscriptions=subscriptions_of(session, person.id, [e.address for e in person.emails]),
                           subscription_words=STATUS_LABELS, lists=[s.item for s in list_summaries(session)],
                           standing=standing(session, (e.address for e in person.emails)), reasons=LABELS,
                           changes=changes, fields=service.EDITABLE, form=ActionForm(), merged_into=merged_into,
                           candidates=[] if merged_into else duplicates.candidates_for(session, person.id),
                           merges=duplicates.merges_of(session, person.id))


@bp.route("/<int:constituent_id>/edit", methods=["POST"])
@roles(*ALL_STAFF)
def edit(constituent_id: int):
    session = db_session()
    back = url_for("constituents.view", constituent_id=constituent_id)

    def change() -> tuple[str, str]:
        service.update_constituent(session, constituent_id, {k: request.form.get(k, "") for k in service.EDITABLE},
                                   actor_id=current_user.id)
        return "Saved.", back

    return run_action(session, change, back=back)


@bp.route("/<int:constituent_id>/tags", methods=["POST"])
@roles(*ALL_STAFF)
def tags(constituent_id: int):
    session = db_session()
    back = url_for("constituents.view", constituent_id=constituent_id)

    def change() -> tuple[str, str]:
        if request.form.get("remove"):
            service.remove_tag(session, constituent_id, request.form["remove"], actor_id=current_user.id)
            return f"Tag {request.form['remove']!r} removed.", back
        tag = service.add_tag(session, constituent_id, request.form.get("tag", ""), actor_id=current_user.id)
        return f"Tagged {tag!r}.", back

    return run_action(session, change, back=back)


@bp.route("/<int:constituent_id>/contacts", methods=["POST"])
@roles(*ALL_STAFF)
def contacts(constituent_id: int):
    session = db_session()
    back = url_for("constituents.view", constituent_id=constituent_id)

    def change() -> tuple[str, str]:
        kind = request.form.get("kind", "")
        if request.form.get("restore"):  # mail may go to a bounced / unsubscribed address again (audited)
            from outbound.suppression import restore_by_address

            address = request.form["restore"]
            if address.strip().lower() not in {e.address for e in _person_or_404(session, constituent_id).emails}:
                raise ValidationFailed(f"{address} is not one of this person's addresses")
            restore_by_address(session, address, actor_id=current_user.id)
            return f"Mail may go to {address} again.", back
        if request.form.get("remove"):
            service.remove_contact(session, constituent_id, kind, request.form["remove"], actor_id=current_user.id)
            return f"Removed {request.form['remove']}.", back
        value = service.add_contact(session, constituent_id, kind, request.form.get("value", ""),
                                    actor_id=current_user.id)
        return f"Added {value}.", back

    return run_action(session, change, back=back)


# --- duplicates and merge ----------------------------------------------------------------------

@bp.route("/duplicates")
@roles(*ALL_STAFF)
def duplicate_list():
    return render_template("duplicates.html", pairs=duplicates.office_candidates(db_session()))


@bp.route("/<int:keep_id>/merge/<int:other_id>", methods=["GET", "POST"])
@roles(*ALL_STAFF)
def merge(keep_id: int, other_id: int):
    session = db_session()
    keep, other = _person_or_404(session, keep_id), _person_or_404(session, other_id)
    if request.method == "POST":
        back = url_for("constituents.merge", keep_id=keep_id, other_id=other_id)

        def act() -> tuple[str, str]:
            duplicates.merge(session, keep_id, other_id, actor_id=current_user.id)
            return (f"Merged record {other_id} into this one; everything it held is here now. "
                    "Undo is below if this was a mistake."), url_for("constituents.view", constituent_id=keep_id)

        return run_action(session, act, back=back, failed="Not merged: ")
    counts = {}
    for person in (keep, other):
        counts[person.id] = {
            "messages": session.scalar(select(func.count()).select_from(Message)
                                       .where(Message.constituent_id == person.id)) or 0,
            "answers": session.scalar(select(func.count()).select_from(Answer)
                                      .where(Answer.constituent_id == person.id)) or 0,
        }
    return render_template("merge.html", keep=keep, other=other, counts=counts, fields=service.EDITABLE,
                           form=ActionForm())


@bp.route("/merges/<int:event_id>/undo", methods=["POST"])
@roles(*ALL_STAFF)
def undo_merge(event_id: int):
    session = db_session()
    event = session.get(AuditEvent, event_id)
    if event is None or event.action != "constituent.merge":
        abort(404, description=f"There is no merge {event_id}.")
    back = url_for("constituents.view", constituent_id=int(event.object_id))

    def act() -> tuple[str, str]:
        gone = duplicates.undo_merge(session, event_id, actor_id=current_user.id)
        return f"Merge undone: record {gone.id} has its own messages, answers and cases again.", back

    return run_action(session, act, back=back, failed="Not undone: ")


# --- segments -----------------------------------------------------------------------------------

def _filter_from_request(session):
    """The filter in the query string, or a saved segment's (?segment=N); (filter, segment, error)."""
    segment = None
    segment_id = parse_id(request.args.get("segment", ""))
    if segment_id and not request.args.get("edited"):
        segment = segments.get_segment(session, segment_id)
        return segments.SegmentFilter.from_dict(segment.filters), segment, None
    if segment_id:
        segment = session.get(Segment, segment_id)
    try:
        return segment_filter(request.args), segment, None
    except ValidationFailed as exc:
        return segments.SegmentFilter(), segment, str(exc)


def _filter_query(flt) -> str:
    data = flt.to_dict()
    pairs = [("zips", " ".join(data["zips"])), ("city", data["city"]), ("district", data["district"]),
             ("stance", data["stance"]), ("batch_id", data["batch_id"] or ""),
             ("active_from", data["active_from"] or ""), ("active_to", data["active_to"] or ""),
             ("tags", ", ".join(data["tags"])), ("find", data["find"])]
    pairs += [("topic_id", t) for t in data["topic_ids"]]
    return urlencode([(k, v) for k, v in pairs if v])


@bp.route("/")
@roles(*ALL_STAFF)
def index():
    """Constituents: build a segment with live counts, see its members, save it, download it."""
    from correspondence.models import Topic

    session = db_session()
    flt, segment, error = _filter_from_request(session)
    if error:
        flash(error, "error")
    after = request.args.get("after", "0")
    after_id = parse_id(after) or 0
    people = segments.members(session, flt, limit=50, after_id=after_id)
    topics = list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name)))
    names = {t.id: t.name for t in topics}
    return render_template("constituents.html", flt=flt, segment=segment, total=segments.count(session, flt),
                           people=people, topics=topics, description=flt.describe(names),
                           saved=segments.list_segments(session), query=_filter_query(flt),
                           next_after=people[-1].id if len(people) == 50 else None, after_id=after_id,
                           form=ActionForm(),
                           tags=service.all_tags(session)[:200])


@bp.route("/count.json")
@roles(*ALL_STAFF)
def count_json():
    """The live count as the filter form changes."""
    session = db_session()
    try:
        flt = segment_filter(request.args)
    except ValidationFailed as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"count": segments.count(session, flt)})


@bp.route("/export.csv")
@roles(*ALL_STAFF)
def export_csv():
    """Every member of the filter (or saved segment) as CSV; cells are neutralised against formulas."""
    from correspondence.services.audit import record

    session = db_session()
    flt, segment, error = _filter_from_request(session)
    if error:
        abort(400, description=error)
    record(session, actor_id=current_user.id, action="constituents.export", object_type="segment",
           object_id=segment.id if segment else 0, after={"filters": flt.to_dict()})
    session.commit()
    name = f"segment-{segment.id}" if segment else "constituents"
    # The audit event above goes to the primary; the rows may come from the read replica (a moment old).
    rows = rows_to_csv(segments.CSV_HEADER, stream_from_database(lambda s: segments.csv_rows(s, flt), replica=True))
    return Response(rows, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@bp.route("/segments", methods=["POST"])
@roles(*ALL_STAFF)
def save_segment():
    session = db_session()
    raw = request.form.get("filter", "")
    back = url_for("constituents.index") + ("?" + raw if raw else "")

    def act() -> tuple[str, str]:
        from urllib.parse import parse_qs

        from werkzeug.datastructures import MultiDict

        args = MultiDict([(k, v) for k, vs in parse_qs(raw).items() for v in vs])
        flt = segment_filter(args)
        segment_id = request.form.get("segment_id", "")
        segment = segments.save_segment(session, request.form.get("name", ""), flt, actor_id=current_user.id,
                                        segment_id=parse_id(segment_id))
        return f"Segment “{segment.name}” saved.", url_for("constituents.index", segment=segment.id)

    return run_action(session, act, back=back, failed="Not saved: ")


@bp.route("/segments/<int:segment_id>/delete", methods=["POST"])
@roles(*ALL_STAFF)
def delete_segment(segment_id: int):
    session = db_session()

    def act() -> tuple[str, str]:
        segments.delete_segment(session, segment_id, actor_id=current_user.id)
        return "Segment deleted (the people in it are untouched).", url_for("constituents.index")

    return run_action(session, act, back=url_for("constituents.index", segment=segment_id))


@bp.route("/segments/<int:segment_id>/follow-up", methods=["GET", "POST"])
@roles(*SENDERS)
def follow_up(segment_id: int):
    """Send an approved letter to everyone in a segment, through apply to all."""
    from drafting.apply import queue_apply_run
    from outbound.franking import Rules
    from web.letters import approved_letters
    from web.outcome import after_commit

    session = db_session()
    segment = segments.get_segment(session, segment_id)
    flt = segments.SegmentFilter.from_dict(segment.filters)
    approved = approved_letters(session)
    if request.method == "POST":
        version_id = request.form.get("version_id", "")
        try:
            chosen = next((v for v in approved if str(v.id) == version_id), None)
            if chosen is None:
                raise ValidationFailed("choose one of the approved letters")
            ids = segments.follow_up_messages(session, segment, chosen.id, f"Follow-up: {chosen.letter.title}",
                                              actor_id=current_user.id)
            rules = Rules.of(settings())
            if request.form.get("split") == "1":  # "split at 499": only the first letters up to the limit
                from outbound.franking import split_at_threshold

                ids, left_out = split_at_threshold(session, ids, letter_id=chosen.letter_id, rules=rules,
                                                   today=rules.today(), actor_id=current_user.id)
                flash(f"Only the first letters up to the limit of {rules.threshold:,} go out; "
                      f"{left_out:,} {'person is' if left_out == 1 else 'people are'} left out.", "ok")
            done = queue_apply_run(session, chosen.id, message_ids=ids, actor_id=current_user.id, rules=rules)
        except DomainError as exc:
            session.rollback()
            flash(f"Not sent: {exc}", "error")
            # Back to the numbers and the guard's verdict for the letter that was refused, not the first one.
            return redirect(url_for("constituents.follow_up", segment_id=segment_id,
                                    version_id=parse_id(version_id) or None)), 303
        session.commit()
        after_commit(done.effects)
        return redirect(url_for("letters.run", run_id=done.value.id)), 303
    # The guard's verdict is for the letter asked for (?version_id=), else the first approved one.
    asked = next((v for v in approved if str(v.id) == request.args.get("version_id")), None)
    shown = asked or (approved[0] if approved else None)
    return render_template("follow_up.html", segment=segment, approved=approved, chosen=asked,
                           counts=segments.follow_up_plan(session, flt, rules=Rules.of(settings()),
                                                          version=shown), form=ActionForm(),
                           description=flt.describe(segments.topic_names(session)))


@bp.route("/segments/<int:segment_id>/follow-up/packet")
@roles(Role.ADMIN, Role.SUPERVISOR)
def follow_up_packet(segment_id: int):
    """The advisory-opinion packet for this follow-up (outbound.packet): a ZIP of the exact email and a PDF."""
    import io
    import zipfile

    from outbound import franking
    from outbound.packet import build_packet
    from web.letters import approved_letters

    session = db_session()
    segment = segments.get_segment(session, segment_id)
    flt = segments.SegmentFilter.from_dict(segment.filters)
    chosen = next((v for v in approved_letters(session) if str(v.id) == request.args.get("version_id")), None)
    if chosen is None:
        abort(404)
    rules = franking.Rules.of(settings())
    people = segments.apply_filter(select(Constituent.id), flt)
    packet = build_packet(session, chosen.id, list(session.scalars(people)),
                          pieces=franking.pieces_for_people(session, people, letter_id=chosen.letter_id),
                          settings=settings(), rules=rules, today=rules.today())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("message.eml", packet.eml)
        archive.writestr("packet.pdf", packet.pdf)
    return Response(out.getvalue(), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{packet.filename}.zip"'})


# --- CSV import ----------------------------------------------------------------------------------

@bp.route("/import", methods=["GET", "POST"])
@roles(*IMPORTERS)
def import_upload():
    session = db_session()
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash("Choose a CSV file to upload.", "error")
            return redirect(url_for("constituents.import_upload")), 303
        try:
            imp = imports.upload(session, upload.read(), upload.filename, actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            flash(f"Not imported: {exc}", "error")
            return redirect(url_for("constituents.import_upload")), 303
        session.commit()
        return redirect(url_for("constituents.import_view", import_id=imp.id)), 303
    return render_template("import_upload.html", recent=imports.recent_imports(session), form=ActionForm())


def _import_or_404(session, import_id: int):
    return imports.get_import(session, import_id)


@bp.route("/import/<int:import_id>", methods=["GET", "POST"])
@roles(*IMPORTERS)
def import_view(import_id: int):
    """Map columns and preview (GET with ?map_N=field), then start the import (POST)."""
    from web.outcome import after_commit

    session = db_session()
    imp = _import_or_404(session, import_id)
    if request.method == "POST":
        mapping = {k[4:]: v for k, v in request.form.items() if k.startswith("map_")}
        try:
            done = imports.queue_import(session, imp.id, mapping, request.form.get("tag", ""),
                                        actor_id=current_user.id)
        except DomainError as exc:
            session.rollback()
            flash(f"Not started: {exc}", "error")
            chosen: UrlValues = {f"map_{k}": v for k, v in mapping.items()}
            return redirect(url_for("constituents.import_view", import_id=imp.id, **chosen)), 303
        session.commit()
        after_commit(done.effects)
        flash("Import started.", "ok")
        return redirect(url_for("constituents.import_view", import_id=imp.id)), 303
    mapping = dict(imp.mapping or {})
    if any(k.startswith("map_") for k in request.args):
        mapping = {k[4:]: v for k, v in request.args.items() if k.startswith("map_") and v}
    problem, rows = None, []
    try:
        if imp.state == "uploaded":
            imports.check_mapping(mapping, imp.columns)
    except ValidationFailed as exc:
        problem = str(exc)
    if imp.state == "uploaded":
        rows = imports.preview(session, imp, mapping)
    return render_template("import_view.html", imp=imp, mapping=mapping, fields=imports.FIELDS, rows=rows,
                           problem=problem, form=ActionForm())


@bp.route("/import/<int:import_id>.json")
@roles(*IMPORTERS)
def import_progress(import_id: int):
    imp = _import_or_404(db_session(), import_id)
    return jsonify({"state": imp.state, "total": imp.total_rows, "done": imp.done_rows, "created": imp.created,
                    "matched": imp.matched, "bad": imp.bad, "error": imp.error})


@bp.route("/import/<int:import_id>/bad-rows.csv")
@roles(*IMPORTERS)
def import_bad_rows(import_id: int):
    from correspondence.services.blobs import load_blob

    session = db_session()
    imp = _import_or_404(session, import_id)
    if not imp.bad_rows_sha256:
        abort(404, description="This import has no bad rows.")
    return Response(load_blob(session, imp.bad_rows_sha256), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="import-{imp.id}-bad-rows.csv"'})


