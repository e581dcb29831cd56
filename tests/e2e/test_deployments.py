"""Deployments under load against real HAProxy and supervisord (issue #3).

Each policy deploys a good version, then a version that fails its health check, while a
client sends keep-alive GETs. Every policy but AllAtOnce must drop nothing; every bad
version must end rolled back.
"""

import json
import shutil

import httpx
import pytest

from harness import Load, pid_alive, wait_for

POLICIES = ["Rolling", "RollingWithAdditionalBatch", "Immutable", "TrafficSplitting"]
FAST = [
    "--setting",
    "beanpole:deploy:BakeTime=1",
    "--setting",
    "beanpole:deploy:EvaluationSeconds=2",
    "--setting",
    "aws:elasticbeanstalk:command:BatchSize=50",
    "--setting",
    "beanpole:instance:StartTimeout=5",
]


def versions_served(bp, n=40):
    return {json.loads(bp.get("shop")[1])["version"] for _ in range(n)}


def variant(pid_app, tmp_path, name, unhealthy=False):
    dest = tmp_path / name
    shutil.copytree(pid_app, dest)
    (dest / "VERSION").write_text(name + "\n")
    if unhealthy:
        (dest / "UNHEALTHY").write_text("")
    return dest


@pytest.mark.parametrize("policy", POLICIES)
def test_policy_deploys_and_rolls_back_without_dropping_a_request(
    beanpole, pid_app, tmp_path, policy
):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "4", *FAST)
    good = variant(pid_app, tmp_path, "good")
    bad = variant(pid_app, tmp_path, "bad", unhealthy=True)
    with Load(beanpole.lb_port, "shop") as load:
        ok = beanpole.cli(
            "deploy", "shop", "--source", str(good), "--label", "good", "--policy", policy
        )
        failed = beanpole.cli(
            "deploy",
            "shop",
            "--source",
            str(bad),
            "--label",
            "bad",
            "--policy",
            policy,
            "--no-wait",
        )
        info = wait_for(
            lambda: (i := beanpole.status("shop"))["status"] == "Ready" and i,
            120,
            "the bad deploy to end",
        )
        wait_for(lambda: load.ok > 50, 30, "traffic")
    assert "Environment update completed successfully." in ok.stdout
    assert load.failures == [], load.failures[:5]
    assert info["version"] == "good"
    assert {i["version"] for i in info["instances"]} == {"good"}
    assert len(info["instances"]) == 4
    assert versions_served(beanpole) == {"good"}
    events = beanpole.cli("events", "shop", "-n", "200").stdout
    assert "Failed to deploy application." in events
    assert "Rolled back to version good." in events
    assert failed.returncode == 0  # --no-wait


@pytest.mark.parametrize("scale", [1, 3])
def test_rolling_with_the_default_batch_size_drops_no_request(beanpole, pid_app, tmp_path, scale):
    """Issue #7: with EB's default BatchSize (100 %) Rolling took every instance out of
    service at once (20,302 of 40,487 requests failed under load). A batch is at most the
    capacity minus one, and a single instance is replaced new-first."""
    beanpole.cli(
        "create",
        "shop",
        "--app",
        "shop",
        "--source",
        str(pid_app),
        "--scale",
        str(scale),
        "--setting",
        "beanpole:deploy:BakeTime=1",
        "--setting",
        "beanpole:instance:StartTimeout=5",
    )
    good = variant(pid_app, tmp_path, "good")
    with Load(beanpole.lb_port, "shop") as load:
        beanpole.cli("deploy", "shop", "--source", str(good), "--policy", "Rolling")
        wait_for(lambda: load.ok > 50, 30, "traffic")
    assert load.failures == [], load.failures[:5]
    assert versions_served(beanpole) == {"good"}
    events = beanpole.cli("events", "shop", "-n", "100").stdout
    if scale == 1:
        assert "the new instance is put in service before the old one leaves" in events
    else:
        assert "Rolling batch size reduced from 3 to 2 instance(s)" in events


def test_traffic_splitting_sends_the_new_version_its_share(beanpole, pid_app, tmp_path):
    beanpole.cli(
        "create",
        "shop",
        "--app",
        "shop",
        "--source",
        str(pid_app),
        "--scale",
        "2",
        "--setting",
        "beanpole:deploy:EvaluationSeconds=6",
        "--setting",
        "aws:elasticbeanstalk:trafficsplitting:NewVersionPercent=25",
    )
    new = variant(pid_app, tmp_path, "canary")
    beanpole.cli(
        "deploy", "shop", "--source", str(new), "--policy", "TrafficSplitting", "--no-wait"
    )
    wait_for(
        lambda: "Evaluating version" in beanpole.cli("events", "shop").stdout,
        30,
        "the evaluation to start",
    )
    seen = [json.loads(beanpole.get("shop")[1])["version"] for _ in range(200)]
    share = seen.count("canary") / len(seen)
    assert 0.15 <= share <= 0.35, share
    wait_for(lambda: beanpole.status("shop")["status"] == "Ready", 60, "the cut-over")
    assert versions_served(beanpole) == {"canary"}


def test_all_at_once_has_an_outage_that_is_measured_not_hidden(beanpole, pid_app, tmp_path):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2", *FAST)
    slow = variant(pid_app, tmp_path, "slow")
    (slow / "Procfile").write_text("web: START_DELAY=1 python3 server.py\n")
    with Load(beanpole.lb_port, "shop") as load:
        beanpole.cli("deploy", "shop", "--source", str(slow), "--policy", "AllAtOnce")
    assert any("503" in f for f in load.failures)
    assert versions_served(beanpole) == {"slow"}


def test_abort_returns_to_the_previous_release(beanpole, pid_app, tmp_path):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2", *FAST)
    slow = variant(pid_app, tmp_path, "slow")
    (slow / "Procfile").write_text("web: START_DELAY=30 python3 server.py\n")
    with Load(beanpole.lb_port, "shop") as load:
        beanpole.cli("deploy", "shop", "--source", str(slow), "--no-wait")
        wait_for(lambda: beanpole.status("shop")["status"] == "Updating", 10, "Updating")
        refused = beanpole.cli("deploy", "shop", "--source", str(pid_app), check=False)
        beanpole.cli("abort", "shop")
        info = wait_for(
            lambda: (i := beanpole.status("shop"))["status"] == "Ready" and i,
            60,
            "Ready after abort",
        )
    assert refused.returncode == 1 and "not Ready" in refused.stderr
    assert load.failures == []
    assert info["version"] != "slow" and {i["version"] for i in info["instances"]} == {
        info["version"]
    }
    assert versions_served(beanpole) == {"v1"}


def test_abort_during_a_scale_stops_it_and_restores_the_count(beanpole, pid_app, public_tmp):
    """Issue #7: abort during a scale said it rolled back, exited 0, and the scale finished
    anyway. Now the instances being started stop and the previous settings come back."""
    delay = public_tmp / "start-delay"  # the app (its own user) must read it
    beanpole.cli(
        "create", "shop", "--app", "shop", "--source", str(pid_app),
        "--env", f"START_DELAY_FILE={delay}", *FAST,
        "--setting", "beanpole:instance:StartTimeout=60",
    )  # fmt: skip
    before = beanpole.status("shop")["instances"]
    delay.write_text("60")  # instances started from now on take a minute to listen
    with Load(beanpole.lb_port, "shop") as load:
        beanpole.cli("scale", "shop", "3", "--no-wait")
        wait_for(lambda: len(beanpole.status("shop")["instances"]) == 3, 20, "the scale to start")
        aborted = beanpole.cli("abort", "shop")
        info = wait_for(
            lambda: (i := beanpole.status("shop"))["status"] == "Ready" and i, 30, "Ready"
        )
    assert "Aborted; shop is back on its previous release and settings." in aborted.stdout
    assert [i["id"] for i in info["instances"]] == [i["id"] for i in before]
    resolved = beanpole_settings(beanpole, "shop")
    assert resolved["aws:autoscaling:asg:MinSize"] == "1"
    assert load.failures == []
    events = beanpole.cli("events", "shop", "-n", "100").stdout
    assert "Abort requested: stopping the instances being started" in events
    assert "Added 2 instance(s)" not in events
    again = beanpole.cli("abort", "shop", check=False)
    assert again.returncode == 1
    assert again.stderr == "Error: Environment shop has no operation in progress to abort.\n"


def beanpole_settings(bp, env):
    """The environment's resolved settings, through the API."""
    token = (bp.home / "token").read_text().strip()
    response = httpx.get(
        f"http://127.0.0.1:{bp.api_port}/api/v1/environments/{env}/settings",
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
    )
    return response.json()["resolved"]


def test_rollback_restores_the_previous_version_and_settings(beanpole, pid_app, tmp_path):
    beanpole.cli(
        "create",
        "shop",
        "--app",
        "shop",
        "--source",
        str(pid_app),
        "--label",
        "one",
        "--env",
        "GREETING=first",
        *FAST,
    )
    # (FAST also makes setenv's rolling replacement quick: BakeTime 1 s)
    two = variant(pid_app, tmp_path, "two")
    beanpole.cli("deploy", "shop", "--source", str(two), "--label", "two")
    beanpole.cli("setenv", "shop", "GREETING=second")
    assert json.loads(beanpole.get("shop")[1])["greeting"] == "second"
    beanpole.cli("rollback", "shop")  # to version two with GREETING=first
    body = json.loads(beanpole.get("shop")[1])
    assert (body["version"], body["greeting"]) == ("two", "first")
    assert beanpole.status("shop")["version"] == "two"
    versions = json.loads(beanpole.cli("versions", "shop", "--json").stdout)
    assert {v["label"] for v in versions} == {"one", "two"}
    beanpole.cli("deploy", "shop", "--version", "one")  # an existing version, no rebuild
    assert versions_served(beanpole) == {"v1"}


def test_rollback_restores_the_load_balancer_health_check_too(beanpole, pid_app, tmp_path):
    """Issue #7: rollback restored the settings in the store, but HAProxy kept checking with
    the newer release's HealthCheckInterval."""
    interval = "aws:elasticbeanstalk:environment:process:default:HealthCheckInterval"
    beanpole.cli(
        "create", "shop", "--app", "shop", "--source", str(pid_app), "--label", "one",
        "--setting", f"{interval}=5", *FAST,
    )  # fmt: skip
    beanpole.cli("config", "shop", f"{interval}=7")  # the load balancer only: no new release
    assert "check inter 7s" in backend_config(beanpole, "shop")
    beanpole.cli("deploy", "shop", "--source", str(variant(pid_app, tmp_path, "two")))
    beanpole.cli("rollback", "shop")  # to version one, checked every 5 s
    settings = json.loads(beanpole.cli("status", "shop", "--json").stdout)
    assert settings["version"] == "one"
    assert "check inter 5s" in backend_config(beanpole, "shop")


def backend_config(bp, env):
    """The running HAProxy's configuration of one backend (the file it was last loaded from)."""
    text = (bp.home / "haproxy" / "haproxy.cfg").read_text()
    return text.split(f"backend env-{env}\n", 1)[1].split("\nbackend ", 1)[0]


def test_a_rollback_within_the_bake_window_starts_nothing(beanpole, pid_app, tmp_path):
    """Issue #7: the previous version's instances were stopped during the bake window, so a
    late rollback had to start them again. They now wait out of rotation (weight 0, alive)."""
    beanpole.cli(
        "create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2",
        "--setting", "beanpole:deploy:BakeTime=120",
        "--setting", "aws:elasticbeanstalk:command:BatchSize=50",
    )  # fmt: skip
    before = {i["id"]: i["pid"] for i in beanpole.status("shop")["instances"]}
    new = variant(pid_app, tmp_path, "new")
    with Load(beanpole.lb_port, "shop") as load:
        beanpole.cli("deploy", "shop", "--source", str(new), "--policy", "Rolling", "--no-wait")
        wait_for(
            lambda: "(bake window)" in beanpole.cli("events", "shop").stdout, 60, "the bake window"
        )
        during = {i["id"]: i for i in beanpole.status("shop")["instances"]}
        assert {during[i]["state"] for i in before} == {"standby"}
        assert all(pid_alive(pid) for pid in before.values())
        assert versions_served(beanpole) == {"new"}  # out of rotation
        beanpole.cli("abort", "shop")
        info = wait_for(
            lambda: (i := beanpole.status("shop"))["status"] == "Ready" and i, 60, "Ready"
        )
    assert {i["id"]: i["pid"] for i in info["instances"]} == before  # the same processes
    assert {i["state"] for i in info["instances"]} == {"in-service"}
    assert load.failures == []
    assert versions_served(beanpole) == {"v1"}
    events = beanpole.cli("events", "shop", "-n", "100").stdout
    assert "back in service without a start" in events
    assert "Starting 2 instance(s) of version" not in events.split("Rolling back")[1]


def test_the_previous_version_stops_when_the_bake_window_closes(beanpole, pid_app, tmp_path):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2", *FAST)
    before = {i["id"]: i["pid"] for i in beanpole.status("shop")["instances"]}
    beanpole.cli("deploy", "shop", "--source", str(variant(pid_app, tmp_path, "new")))
    info = beanpole.status("shop")
    assert {i["version"] for i in info["instances"]} == {info["version"]}
    assert len(info["instances"]) == 2 and versions_served(beanpole) == {"new"}
    wait_for(lambda: not any(pid_alive(p) for p in before.values()), 10, "old processes to end")
    events = beanpole.cli("events", "shop", "-n", "100").stdout
    assert "Bake window closed: stopping 2 instance(s) of the previous version." in events


def test_swap_exchanges_urls_without_dropping_a_request(beanpole, pid_app, tmp_path):
    beanpole.cli("create", "blue", "--app", "shop", "--source", str(pid_app), *FAST)
    beanpole.cli("clone", "blue", "green")
    green = variant(pid_app, tmp_path, "green-v")
    beanpole.cli("deploy", "green", "--source", str(green))
    with Load(beanpole.lb_port, "blue") as load:
        result = beanpole.cli("swap", "blue", "green")
        wait_for(
            lambda: json.loads(beanpole.get("blue")[1])["version"] == "green-v",
            10,
            "blue's URL to serve green",
        )
    assert load.failures == []
    assert f"green: http://blue.localhost:{beanpole.lb_port}" in result.stdout
    assert json.loads(beanpole.get("green")[1])["version"] == "v1"
    events = beanpole.cli("events", "blue").stdout
    assert "Completed swapping CNAMEs for environments blue and green." in events


def test_swap_is_refused_unless_both_are_ready(beanpole, pid_app):
    beanpole.cli("create", "blue", "--app", "shop", "--source", str(pid_app))
    result = beanpole.cli("swap", "blue", "nope", check=False)
    assert result.returncode == 1 and "No environment named 'nope'" in result.stderr


def test_kill_9_of_the_server_mid_deploy_ends_ready_on_one_version(beanpole, pid_app, tmp_path):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2", *FAST)
    slow = variant(pid_app, tmp_path, "slow")
    (slow / "Procfile").write_text("web: START_DELAY=3 python3 server.py\n")
    with Load(beanpole.lb_port, "shop") as load:
        beanpole.cli("deploy", "shop", "--source", str(slow), "--no-wait")
        wait_for(
            lambda: len(beanpole.status("shop")["instances"]) > 2, 20, "new instances to start"
        )
        beanpole.kill_server()
        beanpole.start()

        def settled():
            info = beanpole.status("shop")
            versions = {i["version"] for i in info["instances"]}
            ok = (
                info["status"] == "Ready"
                and len(info["instances"]) == 2
                and all(i["state"] == "in-service" for i in info["instances"])
                and versions == {info["version"]}
            )
            return ok and info

        info = wait_for(settled, 60, "one version, two instances, Ready")
    assert load.failures == []
    assert versions_served(beanpole) == {"v1"}
    # no orphan: supervisord runs exactly the two recorded instances
    groups = json.loads(beanpole.cli("status", "shop", "--json").stdout)["instances"]
    assert all(pid_alive(i["pid"]) for i in groups)
    supervisor_groups = list((beanpole.home / "supervisor" / "programs").glob("*.conf"))
    assert sorted(p.stem for p in supervisor_groups) == sorted(i["id"] for i in info["instances"])


def test_after_kill_9_mid_rolling_deploy_status_is_updating_until_one_version_serves(
    beanpole, pid_app, tmp_path, public_tmp
):
    """Issue #7: after a kill -9 in the middle of a Rolling deploy, `status` said Ready at
    once while instances of two versions ran and the recorded release was being restored."""
    delay = public_tmp / "start-delay"  # the app (its own user) must read it
    beanpole.cli(
        "create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2",
        "--env", f"START_DELAY_FILE={delay}", *FAST,
        "--setting", "beanpole:instance:StartTimeout=30",
    )  # fmt: skip
    new = variant(pid_app, tmp_path, "new")
    # batch 2 then takes 3 s to start: the kill lands before the deployment completes
    (new / "Procfile").write_text("web: START_DELAY=3 python3 server.py\n")
    with Load(beanpole.lb_port, "shop") as load:
        beanpole.cli("deploy", "shop", "--source", str(new), "--policy", "Rolling", "--no-wait")
        wait_for(
            lambda: "Deployment batch 1 completed" in beanpole.cli("events", "shop").stdout,
            30,
            "the first batch in service",
        )
        # every instance started from now on (batch 2, the recovery's) takes 5 s more, so the
        # first `status` after the restart finds the recovery still running however slow the
        # machine is
        delay.write_text("5")
        beanpole.kill_server()
        beanpole.start()
        seen = []

        def settled():
            info = beanpole.status("shop")
            seen.append(info)
            versions = {i["version"] for i in info["instances"]}
            return (
                info["status"] == "Ready"
                and versions == {info["version"]}
                and all(i["state"] == "in-service" for i in info["instances"])
                and len(info["instances"]) == 2
            )

        wait_for(settled, 60, "one version, two instances, Ready")
    two_versions = [
        info
        for info in seen
        if info["status"] == "Ready"
        and (
            len({i["version"] for i in info["instances"]}) > 1
            or any(i["state"] != "in-service" for i in info["instances"])
        )
    ]
    assert two_versions == []
    assert seen[0]["status"] == "Updating"
    assert load.failures == []
    assert "Recovery completed: 2 instance(s) of version" in beanpole.cli("events", "shop").stdout


def test_version_lifecycle_keeps_the_newest_and_never_a_deployed_one(beanpole, pid_app, tmp_path):
    beanpole.cli(
        "create", "shop", "--app", "shop", "--source", str(pid_app), "--label", "one", *FAST
    )
    beanpole.cli("versions", "shop", "--keep", "1")
    beanpole.cli(
        "deploy", "shop", "--source", str(variant(pid_app, tmp_path, "two")), "--label", "two"
    )
    # "one" was still deployed when "two" was uploaded, so both stay
    assert labels(beanpole) == {"one", "two"}
    beanpole.cli(
        "deploy",
        "shop",
        "--source",
        str(variant(pid_app, tmp_path, "three")),
        "--label",
        "three",
        "--no-wait",
    )
    # uploading "three" removes "one" (no longer deployed), keeps "two" (deployed)
    wait_for(lambda: beanpole.status("shop")["status"] == "Ready", 60, "the deploy")
    assert labels(beanpole) == {"two", "three"}
    assert beanpole.cli("rollback", "shop").returncode == 0  # back to "two"
    beanpole.cli("versions", "shop", "--keep", "1")
    # "three" is the newest, "two" is deployed: both stay
    assert labels(beanpole) == {"two", "three"}


def labels(bp):
    return {v["label"] for v in json.loads(bp.cli("versions", "shop", "--json").stdout)}
