"""Subscription lists with provenance: opt-ins on CWC and web-form mail, the public sign-up with double opt-in,
CSV import with a stated legal basis, staff changes, and the profile's subscriptions section."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from correspondence.errors import ValidationFailed
from correspondence.models import (
    AuditEvent,
    Role,
    Subscription,
    SubscriptionSource,
    SubscriptionStatus,
)
from correspondence.services.tokens import create_token
from intake.importer import import_items
from intake.registry import file_adapter
from outbound import subscriptions
from tests.conftest import TEST_SECRET_KEY
from workers.queues import OUTBOUND, PROCESS, get_queue

CWC = (Path(__file__).parent / "data" / "cwc" / "full.xml").read_bytes()
FORM = {"first_name": "Dana", "last_name": "Reyes", "city": "Columbus", "state": "oh", "zip5": "43215",
        "email": "Dana.Reyes@Example.org", "subject": "Clinic", "message": "Please keep the clinic open.",
        "newsletter_opt_in": "yes"}


def _list(session, factory, name="District update", public=True):
    boss = factory.staffer(role="supervisor")
    made = subscriptions.create_list(session, name, description="Monthly news", public=public, actor_id=boss.id)
    session.commit()
    return made, boss


def _statuses(session):
    return {s.address: (s.status, s.source) for s in session.scalars(select(Subscription))}


def test_a_cwc_delivery_that_opts_in_subscribes_its_sender_and_one_that_does_not_does_not(database, session,
                                                                                          factory):
    chosen, _boss = _list(session, factory)
    reader, adapter = file_adapter("cwc")
    no = CWC
    yes = CWC.replace(b"<NewsletterOptIn>N</NewsletterOptIn>", b"<NewsletterOptIn>Y</NewsletterOptIn>") \
        .replace(b"a1b2c3d4e5f60718293a4b5c6d7e8f90", b"a1b2c3d4e5f60718293a4b5c6d7e8f91")
    assert yes != no
    import_items(database, [("no", no)], adapter, source="test", max_bytes=1_000_000)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0
    import_items(database, [("yes", yes)], adapter, source="test", max_bytes=1_000_000)
    session.rollback()
    sub = session.scalars(select(Subscription)).one()
    assert (sub.list_id, sub.status, sub.source) == (chosen.id, SubscriptionStatus.SUBSCRIBED, SubscriptionSource.CWC)
    assert sub.constituent_id is not None
    assert "CWC delivery a1b2c3d4e5f60718293a4b5c6d7e8f91" in sub.legal_basis
    # Processing the same delivery again changes nothing.
    import_items(database, [("yes", yes)], adapter, source="test", max_bytes=1_000_000)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Subscription)) == 1


def test_the_web_form_opt_in_field_subscribes_on_processing(client, session, factory, redis, job_env):
    _list(session, factory)
    _t, plain = create_token(session, name="website", actor_id=None)
    session.commit()
    response = client.post("/api/v1/intake/webform", json=FORM, headers={"Authorization": f"Bearer {plain}"})
    assert response.status_code == 202, response.get_json()
    SimpleWorker([get_queue(PROCESS, redis)], connection=redis).work(burst=True)
    session.rollback()
    assert _statuses(session) == {"dana.reyes@example.org": (SubscriptionStatus.SUBSCRIBED,
                                                             SubscriptionSource.WEBFORM)}


def test_public_sign_up_is_pending_until_the_emailed_link_is_confirmed(app, client, session, factory, redis,
                                                                       job_env, smtp_server, monkeypatch):
    chosen, _boss = _list(session, factory)
    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    monkeypatch.setenv("MAILROOM_PUBLIC_URL", "https://mail.house.example")
    page = client.get(f"/subscribe/{chosen.id}")
    assert page.status_code == 200 and "Sign up: District update" in page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    # The CSRF token is required.
    assert client.post(f"/subscribe/{chosen.id}", data={"email": "zoe@example.org"}).status_code == 400
    done = client.post(f"/subscribe/{chosen.id}", data={"email": "Zoe@Example.org", "csrf_token": token})
    assert done.status_code == 200 and "Check your email" in done.get_data(as_text=True)
    session.rollback()
    assert _statuses(session) == {"zoe@example.org": (SubscriptionStatus.PENDING, SubscriptionSource.SIGNUP)}
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    [email] = smtp_server.inbox.messages
    assert email["To"] == "zoe@example.org" and "Please confirm" in email["Subject"]
    link = re.search(r"https://mail\.house\.example(/subscribe/confirm/\S+)", email.get_content()).group(1)
    # Opening the link (a link scanner does) confirms nothing; the button does.
    shown = client.get(link)
    assert shown.status_code == 200 and 'id="confirm"' in shown.get_data(as_text=True)
    session.rollback()
    assert _statuses(session)["zoe@example.org"][0] == SubscriptionStatus.PENDING
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', shown.get_data(as_text=True)).group(1)
    confirmed = client.post(link, data={"csrf_token": token})
    assert confirmed.status_code == 200 and "You are signed up" in confirmed.get_data(as_text=True)
    session.rollback()
    sub = session.scalars(select(Subscription)).one()
    assert sub.status == SubscriptionStatus.SUBSCRIBED and "confirmed by email" in sub.legal_basis
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "subscription")
                                   .order_by(AuditEvent.id)))
    assert actions == ["subscription.pending", "subscription.confirm"]
    # Signing up again with a subscribed address answers the same and changes nothing.
    again = client.post(f"/subscribe/{chosen.id}", data={"email": "zoe@example.org", "csrf_token": token})
    assert "Check your email" in again.get_data(as_text=True)
    session.rollback()
    assert session.scalars(select(Subscription)).one().status == SubscriptionStatus.SUBSCRIBED


def test_confirmation_tokens_are_signed_and_expire(session, factory):
    chosen, _boss = _list(session, factory)
    sub = subscriptions.sign_up(session, chosen.id, "amy@example.org", where="test")
    token = subscriptions.confirm_token(sub.id, secret_key=TEST_SECRET_KEY, issued=1_000_000)
    assert subscriptions.subscription_of_token(token, secret_key=TEST_SECRET_KEY, now=1_000_100) == sub.id
    assert subscriptions.subscription_of_token(token, secret_key=TEST_SECRET_KEY, now=1_000_000 + 8 * 86400) is None
    assert subscriptions.subscription_of_token(token, secret_key="another secret", now=1_000_100) is None
    forged = token.replace(f"s{sub.id}-", f"s{sub.id + 1}-")
    assert subscriptions.subscription_of_token(forged, secret_key=TEST_SECRET_KEY, now=1_000_100) is None
    assert subscriptions.subscription_of_token("nonsense", secret_key=TEST_SECRET_KEY) is None


def test_a_hidden_list_has_no_public_sign_up_and_the_page_is_rate_limited(session, factory, settings):
    hidden, _boss = _list(session, factory, name="Press", public=False)
    from web import create_app

    app = create_app(dataclasses.replace(settings, rate_limits=(("public.client", "3/minute"),
                                                                 ("public.global", "off"))))
    client = app.test_client()
    codes = [client.get(f"/subscribe/{hidden.id}").status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]


def test_csv_import_needs_a_legal_basis_and_keeps_people_who_unsubscribed_off(session, factory):
    chosen, boss = _list(session, factory)
    person = factory.constituent(first_name="Ana", email="ana@example.org")
    data = b"Name,Email\nAna,ANA@example.org\nBen,ben@example.org\nBad,not-an-address\nBen again,ben@example.org\n"
    with pytest.raises(ValidationFailed, match="legal basis"):
        subscriptions.import_addresses(session, chosen.id, data, legal_basis="  ", actor_id=boss.id)
    gone = subscriptions.subscribe(session, chosen.id, "ben@example.org", source=SubscriptionSource.STAFF,
                                   legal_basis="asked by phone", actor_id=boss.id)
    subscriptions.unsubscribe(session, gone.id, actor_id=boss.id, how="asked to stop")
    done = subscriptions.import_addresses(session, chosen.id, data, legal_basis="town hall sign-in sheet, May 2",
                                          actor_id=boss.id)
    assert (done.rows, done.added, done.kept_unsubscribed, len(done.problems)) == (4, 1, 1, 1)
    assert "line 4" in done.problems[0]
    ana = session.scalar(select(Subscription).where(Subscription.address == "ana@example.org"))
    assert (ana.source, ana.legal_basis, ana.constituent_id) == (SubscriptionSource.IMPORT,
                                                                 "town hall sign-in sheet, May 2", person.id)
    assert _statuses(session)["ben@example.org"][0] == SubscriptionStatus.UNSUBSCRIBED
    with pytest.raises(ValidationFailed, match="email"):
        subscriptions.import_addresses(session, chosen.id, b"name\nAna\n", legal_basis="x", actor_id=boss.id)


def test_csv_import_page_refuses_a_file_without_a_legal_basis(client, auth, session, factory):
    chosen, _boss = _list(session, factory)
    auth.login(Role.SUPERVISOR)
    token = auth.csrf("/subscriptions/")
    from io import BytesIO

    refused = client.post("/subscriptions/import", data={"csrf_token": token, "list_id": str(chosen.id),
                                                         "legal_basis": "", "file": (BytesIO(b"email\na@b.org\n"),
                                                                                     "people.csv")},
                          content_type="multipart/form-data", follow_redirects=True)
    assert "Not imported: state the legal basis" in refused.get_data(as_text=True)
    taken = client.post("/subscriptions/import", data={"csrf_token": token, "list_id": str(chosen.id),
                                                       "legal_basis": "sign-up sheet at the fair",
                                                       "file": (BytesIO(b"email\na@b.org\n"), "people.csv")},
                        content_type="multipart/form-data", follow_redirects=True)
    assert "Imported: 1 added" in taken.get_data(as_text=True)
    client.post("/logout", data={"csrf_token": auth.csrf("/subscriptions/")})
    auth.login(Role.CORRESPONDENT)
    assert client.post("/subscriptions/import", data={"csrf_token": auth.csrf("/subscriptions/")}).status_code == 403


def test_unsubscribing_and_subscribing_again_are_audited(session, factory):
    chosen, boss = _list(session, factory)
    sub = subscriptions.subscribe(session, chosen.id, "cy@example.org", source=SubscriptionSource.STAFF,
                                  legal_basis="asked at the office", actor_id=boss.id)
    subscriptions.unsubscribe(session, sub.id, actor_id=boss.id, how="asked to stop")
    subscriptions.unsubscribe(session, sub.id, actor_id=boss.id, how="asked to stop")  # twice is once
    # A CSV import never subscribes them again; an opt-in of their own does.
    subscriptions.subscribe(session, chosen.id, "cy@example.org", source=SubscriptionSource.IMPORT,
                            legal_basis="old list", actor_id=boss.id, resubscribe=False)
    assert sub.status == SubscriptionStatus.UNSUBSCRIBED
    subscriptions.subscribe(session, chosen.id, "cy@example.org", source=SubscriptionSource.WEBFORM,
                            legal_basis="ticked the box again", actor_id=None)
    assert sub.status == SubscriptionStatus.SUBSCRIBED and sub.source == SubscriptionSource.WEBFORM
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "subscription")
                                   .order_by(AuditEvent.id)))
    assert actions == ["subscription.subscribe", "subscription.unsubscribe", "subscription.resubscribe"]
    # Unsubscribed again, then signing up on the public page: pending until they confirm the new link.
    subscriptions.unsubscribe(session, sub.id, actor_id=None, how="one-click unsubscribe in a newsletter")
    again = subscriptions.sign_up(session, chosen.id, "cy@example.org", where="test")
    assert again.id == sub.id and again.status == SubscriptionStatus.PENDING
    assert session.scalars(select(AuditEvent.action).order_by(AuditEvent.id.desc())).first() == \
        "subscription.pending"
    assert subscriptions.confirm(session, sub.id).status == SubscriptionStatus.SUBSCRIBED


def test_the_profile_shows_subscriptions_and_staff_can_unsubscribe(client, auth, session, factory):
    chosen, boss = _list(session, factory)
    person = factory.constituent(first_name="Ana", email="ana@example.org")
    subscriptions.subscribe(session, chosen.id, "ana@example.org", source=SubscriptionSource.STAFF,
                            legal_basis="asked at the town hall", actor_id=boss.id)
    session.commit()
    auth.login(Role.CORRESPONDENT)
    page = client.get(f"/constituents/{person.id}").get_data(as_text=True)
    section = page[page.index('id="subscriptions"'):]
    assert "District update" in section and "added by staff" in section and "asked at the town hall" in section
    sub_id = session.scalar(select(Subscription.id))
    token = auth.csrf(f"/constituents/{person.id}")
    done = client.post(f"/subscriptions/{sub_id}/unsubscribe",
                       data={"csrf_token": token, "back": f"/constituents/{person.id}"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/constituents/{person.id}")
    session.rollback()
    assert session.get(Subscription, sub_id).status == SubscriptionStatus.UNSUBSCRIBED
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "subscription.unsubscribe")).one()
    assert event.actor_id is not None
    page = client.get(f"/constituents/{person.id}").get_data(as_text=True)
    assert "unsubscribed" in page[page.index('id="subscriptions"'):]


def test_the_lists_page_shows_counts_and_only_managers_make_lists(client, auth, session, factory):
    _list(session, factory)
    auth.login(Role.CASEWORKER)
    page = client.get("/subscriptions/")
    assert page.status_code == 200 and "District update" in page.get_data(as_text=True)
    assert 'id="make-list"' not in page.get_data(as_text=True)
    assert client.post("/subscriptions/lists", data={"csrf_token": auth.csrf("/subscriptions/"),
                                                     "name": "x"}).status_code == 403
    client.post("/logout", data={"csrf_token": auth.csrf("/subscriptions/")})
    auth.login(Role.ADMIN)
    made = client.post("/subscriptions/lists", data={"csrf_token": auth.csrf("/subscriptions/"),
                                                     "name": "Veterans news", "public": "yes"},
                       follow_redirects=True)
    assert "The list “Veterans news” is made." in made.get_data(as_text=True)
