"""Isolation between applications (issue 14, part 4): when Beanpole runs as root, each
application's builds, hooks and instances run as an unprivileged user of its own, and an
application cannot read another one's source, build, logs or environment properties, nor
Beanpole's home, its token or its database.

Two applications run side by side from the probe app (`tests/apps/probe`), which tries, as
its own user, to read the path or the pid's environ the query string names and answers with
what happened. A has an environment property and a secret; B tries to reach them."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness import Beanpole

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="applications have users of their own only when Beanpole runs as root",
    ),
]

PROBE = Path(__file__).parent.parent / "apps" / "probe"
SECRET = "a-secret-only-app-a-may-see"


@dataclass(frozen=True)
class Deployed:
    """An application of the module's server, as the tests look at it."""

    name: str  # its environment's name too
    id: str
    user: pwd.struct_passwd
    pid: int
    instance: str
    home: Path  # Beanpole's

    @property
    def builds(self) -> Path:
        return self.home / "builds" / self.id


def _rest(bp: Beanpole, path: str) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{bp.api_port}/api/v1{path}",
        headers={"Authorization": f"Bearer {(bp.home / 'token').read_text().strip()}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _deploy(bp: Beanpole, name: str, source: Path) -> Deployed:
    bp.cli("create", name, "--app", name, "--source", str(source), "--env", "PLAIN=visible")
    app_id = next(a["id"] for a in _rest(bp, "/applications") if a["name"] == name)
    (instance,) = bp.status(name)["instances"]
    user = pwd.getpwnam("bp-" + app_id.removeprefix("a-"))
    return Deployed(name, app_id, user, instance["pid"], instance["id"], bp.home)


@pytest.fixture(scope="module")
def apps(beanpole_module: Beanpole, tmp_path_factory: pytest.TempPathFactory):
    bp = beanpole_module
    root = tmp_path_factory.mktemp("apps")
    shutil.copytree(PROBE, root / "a")
    shutil.copytree(PROBE, root / "b")
    (root / "a" / "secret-source.txt").write_text("A's own source\n")
    a = _deploy(bp, "appa", root / "a")
    bp.cli("setenv", "appa", "--secret", f"SECRET_KEY={SECRET}")
    (instance,) = bp.status("appa")["instances"]  # replaced by the change
    a = Deployed(a.name, a.id, a.user, instance["pid"], instance["id"], bp.home)
    b = _deploy(bp, "appb", root / "b")
    return bp, a, b


def _try(bp: Beanpole, app: Deployed, action: str, target: str | Path) -> dict[str, Any]:
    """What ``app`` got trying ``action`` on ``target`` as its own user."""
    key = "pid" if action == "environ" else "path"  # exec: a program's path
    query = urllib.parse.urlencode({key: str(target)})
    status, body = bp.get(app.name, f"/{action}?{query}")
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


def _refused(answer: dict[str, Any]) -> bool:
    return answer == {"ok": False, "errno": "EACCES"}


def _source(a: Deployed) -> Path:
    """A's staged app (its predeploy hook gives each deployment a folder of its own)."""
    (found,) = a.builds.glob("*/stages/*/secret-source.txt")
    return found


def test_each_application_runs_as_an_unprivileged_user_of_its_own(apps):
    bp, a, b = apps
    assert a.user.pw_uid != b.user.pw_uid
    assert 0 not in (a.user.pw_uid, b.user.pw_uid, a.user.pw_gid, b.user.pw_gid)
    for app in (a, b):
        process = psutil.Process(app.pid)
        assert process.uids().real == process.uids().effective == app.user.pw_uid
        assert process.gids().real == app.user.pw_gid
        assert app.user.pw_gecos == f"beanpole app {app.name} {bp.home}"
        # what it creates (in the host's shared /tmp too) is not everyone's
        status_lines = Path(f"/proc/{app.pid}/status").read_text().splitlines()
        assert "Umask:\t0027" in status_lines
        status, body = bp.get(app.name, "/whoami")
        assert status == 200, body
        assert json.loads(body)["user"] == app.user.pw_name, body


def test_each_applications_buildfile_and_hooks_run_as_its_own_user(apps):
    _, a, b = apps
    for app in (a, b):
        (built,) = app.builds.glob("*/app/built-by.txt")  # the Buildfile, at the build
        assert built.read_text().strip() == app.user.pw_name
        (hooked,) = app.builds.glob("*/stages/*/hooked-by.txt")  # predeploy, per deployment
        assert hooked.read_text().strip() == app.user.pw_name


def test_an_application_cannot_read_another_ones_source(apps):
    bp, a, b = apps
    assert _refused(_try(bp, b, "read", _source(a)))


def test_a_set_uid_file_in_its_folder_gives_an_application_nothing(apps):
    """Root in one of an application's Docker containers could write a set-uid-root file into
    a bind-mounted folder of the host: the application's processes run with no_new_privs,
    so executing it leaves them their own user. Their temporary files are their own too."""
    bp, a, _ = apps
    planted = _source(a).parent / "planted-id"
    shutil.copyfile("/usr/bin/id", planted)
    planted.chmod(0o4755)  # root's, set-uid
    try:
        assert _try(bp, a, "exec", planted) == {"ok": True, "output": str(a.user.pw_uid)}
        status, body = bp.get(a.name, "/privileges")
        assert status == 200, body
        answer = json.loads(body)
        assert answer["no_new_privs"] == "1"
        run = bp.home / "instances" / a.instance / "run"
        assert answer["tmpdir"] == str(run)
        assert run.stat().st_uid == a.user.pw_uid and run.stat().st_mode & 0o777 == 0o700
    finally:
        planted.unlink()


def test_an_application_cannot_read_another_ones_build_log(apps):
    bp, a, b = apps
    (log,) = a.builds.glob("*/build.log")
    assert _refused(_try(bp, b, "read", log))


def test_an_application_cannot_list_another_ones_build_folder(apps):
    bp, a, b = apps
    (build,) = a.builds.glob("*/app")
    for folder in (a.builds, build.parent, build):
        assert _refused(_try(bp, b, "list", folder)), folder


def test_an_application_cannot_read_another_ones_instance_logs(apps):
    bp, a, b = apps
    logs = bp.home / "instances" / a.instance / "logs"
    files = sorted(logs.glob("*.log"))
    assert files  # supervisord writes them
    for path in files:
        assert _refused(_try(bp, b, "read", path)), path
    assert _refused(_try(bp, b, "list", logs))


def test_an_application_cannot_read_another_ones_environment(apps):
    bp, a, b = apps
    environ = Path(f"/proc/{a.pid}/environ").read_bytes()  # A's properties, its secret opened
    assert f"SECRET_KEY={SECRET}".encode() in environ
    assert b"PLAIN=visible" in environ
    assert _refused(_try(bp, b, "environ", a.pid))


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("state.db", "read"),
        ("token", "read"),
        ("secret.key", "read"),
        ("config.json", "read"),
        ("bundles", "list"),
        ("logs", "list"),
        ("supervisor", "list"),  # the launcher's specs hold the opened properties
        ("haproxy", "list"),
        ("certs", "list"),
    ],
)
def test_an_application_cannot_read_beanpoles_home(apps, path, action):
    bp, _, b = apps
    assert (bp.home / path).exists()
    assert _refused(_try(bp, b, action, bp.home / path))


def test_an_application_still_reads_its_own_files(apps):
    bp, a, _ = apps
    assert _try(bp, a, "read", _source(a))["ok"]
    (log,) = a.builds.glob("*/build.log")
    assert _try(bp, a, "read", log)["ok"]
    (build,) = a.builds.glob("*/app")
    assert _try(bp, a, "list", build)["ok"]
    own = _try(bp, a, "environ", "self")
    assert {"SECRET_KEY", "PLAIN"} <= set(own["names"])


def test_an_applications_dependency_installs_run_as_its_own_user(apps, tmp_path):
    """npm runs the package's own scripts, a local Python package its build: the bundle's
    code, so never as root. The installed dependencies are the application's alone."""
    bp, _, b = apps
    app = tmp_path / "installs"
    shutil.copytree(PROBE, app)
    (app / "package.json").write_text(
        json.dumps({"name": "installs", "scripts": {"postinstall": "id -un > installed-by.txt"}})
    )
    c = _deploy(bp, "appc", app)
    (installed,) = c.builds.glob("deps/node/*/installed-by.txt")
    assert installed.read_text().strip() == c.user.pw_name
    modules = installed.parent
    assert modules.stat().st_uid == c.user.pw_uid
    assert _refused(_try(bp, b, "list", c.builds / "deps"))
    assert _refused(_try(bp, b, "list", modules))


def test_a_property_cannot_make_beanpole_hand_a_folder_to_the_app(apps):
    """XDG_RUNTIME_DIR names the folder Beanpole makes the app user's: a property of that
    name (here, Beanpole's home) is overridden, and nothing it names changes owner. Last:
    it replaces B's instance."""
    bp, _, b = apps
    before = {p: (p.stat().st_uid, p.stat().st_mode) for p in (bp.home, bp.home / "token")}
    bp.cli("setenv", "appb", f"XDG_RUNTIME_DIR={bp.home}")
    assert {p: (p.stat().st_uid, p.stat().st_mode) for p in before} == before
    (instance,) = bp.status("appb")["instances"]
    run = bp.home / "instances" / instance["id"] / "run"
    assert run.stat().st_uid == b.user.pw_uid
    environ = Path(f"/proc/{instance['pid']}/environ").read_bytes().split(b"\0")
    assert f"XDG_RUNTIME_DIR={run}".encode() in environ
