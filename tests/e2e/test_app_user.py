"""Applications never run as root (issue 8): as root, Beanpole runs them as ``webapp``."""

import json
import os
import pwd

import psutil
import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root has a user to drop to")


def test_instances_and_buildfile_run_as_the_app_user(beanpole, pid_app):
    (pid_app / "Buildfile").write_text("whoami: id -un > built-by.txt\n")
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2")
    webapp = pwd.getpwnam("webapp")
    for instance in beanpole.status("shop")["instances"]:
        process = psutil.Process(instance["pid"])
        assert process.uids().real == webapp.pw_uid
        assert process.uids().effective == webapp.pw_uid
        assert process.gids().real == webapp.pw_gid
        environ = process.environ()
        assert environ["USER"] == "webapp"
        assert not environ["HOME"].startswith("/root")
    builds = beanpole.home / "builds"
    (built_by,) = builds.glob("*/app/built-by.txt")
    assert built_by.read_text().strip() == "webapp"
    assert built_by.parent.stat().st_uid == webapp.pw_uid  # the staged app is the app's
    _, body = beanpole.get("shop")
    assert json.loads(body)["version"]  # and it serves


def test_the_home_keeps_its_secrets_from_the_app_user(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    home = beanpole.home
    assert (home / "token").stat().st_mode & 0o077 == 0
    assert (home / "state.db").stat().st_mode & 0o077 == 0
    for private in ("bundles", "logs", "haproxy", "supervisor", "cache"):
        assert (home / private).stat().st_mode & 0o077 == 0, private
    assert (home.stat().st_mode & 0o777) == 0o711  # traversable, not listable
