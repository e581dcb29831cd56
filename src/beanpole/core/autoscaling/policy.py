"""The scaling policy in force: EB's trigger when the environment sets one, else Beanpole's.

EB's trigger (`aws:autoscaling:trigger`) is a pair of CloudWatch alarms: the measure's
``Statistic`` over each ``Period`` (minutes) is compared with ``UpperThreshold`` and
``LowerThreshold``; when it stays past one for ``max(EvaluationPeriods, BreachDuration /
Period)`` consecutive periods the group grows by ``UpperBreachScaleIncrement`` or changes by
``LowerBreachScaleIncrement``, then waits ``Cooldown`` seconds. EB's defaults watch
NetworkOut over 5 minutes: an environment that sets any trigger option gets those meanings
and defaults for the options it leaves out.

An environment that sets none gets Beanpole's default policy (`docs/autoscaling.md` gives
the reasons for its numbers): CPU-based target tracking in seconds, not minutes.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from beanpole.core.autoscaling.measures import MEASURES, to_own_unit
from beanpole.core.errors import InvalidInput

TRIGGER = "aws:autoscaling:trigger"
OWN = "beanpole:autoscaling"  # the default policy's numbers
COOLDOWN_KEY = "aws:autoscaling:asg:Cooldown"
WINDOW_S = 10.0  # the health pipeline's window: every measure is known per 10 s


@dataclass(frozen=True)
class Trigger:
    """EB's trigger, thresholds in the measure's own unit (`measures.MEASURES`)."""

    measure: str
    statistic: str  # Minimum, Maximum, Sum, Average
    unit: str  # as given, for messages
    period_s: float
    periods: int  # consecutive periods that must breach
    upper: float
    lower: float
    upper_increment: int
    lower_increment: int  # negative


@dataclass(frozen=True)
class DefaultPolicy:
    """Beanpole's own: average CPUUtilization of the in-service instances, per 10 s window.

    Out: one window above ``scale_out_above`` → enough instances to bring the average to
    ``target`` (at least one more). In: the instances' CPU added up stayed, in every window
    of the last ``scale_in_after_s``, low enough for fewer instances to run at or under
    ``target`` at that span's peak → that many. The gap between ``target`` and
    ``scale_out_above`` is what keeps it from flapping: after scaling in, the projected
    average is at most ``target``.
    """

    target: float = 50.0
    scale_out_above: float = 70.0
    scale_in_after_s: float = 120.0


@dataclass(frozen=True)
class Policy:
    trigger: Trigger | None  # None: the default policy
    default: DefaultPolicy
    cooldown_s: float  # after an activity; the default policy's is 0 unless Cooldown is set

    @property
    def measure(self) -> str:
        return self.trigger.measure if self.trigger else "CPUUtilization"

    def describe(self) -> str:
        t = self.trigger
        if t is None:
            d = self.default
            text = (
                f"Beanpole's default: average CPUUtilization of the in-service instances; out "
                f"when a 10 s window is above {d.scale_out_above:.0f} %, to the count that "
                f"brings it to {d.target:.0f} %; in when {d.scale_in_after_s:.0f} s stay low "
                f"enough for fewer instances to keep it under {d.target:.0f} %"
            )
        else:
            text = (
                f"{t.statistic} {t.measure} over {_span(t.period_s)} periods, "
                f"{t.periods} in a row: out by {t.upper_increment} above {t.upper:g}, in by "
                f"{-t.lower_increment} below {t.lower:g} ({MEASURES[t.measure].unit})"
            )
        if self.cooldown_s:
            text += f"; cooldown {self.cooldown_s:.0f} s"
        return text + "."


def policy_from(values: Mapping[str, str], explicit: Collection[str]) -> Policy:
    """The policy of resolved settings ``values``; ``explicit`` are the keys some layer set
    (the rest are defaults): whether a trigger option or Cooldown was chosen."""
    chosen = [k for k in explicit if k.startswith(TRIGGER + ":")]
    cooldown = float(values[COOLDOWN_KEY])
    default = DefaultPolicy(
        target=float(values[f"{OWN}:TargetCPU"]),
        scale_out_above=float(values[f"{OWN}:ScaleOutCPU"]),
        scale_in_after_s=float(values[f"{OWN}:ScaleInAfter"]),
    )
    if default.target >= default.scale_out_above:
        raise InvalidInput(
            f"{OWN} TargetCPU ({default.target:g}) must be below ScaleOutCPU "
            f"({default.scale_out_above:g}): after scaling out the average would still be "
            "above it and scale out again. Lower TargetCPU or raise ScaleOutCPU."
        )
    if not chosen:
        return Policy(None, default, cooldown if COOLDOWN_KEY in explicit else 0.0)

    def get(name: str) -> str:
        return values[f"{TRIGGER}:{name}"]

    measure = get("MeasureName")
    unit = get("Unit") or MEASURES[measure].unit
    try:
        upper = to_own_unit(measure, unit, float(get("UpperThreshold")))
        lower = to_own_unit(measure, unit, float(get("LowerThreshold")))
    except ValueError as exc:
        raise InvalidInput(f"{TRIGGER}: {exc}") from None
    if lower >= upper:
        raise InvalidInput(
            f"{TRIGGER} LowerThreshold ({get('LowerThreshold')}) is not below UpperThreshold "
            f"({get('UpperThreshold')}): the trigger would scale in and out at once. Lower "
            "LowerThreshold or raise UpperThreshold."
        )
    period_s = int(get("Period")) * 60.0
    breach_s = int(get("BreachDuration")) * 60.0
    trigger = Trigger(
        measure=measure,
        statistic=get("Statistic"),
        unit=unit,
        period_s=period_s,
        periods=max(int(get("EvaluationPeriods")), math.ceil(breach_s / period_s)),
        upper=upper,
        lower=lower,
        upper_increment=int(get("UpperBreachScaleIncrement")),
        lower_increment=int(get("LowerBreachScaleIncrement")),
    )
    return Policy(trigger, default, cooldown)


def check_policy(values: Mapping[str, str]) -> None:
    """Refuse a trigger whose options do not fit together (a unit of another measure,
    thresholds the wrong way round), whether or not it is in force yet."""
    policy_from(values, [f"{TRIGGER}:MeasureName"])


def _span(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
