"""Environments on a 3-node Docker Swarm (issue 13, done-when: the deploy parts).

One real server with ``--runtime swarm`` against the test bed of `swarmkit` (three dockerds,
each in its own network namespace, hostnames n1, n2, n3) and one environment of six
instances of examples/python, shared by the tests in order:

1. the six instances spread 2/2/2 over the nodes (read from the swarm's API: each service's
   running task, its node's hostname);
2. a Rolling then an Immutable deploy under a keep-alive load drop no request, end on the new
   version everywhere and keep the spread;
3. a version whose app exits at start rolls back: the deploy fails saying so, the old
   version serves throughout and the environment is Ready on it;
4. (last: it disturbs the bed) n3 is killed under load (SIGKILL of its dockerd, containerd
   and containers); the environment gets back to six healthy instances on n1 and n2; once
   n3 is back, nothing is duplicated and nothing of a removed instance runs there again.

Skipped with the reason where the machine cannot run the bed or has no Docker engine (it
makes and pushes the image the tasks run).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker as docker_sdk
import pytest

import swarmkit

from conftest import EXAMPLES, _public_root
from harness import Beanpole, Load, wait_for

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.slow

ENV = "demo-web"
SCALE = 6
NODES = ("n1", "n2", "n3")
GREETING = "Hello from Beanpole"
SETTINGS = {
    "aws:elasticbeanstalk:command:DeploymentPolicy": "Rolling",
    "aws:elasticbeanstalk:command:BatchSize": "50",
    "beanpole:deploy:BakeTime": "1",
    "beanpole:deploy:EvaluationSeconds": "2",
    "beanpole:instance:StartTimeout": "30",
}
#: What the broken version runs: it says why and exits at once (status 1).
BROKEN = "python3 -c 'raise SystemExit(\"this version exits as it starts\")'"
#: How long the environment may take to get back to full capacity after a node dies.
RECOVERY_S = 45.0  # measured 8-10 s on an idle 2-core machine


# -- the bed, the server, the environment -------------------------------------------------


@pytest.fixture(scope="module")
def bp(beanpole_swarm: Beanpole) -> Beanpole:
    """A server with the swarm runtime (`conftest.beanpole_swarm`); `server stop --all`
    removes its services, gateway, network, routes and registry at the end."""
    return beanpole_swarm


@pytest.fixture(scope="module")
def bed(bp: Beanpole) -> swarmkit.SwarmBed:
    return bp.swarm  # type: ignore[attr-defined, no-any-return]


def version(tmp: Path, name: str, *, greeting: str | None = None, broken: bool = False) -> Path:
    """A copy of examples/python answering ``greeting``, or whose app exits as it starts."""
    folder = tmp / name
    shutil.copytree(EXAMPLES / "python", folder)
    app = folder / "application.py"
    if greeting is not None:
        app.write_text(app.read_text().replace(GREETING, greeting))
    if broken:
        (folder / "Procfile").write_text(f"web: {BROKEN}\n")
    return folder


@pytest.fixture(scope="module")
def sources() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(dir=_public_root(), prefix="swarm-src"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def web(bp: Beanpole, sources: Path) -> Iterator[str]:
    """The environment the tests share: six instances of examples/python, Rolling."""
    settings = [a for k, v in SETTINGS.items() for a in ("--setting", f"{k}={v}")]
    started = time.monotonic()
    bp.cli(
        "create", ENV, "--app", "demo", "--source", str(version(sources, "v1")),
        "--label", "v1", "--scale", str(SCALE), *settings,
    )  # fmt: skip
    print(f"\ncreate of {SCALE} instances: {time.monotonic() - started:.1f} s")
    try:
        yield ENV
    finally:
        bp.cli("terminate", ENV, check=False, timeout=300)


# -- what the swarm runs ------------------------------------------------------------------


@contextlib.contextmanager
def engine(url: str) -> Iterator[docker_sdk.APIClient]:
    client = docker_sdk.APIClient(base_url=url, timeout=30)
    try:
        yield client
    finally:
        client.close()


def placement(bed: swarmkit.SwarmBed, home: Path) -> dict[str, list[str]]:
    """Instance id → the hostnames of the nodes its service's running tasks are on, for every
    Beanpole service of ``home`` (from the manager)."""
    with engine(bed.manager_url) as api:
        hostnames = {n["ID"]: n["Description"]["Hostname"] for n in api.nodes()}
        services = api.services(filters={"label": f"beanpole.home={home}"})
        tasks = api.tasks(filters={"label": f"beanpole.home={home}", "desired-state": "running"})
    out: dict[str, list[str]] = {}
    by_service: dict[str, str] = {}
    for service in services:
        labels = service["Spec"].get("Labels") or {}
        if "beanpole.instance" in labels:
            out[labels["beanpole.instance"]] = []
            by_service[service["ID"]] = labels["beanpole.instance"]
    for task in tasks:
        instance = by_service.get(task.get("ServiceID", ""))
        if instance is not None and task["Status"]["State"] == "running":
            out[instance].append(hostnames.get(task.get("NodeID", ""), "?"))
    return out


def spread(bed: swarmkit.SwarmBed, home: Path, instances: set[str] | None = None) -> Counter[str]:
    """Node hostname → how many of ``instances`` (all the home's) run there; each must run
    exactly one task."""
    where = placement(bed, home)
    if instances is not None:
        assert set(where) == instances, (sorted(where), sorted(instances))
    assert all(len(nodes) == 1 for nodes in where.values()), where
    return Counter(nodes[0] for nodes in where.values())


def in_service(bp: Beanpole, env: str) -> dict[str, Any] | None:
    """The status when Ready with every instance in service and Green, else None."""
    info = bp.status(env)
    instances = info["instances"]
    ready = info["status"] == "Ready" and all(
        i["state"] == "in-service" and i["health"] == "Green" for i in instances
    )
    return info if ready else None


def describe(info: dict[str, Any]) -> str:
    """A status in a few lines, for failure messages."""
    return "\n".join(
        [
            f"{info['name']}: {info['status']}, {info['health']}, version {info['version']}",
            *(
                f"  {i['id']} {i['state']} {i['health']} {i['version']} {i['host']} "
                f"{'; '.join(i['causes'])}"
                for i in info["instances"]
            ),
        ]
    )


def holds_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Assert ``condition`` stays true for ``seconds`` (an observation window)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), what
        time.sleep(0.5)


def served(load: Load, last: int = 30) -> set[str]:
    """Which greeting the last answers of ``load`` carried."""
    return {b.split("<h1>", 1)[1].split("</h1>", 1)[0] for b in load.bodies[-last:]}


# -- the tests, in order ------------------------------------------------------------------


def test_six_instances_spread_two_per_node(bp, bed, web):
    started = time.monotonic()
    try:
        info = wait_for(
            lambda: in_service(bp, web), 60, "every instance in service and Green", interval=0.5
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{describe(bp.status(web))}") from None
    print(f"Green {time.monotonic() - started:.1f} s after create returned")
    ids = {i["id"] for i in info["instances"]}
    assert len(ids) == SCALE
    counts = spread(bed, bp.home, ids)
    print(f"spread: {dict(sorted(counts.items()))}")
    assert counts == Counter(dict.fromkeys(NODES, 2))
    status, body = bp.get(web)
    assert status == 200 and GREETING in body, body


def test_rolling_then_immutable_deploys_under_load_drop_nothing(bp, bed, web, sources):
    timings = {}
    with Load(bp.lb_port, web) as load:
        wait_for(lambda: load.ok >= 50, 30, "requests to flow")
        for label, policy in (("v2", "Rolling"), ("v3", "Immutable")):
            source = version(sources, label, greeting=f"Hello from {label}")
            started = time.monotonic()
            done = bp.cli(
                "deploy", web, "--source", str(source), "--label", label, "--policy", policy
            )
            timings[policy] = time.monotonic() - started
            assert "Environment update completed successfully." in done.stdout, done.stdout
            seen = load.ok
            wait_for(lambda seen=seen: load.ok >= seen + 50, 30, f"requests after {label}")
            assert served(load) == {f"Hello from {label}"}, served(load)
            info = in_service(bp, web)
            assert info is not None, describe(bp.status(web))
            assert info["version"] == label
            assert [i["version"] for i in info["instances"]] == [label] * SCALE
            counts = spread(bed, bp.home, {i["id"] for i in info["instances"]})
            print(f"{policy} ({label}): {timings[policy]:.1f} s, spread {dict(counts)}")
            assert max(counts.values()) - min(counts.get(n, 0) for n in NODES) <= 1, counts
    print(f"requests: {load.ok} answered, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]


def test_a_version_that_exits_at_start_rolls_back_and_the_old_one_keeps_serving(
    bp, bed, web, sources
):
    before = bp.status(web)
    old = before["version"]
    broken = version(sources, "broken", broken=True)
    with Load(bp.lb_port, web) as load:
        wait_for(lambda: load.ok >= 50, 30, "requests to flow")
        started = time.monotonic()
        failed = bp.cli("deploy", web, "--source", str(broken), "--label", "broken", check=False)
        took = time.monotonic() - started
        info = wait_for(lambda: in_service(bp, web), 120, f"{web} Ready again", interval=0.5)
        seen = load.ok
        wait_for(lambda: load.ok >= seen + 50, 30, "requests after the rollback")
    print(f"\nbroken deploy: failed after {took:.1f} s, exit status {failed.returncode}")
    print(f"  stderr: {failed.stderr.strip()[:400]}")
    print(f"requests: {load.ok} answered, {len(load.failures)} failed")
    assert failed.returncode != 0
    assert "of version broken failed: web exited with status 1" in failed.stderr
    assert "this version exits as it starts" in failed.stderr  # its last words
    assert f"Rolled back to version {old}." in failed.stdout
    assert load.failures == [], load.failures[:5]
    assert served(load, 100_000) == {f"Hello from {old}"}
    assert info["version"] == old
    assert [i["version"] for i in info["instances"]] == [old] * SCALE
    counts = spread(bed, bp.home, {i["id"] for i in info["instances"]})
    print(f"spread after the rollback: {dict(counts)}")
    assert max(counts.values()) - min(counts.get(n, 0) for n in NODES) <= 1, counts
    assert "Failed to deploy application." in bp.cli("events", web, "-n", "20").stdout


def test_a_node_killed_under_load_is_replaced_and_nothing_comes_back_twice(bp, bed, web):
    """Last: it kills n3 (and starts it again)."""
    info = in_service(bp, web)
    assert info is not None, describe(bp.status(web))
    assert spread(bed, bp.home, {i["id"] for i in info["instances"]})["n3"] > 0
    killed = False
    try:
        with Load(bp.lb_port, web) as load:
            wait_for(lambda: load.ok >= 50, 30, "requests to flow")
            started, wall = time.monotonic(), time.strftime("%Y-%m-%d %H:%M:%S")
            bed.kill_node("n3")
            killed = True

            def recovered() -> dict[str, Any] | None:
                ready = in_service(bp, web)
                if ready is None or len(ready["instances"]) != SCALE:
                    return None
                where = spread(bed, bp.home)
                return ready if "n3" not in where and sum(where.values()) == SCALE else None

            try:
                info = wait_for(
                    recovered, RECOVERY_S, "6 instances in service on n1 and n2", interval=1
                )
            except AssertionError as exc:
                observed = _observed(bp, bed, web, load, time.monotonic() - started)
                raise AssertionError(f"no recovery from the loss of n3: {exc}\n{observed}") from exc
            took = time.monotonic() - started
            seen = load.ok
            wait_for(lambda: load.ok >= seen + 50, 30, "requests after the recovery")
        counts = spread(bed, bp.home, {i["id"] for i in info["instances"]})
        print(
            f"\nnode loss: full capacity again {took:.1f} s after the kill of n3; "
            f"{len(load.failures)} of {load.ok + len(load.failures)} requests failed; "
            f"spread {dict(counts)}"
        )
        for failure in load.failures[:10]:
            print(f"  {failure}")
        events = bp.cli("events", web, "-n", "30").stdout.splitlines()
        print("\n".join(line for line in events if line[:19] >= wall))
        assert counts == Counter({"n1": 3, "n2": 3}), counts
        # The client sends one request at a time: the one in flight to n3 when it died gets
        # no answer (HAProxy retries failed connections, never a request already sent);
        # later ones go elsewhere once the check marks n3's servers down.
        assert len(load.failures) <= 2, load.failures[:20]
    finally:
        if killed:
            bed.start_node("n3")
    _check_nothing_comes_back_on(bp, bed, web, "n3")


def _check_nothing_comes_back_on(bp: Beanpole, bed: swarmkit.SwarmBed, env: str, node: str):
    def ready() -> bool:
        with engine(bed.manager_url) as api:
            return any(
                n["Description"]["Hostname"] == node and n["Status"]["State"] == "ready"
                for n in api.nodes()
            )

    wait_for(ready, 60, f"{node} ready in the swarm again")

    def strays() -> list[str]:
        known = {i["id"] for i in bp.status(env)["instances"]}
        with engine(bed.url(node)) as api:
            running = api.containers(
                filters={"label": [f"beanpole.home={bp.home}", "beanpole.instance"]}
            )
        return [
            f"{c['Labels']['beanpole.instance']} ({c['Names'][0]})"
            for c in running
            if c["Labels"]["beanpole.instance"] not in known
        ]

    def exact() -> bool:
        info = bp.status(env)
        ids = {i["id"] for i in info["instances"]}
        return len(ids) == SCALE and set(placement(bed, bp.home)) == ids and not strays()

    # The environment spreads over the returning node again, launch-first, one instance at
    # a time (like an auto scaling group's AZRebalance); nothing old comes back on it.
    started = time.monotonic()

    def even() -> bool:
        if not exact():
            return False
        counts = spread(bed, bp.home, {i["id"] for i in bp.status(env)["instances"]})
        return all(counts.get(n, 0) == SCALE // len(NODES) for n in NODES)

    wait_for(even, 120, f"{SCALE} instances spread evenly again, {node} included", interval=1)
    took = time.monotonic() - started
    # the returning node's agent first learns which of its tasks are gone: watch a while
    holds_for(exact, 10, f"exactly {SCALE} instances and services, no stray on {node}")
    info = bp.status(env)
    counts = spread(bed, bp.home, {i["id"] for i in info["instances"]})
    print(f"after {node} came back: {dict(counts)} {took:.1f} s later; {info['health']}")
    assert "(rebalance)" in bp.cli("events", env, "-n", "30").stdout


def _observed(bp: Beanpole, bed: swarmkit.SwarmBed, env: str, load: Load, after: float) -> str:
    lines = [
        f"after {after:.0f} s: {load.ok} requests answered, {len(load.failures)} failed",
        describe(bp.status(env)),
        f"tasks: {placement(bed, bp.home)}",
        bp.cli("events", env, "-n", "15").stdout,
    ]
    return "\n".join(lines)
