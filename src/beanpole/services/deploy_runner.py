"""Carry out a deployment plan step by step; on any failure, roll back to the old release.

The plan comes from `beanpole.core.deploy.policies` (pure). The runner owns the side effects:
launching through the fleet, the health gate, traffic splitting, the bake window after
cut-over, and the rollback, which brings the old release back to full capacity *before*
the new instances leave, so a rollback drops no request either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from beanpole.adapters.lb.requests import Tap
from beanpole.core.capacity import desired_count
from beanpole.core.deploy import gate
from beanpole.core.deploy.policies import (
    Action,
    DeployParams,
    Policy,
    Step,
    plan,
    rolling_note,
    split_weights,
)
from beanpole.core.errors import BeanpoleError, ComponentError, unexpected
from beanpole.core.model import Environment, Instance, InstanceState, Severity
from beanpole.core.release import Release
from beanpole.core.runtime import ServerState
from beanpole.core.settings import ResolvedSettings
from beanpole.services.deploy_host import DeployHost
from beanpole.services.observer import Snapshot

_CMD = "aws:elasticbeanstalk:command"
_SPLIT = "aws:elasticbeanstalk:trafficsplitting"
_DEPLOY = "beanpole:deploy"
_PROC = "aws:elasticbeanstalk:environment:process:default"
WATCH_INTERVAL_S = 0.5


def _servers(snapshot: Snapshot) -> dict[tuple[str, str], ServerState]:
    """The load balancer's view; a load balancer that does not answer fails the gate (as
    its error, not as every instance having left it)."""
    if not snapshot.lb_ok:
        raise ComponentError(snapshot.lb_error)
    return snapshot.servers


class DeploymentFailed(BeanpoleError):
    """The new release failed; the message says why (the rollback has already run)."""


def deploy_params(settings: ResolvedSettings, policy: str | None = None) -> DeployParams:
    return DeployParams(
        policy=Policy(policy or settings.get(_CMD, "DeploymentPolicy")),
        batch_size_type=settings.get(_CMD, "BatchSizeType"),
        batch_size=settings.int(_CMD, "BatchSize"),
        new_version_percent=settings.int(_SPLIT, "NewVersionPercent"),
        evaluation_time_s=settings.int(_DEPLOY, "EvaluationSeconds")
        or settings.int(_SPLIT, "EvaluationTime") * 60,
    )


@dataclass
class DeploymentRun:
    ops: DeployHost
    env: Environment
    new: Release
    old: Release | None
    params: DeployParams
    deployment_id: int
    abort: asyncio.Event
    launched: list[Instance] = field(default_factory=list)  # started, not yet in service
    serving: list[Instance] = field(default_factory=list)  # new instances taking traffic
    # old instances out of rotation, alive until the bake window closes (see `_step`)
    standby: list[Instance] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    baseline: Tap | None = None  # the previous version's requests during this deployment

    @property
    def settings(self) -> ResolvedSettings:
        return self.new.settings

    async def run(self) -> None:
        fleet = self.ops.fleet
        live = [i for i in self.ops.store.instances(self.env.name)]
        await fleet.stop([i for i in live if i.state is not InstanceState.IN_SERVICE])
        old = sorted(
            (i for i in live if i.state is InstanceState.IN_SERVICE),
            key=lambda i: (i.created_at, i.id),
        )
        capacity = desired_count(
            self.settings, self.env.desired_capacity, self.env.scheduled_bounds
        )
        steps = plan([i.id for i in old], capacity, self.params)
        by_id = {i.id: i for i in old}
        self._event(
            f"Deploying version {self.new.version_label} with policy "
            f"{self.params.policy} to {capacity} instance(s)."
        )
        note = rolling_note(len(old), capacity, self.params)
        if note is not None:
            self._event(note)
        try:
            with self._tap(by_id) as self.baseline:
                for step in steps:
                    if self.abort.is_set():
                        raise DeploymentFailed("The deployment was aborted.")
                    await self._step(step, by_id)
                await self._bake()
            await self._close_window()
        except (Exception, asyncio.CancelledError) as exc:
            if not isinstance(exc, BeanpoleError | asyncio.CancelledError):
                logging.getLogger(__name__).error("deployment failed", exc_info=exc)
            reason = (
                exc.message
                if isinstance(exc, BeanpoleError)
                else (
                    "The server stopped during the deployment."
                    if isinstance(exc, asyncio.CancelledError)
                    else unexpected(exc)
                )
            )
            await asyncio.shield(self._roll_back(reason))
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise DeploymentFailed(reason) from exc

    async def _step(self, step: Step, old: dict[str, Instance]) -> None:
        fleet = self.ops.fleet
        artifact = await self.ops.artifact(self.env, self.new, self.deployment_id)
        if step.action is Action.LAUNCH:
            label = f"batch {step.batch}: " if step.batch else ""
            self._event(
                f"Deployment {label}starting {step.count} instance(s) of version "
                f"{self.new.version_label}."
            )
            for _ in range(step.count):
                self.launched.append(
                    await fleet.launch(
                        self.env,
                        artifact,
                        self.settings,
                        version_label=self.new.version_label,
                        release_key=self.new.key,
                        deployment_id=self.deployment_id,
                    )
                )
            self.ops.instances_started(self.env.name, self.new.key)
        elif step.action is Action.AWAIT:
            await self._await_launched()
        elif step.action is Action.IN_SERVICE:
            moving, self.launched = self.launched, []
            self.serving += moving
            await fleet.put_in_service(self.serving)
            self._refresh()
            if step.batch:
                done = len(self.serving)
                self._event(
                    f"Deployment batch {step.batch} completed: {done} instance(s) of "
                    f"version {self.new.version_label} in service."
                )
        elif step.action is Action.RETIRE:
            leaving = [old[i] for i in step.retire if i in old]
            drain_s = self.settings.int(_PROC, "DeregistrationDelay")
            if self._keeps_old():
                # Out of rotation but alive until the bake window closes: a rollback within
                # it puts them back in service without starting anything.
                self._event(
                    f"Draining {len(leaving)} instance(s) of the previous version: "
                    f"{', '.join(i.id for i in leaving)}; they stay running out of rotation "
                    "until the bake window closes."
                )
                await fleet.standby(leaving, drain_s)
                self.standby += leaving
            else:
                self._event(
                    f"Draining and stopping {len(leaving)} instance(s) of the previous "
                    f"version: {', '.join(i.id for i in leaving)}."
                )
                await fleet.retire(leaving, drain_s)
        elif step.action is Action.SPLIT:
            moving, self.launched = self.launched, []
            self.serving += moving
            await fleet.put_in_service(self.serving)
            old_live = [i for i in old.values() if self._live(i)]
            w_new, w_old = split_weights(len(self.serving), len(old_live), step.percent)
            await fleet.set_weights(
                {**{i.id: w_new for i in self.serving}, **{i.id: w_old for i in old_live}}
            )
            self._event(
                f"Traffic splitting: version {self.new.version_label} gets "
                f"{step.percent}% of requests."
            )
        elif step.action is Action.EVALUATE:
            self._event(f"Evaluating version {self.new.version_label} for {step.seconds} s.")
            await self._watch(self.serving, step.seconds, "during traffic splitting")
            self._event("Traffic splitting evaluation passed; moving all traffic.")

    async def _await_launched(self) -> None:
        ignore = self.settings.get(_CMD, "IgnoreHealthCheck") == "true"
        failures = await self.ops.fleet.wait_ready(
            self.launched,
            self.settings,
            deadline=time.time() + max(1.0, self._remaining()),
            start_timeout_s=self.settings.int("beanpole:instance", "StartTimeout"),
            listen_only=ignore,
            abort=self.abort,
        )
        if failures:
            raise DeploymentFailed(failures.message(self.new.version_label))

    def _keeps_old(self) -> bool:
        """Whether retired old instances wait on standby for the bake window to close."""
        return self.old is not None and self.settings.int(_DEPLOY, "BakeTime") > 0

    async def _bake(self) -> None:
        seconds = self.settings.int(_DEPLOY, "BakeTime")
        if seconds <= 0 or not self.serving:
            return
        self._event(
            f"Watching version {self.new.version_label} for {seconds} s after cut-over "
            "(bake window)."
        )
        await self._watch(self.serving, seconds, "after cut-over")

    async def _close_window(self) -> None:
        """The bake window passed: the previous version's standby instances stop."""
        if not self.standby:
            return
        leaving, self.standby = self.standby, []
        self._event(
            f"Bake window closed: stopping {len(leaving)} instance(s) of the previous version."
        )
        await self.ops.fleet.stop(leaving)

    def _tap(self, instance_ids: Iterable[str]) -> contextlib.AbstractContextManager[Tap | None]:
        """Collect the requests these instances answer while the block runs (if streamed)."""
        stream = self.ops.requests
        if stream is None:
            return contextlib.nullcontext()
        return stream.tap(self.env.name, frozenset(instance_ids))

    async def _watch(self, instances: list[Instance], seconds: float, when: str) -> None:
        """Fail when the deploy gate (`core.deploy.gate`) fails the new instances."""
        if self.settings.get(_CMD, "IgnoreHealthCheck") == "true":
            await self._sleep_or_abort(seconds)
            return
        with self._tap(i.id for i in instances) as tap:
            await self._watch_tapped(instances, seconds, when, tap)

    def _limits(self) -> gate.Limits:
        return gate.Limits(
            max_error_percent=self.settings.int(_DEPLOY, "MaxErrorPercent"),
            max_latency_p99_ms=self.settings.int(_DEPLOY, "MaxLatencyP99"),
        )

    async def _watch_tapped(
        self, instances: list[Instance], seconds: float, when: str, tap: Tap | None
    ) -> None:
        """Read HAProxy's counters (and the tap's latencies) every half second; the verdict is
        `core.deploy.gate.judge`'s."""
        fleet = self.ops.fleet
        limits = self._limits()
        baseline = _servers(await fleet.observer.refresh())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self._sleep_or_abort(min(WATCH_INTERVAL_S, deadline - time.monotonic()))
            states = _servers(await fleet.observer.fresh(WATCH_INTERVAL_S))
            counters = []
            for instance in instances:
                key = (self.env.name, instance.id)
                now, before = states.get(key), baseline.get(key)
                if now is None:
                    counters.append(gate.ServerCounters(instance.id, present=False))
                    continue
                counters.append(
                    gate.ServerCounters(
                        instance.id,
                        status=now.status,
                        check_status=now.check_status,
                        responses=now.responses - (before.responses if before else 0),
                        responses_5xx=now.responses_5xx - (before.responses_5xx if before else 0),
                    )
                )
            verdict = gate.judge(
                counters,
                limits,
                version=self.new.version_label,
                when=when,
                latency=_latency(tap),
                baseline=_latency(self.baseline),
            )
            if not verdict.ok:
                at_fault = next((i for i in instances if i.id == verdict.instance_id), None)
                tail = self._log_tail(at_fault) if at_fault is not None else ""
                raise DeploymentFailed(verdict.reason + tail)

    async def _sleep_or_abort(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self.abort.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise DeploymentFailed("The deployment was aborted.")

    async def _roll_back(self, reason: str) -> None:
        """Old release back to full capacity first, then the new instances leave."""
        fleet, store = self.ops.fleet, self.ops.store
        self._event(reason, severity=Severity.ERROR)
        await fleet.stop(self.launched)
        self.launched = []
        if self.old is None:
            return
        self._event(f"Rolling back to version {self.old.version_label}.", severity=Severity.WARN)
        live = [i for i in store.instances(self.env.name) if i.state is InstanceState.IN_SERVICE]
        old_serving = [i for i in live if i.release_key == self.old.key]
        new_serving = [i for i in live if i.release_key != self.old.key]
        capacity = desired_count(
            self.old.settings, self.env.desired_capacity, self.env.scheduled_bounds
        )
        old_serving += await self._reinstate(capacity - len(old_serving))
        await fleet.set_weights({i.id: 100 for i in old_serving})
        missing = capacity - len(old_serving)
        try:
            if missing > 0:
                await self.ops.bring_up(
                    self.env, self.old, missing, deployment_id=self.env.deployment_id
                )
        except BeanpoleError as exc:
            self._event(
                f"Rollback could not start instances of version "
                f"{self.old.version_label}: {exc.message}",
                severity=Severity.FATAL,
            )
            return
        await fleet.retire(new_serving, self.old.settings.int(_PROC, "DeregistrationDelay"))
        self._event(f"Rolled back to version {self.old.version_label}.", severity=Severity.WARN)

    async def _reinstate(self, wanted: int) -> list[Instance]:
        """Put up to ``wanted`` standby instances of the old release whose check passes back
        in service (no start); the others stop."""
        fleet = self.ops.fleet
        current = {i.id: i for i in self.ops.store.instances(self.env.name)}
        standby = [
            current[i.id]
            for i in self.standby
            if i.id in current and current[i.id].state is InstanceState.STANDBY
        ]
        self.standby = []
        back = (await fleet.checked_healthy(standby))[: max(0, wanted)]
        await fleet.stop([i for i in standby if i not in back])
        if back:
            await fleet.put_in_service(back)
            label = self.old.version_label if self.old else "?"
            self._event(
                f"Put {len(back)} instance(s) of version {label} back in service without a "
                f"start: {', '.join(i.id for i in back)}.",
                severity=Severity.WARN,
            )
        return back

    # helpers -----------------------------------------------------------------------------

    def _remaining(self) -> float:
        return self.settings.int(_CMD, "Timeout") - (time.monotonic() - self.started)

    def _live(self, instance: Instance) -> bool:
        current = {i.id: i for i in self.ops.store.instances(self.env.name)}
        found = current.get(instance.id)
        return found is not None and found.state is InstanceState.IN_SERVICE

    def _refresh(self) -> None:
        current = {i.id: i for i in self.ops.store.instances(self.env.name)}
        self.serving = [current.get(i.id, i) for i in self.serving]

    def _log_tail(self, instance: Instance) -> str:
        lines = self.ops.fleet.tail_logs(instance.id, "web")
        return (" Last log lines: " + " | ".join(lines)) if lines else ""

    def _event(self, message: str, *, severity: Severity = Severity.INFO) -> None:
        self.ops.store.add_event(
            message,
            severity=severity,
            environment_id=self.env.id,
            application=self.env.application,
            version_label=self.new.version_label,
        )


def _latency(tap: Tap | None) -> gate.Latency | None:
    """What the gate needs of a tap; the percentile is only computed once it can count."""
    if tap is None:
        return None
    enough = tap.lines >= gate.MIN_LINES_FOR_LATENCY
    return gate.Latency(tap.lines, tap.latency_ms(99.0) if enough else None)
