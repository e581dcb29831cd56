"""Instances on this host: launch, probe, put in service, drain and stop.

The fleet is the only place that touches supervisord and HAProxy on behalf of an
environment; operations and the reconciler decide *what* to do, the fleet does it and
records every change in the store first, so a crash leaves a record to resume from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

from beanpole.adapters.build import Artifact
from beanpole.adapters.lb.haproxy import HAProxy
from beanpole.adapters.runtime.ports import PortLeases
from beanpole.adapters.runtime.supervisord import InstanceSpec, ProcessState, Supervisor
from beanpole.adapters.store.db import Store
from beanpole.core.errors import ComponentError
from beanpole.core.lb.config import LoadBalancerSpec
from beanpole.core.lb.desired import IN_SERVICE_WEIGHT, desired_spec, health_check
from beanpole.core.model import Environment, Instance, InstanceState, new_instance_id
from beanpole.core.settings import ResolvedSettings
from beanpole.home import Home, ServerConfig

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.25  # HealthyThresholdCount 3 passes take 0.5 s after the first
LOG_TAIL_LINES = 10
_FAILED_STATES = frozenset({"FATAL", "EXITED", "BACKOFF"})


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str  # why it failed, in words a user can act on


class Fleet:
    def __init__(
        self,
        home: Home,
        config: ServerConfig,
        store: Store,
        supervisor: Supervisor,
        haproxy: HAProxy,
        ports: PortLeases | None = None,
    ) -> None:
        self.home = home
        self.config = config
        self.store = store
        self.supervisor = supervisor
        self.haproxy = haproxy
        # host-wide, shared with every other Beanpole home of this user (docs/decisions.md)
        self.ports = ports if ports is not None else PortLeases()
        self._lb_lock = asyncio.Lock()
        # env -> 1:N request-log sampling, the monitor's choice; rendered into the config so a
        # reload keeps it (the monitor also sets it at run time)
        self.sampling: dict[str, int] = {}
        self._http = httpx.AsyncClient(timeout=5.0, trust_env=False)

    async def close(self) -> None:
        await self._http.aclose()

    # load balancer ---------------------------------------------------------------

    def lb_spec(self) -> LoadBalancerSpec:
        return desired_spec(
            bind_host=self.config.lb_host,
            port=self.config.lb_port,
            domain=self.config.domain,
            environments=self.store.environments(),
            instances=self.store.instances(),
            log_port=self.config.log_port,
            sampling=self.sampling,
        )

    async def sync_lb(self) -> None:
        """Make HAProxy match the store (runtime API; a reload only for new backends)."""
        async with self._lb_lock:
            spec = self.lb_spec()
            await asyncio.to_thread(self.haproxy.apply, spec)

    # launching -------------------------------------------------------------------

    @property
    def _owner(self) -> str:
        """This home in the host-wide port registry: its root, which another home cannot share."""
        return str(self.home.root)

    def allocate_port(self, instance_id: str) -> int:
        """A port no other instance of any Beanpole home on this host holds (blocking)."""
        return self.ports.lease(self._owner, instance_id, self.config.port_range)

    def reclaim_ports(self) -> None:
        """At server start: release the leases of instances that are gone, and lease the
        ports of live ones that have none (a home from before the registry, or a crash
        between a launch's lease and its record), so no other home hands those ports out."""
        live = self.store.instances()
        self.ports.reclaim(self._owner, {i.id for i in live})
        for instance in live:
            if not self.ports.adopt(self._owner, instance.id, instance.port):
                log.warning(
                    "instance %s runs on port %d, which another Beanpole instance on this "
                    "host also holds; one of them cannot have bound it",
                    instance.id,
                    instance.port,
                )

    def instance_spec(
        self, instance: Instance, artifact: Artifact, settings: ResolvedSettings
    ) -> InstanceSpec:
        env = artifact.process_env(settings.env)
        env["PORT"] = str(instance.port)
        env["BEANPOLE_INSTANCE_ID"] = instance.id
        return InstanceSpec(
            instance_id=instance.id,
            processes=dict(artifact.plan.processes),
            cwd=artifact.app_dir,
            env=env,
            log_dir=self.home.instance_dir(instance.id) / "logs",
        )

    async def launch(
        self,
        env: Environment,
        artifact: Artifact,
        settings: ResolvedSettings,
        *,
        version_label: str,
        release_key: str,
        deployment_id: int,
    ) -> Instance:
        """Start one instance; it joins the load balancer only once it passes its checks."""
        instance_id = new_instance_id()
        port = await asyncio.to_thread(self.allocate_port, instance_id)
        instance = Instance(
            id=instance_id,
            environment=env.name,
            environment_id=env.id,
            version_label=version_label,
            release_key=release_key,
            deployment_id=deployment_id,
            port=port,
            state=InstanceState.PENDING,
            created_at=time.time(),
        )
        self.store.add_instance(instance)
        spec = self.instance_spec(instance, artifact, settings)
        await asyncio.to_thread(self.supervisor.start_instance, spec)
        await self.sync_lb()
        return instance

    # probing ---------------------------------------------------------------------

    async def probe(
        self, instance: Instance, settings: Mapping[str, str], *, listen_only: bool = False
    ) -> Probe:
        check = health_check(settings)
        url = f"http://127.0.0.1:{instance.port}{check.path}"
        try:
            response = await self._http.get(url, timeout=check.timeout_s)
        except httpx.ConnectError:
            return Probe(False, f"did not listen on PORT {instance.port}")
        except httpx.HTTPError as exc:
            if listen_only:
                return Probe(True, "")
            return _probe_error(check.path, check.timeout_s, exc)
        if listen_only or _matches(check.matcher, response.status_code):
            return Probe(True, "")
        return Probe(
            False,
            f"health check GET {check.path} answered "
            f"{response.status_code}, expected {check.matcher}",
        )

    def process_failure(self, instance_id: str, states: list[ProcessState]) -> str | None:
        """A cause when a process of the instance has died: status and its last lines."""
        for state in states:
            if state.state in _FAILED_STATES:
                lines = self.tail_logs(state)
                detail = f"{state.name} exited with status {state.exit_status}"
                if state.exit_status == 0 and state.spawn_error:
                    # supervisord's words, when it has no exit status (the command was not found…)
                    detail = f"{state.name} could not start: {state.spawn_error}"
                return detail + (": " + " | ".join(lines) if lines else "")
        return None

    def tail_logs(self, state: ProcessState, lines: int = LOG_TAIL_LINES) -> list[str]:
        out: list[str] = []
        for path in (state.stderr_log, state.stdout_log):
            with contextlib.suppress(OSError):
                out.extend(self.supervisor.tail(path, lines))
        return [line for line in out if line.strip()][-lines:]

    async def wait_ready(
        self,
        instances: list[Instance],
        settings: ResolvedSettings,
        *,
        deadline: float,
        start_timeout_s: float,
        listen_only: bool = False,
        abort: asyncio.Event | None = None,
    ) -> dict[str, str]:
        """Probe until each instance passes HealthyThresholdCount checks in a row.

        Returns the failures: instance id → cause. An instance fails at once when a
        process dies for good, or after ``start_timeout_s`` without passing.
        """
        needed = health_check(settings.values).healthy_threshold
        passes = {i.id: 0 for i in instances}
        failures: dict[str, str] = {}
        last_detail: dict[str, str] = {}
        started = time.monotonic()
        while True:
            pending = [i for i in instances if i.id not in failures and passes[i.id] < needed]
            if not pending:
                return failures
            if abort is not None and abort.is_set():
                return {**failures, **{i.id: "the deployment was aborted" for i in pending}}
            processes = await asyncio.to_thread(self.supervisor.instances)
            results = await asyncio.gather(
                *(self.probe(i, settings.values, listen_only=listen_only) for i in pending)
            )
            now = time.monotonic()
            for instance, result in zip(pending, results, strict=True):
                crashed = self.process_failure(instance.id, processes.get(instance.id, []))
                if result.ok:
                    passes[instance.id] += 1
                    continue
                passes[instance.id] = 0
                last_detail[instance.id] = result.detail
                if crashed is not None:
                    failures[instance.id] = crashed
                elif now - started > start_timeout_s or time.time() > deadline:
                    waited = int(now - started)
                    failures[instance.id] = f"{result.detail} within {waited} s"
            await asyncio.sleep(PROBE_INTERVAL_S)

    # traffic ---------------------------------------------------------------------

    async def put_in_service(self, instances: Iterable[Instance]) -> None:
        for instance in instances:
            self.store.update_instance(
                instance.id, state=InstanceState.IN_SERVICE, healthy=True, weight=IN_SERVICE_WEIGHT
            )
        await self.sync_lb()

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        """Per-instance load-balancer weights (traffic splitting), recorded then applied."""
        for instance_id, weight in weights.items():
            self.store.update_instance(instance_id, weight=weight)
        await self.sync_lb()

    async def retire(self, instances: list[Instance], drain_s: float) -> None:
        """Drain, let in-flight requests finish (at most ``drain_s``), then stop."""
        if not instances:
            return
        await self._drain(instances, drain_s)
        await self.stop(instances)

    async def standby(self, instances: list[Instance], drain_s: float) -> None:
        """Drain like `retire`, then keep them running at weight 0 (HAProxy still checks
        them): a deployment's rollback can put them back in service without a start."""
        if not instances:
            return
        await self._drain(instances, drain_s)
        for instance in instances:
            self.store.update_instance(instance.id, state=InstanceState.STANDBY)
        await self.sync_lb()

    async def _drain(self, instances: list[Instance], drain_s: float) -> None:
        """Weight 0, then wait until HAProxy has no session on them or ``drain_s`` passed."""
        for instance in instances:
            self.store.update_instance(instance.id, state=InstanceState.DRAINING)
        await self.sync_lb()
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            states = await asyncio.to_thread(self.haproxy.server_states)
            busy = [
                i
                for i in instances
                if (s := states.get((i.environment, i.id))) is not None and s.sessions > 0
            ]
            if not busy:
                break
            await asyncio.sleep(0.1)

    async def checked_healthy(self, instances: list[Instance]) -> list[Instance]:
        """Those whose HAProxy check passes now (standby ones are checked at weight 0)."""
        if not instances:
            return []
        try:
            states = await asyncio.to_thread(self.haproxy.server_states)
        except ComponentError:
            return []
        return [
            i
            for i in instances
            if (s := states.get((i.environment, i.id))) is not None
            and (s.healthy or (s.status.startswith("UP") and s.check_status == "INI"))
        ]

    async def stop(self, instances: list[Instance]) -> None:
        """Stop at once (for instances that never took traffic, or after draining).

        An instance with no request in flight leaves HAProxy first, which closes HAProxy's
        idle connections to it: a server that waits for its kept-alive connections before
        exiting (gunicorn waits out its keep-alive, 2 s) then stops at once. One still
        answering stays in HAProxy at weight 0 while its processes stop, so the app's own
        graceful shutdown (TERM, then supervisord's wait) lets those requests finish rather
        than HAProxy cutting them.
        """
        if not instances:
            return
        try:
            states = await asyncio.to_thread(self.haproxy.server_states)
        except ComponentError:
            states = {}  # HAProxy down: nothing is in flight through it
        for instance in instances:
            state = states.get((instance.environment, instance.id))
            busy = state is not None and state.sessions > 0
            self.store.update_instance(
                instance.id, state=InstanceState.DRAINING if busy else InstanceState.STOPPING
            )
        await self.sync_lb()
        await asyncio.gather(
            *(asyncio.to_thread(self.supervisor.stop_instance, i.id) for i in instances)
        )
        for instance in instances:
            self.store.update_instance(
                instance.id, state=InstanceState.STOPPED, pid=0, healthy=False
            )
        await self.sync_lb()
        await asyncio.to_thread(self._release_ports, [i.id for i in instances])

    def _release_ports(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            self.ports.release(self._owner, instance_id)


def _probe_error(path: str, timeout_s: int, exc: httpx.HTTPError) -> Probe:
    if isinstance(exc, httpx.TimeoutException):
        return Probe(False, f"health check GET {path} timed out after {timeout_s} s")
    return Probe(False, f"health check GET {path} failed: {exc}")


def _matches(matcher: str, status: int) -> bool:
    for part in matcher.split(","):
        low, _, high = part.strip().partition("-")
        if int(low) <= status <= int(high or low):
            return True
    return False
