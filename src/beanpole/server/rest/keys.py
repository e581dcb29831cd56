"""Access keys for the Elastic Beanstalk and S3 faces: create, list, revoke."""

from __future__ import annotations

from fastapi import APIRouter

from beanpole.api.keys import AccessKeyCreated, AccessKeyRevoked, AccessKeyView, CreateAccessKey
from beanpole.server.context import Context
from beanpole.server.rest.auth import API
from beanpole.server.rest.errors import responses


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=API, tags=["keys"])
    keys = ctx.keys

    @api.post("/keys", status_code=201, responses=responses(400, 401, 405))
    async def create_key(body: CreateAccessKey) -> AccessKeyCreated:
        """A new access key and its secret, shown in this answer only. Clients of the
        Elastic Beanstalk and S3 faces sign requests with it (SigV4)."""
        return await keys.create(body.description)

    @api.get("/keys", responses=responses(401, 405))
    async def list_keys() -> list[AccessKeyView]:
        """Every access key, revoked ones too, oldest first; never their secrets."""
        return await keys.list_all()

    @api.delete("/keys/{key_id}", responses=responses(401, 404, 405))
    async def revoke_key(key_id: str) -> AccessKeyRevoked:
        """Refuse requests signed with the key from now on."""
        return await keys.revoke(key_id)

    return api
