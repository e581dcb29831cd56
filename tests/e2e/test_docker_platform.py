"""The Docker platform (issue 12, part 2): Dockerfile and Dockerrun.aws.json bundles on a
server started with ``--runtime docker``.

Real server, HAProxy and Docker engine. No registry is reached: the images start FROM
``beanpole/debian:bookworm``, which `scripts/bootstrap.sh --docker` makes from Debian's
packages; skipped with the reason where it or the engine is missing.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import docker as docker_sdk
import pytest

from harness import Beanpole, Load, wait_for

BASE = "beanpole/debian:bookworm"

pytestmark = pytest.mark.slow

APP = """\
import json, os, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = {version!r}
if VERSION.startswith("crash"):
    print("cannot start: DATABASE_URL is not set", file=sys.stderr)
    sys.exit(3)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({{
            "host": socket.gethostname(),
            "version": VERSION,
            "port": os.environ.get("PORT"),
            "colour": os.environ.get("COLOUR"),
            "user": os.getuid(),
        }}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("request", self.path, flush=True)


print("listening on {port}", flush=True)
ThreadingHTTPServer(("0.0.0.0", {port}), Handler).serve_forever()
"""


def dockerfile_app(folder: Path, version: str, port: int = 5000, extra: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(APP.format(version=version, port=port))
    (folder / "Dockerfile").write_text(
        textwrap.dedent(f"""\
            FROM {BASE}
            WORKDIR /srv
            COPY app.py .
            {extra}
            USER 65534
            EXPOSE {port}
            CMD ["python3", "-u", "app.py"]
            """)
    )
    return folder


@pytest.fixture
def engine():
    client = docker_sdk.from_env()
    try:
        client.api.inspect_image(BASE)
    except docker_sdk.errors.ImageNotFound:
        client.close()
        pytest.skip(f"{BASE} is not on this host: scripts/bootstrap.sh --docker makes it")
    yield client
    client.close()


def answer(bp: Beanpole, env: str) -> dict[str, object]:
    status, body = bp.get(env, "/")
    assert status == 200, body
    return json.loads(body)


def test_a_dockerfile_app_builds_once_rolls_out_under_load_and_rolls_back_a_crash(
    beanpole_docker, engine, tmp_path
):
    bp = beanpole_docker
    v1 = dockerfile_app(tmp_path / "v1", "v1")
    out = bp.cli(
        "create", "dockerweb", "--app", "dockerweb", "--source", str(v1), "--scale", "2",
        "--env", "COLOUR=blue",
    ).stdout  # fmt: skip
    assert "Building the Docker image" in out
    first = answer(bp, "dockerweb")
    # the image's own port (EXPOSE), PORT set to it, its own user, the properties
    assert (first["version"], first["port"], first["colour"], first["user"]) == (
        "v1", "5000", "blue", 65534,
    )  # fmt: skip
    instances = bp.status("dockerweb")["instances"]
    assert {(i["network"], i["port"]) for i in instances} == {("own", 5000)}
    # the engine's output reaches Beanpole's logs
    wait_for(
        lambda: "listening on 5000" in bp.cli("logs", "dockerweb").stdout, 30, "the app's output"
    )

    with Load(bp.lb_port, "dockerweb") as load:
        wait_for(lambda: load.ok >= 50, 30, "requests to flow")
        v2 = dockerfile_app(tmp_path / "v2", "v2")
        bp.cli("deploy", "dockerweb", "--source", str(v2), "--label", "v2", "--policy", "Rolling")
        v3 = dockerfile_app(tmp_path / "v3", "v3")
        bp.cli("deploy", "dockerweb", "--source", str(v3), "--label", "v3", "--policy", "Immutable")
        crash = dockerfile_app(tmp_path / "crash", "crash")
        failed = bp.cli(
            "deploy", "dockerweb", "--source", str(crash), "--label", "crash", "--policy",
            "Rolling", check=False,
        )  # fmt: skip
        count = load.ok
        wait_for(lambda: load.ok >= count + 50, 30, "requests after the failed deploy")
    assert failed.returncode != 0
    assert "DATABASE_URL is not set" in failed.stdout + failed.stderr
    assert load.failures == [], load.failures[:5]
    served = {json.loads(b)["version"] for b in load.bodies}
    assert served <= {"v1", "v2", "v3"} and "v3" in served
    assert answer(bp, "dockerweb")["version"] == "v3"
    assert {i["version"] for i in bp.status("dockerweb")["instances"]} == {"v3"}
    bp.cli("terminate", "dockerweb")


def test_a_dockerrun_file_runs_the_image_it_names_on_its_port(beanpole_docker, engine, tmp_path):
    bp = beanpole_docker
    image = "beanpole-test/dockerrun-app:1"
    context = dockerfile_app(tmp_path / "image", "from-dockerrun", port=8000)
    engine.images.build(path=str(context), tag=image, rm=True)
    try:
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        (bundle / "Dockerrun.aws.json").write_text(
            json.dumps(
                {
                    "AWSEBDockerrunVersion": "1",
                    "Image": {"Name": image, "Update": "false"},
                    "Ports": [{"ContainerPort": "8000", "HostPort": "80"}],
                }
            )
        )
        bp.cli("create", "dockerrun", "--app", "dockerrun", "--source", str(bundle))
        got = answer(bp, "dockerrun")
        assert (got["version"], got["port"]) == ("from-dockerrun", "8000")
        bp.cli("terminate", "dockerrun")
    finally:
        engine.images.remove(image, force=True)


def test_a_failing_build_and_a_missing_base_image_say_what_to_do(beanpole_docker, engine, tmp_path):
    bp = beanpole_docker
    broken = dockerfile_app(tmp_path / "broken", "v1", extra="RUN echo compiling && exit 7")
    failed = bp.cli("create", "broken", "--app", "broken", "--source", str(broken), check=False)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "docker build failed" in text and "compiling" in text, text

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "Dockerfile").write_text("FROM python:3.12-slim-not-here\nCMD python3\n")
    failed = bp.cli("create", "nobase", "--app", "nobase", "--source", str(elsewhere), check=False)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "python:3.12-slim-not-here" in text and "docker load" in text, text


COMPANION = """\
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"companion"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


print("counter ready on 6000", flush=True)
ThreadingHTTPServer(("127.0.0.1", 6000), Handler).serve_forever()
"""
# The routed service asks its companion by its service name, as compose apps do.
COMPOSE_WEB = """\
import json, os, sys, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = {version!r}
if VERSION.startswith("crash"):
    print("cannot start: no REDIS_URL", file=sys.stderr)
    sys.exit(3)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with urllib.request.urlopen("http://counter:6000/", timeout=5) as answer:
            companion = answer.read().decode()
        body = json.dumps({{"version": VERSION, "companion": companion,
                           "greeting": os.environ.get("GREETING")}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", 5000), Handler).serve_forever()
"""


def compose_app(folder: Path, version: str) -> Path:
    (folder / "web").mkdir(parents=True)
    (folder / "counter").mkdir()
    (folder / "web" / "app.py").write_text(COMPOSE_WEB.format(version=version))
    (folder / "counter" / "app.py").write_text(COMPANION)
    for part in ("web", "counter"):
        (folder / part / "Dockerfile").write_text(
            f"FROM {BASE}\nWORKDIR /srv\nCOPY app.py .\nUSER 65534\n"
            'CMD ["python3", "-u", "app.py"]\n'
        )
    (folder / "docker-compose.yml").write_text(
        textwrap.dedent("""\
            services:
              app:
                build: ./web
                ports: ["80:5000"]
                environment:
                  GREETING: hello
                depends_on: [counter]
              counter:
                build: ./counter
            """)
    )
    return folder


def test_a_compose_app_runs_its_services_together_and_rolls_out_under_load(
    beanpole_docker, engine, tmp_path
):
    bp = beanpole_docker
    bp.cli(
        "create",
        "composed",
        "--app",
        "composed",
        "--source",
        str(compose_app(tmp_path / "v1", "v1")),
        "--scale",
        "2",
    )
    assert answer(bp, "composed") == {
        "version": "v1",
        "companion": "companion",
        "greeting": "hello",
    }
    with Load(bp.lb_port, "composed") as load:
        wait_for(lambda: load.ok >= 50, 30, "requests to flow")
        for label, policy in (("v2", "Rolling"), ("v3", "Immutable")):
            app = compose_app(tmp_path / label, label)
            bp.cli("deploy", "composed", "--source", str(app), "--label", label, "--policy", policy)
        crash = compose_app(tmp_path / "crash", "crash")
        failed = bp.cli(
            "deploy", "composed", "--source", str(crash), "--label", "crash", check=False
        )
        count = load.ok
        wait_for(lambda: load.ok >= count + 50, 30, "requests after the failed deploy")
    assert failed.returncode != 0 and "no REDIS_URL" in failed.stdout + failed.stderr
    assert load.failures == [], load.failures[:5]
    assert answer(bp, "composed")["version"] == "v3"
    # each service's output reaches Beanpole's logs, the companion's too
    instance = bp.status("composed")["instances"][0]["id"]
    wait_for(
        lambda: (
            "counter ready on 6000" in bp.cli("logs", "composed", "--instance", instance).stdout
        ),
        30,
        "the companion's output in the instance's logs",
    )
    bp.cli("terminate", "composed")
