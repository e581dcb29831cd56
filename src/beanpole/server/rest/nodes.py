"""The swarm's nodes: list them with their instances, drain one, activate it again."""

from __future__ import annotations

from fastapi import APIRouter

from beanpole.api.nodes import NodeDrained, NodesView, NodeView
from beanpole.server.context import Context
from beanpole.server.rest.auth import API
from beanpole.server.rest.errors import responses


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=API, tags=["nodes"])
    nodes = ctx.nodes

    @api.get("/nodes", responses=responses(400, 401, 405, 503))
    async def list_nodes() -> NodesView:
        """Every node of the swarm (hostname, state, availability, role, address, zone,
        labels) with Beanpole's instances on it. 400 when the server does not run
        ``--runtime swarm``."""
        return await nodes.list_all()

    @api.post("/nodes/{node}/drain", responses=responses(400, 401, 404, 405, 409, 503))
    async def drain_node(node: str) -> NodeDrained:
        """Move Beanpole's instances off the node with no request dropped (pause it, start
        each one's successor elsewhere, put it in service, drain the old one in the load
        balancer and stop it), then set its availability to drain. Answers once done;
        409 while an operation holds an environment with instances there."""
        return await nodes.drain(node)

    @api.post("/nodes/{node}/activate", responses=responses(400, 401, 404, 405, 503))
    async def activate_node(node: str) -> NodeView:
        """The node takes new instances again (availability active)."""
        return await nodes.activate(node)

    return api
