"""Issue 9, part 4: the auto scaling decision, a pure function of history, policy, fleet and
clock. Times here are plain numbers: the clock is whatever `now` the test passes."""

from __future__ import annotations

import pytest

from beanpole.core.autoscaling.bounds import Bounds
from beanpole.core.autoscaling.decide import (
    FleetState,
    InstanceSample,
    Scheduled,
    Window,
    decide,
    period_value,
)
from beanpole.core.autoscaling.policy import policy_from
from beanpole.core.errors import InvalidInput
from beanpole.core.settings import resolve

T0 = 1_000_000.0  # a window boundary (a multiple of 10)
DEFAULT = policy_from(resolve().values, ())


def windows(cpu_per_window, start=T0, instances=("i-1",)):
    """One window per entry; an entry is a CPU % for every instance, or a dict per instance
    (None: not measured)."""
    out = []
    for n, cpu in enumerate(cpu_per_window):
        per = cpu if isinstance(cpu, dict) else dict.fromkeys(instances, cpu)
        out.append(
            Window(
                start + 10 * n,
                start + 10 * (n + 1),
                {i: InstanceSample(cpu_percent=c) for i, c in per.items()},
            )
        )
    return out


def steady(n, settled_at=T0, last_activity_at=None, busy=None):
    return FleetState(n, n, 0, settled_at, last_activity_at, busy)


def end_of(history):
    return history[-1].end + 1.0  # the monitor closes a window 1 s after it ends


def test_one_saturated_window_scales_out_to_the_count_that_reaches_the_target():
    history = windows([20, 95])
    d = decide(DEFAULT, Bounds(1, 4), steady(1), history, end_of(history))
    assert (d.desired, d.changed) == (2, True)
    assert d.message == (
        "Scaling out from 1 to 2 instance(s): average CPUUtilization 95 % > 70 % for 10 s."
    )
    # three instances at 90 % want ceil(3 * 90 / 50) = 6, capped by MaxSize
    history = windows([90], instances=("a", "b", "c"))
    d = decide(DEFAULT, Bounds(1, 5), steady(3), history, end_of(history))
    assert d.desired == 5


def test_at_max_size_it_holds_and_says_why():
    history = windows([99])
    d = decide(DEFAULT, Bounds(1, 1), steady(1), history, end_of(history))
    assert not d.changed and d.message.startswith("At MaxSize (1)")


def test_scaling_in_needs_two_minutes_of_low_load_and_goes_straight_to_what_is_needed():
    low = windows([3] * 12, instances=("a", "b", "c", "d"))
    d = decide(DEFAULT, Bounds(1, 4), steady(4), low[:11], end_of(low[:11]))
    assert not d.changed  # 110 s is not 120 s
    d = decide(DEFAULT, Bounds(1, 4), steady(4), low, end_of(low))
    assert (d.desired, d.changed) == (1, True)
    assert d.message == (
        "Scaling in from 4 to 1 instance(s): the instances' CPUUtilization added up to at "
        "most 12 % for 120 s (about 12 % each on 1, under 50 %)."
    )


def test_scaling_in_counts_the_demand_across_a_change_of_the_fleet():
    """The CPU the instances add up to does not depend on how many carried it: after
    scaling in from 3 to 2, the calm before the change still counts for going on to 1."""
    three = windows([4] * 9, instances=("a", "b", "c"))
    two = windows([6] * 3, start=three[-1].end, instances=("a", "b"))
    history = three + two
    fleet = steady(2, settled_at=two[0].start)
    d = decide(DEFAULT, Bounds(1, 4), fleet, history, end_of(history))
    assert (d.desired, d.changed) == (1, True)
    # the span ends with the latest window: a busy window before it keeps the count
    busy = windows([40] * 3, start=three[-1].end, instances=("a", "b"))
    assert not decide(DEFAULT, Bounds(1, 4), fleet, three + busy, end_of(busy)).changed


def test_scaling_in_respects_min_size():
    low = windows([0] * 12, instances=("a", "b", "c"))
    assert decide(DEFAULT, Bounds(2, 4), steady(3), low, end_of(low)).desired == 2


def test_no_flapping_scale_in_keeps_the_projected_load_under_the_target():
    # 2 instances at 30 %: one would run at 60 %, above the 50 % target, so it holds
    history = windows([30] * 12, instances=("a", "b"))
    d = decide(DEFAULT, Bounds(1, 4), steady(2), history, end_of(history))
    assert not d.changed and d.message.startswith("Holding")
    # 4 at 20 %: 2 would run at 40 %, under 50 %, and under the 70 % that scales out again
    history = windows([20] * 12, instances=("a", "b", "c", "d"))
    d = decide(DEFAULT, Bounds(1, 4), steady(4), history, end_of(history))
    assert d.desired == 2
    after = windows([40] * 12, instances=("a", "b"))
    assert not decide(DEFAULT, Bounds(1, 4), steady(2), after, end_of(after)).changed


def test_a_peak_in_the_span_blocks_a_scale_in():
    history = windows([5] * 6 + [45] + [5] * 5, instances=("a", "b"))
    assert not decide(DEFAULT, Bounds(1, 4), steady(2), history, end_of(history)).changed


def test_missing_cpu_is_never_read_as_zero_load():
    # the new instance's first sample is no measurement: no decision on that window
    history = windows([{"a": 99, "b": None}])
    d = decide(DEFAULT, Bounds(1, 4), steady(2), history, end_of(history))
    assert not d.changed and d.waiting
    # a gap of figures in the span blocks a scale-in
    low = windows([{"a": 1, "b": 1}] * 5 + [{"a": 1, "b": None}] + [{"a": 1, "b": 1}] * 6)
    assert not decide(DEFAULT, Bounds(1, 4), steady(2), low, end_of(low)).changed
    # figures that stopped coming (the last window is old) block it too
    low = windows([1] * 12, instances=("a", "b"))
    assert not decide(DEFAULT, Bounds(1, 4), steady(2), low, end_of(low) + 60).changed


def test_an_instance_still_starting_is_capacity_to_come():
    history = windows([99])
    fleet = FleetState(2, 1, 1, None, None)  # desired 2, one serving, one starting
    d = decide(DEFAULT, Bounds(1, 4), fleet, history, end_of(history))
    assert not d.changed
    assert d.message == "Waiting for 1 instance(s) to serve before judging the load."


def test_windows_from_before_the_fleet_settled_do_not_count():
    history = windows([99, 99, 40], instances=("a", "b"))
    settled = history[2].start  # the second instance served from the third window on
    d = decide(DEFAULT, Bounds(1, 4), steady(2, settled_at=settled), history, end_of(history))
    assert not d.changed  # the 99 % of one instance does not scale the grown fleet again
    d = decide(DEFAULT, Bounds(1, 4), steady(2, settled_at=T0), history[:2], end_of(history[:2]))
    assert d.changed  # whereas the same figures of the settled fleet would


def test_the_decision_waits_while_an_operation_runs():
    history = windows([99])
    fleet = steady(1, busy="an operation (deployment) is in progress")
    d = decide(DEFAULT, Bounds(2, 4), fleet, history, end_of(history))
    assert not d.changed and d.message.startswith("Waiting: an operation")


def test_bounds_move_the_count_first_and_name_their_source():
    d = decide(DEFAULT, Bounds(3, 6), steady(1), [], T0, bounds_source=" (scheduled action AM)")
    assert (d.desired, d.message) == (
        3,
        "Scaling out from 1 to 3 instance(s): MinSize is 3 (scheduled action AM).",
    )
    d = decide(DEFAULT, Bounds(1, 2), steady(4), [], T0)
    assert d.message == "Scaling in from 4 to 2 instance(s): MaxSize is 2."


def test_a_scheduled_desired_capacity_is_clamped_into_the_bounds():
    d = decide(DEFAULT, Bounds(1, 4), steady(1), [], T0, scheduled=Scheduled("Rush", 9))
    assert d.desired == 4
    assert "scheduled action Rush sets DesiredCapacity 9" in d.message


def test_cooldown_holds_only_when_the_policy_has_one():
    history = windows([99])
    fleet = steady(1, last_activity_at=end_of(history) - 30)
    assert decide(DEFAULT, Bounds(1, 4), fleet, history, end_of(history)).changed
    cooled = policy_from(
        resolve({"aws:autoscaling:asg:Cooldown": "60"}).values, {"aws:autoscaling:asg:Cooldown"}
    )
    d = decide(cooled, Bounds(1, 4), fleet, history, end_of(history))
    assert not d.changed and d.message == "Cooldown: 30 s left before the next activity."


# EB's trigger -----------------------------------------------------------------------------


def trigger(**options):
    values = {f"aws:autoscaling:trigger:{k}": str(v) for k, v in options.items()}
    return policy_from(resolve(values).values, set(values))


def test_any_trigger_option_selects_eb_meanings_with_eb_defaults():
    policy = trigger(UpperThreshold=8_000_000)
    assert policy.trigger is not None
    t = policy.trigger
    assert (t.measure, t.statistic, t.period_s, t.periods) == ("NetworkOut", "Average", 300, 1)
    assert (t.upper_increment, t.lower_increment, policy.cooldown_s) == (1, -1, 360)


def test_the_breach_must_last_every_period_of_the_breach_duration():
    policy = trigger(
        MeasureName="CPUUtilization", Unit="Percent", Period=1, BreachDuration=2,
        UpperThreshold=60, LowerThreshold=10,
    )  # fmt: skip
    assert policy.trigger is not None and policy.trigger.periods == 2
    history = windows([90] * 6 + [50] * 6)  # the first minute high, the second not
    no_cooldown = steady(1)
    assert not decide(policy, Bounds(1, 4), no_cooldown, history, end_of(history)).changed
    history = windows([90] * 12)
    d = decide(policy, Bounds(1, 4), no_cooldown, history, end_of(history))
    assert (d.desired, d.message) == (
        2,
        "Scaling out from 1 to 2 instance(s): average CPUUtilization 90 % > 60 % for 2 min.",
    )


def test_increments_apply_and_stay_within_the_bounds():
    policy = trigger(
        MeasureName="RequestCount", Statistic="Sum", Period=1, BreachDuration=1,
        UpperThreshold=1000,
        LowerThreshold=10, UpperBreachScaleIncrement=3, LowerBreachScaleIncrement=-2,
    )  # fmt: skip
    busy = [
        Window(T0 + 10 * n, T0 + 10 * (n + 1), {"a": InstanceSample(requests=500)})
        for n in range(6)
    ]
    assert decide(policy, Bounds(1, 3), steady(1), busy, end_of(busy)).desired == 3
    quiet = [
        Window(T0 + 10 * n, T0 + 10 * (n + 1), {i: InstanceSample(requests=0) for i in "abc"})
        for n in range(6)
    ]
    d = decide(policy, Bounds(2, 6), steady(3), quiet, end_of(quiet))
    assert d.desired == 2  # 3 - 2 = 1, but MinSize is 2
    assert d.message.startswith("Scaling in from 3 to 2 instance(s): sum RequestCount 0 < 10")
    d = decide(policy, Bounds(2, 6), steady(2), quiet, end_of(quiet))
    assert not d.changed and d.message == "At MinSize (2): sum RequestCount 0 is below 10."


def test_latency_with_no_request_is_missing_not_zero():
    policy = trigger(MeasureName="Latency", Unit="Seconds", Period=1, BreachDuration=1,
                     UpperThreshold=1,
                     LowerThreshold=0.1)  # fmt: skip
    idle = [
        Window(T0 + 10 * n, T0 + 10 * (n + 1), {"a": InstanceSample(requests=0)}) for n in range(6)
    ]
    d = decide(policy, Bounds(1, 4), steady(2), idle, end_of(idle))
    assert not d.changed and d.waiting


def test_latency_average_is_per_request_and_units_convert():
    policy = trigger(MeasureName="TargetResponseTime", Unit="Milliseconds", Period=1,
                     BreachDuration=1,
                     UpperThreshold=500, LowerThreshold=50)  # fmt: skip
    assert policy.trigger is not None and policy.trigger.upper == pytest.approx(0.5)
    slow = [
        Window(
            T0 + 10 * n,
            T0 + 10 * (n + 1),
            {
                "a": InstanceSample(requests=90, latency_sum_s=9.0),  # 0.1 s each
                "b": InstanceSample(requests=10, latency_sum_s=91.0),  # 9.1 s each
            },
        )
        for n in range(6)
    ]
    assert period_value("TargetResponseTime", "Average", slow) == pytest.approx(1.0)
    assert period_value("TargetResponseTime", "Maximum", slow) == pytest.approx(9.1)
    assert decide(policy, Bounds(1, 4), steady(2), slow, end_of(slow)).desired == 3


def test_host_counts_are_a_statistic_over_the_windows():
    ws = [Window(T0 + 10 * n, T0 + 10 * (n + 1), {}, healthy=2, unhealthy=n % 2) for n in range(6)]
    assert period_value("UnhealthyHostCount", "Maximum", ws) == 1
    assert period_value("UnhealthyHostCount", "Average", ws) == pytest.approx(0.5)
    assert period_value("HealthyHostCount", "Minimum", ws) == 2


def test_network_bytes_sum_per_instance_and_a_reset_counter_is_missing():
    sent = InstanceSample(bytes_out=100)
    ws = [
        Window(T0, T0 + 10, {"a": sent, "b": InstanceSample(bytes_out=50)}),
        Window(T0 + 10, T0 + 20, {"a": sent, "b": InstanceSample()}),
    ]
    assert period_value("NetworkOut", "Sum", ws[:1]) == 150
    assert period_value("NetworkOut", "Sum", ws) is None


def test_a_trigger_that_does_not_fit_together_is_refused_with_the_fix():
    with pytest.raises(InvalidInput, match="Unit Bytes does not fit CPUUtilization"):
        trigger(MeasureName="CPUUtilization", Unit="Bytes")
    with pytest.raises(InvalidInput, match="LowerThreshold \\(90\\) is not below UpperThreshold"):
        trigger(MeasureName="CPUUtilization", UpperThreshold=80, LowerThreshold=90)
