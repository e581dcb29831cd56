"""Which instances a cluster node holds, and what draining it moves (pure).

`beanpole nodes` shows each node of a Docker Swarm with the instances on it; `beanpole nodes
drain NODE` empties one: each environment with instances there gets as many successors on
other nodes first (launch-first, as a rolling deployment with an additional batch), then its
instances on the node are drained in the load balancer and stopped. The runtime says where
an instance runs (`InstanceObservation.node`, a hostname); the store says what it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from beanpole.core import placement
from beanpole.core.model import EnvStatus, Instance, InstanceState
from beanpole.core.placement import Node
from beanpole.core.runtime import InstanceObservation


def by_node(
    instances: Iterable[Instance], observed: Mapping[str, InstanceObservation]
) -> dict[str, list[Instance]]:
    """Node hostname -> the live instances the runtime runs there, oldest first. Instances
    the runtime does not place on a node (another runtime's, or not observed) are left out."""
    out: dict[str, list[Instance]] = {}
    for instance in instances:
        seen = observed.get(instance.id)
        if instance.state is InstanceState.STOPPED or seen is None or not seen.node:
            continue
        out.setdefault(seen.node, []).append(instance)
    for held in out.values():
        held.sort(key=lambda i: (i.created_at, i.id))
    return out


@dataclass(frozen=True)
class Move:
    """One environment's part of a drain: ``successors`` instances start on other nodes and
    go in service, then every one of ``leaving`` is drained and stopped."""

    environment: str
    leaving: tuple[Instance, ...]

    @property
    def successors(self) -> int:
        """One per instance in service: a leftover that is not (starting, leaving) takes no
        traffic and is only stopped."""
        return sum(1 for i in self.leaving if i.state is InstanceState.IN_SERVICE)


def plan_drain(on_node: Iterable[Instance]) -> tuple[Move, ...]:
    """The moves that empty a node of ``on_node`` (its live instances), by environment name."""
    grouped: dict[str, list[Instance]] = {}
    for instance in on_node:
        if instance.state is not InstanceState.STOPPED:
            grouped.setdefault(instance.environment, []).append(instance)
    return tuple(
        Move(name, tuple(sorted(held, key=lambda i: (i.created_at, i.id))))
        for name, held in sorted(grouped.items())
    )


def blockers(
    moves: Iterable[Move],
    node: str,
    statuses: Mapping[str, EnvStatus],
    busy: Iterable[str],
) -> list[str]:
    """Why the moves cannot start now, one sentence per environment (empty: they can).

    An environment that an operation, a repair or a scaling activity holds (``busy``), or
    that is not Ready, is not touched: its instances are changing under that operation.
    """
    held = set(busy)
    out = []
    for move in moves:
        count = len(move.leaving)
        what = f"{move.environment} ({count} instance{'' if count == 1 else 's'} on {node})"
        status = statuses.get(move.environment)
        if move.environment in held:
            out.append(
                f"{what} has an operation in progress (a deployment, configuration change, "
                f"repair or scaling activity): wait for it (beanpole events {move.environment} "
                "-f)"
            )
        elif status is not EnvStatus.READY:
            out.append(f"{what} is {status or 'unknown'}, not Ready: wait until it is Ready")
    return out


def elsewhere(nodes: Iterable[Node], hostname: str) -> list[Node]:
    """The nodes other than ``hostname`` that can take a new instance (up and active)."""
    return [n for n in nodes if n.hostname != hostname and n.ready and n.active]


def find(nodes: Iterable[Node], name: str) -> Node | None:
    """The node named ``name``: by hostname, else by id (or a unique prefix of one)."""
    listed = list(nodes)
    for node in listed:
        if name == node.hostname:
            return node
    by_id = [n for n in listed if n.id.startswith(name)] if name else []
    return by_id[0] if len(by_id) == 1 else None


def plan_rebalance(
    nodes: Iterable[Node],
    held: Mapping[str, list[Instance]],
    environment: str,
    constraints: Mapping[str, str],
) -> tuple[str, Instance] | None:
    """The instance to move so that the environment is spread evenly again, and the node it
    leaves: the oldest in service on the open node holding the most of them, when that is
    two or more above another open node (a node that came back, or was activated after a
    drain), and when `placement.choose` would put its successor elsewhere. None: even."""
    open_nodes = placement.candidates(list(nodes), constraints)
    if len(open_nodes) < 2:
        return None
    mine = {
        n.hostname: [
            i
            for i in held.get(n.hostname, [])
            if i.environment == environment and i.state is InstanceState.IN_SERVICE
        ]
        for n in open_nodes
    }
    most = max(open_nodes, key=lambda n: (len(mine[n.hostname]), n.hostname))
    least = min(len(mine[n.hostname]) for n in open_nodes)
    if len(mine[most.hostname]) - least < 2:
        return None
    env_counts = {n.id: len(mine[n.hostname]) for n in open_nodes}
    all_counts = {n.id: len(held.get(n.hostname, [])) for n in open_nodes}
    target = placement.choose(open_nodes, env_counts, all_counts, constraints)
    if target is None or target.id == most.id:
        return None
    return most.hostname, mine[most.hostname][0]
