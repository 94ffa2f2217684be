"""Role rules for every route: each view declares who may use it, and anything undeclared is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import abort, current_app, g, redirect, request, url_for
from flask_login import current_user

from correspondence.models import Role

F = TypeVar("F", bound=Callable[..., object])

ALL_STAFF = frozenset(Role)
PUBLIC = "public"
SIGNED_IN = "signed_in"
API_TOKEN = "api_token"  # noqa: S105 - the name of an access rule, not a secret

# Routes a staffer whose password is a one-time password may still use.
_PASSWORD_CHANGE_OK = {"auth.change_password", "auth.logout", "static"}
# While an admin views the app as another staffer, nothing may be changed except leaving that mode.
_VIEW_AS_OK = {"auth.stop_view_as", "auth.logout"}
# Downloads of constituent data (CSV, PDF, case documents): refused while an admin views as someone,
# so nothing leaves the office under another staffer's name. tests/test_access.py checks that every
# route serving a file is listed here.
EXPORTS = {"inbox.export_csv", "cases.export_csv", "cases.document", "cases.release_pdf",
           "constituents.export_csv", "constituents.import_bad_rows", "dashboard.analytics_csv",
           "letters.run_pdf", "letters.run_csv", "reports.download",
           "constituents.follow_up_packet", "admin.franking_quarterly_csv", "privacy.access_download"}
# Routes an active approval delegate may use although their role is not listed (drafting.delegation):
# the approval queue and the two decisions on a version; drafting.letters checks the delegation again
# when deciding. tests/test_access.py pins this set.
APPROVAL_DELEGATE_OK = frozenset({"letters.approvals", "letters.approve_version", "letters.request_changes"})
# Routes a staffer whose role must use a second factor may use before they have set one up.
_ENROL_OK = {"auth.two_factor", "auth.totp_start", "auth.totp_confirm", "auth.key_register_options",
             "auth.key_register", "auth.recovery_codes", "auth.change_password", "auth.logout", "static"}


def roles(*allowed: Role) -> Callable[[F], F]:
    """Allow signed-in staff with one of these roles."""

    def mark(view: F) -> F:
        view._mailroom_access = frozenset(allowed)  # type: ignore[attr-defined]
        return view

    return mark


def public(view: F) -> F:
    """Allow anyone, signed in or not (sign-in page, health check)."""
    view._mailroom_access = PUBLIC  # type: ignore[attr-defined]
    return view


def api_token(view: F) -> F:
    """Machine-to-machine: no session; the view itself checks an intake source's API token."""
    view._mailroom_access = API_TOKEN  # type: ignore[attr-defined]
    return view


def signed_in(view: F) -> F:
    """Allow any signed-in staffer, whatever their role."""
    view._mailroom_access = SIGNED_IN  # type: ignore[attr-defined]
    return view


def _must_enrol() -> bool:
    """This staffer's role must use a second factor (MAILROOM_REQUIRE_2FA) and they have none yet."""
    from correspondence.services.staff import has_second_factor

    if current_user.role.value not in current_app.extensions["mailroom.settings"].require_2fa:
        return False
    from web import db_session

    return not has_second_factor(db_session(), current_user)


def _approval_delegate() -> bool:
    """The signed-in staffer approves for an absent supervisor right now."""
    from drafting.letters import may_review
    from web import db_session

    return may_review(db_session(), current_user.id)


def access_rule(endpoint: str | None) -> object:
    if endpoint == "static":
        return PUBLIC
    view = current_app.view_functions.get(endpoint or "")
    return getattr(view, "_mailroom_access", None)


def enforce_access():
    """before_request hook: deny by default, so a new route without a rule is refused."""
    if request.endpoint is None:
        return None  # no route matched: the 404/405 handler answers
    rule = access_rule(request.endpoint)
    if rule is None:
        abort(403, description="This page has no access rule yet, so it is closed to everyone.")
    if rule in (PUBLIC, API_TOKEN):
        return None
    if not current_user.is_authenticated:
        if request.path.startswith("/api/"):
            abort(401)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if g.get("viewing_admin") is not None:
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.endpoint not in _VIEW_AS_OK:
            abort(403, description=f"You are viewing Mailroom as {current_user.name}: changes are turned off. "
                                   "Stop viewing as them to act as yourself.")
        if request.endpoint in EXPORTS:
            abort(403, description=f"You are viewing Mailroom as {current_user.name}: downloads of constituent "
                                   "data are turned off. Stop viewing as them to download as yourself.")
    elif current_user.must_change_password and request.endpoint not in _PASSWORD_CHANGE_OK:
        return redirect(url_for("auth.change_password"))
    elif request.endpoint not in _ENROL_OK and _must_enrol():
        return redirect(url_for("auth.two_factor"))
    elif request.endpoint in _ENROL_OK and _must_enrol():
        g.must_enrol = True  # the page shows no navigation that would only lead back here
    if rule == SIGNED_IN:
        return None
    if current_user.role not in rule:  # type: ignore[operator]
        if request.endpoint in APPROVAL_DELEGATE_OK and _approval_delegate():
            return None
        abort(403, description="Your role does not include this page.")
    return None
