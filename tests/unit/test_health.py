"""EB's enhanced health rules, at and around every threshold (fake clock: floats)."""

from dataclasses import replace

import pytest

from beanpole.core.health import (
    COLOUR,
    EnvInput,
    InstanceInput,
    Status,
    Thresholds,
    Verdict,
    environment_health,
    instance_health,
    rank,
    transition_event,
)
from beanpole.core.metrics import WindowStats

NOW = 12.0  # the window [0, 10) closed 2 s ago
T = Thresholds()


def window(requests=1000, s5=0, s4=0, p99=100.0, start=0.0, instance=None):
    latency = {99.9: p99, 99.0: p99, 50.0: 10.0} if requests else {}
    ok = requests - s5 - s4
    return WindowStats("web", instance, start, 10.0, requests, ok, 0, s4, s5, latency)


def inst(id="i-1", state="in-service", check=True, failure=None, w=None, cpu=None, **kw):
    return InstanceInput(
        id=id,
        state=state,
        check_passing=check,
        process_failure=failure,
        window=w,
        cpu_percent=cpu,
        version=kw.get("version", "v1"),
        deployment_id=kw.get("deployment_id", 1),
        launched_at=kw.get("launched_at", 0.0),
    )


def env(*instances, w=None, deployment=None, min_size=1, now=NOW, desired=None):
    return EnvInput(
        name="web",
        expected_version="v1",
        expected_deployment_id=1,
        min_size=min_size,
        deployment=deployment,
        window=w,
        instances=instances or (inst(),),
        now=now,
        desired_capacity=desired,
    )


def judge(i, t=T, now=NOW, deploying=False):
    return instance_health(i, t, now, deploying)


# --- statuses ---------------------------------------------------------------------------------


def test_colours_are_ebs():
    assert COLOUR == {
        Status.OK: "Green",
        Status.INFO: "Green",
        Status.WARNING: "Yellow",
        Status.DEGRADED: "Red",
        Status.SEVERE: "Red",
        Status.PENDING: "Grey",
        Status.UNKNOWN: "Grey",
        Status.SUSPENDED: "Grey",
    }
    assert Verdict(Status.WARNING, ()).colour == "Yellow"


def test_the_worst_status_wins_in_this_order():
    order = [
        Status.OK,
        Status.INFO,
        Status.PENDING,
        Status.UNKNOWN,
        Status.SUSPENDED,
        Status.WARNING,
        Status.DEGRADED,
        Status.SEVERE,
    ]
    assert sorted(Status, key=rank) == order


# --- instance: request rules ---------------------------------------------------------------


def test_a_healthy_instance_is_ok_with_no_causes():
    assert judge(inst(w=window(), cpu=10.0)) == Verdict(Status.OK, ())


@pytest.mark.parametrize(
    ("failed", "status", "cause"),
    [
        (9, Status.OK, None),  # 0.9 %
        (10, Status.WARNING, "1% of the requests are failing with HTTP 5xx"),
        (99, Status.WARNING, "9% of the requests are failing with HTTP 5xx"),  # 9.9 % rounds down
        (100, Status.DEGRADED, "10% of the requests are failing with HTTP 5xx"),
        (249, Status.DEGRADED, "24% of the requests are failing with HTTP 5xx"),
        (250, Status.SEVERE, "25% of the requests are failing with HTTP 5xx"),
        (290, Status.SEVERE, "29% of the requests are failing with HTTP 5xx"),  # not 28 (float)
        (1000, Status.SEVERE, "100% of the requests are failing with HTTP 5xx"),
    ],
)
def test_5xx_share(failed, status, cause):
    verdict = judge(inst(w=window(s5=failed)))
    assert verdict.status is status
    assert verdict.causes == ((cause,) if cause else ())


@pytest.mark.parametrize(
    ("erroring", "status", "cause"),
    [
        (99, Status.OK, None),
        (100, Status.WARNING, "10% of requests are erroring with HTTP 4xx"),
        (150, Status.WARNING, "15% of requests are erroring with HTTP 4xx"),
        (499, Status.WARNING, "49% of requests are erroring with HTTP 4xx"),
        (500, Status.DEGRADED, "50% of requests are erroring with HTTP 4xx"),
    ],
)
def test_4xx_share(erroring, status, cause):
    verdict = judge(inst(w=window(s4=erroring)))
    assert verdict.status is status
    assert verdict.causes == ((cause,) if cause else ())


def test_the_4xx_rule_can_be_switched_off():
    assert judge(inst(w=window(s4=900)), t=Thresholds(rule_4xx=False)).status is Status.OK


@pytest.mark.parametrize(
    ("p99", "status", "shown"),
    [
        (2999.0, Status.OK, None),
        (3000.0, Status.WARNING, "3.0"),
        (4200.0, Status.WARNING, "4.2"),
        (9999.0, Status.WARNING, "10.0"),
        (10000.0, Status.DEGRADED, "10.0"),
    ],
)
def test_p99_latency(p99, status, shown):
    verdict = judge(inst(w=window(p99=p99)))
    assert verdict.status is status
    expected = f"Application requests are taking longer than expected: p99 is {shown} s"
    assert verdict.causes == ((expected,) if shown else ())


def test_request_rules_need_min_requests_in_the_window():
    assert judge(inst(w=window(requests=9, s5=9, p99=60_000.0))).status is Status.OK
    at_minimum = judge(inst(w=window(requests=10, s5=1)))
    assert at_minimum.status is Status.DEGRADED
    assert at_minimum.causes == ("10% of the requests are failing with HTTP 5xx",)
    assert judge(inst(w=window(requests=2, s5=1)), t=Thresholds(min_requests=1)).status is (
        Status.SEVERE
    )


def test_a_window_from_before_the_last_two_is_no_data():
    bad = inst(w=window(s5=1000, start=0.0))  # ended at 10
    assert judge(bad, now=29.99).status is Status.SEVERE
    assert judge(bad, now=30.0) == Verdict(Status.OK, ())


# --- instance: CPU, checks, process, lifecycle -------------------------------------------


@pytest.mark.parametrize(
    ("cpu", "status", "cause"),
    [
        (None, Status.OK, None),
        (89.9, Status.OK, None),
        (90.0, Status.WARNING, "90% of CPU is in use"),
        (94.99, Status.WARNING, "94% of CPU is in use"),
        (95.0, Status.DEGRADED, "95% of CPU is in use"),
        (100.0, Status.DEGRADED, "100% of CPU is in use"),
    ],
)
def test_cpu(cpu, status, cause):
    verdict = judge(inst(cpu=cpu))
    assert verdict.status is status
    assert verdict.causes == ((cause,) if cause else ())


def test_failing_its_load_balancer_check_is_severe():
    assert judge(inst(check=False)) == Verdict(Status.SEVERE, ("Failing health checks",))


def test_no_check_result_yet_is_unknown():
    assert judge(inst(check=None)) == Verdict(
        Status.UNKNOWN, ("No data from the load balancer yet",)
    )


def test_a_crashing_process_is_severe_and_says_why():
    crash = "web exited with status 1: ModuleNotFoundError: No module named 'flask'"
    assert judge(inst(failure=crash)) == Verdict(Status.SEVERE, (crash,))


def test_a_launching_instance_is_pending_and_not_judged_on_requests():
    launching = inst(state="pending", check=None, w=window(s5=1000), cpu=99.0, launched_at=0.0)
    assert judge(launching) == Verdict(
        Status.PENDING, ("Initialization in progress (running for 12 seconds)",)
    )


def test_a_launching_instance_that_crashes_is_severe():
    verdict = judge(inst(state="pending", check=None, failure="web exited with status 1"))
    assert verdict.status is Status.SEVERE
    assert verdict.causes[0] == "web exited with status 1"


def test_a_draining_instance_is_info_whatever_its_requests():
    draining = inst(state="draining", check=False, w=window(s5=1000), failure="web exited")
    assert judge(draining) == Verdict(Status.INFO, ("Instance is being drained",))


def test_during_a_deployment_a_healthy_instance_is_info_a_failing_one_is_not():
    assert judge(inst(), deploying=True) == Verdict(
        Status.INFO, ("Application deployment in progress",)
    )
    assert judge(inst(w=window(s5=100)), deploying=True).status is Status.DEGRADED


def test_causes_are_listed_worst_first():
    verdict = judge(inst(w=window(s5=100), cpu=91.0))
    assert verdict.status is Status.DEGRADED
    assert verdict.causes == (
        "10% of the requests are failing with HTTP 5xx",
        "91% of CPU is in use",
    )


# --- environment ----------------------------------------------------------------------------


def test_a_healthy_environment_is_ok():
    verdict, instances = environment_health(env(inst("i-1"), inst("i-2"), w=window()), T)
    assert verdict == Verdict(Status.OK, ())
    assert instances == {"i-1": Verdict(Status.OK, ()), "i-2": Verdict(Status.OK, ())}


def test_the_environments_own_window_is_judged_including_requests_no_server_took():
    # The instances answered fine; 503s from HAProxy with no server up only show here.
    verdict, _ = environment_health(env(inst(w=window()), w=window(s5=250)), T)
    assert verdict == Verdict(Status.SEVERE, ("25% of the requests are failing with HTTP 5xx",))
    quiet, _ = environment_health(env(w=window(requests=9, s5=9)), T)
    assert quiet.status is Status.OK


def test_one_instance_failing_checks_degrades_the_environment():
    verdict, instances = environment_health(env(inst("i-1", check=False), inst("i-2")), T)
    assert verdict == Verdict(
        Status.DEGRADED, ("ELB health is failing or not available for 1 out of 2 instances",)
    )
    assert instances["i-1"].status is Status.SEVERE


def test_every_instance_severe_makes_the_environment_severe():
    verdict, _ = environment_health(
        env(inst("i-1", check=False), inst("i-2", failure="web exited with status 1")), T
    )
    assert verdict == Verdict(
        Status.SEVERE,
        (
            "ELB health is failing or not available for 1 out of 2 instances",
            "Impaired services on 1 out of 2 instances",
        ),
    )
    all_failing, _ = environment_health(env(inst("i-1", check=False), inst("i-2", check=False)), T)
    assert all_failing.causes == ("ELB health is failing or not available for all instances",)


def test_a_degraded_instance_degrades_the_environment_a_warning_warns_it():
    degraded, _ = environment_health(env(inst("i-1", cpu=95.0), inst("i-2")), T)
    assert degraded == Verdict(Status.DEGRADED, ("Impaired services on 1 out of 2 instances",))
    warned, _ = environment_health(env(inst("i-1", cpu=90.0), inst("i-2", cpu=90.0)), T)
    assert warned == Verdict(Status.WARNING, ("Impaired services on all instances",))


def test_launching_and_draining_instances_do_not_count_against_the_environment():
    verdict, instances = environment_health(
        env(
            inst("i-1"),
            inst("i-2", state="pending", check=None, failure="web exited with status 1"),
            inst("i-3", state="draining", check=False),
        ),
        T,
    )
    assert verdict == Verdict(Status.OK, ())
    assert instances["i-2"].status is Status.SEVERE
    assert instances["i-3"].status is Status.INFO


def test_fewer_in_service_instances_than_the_minimum():
    four = [inst(f"i-{n}") for n in range(4)]
    verdict, _ = environment_health(env(*four, inst("i-9", state="pending"), min_size=5), T)
    assert verdict == Verdict(
        Status.WARNING, ("4 active instances is below Auto Scaling group minimum size 5",)
    )
    at_minimum, _ = environment_health(env(*four, min_size=4), T)
    assert at_minimum.status is Status.OK


def test_instances_lost_with_their_node_are_named_while_below_capacity():
    """Issue 13, part 4: health names the node of the instances a node's death took."""
    four = [inst(f"i-{n}") for n in range(4)]
    lost = ("Instance i-8 lost: node n3 is down", "Instance i-9 lost: node n3 is down")
    below, _ = environment_health(replace(env(*four, min_size=6), lost=lost), T)
    assert below == Verdict(
        Status.WARNING, ("4 active instances is below Auto Scaling group minimum size 6", *lost)
    )
    back, _ = environment_health(replace(env(*four, min_size=4), lost=lost), T)
    assert back.status is Status.OK and back.causes == ()


def test_fewer_in_service_instances_than_the_desired_capacity_above_the_minimum():
    """Issue 7, part 4: the count to judge is the desired one (between MinSize and MaxSize)."""
    two = [inst(f"i-{n}") for n in range(2)]
    verdict, _ = environment_health(env(*two, min_size=1, desired=3), T)
    assert verdict == Verdict(
        Status.WARNING, ("2 active instances is below the desired capacity 3",)
    )
    at_desired, _ = environment_health(env(*two, min_size=1, desired=2), T)
    assert at_desired.status is Status.OK


def test_no_instance_in_service_is_severe_except_during_a_deployment():
    launching = inst(state="pending", check=None)
    verdict, _ = environment_health(env(launching), T)
    assert verdict == Verdict(
        Status.SEVERE, ("0 active instances is below Auto Scaling group minimum size 1",)
    )
    deploying, _ = environment_health(env(launching, deployment=(10.0, None)), T)
    assert deploying == Verdict(
        Status.INFO,
        (
            "Performing application deployment (running for 2 seconds)",
            "0 active instances is below Auto Scaling group minimum size 1",
        ),
    )


def test_instances_on_the_wrong_version_are_reported_in_ebs_words():
    right = [inst(f"i-{n}") for n in range(3)]
    old = inst("i-8", version="v0", deployment_id=0)
    redeployed = inst("i-9", version="v1", deployment_id=2)  # same label, another deployment
    verdict, instances = environment_health(env(*right, old, redeployed), T)
    assert verdict == Verdict(
        Status.WARNING,
        (
            "Incorrect application version found on 2 out of 5 instances. "
            'Expected version "v1" (deployment 1).',
        ),
    )
    assert instances["i-8"] == Verdict(
        Status.WARNING,
        (
            'Incorrect application version "v0" (deployment 0). '
            'Expected version "v1" (deployment 1).',
        ),
    )
    assert instances["i-0"] == Verdict(Status.OK, ())


def test_a_mix_of_versions_is_expected_during_a_deployment():
    verdict, instances = environment_health(
        env(inst("i-1"), inst("i-2", version="v2", deployment_id=2), deployment=(9.0, None)), T
    )
    assert verdict == Verdict(
        Status.INFO, ("Performing application deployment (running for 3 seconds)",)
    )
    assert instances["i-2"].status is Status.INFO


def test_a_wrong_version_adds_to_an_instances_own_troubles():
    _, instances = environment_health(env(inst("i-1", version="v0", cpu=96.0)), T)
    assert instances["i-1"].status is Status.DEGRADED
    assert instances["i-1"].causes[0] == "96% of CPU is in use"
    assert instances["i-1"].causes[1].startswith('Incorrect application version "v0"')


@pytest.mark.parametrize(
    ("deployment", "now", "cause"),
    [
        ((11.0, None), 12.0, "Performing application deployment (running for 1 second)"),
        ((0.0, None), 150.0, "Performing application deployment (running for 2 minutes)"),
        (
            (0.0, 26.0),
            49.0,
            "Application deployment completed 23 seconds ago and took 26 seconds",
        ),
        (
            (0.0, 90.0),
            149.9,
            "Application deployment completed 59 seconds ago and took 1 minute",
        ),
        ((0.0, 26.0), 86.0, None),  # 60 s after it finished: back to Ok
        ((0.0, 26.0), 5000.0, None),
    ],
)
def test_deployments_are_info_while_running_and_for_a_minute_after(deployment, now, cause):
    verdict, _ = environment_health(env(deployment=deployment, now=now), T)
    expected = Verdict(Status.INFO, (cause,)) if cause else Verdict(Status.OK, ())
    assert verdict == expected


def test_a_problem_during_a_deployment_outranks_it_and_both_are_listed():
    verdict, _ = environment_health(env(w=window(s5=100), deployment=(9.0, None)), T)
    assert verdict == Verdict(
        Status.DEGRADED,
        (
            "10% of the requests are failing with HTTP 5xx",
            "Performing application deployment (running for 3 seconds)",
        ),
    )


def test_no_instance_sending_data_is_unknown():
    silent = (inst("i-1", check=None), inst("i-2", check=None))
    verdict, _ = environment_health(env(*silent), T)
    assert verdict == Verdict(Status.UNKNOWN, ("None of the instances are sending data",))
    # Requests flowing through the environment are data enough.
    flowing, _ = environment_health(env(*silent, w=window()), T)
    assert flowing == Verdict(Status.OK, ())
    # One instance with a result is data too.
    partly, _ = environment_health(env(inst("i-1", check=None), inst("i-2")), T)
    assert partly == Verdict(Status.OK, ())


# --- events ---------------------------------------------------------------------------------


def test_the_transition_event_is_ebs_sentence_then_the_causes():
    assert (
        transition_event(
            "web", Status.OK, Status.DEGRADED, ["25% of the requests are failing with HTTP 5xx"]
        )
        == "Environment health has transitioned from Ok to Degraded. "
        "25% of the requests are failing with HTTP 5xx."
    )
    version = (
        "Incorrect application version found on 1 out of 2 instances. "
        'Expected version "v1" (deployment 1).'
    )
    assert transition_event(
        "web", Status.INFO, Status.WARNING, [version, "95% of CPU is in use"]
    ) == (
        f"Environment health has transitioned from Info to Warning. {version} 95% of CPU is in use."
    )
    assert transition_event("web", Status.DEGRADED, Status.OK, []) == (
        "Environment health has transitioned from Degraded to Ok."
    )


def test_a_sampled_window_is_judged_on_its_lines_not_its_weighted_count():
    """One sampled 5xx line standing for 64 requests is one observation, not 64: noise."""
    one_line = WindowStats("web", "i-1", 0.0, 10.0, 64, 0, 0, 0, 64, {99.0: 5.0}, lines=1)
    assert judge(inst(w=one_line)).status is Status.OK
    many = WindowStats("web", "i-1", 0.0, 10.0, 640, 0, 0, 0, 640, {99.0: 5.0}, lines=10)
    assert judge(inst(w=many)).status is Status.SEVERE


def test_a_load_balancer_that_does_not_answer_is_severe_whatever_the_instances_say():
    quiet = EnvInput(
        name="web",
        expected_version="v1",
        expected_deployment_id=1,
        min_size=1,
        deployment=None,
        window=window(),
        instances=(inst(check=None),),
        now=NOW,
        lb_answering=False,
    )
    verdict, _ = environment_health(quiet, T)
    assert verdict.status is Status.SEVERE
    assert "The load balancer is not answering" in verdict.causes
