"""Listener rules (issue 14, part 3): paths and hosts routed to a second Procfile process,
as EB's Application Load Balancer does, through the real HAProxy and isolated instances."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from beanpole.adapters.runtime import netns

from harness import Beanpole, Load, wait_for

pytestmark = pytest.mark.slow
needs_netns = pytest.mark.skipif(
    netns.unavailable() is not None,
    reason=f"a process's own port needs instances with a network of their own: "
    f"{netns.unavailable()}",
)

PROC = "aws:elasticbeanstalk:environment:process:api"
RULE = "aws:elbv2:listenerrule"
SETTINGS = {
    f"{PROC}:Port": "5100",
    f"{PROC}:HealthCheckPath": "/healthz",
    f"{RULE}:api:PathPatterns": "/api/*",
    f"{RULE}:api:Process": "api",
    f"{RULE}:api:Priority": "2",
    # a rule to the default process keeps what it matches from the later rule
    f"{RULE}:legacy:PathPatterns": "/api/legacy*",
    f"{RULE}:legacy:Priority": "1",
    f"{RULE}:admin:HostHeaders": "admin.example.test",
    f"{RULE}:admin:Process": "api",
    f"{RULE}:admin:Priority": "3",
}


def settings_args(settings: dict[str, str]) -> list[str]:
    return [arg for key, value in settings.items() for arg in ("--setting", f"{key}={value}")]


def get(bp: Beanpole, path: str, host: str = "shop.localhost") -> dict[str, object]:
    conn = http.client.HTTPConnection("127.0.0.1", bp.lb_port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        assert response.status == 200, (path, host, response.status, body)
        return dict(json.loads(body))
    finally:
        conn.close()


EBEXTENSIONS = """\
option_settings:
  aws:elbv2:listener:default:
    Rules: api
  aws:elasticbeanstalk:environment:process:api:
    Port: '5100'
    HealthCheckPath: /healthz
  aws:elbv2:listenerrule:api:
    PathPatterns: /api/*
    Priority: 1
    Process: api
"""


def create_with_api_process(bp: Beanpole, app: Path, *, ebextensions: bool = False) -> None:
    """Two instances of a web and an api process; each of them answers its own paths.

    The api process reads PORT and binds 127.0.0.1 (the instance's loopback), like web. The
    rules are given as settings, or in the bundle's .ebextensions as EB's docs write them."""
    (app / "Procfile").write_text("web: python3 server.py\napi: GREETING=api python3 server.py\n")
    if ebextensions:
        (app / ".ebextensions").mkdir()
        (app / ".ebextensions" / "alb-rules.config").write_text(EBEXTENSIONS)
    bp.cli(
        "create", "shop", "--app", "shop", "--source", str(app), "--scale", "2",
        *([] if ebextensions else settings_args(SETTINGS)),
    )  # fmt: skip
    instances = {i["id"] for i in bp.status("shop")["instances"]}
    assert get(bp, "/")["greeting"] == "hello"
    served = [get(bp, "/api/orders?x=1") for _ in range(8)]
    assert {s["greeting"] for s in served} == {"api"}
    assert {s["instance"] for s in served} == instances  # every instance's api process


@needs_netns
def test_rules_route_paths_and_hosts_to_the_api_process_on_its_own_port(beanpole, pid_app):
    bp = beanpole
    create_with_api_process(bp, pid_app)
    assert get(bp, "/api/legacy/x")["greeting"] == "hello"  # priority 1: the default process
    assert get(bp, "/apiary")["greeting"] == "hello"  # /api/* needs the slash

    # a host rule: the host must reach the environment (its CNAME or a domain of it)
    bp.cli("domains", "add", "shop", "admin.example.test")
    assert get(bp, "/", host="admin.example.test")["greeting"] == "api"
    assert get(bp, "/", host="shop.localhost")["greeting"] == "hello"

    # a rule attached to the HTTPS listener only leaves HTTP to the default process
    bp.cli("config", "shop", "aws:elbv2:listener:443:Rules=api")
    assert get(bp, "/api/orders")["greeting"] == "hello"
    bp.cli("config", "shop", "aws:elbv2:listener:default:Rules=api,admin")
    assert get(bp, "/api/orders")["greeting"] == "api"

    # a new version rolls out under load on both processes: no request fails
    (pid_app / "VERSION").write_text("v2\n")
    with (
        Load(bp.lb_port, "shop", path="/api/orders") as api_load,
        Load(bp.lb_port, "shop", path="/") as web_load,
    ):
        bp.cli("deploy", "shop", "--source", str(pid_app), "--policy", "Rolling")
    assert api_load.ok > 0 and web_load.ok > 0
    assert api_load.failures == [] and web_load.failures == []
    assert {json.loads(b)["greeting"] for b in api_load.bodies} == {"api"}
    assert get(bp, "/api/orders")["version"] == "v2"

    # a version whose api process fails its own check does not complete: v2 keeps serving
    serving = bp.status("shop")["version"]
    (pid_app / "VERSION").write_text("v3\n")
    (pid_app / "Procfile").write_text(
        "web: python3 server.py\napi: GREETING=api UNHEALTHY=1 python3 server.py\n"
    )
    with Load(bp.lb_port, "shop", path="/api/orders") as api_load:
        failed = bp.cli(
            "deploy", "shop", "--source", str(pid_app), "--policy", "Rolling", check=False
        )
    assert failed.returncode == 1, failed.stdout
    assert "process api: health check answered 500" in failed.stderr, failed.stderr
    assert api_load.ok > 0 and api_load.failures == []
    assert {json.loads(b)["version"] for b in api_load.bodies} == {"v2"}
    assert bp.status("shop")["version"] == serving
    assert get(bp, "/api/orders")["version"] == "v2"

    # the api process failing its own health check makes its instances fail theirs
    bp.cli("config", "shop", f"{PROC}:HealthCheckPath=/fail", f"{PROC}:HealthCheckInterval=2")

    def flagged() -> bool:
        data = json.loads(bp.cli("health", "shop", "--json").stdout)
        return all(
            i["status"] == "Severe" and "Failing health checks" in i["causes"]
            for i in data["instances"]
        )

    wait_for(flagged, 60, "the instances to fail the api process's health check")
    assert get(bp, "/")["greeting"] == "hello"  # the default process is still served


@needs_netns
def test_a_rule_to_an_undeclared_process_is_refused_with_the_fix(beanpole, pid_app):
    bp = beanpole
    bp.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    refused = bp.cli(
        "config",
        "shop",
        f"{RULE}:w:PathPatterns=/w/*",
        f"{RULE}:w:Process=worker",
        check=False,
    )
    assert refused.returncode != 0
    assert "set aws:elasticbeanstalk:environment:process:worker Port" in refused.stderr
    on_host = bp.cli(
        "config", "shop", *(f"{k}={v}" for k, v in SETTINGS.items()),
        "beanpole:instance:NetworkIsolation=none", check=False,
    )  # fmt: skip
    assert on_host.returncode != 0
    assert "set beanpole:instance NetworkIsolation to auto" in on_host.stderr
    assert get(bp, "/w/x")["greeting"] == "hello"  # nothing changed
    assert get(bp, "/api/x")["greeting"] == "hello"


def test_containers_reach_the_api_process_the_bundles_ebextensions_route_to(
    beanpole_docker, pid_app
):
    create_with_api_process(beanpole_docker, pid_app, ebextensions=True)
