"""Desired capacity (issue 7, part 4): one answer to "how many instances should run"."""

import pytest

from beanpole.core.capacity import Bounds, Override, bounds, desired_count, plan_scale
from beanpole.core.errors import InvalidInput
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


def test_scale_to_a_count_pins_both_bounds_as_eb_scale_does():
    change = plan_scale(Bounds(1, 4), 3)
    assert change.desired == 3
    assert change.settings == {
        "aws:autoscaling:asg:MinSize": "3",
        "aws:autoscaling:asg:MaxSize": "3",
    }
    assert change.notes == ("Pinned at 3 instance(s): MinSize 3, MaxSize 3.",)


def test_scale_to_zero_keeps_max_size_at_its_minimum_of_one():
    change = plan_scale(Bounds(1, 4), 0)
    merged = resolve(change.settings)
    assert desired_count(merged, change.desired) == 0
    assert bounds(merged) == Bounds(0, 1)


def test_scale_with_bounds_lets_the_count_move_and_keeps_the_desired_one():
    change = plan_scale(Bounds(1, 1), min_size=2, max_size=6)
    assert change.desired is None
    assert change.settings == {
        "aws:autoscaling:asg:MinSize": "2",
        "aws:autoscaling:asg:MaxSize": "6",
    }
    assert change.notes == ("Auto scaling moves between MinSize 2 and MaxSize 6.",)
    assert desired_count(resolve(change.settings), 1) == 2  # clamped into the new bounds


def test_scale_with_one_bound_keeps_the_other():
    assert plan_scale(Bounds(1, 4), max_size=8).settings == {"aws:autoscaling:asg:MaxSize": "8"}


def test_scale_refuses_crossed_bounds_and_a_count_with_bounds():
    with pytest.raises(InvalidInput, match=r"MinSize 5 would be above MaxSize 4\. Give --max too"):
        plan_scale(Bounds(1, 4), min_size=5)
    with pytest.raises(InvalidInput, match=r"MinSize 3 would be above MaxSize 2\. Swap them"):
        plan_scale(Bounds(1, 4), min_size=3, max_size=2)
    with pytest.raises(InvalidInput, match="not both"):
        plan_scale(Bounds(1, 4), 2, max_size=3)


def test_a_scheduled_override_replaces_the_bounds_it_names():
    settings = sizes(1, 4)
    assert bounds(settings, Override(3, None, "Morning", 0.0)) == Bounds(3, 4)
    assert bounds(settings, Override(None, 2, "Evening", 0.0)) == Bounds(1, 2)
    # beyond the settings' MaxSize: the action's MinSize wins, as in an Auto Scaling group
    assert bounds(settings, Override(6, None, "Peak", 0.0)) == Bounds(6, 6)
    assert desired_count(settings, 1, Override(3, 8, "Morning", 0.0)) == 3
