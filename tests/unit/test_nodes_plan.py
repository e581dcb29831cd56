"""Which instances a swarm node holds and what draining it moves (`core.nodes`, issue 13
part 4: "Nodes are visible")."""

from __future__ import annotations

from beanpole.core.model import EnvStatus, Instance, InstanceState
from beanpole.core.nodes import (
    Move,
    blockers,
    by_node,
    elsewhere,
    find,
    plan_drain,
    plan_rebalance,
)
from beanpole.core.placement import Node
from beanpole.core.runtime import InstanceObservation


def instance(
    iid: str,
    env: str = "shop",
    state: InstanceState = InstanceState.IN_SERVICE,
    created_at: float = 0.0,
) -> Instance:
    return Instance(iid, env, "v1", "k1", 1, 8000, state, created_at, host="10.0.0.2")


def placed(nodes: dict[str, str]) -> dict[str, InstanceObservation]:
    """Instance id -> the node the runtime says it runs on."""
    return {iid: InstanceObservation(iid, node=node) for iid, node in nodes.items()}


def test_instances_are_grouped_by_the_node_the_runtime_runs_them_on_oldest_first():
    records = [
        instance("i-3", created_at=3),
        instance("i-1", created_at=1),
        instance("i-2", "blog", created_at=2),
        instance("i-4", created_at=4),
    ]
    held = by_node(records, placed({"i-1": "n1", "i-2": "n2", "i-3": "n1", "i-4": "n3"}))
    assert {node: [i.id for i in held[node]] for node in held} == {
        "n1": ["i-1", "i-3"],
        "n2": ["i-2"],
        "n3": ["i-4"],
    }


def test_stopped_unobserved_and_unplaced_instances_are_on_no_node():
    records = [
        instance("i-stopped", state=InstanceState.STOPPED),
        instance("i-unseen"),
        instance("i-local"),  # supervisord's, beside the swarm: no node
        instance("i-here"),
    ]
    observed = placed({"i-stopped": "n1", "i-here": "n1"})
    observed["i-local"] = InstanceObservation("i-local")
    assert {n: [i.id for i in held] for n, held in by_node(records, observed).items()} == {
        "n1": ["i-here"]
    }


def test_a_drain_moves_each_environment_once_with_a_successor_per_instance_in_service():
    on_node = [
        instance("i-b1", "blog", created_at=5),
        instance("i-s2", "shop", created_at=2),
        instance("i-s1", "shop", created_at=1),
        instance("i-s3", "shop", InstanceState.PENDING, created_at=3),  # a crash's leftover
        instance("i-gone", "shop", InstanceState.STOPPED),
    ]
    moves = plan_drain(on_node)
    assert [(m.environment, [i.id for i in m.leaving], m.successors) for m in moves] == [
        ("blog", ["i-b1"], 1),
        ("shop", ["i-s1", "i-s2", "i-s3"], 2),
    ]


def test_an_empty_node_needs_no_move():
    assert plan_drain([]) == ()


def test_an_environment_an_operation_holds_or_that_is_not_ready_blocks_the_drain_naming_why():
    moves = [
        Move("shop", (instance("i-1"), instance("i-2"))),
        Move("blog", (instance("i-3", "blog"),)),
        Move("docs", (instance("i-4", "docs"),)),
    ]
    statuses = {"shop": EnvStatus.READY, "blog": EnvStatus.UPDATING, "docs": EnvStatus.READY}
    reasons = blockers(moves, "n2", statuses, busy=["shop"])
    assert reasons == [
        "shop (2 instances on n2) has an operation in progress (a deployment, configuration "
        "change, repair or scaling activity): wait for it (beanpole events shop -f)",
        "blog (1 instance on n2) is Updating, not Ready: wait until it is Ready",
    ]
    assert blockers(moves, "n2", dict.fromkeys(statuses, EnvStatus.READY), busy=[]) == []


def test_instances_can_go_only_to_other_nodes_that_are_up_and_active():
    nodes = [
        Node("a", "n1"),
        Node("b", "n2"),
        Node("c", "n3", ready=False),
        Node("d", "n4", active=False),
    ]
    assert [n.hostname for n in elsewhere(nodes, "n2")] == ["n1"]
    assert elsewhere([Node("b", "n2"), Node("c", "n3", ready=False)], "n2") == []


def test_a_node_is_named_by_hostname_or_by_a_unique_prefix_of_its_id():
    nodes = [Node("abc123", "n1"), Node("abd456", "n2"), Node("xyz789", "abc")]
    assert find(nodes, "n2") == nodes[1]
    assert find(nodes, "abc") == nodes[2]  # a hostname wins over an id prefix
    assert find(nodes, "abd") == nodes[1]
    assert find(nodes, "ab") is None  # two ids start so
    assert find(nodes, "n9") is None
    assert find(nodes, "") is None


N1, N2, N3 = Node("a", "n1"), Node("b", "n2"), Node("c", "n3")


def test_a_node_that_came_back_gets_an_instance_from_the_fullest_node():
    held = {
        "n1": [instance("i-1", created_at=1), instance("i-2", created_at=2), instance("i-3")],
        "n2": [instance("i-4"), instance("i-5"), instance("i-6")],
    }
    plan = plan_rebalance([N1, N2, N3], held, "shop", {})
    assert plan is not None
    hostname, leaving = plan
    assert hostname == "n2" and leaving.id == "i-4"  # the fullest (last by name), oldest


def test_an_even_or_nearly_even_spread_moves_nothing():
    held = {"n1": [instance("i-1"), instance("i-2")], "n2": [instance("i-3")], "n3": []}
    held["n3"] = [instance("i-4")]
    assert plan_rebalance([N1, N2, N3], held, "shop", {}) is None  # 2/1/1: within one
    held["n3"] = []
    assert plan_rebalance([N1, N2, N3], held, "shop", {}) == ("n1", held["n1"][0])  # 2/1/0
    two_two = {"n1": [instance("i-1"), instance("i-2")], "n2": [instance("i-3"), instance("i-4")]}
    assert plan_rebalance([N1, N2], two_two, "shop", {}) is None


def test_closed_nodes_other_environments_and_constraints_are_respected():
    full = {"n1": [instance("i-1"), instance("i-2"), instance("i-3")]}
    paused = Node("b", "n2", active=False)
    down = Node("c", "n3", ready=False)
    assert plan_rebalance([N1, paused, down], full, "shop", {}) is None  # nowhere to go
    others = {"n1": [instance(f"i-{n}", "blog") for n in range(3)]}
    assert plan_rebalance([N1, N2], others, "shop", {}) is None
    web = Node("b", "n2", labels={"tier": "web"})
    assert plan_rebalance([N1, web], full, "shop", {"tier": "web"}) is None  # n1 is not web
    starting = {"n1": [instance(f"i-{n}", state=InstanceState.PENDING) for n in range(3)]}
    assert plan_rebalance([N1, N2], starting, "shop", {}) is None  # an operation's
