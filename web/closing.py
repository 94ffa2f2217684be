"""Closing the office (admins): the numbered steps of archive/closing.py on one page, and a case's transfer
consent (caseworkers, on the case page)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from archive import closing as service
from correspondence.models import Role, Staffer
from web import db_session, settings
from web.access import roles
from web.forms import ActionForm
from web.outcome import Step, run_action

bp = Blueprint("closing", __name__)


def _folder(step: str) -> Path:
    """Where a step queued from this page writes: a new folder under the instance, named by the time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return settings().instance_dir / "closing" / f"{step.replace('_', '-')}-{stamp}"


@bp.route("/admin/closing")
@roles(Role.ADMIN)
def index():
    session = db_session()
    closing = service.get_closing(session)
    names = dict(session.execute(select(Staffer.id, Staffer.name)).all())
    consented, without = service.consent_counts(session)
    return render_template("closing.html", closing=closing, names=names, office=settings().office_name,
                           replies=service.auto_reply_count(session), consented=consented, without=without,
                           purge_refusal=service.purge_refusal(session), form=ActionForm(),
                           step_words=service._STEP_WORDS)


def _act(work) -> object:
    here = url_for("closing.index")
    return run_action(db_session(), work, back=here)


@bp.route("/admin/closing/stop-intake", methods=["POST"])
@roles(Role.ADMIN)
def stop_intake():
    def work() -> Step:
        existed = service.get_closing(db_session()) is not None
        form = request.form
        service.stop_intake(db_session(), actor_id=current_user.id, successor_name=form.get("successor_name", ""),
                            successor_contact=form.get("successor_contact", ""))
        return ("The successor's contact is saved." if existed else
                "Intake stopped: mailboxes paused, and the public forms now say the office has closed.",
                url_for("closing.index"))

    return _act(work)


@bp.route("/admin/closing/final-export", methods=["POST"])
@roles(Role.ADMIN)
def final_export():
    def work() -> Step:
        done = service.request_step(db_session(), "final_export", actor_id=current_user.id,
                                    dest=_folder("final_export"))
        return ("The final export has started; this page shows when it is done.", url_for("closing.index"),
                done.effects)

    return _act(work)


@bp.route("/admin/closing/handover", methods=["POST"])
@roles(Role.ADMIN)
def handover():
    def work() -> Step:
        done = service.request_step(db_session(), "handover", actor_id=current_user.id, dest=_folder("handover"))
        return ("The hand-over export has started; this page shows when it is done.", url_for("closing.index"),
                done.effects)

    return _act(work)


@bp.route("/admin/closing/purge", methods=["POST"])
@roles(Role.ADMIN)
def purge():
    def work() -> Step:
        done = service.request_purge(db_session(), actor_id=current_user.id,
                                     typed_name=request.form.get("office_name", ""), office_name=settings().office_name)
        return ("The final purge has started: it checks the final export against the database once more, then "
                "deletes. This page shows when it is done.", url_for("closing.index"), done.effects)

    return _act(work)


@bp.route("/cases/<int:case_id>/transfer-consent", methods=["POST"])
@roles(Role.ADMIN, Role.SUPERVISOR, Role.CASEWORKER)
def case_consent(case_id: int):
    here = url_for("cases.view", case_id=case_id)

    def work() -> Step:
        consent = request.form.get("consent") == "yes"
        service.set_transfer_consent(db_session(), case_id, consent, actor_id=current_user.id)
        return ("Recorded: the constituent agreed that this case may go to the successor office." if consent else
                "Consent withdrawn: this case will not go to the successor office.", here)

    return run_action(db_session(), work, back=here)
