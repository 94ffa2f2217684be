"""Issue 12 re-check: attacks an outside reviewer tried on a fresh instance after the first fixes.

Each test performs one attack that got through, and checks it now fails safely.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from correspondence.errors import PermissionDenied
from correspondence.models import LetterVersion, Role
from correspondence.services.second_factor import reset_second_factor
from drafting.render import LetterError, render, validate

# Letters that pass a walk of the parsed template but that Python cannot compile (too many levels of
# indentation, "too many nested parentheses", or a RecursionError in Jinja's code generator): each
# was a 500 on the editor or preview page and a crashed apply-to-all job.
TOO_DEEP = [
    "{% if constituent.first_name %}" * 100 + "x" + "{% endif %}" * 100,
    "{{ " + "not " * 300 + "constituent.first_name }}",
    "{{ constituent.first_name" + "|upper" * 300 + " }}",
    "{{ constituent.first_name" + " or constituent.last_name" * 300 + " }}",
    "{{ " + "not " * 800 + "constituent.first_name }}",
]


@pytest.mark.parametrize("template", TOO_DEEP, ids=["ifs", "nots", "filters", "ors", "nots-800"])
def test_a_letter_nested_too_deeply_is_refused_not_a_crash(template):
    problems = validate(template)
    assert problems and "nested too deeply" in problems[0]
    with pytest.raises(LetterError, match="nested too deeply"):
        render(template, {})


def test_a_deeply_nested_letter_is_refused_by_the_editor(client, auth, session):
    auth.login("correspondent")
    token = auth.csrf("/letters/new")
    for template in TOO_DEEP:
        page = client.post("/letters/new", data={"csrf_token": token, "title": "Deep", "body": template})
        assert page.status_code == 400
        assert "nested too deeply" in page.get_data(as_text=True)
    assert session.scalar(select(func.count(LetterVersion.id))) == 0


def test_ordinary_nesting_still_renders():
    template = ("{% if constituent.first_name %}{% if constituent.last_name %}{{ constituent.first_name|upper|trim }}"
                "{% else %}{{ not constituent.city or constituent.state }}{% endif %}{% endif %}")
    assert validate(template) == []
    values: dict[str, object] = {"constituent": {"first_name": "ana ", "last_name": "Diaz", "city": "", "state": "OH"}}
    assert render(template, values) == "ANA"


@pytest.mark.parametrize("role", ["supervisor", "caseworker", "correspondent"])
def test_only_an_admin_can_reset_a_second_factor_in_the_service(session, factory, role):
    """Item 11's rule for item 9: removing someone's second factor is checked where it is done."""
    target = factory.staffer(Role.ADMIN, totp_secret="x", totp_confirmed_at=None)
    attacker = factory.staffer(role)
    session.commit()
    epoch = target.session_epoch
    with pytest.raises(PermissionDenied):
        reset_second_factor(session, target.id, actor_id=attacker.id)
    session.rollback()
    assert session.get(type(target), target.id).session_epoch == epoch
    admin = factory.staffer(Role.ADMIN)
    reset_second_factor(session, target.id, actor_id=admin.id)
    reset_second_factor(session, target.id, actor_id=None)  # the shell (a locked-out sole admin)
