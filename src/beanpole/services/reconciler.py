"""The reconcile loop: observe supervisord and HAProxy, compare with the store, converge.

On start it adopts what already runs (the data plane outlives the control plane): every
process group in supervisord that the store knows stays as it is (same pids), any group
the store does not know is stopped, and an operation a crash interrupted is closed and
its environment converged back onto its recorded release.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from beanpole.adapters.lb.haproxy import ServerState
from beanpole.adapters.runtime.supervisord import ProcessState
from beanpole.adapters.store.db import Store
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
from beanpole.core.settings import resolve
from beanpole.services.operations import Operations, Repairs

log = logging.getLogger(__name__)

TICK_S = 1.0
LOG_RETENTION_EVERY_S = 60.0
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass
class _Backoff:
    failures: int = 0
    next_try: float = 0.0


@dataclass
class Reconciler:
    ops: Operations
    tick_s: float = TICK_S
    _backoff: dict[str, _Backoff] = field(default_factory=dict)
    _failing_since: dict[str, float] = field(default_factory=dict)
    _next_log_retention: float = 0.0

    @property
    def store(self) -> Store:
        return self.ops.store

    async def adopt(self) -> None:
        """First pass after a (re)start: close interrupted operations, drop orphans."""
        store, fleet = self.ops.store, self.ops.fleet
        await asyncio.to_thread(fleet.reclaim_ports)
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
        running = await asyncio.to_thread(fleet.supervisor.instances)
        known = {i.id: i for i in store.instances()}
        for group in running:
            if group not in known:
                log.warning("stopping orphan instance %s", group)
                await asyncio.to_thread(fleet.supervisor.stop_instance, group)
        for instance in known.values():
            if instance.state in (InstanceState.DRAINING, InstanceState.STOPPING):
                await fleet.stop([instance])
        await fleet.sync_lb()

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
                await self.log_retention()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not stop the loop; it is logged
                log.exception("reconcile tick failed")
            await asyncio.sleep(self.tick_s)

    async def log_retention(self) -> None:
        """Once a minute: remove the stopped instances' and operations' logs retention drops."""
        now = time.monotonic()
        if now < self._next_log_retention:
            return
        self._next_log_retention = now + LOG_RETENTION_EVERY_S
        removed = await asyncio.to_thread(self.ops.apply_log_retention)
        if removed:
            log.info("log retention removed %s", ", ".join(str(p) for p in removed))

    async def tick(self) -> None:
        fleet = self.ops.fleet
        if not await asyncio.to_thread(fleet.supervisor.is_running):
            log.warning("supervisord is not running; starting it")
            await asyncio.to_thread(fleet.supervisor.ensure_running)
        if not await asyncio.to_thread(fleet.haproxy.is_running):
            log.warning("HAProxy is not running; starting it")
            await asyncio.to_thread(fleet.haproxy.start, fleet.lb_spec())
        processes = await asyncio.to_thread(fleet.supervisor.instances)
        servers = await asyncio.to_thread(fleet.haproxy.server_states)
        for env in self.store.environments():
            instances = self.store.instances(env.name)
            for instance in instances:
                await self._observe(instance, processes.get(instance.id), servers)
            await self._converge(env, self.store.instances(env.name))

    async def _converge(self, env: Environment, instances: list[Instance]) -> None:
        """Start a repair when the instances differ from the recorded release.

        An environment left Updating with no operation running (a restart interrupted one,
        or a repair must replace instances of another release) stays Updating until the
        repair has converged: Ready means one version, every instance in service.
        """
        if self.ops.busy(env.name) or env.version_label is None:
            return
        if env.status not in (EnvStatus.READY, EnvStatus.UPDATING):
            return
        version = self.store.version(env.application, env.version_label)
        key = resolve(*env.layers()).release_key(version.digest)
        repairs = Repairs(self.ops)
        if repairs.needed(env, key, instances):
            other = [i for i in instances if i.release_key != key]  # (live ones only)
            if other and env.status is EnvStatus.READY:
                self.store.update_environment(env.name, status=EnvStatus.UPDATING)
            repairs.start(env)
        elif env.status is EnvStatus.UPDATING:
            self.store.update_environment(env.name, status=EnvStatus.READY)
            self.store.add_event(
                f"Recovery completed: {len(instances)} instance(s) of version "
                f"{env.version_label} in service.",
                environment=env.name,
                application=env.application,
                version_label=env.version_label,
            )

    async def _observe(
        self,
        instance: Instance,
        states: list[ProcessState] | None,
        servers: dict[tuple[str, str], ServerState],
    ) -> None:
        """Keep pid, check state and causes current; restart processes supervisord gave up on.

        The environment's health (colour, status, causes) is the monitor's; this keeps each
        instance's own facts, which it reads.
        """
        fleet = self.ops.fleet
        if instance.state is InstanceState.STOPPED:
            return
        if states is None:
            if instance.state is InstanceState.IN_SERVICE:
                # Its process group vanished (supervisord restarted without it): a repair
                # replaces it, in service before this one leaves.
                await fleet.stop([instance])
                self.store.add_event(
                    f"Instance {instance.id}'s processes are gone; replacing it.",
                    severity=Severity.WARN,
                    environment_id=instance.environment_id,
                )
            return
        web = next((s for s in states if s.name == "web"), None)
        pid = web.pid if web is not None else 0
        server = servers.get((instance.environment, instance.id))
        healthy = server is not None and _healthy(server)
        causes: list[str] = []
        crashed = fleet.process_failure(instance.id, states)
        if crashed is not None:
            causes.append(crashed)
            # Not one that is leaving: a restart would race its stop and outlive it.
            if instance.state in (InstanceState.PENDING, InstanceState.IN_SERVICE):
                await self._restart_with_backoff(instance, states)
        elif (
            server is not None
            and not _healthy(server)
            and instance.state is InstanceState.IN_SERVICE
        ):
            causes.append(
                f"Load balancer health check: {server.status}, last check {server.check_status}."
            )
        else:
            self._backoff.pop(instance.id, None)
        if pid != instance.pid or healthy != instance.healthy or tuple(causes) != instance.causes:
            self.store.update_instance(instance.id, pid=pid, healthy=healthy, causes=causes)
        down = server is not None and server.status.startswith(("DOWN", "MAINT"))
        failing = instance.state is InstanceState.IN_SERVICE and (down or crashed is not None)
        if not failing:
            self._failing_since.pop(instance.id, None)
        else:
            since = self._failing_since.setdefault(instance.id, time.monotonic())
            await self._maybe_replace(instance, time.monotonic() - since, causes)

    async def _maybe_replace(self, instance: Instance, failing_s: float, causes: list[str]) -> None:
        """Replace an instance that keeps failing (a setting turns this off).

        It takes no traffic while its check fails, so stopping it first drops nothing; the
        next tick's repair starts its replacement.
        """
        env = self.store.environment(instance.environment)
        settings = resolve(*env.layers())
        if settings.get("beanpole:health", "ReplaceUnhealthy") != "true":
            return
        if failing_s < settings.int("beanpole:health", "ReplaceAfter"):
            return
        if env.status is not EnvStatus.READY or self.ops.busy(env.name):
            return
        self._failing_since.pop(instance.id, None)
        reason = "; ".join(causes) or "failing health checks"
        self.store.add_event(
            f"Replacing instance {instance.id}: {reason} for {failing_s:.0f} seconds.",
            severity=Severity.WARN,
            environment_id=env.id,
            application=env.application,
        )
        await self.ops.fleet.stop([instance])

    async def _restart_with_backoff(self, instance: Instance, states: list[ProcessState]) -> None:
        backoff = self._backoff.setdefault(instance.id, _Backoff())
        now = time.monotonic()
        if now < backoff.next_try:
            return
        delay = RESTART_BACKOFF_S[min(backoff.failures, len(RESTART_BACKOFF_S) - 1)]
        backoff.failures += 1
        backoff.next_try = now + delay
        for state in states:
            if state.state in ("FATAL", "EXITED"):
                try:
                    await asyncio.to_thread(
                        self.ops.fleet.supervisor.start_process, instance.id, state.name
                    )
                except BeanpoleError as exc:
                    log.info("restart of %s/%s failed: %s", instance.id, state.name, exc)


def _healthy(server: ServerState) -> bool:
    """HAProxy's view, except that a server whose first check has not run yet ("INI") counts
    as healthy: Beanpole's own probe passed HealthyThresholdCount times before it got
    traffic, and HAProxy's first check may be up to HealthCheckInterval away."""
    return server.healthy or (server.status.startswith("UP") and server.check_status == "INI")
