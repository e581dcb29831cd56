"""Which node of a cluster runs a new instance: spread like an auto scaling group (pure).

Elastic Beanstalk's instances sit in an auto scaling group that balances them across
availability zones: no zone gets a second instance while another has fewer. Beanpole places
each instance on a node of a Docker Swarm itself (the engine then runs and restarts it
there), with the same rule one level further down:

1. the candidates are the nodes that are up, take new work (availability ``active``) and
   carry every label the environment asks for (``beanpole:instance:Constraints``, the
   counterpart of an environment's subnets);
2. among them, the zone (node label ``beanpole.az``; a node without one is a zone of its own)
   with the fewest of the environment's instances;
3. in that zone, the node with the fewest of the environment's instances, then the fewest
   instances of any environment, then the first by name: the same inputs always give the
   same node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: The node label that names a node's zone (its rack, room or data centre).
ZONE_LABEL = "beanpole.az"


@dataclass(frozen=True)
class Node:
    """A cluster node as placement sees it."""

    id: str
    hostname: str
    ready: bool = True  # the engine's heartbeat arrives
    active: bool = True  # takes new work (not drained or paused)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def zone(self) -> str:
        return self.labels.get(ZONE_LABEL) or f"node:{self.hostname}"

    def matches(self, constraints: Mapping[str, str]) -> bool:
        return all(self.labels.get(key) == value for key, value in constraints.items())


def candidates(nodes: list[Node], constraints: Mapping[str, str]) -> list[Node]:
    """The nodes a new instance may go to."""
    return [n for n in nodes if n.ready and n.active and n.matches(constraints)]


def choose(
    nodes: list[Node],
    env_counts: Mapping[str, int],
    all_counts: Mapping[str, int],
    constraints: Mapping[str, str] | None = None,
) -> Node | None:
    """The node for the environment's next instance (None: no node qualifies).

    ``env_counts`` and ``all_counts``: node id -> the environment's instances there, and
    every Beanpole instance there (nodes absent count 0).
    """
    open_nodes = candidates(nodes, constraints or {})
    if not open_nodes:
        return None
    per_zone: dict[str, int] = {}
    for node in open_nodes:  # a down or drained node's instances are leaving it
        per_zone[node.zone] = per_zone.get(node.zone, 0) + env_counts.get(node.id, 0)
    return min(
        open_nodes,
        key=lambda n: (
            per_zone.get(n.zone, 0),
            env_counts.get(n.id, 0),
            all_counts.get(n.id, 0),
            n.hostname,
            n.id,
        ),
    )


def spread_is_broken(
    nodes: list[Node], env_counts: Mapping[str, int], constraints: Mapping[str, str]
) -> bool:
    """Whether one open node holds two or more instances more than another open node (the
    rule `choose` keeps; a returning node or a drain breaks it)."""
    counts = [env_counts.get(n.id, 0) for n in candidates(nodes, constraints)]
    return bool(counts) and max(counts) - min(counts) > 1


def parse_constraints(text: str) -> dict[str, str]:
    """``key=value`` pairs, comma-separated (``tier=web,beanpole.az=a``), as the option
    ``beanpole:instance:Constraints`` takes them; raises ValueError naming a bad pair."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{part!r} is not key=value (for example tier=web)")
        out[key.strip()] = value.strip()
    return out


def node_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """The nodes whose state changed between two looks (hostname -> state), as (hostname,
    old, new); a node seen for the first time is news only when it is not ready."""
    changes = []
    for hostname, state in sorted(after.items()):
        old = before.get(hostname)
        if old is None and before and state != "ready":
            changes.append((hostname, "", state))
        elif old is not None and old != state:
            changes.append((hostname, old, state))
    return changes
