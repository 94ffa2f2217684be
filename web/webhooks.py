"""Admin: webhook subscriptions (make one, its secret shown once; pause, resume, delete, send a test event)
and each subscription's recent deliveries with the receiver's last answer."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from flask_login import current_user

from correspondence.effects import effects_of
from correspondence.errors import DomainError
from correspondence.models import Role, WebhookSubscription
from correspondence.services.webhooks import (
    EVENTS,
    create_subscription,
    delete_subscription,
    list_subscriptions,
    recent_deliveries,
    send_test_event,
    set_subscription_active,
)
from outbound.webhooks import MAX_ATTEMPTS
from web import db_session, settings
from web.access import roles
from web.forms import ActionForm
from web.outcome import run_action

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")

EVENT_WORDS = {name: words for name, (words, _action) in EVENTS.items()} | {"webhook.test": "test event"}


@bp.route("/", methods=["GET", "POST"])
@roles(Role.ADMIN)
def index():
    """The subscriptions; a new one's signing secret is shown on this page once, right after it is made."""
    session = db_session()
    new_secret, error, status, chosen = None, None, 200, []
    if request.method == "POST":
        chosen = request.form.getlist("event")
        try:
            _subscription, new_secret = create_subscription(
                session, actor_id=current_user.id, name=request.form.get("name", ""),
                url=request.form.get("url", ""), events=chosen, secret_key=settings().secret_key)
        except DomainError as exc:
            session.rollback()
            error, status = str(exc), 400
        else:
            session.commit()
            status = 201
    return render_template("webhooks.html", subscriptions=list_subscriptions(session), form=ActionForm(),
                           new_secret=new_secret, error=error, events=EVENT_WORDS, chosen=chosen,
                           choices=[(name, words) for name, (words, _a) in EVENTS.items()]), status


@bp.route("/<int:subscription_id>")
@roles(Role.ADMIN)
def deliveries(subscription_id: int):
    """One subscription's most recent deliveries and what the receiver answered."""
    session = db_session()
    rows = recent_deliveries(session, subscription_id)
    subscription = session.get(WebhookSubscription, subscription_id)
    return render_template("webhook_deliveries.html", subscription=subscription, deliveries=rows,
                           events=EVENT_WORDS, form=ActionForm(), max_attempts=MAX_ATTEMPTS,
                           keep_delivered=settings().webhook_keep_delivered_days,
                           keep_failed=settings().webhook_keep_failed_days)


@bp.route("/<int:subscription_id>/pause", methods=["POST"])
@roles(Role.ADMIN)
def pause(subscription_id: int):
    session = db_session()
    back = url_for("webhooks.index")

    def act() -> tuple[str, str]:
        s = set_subscription_active(session, subscription_id, actor_id=current_user.id, active=False)
        return f"Paused “{s.name}”: nothing is sent until it is resumed; events wait in the outbox.", back

    return run_action(session, act, back=back)


@bp.route("/<int:subscription_id>/resume", methods=["POST"])
@roles(Role.ADMIN)
def resume(subscription_id: int):
    session = db_session()
    back = url_for("webhooks.index")

    def act() -> tuple[str, str]:
        s = set_subscription_active(session, subscription_id, actor_id=current_user.id, active=True)
        return f"Resumed “{s.name}”: waiting events are sent now.", back

    return run_action(session, act, back=back)


@bp.route("/<int:subscription_id>/delete", methods=["POST"])
@roles(Role.ADMIN)
def delete(subscription_id: int):
    session = db_session()
    back = url_for("webhooks.index")

    def act() -> tuple[str, str]:
        name = delete_subscription(session, subscription_id, actor_id=current_user.id)
        return f"Deleted “{name}” and its deliveries.", back

    return run_action(session, act, back=back)


@bp.route("/<int:subscription_id>/test", methods=["POST"])
@roles(Role.ADMIN)
def test(subscription_id: int):
    session = db_session()
    back = url_for("webhooks.deliveries", subscription_id=subscription_id)

    def act():
        done = send_test_event(session, subscription_id, actor_id=current_user.id)
        return "A test event is on its way; its answer appears below in a few seconds.", back, effects_of(done)

    return run_action(session, act, back=back)
