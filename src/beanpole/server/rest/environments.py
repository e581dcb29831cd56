"""Environments: the views and the use cases that start operations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from beanpole.api import inputs
from beanpole.api.views import (
    AbortRequested,
    AutoscalingView,
    Checked,
    EnvironmentCreated,
    EnvironmentSummary,
    EnvironmentView,
    EventView,
    OperationStarted,
    ReleaseView,
    RollbackStarted,
    ScaleStarted,
    SettingsView,
    SwapResult,
)
from beanpole.server.context import Context
from beanpole.server.rest.auth import API, scoped_application
from beanpole.server.rest.errors import responses

DryRun = Annotated[bool, Query(description="Only check; start nothing")]


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=f"{API}/environments", tags=["environments"])
    envs = ctx.environments

    @api.get("", responses=responses(401, 405))
    async def list_environments(request: Request) -> list[EnvironmentSummary]:
        mine = scoped_application(request)
        return [e for e in await envs.list_all() if mine is None or e.application == mine]

    @api.post("", status_code=202, responses=responses(400, 401, 404, 405, 409))
    async def create_environment(
        body: inputs.CreateEnvironment, dry_run: DryRun = False
    ) -> EnvironmentCreated | Checked:
        """Create an environment running a version (a dry run checks what it can before the
        version is uploaded)."""
        if dry_run:
            return await envs.check_create(body)
        return await envs.create(body)

    @api.get("/{name}", responses=responses(401, 404, 405))
    async def get_environment(name: str) -> EnvironmentView:
        return await envs.get(name)

    @api.post("/{name}/clone", status_code=202, responses=responses(400, 401, 404, 405, 409))
    async def clone(name: str, body: inputs.CloneEnvironment) -> EnvironmentCreated:
        """A new environment running this one's version with its settings."""
        return await envs.clone(name, body)

    @api.post("/{name}/deploy", status_code=202, responses=responses(400, 401, 404, 405, 409))
    async def deploy(
        name: str, body: inputs.Deploy, dry_run: DryRun = False
    ) -> OperationStarted | Checked:
        return await envs.deploy(name, body, dry_run=dry_run)

    @api.post("/{name}/abort", status_code=202, responses=responses(401, 404, 405, 409))
    async def abort(name: str) -> AbortRequested:
        """Cancel the deployment in progress: it rolls back to the previous release."""
        return await envs.abort(name)

    @api.post("/{name}/rollback", status_code=202, responses=responses(400, 401, 404, 405, 409))
    async def rollback(name: str) -> RollbackStarted:
        return await envs.rollback(name)

    @api.get("/{name}/releases", responses=responses(401, 404, 405))
    async def releases(name: str) -> list[ReleaseView]:
        return await envs.releases(name)

    @api.post("/{name}/swap", responses=responses(400, 401, 404, 405, 409, 503))
    async def swap(name: str, body: inputs.Swap) -> SwapResult:
        """Exchange the CNAMEs of two Ready environments, atomically in the load balancer."""
        return await envs.swap(name, body.other)

    @api.post("/{name}/scale", status_code=202, responses=responses(400, 401, 404, 405, 409))
    async def scale(name: str, body: inputs.Scale) -> ScaleStarted:
        return await envs.scale(name, body.count, min_size=body.min_size, max_size=body.max_size)

    @api.get("/{name}/autoscaling", responses=responses(401, 404, 405))
    async def autoscaling(name: str) -> AutoscalingView:
        """The bounds, the policy in force, its measure now, the latest decision and the
        scheduled actions to come."""
        return await envs.autoscaling(name)

    @api.patch("/{name}/settings", status_code=202, responses=responses(400, 401, 404, 405, 409))
    async def change_settings(name: str, body: inputs.SettingsChange) -> OperationStarted:
        return await envs.configure(name, body)

    @api.get("/{name}/settings", responses=responses(401, 404, 405))
    async def get_settings(name: str) -> SettingsView:
        return await envs.settings(name)

    @api.delete("/{name}", status_code=202, responses=responses(401, 404, 405, 409))
    async def terminate(name: str) -> OperationStarted:
        return await envs.terminate(name)

    @api.get("/{name}/events", responses=responses(400, 401, 404, 405))
    async def events(
        name: str,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[EventView]:
        return await envs.events(name, after=after, limit=limit)

    return api
