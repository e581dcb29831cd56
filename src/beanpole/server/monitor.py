"""Enhanced health: the request stream and process usage, turned into statuses every 10 s.

HAProxy's per-request lines arrive on a datagram socket (`lb.requests`) and go into 10 s
windows (`metrics`). When a window closes, the monitor samples each instance's CPU, asks the
pure rules (`health`) for verdicts, stores statuses, causes and the windows, and turns every
change of an environment's status into an event in EB's words.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from beanpole.health import (
    COLOUR,
    EnvInput,
    InstanceInput,
    Status,
    Thresholds,
    Verdict,
    environment_health,
    rank,
    transition_event,
)
from beanpole.lb.requests import AccessLogs, RequestStream, listen
from beanpole.metrics import Sample, Windows, WindowStats
from beanpole.model import EnvStatus, Health, OperationKind, Severity
from beanpole.runtime.usage import Usage, UsageSampler, load_average
from beanpole.server.context import Context
from beanpole.settings import resolve

METRICS_KEEP_S = 24 * 3600
_CORES = os.cpu_count() or 1
_DEPLOYING = (OperationKind.DEPLOY, OperationKind.CONFIGURE, OperationKind.CREATE)


@dataclass
class Snapshot:
    """The latest verdicts, as the API serves them."""

    at: float = 0.0
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)


class Monitor:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.windows = Windows()
        self.usage = UsageSampler()
        self.last_usage: dict[str, Usage] = {}
        self.stream = RequestStream(self._on_sample, AccessLogs(ctx.home.logs / "access"))
        self.snapshot = Snapshot()
        self._transport: asyncio.DatagramTransport | None = None
        self._seen: set[tuple[str, str]] = set()

    async def start(self) -> None:
        self._transport = await listen(self.ctx.fleet.haproxy.paths.log_socket, self.stream)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _on_sample(self, sample: Sample, now: float) -> None:
        self.windows.add(sample, now)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.stream.flush()
            closed = self.windows.close_until(time.time())
            if closed:
                await self.evaluate(closed)

    async def evaluate(self, closed: list[WindowStats]) -> None:
        store = self.ctx.store
        processes = await asyncio.to_thread(self.ctx.supervisor.instances)
        pids = {i: [p.pid for p in states if p.pid] for i, states in processes.items()}
        self.last_usage = await asyncio.to_thread(self.usage.sample, pids)
        servers = await asyncio.to_thread(self.ctx.fleet.haproxy.server_states)
        store.add_metrics(
            [(w.env, w.instance or "", w.start, json.dumps(_window_json(w))) for w in closed],
            METRICS_KEEP_S,
        )
        now = time.time()
        snapshot = Snapshot(at=now)
        live = {(i.environment, i.id) for i in store.instances()}
        names = {e.name for e in store.environments()}
        for key in self._seen - live:
            self.windows.forget(*key)
        for name in {k[0] for k in self._seen} - names:
            self.windows.forget(name)
        self._seen = live
        for env in store.environments():
            settings = resolve(env.settings)
            instances = [i for i in store.instances(env.name)]
            inputs = []
            for i in instances:
                server = servers.get((env.name, i.id))
                failure = self.ctx.fleet.process_failure(i.id, processes.get(i.id, []))
                usage = self.last_usage.get(i.id)
                inputs.append(
                    InstanceInput(
                        id=i.id,
                        state=i.state.value,
                        check_passing=None
                        if server is None
                        else (server.healthy or server.check_status == "INI"),
                        process_failure=failure,
                        window=self.windows.latest(env.name, i.id),
                        # of the host, as EB's "95% of CPU is in use" means the machine's CPU
                        cpu_percent=None if usage is None else usage.cpu_percent / _CORES,
                        version=i.version_label,
                        deployment_id=i.deployment_id,
                        launched_at=i.created_at,
                    )
                )
            last = store.last_operation(env.name, _DEPLOYING)
            deployment = None if last is None else (last.started_at, last.finished_at)
            verdict, per_instance = environment_health(
                EnvInput(
                    name=env.name,
                    expected_version=env.version_label or "",
                    expected_deployment_id=env.deployment_id,
                    min_size=settings.int("aws:autoscaling:asg", "MinSize"),
                    deployment=deployment,
                    window=self.windows.latest(env.name, None),
                    instances=tuple(inputs),
                    now=now,
                ),
                Thresholds(rule_4xx=settings.get("beanpole:health", "Rule4xx") == "true"),
            )
            for i in instances:
                v = per_instance.get(i.id)
                if v is not None and v.status.value != i.health_status:
                    store.update_instance(i.id, health_status=v.status.value)
            self._record(env.name, env.application, env.health_status, verdict, env.status)
            snapshot.environments[env.name] = self._describe(env.name, verdict, per_instance)
        self.snapshot = snapshot

    def _record(
        self, name: str, application: str, old: str, verdict: Verdict, status: EnvStatus
    ) -> None:
        if verdict.status.value == old:
            return
        fields: dict[str, Any] = {"health_status": verdict.status.value}
        if status is EnvStatus.READY:
            fields["health"] = Health(COLOUR[verdict.status])
        self.ctx.store.update_environment(name, **fields)
        previous = Status(old) if old in _STATUS_VALUES else Status.UNKNOWN
        if previous is Status.UNKNOWN and verdict.status in (Status.OK, Status.INFO):
            return  # the first verdict after a start is not news
        worse = rank(verdict.status) > rank(previous)
        self.ctx.store.add_event(
            transition_event(name, previous, verdict.status, verdict.causes),
            severity=Severity.WARN if worse else Severity.INFO,
            environment=name,
            application=application,
        )

    def _describe(
        self, env: str, verdict: Verdict, per_instance: dict[str, Verdict]
    ) -> dict[str, Any]:
        instances = []
        for i in self.ctx.store.instances(env):
            v = per_instance.get(i.id)
            w = self.windows.latest(env, i.id)
            usage = self.last_usage.get(i.id)
            instances.append(
                {
                    "id": i.id,
                    "state": i.state,
                    "version": i.version_label,
                    "deployment_id": i.deployment_id,
                    "launched_at": i.created_at,
                    "status": v.status.value if v else i.health_status,
                    "colour": v.colour if v else "Grey",
                    "causes": list(v.causes) if v else [],
                    "requests": _window_json(w) if w else None,
                    "cpu_percent": usage.cpu_percent if usage else None,
                    "rss_bytes": usage.rss_bytes if usage else None,
                }
            )
        w = self.windows.latest(env, None)
        return {
            "status": verdict.status.value,
            "colour": verdict.colour,
            "causes": list(verdict.causes),
            "requests": _window_json(w) if w else None,
            "load_average": load_average(),
            "instances": instances,
        }


_STATUS_VALUES = frozenset(s.value for s in Status)


def _window_json(w: WindowStats) -> dict[str, Any]:
    data = asdict(w)
    data["latency_ms"] = {str(k): round(v, 2) for k, v in w.latency_ms.items()}
    data["requests_per_s"] = round(w.requests_per_s, 2)
    return data


__all__ = ["Monitor"]
