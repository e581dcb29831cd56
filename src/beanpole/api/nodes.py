"""A Docker Swarm's nodes as the API shows them (`GET /api/v1/nodes`, `POST …/drain`,
`POST …/activate`): only a server started with ``--runtime swarm`` has any."""

from __future__ import annotations

from pydantic import Field

from beanpole.api.views import View
from beanpole.core.model import InstanceState


class NodeInstanceView(View):
    """A Beanpole instance on the node."""

    id: str
    environment: str
    state: InstanceState


class NodeView(View):
    id: str
    hostname: str
    state: str = Field(description="The engine's heartbeat: ready, down, unknown, disconnected")
    availability: str = Field(
        description="active (takes new instances), pause (keeps what runs, takes nothing "
        "new) or drain (runs nothing)"
    )
    role: str = Field(description="manager or worker")
    address: str
    zone: str = Field(description="The node label beanpole.az ('' when it has none)")
    labels: dict[str, str]
    instances: list[NodeInstanceView] = Field(description="Beanpole's instances on it")


class NodesView(View):
    nodes: list[NodeView]


class MovedInstance(View):
    """An instance a drain moved: ``replacement`` took its place on ``node``."""

    instance: str
    environment: str
    replacement: str
    node: str = Field(
        default="", description="Where the replacement runs ('': it was not in service)"
    )


class NodeDrained(View):
    """A drained node (availability drain) and what left it."""

    node: NodeView
    moved: list[MovedInstance]
    seconds: float = Field(description="How long the drain took")
