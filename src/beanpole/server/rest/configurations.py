"""Saved configurations: save an environment's settings under a name, list, show, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from beanpole.api import inputs
from beanpole.api.views import SavedConfigurationDeleted, SavedConfigurationView
from beanpole.server.context import Context
from beanpole.server.rest.auth import API, scoped_application
from beanpole.server.rest.errors import responses


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=API, tags=["configurations"])
    configs = ctx.configurations

    @api.get("/configurations", responses=responses(400, 401, 404, 405))
    async def list_configurations(
        request: Request,
        application: Annotated[str | None, Query(description="Only this application's")] = None,
    ) -> list[SavedConfigurationView]:
        """Saved configurations, by application and name."""
        mine = scoped_application(request)
        rows = await configs.list_all(application)
        return [c for c in rows if mine is None or c.application == mine]

    @api.post(
        "/applications/{application}/configurations",
        status_code=201,
        responses=responses(400, 401, 404, 405, 409),
    )
    async def save_configuration(
        application: str, body: inputs.SaveConfiguration
    ) -> SavedConfigurationView:
        """Save an environment's own settings (and ``settings`` over them) under a name."""
        return await configs.save(application, body)

    @api.get(
        "/applications/{application}/configurations/{name}", responses=responses(401, 404, 405)
    )
    async def get_configuration(application: str, name: str) -> SavedConfigurationView:
        return await configs.get(application, name)

    @api.delete(
        "/applications/{application}/configurations/{name}", responses=responses(401, 404, 405)
    )
    async def delete_configuration(application: str, name: str) -> SavedConfigurationDeleted:
        """Delete it; environments created from it keep the settings they got from it."""
        return await configs.delete(application, name)

    return api
