"""Desired capacity: how many instances an environment should run (pure).

EB keeps three numbers for an Auto Scaling group: ``MinSize`` and ``MaxSize``
(`aws:autoscaling:asg`, option settings) and the desired capacity, which scaling moves
between them. Beanpole stores the desired count on the environment, apart from the settings,
so that auto scaling changes no setting, and a repair converges on it instead of forcing
``MinSize``. A scheduled action that fired may replace the bounds (`Override`). Every place
that asks "how many instances" asks `desired_count`.
"""

from __future__ import annotations

from dataclasses import dataclass

from beanpole.core.autoscaling.bounds import Bounds, Override
from beanpole.core.errors import InvalidInput
from beanpole.core.settings import ResolvedSettings

ASG = "aws:autoscaling:asg"
MIN_SIZE_KEY = f"{ASG}:MinSize"
MAX_SIZE_KEY = f"{ASG}:MaxSize"

__all__ = ["MAX_SIZE_KEY", "MIN_SIZE_KEY", "Bounds", "Override", "ScalePlan", "bounds",
           "desired_count", "plan_scale"]  # fmt: skip


def bounds(settings: ResolvedSettings, override: Override | None = None) -> Bounds:
    low, high = settings.int(ASG, "MinSize"), settings.int(ASG, "MaxSize")
    if override is not None:
        low = low if override.min_size is None else override.min_size
        high = high if override.max_size is None else override.max_size
        if override.max_size is None:
            high = max(high, low)
        elif override.min_size is None:
            low = min(low, high)
    return Bounds(low, high)


def desired_count(
    settings: ResolvedSettings, desired: int | None, override: Override | None = None
) -> int:
    """How many instances should run: the stored desired count clamped to MinSize..MaxSize
    (a settings change may have moved the bounds past it); MinSize when none is stored.
    ``override``: a scheduled action's bounds in force."""
    limits = bounds(settings, override)
    return limits.clamp(limits.min_size if desired is None else desired)


@dataclass(frozen=True)
class ScalePlan:
    """What a scale changes: the bounds (``settings`` holds the new MinSize/MaxSize) and the
    desired count (None: the current one, clamped into the new bounds)."""

    desired: int | None
    settings: dict[str, str]
    notes: tuple[str, ...]  # one sentence per change, for the event and the CLI


def plan_scale(
    current: Bounds,
    count: int | None = None,
    *,
    min_size: int | None = None,
    max_size: int | None = None,
) -> ScalePlan:
    """``beanpole scale ENV N`` pins the environment at N (MinSize = MaxSize = N, as
    ``eb scale``); ``--min A --max B`` sets the bounds auto scaling moves within."""
    if count is not None:
        if min_size is not None or max_size is not None:
            raise InvalidInput(
                "Give either a count (beanpole scale ENV N pins it at N) or --min/--max "
                "(the bounds auto scaling moves within), not both."
            )
        min_size, max_size = count, max(count, 1)
    low = current.min_size if min_size is None else min_size
    high = current.max_size if max_size is None else max_size
    if min_size is None and max_size is None:
        raise InvalidInput("Give a count, or --min and/or --max.")
    if low > high:
        raise InvalidInput(
            f"MinSize {low} would be above MaxSize {high}. "
            + (
                "Give --max too, at least as large."
                if max_size is None
                else "Give --min too, at most as large."
                if min_size is None
                else "Swap them."
            )
        )
    changes: dict[str, str] = {}
    notes: list[str] = []
    if low != current.min_size or min_size is not None:
        changes[MIN_SIZE_KEY] = str(low)
    if high != current.max_size or max_size is not None:
        changes[MAX_SIZE_KEY] = str(high)
    if count is not None:
        notes.append(f"Pinned at {count} instance(s): MinSize {low}, MaxSize {high}.")
    else:
        notes.append(f"Auto scaling moves between MinSize {low} and MaxSize {high}.")
    return ScalePlan(count, changes, tuple(notes))
