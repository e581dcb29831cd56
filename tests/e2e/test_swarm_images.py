"""Docker-platform versions on the swarm (issue 13, part 2): each version is built once into
an image, pushed to the registry Beanpole runs, and every node pulls it by digest.

Real server, HAProxy, registry and a 3-node swarm (`swarmkit`); skipped with the reason
where the test bed cannot run.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import docker as docker_sdk
import pytest

from harness import Beanpole, Load, wait_for

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BASE = "beanpole/debian:bookworm"
APP = """\
import json, os, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = {version!r}
if VERSION == "crash":
    print("cannot start: QUEUE_URL is not set", file=sys.stderr)
    sys.exit(3)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({{"version": VERSION, "host": socket.gethostname()}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("request", self.path, flush=True)


print("listening", flush=True)
ThreadingHTTPServer(("0.0.0.0", 5000), Handler).serve_forever()
"""


def image_app(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(APP.format(version=version))
    (folder / "Dockerfile").write_text(
        textwrap.dedent(f"""\
            FROM {BASE}
            COPY app.py /srv/app.py
            USER 65534
            EXPOSE 5000
            CMD ["python3", "-u", "/srv/app.py"]
            """)
    )
    return folder


def services(bp: Beanpole) -> list[dict]:
    client = docker_sdk.APIClient(bp.swarm.manager_url)  # type: ignore[attr-defined]
    try:
        # the module's server runs this one environment
        return list(client.services(filters={"label": [f"beanpole.home={bp.home}"]}))
    finally:
        client.close()


def test_a_dockerfile_version_is_pulled_by_digest_on_every_node_and_rolls_out(
    beanpole_swarm, tmp_path
):
    bp = beanpole_swarm
    try:
        docker_sdk.from_env().api.inspect_image(BASE)
    except docker_sdk.errors.ImageNotFound:
        pytest.skip(f"{BASE} is not on this host: scripts/bootstrap.sh --docker makes it")
    bp.cli("create", "imgweb", "--app", "imgweb", "--source", str(image_app(tmp_path / "v1", "v1")),
           "--scale", "3")  # fmt: skip
    status, body = bp.get("imgweb", "/")
    assert status == 200 and json.loads(body)["version"] == "v1"
    # one image, named by digest in the registry on this host, on three nodes
    found = services(bp)
    images = {s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] for s in found}
    assert len(found) == 3 and len(images) == 1, images
    image = images.pop()
    registry = f"{bp.swarm.host_address}:"  # type: ignore[attr-defined]
    assert image.startswith(registry) and "@sha256:" in image, image
    for node in ("n1", "n2", "n3"):
        engine = docker_sdk.APIClient(bp.swarm.url(node))  # type: ignore[attr-defined]
        try:
            digests = {d for i in engine.images() for d in i.get("RepoDigests") or []}
        finally:
            engine.close()
        assert any(d.endswith(image.rpartition("@")[2]) for d in digests), (node, digests)
    # the engine's output reaches Beanpole's log files
    wait_for(lambda: "listening" in bp.cli("logs", "imgweb").stdout, 30, "the app's output")

    with Load(bp.lb_port, "imgweb") as load:
        wait_for(lambda: load.ok >= 50, 30, "requests to flow")
        v2 = image_app(tmp_path / "v2", "v2")
        bp.cli("deploy", "imgweb", "--source", str(v2), "--label", "v2", "--policy", "Rolling")
        crash = image_app(tmp_path / "crash", "crash")
        failed = bp.cli(
            "deploy", "imgweb", "--source", str(crash), "--label", "crash", "--policy", "Rolling",
            check=False,
        )  # fmt: skip
        count = load.ok
        wait_for(lambda: load.ok >= count + 50, 30, "requests after the failed deploy")
    assert failed.returncode != 0
    assert "QUEUE_URL is not set" in failed.stdout + failed.stderr
    assert load.failures == [], load.failures[:5]
    assert {json.loads(b)["version"] for b in load.bodies[-20:]} == {"v2"}
    assert len(services(bp)) == 3
    bp.cli("terminate", "imgweb")
    wait_for(lambda: not services(bp), 60, "the environment's services to be removed")


@pytest.mark.parametrize(
    ("platform", "says"),
    [("python", "Listening at"), ("node", "listening on"), ("static", None)],
)
def test_a_python_node_or_static_version_runs_from_an_image_of_its_build(
    beanpole_swarm, platform, says
):
    """Built once on Beanpole's host (dependencies installed there), then an image of the
    build: its dependencies' and app's layers over the host-root image, pulled by digest."""
    bp = beanpole_swarm
    env = f"ex-{platform}"
    bp.cli("create", env, "--app", env, "--source", str(EXAMPLES / platform), "--scale", "2")
    status, _ = bp.get(env, "/")
    assert status == 200
    found = services(bp)  # the server's one environment now
    images = {s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] for s in found}
    assert len(found) == 2 and len(images) == 1, images
    assert "/beanpole/build@sha256:" in images.pop()
    if says is not None:  # the processes' output comes back through the engine
        wait_for(lambda: says in bp.cli("logs", env).stdout, 30, "the app's output in its logs")
    bp.cli("terminate", env)
    wait_for(lambda: not services(bp), 60, "the environment's services to be removed")
