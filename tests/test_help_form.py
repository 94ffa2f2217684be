"""The public help form (issue 12, items 1 and 2): the forged-release attack, the emailed one-time link,
the name check, the caseworker's match decision, the idempotency key and the bot checks."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from casework import cases as svc
from casework import help_requests as helpdesk
from correspondence.effects import Effect
from correspondence.errors import PermissionDenied
from correspondence.models import (
    AuditEvent,
    Case,
    CaseCategory,
    Constituent,
    ConstituentPhone,
    HelpRequest,
    StepKind,
    utcnow,
)

_FIELD = re.compile(r'name="(csrf_token|form_stamp)" (?:type="hidden" )?value="([^"]*)"')


def _blank_form(client) -> dict[str, str]:
    page = client.get("/help")
    assert page.status_code == 200
    return dict(_FIELD.findall(page.get_data(as_text=True)))


def _form(client, session, **values: str) -> dict[str, str]:
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "Social Security"))
    form = {**_blank_form(client), "first_name": "Rosa", "last_name": "Diaz", "email": "rosa@example.org",
            "phone": "(614) 555-0143", "street": "5 Oak Ave", "city": "Columbus", "state": "OH", "zip5": "43215",
            "category_id": str(category.id), "description": "My <b>benefits</b> stopped in March.",
            "consent": "yes", "signature": "Rosa Diaz", "website": ""}
    form.update(values)
    return form


def _count(session, model) -> int:
    session.rollback()
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def _send_links(monkeypatch, smtp_server, redis) -> list[str]:
    """Run the queued confirmation jobs against the real SMTP fixture; the links the emails carry."""
    from rq import SimpleWorker

    from workers.queues import OUTBOUND, get_queue

    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    monkeypatch.setenv("MAILROOM_PUBLIC_URL", "https://help.example.gov")
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    return [re.search(r"https://help\.example\.gov(/help/confirm/\S+)", m.get_content()).group(1)
            for m in smtp_server.inbox.messages]


def test_the_forged_release_attack_no_longer_works(client, auth, session, factory):
    """Anonymous POST with an existing constituent's email and another name: no case on their record,
    no release, only an unverified request with a possible match for a caseworker."""
    victim = factory.constituent(first_name="Ana", last_name="Lopez", email="ana@example.org", address1="1 Elm St")
    session.commit()
    sent = client.post("/help", data=_form(client, session, first_name="Mallory", last_name="Evil",
                                            email="ANA@example.org", signature="Mallory Evil",
                                            phone="614 555 0199"))
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/help/received")
    session.rollback()
    session.expire_all()
    case = session.scalar(select(Case))
    assert case.constituent_id != victim.id
    assert session.scalar(select(func.count()).select_from(Case).where(Case.constituent_id == victim.id)) == 0
    assert not svc.release_on_file(case) and case.release_received_at is None
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "case.release")) is None
    request = session.scalar(select(HelpRequest))
    assert (request.match_state, request.possible_match_id) == ("pending", victim.id)
    victim = session.get(Constituent, victim.id)
    assert victim.phones == [] and victim.address1 == "1 Elm St" and victim.first_name == "Ana"
    # The caseworker sees why, and who it might be.
    auth.login("caseworker")
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert 'id="possible-match"' in page and "Possible match</dt>" in page and "Ana Lopez" in page
    assert "email not yet confirmed" in page and "No signed privacy release on file" in page
    # The inquiry cannot go out on that signature.
    inquiry = next(s for s in svc.steps(session, case.id) if s.kind == StepKind.INQUIRY)
    with pytest.raises(svc.PrivacyReleaseMissing):
        svc.complete_step(session, inquiry.id, actor_id=None)  # type: ignore[arg-type]


def test_the_email_link_proves_the_signature_once(client, session, monkeypatch, smtp_server, redis, job_env):
    sent = client.post("/help", data=_form(client, session), environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert sent.status_code == 303
    done = client.get("/help/received").get_data(as_text=True)
    reference = re.search(r'id="help-reference">([A-Z0-9]+)<', done).group(1)
    session.rollback()
    session.expire_all()
    case, request = session.scalar(select(Case)), session.scalar(select(HelpRequest))
    assert reference == request.reference and len(reference) == 10 and reference != str(case.id)
    assert f"case {case.id}" not in done.lower()
    assert not svc.release_on_file(case)
    # The phone the form asks for is kept, as E.164.
    assert session.scalar(select(ConstituentPhone.number).where(ConstituentPhone.constituent_id
                                                                == case.constituent_id)) == "+16145550143"
    assert request.phone == "+16145550143" and request.ip == "203.0.113.7"
    # Only a hash of the link's token is stored.
    session.rollback()
    session.expire_all()
    [link] = _send_links(monkeypatch, smtp_server, redis)
    assert smtp_server.inbox.messages[0]["To"] == "rosa@example.org"
    token = link.rsplit("/", 1)[1]
    session.rollback()
    session.expire_all()
    stored = session.scalar(select(HelpRequest))
    assert stored.email_token_hash == helpdesk.token_digest(token) and token not in stored.email_token_hash
    # Opening the link confirms nothing (mail scanners open links); the button does.
    page = client.get(link)
    assert page.status_code == 200 and 'id="confirm-help"' in page.get_data(as_text=True)
    session.rollback()
    session.expire_all()
    assert not svc.release_on_file(session.get(Case, case.id))
    csrf = _FIELD.search(page.get_data(as_text=True)).group(2)
    confirmed = client.post(link, data={"csrf_token": csrf})
    assert confirmed.status_code == 200 and "now on file" in confirmed.get_data(as_text=True)
    session.rollback()
    session.expire_all()
    case = session.get(Case, case.id)
    assert svc.release_on_file(case) and case.release_signature["typed_name"] == "Rosa Diaz"
    assert next(s for s in svc.steps(session, case.id) if s.kind == StepKind.RELEASE).done_at is not None
    # Single use.
    again = client.post(link, data={"csrf_token": csrf})
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    assert client.get(link).status_code == 410


def test_expired_and_unknown_links_are_refused(session, factory):
    now = utcnow()
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "IRS"))
    done = helpdesk.submit_help_request(session, helpdesk.HelpValues(
        first_name="Lee", last_name="Park", email="lee@example.org", street="2 Main St", city="Dayton", state="OH",
        zip5="45402", category_id=str(category.id), description="Refund missing", consent=True,
        signature="Lee Park"), idempotency_key="k" * 32, ip="198.51.100.1", now=now)
    _request, token = _link(session, done.value.id, now=now)
    with pytest.raises(helpdesk.ConfirmLinkInvalid, match="expired"):
        helpdesk.confirm_email(session, token, now=now + timedelta(hours=48, seconds=1))
    with pytest.raises(helpdesk.ConfirmLinkInvalid, match="not valid"):
        helpdesk.confirm_email(session, token[:-2] + "xx", now=now)
    # A new link replaces the old one: only the newest works.
    _request, newer = _link(session, done.value.id, now=now)
    with pytest.raises(helpdesk.ConfirmLinkInvalid):
        helpdesk.confirm_email(session, token, now=now)
    request, reason = helpdesk.confirm_email(session, newer, now=now + timedelta(hours=47))
    assert reason is None and svc.release_on_file(request.case)


def _link(session, request_id: int, *, now) -> tuple[HelpRequest, str]:
    issued = helpdesk.issue_confirmation(session, request_id, now=now)
    assert issued is not None  # a request waiting for its email confirmation always gets a link
    return issued


def _submit(session, *, name: str, email: str, key: str, phone: str = "") -> HelpRequest:
    first, last = name.rsplit(" ", 1)
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "IRS"))
    return helpdesk.submit_help_request(session, helpdesk.HelpValues(
        first_name=first, last_name=last, email=email, phone=phone, street="2 Main St", city="Dayton", state="OH",
        zip5="45402", category_id=str(category.id), description="Refund missing", consent=True, signature=name),
        idempotency_key=key, ip="198.51.100.1", now=utcnow()).value


def test_a_confirmed_match_needs_the_signed_name_to_match_the_record(client, auth, session, factory):
    person = factory.constituent(first_name="Robert", last_name="Smith", email="bob@example.org")
    request = _submit(session, name="Bob Smith", email="bob@example.org", key="a" * 32)
    _r, token = _link(session, request.id, now=utcnow())
    _r, reason = helpdesk.confirm_email(session, token, now=utcnow())
    assert (reason or "").startswith("a caseworker must first decide whether this request is from Robert Smith")
    case_id = request.case_id
    session.commit()
    # A correspondent may not decide who a request is from: not on the page, not in the service.
    clerk = auth.login("correspondent")
    assert client.post(f"/cases/{case_id}/confirm-match", data={"csrf_token": auth.csrf()}).status_code == 403
    with pytest.raises(PermissionDenied):
        helpdesk.decide_match(session, case_id, same_person=True, actor_id=clerk.id, now=utcnow())
    client.post("/logout", data={"csrf_token": auth.csrf()})
    auth.login("caseworker")
    joined = client.post(f"/cases/{case_id}/confirm-match", data={"csrf_token": auth.csrf()}, follow_redirects=True)
    page = joined.get_data(as_text=True)
    assert "Joined to Robert Smith" in page
    assert "signed name &#39;Bob Smith&#39; does not match the record &#39;Robert Smith&#39;" in page
    session.rollback()
    session.expire_all()
    case = session.get(Case, case_id)
    assert case.constituent_id == person.id and not svc.release_on_file(case)
    assert session.scalar(select(AuditEvent.actor_id).where(AuditEvent.action == "help_request.match_confirmed"))


def test_a_victims_phone_and_an_email_of_ones_own_never_make_their_release(session, factory):
    """The attacker types the victim's name and phone, proves an email of their own, and a caseworker,
    seeing the phone match, joins the request to the victim: the signature still is not their release."""
    victim = factory.constituent(first_name="Dana", last_name="Reyes", email="dana@example.org")
    victim.phones.append(ConstituentPhone(number="+16145550100"))
    caseworker = factory.staffer(role="caseworker")
    request = _submit(session, name="Dana Reyes", email="attacker@example.net", phone="614-555-0100",
                      key="p" * 32)
    assert request.possible_match_id == victim.id and request.match_by == "phone"
    _r, token = _link(session, request.id, now=utcnow())
    _r, reason = helpdesk.confirm_email(session, token, now=utcnow())
    assert reason is not None and "same phone" in reason
    helpdesk.decide_match(session, request.case_id, same_person=True, actor_id=caseworker.id, now=utcnow())
    request = session.get(HelpRequest, request.id)
    assert request.case.constituent_id == victim.id  # joined, names match, email proven...
    assert not svc.release_on_file(request.case)  # ...and still no release on the victim's file
    assert "match was by phone only" in (helpdesk.release_reason(request) or "")


def test_a_matching_name_is_normalised_and_a_rejected_match_stays_apart(session, factory):
    worker = factory.staffer(role="caseworker")
    person = factory.constituent(first_name="José", last_name="O'Brien-Ruiz", email="jose@example.org")
    request = _submit(session, name="jose  OBRIEN RUIZ.", email="jose@example.org", key="b" * 32)
    helpdesk.confirm_email(session, _link(session, request.id, now=utcnow())[1], now=utcnow())
    helpdesk.decide_match(session, request.case_id, same_person=True, actor_id=worker.id, now=utcnow())
    case = session.get(Case, request.case_id)
    assert case.constituent_id == person.id and svc.release_on_file(case)
    # Another request with the same email, not the same person (a shared family mailbox): kept apart.
    other = _submit(session, name="Maria Ruiz", email="jose@example.org", key="c" * 32)
    helpdesk.confirm_email(session, _link(session, other.id, now=utcnow())[1], now=utcnow())
    helpdesk.decide_match(session, other.case_id, same_person=False, actor_id=worker.id, now=utcnow())
    other_case = session.get(Case, other.case_id)
    assert other_case.constituent_id != person.id and svc.release_on_file(other_case)
    assert helpdesk.signed_name_matches("Robert J. Smith Jr", Constituent(first_name="Robert", middle_name="J",
                                                                          last_name="Smith", suffix="Jr."))
    assert not helpdesk.signed_name_matches("Bob Smith", Constituent(first_name="Robert", last_name="Smith"))


def test_a_second_post_of_the_same_form_makes_no_second_case(client, app, session):
    form = _form(client, session)
    first = client.post("/help", data=form)
    second = client.post("/help", data=form)  # refresh, or Back and send again
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert _count(session, Case) == 1 and _count(session, HelpRequest) == 1
    reference = session.scalar(select(HelpRequest.reference))
    assert reference in client.get("/help/received").get_data(as_text=True)
    # Another browser sees nobody's reference, and there is no code in the URL to guess.
    stranger = app.test_client()
    page = stranger.get("/help/received").get_data(as_text=True)
    assert reference not in page and "no request from this browser" in page


def test_naive_bots_are_refused_and_nothing_is_stored(client, app, session, settings):
    page = client.get("/help").get_data(as_text=True)
    assert 'class="trap"' in page and "Leave this field empty" in page
    honeypot = client.post("/help", data=_form(client, session, website="http://spam.example"))
    assert honeypot.status_code == 400 and "leave empty" in honeypot.get_data(as_text=True)
    unstamped = client.post("/help", data={k: v for k, v in _form(client, session).items() if k != "form_stamp"})
    assert unstamped.status_code == 400 and "not loaded from this site" in unstamped.get_data(as_text=True)
    from web.humans import issue_stamp

    forged = client.post("/help", data=_form(client, session, form_stamp=issue_stamp("another-key")))
    assert forged.status_code == 400
    assert _count(session, Case) == 0 and _count(session, Constituent) == 0 and _count(session, HelpRequest) == 0


def test_a_form_sent_faster_than_a_person_can_is_refused(settings, session):
    from web import create_app

    app = create_app(dataclasses.replace(settings, help_min_fill_seconds=3600))
    try:
        client = app.test_client()
        fast = client.post("/help", data=_form(client, session))
        assert fast.status_code == 400 and "too quickly" in fast.get_data(as_text=True)
        assert _count(session, Case) == 0 and _count(session, Constituent) == 0
    finally:
        app.extensions["mailroom.db"].dispose()
        app.extensions["mailroom.db_write"].dispose()


def test_form_errors_are_shown_and_keep_the_stamp(client, session):
    form = _form(client, session, signature="R D", zip5="4321", phone="not a phone")
    answer = client.post("/help", data=form)
    text = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "type your full name exactly" in text and "must be 5 digits" in text
    assert "is not a phone number" in text and form["form_stamp"] in text
    assert _count(session, Case) == 0


def test_help_form_settings_come_from_the_environment(tmp_path):
    from config.settings import Settings, SettingsError

    built = Settings.from_env({"MAILROOM_PUBLIC_URL": "https://help.example.gov/", "SECRET_KEY": "x" * 40,
                               "MAILROOM_HELP_MIN_FILL_SECONDS": "5"}, instance_dir=tmp_path)
    assert built.base_url == "https://help.example.gov" and built.help_min_fill_seconds == 5
    with pytest.raises(SettingsError, match="MAILROOM_PUBLIC_URL"):
        Settings.from_env({"MAILROOM_PUBLIC_URL": "javascript:alert(1)", "SECRET_KEY": "x" * 40}, instance_dir=tmp_path)
    with pytest.raises(SettingsError, match="MAILROOM_HELP_MIN_FILL_SECONDS"):
        Settings.from_env({"MAILROOM_HELP_MIN_FILL_SECONDS": "soon", "SECRET_KEY": "x" * 40}, instance_dir=tmp_path)


def test_the_form_cannot_make_the_office_mail_one_address_over_and_over(session, factory):
    """Anyone can type a stranger's address into the form: past a few links a day to one address, the
    automatic link is withheld (audited); a caseworker's "send again" still goes."""
    caseworker = factory.staffer(role="caseworker")
    requests = [_submit(session, name="Lee Park", email="stranger@example.org", key=f"{n:032d}") for n in range(5)]
    issued = [helpdesk.issue_confirmation(session, r.id, now=utcnow()) for r in requests]
    assert [i is not None for i in issued] == [True] * helpdesk.LINKS_PER_ADDRESS_PER_DAY + [False] * 2
    withheld = select(func.count(AuditEvent.id)).where(AuditEvent.action == "help_request.link_withheld")
    assert session.scalar(withheld) == 2
    effect = helpdesk.resend_confirmation(session, requests[-1].case_id, actor_id=caseworker.id)
    assert effect == Effect.of("help_confirmation", requests[-1].id, by_staff=True)
    assert helpdesk.issue_confirmation(session, requests[-1].id, now=utcnow(), by_staff=True) is not None
