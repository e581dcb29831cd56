"""The web console's reads: one view per page, the live stream, an environment's logs live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from beanpole.api.console import EnvironmentPage, MetricsRange, OverviewPage
from beanpole.api.views import MetricsView
from beanpole.server.context import Context
from beanpole.server.rest.auth import API, SESSION_COOKIE
from beanpole.server.rest.errors import responses
from beanpole.services.console import Allowed

EVENT_STREAM = {
    "description": "A server-sent event stream: named events whose data is JSON",
    "content": {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
            }
        }
    },
}
_STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=API, tags=["console"])
    pages, feed = ctx.console, ctx.feed

    @api.get("/console/overview", responses=responses(401, 405))
    async def overview() -> OverviewPage:
        """Applications, their environments and versions, each environment's last event."""
        return await pages.overview()

    @api.get("/console/environments/{name}", responses=responses(401, 404, 405))
    async def environment(name: str) -> EnvironmentPage:
        """Everything the environment page shows: view, health, the last hour's metrics,
        events, releases, settings with the options' meanings, versions, the running
        operation."""
        return await pages.environment(name)

    @api.get("/console/metrics/{name}", responses=responses(400, 401, 404, 405))
    async def metrics(name: str, range: Annotated[MetricsRange, Query()] = "1h") -> MetricsView:
        """The environment's points over the last hour, 3 hours, day or two weeks."""
        return await pages.metrics(name, range)

    @api.get(
        "/console/stream",
        response_class=StreamingResponse,
        responses=responses(401, 404, 405, ok=EVENT_STREAM),
    )
    async def stream(
        request: Request,
        environment: Annotated[str | None, Query(description="Also its own changes")] = None,
    ) -> StreamingResponse:
        """Server-sent events: ``environments`` (at once and on change), ``events`` (new
        ones), and with ``environment``: ``environment``, ``health``, ``metrics`` (new
        points), ``operation`` and ``gone``. A console session's stream ends with it."""
        events = feed.listen(environment, still_allowed(request))
        first = await anext(events)  # NotFound answers 404 here, before the stream starts
        return StreamingResponse(
            _prepend(first, events), media_type="text/event-stream", headers=_STREAM_HEADERS
        )

    @api.get(
        "/environments/{name}/logs/stream",
        response_class=StreamingResponse,
        responses=responses(400, 401, 404, 405, ok=EVENT_STREAM),
        tags=["logs"],
    )
    async def logs_stream(
        request: Request, name: str, instance: Annotated[str | None, Query()] = None
    ) -> StreamingResponse:
        """Server-sent events: ``lines``, each a list of log lines, as they are written."""
        lines = feed.follow_logs(ctx.logs, name, instance, still_allowed(request))
        first = await anext(lines)
        return StreamingResponse(
            _prepend(first, lines), media_type="text/event-stream", headers=_STREAM_HEADERS
        )

    def still_allowed(request: Request) -> Allowed:
        """For a stream, whether its caller may still read it: a console session that still
        lives (signing out, removing the user or its expiry end the stream), a bearer
        token not revoked since."""
        given = request.headers.get("authorization", "")
        if given:
            token = given.partition(" ")[2]

            async def valid() -> bool:
                return await asyncio.to_thread(ctx.access.still_valid, token)

            return valid
        session_id = request.cookies.get(SESSION_COOKIE, "")

        async def live() -> bool:
            return await asyncio.to_thread(ctx.users.session, session_id) is not None

        return live

    return api


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for item in rest:
        yield item
