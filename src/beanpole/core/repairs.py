"""What a repair does to converge an environment on its release and desired count (pure).

The reconciler asks this every second for each Ready environment that no operation holds;
`services.operations.Repairs` carries the answer out: stop the leftovers first, launch the
missing instances and put them in service, and only then retire the surplus, so the
environment never serves with fewer instances than it had.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from beanpole.core.model import Instance, InstanceState


@dataclass(frozen=True)
class RepairPlan:
    stop: tuple[str, ...]  # live but not in service (a crash left them starting or leaving)
    launch: int  # instances of the release to start and put in service
    retire: tuple[str, ...]  # in service: of another release, or beyond the desired count
    serving_current: int  # in service on the current release now (for the event)

    @property
    def needed(self) -> bool:
        return bool(self.stop or self.launch or self.retire)


def plan_repair(instances: Iterable[Instance], release_key: str, desired: int) -> RepairPlan:
    """From the instance records, the current release and the desired count
    (`beanpole.core.capacity.desired_count`): what to stop, launch and retire.

    Of the surplus on the current release, the newest leave first: the oldest have served
    longest and are known good.
    """
    live = [i for i in instances if i.state is not InstanceState.STOPPED]
    serving = [i for i in live if i.state is InstanceState.IN_SERVICE]
    stray = [i.id for i in live if i.state is not InstanceState.IN_SERVICE]
    good = [i for i in serving if i.release_key == release_key]
    other = [i.id for i in serving if i.release_key != release_key]
    surplus = sorted(good, key=lambda i: (i.created_at, i.id), reverse=True)
    surplus = surplus[: max(0, len(good) - desired)]
    return RepairPlan(
        stop=tuple(stray),
        launch=max(0, desired - len(good)),
        retire=(*other, *(i.id for i in surplus)),
        serving_current=len(good),
    )
