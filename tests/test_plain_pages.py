"""A new office staffer reads this session's pages: office settings sit on their own labelled row of the
header, runs say where they are in plain words, an empty newsletter page says what to do first, and the API
reference shows code as code instead of raw `backticks`."""

from __future__ import annotations

import re

from correspondence.models import Role
from correspondence.models.privacy import RetentionRun
from correspondence.models.run import RunState


def _nav(page: str, label: str) -> str:
    found = re.search(rf'<nav aria-label="{label}"[^>]*>(.*?)</nav>', page, re.S)
    return found.group(1) if found else ""


def test_an_admin_finds_office_settings_on_their_own_row(client, auth):
    auth.login(Role.ADMIN)
    page = client.get("/privacy/retention").get_data(as_text=True)
    main, settings = _nav(page, "Main"), _nav(page, "Office settings")
    for name in ("Routing", "Topics", "Elections", "Retention", "Intake", "Closing", "Staff", "Data"):
        assert f">{name}</a>" in settings and f">{name}</a>" not in main
    assert ">Inbox</a>" in main and ">Newsletters</a>" in main
    # Only the page you are on is marked: Retention, not Staff as well.
    assert re.findall(r'aria-current="page"[^>]*>([^<]+)</a>', page) == ["Retention"]
    quarterly = client.get("/admin/franking/quarterly").get_data(as_text=True)
    assert re.findall(r'aria-current="page"[^>]*>([^<]+)</a>', quarterly) == ["Elections"]


def test_a_supervisor_sees_their_share_and_a_correspondent_no_settings_row(client, auth):
    auth.login(Role.SUPERVISOR)
    settings = _nav(client.get("/inbox/").get_data(as_text=True), "Office settings")
    assert ">Routing</a>" in settings and ">Staff</a>" not in settings
    client.post("/logout", data={"csrf_token": auth.csrf("/inbox/")})
    auth.login(Role.CORRESPONDENT)
    page = client.get("/inbox/").get_data(as_text=True)
    assert 'aria-label="Office settings"' not in page and ">Inbox</a>" in _nav(page, "Main")


def test_retention_runs_read_in_plain_words(client, auth, session):
    auth.login(Role.ADMIN)
    session.add_all([RetentionRun(dry_run=True, state=RunState.QUEUED),
                     RetentionRun(dry_run=False, state=RunState.DONE, result={})])
    session.commit()
    page = client.get("/privacy/retention").get_data(as_text=True)
    table = page.split('id="retention-runs"', 1)[1]
    assert "Waiting to start" in table and "Finished" in table and "Dry run (nothing removed)" in table
    assert not re.search(r"<td>(queued|done)</td>", table)


def test_an_empty_newsletter_page_says_what_to_do_first(client, auth, session):
    auth.login(Role.SUPERVISOR)
    page = client.get("/subscriptions/").get_data(as_text=True)
    assert 'id="send-needs-audience"' in page and "Make a list below" in page
    assert 'id="send-newsletter"' not in page  # no form with an empty "Send to" choice


def test_the_api_reference_shows_code_as_code(client):
    page = client.get("/api/v1/reference").get_data(as_text=True)
    assert "<code>messages:write</code>" in page
    assert "`messages:write`" not in page and "Bearer mrs_" in page
