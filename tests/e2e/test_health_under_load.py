"""Enhanced health against real HAProxy, supervisord and the request stream (issue #4).

One instance of three is made to answer 5xx (its load-balancer check keeps passing, so only
the request stream can tell): `beanpole health` must show it Degraded or Severe with EB's
cause while the others stay Ok, the environment and its events must follow, and removing the
fault must bring everything back to Ok.
"""

import json
import re
import shutil

import httpx

from harness import Load, wait_for

PROC = "aws:elasticbeanstalk:environment:process:default"


def health(bp, env="shop"):
    return json.loads(bp.cli("health", env, "--json").stdout)


def by_id(data):
    return {i["id"]: i for i in data["instances"]}


def api(bp, path):
    token = (bp.home / "token").read_text().strip()
    url = f"http://127.0.0.1:{bp.api_port}{path}"
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_an_instance_answering_5xx_is_degraded_with_its_cause_and_recovers(
    beanpole, pid_app, public_tmp
):
    faults = public_tmp / "faults"
    faults.mkdir()
    beanpole.cli(
        "create",
        "shop",
        "--app",
        "shop",
        "--source",
        str(pid_app),
        "--scale",
        "3",
        "--env",
        f"FAULT_DIR={faults}",
        "--setting",
        f"{PROC}:HealthCheckPath=/healthz",
    )
    ids = [i["id"] for i in beanpole.status("shop")["instances"]]
    victim, others = ids[0], ids[1:]
    with Load(beanpole.lb_port, "shop") as load:
        wait_for(
            lambda: all(i["status"] == "Ok" for i in health(beanpole)["instances"]),
            40,
            "every instance to be Ok under steady load",
        )
        (faults / victim).write_text("500")

        def victim_flagged():
            data = health(beanpole)
            instances = by_id(data)
            bad = instances[victim]
            return (
                bad["status"] in ("Degraded", "Severe")
                and any("of the requests are failing with HTTP 5xx" in c for c in bad["causes"])
                and all(instances[o]["status"] == "Ok" for o in others)
                and data["status"] in ("Degraded", "Severe")
                and data
            )

        data = wait_for(victim_flagged, 20, f"{victim} to be flagged for its 5xx answers")
        assert data["requests"]["status_5xx"] > 0
        assert data["instances"][0]["requests"]["requests"] > 0
        table = beanpole.cli("health", "shop").stdout
        assert victim in table and "failing with HTTP 5xx" in table
        assert beanpole.status("shop")["health"] == "Red"

        (faults / victim).unlink()

        def recovered():
            data = health(beanpole)
            # Info, not Ok, while "Application deployment completed N seconds ago" is shown
            return (
                data["status"] in ("Ok", "Info")
                and not any("5xx" in c for c in data["causes"])
                and all(i["status"] == "Ok" for i in data["instances"])
            )

        wait_for(recovered, 30, "the environment to recover once the fault is gone")
    assert load.ok > 100
    events = beanpole.cli("events", "shop", "-n", "200").stdout
    worse = re.search(
        r"Environment health has transitioned from \w+ to (Degraded|Severe)\.", events
    )
    assert worse, events
    assert "failing with HTTP 5xx" in events[worse.start() :]
    assert re.search(r"transitioned from (Degraded|Severe) to (Ok|Info)\.", events), events


def test_metrics_history_and_prometheus_are_labelled_per_instance(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2")
    ids = {i["id"] for i in beanpole.status("shop")["instances"]}
    with Load(beanpole.lb_port, "shop"):

        def stored():
            points = api(beanpole, "/api/v1/environments/shop/metrics").json()["points"]
            return points if points and points[-1]["requests"] > 0 else None

        points = wait_for(stored, 30, "a stored 10 s window with requests")
    assert points[-1]["duration_s"] == 10.0
    assert set(points[-1]["latency_ms"]) >= {"99.0", "50.0"}
    one = sorted(ids)[0]
    per_instance = api(beanpole, f"/api/v1/environments/shop/metrics?instance={one}").json()
    assert per_instance["instance"] == one and per_instance["points"]

    text = api(beanpole, "/metrics").text
    assert 'beanpole_requests_per_second{application="shop",environment="shop",instance=""}' in (
        text
    )
    for instance in ids:
        assert f'instance="{instance}"' in text
    total = re.search(
        r'beanpole_http_responses_total\{application="shop",code="2xx",environment="shop",'
        r'instance=""\} (\d+)',
        text,
    )
    assert total and int(total.group(1)) > 0, text
    assert "beanpole_health_status{" in text
    assert api(beanpole, "/api/v1/environments/shop/metrics?since=10&until=5").status_code == 400


def test_a_version_much_slower_than_the_last_is_rolled_back(beanpole, pid_app, tmp_path):
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
        "beanpole:deploy:BakeTime=30",
        "--setting",
        "beanpole:deploy:MaxLatencyP99=150",
    )
    slow = tmp_path / "slow"
    shutil.copytree(pid_app, slow)
    (slow / "VERSION").write_text("slow\n")
    (slow / "SLOW").write_text("0.3\n")
    # four sequential clients: about 13 slow answers a second, so the gate's 100 request
    # lines arrive within the bake window
    loads = [Load(beanpole.lb_port, "shop") for _ in range(4)]
    with loads[0] as load, loads[1], loads[2], loads[3]:
        failed = beanpole.cli(
            "deploy", "shop", "--source", str(slow), "--label", "slow", check=False
        )
    assert failed.returncode != 0
    assert "too slow" in failed.stdout + failed.stderr
    info = beanpole.status("shop")
    assert info["version"] != "slow"
    assert {i["version"] for i in info["instances"] if i["state"] == "in-service"} == {
        info["version"]
    }
    assert not [f for f in load.failures], load.failures[:5]


def test_request_lines_forged_by_another_local_process_change_no_health(beanpole, pid_app):
    """Any local process can send the request port datagrams; without the token HAProxy
    starts its lines with, 5xx lines for an instance count for nothing (issue 14, part 7),
    while the real requests through HAProxy are counted."""
    import socket
    import time

    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    (instance,) = beanpole.status("shop")["instances"]
    port = json.loads((beanpole.home / "config.json").read_text())["log_port"]
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(200):
            line = f'{int(time.time() * 1000)} env-shop {instance["id"]} 500 3 1 10 ::1 GET "/"'
            forger.sendto(line.encode(), ("127.0.0.1", port))
    finally:
        forger.close()
    for _ in range(20):
        assert beanpole.get("shop", "/")[0] == 200

    def counted():
        data = health(beanpole)
        return data if data["requests"]["requests"] >= 20 else None

    data = wait_for(counted, 30, "the real requests to be counted")
    assert data["requests"]["status_5xx"] == 0
    assert data["requests"]["requests"] < 200  # the forged lines are not among them
    assert beanpole.status("shop")["health"] == "Green"
    access = (beanpole.home / "logs" / "access" / "shop.access.log").read_text()
    assert " 500 " not in access and (beanpole.home / "request-token").read_text().strip() not in (
        access
    )
