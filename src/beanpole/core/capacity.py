"""Desired capacity: how many instances an environment should run (pure).

EB keeps three numbers for an Auto Scaling group: ``MinSize`` and ``MaxSize``
(`aws:autoscaling:asg`, option settings) and the desired capacity, which scaling moves
between them. Beanpole stores the desired count on the environment, apart from the settings,
so that scaling (by hand today, by an autoscaler later) changes no setting, and a repair
converges on it instead of forcing ``MinSize``. Every place that asks "how many instances"
asks `desired_count`.
"""

from __future__ import annotations

from dataclasses import dataclass

from beanpole.core.settings import ResolvedSettings

ASG = "aws:autoscaling:asg"
MIN_SIZE_KEY = f"{ASG}:MinSize"
MAX_SIZE_KEY = f"{ASG}:MaxSize"


@dataclass(frozen=True)
class Bounds:
    min_size: int
    max_size: int

    def clamp(self, count: int) -> int:
        return max(self.min_size, min(count, self.max_size))


def bounds(settings: ResolvedSettings) -> Bounds:
    return Bounds(settings.int(ASG, "MinSize"), settings.int(ASG, "MaxSize"))


def desired_count(settings: ResolvedSettings, desired: int | None) -> int:
    """How many instances should run: the stored desired count clamped to MinSize..MaxSize
    (a settings change may have moved the bounds past it); MinSize when none is stored."""
    limits = bounds(settings)
    return limits.clamp(limits.min_size if desired is None else desired)


@dataclass(frozen=True)
class ScalePlan:
    """What `beanpole scale ENV N` changes: the desired count, and the bounds only where N
    lies outside them (``settings`` holds the new MinSize/MaxSize, empty if unchanged)."""

    desired: int
    settings: dict[str, str]
    notes: tuple[str, ...]  # one sentence per widened bound, for the event and the CLI


def plan_scale(current: Bounds, count: int) -> ScalePlan:
    changes: dict[str, str] = {}
    notes: list[str] = []
    if count < current.min_size:
        changes[MIN_SIZE_KEY] = str(count)
        notes.append(
            f"Lowered MinSize from {current.min_size} to {count} so that {count} instance(s) "
            "can run."
        )
    if count > current.max_size:
        changes[MAX_SIZE_KEY] = str(count)
        notes.append(
            f"Raised MaxSize from {current.max_size} to {count} so that {count} instance(s) "
            "can run."
        )
    return ScalePlan(count, changes, tuple(notes))
