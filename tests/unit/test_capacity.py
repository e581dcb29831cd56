"""Desired capacity (issue 7, part 4): one answer to "how many instances should run"."""

from beanpole.core.capacity import Bounds, bounds, desired_count, plan_scale
from beanpole.core.settings import resolve


def sizes(low: int, high: int):
    return resolve(
        {"aws:autoscaling:asg:MinSize": str(low), "aws:autoscaling:asg:MaxSize": str(high)}
    )


def test_without_a_stored_count_it_is_min_size():
    assert desired_count(sizes(2, 4), None) == 2
    assert desired_count(resolve({}), None) == 1  # EB's default MinSize


def test_a_stored_count_between_the_bounds_is_kept():
    """An autoscaler's (or a scale's) choice between MinSize and MaxSize stands: nothing
    forces MinSize again."""
    assert desired_count(sizes(1, 4), 3) == 3
    assert desired_count(sizes(0, 4), 0) == 0


def test_a_stored_count_outside_moved_bounds_is_clamped():
    assert desired_count(sizes(3, 4), 1) == 3
    assert desired_count(sizes(1, 2), 5) == 2


def test_scale_inside_the_bounds_changes_no_setting():
    change = plan_scale(Bounds(1, 4), 3)
    assert (change.desired, change.settings, change.notes) == (3, {}, ())


def test_scale_below_min_size_lowers_it_and_says_so():
    change = plan_scale(Bounds(2, 4), 1)
    assert change.desired == 1
    assert change.settings == {"aws:autoscaling:asg:MinSize": "1"}
    assert change.notes == ("Lowered MinSize from 2 to 1 so that 1 instance(s) can run.",)


def test_scale_above_max_size_raises_it_and_says_so():
    change = plan_scale(Bounds(1, 4), 6)
    assert change.settings == {"aws:autoscaling:asg:MaxSize": "6"}
    assert change.notes == ("Raised MaxSize from 4 to 6 so that 6 instance(s) can run.",)


def test_scale_to_zero_keeps_max_size():
    change = plan_scale(Bounds(1, 4), 0)
    assert change.settings == {"aws:autoscaling:asg:MinSize": "0"}
    merged = resolve(change.settings)
    assert desired_count(merged, change.desired) == 0
    assert bounds(merged) == Bounds(0, 4)
