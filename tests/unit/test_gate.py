"""The deploy gate as a pure function: counters in, verdict out (issue #7, part 7)."""

import pytest

from beanpole.core.deploy.gate import (
    MIN_LINES_FOR_LATENCY,
    MIN_RESPONSES_FOR_ERROR_RATE,
    Latency,
    Limits,
    ServerCounters,
    judge,
)

LIMITS = Limits(max_error_percent=5, max_latency_p99_ms=3000)


def verdict(*servers, latency=None, baseline=None, limits=LIMITS):
    return judge(
        servers, limits, version="v2", when="after cut-over", latency=latency, baseline=baseline
    )


def test_healthy_instances_with_few_errors_pass():
    result = verdict(
        ServerCounters("i-1", responses=100, responses_5xx=2),
        ServerCounters("i-2", responses=100, responses_5xx=3),
    )
    assert result.ok and result.reason == ""


def test_an_instance_that_left_the_load_balancer_fails():
    result = verdict(ServerCounters("i-1"), ServerCounters("i-2", present=False))
    assert not result.ok
    assert result.reason == "Instance i-2 left the load balancer after cut-over."


def test_a_down_check_fails_and_names_the_instance_for_its_log_tail():
    result = verdict(
        ServerCounters("i-1"), ServerCounters("i-2", status="DOWN", check_status="L7STS")
    )
    assert not result.ok and result.instance_id == "i-2"
    assert result.reason == (
        "Instance i-2 of version v2 failed its load balancer health check after cut-over (L7STS)."
    )


def test_a_check_going_down_but_still_up_passes():
    """HAProxy shows "UP 1/3" while failures accumulate: not DOWN yet, still serving."""
    assert verdict(ServerCounters("i-1", status="UP 1/3", check_status="L7STS")).ok


@pytest.mark.parametrize(
    ("responses", "errors", "ok"),
    [
        (100, 5, True),  # at the threshold: not above it
        (100, 6, False),
        (MIN_RESPONSES_FOR_ERROR_RATE - 1, MIN_RESPONSES_FOR_ERROR_RATE - 1, True),  # too few
        (MIN_RESPONSES_FOR_ERROR_RATE, 1, True),
        (MIN_RESPONSES_FOR_ERROR_RATE, 20, False),
    ],
)
def test_the_5xx_share_over_all_new_instances(responses, errors, ok):
    result = verdict(
        ServerCounters("i-1", responses=responses - responses // 2, responses_5xx=errors),
        ServerCounters("i-2", responses=responses // 2),
    )
    assert result.ok is ok
    if not ok:
        assert result.reason == (
            f"{errors * 100 // responses}% of the requests to version v2 are failing with "
            "HTTP 5xx after cut-over (threshold 5%)."
        )
        assert result.instance_id is None


def test_the_check_is_judged_before_the_error_share():
    result = verdict(
        ServerCounters("i-1", responses=100, responses_5xx=100),
        ServerCounters("i-2", status="DOWN", check_status="L4CON"),
    )
    assert "health check" in result.reason


def test_slow_new_version_fails_when_there_is_no_baseline():
    result = verdict(ServerCounters("i-1"), latency=Latency(MIN_LINES_FOR_LATENCY, 4500.0))
    assert not result.ok
    assert result.reason == (
        "Requests to version v2 are too slow after cut-over: p99 is 4.50 s (threshold 3 s)."
    )


def test_latency_is_not_judged_on_too_few_lines():
    assert verdict(ServerCounters("i-1"), latency=Latency(MIN_LINES_FOR_LATENCY - 1, 9000.0)).ok


def test_slow_like_the_version_it_replaces_passes():
    baseline = Latency(500, 2500.0)
    assert verdict(ServerCounters("i-1"), latency=Latency(200, 4900.0), baseline=baseline).ok
    result = verdict(ServerCounters("i-1"), latency=Latency(200, 5100.0), baseline=baseline)
    assert not result.ok
    assert result.reason.endswith("(threshold 3 s, 2.50 s before the deployment).")


def test_a_baseline_of_too_few_lines_is_ignored():
    result = verdict(
        ServerCounters("i-1"),
        latency=Latency(200, 5100.0),
        baseline=Latency(MIN_LINES_FOR_LATENCY - 1, 4000.0),
    )
    assert not result.ok and "before the deployment" not in result.reason


def test_a_latency_limit_of_zero_turns_the_rule_off():
    limits = Limits(max_error_percent=5, max_latency_p99_ms=0)
    assert verdict(ServerCounters("i-1"), latency=Latency(1000, 60_000.0), limits=limits).ok


def test_no_instances_pass():
    assert verdict().ok
