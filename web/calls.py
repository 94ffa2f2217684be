"""Quick entry of a phone call or walk-in visit: one form, stored and processed like any other message."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from correspondence.models import Stance, Topic
from correspondence.services.messages import set_topic
from intake.phone import PhoneEntryInvalid, incoming_call
from intake.pipeline import Rules, process_message
from intake.receive import receive
from web import db_session, settings
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.inputs import parse_id

bp = Blueprint("calls", __name__, url_prefix="/calls")


@bp.route("/new", methods=["GET", "POST"])
@roles(*ALL_STAFF)
def new():
    session = db_session()
    form = ActionForm()
    topics = list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name)))
    errors: dict[str, str] = {}
    if request.method == "POST" and form.validate_on_submit():
        try:
            item = incoming_call(request.form, nonce=request.form.get("nonce", ""), staffer_id=current_user.id)
        except PhoneEntryInvalid as exc:
            errors = exc.errors
        else:
            result = receive(session, item, max_bytes=settings().max_message_bytes)
            message = process_message(session, result.message_id, rules=Rules.from_settings(settings()))
            topic = request.form.get("topic_id", "")
            if parse_id(topic):
                set_topic(session, message.id, parse_id(topic), actor_id=current_user.id)
            session.commit()
            flash("Logged." if not result.duplicate else "That was already logged.", "ok")
            return redirect(url_for("messages.view", message_id=result.message_id)), 303
    elif request.method == "POST":
        errors = {"form": "the form expired; reload it and try again"}
    status = 400 if errors else 200
    return render_template("call_new.html", form=form, topics=topics, stances=list(Stance), errors=errors,
                           values=request.form, nonce=request.form.get("nonce") or uuid.uuid4().hex), status
