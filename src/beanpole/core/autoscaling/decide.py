"""The auto scaling decision: metrics history, policy, fleet and clock in; desired count out.

Pure: `services/autoscaler.py` gathers the inputs every 10 s (when the health pipeline
closes a window) and carries a changed count out. The rules, in order:

1. While a deployment, a configuration change or a scaling activity runs, nothing is
   decided: the decision waits (metrics of a fleet in flux describe no steady state).
2. A scheduled action's new ``DesiredCapacity``, then the bounds: a desired count outside
   ``MinSize..MaxSize`` moves inside.
3. Instances still starting are capacity to come: no decision on the load until every
   instance of the desired count is in service, and only windows that began after that
   (``settled_at``) count, so the load of a smaller fleet never scales a grown one again
   (the default policy's scale-in reads the demand, the CPU added up, which any fleet
   measures alike).
4. ``Cooldown`` after an activity, when the policy has one.
5. The policy (`policy.Policy`): EB's trigger, or Beanpole's default target tracking.

Missing metrics never read as zero load: a window in which an in-service instance reported
no CPU (its first sample, a process just restarted), or with no request to time for a
latency measure, is missing, and a breach needs every window of its span.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from beanpole.core.autoscaling.bounds import Bounds
from beanpole.core.autoscaling.measures import MEASURES, show
from beanpole.core.autoscaling.policy import WINDOW_S, DefaultPolicy, Policy, Trigger

_SLACK_S = 1.0  # windows are aligned; this much jitter still counts as back to back


@dataclass(frozen=True)
class InstanceSample:
    """One in-service instance over one 10 s window; None: not measured."""

    cpu_percent: float | None = None  # of one core
    requests: int = 0
    latency_sum_s: float = 0.0  # over its requests, for the mean
    bytes_in: int | None = None
    bytes_out: int | None = None


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    instances: Mapping[str, InstanceSample]  # the instances in service during it
    healthy: int = 0  # in-service instances whose load-balancer check passes
    unhealthy: int = 0


@dataclass(frozen=True)
class FleetState:
    desired: int  # the stored desired count
    in_service: int
    starting: int  # launched, not yet in service: capacity to come
    settled_at: float | None  # since when `desired` instances have served
    last_activity_at: float | None  # when the last scaling activity ended (cooldown)
    busy: str | None = None  # "a deployment is in progress": the decision waits


@dataclass(frozen=True)
class Scheduled:
    """A scheduled action's firing not yet carried out that sets DesiredCapacity."""

    action: str
    desired: int


@dataclass(frozen=True)
class Decision:
    desired: int
    changed: bool
    message: str  # the event when changed; else why the count holds
    value: float | None = None  # the measure now (its own unit), for `beanpole autoscale`

    @property
    def waiting(self) -> bool:
        return not self.changed and self.message.startswith("Waiting")


def decide(  # noqa: PLR0911 (one return per rule, in the docstring's order)
    policy: Policy,
    limits: Bounds,
    fleet: FleetState,
    history: Sequence[Window],
    now: float,
    *,
    scheduled: Scheduled | None = None,
    bounds_source: str = "",
) -> Decision:
    """What the desired count should be now, and why (``bounds_source``: where the bounds
    come from when not the settings, e.g. " (scheduled action Nightly)")."""
    n = fleet.desired
    if fleet.busy:
        return Decision(n, False, f"Waiting: {fleet.busy}.")
    if scheduled is not None:
        target = limits.clamp(scheduled.desired)
        if target != n:
            return _change(
                n,
                target,
                f"scheduled action {scheduled.action} sets DesiredCapacity {scheduled.desired}",
            )
    if n < limits.min_size:
        return _change(n, limits.min_size, f"MinSize is {limits.min_size}{bounds_source}")
    if n > limits.max_size:
        return _change(n, limits.max_size, f"MaxSize is {limits.max_size}{bounds_source}")
    if fleet.starting or fleet.in_service < n or fleet.settled_at is None:
        coming = max(fleet.starting, n - fleet.in_service, 1)
        return Decision(
            n, False, f"Waiting for {coming} instance(s) to serve before judging the load."
        )
    settled = [w for w in history if w.start >= fleet.settled_at - _SLACK_S]
    if policy.cooldown_s and fleet.last_activity_at is not None:
        left = fleet.last_activity_at + policy.cooldown_s - now
        if left > 0:
            return Decision(n, False, f"Cooldown: {left:.0f} s left before the next activity.")
    if policy.trigger is None:
        return _default(policy.default, limits, n, settled, history, now)
    return _trigger(policy.trigger, limits, n, settled)


def _change(n: int, target: int, because: str) -> Decision:
    way = "out" if target > n else "in"
    return Decision(
        target, True, f"Scaling {way} from {n} to {target} instance(s): {because}.", None
    )


# Beanpole's default policy -------------------------------------------------------------


def _default(  # noqa: PLR0911 (waiting, at MaxSize, out, holding twice, in)
    rules: DefaultPolicy,
    limits: Bounds,
    n: int,
    settled: Sequence[Window],
    history: Sequence[Window],
    now: float,
) -> Decision:
    """Out from the settled fleet's average; in from the demand (the instances' CPU added
    up), which does not depend on how many instances carried it, so a scale-in may follow
    another without waiting for a new span of calm."""
    averages = [_mean_cpu(w) for w in settled]
    if not settled or averages[-1] is None:
        return Decision(n, False, "Waiting for CPU figures of every in-service instance.")
    latest = averages[-1]
    assert latest is not None
    if latest > rules.scale_out_above:
        if n >= limits.max_size:
            return Decision(
                n,
                False,
                f"At MaxSize ({limits.max_size}): average CPUUtilization "
                f"{show('CPUUtilization', latest)} > {rules.scale_out_above:.0f} %, but no more "
                "instances may run.",
                latest,
            )
        wanted = max(n + 1, math.ceil(n * latest / rules.target))
        target = min(limits.max_size, wanted)
        return Decision(
            target,
            True,
            f"Scaling out from {n} to {target} instance(s): average CPUUtilization "
            f"{show('CPUUtilization', latest)} > {rules.scale_out_above:.0f} % for "
            f"{WINDOW_S:.0f} s.",
            latest,
        )
    holding = Decision(
        n, False, f"Holding: average CPUUtilization {show('CPUUtilization', latest)}.", latest
    )
    span = _recent_span(history, rules.scale_in_after_s, now)
    if span is None:
        return holding
    totals = [_total_cpu(history[i]) for i in span]
    if any(t is None for t in totals):
        return holding
    peak = max(t for t in totals if t is not None)
    target = max(limits.min_size, math.ceil(peak / rules.target - 1e-9))
    if target >= n:
        return Decision(
            n,
            False,
            f"Holding: average CPUUtilization {show('CPUUtilization', latest)}, too high to "
            f"run fewer than {n} under {rules.target:.0f} %.",
            latest,
        )
    projected = peak / target if target else 0.0
    return Decision(
        target,
        True,
        f"Scaling in from {n} to {target} instance(s): the instances' CPUUtilization added up "
        f"to at most {show('CPUUtilization', peak)} for {rules.scale_in_after_s:.0f} s "
        f"(about {show('CPUUtilization', projected)} each on {target}, under "
        f"{rules.target:.0f} %).",
        latest,
    )


def _total_cpu(w: Window) -> float | None:
    values = [s.cpu_percent for s in w.instances.values()]
    if any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def _mean_cpu(w: Window) -> float | None:
    values = [s.cpu_percent for s in w.instances.values()]
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def _recent_span(windows: Sequence[Window], span_s: float, now: float) -> list[int] | None:
    """Indexes of the back-to-back windows covering the last ``span_s`` (up to the latest
    closed one), or None when they do not reach that far back or have a gap."""
    count = max(1, math.ceil(span_s / WINDOW_S - 1e-9))
    if len(windows) < count:
        return None
    picked = list(range(len(windows) - count, len(windows)))
    if now - windows[-1].end > 2 * WINDOW_S + _SLACK_S:  # the figures stopped coming
        return None
    for a, b in itertools.pairwise(picked):
        if abs(windows[b].start - windows[a].end) > _SLACK_S:
            return None
    return picked


# EB's trigger ---------------------------------------------------------------------------


def _trigger(t: Trigger, limits: Bounds, n: int, windows: Sequence[Window]) -> Decision:
    per_period = max(1, round(t.period_s / WINDOW_S))
    needed = t.periods * per_period
    if len(windows) < needed:
        return Decision(
            n,
            False,
            f"Waiting for {t.periods} full period(s) of {_span(t.period_s)} of {t.measure}.",
        )
    recent = list(windows[-needed:])
    for a, b in itertools.pairwise(recent):
        if abs(b.start - a.end) > _SLACK_S:
            return Decision(n, False, f"Waiting: {t.measure} has a gap in its recent figures.")
    values: list[float] = []
    for p in range(t.periods):
        value = period_value(t.measure, t.statistic, recent[p * per_period : (p + 1) * per_period])
        if value is None:
            return Decision(n, False, f"Waiting: {t.measure} is missing in the recent figures.")
        values.append(value)
    latest = values[-1]
    stat = t.statistic.lower()
    shown = show(t.measure, latest)
    duration = _span(t.period_s * t.periods)
    sides = (
        ("out", ">", "above", t.upper, t.upper_increment, "MaxSize", limits.max_size),
        ("in", "<", "below", t.lower, t.lower_increment, "MinSize", limits.min_size),
    )
    for way, sign, side, threshold, step, bound_name, bound in sides:
        if not all(v > threshold if way == "out" else v < threshold for v in values):
            continue
        target = limits.clamp(n + step)
        if target == n:
            return Decision(
                n, False, f"At {bound_name} ({bound}): {stat} {t.measure} {shown} is {side} "
                f"{show(t.measure, threshold)}.", latest
            )  # fmt: skip
        return Decision(
            target,
            True,
            f"Scaling {way} from {n} to {target} instance(s): {stat} {t.measure} {shown} "
            f"{sign} {show(t.measure, threshold)} for {duration}.",
            latest,
        )
    return Decision(
        n,
        False,
        f"Holding: {stat} {t.measure} {shown}, between {show(t.measure, t.lower)} and "
        f"{show(t.measure, t.upper)}.",
        latest,
    )


def period_value(measure: str, statistic: str, windows: Sequence[Window]) -> float | None:
    """The statistic of one period's data points, in the measure's own unit; None when a
    data point is missing (never read as zero)."""
    if not windows:
        return None
    if not MEASURES[measure].per_instance:
        counts = [
            float(w.healthy if measure == "HealthyHostCount" else w.unhealthy) for w in windows
        ]
        return _statistic(statistic, counts)
    members = set().union(*(w.instances.keys() for w in windows))
    if not members:
        return None
    if measure in ("Latency", "TargetResponseTime"):
        return _latency(statistic, members, windows)
    points: list[float] = []
    for instance in sorted(members):
        samples = [w.instances[instance] for w in windows if instance in w.instances]
        point = _instance_point(measure, samples)
        if point is None:
            return None
        points.append(point)
    return _statistic(statistic, points)


def _instance_point(measure: str, samples: Sequence[InstanceSample]) -> float | None:
    if measure == "CPUUtilization":
        cpu = [s.cpu_percent for s in samples]
        if any(c is None for c in cpu):
            return None
        return sum(c for c in cpu if c is not None) / len(cpu)
    if measure == "RequestCount":
        return float(sum(s.requests for s in samples))
    counted = [s.bytes_in if measure == "NetworkIn" else s.bytes_out for s in samples]
    if any(b is None for b in counted):
        return None
    return float(sum(b for b in counted if b is not None))


def _latency(statistic: str, members: set[str], windows: Sequence[Window]) -> float | None:
    total_requests = 0
    total_time = 0.0
    means: list[float] = []
    for instance in sorted(members):
        samples = [w.instances[instance] for w in windows if instance in w.instances]
        requests = sum(s.requests for s in samples)
        elapsed = sum(s.latency_sum_s for s in samples)
        total_requests += requests
        total_time += elapsed
        if requests:
            means.append(elapsed / requests)
    if not total_requests:
        return None  # no request to time is no latency, not a latency of zero
    if statistic == "Average":
        return total_time / total_requests
    return _statistic(statistic, means)


def _statistic(statistic: str, points: Sequence[float]) -> float | None:
    if not points:
        return None
    if statistic == "Minimum":
        return min(points)
    if statistic == "Maximum":
        return max(points)
    if statistic == "Sum":
        return sum(points)
    return sum(points) / len(points)


def _span(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
