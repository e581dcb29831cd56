"""API tokens (create, list, revoke) and the audit log: the admin's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from beanpole.api.access import AuditView, CreateToken, TokenCreated, TokenRevoked, TokenView
from beanpole.server.context import Context
from beanpole.server.rest.auth import API
from beanpole.server.rest.errors import responses


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=API, tags=["access"])
    access = ctx.access

    @api.post("/tokens", status_code=201, responses=responses(400, 401, 403, 405))
    async def create_token(body: CreateToken) -> TokenCreated:
        """A new token with a role (read, deploy or admin), limited to one application if
        given; the token is in this answer only (the server keeps its hash)."""
        return await access.create(body.role, body.application, body.name)

    @api.get("/tokens", responses=responses(401, 403, 405))
    async def list_tokens() -> list[TokenView]:
        """Every token, revoked ones too, oldest first; never the tokens themselves."""
        return await access.list_all()

    @api.delete("/tokens/{token_id}", responses=responses(401, 403, 404, 405))
    async def revoke_token(token_id: str) -> TokenRevoked:
        """Refuse requests with the token from now on."""
        return await access.revoke(token_id)

    @api.get("/audit", responses=responses(400, 401, 403, 405))
    async def audit(
        application: Annotated[
            str | None, Query(max_length=100, description="Only this application's")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=10_000, description="The newest N")] = 100,
    ) -> AuditView:
        """Who changed what, when and from where: every change asked of the REST API and
        of Elastic Beanstalk's API, and every refused credential, oldest first."""
        return await access.audit(application, limit)

    return api
