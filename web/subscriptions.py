"""Subscription lists and newsletters: the staff page, the public sign-up (double opt-in) and web versions.

Public routes (no sign-in, rate-limited by web/ratelimit.py: the sign-up POST in its own "signup" group, with a
few confirmation emails a day per address; CSRF on every form):
``/subscribe/<list>`` takes an address and always answers the same way ("check your email"), so the page
tells nobody whether an address is on a list; ``/subscribe/confirm/<token>`` shows a button (link scanners
open every URL in a mail and must confirm nobody) and the POST confirms; ``/n/<token>`` shows a sent
newsletter, rendered for nobody in particular, to whoever holds its unguessable link.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from correspondence.errors import DomainError, ValidationFailed
from correspondence.models import FormLetter, LetterVersion, Role, Segment, SubscriptionSource, VersionState
from drafting.apply import budget_of, office_of
from drafting.render import to_html
from outbound import franking, newsletters, subscriptions
from web import db_session, settings
from web.access import public, roles
from web.forms import ActionForm
from web.inputs import optional_id
from web.outcome import after_commit, run_action

bp = Blueprint("subscriptions", __name__)

MANAGE = (Role.ADMIN, Role.SUPERVISOR)
ALL_STAFF = tuple(Role)


@bp.route("/subscriptions/")
@roles(*ALL_STAFF)
def lists():
    session = db_session()
    versions = list(session.execute(
        select(LetterVersion.id, FormLetter.title, LetterVersion.number)
        .join(FormLetter, FormLetter.id == LetterVersion.letter_id)
        .where(LetterVersion.state == VersionState.APPROVED, FormLetter.one_off_message_id.is_(None),
               FormLetter.retired.is_(False))
        .order_by(FormLetter.title, LetterVersion.number.desc())))
    segments = list(session.scalars(select(Segment).order_by(Segment.name)))
    return render_template("subscriptions.html", lists=subscriptions.list_summaries(session),
                           sent=newsletters.recent(session), versions=versions, segments=segments,
                           may_manage=current_user.role in MANAGE, form=ActionForm())


@bp.route("/subscriptions/lists", methods=["POST"])
@roles(*MANAGE)
def create_list():
    session = db_session()

    def act() -> tuple[str, str]:
        made = subscriptions.create_list(session, request.form.get("name", ""),
                                         description=request.form.get("description", ""),
                                         public=request.form.get("public") == "yes", actor_id=current_user.id)
        return f"The list “{made.name}” is made.", url_for("subscriptions.lists")

    return run_action(session, act, back=url_for("subscriptions.lists"), failed="List not made: ")


@bp.route("/subscriptions/import", methods=["POST"])
@roles(*MANAGE)
def import_csv():
    session = db_session()
    upload = request.files.get("file")

    def act() -> tuple[str, str]:
        list_id = optional_id(request.form.get("list_id"), "list")
        if list_id is None:
            raise ValidationFailed("choose a list")
        if upload is None or not upload.filename:
            raise ValidationFailed("choose a CSV file")
        data = upload.read(20 * 1024 * 1024 + 1)
        if len(data) > 20 * 1024 * 1024:
            raise ValidationFailed("the file is larger than 20 MB; split it")
        done = subscriptions.import_addresses(session, list_id, data, legal_basis=request.form.get("legal_basis", ""),
                                              actor_id=current_user.id)
        words = (f"{done.added} added, {done.already} already on the list, {done.kept_unsubscribed} left off "
                 f"because they unsubscribed")
        if done.problems:
            words += f"; {len(done.problems)} rows not used ({'; '.join(done.problems[:3])})"
        return f"Imported: {words}.", url_for("subscriptions.lists")

    return run_action(session, act, back=url_for("subscriptions.lists"), failed="Not imported: ")


@bp.route("/subscriptions/newsletters", methods=["POST"])
@roles(*MANAGE)
def send_newsletter():
    session = db_session()
    config = settings()

    def chosen() -> tuple[int, newsletters.Audience]:
        version_id = optional_id(request.form.get("version_id"), "version_id")
        if version_id is None:
            raise ValidationFailed("choose the approved letter to send")
        target = request.form.get("audience", "")
        kind, _, number = target.partition(":")
        return version_id, newsletters.Audience(
            list_id=optional_id(number, "list") if kind == "list" else None,
            segment_id=optional_id(number, "segment") if kind == "segment" else None)

    if request.form.get("confirmed") != "yes":
        # The dry run first: who gets it, who is left out and why, and the mass-mail verdict; nothing changes.
        try:
            version_id, audience = chosen()
            check = newsletters.check_newsletter(session, version_id, audience, rules=franking.Rules.of(config))
        except DomainError as exc:
            flash(f"Newsletter not sent: {exc}", "error")
            return redirect(url_for("subscriptions.lists")), 303
        return render_template("newsletter_check.html", check=check, version_id=version_id,
                               audience=request.form.get("audience", ""), form=ActionForm())

    def act():
        version_id, audience = chosen()
        done = newsletters.start_newsletter(session, version_id, audience, actor_id=current_user.id,
                                            secret_key=config.secret_key, office=office_of(config),
                                            budget=budget_of(config), rules=franking.Rules.of(config))
        return (f"The newsletter is on its way to {done.value.recipients} people; suppressed addresses are "
                "left out.", url_for("subscriptions.lists"), done.effects)

    return run_action(session, act, back=url_for("subscriptions.lists"), failed="Newsletter not sent: ")


@bp.route("/constituents/<int:constituent_id>/subscriptions", methods=["POST"])
@roles(*ALL_STAFF)
def staff_subscribe(constituent_id: int):
    from constituents.records import get_constituent

    session = db_session()
    back = url_for("constituents.view", constituent_id=constituent_id)

    def act() -> tuple[str, str]:
        person = get_constituent(session, constituent_id)
        list_id = optional_id(request.form.get("list_id"), "list")
        if list_id is None:
            raise ValidationFailed("choose a list")
        address = request.form.get("address") or person.primary_email or ""
        subscriptions.subscribe(session, list_id, address, source=SubscriptionSource.STAFF,
                                legal_basis=request.form.get("legal_basis", ""), actor_id=current_user.id,
                                constituent_id=person.id)
        return "Subscribed.", back

    return run_action(session, act, back=back, failed="Not subscribed: ")


@bp.route("/subscriptions/<int:subscription_id>/unsubscribe", methods=["POST"])
@roles(*ALL_STAFF)
def staff_unsubscribe(subscription_id: int):
    session = db_session()
    back = request.form.get("back", "")
    target = back if back.startswith("/constituents/") else url_for("subscriptions.lists")

    def act() -> tuple[str, str]:
        found = subscriptions.unsubscribe(session, subscription_id, actor_id=current_user.id,
                                          how="a staffer unsubscribed them (the person asked)")
        return f"{found.address} is unsubscribed.", target

    return run_action(session, act, back=target)


# --- public ---------------------------------------------------------------------------------------

@bp.route("/subscribe/<int:list_id>", methods=["GET", "POST"])
@public
def sign_up(list_id: int):
    session = db_session()
    chosen = subscriptions.get_list(session, list_id)
    if not chosen.public:
        abort(404)
    form = ActionForm()
    error = None
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400, description="The form expired; reload the page and try again.")
        try:
            made = subscriptions.sign_up(session, list_id, request.form.get("email", "")[:320],
                                         where=url_for("subscriptions.sign_up", list_id=list_id))
        except DomainError as exc:
            session.rollback()
            error = str(exc)
        else:
            pending, address = made.status.value == "pending", made.address
            session.commit()
            # Only a few confirmation emails a day to one address, however often it is typed in: the page
            # must not be a way to flood a stranger's inbox (web/ratelimit.py, "signup.address").
            if pending and current_app.extensions["mailroom.ratelimit"].allow_mail_to(address):
                after_commit(newsletters_confirmation(made.id))
            # The same answer whether or not the address was already on the list.
            return render_template("subscribe.html", item=chosen, done=True, form=form)
    return render_template("subscribe.html", item=chosen, done=False, error=error, form=form)


def newsletters_confirmation(subscription_id: int):
    from correspondence.effects import Effect

    return (Effect.of("subscription_confirmation", subscription_id),)


@bp.route("/subscribe/confirm/<token>", methods=["GET", "POST"])
@public
def confirm(token: str):
    session = db_session()
    found = subscriptions.subscription_of_token(token[:60], secret_key=settings().secret_key)
    if found is None:
        abort(404, description="This confirmation link is not valid or has expired. Sign up again to get a "
                               "new one.")
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400, description="The form expired; reload the page and try again.")
        try:
            done = subscriptions.confirm(session, found)
        except DomainError as exc:
            session.rollback()
            abort(404, description=str(exc))
        name = subscriptions.get_list(session, done.list_id).name
        session.commit()
        return render_template("subscribe_confirm.html", done=True, name=name, form=form)
    return render_template("subscribe_confirm.html", done=False, name=None, form=form)


@bp.route("/n/<token>")
@public
def web_version(token: str):
    found = newsletters.by_web_token(db_session(), token[:64])
    if found is None:
        abort(404, description="This newsletter link is not valid. Check that the whole link was copied.")
    return render_template("newsletter_web.html", newsletter=found, body=to_html(found.body_text))
