"""Each deployment policy's plan, as data (issue #3, part 1)."""

import pytest

from beanpole.core.deploy.policies import (
    Action,
    DeployParams,
    Policy,
    Step,
    batch_size,
    plan,
    rolling_batch_size,
    rolling_note,
    split_weights,
)

OLD = ("i-1", "i-2", "i-3", "i-4")


def actions(steps):
    return [(s.action.value, s.count or s.retire or s.percent or s.seconds or None) for s in steps]


def test_all_at_once_stops_everything_then_starts_everything():
    steps = plan(OLD, 4, DeployParams(Policy.ALL_AT_ONCE))
    assert actions(steps) == [("retire", OLD), ("launch", 4), ("await", None), ("in_service", None)]


def test_rolling_replaces_batch_by_batch_old_leaving_first():
    steps = plan(OLD, 4, DeployParams(Policy.ROLLING, "Percentage", 50))
    assert actions(steps) == [
        ("retire", ("i-1", "i-2")),
        ("launch", 2),
        ("await", None),
        ("in_service", None),
        ("retire", ("i-3", "i-4")),
        ("launch", 2),
        ("await", None),
        ("in_service", None),
    ]
    assert [s.batch for s in steps] == [1, 1, 1, 1, 2, 2, 2, 2]


def test_rolling_with_additional_batch_never_drops_capacity():
    steps = plan(OLD, 4, DeployParams(Policy.ROLLING_WITH_ADDITIONAL_BATCH, "Fixed", 1))
    serving = 4
    lowest = serving
    for step in steps:
        if step.action is Action.IN_SERVICE:
            serving += 1
        elif step.action is Action.RETIRE:
            serving -= len(step.retire)
        lowest = min(lowest, serving)
    assert lowest == 4 and serving == 4
    assert actions(steps)[:4] == [
        ("launch", 1),
        ("await", None),
        ("in_service", None),
        ("retire", ("i-1",)),
    ]


def test_immutable_starts_one_then_the_rest_then_cuts_over():
    steps = plan(OLD, 4, DeployParams(Policy.IMMUTABLE))
    assert actions(steps) == [
        ("launch", 1),
        ("await", None),
        ("launch", 3),
        ("await", None),
        ("in_service", None),
        ("retire", OLD),
    ]


def test_traffic_splitting_evaluates_a_share_before_cut_over():
    steps = plan(
        OLD, 4, DeployParams(Policy.TRAFFIC_SPLITTING, new_version_percent=20, evaluation_time_s=60)
    )
    assert actions(steps) == [
        ("launch", 4),
        ("await", None),
        ("split", 20),
        ("evaluate", 60),
        ("in_service", None),
        ("retire", OLD),
    ]


@pytest.mark.parametrize("policy", list(Policy))
def test_every_plan_ends_with_the_capacity_and_no_old_instance(policy):
    for capacity in (1, 2, 3, 5):
        for old in ((), ("a",), OLD, (*OLD, "i-5", "i-6")):
            steps = plan(old, capacity, DeployParams(policy, "Percentage", 30))
            launched = sum(s.count for s in steps if s.action is Action.LAUNCH)
            retired = [i for s in steps if s.action is Action.RETIRE for i in s.retire]
            assert launched == capacity
            assert sorted(retired) == sorted(old)
            # nothing is retired twice, and every launch is awaited before traffic
            assert len(set(retired)) == len(retired)
            pending = 0
            for step in steps:
                if step.action is Action.LAUNCH:
                    pending += 1
                elif step.action is Action.AWAIT:
                    pending = 0
                elif step.action in (Action.IN_SERVICE, Action.SPLIT):
                    assert pending == 0


def test_first_deploy_just_starts_instances():
    assert actions(plan((), 2, DeployParams(Policy.ROLLING))) == [
        ("launch", 2),
        ("await", None),
        ("in_service", None),
    ]


def test_scaled_to_zero():
    assert plan(OLD, 0, DeployParams()) == [Step(Action.RETIRE, retire=OLD)]


@pytest.mark.parametrize(
    ("capacity", "kind", "size", "expected"),
    [
        (4, "Percentage", 30, 2),
        (4, "Percentage", 100, 4),
        (4, "Percentage", 1, 1),
        (4, "Fixed", 3, 3),
        (4, "Fixed", 9, 4),
        (1, "Fixed", 0, 1),
        (10, "Percentage", 30, 3),
    ],
)
def test_batch_sizes(capacity, kind, size, expected):
    assert batch_size(capacity, kind, size) == expected


@pytest.mark.parametrize(
    ("new", "old", "percent"), [(4, 4, 10), (4, 4, 50), (1, 3, 25), (3, 1, 90), (4, 4, 1)]
)
def test_split_weights_give_the_new_set_its_share(new, old, percent):
    w_new, w_old = split_weights(new, old, percent)
    share = new * w_new / (new * w_new + old * w_old)
    assert abs(share * 100 - percent) < 1.0
    assert 1 <= w_new <= 256 and 1 <= w_old <= 256


def lowest_in_service(old, steps):
    """The fewest instances in service at any point of the plan."""
    serving = lowest = len(old)
    for step in steps:
        if step.action is Action.LAUNCH:
            pending = step.count
        elif step.action is Action.IN_SERVICE:
            serving += pending
        elif step.action is Action.RETIRE:
            serving -= len(step.retire)
        lowest = min(lowest, serving)
    return lowest


def test_rolling_with_the_default_batch_size_keeps_one_instance_serving():
    """Issue #7: EB's default BatchSize (100 %) took every instance out at once; under load
    half the requests failed with 503. A Rolling batch is at most capacity - 1."""
    steps = plan(OLD, 4, DeployParams(Policy.ROLLING))
    assert actions(steps) == [
        ("retire", ("i-1", "i-2", "i-3")),
        ("launch", 3),
        ("await", None),
        ("in_service", None),
        ("retire", ("i-4",)),
        ("launch", 1),
        ("await", None),
        ("in_service", None),
    ]
    assert lowest_in_service(OLD, steps) == 1


def test_rolling_with_one_instance_launches_before_it_retires():
    steps = plan(("i-1",), 1, DeployParams(Policy.ROLLING))
    assert actions(steps) == [
        ("launch", 1),
        ("await", None),
        ("in_service", None),
        ("retire", ("i-1",)),
    ]


def test_rolling_growing_past_the_old_fleet_retires_the_last_old_one_after_its_batch():
    steps = plan(("i-1", "i-2"), 4, DeployParams(Policy.ROLLING))
    assert actions(steps)[:5] == [
        ("retire", ("i-1",)),
        ("launch", 3),
        ("await", None),
        ("in_service", None),
        ("retire", ("i-2",)),
    ]
    assert lowest_in_service(("i-1", "i-2"), steps) == 1


@pytest.mark.parametrize("size", [1, 30, 50, 99, 100])
@pytest.mark.parametrize("capacity", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("old_count", [1, 2, 4, 6])
def test_rolling_never_empties_the_backend(size, capacity, old_count):
    old = tuple(f"i-{n}" for n in range(old_count))
    steps = plan(old, capacity, DeployParams(Policy.ROLLING, "Percentage", size))
    assert lowest_in_service(old, steps) >= 1
    assert sum(s.count for s in steps if s.action is Action.LAUNCH) == capacity
    assert sorted(i for s in steps if s.action is Action.RETIRE for i in s.retire) == sorted(old)


@pytest.mark.parametrize(
    ("capacity", "kind", "size", "expected"),
    [
        (4, "Percentage", 100, 3),
        (4, "Percentage", 50, 2),
        (4, "Fixed", 4, 3),
        (2, "Percentage", 100, 1),
        (1, "Percentage", 100, 1),
        (10, "Percentage", 30, 3),
    ],
)
def test_rolling_batch_size_is_at_most_capacity_minus_one(capacity, kind, size, expected):
    assert rolling_batch_size(capacity, DeployParams(Policy.ROLLING, kind, size)) == expected


def test_rolling_says_when_it_reduced_the_batch():
    note = rolling_note(4, 4, DeployParams(Policy.ROLLING))
    assert note is not None and "reduced from 4 to 3 instance(s)" in note
    assert rolling_note(4, 4, DeployParams(Policy.ROLLING, "Percentage", 50)) is None
    one = rolling_note(1, 1, DeployParams(Policy.ROLLING))
    assert one is not None and "before the old one leaves" in one
    assert rolling_note(0, 4, DeployParams(Policy.ROLLING)) is None  # a first deploy
    assert rolling_note(4, 4, DeployParams(Policy.IMMUTABLE)) is None
