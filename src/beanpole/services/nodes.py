"""The nodes of a Docker Swarm: list them with their instances, drain one, activate it.

Only a server started with ``--runtime swarm`` has nodes. Draining one moves Beanpole's
instances off it without dropping a request (`core.nodes` plans it):

1. the node's availability becomes ``pause``: what runs there keeps running, nothing new
   lands there;
2. for each environment with instances there (concurrently, each as the environment's
   activity, so no repair, auto scaling decision or deployment starts meanwhile: a deployment
   asked for then waits for it, as it waits for a scaling activity), as many successors as it
   has in service there start on other nodes and go in service once they pass their health
   check (`Operations.bring_up`); then the instances on the node are drained in the load
   balancer (weight 0 until no request is in flight, at most DeregistrationDelay) and stopped
   (`Fleet.retire`). An environment that an operation holds, or that is not Ready, is not
   touched: the drain is refused before anything moves, naming it;
3. the availability becomes ``drain``: Docker stops whatever else runs there.

Each move is an event of its environment. A move that fails (no other node can take the
instance, the successor fails its check) stops its successors and leaves the instances where
they were, serving; the node stays paused and the error says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from beanpole.api.nodes import MovedInstance, NodeDrained, NodeInstanceView, NodesView, NodeView
from beanpole.core.errors import (
    BeanpoleError,
    ComponentError,
    Conflict,
    InvalidInput,
    NotFound,
    unexpected,
)
from beanpole.core.model import EnvStatus, Instance, InstanceState, Severity
from beanpole.core.nodes import (
    Move,
    blockers,
    by_node,
    elsewhere,
    find,
    plan_drain,
    plan_rebalance,
)
from beanpole.core.placement import ZONE_LABEL, Node, parse_constraints
from beanpole.core.settings import resolve
from beanpole.services.observer import Snapshot
from beanpole.services.operations import Operations

log = logging.getLogger(__name__)

T = TypeVar("T")

_PROC = "aws:elasticbeanstalk:environment:process:default"
#: How often environments are checked for an uneven spread over the nodes.
REBALANCE_S = 10.0


class ClusterNode(Protocol):
    """A node as the cluster reports it (`adapters.runtime.swarm.SwarmNode`)."""

    @property
    def id(self) -> str: ...
    @property
    def hostname(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def availability(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def placement(self) -> Node: ...


class Cluster(Protocol):
    """The runtime's nodes (`adapters.runtime.swarm.Swarm`); both calls block."""

    def nodes(self) -> Sequence[ClusterNode]: ...

    def set_availability(self, node: str, availability: str) -> ClusterNode: ...


class Nodes:
    """``cluster``: the swarm runtime, None when the server runs another (``runtime``)."""

    def __init__(self, ops: Operations, cluster: Cluster | None, runtime: str) -> None:
        self.ops = ops
        self.store = ops.store
        self.cluster = cluster
        self.runtime = runtime
        self._drain_task: asyncio.Task[NodeDrained] | None = None
        self._draining = ""

    def _swarm(self) -> Cluster:
        if self.cluster is None:
            raise InvalidInput(
                "Nodes exist only under --runtime swarm: this server runs its instances under "
                f"{self.runtime}. Start it with beanpole server start --runtime swarm "
                "--docker-host URL (the swarm manager's API; docs/swarm.md) to see and drain "
                "nodes."
            )
        return self.cluster

    # -- reading ---------------------------------------------------------------------------

    async def list_all(self) -> NodesView:
        """Every node of the swarm, with Beanpole's instances on each."""
        nodes = await _ask(self._swarm().nodes)
        held = by_node(self.store.instances(), (await self._snapshot(fresh=False)).instances)
        return NodesView(nodes=[self._view(n, held.get(n.hostname, [])) for n in nodes])

    async def _snapshot(self, *, fresh: bool) -> Snapshot:
        observer = self.ops.fleet.observer
        snapshot = await (observer.refresh() if fresh else observer.fresh(1.0))
        if not snapshot.runtime_ok:
            raise ComponentError(
                f"The swarm did not say where the instances run: {snapshot.runtime_error}"
            )
        return snapshot

    def _view(self, node: ClusterNode, instances: Iterable[Instance]) -> NodeView:
        return NodeView(
            id=node.id,
            hostname=node.hostname,
            state=node.state,
            availability=node.availability,
            role=node.role,
            address=node.address,
            zone=node.labels.get(ZONE_LABEL, ""),
            labels=dict(node.labels),
            instances=[
                NodeInstanceView(id=i.id, environment=i.environment, state=i.state)
                for i in instances
            ],
        )

    async def _find(self, name: str) -> tuple[ClusterNode, Sequence[ClusterNode]]:
        """The node named ``name``, and every node."""
        nodes = await _ask(self._swarm().nodes)
        found = find((n.placement for n in nodes), name)
        if found is None:
            known = ", ".join(n.hostname for n in nodes) or "none"
            raise NotFound(
                f"No node {name!r} in the swarm (its nodes: {known}): see beanpole nodes."
            )
        return next(n for n in nodes if n.id == found.id), nodes

    async def _held(self, hostname: str) -> list[Instance]:
        instances = self.store.instances()
        return by_node(instances, (await self._snapshot(fresh=True)).instances).get(hostname, [])

    # -- changing --------------------------------------------------------------------------

    async def activate(self, name: str) -> NodeView:
        """The node takes new instances again (availability ``active``)."""
        node, _ = await self._find(name)
        after = await _ask(self._swarm().set_availability, node.id, "active")
        log.info("node %s is active", after.hostname)
        return self._view(after, await self._held(after.hostname))

    async def drain(self, name: str) -> NodeDrained:
        """Move Beanpole's instances off the node, then drain it (the module's docstring).

        One drain at a time; it runs on if the client hangs up (its moves would otherwise
        stop half-way), and the answer waits for it."""
        self._swarm()
        running = self._drain_task
        if running is not None and not running.done():
            raise Conflict(
                f"Node {self._draining} is being drained: wait until that drain ends (beanpole "
                "nodes shows where the instances are), then try again."
            )
        self._draining = name
        task = asyncio.create_task(self._drain(name), name=f"drain-node-{name}")
        task.add_done_callback(_retrieve)
        self._drain_task = task
        return await asyncio.shield(task)

    async def _drain(self, name: str) -> NodeDrained:
        started = time.monotonic()
        cluster = self._swarm()
        node, nodes = await self._find(name)
        hostname = node.hostname
        moves = plan_drain(await self._held(hostname))
        self._refuse(moves, hostname)
        if moves and not elsewhere((n.placement for n in nodes), hostname):
            raise Conflict(
                f"No node but {hostname} is ready and active: its instances would have nowhere "
                "to go. Start another node, or activate one (beanpole nodes activate NODE), "
                "then drain it."
            )
        previous = node.availability
        await _ask(cluster.set_availability, node.id, "pause")
        log.info("node %s paused (it was %s): moving its instances", hostname, previous)
        try:
            # again, now that nothing new can land there: an instance placed meanwhile counts
            moves = plan_drain(await self._held(hostname))
            self._refuse(moves, hostname)
        except BeanpoleError:
            await _ask(cluster.set_availability, node.id, previous)
            raise
        # No await between the check above and the claim: nothing else can take them.
        moved: list[MovedInstance] = []
        outcomes = await asyncio.gather(
            *self._claim(moves, hostname, moved), return_exceptions=True
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise self._failure(hostname, failed, moved)
        left = await self._held(hostname)
        if left:  # an operation that started just before the pause placed one there
            raise Conflict(
                f"Node {hostname} stays paused: {len(left)} instance(s) came onto it during the "
                f"drain ({', '.join(f'{i.id} of {i.environment}' for i in left)}). Run beanpole "
                f"nodes drain {hostname} again once their operation has ended."
            )
        after = await _ask(cluster.set_availability, node.id, "drain")
        seconds = time.monotonic() - started
        log.info("node %s drained in %.1f s: %d instance(s) moved", hostname, seconds, len(moved))
        return NodeDrained(node=self._view(after, []), moved=moved, seconds=round(seconds, 1))

    def _refuse(self, moves: Sequence[Move], hostname: str) -> None:
        names = [m.environment for m in moves]
        statuses = {e.name: e.status for e in self.store.environments() if e.name in names}
        reasons = blockers(moves, hostname, statuses, (n for n in names if self.ops.busy(n)))
        if reasons:
            raise Conflict(
                f"Node {hostname} cannot be drained now: {'; '.join(reasons)}. Then run "
                f"beanpole nodes drain {hostname} again."
            )

    def _claim(
        self, moves: Sequence[Move], hostname: str, moved: list[MovedInstance]
    ) -> list[asyncio.Task[None]]:
        """Each move as its environment's activity (`Operations.busy` holds it meanwhile),
        adding what it moved to ``moved``."""

        async def move_one(move: Move) -> None:
            moved.extend(await self._move(move, hostname))

        tasks = []
        for move in moves:
            task = asyncio.create_task(move_one(move), name=f"drain-{hostname}-{move.environment}")
            self.ops.activities[move.environment] = task
            tasks.append(task)
        return tasks

    # -- keeping environments spread ---------------------------------------------------------

    async def rebalance(self) -> bool:
        """Move one instance of one environment whose spread over the open nodes is uneven
        (a node came back, or was activated after a drain), launch-first, as the
        environment's activity; True when one moved. Like an auto scaling group's
        AZRebalance: one at a time, only in a Ready environment nothing else holds."""
        if self.cluster is None or (self._drain_task is not None and not self._drain_task.done()):
            return False
        nodes = [n.placement for n in await _ask(self.cluster.nodes)]
        held = by_node(self.store.instances(), (await self._snapshot(fresh=False)).instances)
        for env in self.store.environments():
            if env.status is not EnvStatus.READY or self.ops.busy(env.name):
                continue
            wanted = resolve(*env.layers()).values.get("beanpole:instance:Constraints", "")
            try:
                constraints = parse_constraints(wanted)
            except ValueError:
                continue
            plan = plan_rebalance(nodes, held, env.name, constraints)
            if plan is None:
                continue
            hostname, instance = plan

            # No await between the busy check above and the claim: nothing else takes it.
            task = asyncio.create_task(
                self._rebalance_move(Move(env.name, (instance,)), hostname),
                name=f"rebalance-{env.name}",
            )
            self.ops.activities[env.name] = task
            try:
                await task
            except Exception as exc:  # the move said why in an event; try again later
                log.warning("rebalancing %s failed: %s", env.name, exc)
                return False
            return True
        return False

    async def _rebalance_move(self, move: Move, hostname: str) -> None:
        await self._move(move, hostname, why="rebalance")

    async def rebalance_loop(self, every_s: float = REBALANCE_S) -> None:
        """`rebalance` now and then, for as long as the server runs."""
        while True:
            await asyncio.sleep(every_s)
            try:
                while await self.rebalance():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rebalance failed")

    async def _move(self, move: Move, hostname: str, why: str = "drain") -> list[MovedInstance]:
        """Successors in service on other nodes first, then drain and stop the leaving ones."""
        ops, fleet = self.ops, self.ops.fleet
        env = self.store.environment(move.environment)
        leaving = list(move.leaving)
        ops._event(
            env,
            f"Moving {len(leaving)} instance(s) off node {hostname} ({why}): "
            f"{', '.join(i.id for i in leaving)}. Their successors start on other nodes first.",
        )
        new: list[Instance] = []
        drain_s = 0
        try:
            if env.version_label is not None:
                release = await ops._release(env, env.version_label, env.settings, build=False)
                drain_s = release.settings.int(_PROC, "DeregistrationDelay")
                if move.successors:
                    new = await ops.bring_up(
                        env, release, move.successors, deployment_id=env.deployment_id
                    )
        except Exception as exc:
            ops._event(
                env,
                f"Could not move its instances off node {hostname}: {_message(exc)} They keep "
                f"serving there; the node stays paused.",
                severity=Severity.WARN,
            )
            raise
        where = (await self.ops.fleet.observer.refresh()).instances
        await fleet.retire(leaving, drain_s)
        successors = iter(new)
        moved = []
        for instance in leaving:
            successor = (
                next(successors, None) if instance.state is InstanceState.IN_SERVICE else None
            )
            if successor is not None:
                seen = where.get(successor.id)
                node = seen.node if seen is not None else ""
                ops._event(
                    env,
                    f"Instance {instance.id} moved off node {hostname} ({why}): {successor.id} "
                    f"serves in its place{f' on node {node}' if node else ''}.",
                )
                moved.append(
                    MovedInstance(
                        instance=instance.id,
                        environment=env.name,
                        replacement=successor.id,
                        node=node,
                    )
                )
            else:
                ops._event(
                    env,
                    f"Instance {instance.id} ({instance.state}, not in service) was stopped on "
                    f"node {hostname} ({why}).",
                )
                moved.append(
                    MovedInstance(instance=instance.id, environment=env.name, replacement="")
                )
        return moved

    def _failure(
        self, hostname: str, failed: list[BaseException], moved: list[MovedInstance]
    ) -> BeanpoleError:
        done = f" ({len(moved)} instance(s) moved before that)" if moved else ""
        causes = "; ".join(_message(exc) for exc in failed)
        return ComponentError(
            f"Node {hostname} stays paused (no new instance lands there), not drained{done}: "
            f"{causes} The instances that could not move keep serving there. Fix the cause and "
            f"run beanpole nodes drain {hostname} again, or beanpole nodes activate {hostname}."
        )


async def _ask(call: Callable[..., T], *args: str) -> T:
    """A call to the swarm manager in a worker thread; its transport errors become ours."""
    try:
        return await asyncio.to_thread(call, *args)
    except OSError as exc:  # the Docker SDK's API and connection errors are OSErrors
        raise ComponentError(
            f"The swarm manager did not answer ({exc}). Check that it runs (beanpole server "
            "status), then try again."
        ) from exc


def _message(exc: BaseException) -> str:
    text = unexpected(exc)
    return text if text.endswith(".") else text + "."


def _retrieve(task: asyncio.Task[NodeDrained]) -> None:
    """A drain whose client hung up: its failure is logged, not lost."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.info("node drain ended: %s", _message(exc))
