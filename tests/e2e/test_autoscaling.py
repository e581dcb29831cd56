"""Issue 9: auto scaling against real HAProxy, supervisord and CPU-bound instances.

Beanpole's default policy (no trigger option set) scales a saturated environment out and,
once the load stops, back in; no request fails either way. The only tuning is how long the
load must stay low before scaling in (``ScaleInAfter``), so the test takes one minute, not
three.
"""

from __future__ import annotations

import json
import time

import pytest

from harness import Load, wait_for

pytestmark = pytest.mark.slow


def in_service(info):
    return [i for i in info["instances"] if i["state"] == "in-service"]


def test_a_saturated_environment_scales_out_then_back_in_without_a_failed_request(
    beanpole, pid_app
):
    beanpole.cli(
        "create", "busy", "--app", "busy", "--source", str(pid_app),
        "--setting", "aws:autoscaling:asg:MinSize=1",
        "--setting", "aws:autoscaling:asg:MaxSize=2",
        "--setting", "beanpole:autoscaling:ScaleInAfter=20",
        "--setting", "aws:elasticbeanstalk:environment:process:default:DeregistrationDelay=5",
    )  # fmt: skip
    with Load(beanpole.lb_port, "busy") as watcher:
        burners = [Load(beanpole.lb_port, "busy", path="/burn") for _ in range(3)]
        for burner in burners:
            burner.__enter__()
        try:
            info = wait_for(
                lambda: len(in_service(i := beanpole.status("busy"))) == 2 and i,
                90,
                "a second instance in service under CPU load",
            )
            served = {json.loads(b)["instance"] for b in watcher.bodies[-200:]}
            wait_for(
                lambda: len({json.loads(b)["instance"] for b in watcher.bodies[-50:]}) == 2,
                20,
                "both instances answering",
            )
        finally:
            for burner in burners:
                burner.stop()
        assert info["desired_capacity"] == 2
        assert info["autoscaling"]["last_decision"]["message"].startswith(
            "Scaling out from 1 to 2 instance(s): average CPUUtilization"
        )
        info = wait_for(
            lambda: (
                len(in_service(i := beanpole.status("busy"))) == 1
                and i["desired_capacity"] == 1
                and len(i["instances"]) == 1
                and i
            ),
            120,
            "back at MinSize once the load stopped",
        )
    assert served  # the watcher was answered throughout
    failures = watcher.failures + [f for b in burners for f in b.failures]
    assert failures == []
    assert info["autoscaling"]["last_decision"]["message"].startswith(
        "Scaling in from 2 to 1 instance(s): the instances' CPUUtilization added up to"
    )
    events = beanpole.cli("events", "busy", "-n", "50").stdout
    assert "Scaling out from 1 to 2 instance(s)" in events
    assert "after draining them; now 1 in service." in events
    shown = beanpole.cli("autoscale", "busy").stdout
    assert "Instances: 1 desired, MinSize 1, MaxSize 2" in shown
    assert "Policy: Beanpole's default: average CPUUtilization" in shown
    health = beanpole.cli("health", "busy").stdout
    assert "instances: 1 desired, MinSize 1, MaxSize 2; last decision: Scaling in" in health
    assert info["status"] == "Ready"


def test_a_scheduled_action_sets_the_bounds_when_it_fires_and_a_direct_change_wins_after(
    beanpole, pid_app
):
    soon = time.time() + 12
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon))
    action = "aws:autoscaling:scheduledaction:Rush"
    beanpole.cli(
        "create", "sched", "--app", "sched", "--source", str(pid_app),
        "--setting", f"{action}:MinSize=2",
        "--setting", f"{action}:StartTime={start}",
    )  # fmt: skip
    shown = beanpole.cli("autoscale", "sched").stdout
    assert "Scheduled: Rush sets MinSize 2" in shown
    info = wait_for(
        lambda: len(in_service(i := beanpole.status("sched"))) == 2 and i,
        60,
        "the scheduled action's MinSize in force",
    )
    scaling = info["autoscaling"]
    assert (scaling["min_size"], scaling["bounds_source"]) == (2, "scheduled action Rush")
    events = beanpole.cli("events", "sched", "-n", "50").stdout
    assert "Scheduled action Rush sets MinSize 2" in events
    assert "Scaling out from 1 to 2 instance(s): MinSize is 2 (scheduled action Rush)." in events
    # bounds set directly afterwards replace the action's, as in an Auto Scaling group
    beanpole.cli("scale", "sched", "1")
    info = beanpole.status("sched")
    assert info["autoscaling"]["bounds_source"] == "settings"
    assert len(in_service(info)) == 1
    # and the firing, carried out once, is not carried out again by a later decision
    after = time.time()
    info = wait_for(
        lambda: (i := beanpole.status("sched"))["autoscaling"]["current"]["at"] > after + 10 and i,
        60,
        "two auto scaling verdicts after the scale",
    )
    assert info["autoscaling"]["bounds_source"] == "settings"
    assert len(in_service(info)) == 1
    events = beanpole.cli("events", "sched", "-n", "100").stdout
    assert events.count("Scheduled action Rush sets MinSize 2") == 1


def test_scale_with_bounds_and_bad_triggers_are_answered_clearly(beanpole, pid_app):
    beanpole.cli("create", "bounds", "--app", "bounds", "--source", str(pid_app))
    beanpole.cli("scale", "bounds", "--min", "2", "--max", "3")
    info = beanpole.status("bounds")
    assert (info["autoscaling"]["min_size"], info["autoscaling"]["max_size"]) == (2, 3)
    assert len(in_service(info)) == 2
    refused = beanpole.cli(
        "config", "bounds",
        "aws:autoscaling:trigger:MeasureName=CPUUtilization",
        "aws:autoscaling:trigger:Unit=Bytes",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "Unit Bytes does not fit CPUUtilization" in refused.stderr
    refused = beanpole.cli(
        "config", "bounds", "aws:autoscaling:scheduledaction:Nightly:Recurrence=0 25 * * *",
        check=False,
    )  # fmt: skip
    assert "hour 25 is out of range 0-23" in refused.stderr
    assert beanpole.status("bounds")["status"] == "Ready"
