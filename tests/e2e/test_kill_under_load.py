"""kill -9 of the server at random points of deploys under load (issue #7, done-when).

One environment of the dependency-free app serves a steady keep-alive load through HAProxy
for the whole test. Deploy after deploy, the server is killed at a random point of one
phase (launch, await, retire, bake), started again, and watched until it has converged:

- `status` is never Ready while instances of two versions (or instances not in service) are
  in the environment;
- it always converges to one version, every instance in service;
- no request fails;
- no orphan: every app process of the home belongs to an instance the store knows, and
  supervisord runs exactly the store's instances.

The points are drawn from a seeded generator; the seed is printed (and named in every
failure) so a failing run can be replayed: ``BEANPOLE_KILL_SEED=<seed> pytest -m slow -k
kill``. ``BEANPOLE_KILL_POINTS`` changes how many points (20 by default).
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from harness import Beanpole, Load, wait_for

POINTS = int(os.environ.get("BEANPOLE_KILL_POINTS", "20"))
SEED = int(os.environ.get("BEANPOLE_KILL_SEED", str(random.SystemRandom().randrange(2**31))))
SCALE = 2
POLICIES = ("Rolling", "RollingWithAdditionalBatch", "Immutable")
# The first event of each phase; the kill comes a random moment after it.
PHASES = {
    "launch": (" instance(s) of version", 0.0, 0.15),  # "… starting N instance(s) of version"
    "await": (" instance(s) of version", 0.3, 0.9),  # new ones start in START_DELAY (1 s)
    "retire": ("Draining ", 0.0, 0.5),
    "bake": ("(bake window)", 0.0, 1.5),
}
SETTINGS = {
    "beanpole:deploy:BakeTime": "2",
    "beanpole:instance:StartTimeout": "10",
}

# About 25 s per point on a busy 2-core machine (a deploy, a restart, a repair).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(60 + 60 * POINTS)]


class Api:
    """The few REST calls the test makes between CLI commands (events after an id)."""

    def __init__(self, bp: Beanpole) -> None:
        self.bp = bp

    def events_after(self, env: str, after: int) -> list[dict[str, Any]]:
        token = (self.bp.home / "token").read_text().strip()
        response = httpx.get(
            f"http://127.0.0.1:{self.bp.api_port}/api/v1/environments/{env}/events",
            params={"after": after, "limit": 1000},
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
            timeout=10,
        )
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()
        return events


def variant(base: Path, dest: Path, name: str) -> Path:
    shutil.copytree(base, dest)
    (dest / "VERSION").write_text(name + "\n")
    (dest / "Procfile").write_text("web: START_DELAY=1 python3 server.py\n")
    return dest


def last_event_id(api: Api) -> int:
    events = api.events_after("shop", 0)
    return events[-1]["id"] if events else 0


def wait_for_phase(api: Api, after: int, marker: str, deadline_s: float = 60) -> None:
    def seen() -> bool:
        return any(marker in e["message"] for e in api.events_after("shop", after))

    wait_for(seen, deadline_s, f"an event containing {marker!r}", interval=0.05)


def app_processes(home: Path) -> dict[int, str]:
    """pid -> BEANPOLE_INSTANCE_ID of every app process running from this home."""
    found: dict[int, str] = {}
    root = str(home) + os.sep
    for proc in psutil.process_iter():
        try:
            if not proc.cwd().startswith(root) or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            instance = proc.environ().get("BEANPOLE_INSTANCE_ID")
        except psutil.Error:
            continue
        if instance is not None:  # supervisord and HAProxy run from the home too
            found[proc.pid] = instance
    return found


def consistent(info: dict[str, Any]) -> bool:
    """One version and every instance in service: what Ready promises."""
    instances = info["instances"]
    return {i["version"] for i in instances} <= {info["version"]} and all(
        i["state"] == "in-service" for i in instances
    )


def test_kill_9_at_random_points_of_deploys_under_load(beanpole, pid_app, tmp_path):
    rng = random.Random(SEED)
    print(f"kill test seed {SEED} ({POINTS} points); replay with BEANPOLE_KILL_SEED={SEED}")
    settings = [a for k, v in SETTINGS.items() for a in ("--setting", f"{k}={v}")]
    beanpole.cli(
        "create", "shop", "--app", "shop", "--source", str(pid_app),
        "--scale", str(SCALE), *settings,
    )  # fmt: skip
    api = Api(beanpole)
    points: list[str] = []
    with Load(beanpole.lb_port, "shop", max_seconds=1800) as load:
        for n in range(POINTS):
            phase = list(PHASES)[n % len(PHASES)]
            marker, low, high = PHASES[phase]
            delay = round(rng.uniform(low, high), 3)
            policy = POLICIES[rng.randrange(len(POLICIES))]
            point = f"seed {SEED} point {n}: {policy}, {phase} + {delay} s"
            points.append(point)
            print(point, flush=True)
            source = variant(pid_app, tmp_path / f"v{n}", f"v{n}")
            after = last_event_id(api)
            beanpole.cli("deploy", "shop", "--source", str(source), "--policy", policy, "--no-wait")
            wait_for_phase(api, after, marker)
            time.sleep(delay)  # the random point itself, not a wait for a condition
            beanpole.kill_server()
            beanpole.start()
            seen: list[dict[str, Any]] = []

            def converged() -> bool:
                info = beanpole.status("shop")
                seen.append(info)  # noqa: B023
                return (
                    info["status"] == "Ready"
                    and consistent(info)
                    and len(info["instances"]) == SCALE
                )

            wait_for(converged, 90, f"convergence after {point}", interval=0.2)
            lying = [i for i in seen if i["status"] == "Ready" and not consistent(i)]
            assert lying == [], f"{point}: Ready with two versions: {lying[0]}"
            live = {i["id"] for i in seen[-1]["instances"]}
            programs = beanpole.home / "supervisor" / "programs"
            assert {p.stem for p in programs.glob("*.conf")} == live, point

            def no_orphans() -> bool:
                return set(app_processes(beanpole.home).values()) == live  # noqa: B023

            wait_for(no_orphans, 15, f"only known instances' processes after {point}")
        assert load.failures == [], (points, load.failures[:5])
        assert load.ok > 0
