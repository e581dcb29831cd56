"""Health: an environment's verdict, its metrics history, and /metrics for Prometheus."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from beanpole.api.views import HealthView, MetricsView
from beanpole.server.context import Context
from beanpole.server.prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from beanpole.server.prometheus import prometheus_text
from beanpole.server.rest.auth import API
from beanpole.server.rest.errors import responses
from beanpole.services.health import Resolution

EPOCH_S = 2.0**40  # far beyond any real time, small enough for a float's exact seconds


def router(ctx: Context) -> APIRouter:
    api = APIRouter(tags=["health"])
    health = ctx.health

    @api.get(f"{API}/environments/{{name}}/health", responses=responses(401, 404, 405))
    async def environment_health(name: str) -> HealthView:
        return await health.health(name)

    @api.get(f"{API}/environments/{{name}}/metrics", responses=responses(400, 401, 404, 405))
    async def metrics_history(
        name: str,
        instance: Annotated[str, Query(description="An instance id; empty: the environment")] = "",
        since: Annotated[
            float, Query(ge=0, le=EPOCH_S, description="Epoch seconds; default an hour ago")
        ] = 0.0,
        until: Annotated[
            float, Query(ge=0, le=EPOCH_S, description="Epoch seconds; default now")
        ] = 0.0,
        resolution: Annotated[Resolution, Query()] = "auto",
    ) -> MetricsView:
        """A time series of request windows: 10 s points for the last day, 5 min beyond."""
        return await health.metrics(name, instance, since, until, resolution)

    @api.get(
        "/metrics",
        response_class=Response,
        responses=responses(
            401,
            405,
            ok={
                "description": "Every environment's and instance's figures",
                "content": {PROMETHEUS_CONTENT_TYPE: {"schema": {"type": "string"}}},
            },
        ),
    )
    async def prometheus() -> Response:
        """Every environment's and instance's figures in the Prometheus text format."""
        # In the event loop, not a thread: it reads the monitor's live dictionaries.
        return Response(prometheus_text(ctx.store, ctx.monitor), media_type=PROMETHEUS_CONTENT_TYPE)

    return api
