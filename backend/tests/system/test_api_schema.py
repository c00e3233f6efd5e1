"""Schemathesis against the app's own OpenAPI schema: no 5xx, no response off its schema."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from app.main import create_app
from tests.conftest import reset_postgres_sync
from tests.support.app import threaded_app

ADMIN_TOKEN = "schemathesis-admin-token"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def live_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('api') / 'chat.db'}"
    else:
        database_url = request.getfixturevalue("postgres_url")
        reset_postgres_sync(database_url)
    with threaded_app(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_questions_per_ip="100000/minute",
        rate_limit_questions_per_session="100000/minute",
        rate_limit_new_sessions_per_ip="100000/minute",
        budget_tokens_per_session=0,
        budget_tokens_per_ip_per_day=0,
        budget_tokens_per_day=0,
    ) as port:
        yield f"http://127.0.0.1:{port}"


# The schema comes from the app itself; create_app() reads no settings until it starts.
schema = schemathesis.openapi.from_dict(create_app().openapi())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_keeps_its_documented_promises(
    case: schemathesis.Case[Any], live_url: str
) -> None:
    case.call_and_validate(
        base_url=live_url,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.response_headers_conformance,
        ],
    )
