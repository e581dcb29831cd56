"""`beanpole nodes` and `nodes drain` as the service carries them out (issue 13 part 4): a
real store, fleet, operations and (in-memory) load balancer; the swarm is a stand-in at
its boundary (`Cluster`), and starting instances (`Operations.bring_up`, which builds and
health-checks real processes: tests/e2e/test_swarm_nodes.py runs it) is recorded instead.
What this pins: nodes exist only under the swarm, refusals change nothing, and a drain
pauses the node, brings successors up before any instance leaves, holds the environment
meanwhile, drains each leaving one in the load balancer before it stops, then drains the
node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from beanpole.adapters.store.db import Store
from beanpole.core.errors import Conflict, InvalidInput, NotFound
from beanpole.core.model import EnvStatus, Instance, InstanceState
from beanpole.core.placement import Node
from beanpole.core.runtime import InstanceObservation
from beanpole.home import Home, ServerConfig
from beanpole.services.fleet import Fleet
from beanpole.services.nodes import Nodes
from beanpole.services.operations import Operations
from beanpole.testing import FakeRuntime
from beanpole.testing.load_balancer import FakeLoadBalancer


@dataclass(frozen=True)
class FakeNode:
    id: str
    hostname: str
    state: str = "ready"
    availability: str = "active"
    role: str = "worker"
    address: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def placement(self) -> Node:
        return Node(
            self.id,
            self.hostname,
            ready=self.state == "ready",
            active=self.availability == "active",
            labels=self.labels,
        )


class FakeCluster:
    """Three nodes; every availability change is logged (``log``, shared with the runtime)."""

    def __init__(self, log: list[tuple[str, ...]]) -> None:
        self.log = log
        self.by_id = {
            f"id{k}": FakeNode(f"id{k}", f"n{k}", address=f"10.0.0.1{k}") for k in (1, 2, 3)
        }
        self.by_id["id1"] = replace(self.by_id["id1"], role="manager", labels={"beanpole.az": "a"})
        self.on_pause: Any = None  # called when a node is paused (a test's interleaving)

    def nodes(self) -> list[FakeNode]:
        return sorted(self.by_id.values(), key=lambda n: n.hostname)

    def set_availability(self, node: str, availability: str) -> FakeNode:
        found = next(n for n in self.by_id.values() if node in (n.id, n.hostname))
        self.by_id[found.id] = replace(found, availability=availability)
        self.log.append(("availability", found.hostname, availability))
        if availability == "pause" and self.on_pause is not None:
            self.on_pause()
        return self.by_id[found.id]


class PlacedRuntime(FakeRuntime):
    """Instances by the node they run on; a stop is logged with the instance's state in the
    store at that moment (it must have left the load balancer's rotation by then)."""

    def __init__(self, log: list[tuple[str, ...]]) -> None:
        super().__init__()
        self.log = log
        self.where: dict[str, str] = {}
        self.store: Store | None = None

    def observe(self) -> dict[str, InstanceObservation]:
        return {i: InstanceObservation(i, node=n) for i, n in self.where.items()}

    def stop(self, instance_id: str) -> None:
        assert self.store is not None
        state = next(i.state for i in self.store.instances() if i.id == instance_id)
        self.log.append(("stop", instance_id, str(state)))
        self.where.pop(instance_id, None)


@pytest.fixture
def world(tmp_path: Path):
    home = Home(tmp_path / "home")
    home.prepare()
    store = Store(home.db)
    log: list[tuple[str, ...]] = []
    runtime = PlacedRuntime(log)
    runtime.store = store
    lb = FakeLoadBalancer()
    fleet = Fleet(home, ServerConfig(), store, runtime, lb)
    ops = Operations(store, fleet, builder=None, bundles=None)  # type: ignore[arg-type]
    cluster = FakeCluster(log)
    store.ensure_application("app")
    store.add_version("app", "v1", "d" * 64)
    for env in ("shop", "blog"):
        store.create_environment(env, "app", env, {})
        store.update_environment(env, status=EnvStatus.READY, version_label="v1")
    world = SimpleNamespace(
        store=store,
        runtime=runtime,
        lb=lb,
        ops=ops,
        cluster=cluster,
        log=log,
        nodes=Nodes(ops, cluster, "swarm"),
    )
    lb.start(fleet.lb_spec())
    yield world
    store.close()


def place(world: SimpleNamespace, iid: str, env: str, node: str, created_at: float = 0) -> None:
    instance = Instance(
        iid, env, "v1", "k", 0, 8000, InstanceState.IN_SERVICE, created_at, host="10.0.1.2"
    )
    world.store.add_instance(instance)
    world.runtime.where[iid] = node


def record_bring_up(world: SimpleNamespace, nodes: list[str]) -> None:
    """`bring_up` as the swarm would: each successor on the next of ``nodes``, in service."""
    landing = iter(nodes)

    async def bring_up(env, release, count, *, deployment_id, abort=None):
        world.log.append(("bring_up", env.name, str(count), f"busy={world.ops.busy(env.name)}"))
        new = []
        for k in range(count):
            iid = f"i-{env.name}-new{k}"
            place(world, iid, env.name, next(landing), created_at=time.time())
            new.append(next(i for i in world.store.instances() if i.id == iid))
        await world.ops.fleet.sync_lb()
        return new

    world.ops.bring_up = bring_up


def messages(world: SimpleNamespace, env: str) -> list[str]:
    return [e.message for e in world.store.events(env)]


def test_nodes_exist_only_under_the_swarm_runtime(world):
    nodes = Nodes(world.ops, None, "supervisord")
    for call in (nodes.list_all(), nodes.drain("n2"), nodes.activate("n2")):
        with pytest.raises(InvalidInput, match=r"only under --runtime swarm.*runs its instances"):
            asyncio.run(call)


def test_each_node_is_listed_with_its_zone_labels_and_the_instances_it_holds(world):
    place(world, "i-1", "shop", "n1")
    place(world, "i-2", "shop", "n2")
    place(world, "i-3", "blog", "n2")
    view = asyncio.run(world.nodes.list_all())
    assert [(n.hostname, n.role, n.zone, n.labels) for n in view.nodes] == [
        ("n1", "manager", "a", {"beanpole.az": "a"}),
        ("n2", "worker", "", {}),
        ("n3", "worker", "", {}),
    ]
    held = {n.hostname: [(i.id, i.environment) for i in n.instances] for n in view.nodes}
    assert held == {"n1": [("i-1", "shop")], "n2": [("i-2", "shop"), ("i-3", "blog")], "n3": []}


def test_an_unknown_node_is_not_found_naming_the_nodes(world):
    with pytest.raises(NotFound, match=r"No node 'n9' in the swarm \(its nodes: n1, n2, n3\)"):
        asyncio.run(world.nodes.drain("n9"))
    assert world.log == []


def test_a_drain_brings_successors_up_first_then_drains_and_stops_the_old_then_the_node(world):
    place(world, "i-s1", "shop", "n1")
    place(world, "i-s2", "shop", "n2", created_at=1)
    place(world, "i-s3", "shop", "n2", created_at=2)
    place(world, "i-b1", "blog", "n2")
    record_bring_up(world, ["n1", "n3", "n3"])

    drained = asyncio.run(world.nodes.drain("n2"))

    assert drained.node.availability == "drain"
    moved = sorted((m.environment, m.instance, m.node) for m in drained.moved)
    assert [(env, old) for env, old, _ in moved] == [
        ("blog", "i-b1"),
        ("shop", "i-s2"),
        ("shop", "i-s3"),
    ]
    assert world.log[0] == ("availability", "n2", "pause")
    assert world.log[-1] == ("availability", "n2", "drain")
    for env, olds in (("shop", ["i-s2", "i-s3"]), ("blog", ["i-b1"])):
        steps = [
            e
            for e in world.log
            if (e[0] == "bring_up" and e[1] == env) or (e[0] == "stop" and e[1] in olds)
        ]
        # the environment's successors are up (it held meanwhile) before any of it stops
        assert steps[0] == ("bring_up", env, str(len(olds)), "busy=True")
        # each left the load balancer's rotation (draining or stopping) before it stopped
        assert sorted(steps[1:]) == sorted(("stop", old, "stopping") for old in olds)
    assert "i-s1" in world.runtime.where  # on another node: untouched
    assert not any(n == "n2" for n in world.runtime.where.values())
    assert not world.ops.busy("shop") and not world.ops.busy("blog")
    shop = messages(world, "shop")
    assert any(m.startswith("Moving 2 instance(s) off node n2 (drain): i-s2, i-s3.") for m in shop)
    assert any(m.startswith("Instance i-s2 moved off node n2 (drain): i-shop-new") for m in shop)
    assert any(
        m.startswith("Instance i-b1 moved off node n2 (drain)") for m in messages(world, "blog")
    )


def test_a_node_with_an_environment_under_an_operation_is_refused_and_left_as_it_was(world):
    place(world, "i-1", "shop", "n2")

    async def scenario() -> None:
        deploying = asyncio.get_running_loop().create_future()
        world.ops.activities["shop"] = deploying  # a scaling activity holds shop
        try:
            await world.nodes.drain("n2")
        finally:
            deploying.cancel()

    with pytest.raises(Conflict, match=r"shop \(1 instance on n2\) has an operation in progress"):
        asyncio.run(scenario())
    assert world.log == []  # not even paused
    assert world.runtime.where == {"i-1": "n2"}


def test_an_operation_that_starts_as_the_node_is_paused_puts_it_back_as_it_was(world):
    place(world, "i-1", "shop", "n2")
    world.cluster.set_availability("n2", "pause")  # an operator paused it before
    world.log.clear()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        # a scaling activity starts on shop while the node is being paused
        world.cluster.on_pause = lambda: loop.call_soon_threadsafe(
            world.ops.activities.__setitem__, "shop", loop.create_future()
        )
        await world.nodes.drain("n2")

    with pytest.raises(Conflict, match=r"Node n2 cannot be drained now: shop"):
        asyncio.run(scenario())
    assert world.log == [("availability", "n2", "pause"), ("availability", "n2", "pause")]
    assert world.runtime.where == {"i-1": "n2"}


def test_a_node_whose_instances_have_nowhere_to_go_is_not_touched(world):
    place(world, "i-1", "shop", "n2")
    world.cluster.by_id["id1"] = replace(world.cluster.by_id["id1"], state="down")
    world.cluster.by_id["id3"] = replace(world.cluster.by_id["id3"], availability="drain")
    with pytest.raises(Conflict, match=r"No node but n2 is ready and active"):
        asyncio.run(world.nodes.drain("n2"))
    assert world.log == []


def test_a_node_without_beanpole_instances_is_paused_then_drained_and_activated_again(world):
    place(world, "i-1", "shop", "n1")
    drained = asyncio.run(world.nodes.drain("n3"))
    assert (drained.node.hostname, drained.node.availability, drained.moved) == ("n3", "drain", [])
    active = asyncio.run(world.nodes.activate("n3"))
    assert active.availability == "active"
    assert world.log == [
        ("availability", "n3", "pause"),
        ("availability", "n3", "drain"),
        ("availability", "n3", "active"),
    ]
