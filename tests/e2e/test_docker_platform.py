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


def dockerrun_bundle(folder: Path, image: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "Dockerrun.aws.json").write_text(
        json.dumps(
            {
                "AWSEBDockerrunVersion": "1",
                "Image": {"Name": image, "Update": "false"},
                "Ports": [{"ContainerPort": "8000", "HostPort": "80"}],
            }
        )
    )
    return folder


def test_a_dockerrun_app_on_a_default_server_uses_docker_rolls_out_and_rolls_back(
    beanpole_with_engine, engine, tmp_path
):
    """A bundle of the Docker platform runs under Docker on its own, on a server whose
    default runtime is supervisord: the image its Dockerrun.aws.json names, on its port;
    Rolling and Immutable under load with no failed request; a version whose container
    exits is rolled back."""
    bp = beanpole_with_engine
    images = {}
    for version in ("v1", "v2", "v3", "crash"):
        context = dockerfile_app(tmp_path / f"image-{version}", version, port=8000)
        images[version] = f"beanpole-test/dockerrun-app:{version}"
        engine.images.build(path=str(context), tag=images[version], rm=True)
    try:
        bp.cli(
            "create", "dockerrun", "--app", "dockerrun", "--scale", "2",
            "--source", str(dockerrun_bundle(tmp_path / "v1", images["v1"])),
        )  # fmt: skip
        got = answer(bp, "dockerrun")
        assert (got["version"], got["port"]) == ("v1", "8000")
        assert len(containers_of(engine, bp.home)) == 2  # under Docker, not supervisord

        with Load(bp.lb_port, "dockerrun") as load:
            wait_for(lambda: load.ok >= 50, 30, "requests to flow")
            for version, policy in (("v2", "Rolling"), ("v3", "Immutable")):
                bundle = dockerrun_bundle(tmp_path / version, images[version])
                bp.cli("deploy", "dockerrun", "--source", str(bundle), "--policy", policy)
            crash = dockerrun_bundle(tmp_path / "crash", images["crash"])
            failed = bp.cli(
                "deploy", "dockerrun", "--source", str(crash), "--policy", "Rolling", check=False
            )
            count = load.ok
            wait_for(lambda: load.ok >= count + 50, 30, "requests after the failed deploy")
        assert failed.returncode != 0
        assert "DATABASE_URL is not set" in failed.stdout + failed.stderr
        assert load.failures == [], load.failures[:5]
        served = {json.loads(b)["version"] for b in load.bodies}
        assert served <= {"v1", "v2", "v3"} and "v3" in served
        assert answer(bp, "dockerrun")["version"] == "v3"
        bp.cli("terminate", "dockerrun")
        assert containers_of(engine, bp.home) == []
    finally:
        for image in images.values():
            engine.images.remove(image, force=True)


def containers_of(engine: docker_sdk.DockerClient, home: Path) -> list[str]:
    """The instances this home runs as containers."""
    rows = engine.api.containers(all=True, filters={"label": f"beanpole.home={home}"})
    return sorted({row["Labels"]["beanpole.instance"] for row in rows})


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


VOLUME_APP = """\
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = {version!r}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # /visit counts (the health checks ask for /)
        path = "/data/count"
        count = int(open(path).read()) if os.path.exists(path) else 0
        if self.path == "/visit":
            count += 1
            with open(path, "w") as out:
                out.write(str(count))
            with open("/var/log/app/requests.log", "a") as log:
                log.write(f"request {{count}} served by {{VERSION}}\\n")
        site = open("/srv/site/hello.txt").read().strip()
        body = json.dumps({{"version": VERSION, "count": count, "site": site}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""


def test_dockerrun_volumes_and_logging_map_to_the_bundle_the_environment_and_its_logs(
    beanpole_with_engine, engine, tmp_path
):
    """Dockerrun.aws.json's Volumes: /var/app/current/… is the deployed bundle's folder,
    another host folder is the environment's own (kept across deployments, removed with
    the environment); Logging's folder is read by `beanpole logs`."""
    bp = beanpole_with_engine
    images = {}
    for version in ("v1", "v2"):
        context = tmp_path / f"image-{version}"
        context.mkdir()
        (context / "app.py").write_text(VOLUME_APP.format(version=version))
        (context / "Dockerfile").write_text(
            f'FROM {BASE}\nWORKDIR /srv\nCOPY app.py .\nCMD ["python3", "-u", "app.py"]\n'
        )
        images[version] = f"beanpole-test/volume-app:{version}"
        engine.images.build(path=str(context), tag=images[version], rm=True)

    def bundle(version: str) -> Path:
        folder = dockerrun_bundle(tmp_path / f"bundle-{version}", images[version])
        run = json.loads((folder / "Dockerrun.aws.json").read_text())
        run["Volumes"] = [
            {"HostDirectory": "/var/app/current/site", "ContainerDirectory": "/srv/site"},
            {"HostDirectory": "/var/app/data", "ContainerDirectory": "/data"},
        ]
        run["Logging"] = "/var/log/app"
        (folder / "Dockerrun.aws.json").write_text(json.dumps(run))
        (folder / "site").mkdir()
        (folder / "site" / "hello.txt").write_text(f"hello from {version}\n")
        return folder

    try:
        bp.cli("create", "volumes", "--app", "volumes", "--source", str(bundle("v1")))
        assert answer(bp, "volumes") == {"version": "v1", "count": 0, "site": "hello from v1"}
        # root in the container (the image names no user) cannot make a device node in a
        # folder of the host, which the host's processes could then open
        (web,) = engine.api.containers(
            filters={"label": [f"beanpole.home={bp.home}", "beanpole.process=web"]}
        )
        made = engine.api.exec_create(web["Id"], ["mknod", "/data/null", "c", "1", "3"])
        output = engine.api.exec_start(made["Id"]).decode()
        assert engine.api.exec_inspect(made["Id"])["ExitCode"] != 0
        assert "Operation not permitted" in output
        for _ in range(2):
            assert bp.get("volumes", "/visit")[0] == 200
        bp.cli("deploy", "volumes", "--source", str(bundle("v2")))
        # the environment's folder outlives the version; the bundle's is the new one
        assert answer(bp, "volumes") == {"version": "v2", "count": 2, "site": "hello from v2"}
        assert bp.get("volumes", "/visit")[0] == 200
        logs = bp.cli("logs", "volumes").stdout
        assert "request 3 served by v2" in logs and "app/requests.log" in logs
        env_id = bp.status("volumes")["id"]
        assert (bp.home / "volumes" / env_id / "host" / "var" / "app" / "data").is_dir()
        bp.cli("terminate", "volumes")
        assert not (bp.home / "volumes" / env_id).exists()
    finally:
        for image in images.values():
            engine.images.remove(image, force=True)
