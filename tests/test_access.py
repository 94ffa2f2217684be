"""Every route has an access rule, and the rules match the office's role matrix.

A new route without a rule fails here (and is refused at run time) until someone decides who may use it.
"""

import pytest

from correspondence.models import Role
from web.access import API_TOKEN, PUBLIC, SIGNED_IN

ALL = frozenset(Role)
A, S, C, W = Role.ADMIN, Role.SUPERVISOR, Role.CORRESPONDENT, Role.CASEWORKER

# endpoint -> who may use it
MATRIX = {
    "static": PUBLIC,
    "auth.login": PUBLIC,
    "auth.health": PUBLIC,
    "unsubscribe.one_click": PUBLIC,
    "auth.home": SIGNED_IN,
    "auth.logout": SIGNED_IN,
    "auth.change_password": SIGNED_IN,
    "auth.second_factor": PUBLIC,
    "auth.key_sign_in_options": PUBLIC,
    "auth.key_sign_in": PUBLIC,
    "auth.sign_out_everywhere": SIGNED_IN,
    "auth.two_factor": SIGNED_IN,
    "auth.totp_start": SIGNED_IN,
    "auth.totp_confirm": SIGNED_IN,
    "auth.recovery_codes": SIGNED_IN,
    "auth.key_register_options": SIGNED_IN,
    "auth.key_register": SIGNED_IN,
    "inbox.index": ALL,
    "inbox.bulk": ALL,
    "inbox.undo": ALL,
    "messages.view": ALL,
    "messages.assign": ALL,
    "messages.triage_message": ALL,
    "messages.accept_topic_suggestion": ALL,
    "messages.topic": ALL,
    "messages.stance": ALL,
    "messages.status": ALL,
    "messages.page_image": ALL,
    "dashboard.index": frozenset({A, S}),
    "admin.staff": frozenset({A}),
    "admin.set_staff_role": frozenset({A}),
    "admin.deactivate_staffer": frozenset({A}),
    "admin.activate_staffer": frozenset({A}),
    "admin.reset_staff_2fa": frozenset({A}),
    "admin.reset_staff_password": frozenset({A}),
    "admin.view_as": frozenset({A}),
    "admin.intake": frozenset({A}),
    "admin.routing": frozenset({A, S}),
    "admin.routing_deactivate": frozenset({A, S}),
    "admin.revoke": frozenset({A}),
    "admin.mailbox_add": frozenset({A}),
    "admin.mailbox_check": frozenset({A}),
    "admin.mailbox_active": frozenset({A}),
    "admin.mailbox_oauth_start": frozenset({A}),
    "admin.mailbox_oauth_callback": frozenset({A}),
    "admin.district_zip_list": frozenset({A}),
    "letters.library": ALL,
    "letters.new": ALL,
    "letters.letter": ALL,
    "letters.copy_letter": ALL,
    "letters.retire_letter": frozenset({A, S}),
    "letters.version": ALL,
    "letters.edit_version": ALL,
    "letters.submit_version": ALL,
    "letters.approve_version": frozenset({A, S}),  # and an approval delegate (APPROVAL_DELEGATE_OK)
    "letters.approve_own_version": ALL,  # the author's own, built from approved paragraphs (the service checks)
    "letters.request_changes": frozenset({A, S}),  # and an approval delegate
    "letters.comment_version": ALL,
    "letters.new_version": ALL,
    "letters.approvals": frozenset({A, S}),
    "letters.delegate": frozenset({A, S}),
    "letters.end_delegation": frozenset({A, S}),
    "letters.notices": SIGNED_IN,
    "letters.notice_read": SIGNED_IN,
    "letters.notices_read_all": SIGNED_IN,
    "letters.reply": frozenset({A, S, C}),
    "letters.answer_selection": frozenset({A, S, C}),
    "letters.resend_response": frozenset({A, S, C}),
    "letters.mark_response_sent": frozenset({A, S, C}),
    "letters.answer_batch": frozenset({A, S, C}),
    "letters.preview": frozenset({A, S, C}),
    "letters.run": frozenset({A, S, C}),
    "letters.run_progress": frozenset({A, S, C}),
    "letters.run_pdf": frozenset({A, S, C}),
    "letters.run_csv": frozenset({A, S, C}),
    "paragraphs.library": ALL,
    "paragraphs.propose": ALL,
    "paragraphs.paragraph": ALL,
    "paragraphs.revise": ALL,
    "paragraphs.approve": frozenset({A, S}),
    "paragraphs.withdraw": ALL,
    "paragraphs.retire": frozenset({A, S}),
    "paragraphs.insert_into_draft": ALL,
    "constituents.view": ALL,
    "constituents.edit": ALL,
    "cases.index": ALL,
    "cases.new": ALL,
    "cases.view": ALL,
    "cases.complete_step": frozenset({A, S, W}),
    "cases.set_status": frozenset({A, S, W}),
    "cases.update_details": frozenset({A, S, W}),
    "cases.add_step": frozenset({A, S, W}),
    "cases.reassign_step": frozenset({A, S, W}),
    "cases.add_note": frozenset({A, S, W}),
    "cases.add_document": frozenset({A, S, W}),
    "cases.record_release": frozenset({A, S, W}),
    "cases.confirm_match": frozenset({A, S, W}),
    "cases.reject_match": frozenset({A, S, W}),
    "cases.resend_link": frozenset({A, S, W}),
    "cases.document": ALL,
    "cases.release_pdf": ALL,
    "cases.help_request": PUBLIC,
    "cases.help_received": PUBLIC,
    "cases.help_confirm": PUBLIC,
    "constituents.index": ALL,
    "admin.topics": frozenset({A, S}),
    "admin.topics_retrain": frozenset({A, S}),
    "admin.topics_activate": frozenset({A, S}),
    "search.index": ALL,
    "admin.case_categories": frozenset({A, S}),
    "admin.franking": frozenset({A}),
    "admin.election_add": frozenset({A}),
    "admin.election_remove": frozenset({A}),
    "admin.approval_record": frozenset({A}),
    "closing.index": frozenset({A}),
    "closing.stop_intake": frozenset({A}),
    "closing.final_export": frozenset({A}),
    "closing.handover": frozenset({A}),
    "closing.purge": frozenset({A}),
    "closing.case_consent": frozenset({A, S, W}),
    "dashboard.analytics": frozenset({A, S}),
    "dashboard.analytics_recompute": frozenset({A, S}),
    "dashboard.analytics_csv": frozenset({A, S}),
    "inbox.export_csv": ALL,
    "cases.export_csv": ALL,
    "constituents.count_json": ALL,
    "constituents.export_csv": ALL,
    "constituents.tags": ALL,
    "constituents.contacts": ALL,
    "constituents.duplicate_list": ALL,
    "constituents.merge": ALL,
    "constituents.undo_merge": ALL,
    "constituents.save_segment": ALL,
    "constituents.delete_segment": ALL,
    "constituents.follow_up": frozenset({A, S, C}),
    "constituents.import_upload": frozenset({A, S}),
    "constituents.import_view": frozenset({A, S}),
    "constituents.import_progress": frozenset({A, S}),
    "constituents.import_bad_rows": frozenset({A, S}),
    "reports.activity": frozenset({A, S}),
    "reports.view": frozenset({A, S}),
    "reports.progress": frozenset({A, S}),
    "reports.download": frozenset({A, S}),
    "auth.stop_view_as": SIGNED_IN,
    "batches.index": ALL,
    "batches.view": ALL,
    "batches.recluster_now": frozenset({A, S, C}),
    "batches.merge": frozenset({A, S, C}),
    "batches.split": frozenset({A, S, C}),
    "batches.remove": frozenset({A, S, C}),
    "batches.not_campaign": frozenset({A, S, C}),
    "batches.campaign": frozenset({A, S, C}),
    "batches.assign": frozenset({A, S, C}),
    "batches.topic": frozenset({A, S, C}),
    "batches.stance": frozenset({A, S, C}),
    "batches.undo": frozenset({A, S, C}),
    "batches.add_proposal": frozenset({A, S, C}),
    "batches.reject_proposal": frozenset({A, S, C}),
    "quarantine.index": frozenset({A, S, C}),
    "quarantine.retry": frozenset({A, S, C}),
    "quarantine.release": frozenset({A, S, C}),
    "calls.new": ALL,
    "scans.upload": ALL,
    "api.intake_webform": API_TOKEN,
    "api.intake_cwc": API_TOKEN,
    "api.openapi": PUBLIC,
    "api.reference": PUBLIC,
    "api.messages_list": API_TOKEN,
    "api.messages_read": API_TOKEN,
    "api.messages_update": API_TOKEN,
    "api.constituents_search": API_TOKEN,
    "api.constituents_read": API_TOKEN,
    "api.constituents_update": API_TOKEN,
    "api.constituents_merge": API_TOKEN,
    "api.constituents_create": API_TOKEN,
    "api.letters_list": API_TOKEN,
    "api.letters_read": API_TOKEN,
    "api.letters_create": API_TOKEN,
    "api.versions_read": API_TOKEN,
    "api.versions_edit": API_TOKEN,
    "api.versions_submit": API_TOKEN,
    "api.versions_approve": API_TOKEN,
    "api.batches_list": API_TOKEN,
    "api.batches_members": API_TOKEN,
    "api.batches_read": API_TOKEN,
    "api.batches_update": API_TOKEN,
    "api.batches_merge": API_TOKEN,
    "api.batches_remove": API_TOKEN,
    "api.batches_split": API_TOKEN,
    "api.batches_history": API_TOKEN,
    "api.batches_undo": API_TOKEN,
    "api.batches_proposals": API_TOKEN,
    "api.batches_proposal_add": API_TOKEN,
    "api.batches_proposal_reject": API_TOKEN,
    "api.segments_count": API_TOKEN,
    "api.segments_members": API_TOKEN,
    "api.search_messages": API_TOKEN,
    "api.runs_dry_run": API_TOKEN,
    "api.runs_start": API_TOKEN,
    "api.runs_progress": API_TOKEN,
    "api.cases_list": API_TOKEN,
    "api.cases_read": API_TOKEN,
    "api.cases_open": API_TOKEN,
    "api.cases_note": API_TOKEN,
    "api.cases_step_done": API_TOKEN,
    "api.cases_status": API_TOKEN,
    "api_tokens.index": SIGNED_IN,
    "api_tokens.revoke": SIGNED_IN,
    "constituents.follow_up_packet": frozenset({A, S}),
    "admin.franking_quarterly": frozenset({A, S}),
    "admin.franking_quarterly_csv": frozenset({A, S}),
    "subscriptions.lists": ALL,
    "subscriptions.create_list": frozenset({A, S}),
    "subscriptions.import_csv": frozenset({A, S}),
    "subscriptions.send_newsletter": frozenset({A, S}),
    "subscriptions.staff_subscribe": ALL,
    "subscriptions.staff_unsubscribe": ALL,
    "subscriptions.sign_up": PUBLIC,
    "subscriptions.confirm": PUBLIC,
    "subscriptions.web_version": PUBLIC,
    "admin_data.index": frozenset({A}),
    "admin_data.export_start": frozenset({A}),
    "admin_data.export_view": frozenset({A}),
    "admin_data.export_progress": frozenset({A}),
    "admin_data.export_download": frozenset({A}),
    "privacy.place_hold": frozenset({A, S}),
    "privacy.release_hold": frozenset({A, S}),
    "privacy.retention_page": frozenset({A}),
    "privacy.retention_rules": frozenset({A}),
    "privacy.retention_run": frozenset({A}),
    "privacy.retention_run_view": frozenset({A}),
    "privacy.request_access": frozenset({A, S}),
    "privacy.access_download": frozenset({A, S}),
    "privacy.erase": frozenset({A}),
    "webhooks.index": frozenset({A}),
    "webhooks.deliveries": frozenset({A}),
    "webhooks.pause": frozenset({A}),
    "webhooks.resume": frozenset({A}),
    "webhooks.delete": frozenset({A}),
    "webhooks.test": frozenset({A}),
}


def test_every_route_has_the_expected_rule(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(MATRIX), "a route was added or removed: give it a row in MATRIX"
    for endpoint in endpoints:
        view = app.view_functions[endpoint]
        expected = MATRIX[endpoint]
        actual = PUBLIC if endpoint == "static" else getattr(view, "_mailroom_access", None)
        assert actual == expected, endpoint


SIMPLE_GETS = {"inbox.index": "/inbox/", "batches.index": "/batches/", "letters.library": "/letters/",
               "letters.new": "/letters/new", "letters.approvals": "/approvals/",
               "paragraphs.library": "/paragraphs/", "dashboard.index": "/dashboard/",
               "admin.staff": "/admin/staff",
               "auth.change_password": "/account/password", "quarantine.index": "/quarantine/",
               "admin.intake": "/admin/intake", "calls.new": "/calls/new", "scans.upload": "/scans/upload",
               "admin.routing": "/admin/routing", "admin.franking": "/admin/franking",
               "closing.index": "/admin/closing",
               "constituents.index": "/constituents/",
               "constituents.import_upload": "/constituents/import", "reports.activity": "/reports/activity",
               "constituents.duplicate_list": "/constituents/duplicates", "letters.notices": "/notices/",
               "subscriptions.lists": "/subscriptions/",
               "admin_data.index": "/admin/data/",
               "privacy.retention_page": "/privacy/retention",
               "webhooks.index": "/admin/webhooks/"}


@pytest.mark.parametrize("role", list(Role))
def test_roles_are_enforced_on_pages(client, auth, role):
    auth.login(role)
    for endpoint, path in SIMPLE_GETS.items():
        allowed = MATRIX[endpoint] == SIGNED_IN or role in MATRIX[endpoint]
        status = client.get(path).status_code
        assert status == (200 if allowed else 403), (role, path, status)


def test_only_the_approval_queue_and_decisions_open_to_an_approval_delegate():
    """The one exception to the role matrix: an active approval delegate sees the queue and decides on
    versions (approve, request changes), and nothing else."""
    from web.access import APPROVAL_DELEGATE_OK

    assert frozenset({"letters.approvals", "letters.approve_version", "letters.request_changes"}) \
        == APPROVAL_DELEGATE_OK


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for path in SIMPLE_GETS.values():
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/healthz").status_code == 200


def test_post_routes_refuse_wrong_roles(client, auth):
    auth.login(Role.CORRESPONDENT)
    token = auth.csrf()
    assert client.post("/admin/staff/1/deactivate", data={"csrf_token": token}).status_code == 403
    assert client.post("/admin/staff", data={"csrf_token": token, "name": "x", "email": "x@example.org",
                                             "role": "admin"}).status_code == 403


def test_a_route_without_a_rule_is_refused(app, client, auth):
    @app.route("/forgotten")
    def forgotten():
        return "should never be shown"

    auth.login(Role.ADMIN)
    response = client.get("/forgotten")
    assert response.status_code == 403
    assert "no access rule" in response.get_data(as_text=True)


def test_security_headers_and_cookie_flags(client, auth):
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    token = auth.csrf("/login")
    staffer = auth.factory.staffer()
    auth.session.commit()
    response = client.post("/login", data={"email": staffer.email, "password": auth.factory.PASSWORD,
                                           "csrf_token": token})
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("mailroom_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# Casework's private parts (notes, documents, signed releases, the filled-in release form): beyond the
# route's role rule, casework.cases.may_see_private allows only these roles, plus the case's own caseworker.
CASE_PRIVATE_ROLES = frozenset({A, S})
CASE_PRIVATE_ROUTES = ("cases.document", "cases.release_pdf")


@pytest.mark.parametrize("role", list(Role))
def test_case_private_parts_follow_the_need_to_know_rule(client, auth, session, factory, role):
    from sqlalchemy import select

    from casework import cases
    from correspondence.models import CaseCategory
    from tests.test_cases import PDF

    assert cases.PRIVATE_ROLES == CASE_PRIVATE_ROLES
    assert all(MATRIX[e] == ALL for e in CASE_PRIVATE_ROUTES)  # the role rule lets all in; the service decides
    me = auth.login(role)
    owner = factory.staffer(role=W)
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "IRS"))
    theirs = cases.open_case(session, constituent_id=factory.constituent().id, category_id=category.id,
                             subject="Refund", actor_id=None, caseworker_id=owner.id)
    mine = cases.open_case(session, constituent_id=factory.constituent().id, category_id=category.id,
                           subject="Refund", actor_id=None, caseworker_id=me.id)
    docs = {c.id: cases.add_document(session, c.id, PDF, "a.pdf", "application/pdf", actor_id=worker.id)
            for c, worker in ((theirs, owner), (mine, me))}  # each added by the case's own caseworker
    session.commit()
    for case, allowed in ((theirs, role in CASE_PRIVATE_ROLES), (mine, True)):
        assert client.get(f"/cases/{case.id}/documents/{docs[case.id].id}").status_code == (200 if allowed else 403)
        assert client.get(f"/cases/{case.id}/release.pdf").status_code == (200 if allowed else 403)
