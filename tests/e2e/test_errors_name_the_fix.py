"""Issue 8, parts 5 and 6: probes ask as clients do, and start failures name the fix.

Each test deploys a real bundle through the CLI (real server, supervisord, HAProxy) and
asserts the message the user reads. Slow: the Python ones install gunicorn into a virtualenv.
"""

import json
import re
import shutil
import socket
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from harness import wait_for

pytestmark = pytest.mark.slow

HOST_CHECKING_APP = """\
    import os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ALLOWED = os.environ["ALLOWED_HOST"]  # like Django's ALLOWED_HOSTS


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            host = self.headers.get("Host", "").rsplit(":", 1)[0]
            ok = host == ALLOWED
            body = (b"hello " + host.encode()) if ok else b"Invalid HTTP_HOST header"
            self.send_response(200 if ok else 400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

NOT_FOUND_APP = """\
    import os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404 if self.path == "/" else 200)


    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def write_app(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def create_fails(beanpole, name: str, app: Path, *args: str) -> tuple[str, float]:
    started = time.monotonic()
    result = beanpole.cli("create", name, "--app", name, "--source", str(app), *args, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("Error: ")
    return result.stderr, elapsed


def events(beanpole, name: str) -> str:
    return beanpole.cli("events", name, check=False).stdout


def test_an_app_that_rejects_unknown_hosts_deploys_and_keeps_serving(beanpole, tmp_path):
    """The probe and HAProxy's check send the environment's own Host, so an app that checks
    host names passes both (it was declared launched, then 503 for ever)."""
    app = write_app(
        tmp_path / "hosts", {"Procfile": "web: python3 server.py\n", "server.py": HOST_CHECKING_APP}
    )
    beanpole.cli(
        "create",
        "hosts",
        "--app",
        "hosts",
        "--source",
        str(app),
        "--setting",
        "aws:elasticbeanstalk:application:environment:ALLOWED_HOST=hosts.localhost",
        "--setting",
        "aws:elasticbeanstalk:environment:process:default:HealthCheckInterval=1",
    )
    assert beanpole.get("hosts") == (200, "hello hosts.localhost")
    # HAProxy's own checks (every second here) keep it in service: 5 in a row would fail it
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert beanpole.get("hosts") == (200, "hello hosts.localhost")
    [instance] = beanpole.status("hosts")["instances"]
    assert instance["state"] == "in-service"


def test_an_app_answering_404_fails_fast_naming_the_health_check_path(beanpole, tmp_path):
    app = write_app(
        tmp_path / "nf", {"Procfile": "web: python3 server.py\n", "server.py": NOT_FOUND_APP}
    )
    message, elapsed = create_fails(beanpole, "notfound", app)
    assert (
        "GET / answered 404 Not Found 5 times (Host: notfound.localhost): the health check "
        "expects 200. Make the app answer 200 on that path, or set "
        "aws:elasticbeanstalk:environment:process:default HealthCheckPath (or MatcherHTTPCode)."
    ) in message
    assert elapsed < 30, elapsed  # not StartTimeout's 60 s
    print(f"\n[404] {elapsed:.1f} s: {message}")


def test_a_django_layout_without_wsgipath_names_the_value_to_set(beanpole, tmp_path):
    """Every failed instance is named, once for their shared cause; the logs of the failed
    create stay readable."""
    app = write_app(
        tmp_path / "mysite",
        {
            "requirements.txt": "",
            "mysite/__init__.py": "",
            "mysite/wsgi.py": """\
                def application(environ, start_response):
                    start_response("200 OK", [("Content-Type", "text/plain")])
                    return [b"ok"]
            """,
        },
    )
    message, elapsed = create_fails(beanpole, "mysite", app, "--scale", "2")
    assert "Instances i-" in message and "of version" in message
    # the status when the runtime saw the exit; restarted before it could look, none
    assert re.search(
        r"failed: web exited(, and was started again| with status 3): "
        r"\"No module named 'application'\"\.",
        message,
    )
    assert (
        "set aws:elasticbeanstalk:container:python WSGIPath to mysite.wsgi:application "
        "(for mysite/wsgi.py)."
    ) in message
    assert "more)" not in message
    assert elapsed < 120, elapsed
    print(f"\n[wsgi] {elapsed:.1f} s: {message}")
    assert "WSGIPath to mysite.wsgi:application" in events(beanpole, "mysite")

    # the failed create's logs: both instances' output, and the create's deploy log
    logs = beanpole.cli("logs", "mysite").stdout
    stopped = [line.split()[0] for line in logs.splitlines() if " stopped, last written " in line]
    assert len(stopped) == 2, logs
    for instance_id in stopped:
        out = beanpole.cli("logs", "mysite", "--instance", instance_id).stdout
        assert "No module named 'application'" in out
        assert "Booting worker" in out  # stdout and stderr, one file, as written
    assert "Failed to launch environment." in logs


def test_gunicorn_not_found_names_the_requirements_txt_in_a_subfolder(beanpole, tmp_path):
    app = write_app(
        tmp_path / "flask",
        {
            "Procfile": "web: gunicorn app:app\n",
            "app.py": "def app(environ, start_response):\n    return []\n",
            "backend/requirements.txt": "gunicorn\n",
        },
    )
    message, elapsed = create_fails(beanpole, "flaskapp", app)
    assert 'failed: web exited with status 127: "/bin/sh: 1: exec: gunicorn: not found".' in (
        message
    )
    assert (
        "The web command runs gunicorn, which is not installed. Beanpole installs Python "
        "packages from a requirements.txt at the bundle's root, and found none. It found "
        "backend/requirements.txt: move it to the root, or install it from an .ebextensions "
        "container_commands entry (pip install -r backend/requirements.txt)."
    ) in message
    assert elapsed < 30, elapsed
    print(f"\n[gunicorn] {elapsed:.1f} s: {message}")


def test_a_command_not_found_is_named_and_a_reused_name_starts_with_clean_logs(
    beanpole, tmp_path, pid_app
):
    app = write_app(tmp_path / "nocmd", {"Procfile": "web: frobnicate --serve\n"})
    message, elapsed = create_fails(beanpole, "shop", app)
    assert "The command 'frobnicate' was not found" in message
    assert elapsed < 30, elapsed
    print(f"\n[command] {elapsed:.1f} s: {message}")
    assert "frobnicate: not found" in beanpole.cli("logs", "shop").stdout

    # the name again: the failed create's logs go, the new environment's are its own
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    logs = beanpole.cli("logs", "shop").stdout
    assert "frobnicate" not in logs
    bundle = tmp_path / "shop.zip"
    beanpole.cli("logs", "shop", "--zip", str(bundle))
    with zipfile.ZipFile(bundle) as z:
        assert not any(b"frobnicate" in z.read(n) for n in z.namelist())


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_a_hard_coded_port_that_is_taken_names_it_and_the_port_given(beanpole, tmp_path):
    """AWS's Express sample listens on 8080 whatever PORT says; here the port is one this
    test holds, so EADDRINUSE is certain. Both instances are named, within seconds."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        app = write_app(
            tmp_path / "express",
            {
                "package.json": json.dumps({"name": "fixed-port", "version": "1.0.0"}),
                "server.js": f"""\
                    const http = require("http");
                    const port = {port};  // as in AWS's sample: 8080, whatever PORT says
                    http.createServer((req, res) => res.end("hi")).listen(port);
                    console.log("Server running at http://127.0.0.1:" + port + "/");
                """,
            },
        )
        # Without network namespaces: with them (as root) the app's port is its own.
        isolation = ("--setting", "beanpole:instance:NetworkIsolation=none")
        message, elapsed = create_fails(beanpole, "express", app, "--scale", "2", *isolation)
    finally:
        taken.close()
    assert "Instances i-" in message
    assert f'"Error: listen EADDRINUSE: address already in use :::{port}"' in message or (
        f"address already in use 0.0.0.0:{port}" in message
    )
    assert f"The app listens on {port} but PORT is " in message
    assert ": listen on process.env.PORT." in message
    assert elapsed < 40, elapsed
    print(f"\n[port] {elapsed:.1f} s: {message}")
    wait_for(lambda: "listen on process.env.PORT" in events(beanpole, "express"), 10, "event")


def test_an_app_listening_on_another_port_than_port_fails_within_seconds(beanpole, tmp_path):
    """It binds a port of its own choosing and never PORT: nothing collides (in its own
    network namespace, as root, nothing can), but the load balancer would never reach it.
    It fails within seconds, naming both ports, not after StartTimeout (60 s)."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    app = write_app(
        tmp_path / "elsewhere",
        {
            "Procfile": "web: python3 server.py\n",
            "server.py": f"""\
                from http.server import BaseHTTPRequestHandler, HTTPServer
                HTTPServer(("0.0.0.0", {port}), BaseHTTPRequestHandler).serve_forever()
            """,
        },
    )
    message, elapsed = create_fails(beanpole, "elsewhere", app)
    assert f"the app listens on {port} but PORT is " in message
    assert "listen on $PORT (os.environ['PORT'])" in message
    assert elapsed < 30, elapsed
    print(f"\n[elsewhere] {elapsed:.1f} s: {message}")
