"""End to end through the real CLI, server, HAProxy and supervisord (issue #2)."""

import json
import os
import signal
from collections import Counter

import pytest

from beanpole.client import Client
from beanpole.home import Home

from harness import Load, pid_alive, wait_for


def served_pids(bp, host, n=60):
    pids = Counter()
    for _ in range(n):
        status, body = bp.get(host)
        assert status == 200, body
        pids[json.loads(body)["pid"]] += 1
    return pids


def test_create_serves_from_every_instance_through_haproxy(beanpole, pid_app):
    result = beanpole.cli(
        "create",
        "shop",
        "--app",
        "shop",
        "--source",
        str(pid_app),
        "--scale",
        "3",
        "--env",
        "GREETING=hi there",
    )
    assert "Successfully launched environment: shop" in result.stdout
    info = beanpole.status("shop")
    assert info["status"] == "Ready" and info["health"] in ("Green", "Grey")
    assert info["url"] == f"http://shop.localhost:{beanpole.lb_port}"
    assert len(info["instances"]) == 3
    assert all(i["state"] == "in-service" for i in info["instances"])
    pids = served_pids(beanpole, "shop")
    assert set(pids) == {i["pid"] for i in info["instances"]}
    _, body = beanpole.get("shop")
    assert json.loads(body)["greeting"] == "hi there"


def test_unknown_host_gets_a_plain_404(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    status, body = beanpole.get("nothing-here")
    assert status == 404
    assert "shop" not in body


def test_deploy_replaces_every_instance_without_dropping_a_request(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2")
    before = {i["id"] for i in beanpole.status("shop")["instances"]}
    (pid_app / "VERSION").write_text("v2\n")
    with Load(beanpole.lb_port, "shop") as load:
        result = beanpole.cli("deploy", "shop", "--source", str(pid_app), "--label", "two")
        wait_for(lambda: load.ok > 20, 30, "requests after the deploy")
    assert "Environment update completed successfully." in result.stdout
    assert load.failures == []
    info = beanpole.status("shop")
    assert info["version"] == "two" and info["deployment_id"] == 2
    after = {i["id"] for i in info["instances"]}
    assert len(after) == 2 and not after & before
    assert json.loads(beanpole.get("shop")[1])["version"] == "v2"


def test_kill_9_of_the_server_keeps_serving_and_restart_adopts_the_same_pids(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2")
    before = {(i["id"], i["pid"]) for i in beanpole.status("shop")["instances"]}
    with Load(beanpole.lb_port, "shop") as load:
        beanpole.kill_server()
        wait_for(lambda: load.ok > 50, 30, "requests while the server is down")
        beanpole.start()
        info = wait_for(lambda: beanpole.status("shop"), 30, "the restarted server")
    assert load.failures == []
    assert {(i["id"], i["pid"]) for i in info["instances"]} == before
    # the reconciler runs a few ticks and must not add or replace anything
    wait_for(lambda: len(beanpole.status("shop")["instances"]) == 2, 5, "two instances")
    processes = [p for p in os.listdir("/proc") if p.isdigit()]
    assert all(pid_alive(pid) for _, pid in before)
    assert len(processes) > 0


def test_kill_9_of_an_instance_drops_no_request_and_it_comes_back(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2")
    victim = beanpole.status("shop")["instances"][0]
    with Load(beanpole.lb_port, "shop") as load:
        wait_for(lambda: load.ok > 10, 10, "traffic")
        os.kill(victim["pid"], signal.SIGKILL)

        def restarted():
            inst = {i["id"]: i for i in beanpole.status("shop")["instances"]}[victim["id"]]
            return inst["pid"] not in (0, victim["pid"]) and inst

        wait_for(restarted, 30, "the instance's web process to come back")
        wait_for(
            lambda: len(served_pids(beanpole, "shop", 20)) == 2, 60, "both instances to serve again"
        )
    assert load.failures == []


def asg_sizes(bp, env):
    """MinSize and MaxSize as the server resolves them (through the same client the CLI uses)."""
    client = Client.discover(Home(bp.home))
    try:
        resolved = client.request("GET", f"/environments/{env}/settings")["resolved"]
    finally:
        client.close()
    return int(resolved["aws:autoscaling:asg:MinSize"]), int(
        resolved["aws:autoscaling:asg:MaxSize"]
    )


def test_scale_up_and_down(beanpole, pid_app):
    """Issue 9, part 1: `scale ENV N` pins the environment at N (MinSize = MaxSize = N, as
    `eb scale`); `--min/--max` set the bounds and the desired count is clamped into them."""
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    assert beanpole.status("shop")["desired_capacity"] == 1  # starts at MinSize, as EB
    up = beanpole.cli("scale", "shop", "3").stdout
    assert "Pinned at 3 instance(s): MinSize 3, MaxSize 3." in up
    assert asg_sizes(beanpole, "shop") == (3, 3)
    assert len(served_pids(beanpole, "shop")) == 3
    status = beanpole.status("shop")
    assert status["desired_capacity"] == 3 and len(status["instances"]) == 3
    beanpole.cli("scale", "shop", "1")
    assert asg_sizes(beanpole, "shop") == (1, 1)
    assert len(beanpole.status("shop")["instances"]) == 1
    bounds = beanpole.cli("scale", "shop", "--min", "2", "--max", "5").stdout
    assert "Auto scaling moves between MinSize 2 and MaxSize 5." in bounds
    status = beanpole.status("shop")  # re-clamped into the new bounds
    assert status["desired_capacity"] == 2 and len(status["instances"]) == 2
    assert asg_sizes(beanpole, "shop") == (2, 5)
    crossed = beanpole.cli("scale", "shop", "--min", "6", check=False)
    assert crossed.returncode != 0
    assert "MinSize 6 would be above MaxSize 5. Give --max too" in crossed.stderr
    beanpole.cli("config", "shop", "aws:autoscaling:asg:MinSize=3")  # re-clamps the count
    status = beanpole.status("shop")
    assert status["desired_capacity"] == 3 and len(status["instances"]) == 3
    zero = beanpole.cli("scale", "shop", "0", "--no-wait").stdout
    assert "Operation" in zero


def test_setenv_and_printenv_roll_new_instances(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--env", "A=1")
    beanpole.cli("setenv", "shop", "GREETING=bonjour", "A=")
    assert beanpole.cli("printenv", "shop").stdout.split() == ["GREETING=bonjour"]
    assert json.loads(beanpole.get("shop")[1])["greeting"] == "bonjour"


def test_terminate_removes_the_environment(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    pid = beanpole.status("shop")["instances"][0]["pid"]
    result = beanpole.cli("terminate", "shop")
    assert "terminateEnvironment completed successfully." in result.stdout
    wait_for(lambda: not pid_alive(pid), 10, "the instance to stop")
    assert beanpole.get("shop")[0] == 404
    gone = beanpole.cli("status", "shop", check=False)
    assert gone.returncode == 1 and gone.stderr.startswith("Error: No environment named")


def test_events_and_logs(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    events = beanpole.cli("events", "shop").stdout
    assert "createEnvironment is starting." in events
    assert "Successfully launched environment: shop" in events
    logs = beanpole.cli("logs", "shop").stdout
    assert "web.stdout.log" in logs and "listening on" in logs
    instance = beanpole.status("shop")["instances"][0]["id"]
    one = beanpole.cli("logs", "shop", "--instance", instance).stdout
    assert instance in one
    assert beanpole.cli("logs", "shop", "--instance", "i-nope", check=False).returncode == 1


def test_list_and_open(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    listed = json.loads(beanpole.cli("list", "--json").stdout)
    assert [e["name"] for e in listed] == ["shop"]
    assert (
        beanpole.cli("open", "shop").stdout.strip() == f"http://shop.localhost:{beanpole.lb_port}"
    )


@pytest.mark.parametrize("env_name", ["abc", "bad_name", "trail-"])
def test_invalid_names_are_refused_before_anything_is_made(beanpole, pid_app, env_name):
    result = beanpole.cli(
        "create", env_name, "--app", "shop", "--source", str(pid_app), check=False
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Environment name")
    assert json.loads(beanpole.cli("list", "--json").stdout) == []


def test_an_instance_that_keeps_failing_its_checks_is_replaced(beanpole, pid_app, public_tmp):
    """Issue #4: replacement, by default, without a dropped request."""
    faults = public_tmp / "faults"
    faults.mkdir()
    ns = "aws:elasticbeanstalk:environment:process:default"
    beanpole.cli(
        "create",
        "shop",
        "--app",
        "shop",
        "--source",
        str(pid_app),
        "--scale",
        "2",
        "--env",
        f"FAULT_DIR={faults}",
        "--setting",
        f"{ns}:HealthCheckInterval=1",
        "--setting",
        f"{ns}:UnhealthyThresholdCount=2",
        "--setting",
        "beanpole:health:ReplaceAfter=3",
    )
    victim = beanpole.status("shop")["instances"][0]["id"]
    with Load(beanpole.lb_port, "shop", path="/whoami") as load:
        (faults / victim).write_text("500")

        def replaced():
            ids = {i["id"] for i in beanpole.status("shop")["instances"]}
            return victim not in ids and len(ids) == 2

        wait_for(replaced, 60, "the failing instance to be replaced")
        wait_for(lambda: load.ok > 20, 10, "traffic after the replacement")
    # requests the victim answered with 500 before its check failed are the app's own answers;
    # what must not happen is a connection error or a 503 (nothing to serve)
    assert not [f for f in load.failures if "HTTP 500" not in f], load.failures[:5]
    events = beanpole.cli("events", "shop").stdout
    assert f"Replacing instance {victim}" in events
