"""The REST API (FastAPI): the face the CLI, scripts and the console use.

The handlers translate HTTP to service calls and back, nothing more: one router per
resource (`access` for tokens and the audit log, `applications`, `certificates`,
`configurations`, `environments`, `logs`, `health`, `nodes`, `operations`, `keys`, `users`,
`session`, `console`), every route with its response model
and the error statuses it can answer, the bearer and console-session schemes declared once
(`auth`); the console's own files are served by `site`. Errors are translated in
`errors`; the OpenAPI document is finished in `openapi`.
`tests/integration/test_api.py` walks every route for the error shape, and
`tests/integration/test_api_schema.py` runs schemathesis against the document.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from beanpole import __version__
from beanpole.api.views import Ping
from beanpole.server.context import Context
from beanpole.server.rest import (
    access,
    applications,
    certificates,
    configurations,
    console,
    domains,
    environments,
    errors,
    health,
    keys,
    logs,
    nodes,
    operations,
    session,
    site,
    users,
)
from beanpole.server.rest.audit import AuditLog
from beanpole.server.rest.auth import API, auth_dependency
from beanpole.server.rest.limits import BodyLimit
from beanpole.server.rest.openapi import finish_openapi


def create_app(ctx: Context) -> FastAPI:
    app = FastAPI(
        title="Beanpole",
        version=__version__,
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )
    errors.install(app)
    auth = auth_dependency(ctx.access, ctx.users, ctx.store)
    app.add_middleware(AuditLog, access=ctx.access)
    app.add_middleware(BodyLimit)  # outermost: a body over the limit is never read

    @app.get(f"{API}/ping", responses=errors.responses(405))
    async def ping() -> Ping:
        """Whether the server answers, its version and pid (no token needed)."""
        return Ping(ok=True, version=__version__, pid=os.getpid())

    modules = (
        access,
        applications,
        certificates,
        configurations,
        domains,
        environments,
        logs,
        health,
        nodes,
        operations,
        keys,
    )
    for module in (*modules, users, console):
        app.include_router(module.router(ctx), dependencies=[auth])
    app.include_router(session.router(ctx))  # signing in needs no token; it checks its own
    app.include_router(site.router(ctx.users))  # the console: page (with the session), files
    finish_openapi(app)
    return app


__all__ = ["create_app"]
