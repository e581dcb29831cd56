"""The reconcile loop: read the observer's snapshot, compare with the store, converge.

Each tick gathers the facts (records, the snapshot, settings) and asks the pure
`beanpole.core.reconcile.decide` what to do; this module only carries the actions out.

On start it adopts what already runs (the data plane outlives the control plane): every
process group in supervisord that the store knows stays as it is (same pids), any group
the store does not know is stopped, and an operation a crash interrupted is closed and
its environment converged back onto its recorded release: it is Updating until then (Ready
means one version, every instance in service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from beanpole.adapters.store.db import Store
from beanpole.core import placement
from beanpole.core.capacity import desired_count
from beanpole.core.errors import BeanpoleError
from beanpole.core.model import (
    Environment,
    EnvStatus,
    Instance,
    InstanceState,
    OperationKind,
    OperationStatus,
    Severity,
)
from beanpole.core.reconcile import (
    Action,
    EnvFacts,
    InstanceFacts,
    Lost,
    Memory,
    Moved,
    Record,
    Recovered,
    Repair,
    Replace,
    Restart,
    Restarted,
    Vanished,
    decide,
)
from beanpole.core.runtime import InstanceObservation, ServerState
from beanpole.core.settings import ResolvedSettings
from beanpole.services.observer import Snapshot
from beanpole.services.operations import Operations, Repairs
from beanpole.services.resolved import ResolvedSettingsCache

log = logging.getLogger(__name__)

TICK_S = 1.0
# While no operation runs and no repair is pending, the load balancer's view is read this
# often rather than every tick (its checks change every HealthCheckInterval, 15 s by default).
IDLE_LB_POLL_S = 3.0
LOG_RETENTION_EVERY_S = 60.0
_ASG = "aws:autoscaling:asg"
_HEALTH = "beanpole:health"


@dataclass(frozen=True)
class _Inputs:
    stamp: tuple[int, int]
    instances: dict[str, InstanceObservation]
    servers: dict[tuple[str, str], ServerState]
    busy: tuple[str, ...]


def _same(a: _Inputs, b: _Inputs) -> bool:
    """The runtime's answer by identity (it is reused while nothing changed), the rest by value."""
    return (
        a.instances is b.instances
        and a.stamp == b.stamp
        and a.busy == b.busy
        and a.servers == b.servers
    )


@dataclass
class Reconciler:
    ops: Operations
    tick_s: float = TICK_S
    memory: Memory = field(default_factory=Memory)
    _last_inputs: _Inputs | None = None
    _next_log_retention: float = 0.0
    _settings: ResolvedSettingsCache = field(default_factory=ResolvedSettingsCache)
    # environment -> (version label, the settings object, their release key): versions are
    # immutable, and the cache above hands out the same settings object while unchanged
    _keys: dict[str, tuple[str, ResolvedSettings, str]] = field(default_factory=dict)
    _node_states: dict[str, str] = field(default_factory=dict)  # cluster node -> its state
    _again: bool = False  # the next tick follows at once (instances were just lost)

    @property
    def store(self) -> Store:
        return self.ops.store

    async def adopt(self) -> None:
        """First pass after a (re)start: close interrupted operations, drop orphans."""
        store, fleet = self.ops.store, self.ops.fleet
        for op in store.running_operations():
            store.finish_operation(
                op.id,
                OperationStatus.FAILED,
                "Interrupted: the server stopped during the operation.",
            )
            env_rows = [e for e in store.environments() if e.id == op.environment_id]
            if not env_rows:
                continue
            env = env_rows[0]
            interrupted = store.add_event(
                f"The {op.kind} operation was interrupted by a server restart; restoring the "
                "environment's recorded release.",
                severity=Severity.WARN,
                environment_id=env.id,
                application=env.application,
            )
            with contextlib.suppress(OSError):  # the operation's deploy log ends with it
                self.ops.logs.append_event(env.name, op.id, interrupted)
            if op.kind is OperationKind.CREATE or env.version_label is None:
                await fleet.stop(store.instances(env.name))
                store.update_environment(env.name, status=EnvStatus.TERMINATED)
                store.add_event(
                    "Failed to launch environment.",
                    severity=Severity.ERROR,
                    environment_id=env.id,
                    application=env.application,
                )
            elif op.kind is OperationKind.TERMINATE:
                await fleet.stop(store.instances(env.name))
                store.update_environment(env.name, status=EnvStatus.TERMINATED)
            else:
                previous = op.params.get("previous_settings")
                if isinstance(previous, dict):
                    store.update_environment(env.name, settings=previous)
                desired = op.params.get("previous_desired")
                if isinstance(desired, int):  # a scale or settings change: its count too
                    store.update_environment(env.name, desired_capacity=desired)
                # Updating until the repair has converged (`tick`): instances of two
                # versions may be serving now, and Ready promises one.
                store.update_environment(env.name, status=EnvStatus.UPDATING)
        await self._adopt_instances()
        await fleet.sync_lb()

    async def _adopt_instances(self) -> None:
        """Stop what the store does not know, finish stops a crash interrupted, and record
        the endpoint of an instance started just before a crash."""
        store, fleet = self.ops.store, self.ops.fleet
        running = await asyncio.to_thread(fleet.runtime.observe)
        known = {i.id: i for i in store.instances()}
        for group in running:
            if group not in known:
                log.warning("stopping orphan instance %s", group)
                await asyncio.to_thread(fleet.runtime.stop, group)
        await asyncio.to_thread(fleet.runtime.reclaim, set(running) & set(known))
        for instance in known.values():
            if instance.state in (InstanceState.DRAINING, InstanceState.STOPPING):
                await fleet.stop([instance])
            elif instance.port == 0 and instance.state is not InstanceState.STOPPED:
                # Recorded, then the server died before it stored the runtime's endpoint.
                endpoint = await asyncio.to_thread(fleet.runtime.endpoint, instance.id)
                if endpoint is None:
                    store.update_instance(instance.id, state=InstanceState.STOPPED)
                else:
                    store.update_instance(instance.id, host=endpoint.host, port=endpoint.port)

    async def run(self) -> None:
        """Every tick: one snapshot from the observer, then this loop's decisions on it."""
        observer = self.ops.fleet.observer
        while True:
            try:
                await self.tick(await observer.refresh(lb_max_age_s=self._lb_max_age()))
                await self.log_retention()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not stop the loop; it is logged
                log.exception("reconcile tick failed")
            if self._again:  # instances were lost: their repair starts now, not a tick later
                self._again = False
                continue
            await asyncio.sleep(self.tick_s)

    def _lb_max_age(self) -> float:
        """How old the load balancer's view may be this tick: fresh while anything moves."""
        if self.memory.backoff or self.memory.failing_since:
            return 0.0
        if self.ops.busy_environments():
            return 0.0
        return IDLE_LB_POLL_S

    async def log_retention(self) -> None:
        """Once a minute: remove the stopped instances' and operations' logs retention drops."""
        now = time.monotonic()
        if now < self._next_log_retention:
            return
        self._next_log_retention = now + LOG_RETENTION_EVERY_S
        removed = await asyncio.to_thread(self.ops.apply_log_retention)
        if removed:
            log.info("log retention removed %s", ", ".join(str(p) for p in removed))

    async def tick(self, snapshot: Snapshot) -> None:
        fleet = self.ops.fleet
        if not snapshot.runtime_ok and not await asyncio.to_thread(fleet.runtime.is_running):
            log.warning("the runtime is not running (%s); starting it", snapshot.runtime_error)
            await asyncio.to_thread(fleet.runtime.ensure_running)
            return  # its instances are observed on the next tick
        if not snapshot.lb_ok and not await asyncio.to_thread(fleet.lb.is_running):
            log.warning("the load balancer is not running (%s); starting it", snapshot.lb_error)
            await asyncio.to_thread(fleet.lb.start, fleet.lb_spec())
        if not snapshot.runtime_ok:
            return  # no facts about the instances: decide nothing
        self._tell_nodes()
        inputs = self._inputs(snapshot)
        if (
            inputs == self._last_inputs
            and not self.memory.backoff
            and not self.memory.failing_since
        ):
            return  # same records, same observations, no clock pending: the same (no) actions
        self._last_inputs = inputs
        facts = await self._facts(snapshot)
        decision = decide(facts, self.memory, time.monotonic())
        self.memory = decision.memory
        # a node's loss loses several instances at once: they leave together
        await self._lose([a for a in decision.actions if isinstance(a, Lost)])
        for action in decision.actions:
            if not isinstance(action, Lost):
                await self._carry_out(action)

    def _inputs(self, snapshot: Snapshot) -> _Inputs:
        """Everything `decide` reads but the clock, cheaply: the store's change stamp, the
        runtime's answer (the same object while supervisord's is reused), the load
        balancer's view, and which environments are busy. An idle tick that finds them all
        unchanged ends here; it was most of the idle server's remaining CPU."""
        busy = tuple(self.ops.busy_environments())
        return _Inputs(self.store.change_stamp(), snapshot.instances, snapshot.servers, busy)

    async def _facts(self, snapshot: Snapshot) -> list[EnvFacts]:
        """The records, the snapshot and the settings, per environment (one store read)."""
        by_env: dict[str, list[Instance]] = {}
        for instance in self.store.instances():
            by_env.setdefault(instance.environment, []).append(instance)
        facts = []
        environments = self.store.environments()
        self._settings.retain({e.name for e in environments})
        for env in environments:
            settings, key = self._resolved(env)
            instances = []
            for record in by_env.get(env.name, []):
                observed = snapshot.instances.get(record.id)
                failure = None
                if observed is not None and observed.dead:
                    failure = await asyncio.to_thread(self.ops.fleet.process_failure, observed)
                instances.append(
                    InstanceFacts(
                        record, observed, snapshot.servers.get((env.name, record.id)), failure
                    )
                )
            facts.append(
                EnvFacts(
                    env=env,
                    instances=tuple(instances),
                    busy=self.ops.busy(env.name),
                    release_key=key,
                    desired=desired_count(settings, env.desired_capacity, env.scheduled_bounds),
                    replace_unhealthy=settings.get(_HEALTH, "ReplaceUnhealthy") == "true",
                    replace_after_s=settings.int(_HEALTH, "ReplaceAfter"),
                )
            )
        return facts

    def _resolved(self, env: Environment) -> tuple[ResolvedSettings, str | None]:
        """The environment's settings and release key (None: no version yet)."""
        settings = self._settings.get(env)
        if env.version_label is None:
            return settings, None
        cached = self._keys.get(env.name)
        if cached is not None and cached[0] == env.version_label and cached[1] is settings:
            return settings, cached[2]
        digest = self.store.version(env.application, env.version_label).digest
        key = settings.release_key(digest)
        self._keys[env.name] = (env.version_label, settings, key)
        return settings, key

    async def _restart(self, action: Restart) -> None:
        for process in action.processes:
            try:
                await asyncio.to_thread(self.ops.fleet.runtime.restart, action.instance_id, process)
            except BeanpoleError as exc:
                log.info("restart of %s/%s failed: %s", action.instance_id, process, exc)

    def _tell_restart(self, action: Restarted) -> None:
        env = self.store.environment(action.environment)
        how = f" ({action.how})" if action.how else ""
        self.store.add_event(
            f"Instance {action.instance_id}: {action.process} died{how} and was restarted by "
            f"the runtime ({action.count} time(s) so far).",
            severity=Severity.WARN,
            environment_id=env.id,
            application=env.application,
        )

    def _tell_nodes(self) -> None:
        """An event on every environment when a cluster node goes down or comes back."""
        seen = getattr(self.ops.fleet.runtime, "node_states", None)
        if not callable(seen):
            return
        states = seen()
        changes = placement.node_changes(self._node_states, states)
        self._node_states = states
        for hostname, _, state in changes:
            ready = state == "ready"
            message = f"Node {hostname} is back." if ready else f"Node {hostname} is {state}."
            for env in self.store.environments():
                self.store.add_event(
                    message,
                    severity=Severity.INFO if ready else Severity.WARN,
                    environment_id=env.id,
                    application=env.application,
                )

    async def _lose(self, actions: list[Lost]) -> None:
        """Take lost instances out of the load balancer and stop them, together, saying
        why; the repair then starts their successors elsewhere."""
        known = {i.id: i for i in self.store.instances()}
        lost = [(a, known[a.instance_id]) for a in actions if a.instance_id in known]
        if not lost:
            return
        await self.ops.fleet.stop([instance for _, instance in lost])
        self._again = True
        for action, _ in lost:
            self.ops.fleet.lost.setdefault(action.environment, []).append(
                f"Instance {action.instance_id} lost: {action.reason}"
            )
            env = self.store.environment(action.environment)
            self.store.add_event(
                f"Instance {action.instance_id} lost: {action.reason}; replacing it.",
                severity=Severity.WARN,
                environment_id=env.id,
                application=env.application,
            )

    async def _replace(self, action: Vanished | Replace) -> None:
        """Stop an in-service instance that is gone or failing, saying why; the repair then
        starts its successor."""
        store, fleet = self.store, self.ops.fleet
        instance = next((i for i in store.instances() if i.id == action.instance_id), None)
        if instance is None:
            return
        env = store.environment(action.environment)
        if isinstance(action, Vanished):
            await fleet.stop([instance])
            message = f"Instance {action.instance_id}'s processes are gone; replacing it."
        else:
            # Said before the stop, which may fail (HAProxy busy) and be retried.
            message = (
                f"Replacing instance {action.instance_id}: {action.reason} for "
                f"{action.failing_s:.0f} seconds."
            )
        store.add_event(
            message,
            severity=Severity.WARN,
            environment_id=env.id,
            application=env.application,
        )
        if isinstance(action, Replace):
            await fleet.stop([instance])

    async def _carry_out(self, action: Action) -> None:
        store, fleet = self.store, self.ops.fleet
        if isinstance(action, Record):
            store.update_instance(
                action.instance_id, pid=action.pid, healthy=action.healthy, causes=action.causes
            )
        elif isinstance(action, Restart):
            await self._restart(action)
        elif isinstance(action, Restarted):
            self._tell_restart(action)
        elif isinstance(action, Moved):
            log.info(
                "instance %s now answers at %s:%s", action.instance_id, action.host, action.port
            )
            store.update_instance(action.instance_id, host=action.host, port=action.port)
            await fleet.sync_lb()
        elif isinstance(action, Vanished | Replace):
            await self._replace(action)
        elif isinstance(action, Repair):
            env = store.environment(action.environment)
            if action.updating:
                store.update_environment(env.name, status=EnvStatus.UPDATING)
            Repairs(self.ops).start(env)
        elif isinstance(action, Recovered):
            env = store.update_environment(action.environment, status=EnvStatus.READY)
            store.add_event(
                f"Recovery completed: {action.instances} instance(s) of version "
                f"{action.version} in service.",
                environment_id=env.id,
                application=env.application,
                version_label=action.version,
            )
