"""The OpenAPI document is the contract: schemathesis generates requests from it against the
real app in process (real SQLite store and bundle store) and checks every answer.

No 5xx, every response matches the schema declared for its status, every status is
documented, a missing token is refused; with a token of each role (issue 14, part 5), and
a read token's every change is refused. The number of cases per operation is bounded so
the run stays well under a minute.

Not checked: that every schema-valid request is accepted (``positive_data_acceptance``).
A schema cannot say "a zip of an application", "a version that was uploaded" or "an
option setting Beanpole knows", so most generated requests are rightly refused with 400.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from beanpole.home import Home
from beanpole.server.context import Context
from beanpole.server.main import build_context
from beanpole.server.rest.app import create_app

CASES_PER_OPERATION = 25


@schemathesis.serializer("application/zip")
def _zip(ctx: schemathesis.SerializationContext, value: object) -> dict[str, bytes]:
    """Uploads are raw zip bodies: send what was generated as bytes (mostly not a zip,
    which the API must refuse with 400, never a 5xx)."""
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": str(value).encode()}


ROLES = ("server", "read", "deploy", "shop-deploy")


@pytest.mark.parametrize("role", ROLES)
def test_every_answer_matches_the_document(public_tmp: Path, role: str) -> None:
    """With the server's token (admin) and a token of each role: a read token changes
    nothing (every change it asks for is 403), and no role gets a 5xx or an answer
    outside the document."""
    ctx = build_context(Home(public_tmp / "home"))
    try:
        app = create_app(ctx)
        # schemathesis also sends wrong tokens, on purpose: unthrottled here, so the cases
        # after them are judged on their own (the throttle: tests/integration/test_roles.py)
        ctx.access.throttle.allowed = 1_000_000
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        auth = {"Authorization": f"Bearer {_token(ctx, app, role)}"}
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 20  # the whole API, not an empty document
        # Event streams never end by themselves: they are walked against a real server in
        # tests/integration/test_console_api.py, not here, where each case would wait out
        # the stream.
        operations = [o for o in operations if not o.path.endswith("/stream")]
        cases = CASES_PER_OPERATION if role == "server" else CASES_PER_OPERATION // 3
        refused: list[str] = []

        started = time.monotonic()
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=cases,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def answers_as_documented(case: schemathesis.Case) -> None:
                response = case.call_and_validate(
                    headers=auth, excluded_checks=[positive_data_acceptance]
                )
                changes = case.method.upper() not in ("GET", "HEAD")
                if role == "read" and changes and case.path != "/api/v1/session":
                    # refused for its role, or earlier for a body that is not JSON
                    assert response.status_code in (400, 403), (case.method, case.path)
                    refused.append(case.path)

            answers_as_documented()
        assert time.monotonic() - started < 120  # bounded: the suite stays fast
        if role == "read":
            assert refused  # the walk did ask for changes, and each was refused
    finally:
        ctx.monitor.close()
        ctx.store.close()


def _token(ctx: Context, app: FastAPI, role: str) -> str:
    if role == "server":
        return ctx.token
    body = {"role": role.removeprefix("shop-"), "application": "shop" if "shop" in role else None}
    with TestClient(app) as client:
        made = client.post(
            "/api/v1/tokens", json=body, headers={"Authorization": f"Bearer {ctx.token}"}
        )
    assert made.status_code == 201, made.text
    return str(made.json()["token"])
