"""schemathesis against the live app: every documented operation of /api/v1, with generated requests
from the OpenAPI document; no answer is a server error and every answer matches the document.

Runs on SQLite, and on PostgreSQL in CI's PostgreSQL pass (TEST_DATABASE_URL). Bounded by
MAX_EXAMPLES per operation so a run stays well under three minutes on two cores.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from correspondence.models import Role
from correspondence.services.api_tokens import create_api_token, scopes_for

MAX_EXAMPLES = int(os.environ.get("MAILROOM_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture
def office(session, factory):
    """A little data for the generated ids to find now and then (ids 1, 2, 3 exist in each table)."""
    boss = factory.staffer(Role.SUPERVISOR)
    for n in range(3):
        person = factory.constituent(last_name=f"Fuzz{n}")
        factory.message(constituent_id=person.id)
    _token, plain = create_api_token(session, name="fuzz", scopes=scopes_for(Role.SUPERVISOR), days=1,
                                     actor_id=boss.id)
    session.commit()
    return plain


def test_every_documented_operation_answers_as_documented(live_server, office):
    schema = schemathesis.openapi.from_url(f"{live_server}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17, "the document lists every operation"
    headers = {"Authorization": f"Bearer {office}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(base_url=live_server, headers=headers, checks=CHECKS)

        check()
