"""An upgrade of Beanpole in place, from a home where every application ran as one shared
user: at start the server replaces the instances that do not run as their application's own
user (``bp-<id>``) by deploying the environment's current version again, and the
application keeps answering meanwhile (`services.user_upgrade`).

The pre-upgrade state is the store's: instances whose user was not recorded (NULL, started
before Beanpole recorded it) or that run as the shared ``webapp``."""

from __future__ import annotations

import os
import pwd
import re
import sqlite3

import psutil
import pytest

from harness import Beanpole, Load, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="applications have users of their own only when Beanpole runs as root",
    ),
]


def _run_as(bp: Beanpole) -> dict[str, str | None]:
    """The user each live instance was recorded as running as, read from the store."""
    db = sqlite3.connect(bp.home / "state.db", timeout=10)
    try:
        rows = db.execute("SELECT id, run_as FROM instances WHERE state != 'stopped'").fetchall()
    finally:
        db.close()
    return dict(rows)


def _forget_users(bp: Beanpole, instances: list[str]) -> None:
    """The server stopped: make its instances look started before the upgrade."""
    db = sqlite3.connect(bp.home / "state.db", timeout=10)
    try:
        with db:
            db.execute("UPDATE instances SET run_as = NULL WHERE id = ?", (instances[0],))
            db.execute("UPDATE instances SET run_as = 'webapp' WHERE id = ?", (instances[1],))
    finally:
        db.close()


def test_instances_from_before_applications_had_users_are_replaced_at_start(beanpole, pid_app):
    bp = beanpole
    bp.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2")
    user = "bp-" + bp.app_id("shop").removeprefix("a-")
    before = sorted(i["id"] for i in bp.status("shop")["instances"])
    assert _run_as(bp) == dict.fromkeys(before, user)  # launching records whom it runs as

    bp.cli("server", "stop")  # the control plane only: the instances keep serving
    _forget_users(bp, before)
    with Load(bp.lb_port, "shop") as load:
        bp.start()

        def replaced() -> list[str] | None:
            status = bp.status("shop")
            ids = sorted(i["id"] for i in status["instances"])
            recorded = _run_as(bp)
            done = (
                status["status"] == "Ready"
                and len(ids) == 2
                and not set(ids) & set(before)
                and all(recorded.get(i) == user for i in ids)
            )
            return ids if done else None

        after = wait_for(replaced, 240, f"new instances running as {user}, Ready")
    assert load.ok > 0
    assert load.failures == []  # the deployment's policy (Immutable) drops nothing

    events = " ".join(bp.cli("events", "shop", "-n", "100").stdout.split())
    said = re.search(r"Replacing 2 instance\(s\) \((i-\w+), (i-\w+)\) (.*?) again\.", events)
    assert said is not None, events
    assert sorted(said.group(1, 2)) == before
    assert said.group(3) == (
        "that run as webapp or the user all applications shared then (not recorded), from "
        f"before each application had a user of its own, with instances running as {user}: "
        f"deploying version {bp.status('shop')['version']}"
    )
    uid = pwd.getpwnam(user).pw_uid
    for instance in bp.status("shop")["instances"]:
        assert instance["id"] in after
        process = psutil.Process(instance["pid"])
        assert process.uids().real == process.uids().effective == uid
