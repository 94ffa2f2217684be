"""Uploading scanned letters: each file is stored at once and read (OCR) by a worker."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from correspondence.effects import Effect
from intake.receive import receive
from intake.scans import incoming_scan
from web import db_session, settings
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.outcome import after_commit

bp = Blueprint("scans", __name__, url_prefix="/scans")


@bp.route("/upload", methods=["GET", "POST"])
@roles(*ALL_STAFF)
def upload():
    form = ActionForm()
    if request.method == "POST":
        files = [f for f in request.files.getlist("scans") if f and f.filename]
        if not files:
            flash("Choose at least one scanned letter (PDF, PNG, JPEG or TIFF).", "error")
            return render_template("scans_upload.html", form=form), 400
        session = db_session()
        stored: list[int] = []
        refused: list[str] = []
        effects: list[Effect] = []
        duplicates = 0
        for upload_file in files:
            raw, name = upload_file.read(), upload_file.filename or ""  # files without a name were left out
            result = receive(session, incoming_scan(raw, f"upload:{name[:80]}"),
                             max_bytes=settings().max_message_bytes)
            if result.duplicate:
                duplicates += 1
            elif result.quarantined:
                refused.append(f"{name}: {result.quarantined}")
            else:
                stored.append(result.message_id)
            effects.extend(result.effects)
        session.commit()
        after_commit(effects)
        flash(f"{len(stored)} letter(s) stored and queued for reading"
              + (f"; {duplicates} already uploaded" if duplicates else "") + ".", "ok")
        for problem in refused:
            flash(f"Quarantined — {problem}", "error")
        return redirect(url_for("scans.upload")), 303
    return render_template("scans_upload.html", form=form)
