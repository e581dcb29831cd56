"""Instances as Docker containers (issue 12, part 1): `beanpole server start --runtime docker`.

Real server, HAProxy and Docker engine; the apps listen on a fixed port and ignore ``PORT``,
as AWS's samples do. Skipped with the reason where no Docker engine answers
(`scripts/bootstrap.sh --docker` installs and starts one).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import docker as docker_sdk
import pytest

from harness import Beanpole, Load, wait_for

pytestmark = pytest.mark.slow

EXPRESS_8080 = Path(__file__).parent.parent / "apps" / "express8080"  # AWS's sample, in short
PYTHON_APP = """\
import json, os, socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = {version!r}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({{"host": socket.gethostname(), "version": VERSION}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", 8000), Handler).serve_forever()
"""


def containers(home: Path) -> dict[str, list[str]]:
    """Instance id → the ids of its containers, for this home."""
    client = docker_sdk.from_env()
    try:
        out: dict[str, list[str]] = {}
        for row in client.api.containers(all=True, filters={"label": f"beanpole.home={home}"}):
            out.setdefault(row["Labels"]["beanpole.instance"], []).append(row["Id"])
        return {k: sorted(v) for k, v in out.items()}
    finally:
        client.close()


def connects(host: str, port: int, user: str | None = None) -> bool:
    """Whether a host process (as ``user``) can open a connection to ``host:port``."""
    code = f"import socket; socket.create_connection(({host!r}, {port}), 3).close()"
    done = subprocess.run(
        ["/usr/bin/python3", "-c", code], user=user, capture_output=True, timeout=30, check=False
    )
    return done.returncode == 0


def container_connects(home: Path, network: str | None, host: str, port: int) -> bool:
    """Whether another container, on ``network`` (None: this home's own), can connect."""
    client = docker_sdk.from_env()
    try:
        if network is None:
            (ours,) = client.networks.list(filters={"label": f"beanpole.home={home}"})
            network = ours.name
        (image,) = [t for i in client.images.list("beanpole/host-root") for t in i.tags][:1]
        code = f"import socket; socket.create_connection(({host!r}, {port}), 3).close()"
        try:
            client.containers.run(
                image,
                ["python3", "-c", code],
                network=network,
                mounts=[docker_sdk.types.Mount("/usr", "/usr", type="bind", read_only=True)],
                remove=True,
            )
        except docker_sdk.errors.ContainerError:
            return False
        return True
    finally:
        client.close()


def hosts_served(bp: Beanpole, env: str, requests: int = 60) -> set[str]:
    hosts = set()
    for _ in range(requests):
        status, body = bp.get(env, "/")
        assert status == 200, body
        hosts.add(json.loads(body)["host"])
    return hosts


def python_app(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(PYTHON_APP.format(version=version))
    (folder / "requirements.txt").write_text("")
    (folder / "Procfile").write_text("web: python app.py\n")
    return folder


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_express_sample_on_8080_runs_as_three_containers(beanpole_docker, tmp_path):
    bp = beanpole_docker
    app = tmp_path / "express-8080"
    shutil.copytree(EXPRESS_8080, app)
    bp.cli("create", "fixed", "--app", "fixed", "--source", str(app), "--scale", "3")
    instances = bp.status("fixed")["instances"]
    assert [i["state"] for i in instances] == ["in-service"] * 3, instances
    assert {(i["network"], i["port"]) for i in instances} == {("own", 8080)}
    assert len({i["host"] for i in instances}) == 3
    assert hosts_served(bp, "fixed") == {i["id"] for i in instances}
    # a pod each: the network holder and the web process
    held = containers(bp.home)
    assert set(held) == {i["id"] for i in instances}
    assert all(len(ids) == 2 for ids in held.values())

    bp.cli("terminate", "fixed")
    assert containers(bp.home) == {}


def test_containers_are_adopted_after_a_server_kill_and_a_rolling_deploy_drops_nothing(
    beanpole_docker, tmp_path
):
    bp = beanpole_docker
    v1 = python_app(tmp_path / "v1", "v1")
    bp.cli("create", "py8000", "--app", "py8000", "--source", str(v1), "--scale", "2")
    instances = bp.status("py8000")["instances"]
    assert {(i["state"], i["network"], i["port"]) for i in instances} == {
        ("in-service", "own", 8000)
    }  # the app binds 127.0.0.1:8000 inside its container: reached through its DNAT
    before = containers(bp.home)
    assert set(before) == {i["id"] for i in instances}
    # only the load balancer's side reaches an instance: root (HAProxy, the probes) does; a
    # host process of another user, a container on the home's network or on Docker's
    # default one does not
    target = (instances[0]["host"], 8000)
    assert connects(*target)
    assert not connects(*target, user="nobody")
    assert not container_connects(bp.home, None, *target)
    assert not container_connects(bp.home, "bridge", *target)

    with Load(bp.lb_port, "py8000") as load:
        wait_for(lambda: load.ok >= 50, 30, "requests to flow")
        bp.kill_server()
        bp.start()
        wait_for(lambda: bp.status("py8000")["status"] == "Ready", 60, "Ready again")
        assert containers(bp.home) == before  # adopted: the same containers, none added

        v2 = python_app(tmp_path / "v2", "v2")
        bp.cli("deploy", "py8000", "--source", str(v2), "--label", "v2", "--policy", "Rolling")
        wait_for(lambda: load.ok >= 100, 30, "requests after the deploy")
    assert load.failures == [], load.failures[:5]
    after = bp.status("py8000")["instances"]
    assert {i["version"] for i in after} == {"v2"} and len(after) == 2
    assert {json.loads(b)["version"] for b in load.bodies[-20:]} == {"v2"}
    assert set(containers(bp.home)) == {i["id"] for i in after}  # the old pods are gone

    bp.cli("terminate", "py8000")
    assert containers(bp.home) == {}


HUNGRY_APP = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

hoard = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/eat":
            hoard.append(bytearray(512 * 1024 * 1024))
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


def test_an_instance_over_its_memory_limit_is_killed_with_an_event_naming_the_limit(
    beanpole_docker, tmp_path
):
    bp = beanpole_docker
    app = tmp_path / "hungry"
    app.mkdir()
    (app / "app.py").write_text(HUNGRY_APP)
    (app / "Procfile").write_text("web: python3 app.py\n")
    bp.cli(
        "create", "hungry", "--app", "hungry", "--source", str(app),
        "--setting", "beanpole:instance:MemoryLimit=64",
    )  # fmt: skip
    assert bp.get("hungry", "/")[0] == 200
    bp.get("hungry", "/eat", timeout=30)  # the kernel kills it while it allocates
    wait_for(
        lambda: "OOM: exceeded 64 MiB" in bp.cli("events", "hungry", "-n", "50").stdout,
        60,
        "an event naming the memory limit",
    )
    wait_for(lambda: bp.get("hungry", "/")[0] == 200, 60, "the instance back in service")
    bp.cli("terminate", "hungry")


def test_one_server_runs_both_runtimes_and_a_new_default_keeps_each_instance_where_it_is(
    beanpole_with_engine, pid_app
):
    """beanpole:instance:Runtime=docker on a supervisord server: AWS's Express sample (its
    shape) as 3 containers beside an environment of supervisord processes. After kill -9
    of the server, a start with --runtime docker adopts both as they are (the same
    containers, the same process), and only new instances follow the new default."""
    bp = beanpole_with_engine
    bp.cli("create", "procs", "--app", "procs", "--source", str(pid_app))
    bp.cli(
        "create", "boxes", "--app", "boxes", "--source", str(EXPRESS_8080), "--scale", "3",
        "--setting", "beanpole:instance:Runtime=docker",
    )  # fmt: skip
    boxes = containers(bp.home)
    assert sorted(boxes) == sorted(i["id"] for i in bp.status("boxes")["instances"])
    hosts = {json.loads(bp.get("boxes", "/")[1])["host"] for _ in range(12)}
    assert len(hosts) == 3  # three containers, each its own host name, all on 8080
    status, body = bp.get("procs", "/")
    assert status == 200
    procs_pid = json.loads(body)["pid"]
    (procs_instance,) = bp.status("procs")["instances"]
    assert procs_instance["id"] not in boxes  # a process under supervisord

    bp.kill_server()
    assert bp.get("boxes", "/")[0] == 200 and bp.get("procs", "/")[0] == 200
    bp.runtime = "docker"
    bp.start()
    wait_for(lambda: bp.status("procs")["health"] == "Green", 60, "procs to be Green")
    assert containers(bp.home) == boxes  # the same containers, none added
    assert json.loads(bp.get("procs", "/")[1])["pid"] == procs_pid  # the same process
    assert [i["id"] for i in bp.status("procs")["instances"]] == [procs_instance["id"]]

    bp.cli("create", "later", "--app", "later", "--source", str(pid_app))
    (later,) = bp.status("later")["instances"]
    assert later["id"] in containers(bp.home)  # the new default: Docker
    bp.cli("terminate", "boxes")
    assert set(containers(bp.home)) == {later["id"]}
