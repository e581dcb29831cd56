"""Enhanced health: the request stream and process usage, turned into statuses every 10 s.

HAProxy's per-request lines arrive as datagrams on a loopback port (`lb.requests`) and go
into 10 s windows and 5 min roll-ups (`metrics`). Every second the monitor writes the
access logs and adjusts each environment's sampling ratio; every 10 s, when a window closes,
it samples each instance's CPU and memory and the host's, asks the pure rules (`health`) for
verdicts, stores statuses, causes and the windows, and turns every change of an
environment's status into an event in EB's words. It owns the environment's health colour,
status and causes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from beanpole.adapters.lb.requests import (
    AccessLogs,
    Listener,
    RequestStream,
    sampling_ratio,
    smoothed_rate,
)
from beanpole.adapters.runtime.usage import HostSampler, HostUsage, Usage, UsageSampler
from beanpole.adapters.store.db import Store
from beanpole.core.capacity import bounds, desired_count
from beanpole.core.errors import BeanpoleError
from beanpole.core.health import (
    COLOUR,
    EnvInput,
    InstanceInput,
    Status,
    Thresholds,
    Verdict,
    environment_health,
    rank,
    recent,
    transition_event,
)
from beanpole.core.metrics import WINDOW_S, Sample, Windows, WindowStats
from beanpole.core.model import (
    Environment,
    Health,
    Instance,
    InstanceState,
    OperationKind,
    Severity,
)
from beanpole.home import Home
from beanpole.services.autoscaler import Autoscaler
from beanpole.services.fleet import Fleet
from beanpole.services.resolved import ResolvedSettingsCache

log = logging.getLogger(__name__)

ROLLUP_S = 300.0
METRICS_KEEP_S = 24 * 3600  # 10 s windows: a day
ROLLUP_KEEP_S = 14 * 24 * 3600  # 5 min roll-ups: two weeks
TICK_S = 1.0
SNAPSHOT_MAX_AGE_S = 1.5  # the reconciler takes one a second; older means it is busy
MAX_SKEW_S = 60.0
CLOSE_GRACE_S = 1.0  # a window closes this long after it ends: its last lines are on the way
_CORES = os.cpu_count() or 1
_DEPLOYING = (OperationKind.DEPLOY, OperationKind.CONFIGURE, OperationKind.CREATE)
_STATUS_VALUES = frozenset(s.value for s in Status)


@dataclass
class Snapshot:
    """The latest verdicts, as the API serves them."""

    at: float = 0.0
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)


class Monitor:
    def __init__(
        self,
        home: Home,
        store: Store,
        fleet: Fleet,
        sock: socket.socket,
    ) -> None:
        self.store, self.fleet = store, fleet
        self.windows = Windows(WINDOW_S)
        self.rollups = Windows(ROLLUP_S)
        self.usage = UsageSampler()
        self.host = HostSampler()
        self.last_usage: dict[str, Usage] = {}
        self.last_host: HostUsage | None = None
        self.stream = RequestStream(
            self._on_sample, AccessLogs(home.access_logs), home.request_token()
        )
        self.listener = Listener(sock, self.stream)
        self.snapshot = Snapshot()
        self.ratios: dict[str, int] = {}  # env -> 1:N sampling wanted
        self._rates: dict[str, float] = {}  # env -> smoothed requests/s
        self.totals: dict[tuple[str, str, int], int] = {}  # (env, instance, class) -> count
        self.env_totals: dict[tuple[str, int], int] = {}  # (env, class) -> count, all lines
        self._applied: dict[str, int] | None = None  # what HAProxy was last told
        self._window_index = math.floor((time.time() - CLOSE_GRACE_S) / WINDOW_S)
        self._evaluating = asyncio.Lock()
        self.settings = ResolvedSettingsCache()
        self._last_tick = time.monotonic()
        self.autoscaler: Autoscaler | None = None  # told of every closed window

    async def start(self) -> None:
        self.listener.start()
        await self.refresh()  # statuses from the first second, not after the first window

    def close(self) -> None:
        self.listener.close()
        self.stream.flush()

    def _on_sample(self, sample: Sample) -> None:
        # In the window of when the request ended, not of when its line arrived (a line
        # read late, after a pause, lands where it belongs); a time far from now is not
        # HAProxy's and would open windows that never close, so it counts as now.
        now = time.time()
        at = sample.at if abs(sample.at - now) < MAX_SKEW_S else now
        self.windows.add(sample, at)
        self.rollups.add(sample, at)
        cls = sample.status // 100
        key = (sample.env, sample.instance, cls)
        self.totals[key] = self.totals.get(key, 0) + sample.weight
        env_key = (sample.env, cls)
        self.env_totals[env_key] = self.env_totals.get(env_key, 0) + sample.weight

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not stop health; it is logged
                log.exception("monitor tick failed")

    async def tick(self) -> None:
        self.stream.flush()
        await self._adjust_sampling()
        until = time.time() - CLOSE_GRACE_S
        index = math.floor(until / WINDOW_S)
        if index > self._window_index:
            self._window_index = index
            # Told again every 10 s: a reload between a spec and its worker, or a restarted
            # HAProxy, may have left the old ratios.
            self._applied = None
            await self.evaluate(
                self.windows.close_until(until),
                self.rollups.close_until(until),
                window_start=(index - 1) * WINDOW_S,
            )

    # sampling ------------------------------------------------------------------------

    async def _adjust_sampling(self) -> None:
        elapsed = max(time.monotonic() - self._last_tick, 1e-3)
        self._last_tick = time.monotonic()
        counts = self.stream.take_counts()
        if not counts and not self.ratios and self._applied == {}:
            # No request anywhere and HAProxy already logs every line: nothing can change but
            # the rates' decay, so no store read (this ran every second of an idle server).
            self._rates = {env: smoothed_rate(rate, 0.0) for env, rate in self._rates.items()}
            return
        names = {e.name for e in self.store.environments()}
        ratios, rates = {}, {}
        for env in names:
            rate = smoothed_rate(self._rates.get(env, 0.0), counts.get(env, 0) / elapsed)
            rates[env] = rate
            ratio = sampling_ratio(rate, self.ratios.get(env, 1))
            if ratio > 1:
                ratios[env] = ratio
        self.ratios, self._rates = ratios, rates
        self.fleet.sampling = ratios
        if ratios != self._applied:
            # every environment, so one that went back to 1:1 is told so too
            wanted = {env: ratios.get(env, 1) for env in names}
            try:
                await asyncio.to_thread(self.fleet.lb.set_sampling, wanted)
            except BeanpoleError as exc:  # HAProxy restarting: the reconciler sees to it
                log.info("could not set request sampling: %s", exc)
                return
            self._applied = dict(ratios)

    # evaluation ----------------------------------------------------------------------

    async def evaluate(
        self,
        closed: list[WindowStats],
        rolled: list[WindowStats],
        *,
        window_start: float | None = None,
    ) -> None:
        """Judge every environment now and store the windows that closed (one at a time:
        the API may ask for a verdict while the 10 s one runs). ``window_start``: the 10 s
        window that just closed, whose figures go to auto scaling too."""
        async with self._evaluating:
            await self._evaluate(closed, rolled, window_start)

    async def refresh(self) -> None:
        """A verdict now, from the latest windows, for an environment that has none yet."""
        await self.evaluate([], [])

    async def _evaluate(
        self, closed: list[WindowStats], rolled: list[WindowStats], window_start: float | None
    ) -> None:
        store = self.store
        # The reconciler's snapshot of this second, or a new one if it is older.
        observed = await self.fleet.observer.fresh(SNAPSHOT_MAX_AGE_S)
        processes, servers = observed.instances, observed.servers
        pids = {i: o.pids for i, o in processes.items()}
        self.last_usage = await asyncio.to_thread(self.usage.sample, pids)
        self.last_host = self.host.sample()
        lb_answering = observed.lb_ok
        if not lb_answering:  # the verdicts say so rather than keep the last ones
            log.warning("HAProxy did not answer for health: %s", observed.lb_error)
        now = time.time()
        environments = store.environments()
        instances: dict[str, list[Instance]] = {e.name: [] for e in environments}
        for instance in store.instances():  # one read for all, not one per environment
            if instance.environment in instances:
                instances[instance.environment].append(instance)
        if window_start is not None:
            in_service = {
                env: sum(i.state is InstanceState.IN_SERVICE for i in members)
                for env, members in instances.items()
            }
            store.add_metrics(
                _rows(closed, in_service, window_start, WINDOW_S),
                METRICS_KEEP_S,
                _rows(rolled, in_service, _closing_rollup(window_start), ROLLUP_S),
                ROLLUP_KEEP_S,
            )
        self._forget_departed(instances)
        self.settings.retain(set(instances))
        snapshot = Snapshot(at=now)
        resolved = {}
        # a listener rule's process has a backend of its own ("shop.api"): an instance whose
        # process there fails its check fails its check, as on EB's per-process target groups
        process_passing: dict[tuple[str, str], bool] = {}
        for (backend, server_name), state in servers.items():
            env_name, dot, _ = backend.partition(".")
            if dot:
                key = (env_name, server_name)
                process_passing[key] = process_passing.get(key, True) and state.passing
        for env in environments:
            settings = resolved[env.name] = self.settings.get(env)
            inputs = []
            for i in instances[env.name]:
                server = servers.get((env.name, i.id))
                usage = self.last_usage.get(i.id)
                inputs.append(
                    InstanceInput(
                        id=i.id,
                        state=i.state.value,
                        check_passing=None
                        if server is None
                        else server.passing and process_passing.get((env.name, i.id), True),
                        process_failure=self.fleet.process_failure(processes.get(i.id)),
                        window=self.windows.latest(env.name, i.id),
                        # of the host, as EB's "95% of CPU is in use" means the machine's CPU
                        cpu_percent=None if usage is None else usage.cpu_percent / _CORES,
                        version=i.version_label,
                        deployment_id=i.deployment_id,
                        launched_at=i.created_at,
                    )
                )
            last = store.last_operation(env.name, _DEPLOYING)
            verdict, per_instance = environment_health(
                EnvInput(
                    name=env.name,
                    expected_version=env.version_label or "",
                    expected_deployment_id=env.deployment_id,
                    min_size=bounds(settings, env.scheduled_bounds).min_size,
                    desired_capacity=desired_count(
                        settings, env.desired_capacity, env.scheduled_bounds
                    ),
                    deployment=None if last is None else (last.started_at, last.finished_at),
                    window=self.windows.latest(env.name, None),
                    instances=tuple(inputs),
                    now=now,
                    lb_answering=lb_answering,
                    lost=self._lost(
                        env.name,
                        instances[env.name],
                        desired_count(settings, env.desired_capacity, env.scheduled_bounds),
                    ),
                ),
                Thresholds(rule_4xx=settings.get("beanpole:health", "Rule4xx") == "true"),
            )
            for i in instances[env.name]:
                v = per_instance.get(i.id)
                if v is not None and v.status.value != i.health_status:
                    store.update_instance(i.id, health_status=v.status.value)
            self._record(env, verdict)
            snapshot.environments[env.name] = self._describe(
                env.name, instances[env.name], verdict, per_instance, now
            )
        self.snapshot = snapshot
        if self.autoscaler is not None and window_start is not None:
            self.autoscaler.on_window(
                window_start,
                closed,
                self.last_usage,
                servers,
                environments,
                instances,
                resolved,
                now,
            )

    def _lost(self, env: str, instances: list[Instance], desired: int) -> tuple[str, ...]:
        """The environment's instances lost lately, while it is below its capacity; once
        it is back to it they are forgotten."""
        lost = self.fleet.lost.get(env)
        if not lost:
            return ()
        if sum(i.state is InstanceState.IN_SERVICE for i in instances) >= desired:
            self.fleet.lost.pop(env, None)
            return ()
        return tuple(lost[-5:])

    def _forget_departed(self, instances: dict[str, list[Instance]]) -> None:
        """Drop what is kept per instance or environment once it is gone: memory and
        Prometheus series stay bounded by what lives (the environment totals stay)."""
        live = {(env, i.id) for env, members in instances.items() for i in members}
        for windows in (self.windows, self.rollups):
            windows.retain(live, set(instances))
        for key in [k for k in self.totals if (k[0], k[1]) not in live]:
            del self.totals[key]
        for env_key in [k for k in self.env_totals if k[0] not in instances]:
            del self.env_totals[env_key]

    def _record(self, env: Environment, verdict: Verdict) -> None:
        """Store the verdict; an event when the status changes, in EB's sentence."""
        colour = Health(COLOUR[verdict.status])
        if (
            verdict.status.value == env.health_status
            and colour is env.health
            and verdict.causes == env.causes
        ):
            return
        self.store.update_environment(
            env.name, health_status=verdict.status.value, health=colour, causes=verdict.causes
        )
        if verdict.status.value == env.health_status:
            return
        old = env.health_status
        previous = Status(old) if old in _STATUS_VALUES else Status.UNKNOWN
        if previous is Status.UNKNOWN and verdict.status in (Status.OK, Status.INFO):
            return  # the first verdict after a start is not news
        worse = rank(verdict.status) > rank(previous)
        self.store.add_event(
            transition_event(env.name, previous, verdict.status, verdict.causes),
            severity=Severity.WARN if worse else Severity.INFO,
            environment_id=env.id,
            application=env.application,
        )

    def _describe(
        self,
        env: str,
        instances: list[Instance],
        verdict: Verdict,
        per_instance: dict[str, Verdict],
        now: float,
    ) -> dict[str, Any]:
        """The snapshot of one environment. ``requests`` is the latest window only while it is
        recent (`core.health.recent`); ``requests_ended_at`` says when the latest one ended,
        so a face can say how old the last figures are instead of showing them as current."""
        described = []
        for i in instances:
            v = per_instance.get(i.id)
            w = self.windows.latest(env, i.id)
            usage = self.last_usage.get(i.id)
            described.append(
                {
                    "id": i.id,
                    "state": i.state,
                    "version": i.version_label,
                    "deployment_id": i.deployment_id,
                    "launched_at": i.created_at,
                    "status": v.status.value if v else i.health_status,
                    "colour": v.colour if v else "Grey",
                    "causes": list(v.causes) if v else [],
                    **_requests(w, now),
                    "cpu_percent": usage.cpu_percent if usage else None,
                    "rss_bytes": usage.rss_bytes if usage else None,
                    "processes": usage.processes if usage else None,
                }
            )
        w = self.windows.latest(env, None)
        return {
            "status": verdict.status.value,
            "colour": verdict.colour,
            "causes": list(verdict.causes),
            **_requests(w, now),
            "sampling": self.ratios.get(env, 1),
            "host": asdict(self.last_host) if self.last_host else None,
            "instances": described,
        }


def window_json(w: WindowStats) -> dict[str, Any]:
    data = asdict(w)
    data["latency_ms"] = {str(k): round(v, 2) for k, v in w.latency_ms.items()}
    data["requests_per_s"] = round(w.requests_per_s, 2)
    data["latency_mean_ms"] = round(w.latency_mean_ms, 2)
    return data


def _requests(w: WindowStats | None, now: float) -> dict[str, Any]:
    current = recent(w, now)
    return {
        "requests": window_json(current) if current else None,
        "requests_ended_at": w.start + w.duration_s if w else None,
    }


def _closing_rollup(window_start: float) -> float | None:
    """The start of the 5 min roll-up that closes with the 10 s window at ``window_start``
    (None: this window is not a roll-up's last)."""
    end = window_start + WINDOW_S
    if end % ROLLUP_S:
        return None
    return end - ROLLUP_S


def _rows(
    windows: list[WindowStats],
    in_service: dict[str, int],
    start: float | None,
    duration_s: float,
) -> list[tuple[str, str, float, str]]:
    """The rows to store: each closed window, each environment's carrying its InService
    count; an environment with no request in the window that closed at ``start`` gets an
    empty one, so its series (and its instance count) has no gap while the monitor ran."""
    rows = []
    seen = set()
    for w in windows:
        data = window_json(w)
        if w.instance is None:
            data["instances"] = in_service.get(w.env)
            seen.add(w.env)
        rows.append((w.env, w.instance or "", w.start, json.dumps(data)))
    if start is not None:
        for env, count in in_service.items():
            if env not in seen:
                idle = WindowStats(env, None, start, duration_s, 0, 0, 0, 0, 0, {})
                data = window_json(idle) | {"instances": count}
                rows.append((env, "", start, json.dumps(data)))
    return rows


__all__ = ["Monitor", "Snapshot", "window_json"]
