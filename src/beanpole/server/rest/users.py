"""Console users: add (name and password), list, remove."""

from __future__ import annotations

from fastapi import APIRouter

from beanpole.api.users import CreateUser, UserRemoved, UserView
from beanpole.server.context import Context
from beanpole.server.rest.auth import API
from beanpole.server.rest.errors import responses


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=f"{API}/users", tags=["users"])
    users = ctx.users

    @api.post("", status_code=201, responses=responses(400, 401, 403, 405, 409))
    async def add_user(body: CreateUser) -> UserView:
        """A user who signs in to the web console with this name and password (stored as
        an Argon2id hash)."""
        return await users.add(body.name, body.password)

    @api.get("", responses=responses(401, 405))
    async def list_users() -> list[UserView]:
        return await users.list_all()

    @api.delete("/{name}", responses=responses(401, 403, 404, 405))
    async def remove_user(name: str) -> UserRemoved:
        """Remove the user and end their console sessions."""
        return await users.remove(name)

    return api
