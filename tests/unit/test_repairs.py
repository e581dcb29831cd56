"""Repairs decide from records alone (issue 7, parts 3 and 7): no process is started here."""

from beanpole.core.model import Instance, InstanceState
from beanpole.core.repairs import RepairPlan, plan_repair

IN = InstanceState.IN_SERVICE


def inst(id_: str, key: str = "r1", state: InstanceState = IN, at: float = 0.0) -> Instance:
    return Instance(id_, "shop", "v1", key, 1, 20000, state, at)


def test_nothing_to_do_at_the_desired_count_of_the_current_release():
    plan = plan_repair([inst("i-1"), inst("i-2")], "r1", 2)
    assert plan == RepairPlan(stop=(), launch=0, retire=(), serving_current=2)
    assert not plan.needed


def test_the_desired_count_above_min_size_is_kept_not_forced_down():
    """Issue 7, part 4: three serving with a desired count of 3 stay three, whatever
    MinSize is (the caller passes `desired_count`, not MinSize)."""
    assert not plan_repair([inst("i-1"), inst("i-2"), inst("i-3")], "r1", 3).needed


def test_a_lost_instance_is_launched_again():
    plan = plan_repair([inst("i-1"), inst("i-2", state=InstanceState.STOPPED)], "r1", 2)
    assert (plan.launch, plan.stop, plan.retire) == (1, (), ())
    assert plan.needed and plan.serving_current == 1


def test_the_newest_surplus_instances_leave_first():
    records = [inst("i-old", at=1), inst("i-new", at=3), inst("i-mid", at=2)]
    plan = plan_repair(records, "r1", 1)
    assert plan.retire == ("i-new", "i-mid") and plan.launch == 0


def test_instances_of_another_release_are_replaced_new_first():
    """After a crash mid-deploy: the current release's instances are started and the other
    release's retired (the carrying-out puts the new ones in service before retiring)."""
    records = [inst("i-a", key="r0"), inst("i-b", key="r0"), inst("i-c")]
    plan = plan_repair(records, "r1", 2)
    assert (plan.launch, plan.retire, plan.serving_current) == (1, ("i-a", "i-b"), 1)


def test_leftovers_not_in_service_are_stopped_and_do_not_count():
    records = [
        inst("i-1"),
        inst("i-p", state=InstanceState.PENDING),
        inst("i-d", state=InstanceState.DRAINING),
        inst("i-s", state=InstanceState.STOPPING),
    ]
    plan = plan_repair(records, "r1", 2)
    assert plan.stop == ("i-p", "i-d", "i-s")
    assert plan.launch == 1 and plan.retire == ()


def test_scaled_to_zero_retires_everything():
    plan = plan_repair([inst("i-1"), inst("i-2", key="r0")], "r1", 0)
    assert plan.retire == ("i-2", "i-1") and plan.launch == 0
