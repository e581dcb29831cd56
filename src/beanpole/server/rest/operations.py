"""Operations: what a long use case (create, deploy, …) answered with, followed by id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from beanpole.api.views import OperationView
from beanpole.server.context import Context
from beanpole.server.rest.auth import API
from beanpole.server.rest.errors import responses


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=f"{API}/operations", tags=["operations"])

    @api.get("/{op_id}", responses=responses(400, 401, 404, 405))
    async def operation(op_id: Annotated[int, Path(ge=1, le=2**62)]) -> OperationView:
        return await ctx.environments.operation(op_id)

    return api
