"""`.ebextensions` files/commands/container_commands and `.platform` hooks, end to end
(issue 8): real bundles deployed unchanged through the CLI, a real server, HAProxy and
supervisord. Slow: each builds and starts instances."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from harness import Load

pytestmark = pytest.mark.slow

# Serves the app folder's files (GET /order.txt), and "ok" on /.
SERVER = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = open("VERSION").read().strip()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.lstrip("/")
        if not path:
            body, status = f"ok {VERSION}".encode(), 200
        else:
            try:
                body, status = open(path, "rb").read(), 200
            except OSError:
                body, status = b"missing", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

STEPS_CONFIG = """\
option_settings:
  aws:elasticbeanstalk:application:environment:
    GREETING: hello
commands:
  01_command:
    command: echo "commands GREETING=$GREETING" >> order.txt
container_commands:
  01_container:
    command: echo "container_commands PORT=$PORT" >> order.txt
    leader_only: true
  02_skipped:
    command: echo "never" >> order.txt
    test: test -f no-such-file
  03_whoami:
    command: id -u > uid.txt
packages:
  yum:
    git: []
"""


def hook(app: Path, folder: str, name: str, body: str, *, executable: bool = True) -> None:
    path = app / ".platform" / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755 if executable else 0o644)


def make_app(root: Path, version: str = "v1") -> Path:
    app = root / f"app-{version}"
    app.mkdir()
    (app / "server.py").write_text(SERVER)
    (app / "VERSION").write_text(version + "\n")
    (app / "Procfile").write_text("web: python3 server.py\n")
    (app / "Buildfile").write_text('build: echo "Buildfile" >> order.txt\n')
    (app / ".ebextensions").mkdir()
    (app / ".ebextensions" / "01-steps.config").write_text(STEPS_CONFIG)
    line = 'echo "{0} PORT=$PORT GREETING=$GREETING" >> order.txt'
    hook(app, "hooks/prebuild", "01_prebuild.sh", line.format("prebuild"))
    hook(app, "hooks/predeploy", "01_predeploy.sh", line.format("predeploy"))
    hook(app, "hooks/predeploy", "02_not_executable.sh", "exit 1", executable=False)
    hook(app, "hooks/postdeploy", "01_postdeploy.sh", line.format("postdeploy"))
    hook(app, "confighooks/predeploy", "01_config.sh", line.format("confighook-predeploy"))
    hook(app, "confighooks/postdeploy", "01_config.sh", line.format("confighook-postdeploy"))
    return app


# order.txt after a create: the build's steps (once per version), then the deployment's
FIRST_DEPLOYMENT = [
    "commands GREETING=hello",
    "prebuild PORT=8000 GREETING=hello",
    "Buildfile",
    "container_commands PORT=8000",
    "predeploy PORT=8000 GREETING=hello",
    "postdeploy PORT=8000 GREETING=hello",
]


def served_order(beanpole) -> list[str]:
    status, body = beanpole.get("hooks", "/order.txt")
    assert status == 200, body
    return body.splitlines()


def test_every_kind_of_step_runs_in_eb_order(beanpole, tmp_path):
    app = make_app(tmp_path)
    created = beanpole.cli("create", "hooks", "--app", "hooks", "--source", str(app))
    assert served_order(beanpole) == FIRST_DEPLOYMENT
    # never as root: as the application's own user when Beanpole is root, else Beanpole's
    status, uid = beanpole.get("hooks", "/uid.txt")
    users = beanpole.app_users()
    expected = [u.pw_uid for u in users] if os.geteuid() == 0 else [os.geteuid()]
    assert (status, [int(uid)]) == (200, expected)
    assert int(uid) != 0
    out = created.stdout
    assert "Running commands 01_command (.ebextensions/01-steps.config)." in out
    assert "Running hook .platform/hooks/prebuild/01_prebuild.sh." in out
    assert "Skipped container_commands 02_skipped (.ebextensions/01-steps.config): its test" in out
    assert (
        "WARN  Hook .platform/hooks/predeploy/02_not_executable.sh is not executable and was "
        "skipped, as on Elastic Beanstalk." in out
    )
    assert (
        "WARN  .ebextensions/01-steps.config: packages (yum: git) ignored: Beanpole does not "
        "install system packages; install them on the host." in out
    )

    # A configuration deployment: container_commands and the confighooks, not the hooks.
    beanpole.cli("setenv", "hooks", "GREETING=changed")
    assert served_order(beanpole)[6:] == [
        "container_commands PORT=8000",
        "confighook-predeploy PORT=8000 GREETING=changed",
        "confighook-postdeploy PORT=8000 GREETING=changed",
    ]
    # The hooks' output is in the operation's deploy log.
    logs = beanpole.cli("logs", "hooks").stdout
    assert "----- output of hook .platform/confighooks/predeploy/01_config.sh -----" in logs


def test_a_failing_predeploy_hook_fails_the_deploy_and_the_old_version_serves(beanpole, tmp_path):
    beanpole.cli("create", "hooks", "--app", "hooks", "--source", str(make_app(tmp_path)))
    assert beanpole.get("hooks", "/") == (200, "ok v1")
    two = make_app(tmp_path, "v2")
    hook(two, "hooks/predeploy", "01_predeploy.sh", 'echo "migration 0042 failed"\nexit 3')
    failed = beanpole.cli("deploy", "hooks", "--source", str(two), check=False)
    assert failed.returncode != 0
    message = (
        "hook .platform/hooks/predeploy/01_predeploy.sh failed with exit status 3. "
        "Last line of its output:\nmigration 0042 failed"
    )
    assert message in failed.stdout + failed.stderr
    assert "Failed to deploy application." in failed.stdout
    for _ in range(5):
        assert beanpole.get("hooks", "/") == (200, "ok v1")
    info = beanpole.status("hooks")
    assert info["status"] == "Ready"
    assert info["version"] == "v-" + info["version"][2:]  # still the first upload
    assert {i["version"] for i in info["instances"]} == {info["version"]}


def test_files_are_written_with_their_mode_and_bad_files_refuse_the_version(beanpole, tmp_path):
    app = make_app(tmp_path)
    (app / ".ebextensions" / "02-files.config").write_text(
        'files:\n  "/var/app/staging/conf/greeting.txt":\n    mode: "000640"\n'
        "    content: |\n      written by files\n"
    )
    beanpole.cli("create", "hooks", "--app", "hooks", "--source", str(app))
    assert beanpole.get("hooks", "/conf/greeting.txt") == (200, "written by files\n")
    (written,) = beanpole.home.glob("builds/*/*/app/conf/greeting.txt")
    assert stat.S_IMODE(written.stat().st_mode) == 0o640

    remote = make_app(tmp_path, "v2")
    (remote / ".ebextensions" / "02-files.config").write_text(
        'files:\n  "/opt/tool.tar.gz":\n    source: https://example.com/tool.tar.gz\n'
    )
    refused = beanpole.cli("deploy", "hooks", "--source", str(remote), check=False)
    assert refused.returncode != 0
    assert (
        "Error: The configuration file .ebextensions/02-files.config in the bundle is refused: "
        "files entry '/opt/tool.tar.gz' has source: https://example.com/tool.tar.gz: Beanpole "
        "does not download files while deploying." in refused.stderr
    )

    broken = make_app(tmp_path, "v3")
    (broken / ".ebextensions" / "03-broken.config").write_text(
        "container_commands:\n  01_migrate:\n    command: migrate\n   leader_only: true\n"
    )
    refused = beanpole.cli("deploy", "hooks", "--source", str(broken), check=False)
    assert refused.returncode != 0
    assert (
        "Error: The configuration file .ebextensions/03-broken.config in the bundle cannot be "
        "read: it is not valid YAML or JSON (line 4, column 4: " in refused.stderr
    )
    assert beanpole.get("hooks", "/") == (200, "ok v1")


def test_flask_app_whose_requirements_are_installed_by_a_container_command(beanpole, tmp_path):
    """The issue's Flask + React layout: the only requirements.txt is in backend/, installed
    by a container_command with `pip` (the app's virtualenv's), and the Procfile runs
    gunicorn on EB's port 8000 (Beanpole runs it on $PORT)."""
    app = tmp_path / "flask-react"
    (app / "backend").mkdir(parents=True)
    (app / "frontend").mkdir()
    (app / "frontend" / "index.html").write_text("<div id=root></div>\n")
    (app / "backend" / "requirements.txt").write_text("flask\ngunicorn\n")
    (app / "backend" / "app.py").write_text(
        "import os, sys\nfrom flask import Flask\n\napp = Flask(__name__)\n\n\n"
        "@app.get('/')\ndef index():\n"
        "    return {'python': sys.prefix, 'run': os.environ.get('XDG_RUNTIME_DIR')}\n"
    )
    (app / "Procfile").write_text("web: gunicorn --bind :8000 backend.app:app\n")
    (app / ".ebextensions").mkdir()
    (app / ".ebextensions" / "01-install.config").write_text(
        "container_commands:\n  01_install:\n"
        '    command: "pip install -r backend/requirements.txt"\n'
    )
    created = beanpole.cli("create", "flask", "--app", "flask", "--source", str(app))
    assert "Running container_commands 01_install (.ebextensions/01-install.config)." in (
        created.stdout
    )
    status, body = beanpole.get("flask", "/")
    assert status == 200, body
    assert "/deps/python/" in body  # gunicorn runs in the app's own virtualenv (in its folder)
    # Per-user runtime files (gunicorn's control socket) go under the instance's folder,
    # not the app user's HOME, which every instance shares.
    (instance,) = beanpole.status("flask")["instances"]
    run_dir = beanpole.home / "instances" / instance["id"] / "run"
    assert json.loads(body)["run"] == str(run_dir)
    assert not list(beanpole.home.glob("builds/**/gunicorn.ctl"))


def test_each_deployment_runs_its_steps_in_a_folder_of_its_own(beanpole, tmp_path):
    """Steps never change a folder that running instances use: two environments of one
    version each see their own deployment's steps once, and a configuration deployment whose
    confighook fails after writing leaves the served files and the version's build as they
    were. A configuration deployment starts from the files of the one it follows."""
    app = make_app(tmp_path)
    hook(
        app,
        "confighooks/predeploy",
        "02_check.sh",
        'echo "partial GREETING=$GREETING" >> order.txt\n[ "$GREETING" != fail ] || exit 4',
    )
    beanpole.cli("create", "hooks", "--app", "hooks", "--source", str(app))
    beanpole.cli("create", "other", "--app", "hooks", "--source", str(app))
    assert beanpole.status("hooks")["version"] == beanpole.status("other")["version"]
    for env in ("hooks", "other"):
        status, body = beanpole.get(env, "/order.txt")
        assert (status, body.splitlines()) == (200, FIRST_DEPLOYMENT)
    (build,) = beanpole.home.glob("builds/*/*/app/order.txt")
    assert build.read_text().splitlines() == FIRST_DEPLOYMENT[:3]  # the build's own steps
    assert len(list(beanpole.home.glob("builds/*/*/stages/*"))) == 2

    failed = beanpole.cli("setenv", "hooks", "GREETING=fail", check=False)
    assert failed.returncode != 0
    assert "hook .platform/confighooks/predeploy/02_check.sh failed with exit status 4" in (
        failed.stdout + failed.stderr
    )
    assert served_order(beanpole) == FIRST_DEPLOYMENT
    assert build.read_text().splitlines() == FIRST_DEPLOYMENT[:3]
    assert len(list(beanpole.home.glob("builds/*/*/stages/*"))) == 2  # the failed one's is gone
    beanpole.cli("scale", "hooks", "2")  # an instance of the running deployment: its files
    for _ in range(4):
        assert served_order(beanpole) == FIRST_DEPLOYMENT

    beanpole.cli("setenv", "hooks", "GREETING=changed")
    assert served_order(beanpole) == [
        *FIRST_DEPLOYMENT,
        "container_commands PORT=8000",
        "confighook-predeploy PORT=8000 GREETING=changed",
        "partial GREETING=changed",
        "confighook-postdeploy PORT=8000 GREETING=changed",
    ]
    status, body = beanpole.get("other", "/order.txt")
    assert (status, body.splitlines()) == (200, FIRST_DEPLOYMENT)
    # the first deployment's folder went with its instances
    assert len(list(beanpole.home.glob("builds/*/*/stages/*"))) == 2
    beanpole.cli("terminate", "hooks")  # and a terminated environment's all go
    assert len(list(beanpole.home.glob("builds/*/*/stages/*"))) == 1


def test_a_postdeploy_hook_the_app_needs_to_pass_its_health_check_runs_before_it_must(
    beanpole, pid_app
):
    """EB runs postdeploy hooks on each instance right after the app starts, before the load
    balancer's checks pass: an app whose pages need what its hook does (a migration) comes
    up. Here the app answers 500 until its postdeploy hook removes UNHEALTHY."""
    (pid_app / "UNHEALTHY").write_text("until the postdeploy hook has run\n")
    hook(pid_app, "hooks/postdeploy", "01_migrate.sh", "rm UNHEALTHY")
    out = beanpole.cli("create", "migrated", "--app", "migrated", "--source", str(pid_app)).stdout
    assert "Running hook .platform/hooks/postdeploy/01_migrate.sh." in out
    assert "Successfully launched environment: migrated" in out
    status, body = beanpole.get("migrated", "/")
    assert status == 200, body
    # and a deployment of a new version, whose instances need their hook as well
    (pid_app / "VERSION").write_text("v2\n")
    (pid_app / "UNHEALTHY").write_text("until the postdeploy hook has run\n")
    with Load(beanpole.lb_port, "migrated") as load:
        beanpole.cli("deploy", "migrated", "--source", str(pid_app), "--policy", "Rolling")
    assert load.ok > 0 and load.failures == []
    assert json.loads(beanpole.get("migrated", "/")[1])["version"] == "v2"
