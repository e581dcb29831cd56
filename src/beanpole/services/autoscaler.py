"""Auto scaling: every 10 s, each environment's figures into a history, a decision, an action.

The monitor calls `Autoscaler.on_window` when it closes a 10 s window (it has just read the
instances' CPU and the load balancer's counters). Per environment this module turns them
into a `decide.Window`, applies a scheduled action that has fired since the last one, asks
the pure `beanpole.core.autoscaling.decide` what the desired count should be, and hands a
change to `Operations.autoscale`, which starts or drains instances while the environment
stays Ready. Every change is an event with its reason; the latest verdict of each
environment (a change or why none) is kept for `status`, `autoscale` and the API.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from beanpole.adapters.runtime.usage import Usage
from beanpole.adapters.store.db import Store
from beanpole.core.autoscaling import schedule
from beanpole.core.autoscaling.decide import (
    Decision,
    FleetState,
    InstanceSample,
    Scheduled,
    Window,
    decide,
)
from beanpole.core.autoscaling.policy import Policy, policy_from
from beanpole.core.capacity import Override, bounds, desired_count
from beanpole.core.errors import BeanpoleError
from beanpole.core.metrics import WindowStats
from beanpole.core.model import Environment, EnvStatus, Instance, InstanceState
from beanpole.core.runtime import ServerState
from beanpole.core.settings import ResolvedSettings
from beanpole.services.operations import Operations

log = logging.getLogger(__name__)

HISTORY_S = 6 * 3600.0  # the longest trigger span kept: Period x EvaluationPeriods beyond is cut
_WINDOW_S = 10.0


@dataclass
class EnvScaling:
    """What the autoscaler keeps of one environment between windows (memory only; the last
    decision and activity are stored too, `Environment.scaling`)."""

    history: deque[Window] = field(default_factory=lambda: deque(maxlen=int(HISTORY_S / 10)))
    counters: dict[str, tuple[int, int]] = field(default_factory=dict)  # bytes in/out
    settled_at: float | None = None
    verdict: Decision | None = None
    verdict_at: float = 0.0
    policy: Policy | None = None


@dataclass(frozen=True)
class Verdict:
    """An environment's auto scaling as the faces show it."""

    policy: Policy | None
    decision: Decision | None
    decided_at: float


class Autoscaler:
    def __init__(self, ops: Operations) -> None:
        self.ops = ops
        self.envs: dict[str, EnvScaling] = {}

    @property
    def store(self) -> Store:
        return self.ops.store

    def verdict(self, name: str) -> Verdict:
        state = self.envs.get(name)
        if state is None:
            return Verdict(None, None, 0.0)
        return Verdict(state.policy, state.verdict, state.verdict_at)

    def on_window(
        self,
        window_start: float,
        closed: list[WindowStats],
        usage: Mapping[str, Usage],
        servers: Mapping[tuple[str, str], ServerState],
        environments: list[Environment],
        instances: Mapping[str, list[Instance]],
        settings: Mapping[str, ResolvedSettings],
        now: float | None = None,
    ) -> None:
        """One closed window: record it, decide, act. Never raises (health goes on)."""
        now = time.time() if now is None else now
        requests = {
            (w.env, w.instance): w
            for w in closed
            if w.instance is not None and w.start == window_start
        }
        self.envs = {e.name: self.envs.get(e.name) or EnvScaling() for e in environments}
        for env in environments:
            state = self.envs[env.name]
            try:
                window = self._window(
                    env.name, window_start, instances[env.name], usage, servers, requests, state
                )
                state.history.append(window)
                self._step(env, instances[env.name], settings[env.name], state, now)
            except BeanpoleError as exc:
                state.verdict = Decision(env.desired_capacity or 0, False, f"Waiting: {exc}", None)
                state.verdict_at = now
            except Exception:  # one environment's failure must not stop the others
                log.exception("auto scaling of %s failed", env.name)

    # the figures --------------------------------------------------------------------

    def _window(
        self,
        env: str,
        start: float,
        members: list[Instance],
        usage: Mapping[str, Usage],
        servers: Mapping[tuple[str, str], ServerState],
        requests: Mapping[tuple[str, str], WindowStats],
        state: EnvScaling,
    ) -> Window:
        samples: dict[str, InstanceSample] = {}
        healthy = unhealthy = 0
        counters: dict[str, tuple[int, int]] = {}
        for i in members:
            if i.state is not InstanceState.IN_SERVICE:
                continue
            used = usage.get(i.id)
            server = servers.get((env, i.id))
            stats = requests.get((env, i.id))
            bytes_in = bytes_out = None
            if server is not None:
                counters[i.id] = (server.bytes_in, server.bytes_out)
                before = state.counters.get(i.id)
                if (
                    before is not None
                    and server.bytes_in >= before[0]
                    and server.bytes_out >= before[1]
                ):
                    bytes_in, bytes_out = server.bytes_in - before[0], server.bytes_out - before[1]
                if server.healthy:
                    healthy += 1
                else:
                    unhealthy += 1
            samples[i.id] = InstanceSample(
                cpu_percent=used.cpu_percent if used is not None and used.cpu_measured else None,
                requests=stats.requests if stats else 0,
                latency_sum_s=stats.requests * stats.latency_mean_ms / 1000 if stats else 0.0,
                bytes_in=bytes_in,
                bytes_out=bytes_out,
            )
        state.counters = counters
        return Window(start, start + _WINDOW_S, samples, healthy, unhealthy)

    # the decision -------------------------------------------------------------------

    def _step(
        self,
        env: Environment,
        members: list[Instance],
        settings: ResolvedSettings,
        state: EnvScaling,
        now: float,
    ) -> None:
        ops = self.ops
        explicit = {*env.version_settings, *env.saved_settings, *env.settings}
        state.policy = policy = policy_from(settings.values, explicit)
        memory = dict(env.scaling)
        busy = self._busy(env)
        override = env.scheduled_bounds
        scheduled = None
        if busy is None:
            override, scheduled = self._scheduled(env, settings, now, memory)
        limits = bounds(settings, override)
        desired = env.desired_capacity
        if desired is None:
            desired = desired_count(settings, None, override)
        live = [i for i in members if i.state is not InstanceState.STOPPED]
        in_service = sum(1 for i in live if i.state is InstanceState.IN_SERVICE)
        starting = sum(1 for i in live if i.state is InstanceState.PENDING)
        steady = busy is None and starting == 0 and in_service == desired
        if not steady:
            state.settled_at = None
        elif state.settled_at is None:
            state.settled_at = now
        decision = decide(
            policy,
            limits,
            FleetState(
                desired=desired,
                in_service=in_service,
                starting=starting,
                settled_at=state.settled_at,
                last_activity_at=memory.get("activity_at"),
                busy=busy,
            ),
            list(state.history),
            now,
            scheduled=scheduled,
            bounds_source=f" (scheduled action {override.action})" if override else "",
        )
        state.verdict, state.verdict_at = decision, now
        if not decision.changed:
            return
        ops.autoscale(env, decision.desired, decision.message)
        state.settled_at = None
        memory.update(decision=decision.message, decided_at=now)
        self.store.update_environment(env.name, scaling=memory)

    def _busy(self, env: Environment) -> str | None:
        if env.status is not EnvStatus.READY:
            return f"the environment is {env.status}"
        if self.ops.operating(env.name):
            return "an operation (deployment, configuration change, repair) is in progress"
        if self.ops.scaling(env.name):
            return "a scaling activity is in progress"
        return None

    def _scheduled(
        self, env: Environment, settings: ResolvedSettings, now: float, memory: dict[str, Any]
    ) -> tuple[Override | None, Scheduled | None]:
        """The bounds in force, and a new firing's DesiredCapacity: a scheduled action that
        fired since the last one carried out replaces the bounds (the ones it names).
        ``memory`` is the step's copy of the stored memory: the firing is recorded in it, so
        the step's own write keeps it."""
        actions = schedule.actions_from(settings.values)
        # Firings from before the environment existed are not news; any since are (one
        # missed while the server was down, or while an operation ran, is carried out now).
        last = memory.get("firing_at", env.created_at)
        firing = schedule.in_force(actions, now)
        if firing is None or firing.at <= last:
            return env.scheduled_bounds, None
        action = firing.action
        previous = env.scheduled_bounds
        override = previous  # DesiredCapacity only: the bounds stay
        if action.min_size is not None or action.max_size is not None:
            kept_min = previous.min_size if previous else None
            kept_max = previous.max_size if previous else None
            override = Override(
                kept_min if action.min_size is None else action.min_size,
                kept_max if action.max_size is None else action.max_size,
                action.name,
                firing.at,
            )
        memory["firing_at"] = firing.at
        self.store.update_environment(env.name, scheduled_bounds=override, scaling=memory)
        self.ops._event(env, f"Scheduled action {schedule.describe(firing)}.")
        wanted = Scheduled(action.name, action.desired) if action.desired is not None else None
        return override, wanted
