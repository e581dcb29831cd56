"""Instances: launch, probe, put in service, drain and stop.

The fleet is the only place that changes the runtime and the load balancer on behalf of an
environment; operations and the reconciler decide *what* to do, the fleet does it and
records every change in the store first, so a crash leaves a record to resume from. It
reads the data plane through the observer's snapshots (`services.observer`), never by
polling it on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import httpx

from beanpole.adapters.build import Artifact
from beanpole.adapters.store.db import Store
from beanpole.core.lb.config import LoadBalancerSpec
from beanpole.core.lb.desired import IN_SERVICE_WEIGHT, desired_spec, health_check
from beanpole.core.model import Environment, Instance, InstanceState, new_instance_id
from beanpole.core.runtime import (
    Endpoint,
    InstanceObservation,
    InstanceSpec,
    RunAs,
    describe_failure,
)
from beanpole.core.settings import ResolvedSettings
from beanpole.home import Home, ServerConfig
from beanpole.ports import LoadBalancer, Runtime
from beanpole.services.observer import Observer

PROBE_INTERVAL_S = 0.25  # HealthyThresholdCount 3 passes take 0.5 s after the first
DRAIN_POLL_S = 0.1
LOG_TAIL_LINES = 10


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
        runtime: Runtime,
        lb: LoadBalancer,
        observer: Observer | None = None,
        *,
        run_as: RunAs | None = None,
    ) -> None:
        self.home = home
        self.run_as = run_as  # the app user instances run as (None: as Beanpole's own)
        self.config = config
        self.store = store
        self.runtime = runtime
        self.lb = lb
        self.observer = observer or Observer(runtime, lb)
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
            await asyncio.to_thread(self.lb.apply, spec)

    # launching -------------------------------------------------------------------

    def instance_spec(
        self, instance: Instance, artifact: Artifact, settings: ResolvedSettings
    ) -> InstanceSpec:
        env = artifact.process_env(settings.env)
        env["BEANPOLE_INSTANCE_ID"] = instance.id  # PORT is the runtime's to set
        return InstanceSpec(
            instance_id=instance.id,
            processes=dict(artifact.plan.processes),
            cwd=artifact.app_dir,
            env=env,
            log_dir=self.home.instance_dir(instance.id) / "logs",
            isolate=settings.get("beanpole:instance", "NetworkIsolation") != "none",
            listen_port=artifact.plan.default_port,
            run_as=self.run_as,
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
        """Start one instance; it joins the load balancer only once it passes its checks.

        Recorded before it starts (a crash in between leaves a record adoption resolves),
        with the endpoint the runtime chose once it has.
        """
        instance = Instance(
            id=new_instance_id(),
            environment=env.name,
            environment_id=env.id,
            version_label=version_label,
            release_key=release_key,
            deployment_id=deployment_id,
            port=0,
            state=InstanceState.PENDING,
            created_at=time.time(),
        )
        self.store.add_instance(instance)
        spec = self.instance_spec(instance, artifact, settings)
        try:
            endpoint = await asyncio.to_thread(self.runtime.start, spec)
        except BaseException:
            self.store.update_instance(instance.id, state=InstanceState.STOPPED)
            raise
        self.store.update_instance(instance.id, host=endpoint.host, port=endpoint.port)
        return replace(instance, host=endpoint.host, port=endpoint.port)

    # probing ---------------------------------------------------------------------

    async def probe(
        self, instance: Instance, settings: Mapping[str, str], *, listen_only: bool = False
    ) -> Probe:
        check = health_check(settings)
        url = Endpoint(instance.host, instance.port).url(check.path)
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

    def process_failure(self, observed: InstanceObservation | None) -> str | None:
        """A cause when a process of the instance has died: how it ended and its last lines."""
        if observed is None or not observed.dead:
            return None
        dead = observed.dead[0]
        return describe_failure(dead, self.tail_logs(observed.instance_id, dead.name))

    def tail_logs(
        self, instance_id: str, process: str | None = None, lines: int = LOG_TAIL_LINES
    ) -> list[str]:
        return self.runtime.log_tail(instance_id, lines, process)

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
            snapshot = await self.observer.fresh(PROBE_INTERVAL_S)
            results = await asyncio.gather(
                *(self.probe(i, settings.values, listen_only=listen_only) for i in pending)
            )
            now = time.monotonic()
            for instance, result in zip(pending, results, strict=True):
                crashed = self.process_failure(snapshot.instances.get(instance.id))
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
            states = (await self.observer.fresh(DRAIN_POLL_S)).servers
            busy = [
                i
                for i in instances
                if (s := states.get((i.environment, i.id))) is not None and s.sessions > 0
            ]
            if not busy:
                break
            await asyncio.sleep(DRAIN_POLL_S)

    async def checked_healthy(self, instances: list[Instance]) -> list[Instance]:
        """Those whose load-balancer check passes now (standby ones are checked at weight 0);
        none when the load balancer does not answer."""
        if not instances:
            return []
        snapshot = await self.observer.fresh(DRAIN_POLL_S)
        return [
            i
            for i in instances
            if (s := snapshot.servers.get((i.environment, i.id))) is not None and s.passing
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
        # HAProxy down: its part of the snapshot is empty, and nothing is in flight through it.
        states = (await self.observer.refresh()).servers
        for instance in instances:
            state = states.get((instance.environment, instance.id))
            busy = state is not None and state.sessions > 0
            self.store.update_instance(
                instance.id, state=InstanceState.DRAINING if busy else InstanceState.STOPPING
            )
        await self.sync_lb()
        await asyncio.gather(*(asyncio.to_thread(self.runtime.stop, i.id) for i in instances))
        for instance in instances:
            self.store.update_instance(
                instance.id, state=InstanceState.STOPPED, pid=0, healthy=False
            )
        await self.sync_lb()


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
