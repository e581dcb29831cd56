"""Applications never run as root (issue 8), and each has a user of its own (issue 14): as
root, Beanpole runs an application as ``bp-<its id>``, made for it and removed with it."""

import json
import os
import pwd

import psutil
import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root has a user to drop to")


def test_instances_and_buildfile_run_as_the_applications_user(beanpole, pid_app):
    (pid_app / "Buildfile").write_text("whoami: id -un > built-by.txt\n")
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2")
    app_id = beanpole.app_id("shop")
    user = pwd.getpwnam("bp-" + app_id.removeprefix("a-"))
    assert user.pw_uid >= 2_000_000  # Beanpole's own range, not the system users'
    assert user.pw_gecos == f"beanpole app shop {beanpole.home}"  # findable by its home
    assert (user.pw_dir, user.pw_shell) == ("/nonexistent", "/usr/sbin/nologin")
    for instance in beanpole.status("shop")["instances"]:
        process = psutil.Process(instance["pid"])
        assert process.uids().real == user.pw_uid
        assert process.uids().effective == user.pw_uid
        assert process.gids().real == user.pw_gid
        environ = process.environ()
        assert environ["USER"] == user.pw_name
        assert not environ["HOME"].startswith("/root")
    builds = beanpole.home / "builds" / app_id
    (built_by,) = builds.glob("*/app/built-by.txt")
    assert built_by.read_text().strip() == user.pw_name
    assert built_by.parent.stat().st_uid == user.pw_uid  # the staged app is the app's
    _, body = beanpole.get("shop")
    assert json.loads(body)["version"]  # and it serves


def test_deleting_an_application_removes_its_builds_and_its_user(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    app_id = beanpole.app_id("shop")
    name = "bp-" + app_id.removeprefix("a-")
    assert pwd.getpwnam(name)
    beanpole.cli("terminate", "shop")
    eb = beanpole.eb_client()
    eb.delete_application(ApplicationName="shop")
    assert not (beanpole.home / "builds" / app_id).exists()
    with pytest.raises(KeyError):
        pwd.getpwnam(name)


def test_the_home_keeps_its_secrets_from_the_app_user(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    home = beanpole.home
    assert (home / "token").stat().st_mode & 0o077 == 0
    assert (home / "state.db").stat().st_mode & 0o077 == 0
    for private in ("bundles", "logs", "haproxy", "supervisor", "cache"):
        assert (home / private).stat().st_mode & 0o077 == 0, private
    assert (home.stat().st_mode & 0o777) == 0o711  # traversable, not listable
