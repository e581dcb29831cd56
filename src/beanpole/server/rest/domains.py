"""Domains: host names an environment answers on besides its CNAME."""

from __future__ import annotations

from fastapi import APIRouter

from beanpole.api import inputs
from beanpole.api.views import DomainsView
from beanpole.server.context import Context
from beanpole.server.rest.auth import API
from beanpole.server.rest.errors import responses


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=API, tags=["domains"])
    domains = ctx.domains

    @api.get("/environments/{name}/domains", responses=responses(401, 404, 405))
    async def list_domains(name: str) -> DomainsView:
        """The environment's domains (its CNAME's URL beside them)."""
        return await domains.list(name)

    @api.post("/environments/{name}/domains", responses=responses(400, 401, 404, 405, 409))
    async def add_domain(name: str, body: inputs.AddDomain) -> DomainsView:
        """Route ``domain`` to the environment too (its DNS must point at the load
        balancer); a domain routes to one environment at most."""
        return await domains.add(name, body.domain)

    @api.delete("/environments/{name}/domains/{domain:path}", responses=responses(401, 404, 405))
    async def remove_domain(name: str, domain: str) -> DomainsView:
        return await domains.remove(name, domain)

    return api
