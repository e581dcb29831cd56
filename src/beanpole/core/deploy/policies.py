"""Deployment plans: a pure function of the fleet and the settings, one per EB policy.

A plan is a list of steps the runner carries out in order:

- ``launch n``: start n instances of the new release (not in the load balancer yet);
- ``await``: wait until every launched instance passes its gate (health checks);
- ``in_service``: give the launched instances full traffic;
- ``retire ids``: drain those old instances, let in-flight requests finish, stop them;
- ``split p``: new instances get p % of new requests, the old ones the rest;
- ``evaluate s``: watch the new instances for s seconds; unhealthy means failure.

Every policy keeps one rule: an old instance leaves only after being drained, and new ones
take traffic only after passing their checks. Capacity differs: AllAtOnce drops to zero
(EB's short outage), Rolling drops by one batch but never to zero (a batch is at most the
capacity minus one), the others never drop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from beanpole.core.errors import InvalidInput


class Policy(StrEnum):
    ALL_AT_ONCE = "AllAtOnce"
    ROLLING = "Rolling"
    ROLLING_WITH_ADDITIONAL_BATCH = "RollingWithAdditionalBatch"
    IMMUTABLE = "Immutable"
    TRAFFIC_SPLITTING = "TrafficSplitting"


class Action(StrEnum):
    LAUNCH = "launch"
    AWAIT = "await"
    IN_SERVICE = "in_service"
    RETIRE = "retire"
    SPLIT = "split"
    EVALUATE = "evaluate"


@dataclass(frozen=True)
class Step:
    action: Action
    batch: int = 0  # 1-based batch number, 0 outside batches
    count: int = 0  # LAUNCH
    retire: tuple[str, ...] = ()  # RETIRE
    percent: int = 0  # SPLIT
    seconds: int = 0  # EVALUATE


@dataclass(frozen=True)
class DeployParams:
    policy: Policy = Policy.ALL_AT_ONCE
    batch_size_type: str = "Percentage"  # or "Fixed"
    batch_size: int = 100
    new_version_percent: int = 10
    evaluation_time_s: int = 300


def batch_size(capacity: int, size_type: str, size: int) -> int:
    """Instances per batch: at least 1, at most the whole fleet."""
    if size_type == "Percentage":
        per_batch = math.ceil(capacity * size / 100)
    elif size_type == "Fixed":
        per_batch = size
    else:
        raise InvalidInput(f"BatchSizeType {size_type!r} is not valid; use Percentage or Fixed.")
    return max(1, min(per_batch, max(capacity, 1)))


def plan(old: Sequence[str], capacity: int, params: DeployParams) -> list[Step]:
    """The steps that replace ``old`` (oldest first) with ``capacity`` new instances."""
    if capacity <= 0:
        return [Step(Action.RETIRE, retire=tuple(old))] if old else []
    policy = params.policy
    if policy is Policy.ALL_AT_ONCE or not old:
        steps = [Step(Action.RETIRE, retire=tuple(old))] if old else []
        return [*steps, *_bring_up(capacity, batch=1)]
    if policy is Policy.IMMUTABLE:
        steps = [Step(Action.LAUNCH, batch=1, count=1), Step(Action.AWAIT, batch=1)]
        if capacity > 1:
            steps += [Step(Action.LAUNCH, batch=2, count=capacity - 1), Step(Action.AWAIT, batch=2)]
        return [*steps, Step(Action.IN_SERVICE), Step(Action.RETIRE, retire=tuple(old))]
    if policy is Policy.TRAFFIC_SPLITTING:
        return [
            Step(Action.LAUNCH, batch=1, count=capacity),
            Step(Action.AWAIT, batch=1),
            Step(Action.SPLIT, percent=params.new_version_percent),
            Step(Action.EVALUATE, seconds=params.evaluation_time_s),
            Step(Action.IN_SERVICE),
            Step(Action.RETIRE, retire=tuple(old)),
        ]
    if policy is Policy.ROLLING:
        return _rolling(old, capacity, rolling_batch_size(capacity, params))
    size = batch_size(capacity, params.batch_size_type, params.batch_size)
    batches = math.ceil(capacity / size)
    steps = []
    for index in range(batches):
        launch = min(size, capacity - index * size)
        # The last batch also takes any old instances beyond the new capacity.
        end = len(old) if index == batches - 1 else (index + 1) * size
        leaving = tuple(old[index * size : end])
        # RollingWithAdditionalBatch: the new batch serves before an old one leaves.
        steps += _bring_up(launch, batch=index + 1)
        if leaving:
            steps.append(Step(Action.RETIRE, batch=index + 1, retire=leaving))
    return steps


def rolling_batch_size(capacity: int, params: DeployParams) -> int:
    """Instances a Rolling batch replaces: ``BatchSize``, but at most ``capacity - 1``.

    EB's default BatchSize is 100 %, and a Rolling batch of the whole fleet takes every
    instance out of service at once (under load, half the requests failed with 503). So a
    batch always leaves one instance serving; with a single instance it is 1, and `plan`
    starts the new one before the old one leaves.
    """
    return max(
        1, min(batch_size(capacity, params.batch_size_type, params.batch_size), capacity - 1)
    )


def rolling_note(old_count: int, capacity: int, params: DeployParams) -> str | None:
    """The event that tells why a Rolling deployment does not do what BatchSize says."""
    if params.policy is not Policy.ROLLING or old_count == 0 or capacity <= 0:
        return None
    requested = batch_size(capacity, params.batch_size_type, params.batch_size)
    size = rolling_batch_size(capacity, params)
    if size < requested:
        return (
            f"Rolling batch size reduced from {requested} to {size} instance(s) so that at "
            "least one instance stays in service during the deployment."
        )
    if min(old_count, capacity) == 1:
        return (
            "Rolling with one instance: the new instance is put in service before the old "
            "one leaves."
        )
    return None


def _rolling(old: Sequence[str], capacity: int, size: int) -> list[Step]:
    """Per batch: retire old ones, bring the new ones up. An old instance whose leaving would
    empty the backend (one instance, or fewer old ones than the batch) leaves only after
    the batch's new instances are in service."""
    batches = math.ceil(capacity / size)
    serving = len(old)
    steps: list[Step] = []
    for index in range(batches):
        launch = min(size, capacity - index * size)
        # The last batch also takes any old instances beyond the new capacity.
        end = len(old) if index == batches - 1 else (index + 1) * size
        leaving = tuple(old[index * size : end])
        first, later = leaving[: max(0, serving - 1)], leaving[max(0, serving - 1) :]
        if first:
            steps.append(Step(Action.RETIRE, batch=index + 1, retire=first))
        steps += _bring_up(launch, batch=index + 1)
        if later:
            steps.append(Step(Action.RETIRE, batch=index + 1, retire=later))
        serving += launch - len(leaving)
    return steps


def _bring_up(count: int, *, batch: int) -> list[Step]:
    return [
        Step(Action.LAUNCH, batch=batch, count=count),
        Step(Action.AWAIT, batch=batch),
        Step(Action.IN_SERVICE, batch=batch),
    ]


def split_weights(new: int, old: int, percent: int, scale: int = 256) -> tuple[int, int]:
    """Per-instance HAProxy weights so the ``new`` instances together get ``percent`` % of
    requests and the ``old`` ones the rest (round robin is weighted per server)."""
    if new == 0 or percent >= 100:
        return scale, 0
    if old == 0 or percent <= 0:
        return 0, scale
    per_new = percent / new
    per_old = (100 - percent) / old
    top = max(per_new, per_old)
    return max(1, round(scale * per_new / top)), max(1, round(scale * per_old / top))
