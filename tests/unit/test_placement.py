"""Placement on a cluster's nodes (`core.placement`): spread like an auto scaling group."""

from __future__ import annotations

import pytest

from beanpole.core.placement import (
    Node,
    choose,
    node_changes,
    parse_constraints,
    spread_is_broken,
)

N1, N2, N3 = Node("a", "n1"), Node("b", "n2"), Node("c", "n3")


def place(nodes: list[Node], count: int, constraints: dict[str, str] | None = None) -> list[str]:
    """Place ``count`` instances of one environment one after the other."""
    env: dict[str, int] = {}
    out = []
    for _ in range(count):
        chosen = choose(nodes, env, env, constraints)
        assert chosen is not None
        env[chosen.id] = env.get(chosen.id, 0) + 1
        out.append(chosen.hostname)
    return out


def test_six_instances_spread_two_per_node():
    placed = place([N1, N2, N3], 6)
    assert sorted(placed) == ["n1", "n1", "n2", "n2", "n3", "n3"]


def test_a_node_that_is_down_drained_or_paused_gets_nothing():
    down = Node("b", "n2", ready=False)
    paused = Node("c", "n3", active=False)
    assert set(place([N1, down, paused], 3)) == {"n1"}
    assert choose([down, paused], {}, {}) is None


def test_zones_are_balanced_before_nodes():
    a1 = Node("a", "n1", labels={"beanpole.az": "a"})
    a2 = Node("b", "n2", labels={"beanpole.az": "a"})
    b1 = Node("c", "n3", labels={"beanpole.az": "b"})
    placed = place([a1, a2, b1], 4)
    assert placed.count("n3") == 2  # zone b has one node: it takes half
    assert sorted(placed[:2]) == ["n1", "n3"] or sorted(placed[:2]) == ["n2", "n3"]


def test_constraints_keep_instances_on_matching_nodes():
    web = {"tier": "web"}
    nodes = [N1, Node("b", "n2", labels=web), Node("c", "n3", labels=web)]
    assert sorted(place(nodes, 4, web)) == ["n2", "n2", "n3", "n3"]
    assert choose([N1], {}, {}, web) is None


def test_other_environments_break_ties():
    chosen = choose([N1, N2], {}, {"a": 5, "b": 1})
    assert chosen == N2


def test_spread_is_broken_when_one_node_holds_two_more():
    assert spread_is_broken([N1, N2, N3], {"a": 3, "b": 3}, {})
    assert not spread_is_broken([N1, N2, N3], {"a": 2, "b": 2, "c": 1}, {})


def test_constraints_parse_and_refuse_bad_pairs():
    assert parse_constraints("tier=web, beanpole.az=a") == {"tier": "web", "beanpole.az": "a"}
    assert parse_constraints("") == {}
    with pytest.raises(ValueError, match="not key=value"):
        parse_constraints("tier")


def test_node_changes_say_down_and_back():
    assert node_changes({}, {"n1": "ready", "n2": "down"}) == []  # the first look learns
    assert node_changes({"n1": "ready"}, {"n1": "down"}) == [("n1", "ready", "down")]
    assert node_changes({"n1": "down"}, {"n1": "ready"}) == [("n1", "down", "ready")]
    assert node_changes({"n1": "ready"}, {"n1": "ready", "n4": "down"}) == [("n4", "", "down")]
