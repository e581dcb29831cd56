"""An environment's logs: the last lines, a follow poll, a zip of everything."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from beanpole.api.views import LogPage, LogTail
from beanpole.server.context import Context
from beanpole.server.rest.auth import API
from beanpole.server.rest.errors import responses

ZIP = {"application/zip": {"schema": {"type": "string", "format": "binary"}}}


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=f"{API}/environments/{{name}}/logs", tags=["logs"])
    logs = ctx.logs

    @api.get("", responses=responses(400, 401, 404, 405))
    async def tail(
        name: str,
        instance: Annotated[str | None, Query()] = None,
        lines: Annotated[int, Query(ge=1, le=10000)] = 100,
    ) -> LogTail:
        """The last lines of each instance's logs, the access log and the latest deploy log."""
        return await logs.tail(name, instance, lines)

    @api.get("/follow", responses=responses(400, 401, 404, 405))
    async def follow(
        name: str,
        cursor: Annotated[
            str | None,
            Query(max_length=65536, description="From the last answer; none: start at the end"),
        ] = None,
        instance: Annotated[str | None, Query()] = None,
    ) -> LogPage:
        """Every line written since ``cursor`` and the cursor to ask with next (at once when
        ``more``). Files that appear later are read from their start; rotation loses nothing."""
        return await logs.follow(name, instance, cursor)

    @api.get(
        "/bundle",
        response_class=Response,
        responses=responses(401, 404, 405, ok={"description": "A zip of the logs", "content": ZIP}),
    )
    async def bundle(name: str, instance: Annotated[str | None, Query()] = None) -> Response:
        """A zip of every log: ``<instance id>/<file>`` (rotated parts too), ``access/…``,
        ``deploy/<operation id>.log``."""
        path = await logs.bundle(name, instance)
        return FileResponse(
            path,
            media_type="application/zip",
            filename=f"{name}-logs-{time.strftime('%Y%m%d-%H%M%S')}.zip",
            background=BackgroundTask(path.unlink, missing_ok=True),
        )

    return api
