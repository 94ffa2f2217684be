"""Bad numbers and bodies (issue 12 item 13): every route, hostile values everywhere, never a 500."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from correspondence.models import Role
from correspondence.services.tokens import create_token

ROOT = Path(__file__).resolve().parent.parent
HUGE = "99999999999999999999999"
HOSTILE = [HUGE, "2147483648", "9223372036854775807", "9223372036854775808", "18446744073709551616", "-1",
           "-9223372036854775809", "0", "1.5", "1e999", "nan", "²", "١٢", "é", "../", "..%2f..%2fetc%2fpasswd", "\x00",
           "x" * 5000, " 1", "[]"]
_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _query_names() -> list[str]:
    """Every name a view or filter parser reads from a query or form, found in the source."""
    names: set[str] = set()
    for path in [*(ROOT / "web").glob("*.py"), ROOT / "constituents" / "segments.py",
                 ROOT / "correspondence" / "services" / "inbox.py"]:
        names |= set(re.findall(r"""(?:\.get|getlist|args|form|values)\(\s*["']([a-z_0-9]+)["']""", path.read_text()))
        names |= set(re.findall(r"""(?:args|form|values|f)\[["']([a-z_0-9]+)["']\]""", path.read_text()))
    return sorted(names | {"page", "cursor", "after", "before", "constituent", "limit", "offset", "id"})


def _fill(rule: str, hostile_var: str | None, value: str, real: dict[str, str] | None = None) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        return quote(value, safe="") if name == hostile_var else (real or {}).get(name, "1")

    return _VARIABLE.sub(sub, rule)


@pytest.fixture
def roomy_app(settings):
    """The app with limits raised for this many requests (still on and counted in Redis)."""
    from web import create_app

    app = create_app(dataclasses.replace(settings, rate_limits=tuple(
        (rule, "100000/minute") for rule, _ in settings.rate_limits)))
    yield app
    app.extensions["mailroom.db"].dispose()
    app.extensions["mailroom.db_write"].dispose()


def _walk(app, client, csrf: str, *, queries: bool, real: dict[str, str] | None = None) -> list[str]:
    """Every route, GET and POST: hostile values in each path variable, in every query name (GET) and in
    every form name (POST, with real ids; each action has its own route)."""
    failures = []
    real = real or {}

    def check(method: str, url: str, **kw: object) -> None:
        try:
            status = client.open(url, method=method, **kw).status_code
        except Exception as exc:  # a crash that escaped the error handler is a 500 too
            failures.append(f"{method} {url[:120]} raised {exc!r}"[:300])
            return
        if status >= 500:
            failures.append(f"{method} {url[:120]} -> {status}")

    names = _query_names()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        variables = _VARIABLE.findall(rule.rule)
        for method in sorted({"GET", "POST"} & (rule.methods or set())):
            for var in variables:
                for value in HOSTILE:
                    url = _fill(rule.rule, var, value)
                    if method == "GET":
                        check("GET", url)
                    else:
                        check("POST", url, data={"csrf_token": csrf, **{n: value for n in names}})
            # (Viewing as another staffer would turn every later change off.)
            if method == "POST" and rule.endpoint not in ("auth.logout", "auth.stop_view_as", "admin.view_as"):
                url = _fill(rule.rule, None, "", real)
                for value in (HUGE, "2147483648", "9223372036854775808", "-1", "²", "\x00", "x" * 5000, "../"):
                    check("POST", url, data={"csrf_token": csrf, **{n: value for n in names}})
            if queries and method == "GET":
                base = _fill(rule.rule, None, "1", real)
                for value in HOSTILE:
                    check("GET", base + "?" + urlencode({n: value for n in names}))
                    check("GET", base + "?" + urlencode(dict.fromkeys(names[:40], value)) + "&" +
                          urlencode(dict.fromkeys(names[40:], value)))
    return failures


def test_every_route_with_hostile_values_signed_in_as_admin(roomy_app, session, factory):
    client = roomy_app.test_client()
    admin = factory.staffer(role=Role.ADMIN)
    other = factory.staffer(role=Role.CASEWORKER)
    person = factory.constituent()
    message = factory.message(constituent_id=person.id)
    session.commit()
    real = {"message_id": str(message.id), "constituent_id": str(person.id), "staffer_id": str(other.id)}
    from tests.conftest import csrf_token
    from tests.factories import Factory

    token = csrf_token(client)
    assert client.post("/login", data={"email": admin.email, "password": Factory.PASSWORD,
                                       "csrf_token": token}).status_code == 302
    failures = _walk(roomy_app, client, csrf_token(client, "/inbox/"), queries=True, real=real)
    assert not failures, "\n".join(failures)


def test_every_route_with_hostile_values_signed_out(roomy_app):
    from tests.conftest import csrf_token

    client = roomy_app.test_client()
    failures = _walk(roomy_app, client, csrf_token(client), queries=True)
    assert not failures, "\n".join(failures)


def test_huge_ids_in_paths_are_not_found(client, auth):
    auth.login(Role.ADMIN)
    for path in (f"/messages/{HUGE}", f"/cases/{HUGE}", "/messages/9223372036854775808",
                 f"/constituents/{HUGE}", f"/batches/{HUGE}", "/cases/9223372036854775807"):
        assert client.get(path).status_code == 404, path
    assert client.get("/messages/2147483647").status_code == 404  # the largest id: just not there
    assert client.get("/messages/2147483648").status_code == 404  # past PostgreSQL's INTEGER


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deeply_nested_json_is_a_400_on_the_api(client, session, redis, depth):
    _t, plain = create_token(session, name="website", actor_id=None)
    session.commit()
    body = "[" * depth + "]" * depth
    response = client.post("/api/v1/intake/webform", data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {plain}"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == 400


def test_a_nul_character_in_a_query_or_form_field_is_a_400(client, auth):
    # PostgreSQL cannot store NUL in text: before, a sign-in or a search with one was a 500 there.
    token = auth.csrf("/login")
    assert client.post("/login", data={"email": "a\x00@example.org", "password": "x", "csrf_token": token}
                       ).status_code == 400
    auth.login(Role.ADMIN)
    assert client.get("/search/", query_string={"q": "roads\x00"}).status_code == 400


def test_a_nul_character_in_api_json_is_a_400(client, session, redis):
    # Before, a web form delivery with "\u0000" in a field was a 500 on PostgreSQL (text cannot hold NUL).
    _t, plain = create_token(session, name="website", actor_id=None)
    session.commit()
    form = {"first_name": "Dana\u0000", "last_name": "Reyes", "street": "55 Elm St", "city": "Columbus",
            "state": "oh", "zip5": "43215", "email": "dana@example.org", "message": "hello\u0000 there"}
    response = client.post("/api/v1/intake/webform", json=form, headers={"Authorization": f"Bearer {plain}"})
    assert response.status_code == 400 and "NUL" in response.get_json()["error"]["message"]


def test_missing_objects_and_bad_values_have_one_answer_each(client, auth, session, factory):
    """One NotFound handler (a 404 page naming what is missing, the transaction rolled back) and one
    BadParameter handler (a 400 naming the field) answer for every view (issue 15)."""
    from sqlalchemy import func, select

    from correspondence.models import AuditEvent

    auth.login(Role.SUPERVISOR)
    token = auth.csrf("/letters/")
    missing = client.get("/letters/versions/2147483000")
    assert missing.status_code == 404 and "There is no letter version 2147483000." in missing.get_data(as_text=True)
    before = session.scalar(select(func.count(AuditEvent.id)))
    for path in ("/letters/versions/2147483000/approve", "/quarantine/2147483000/retry", "/batches/2147483000/undo",
                 "/cases/2147483000/note", "/paragraphs/2147483000/retire", "/messages/2147483000/status"):
        answer = client.post(path, data={"csrf_token": token, "value": "closed", "text": "x", "event_id": "1"})
        assert answer.status_code == 404, path
    session.rollback()
    assert session.scalar(select(func.count(AuditEvent.id))) == before  # nothing half-done was kept
    bad = client.get("/letters/?topic=abc")
    assert bad.status_code == 400 and "topic: &#39;abc&#39; is not a number" in bad.get_data(as_text=True)
    assert client.get("/inbox/?from=yesterday").status_code == 400
