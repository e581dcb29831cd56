"""The OpenAPI document is the contract: schemathesis generates requests from it against the
real app in process (real SQLite store and bundle store) and checks every answer.

No 5xx, every response matches the schema declared for its status, every status is
documented, a missing token is refused. The number of cases per operation is bounded so
the run stays well under a minute.

Not checked: that every schema-valid request is accepted (``positive_data_acceptance``).
A schema cannot say "a zip of an application", "a version that was uploaded" or "an
option setting Beanpole knows", so most generated requests are rightly refused with 400.
"""

from __future__ import annotations

import time
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from beanpole.home import Home
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


def test_every_answer_matches_the_document(public_tmp: Path) -> None:
    ctx = build_context(Home(public_tmp / "home"))
    try:
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(ctx))
        auth = {"Authorization": f"Bearer {ctx.token}"}
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 20  # the whole API, not an empty document
        # Event streams never end by themselves: they are walked against a real server in
        # tests/integration/test_console_api.py, not here, where each case would wait out
        # the stream.
        operations = [o for o in operations if not o.path.endswith("/stream")]

        started = time.monotonic()
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=CASES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def answers_as_documented(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=auth, excluded_checks=[positive_data_acceptance])

            answers_as_documented()
        assert time.monotonic() - started < 120  # bounded: the suite stays fast
    finally:
        ctx.monitor.close()
        ctx.store.close()
