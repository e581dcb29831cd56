"""The swarm runtime (issue 13): the request path to a task, and a node's loss, in one run.

    .venv/bin/python -m bench.swarm [--rounds 3] [--seconds 5] [--connections 16] [--threads 2]
                                    [--instances 2] [--clients 4] [--quick]

A 3-node swarm of its own (`tests/swarmkit.py` on ``swarm-netns.sh``: one dockerd per
network namespace, n1 the manager, n2 and n3 workers), one Beanpole server with
``--runtime swarm`` against it (its registry's CA trusted by every node first), and the tiny
app (`bench/apps/tiny`: one asyncio process answering a canned keep-alive response, 15 to
25 µs of CPU per request, so the path to it shows rather than the app; examples/python's
Flask and gunicorn spend several hundred µs per request and would hide it).

**1. Throughput through HAProxy**, three environments of ``--instances`` instances each on
the same server, interleaved round by round in a rotating order with an idle measurement:

- ``host``: ``beanpole:instance:Runtime=supervisord``: processes on the host, each in its
  own network namespace (a veth), as on a server without the swarm;
- ``swarm-local``: tasks on the manager n1 (node label ``bench=local``, the environment's
  ``beanpole:instance:Constraints=bench=local``): host → the gateway container on n1 →
  the overlay's bridge → the task;
- ``swarm-remote``: tasks on the workers n2 and n3 (``bench=remote``): the same plus a
  VXLAN hop between two nodes' namespaces;
- ``idle``: no load, the same seconds: what the machine spends anyway (the Beanpole server,
  four dockerds, other people's work on this shared machine).

wrk (``-t2 -c16`` keep-alive, ``--seconds``) against HAProxy's port with each environment's
``Host:``. CPU per request: the machine's busy time from /proc/stat (every process, and the
kernel's interrupt and softirq work that no process is charged for: forwarding, NAT and
VXLAN happen there) divided by the requests served; ``net`` subtracts the same round's idle
rate. HAProxy's own (master and workers, /proc/<pid>/stat), the app's (the instances'
process trees; a task's from its node's engine) and wrk's (RUSAGE_CHILDREN) likewise.

**2. A node's death under load.** The throughput environments are terminated; then, per
round, an environment of 6 instances (2 on each node, checked on the manager), a keep-alive
GET load through HAProxy (``--clients`` threads of `tests/harness.py: Load`, each one
request at a time), and ``kill-node`` of n2 or n3 (in turn): SIGKILL of its dockerd,
containerd and containers. The REST API's view of the environment is polled back to back
(keep-alive, about every 25 ms) to time (i) the first and the last lost instance leaving
service, (ii) six instances in service again; the events give when Beanpole saw the node
down, when the lost instances' stop ended and when the replacements started. Failed
requests of the load are counted, and each client's longest stretch without an answer.
Then the node is started again and the round waits until the manager and Beanpole see it
ready; the environment is terminated (Beanpole does not move instances back onto a
returning node, so each round starts from a fresh 2/2/2).

Everything is torn down at the end: the server (``server stop --all``), what that leaves
of a swarm home (its services, gateway, network, host route and nft table, its registry),
the node labels, the test bed, the application users. Results:
``bench/results/swarm-<time>.json``. Skipped, saying why, where the test bed cannot run
(`swarmkit.unavailable()`: root, docker.io, busybox-static, docker-registry;
``scripts/bootstrap.sh --docker``) or wrk or HAProxy are missing.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._common import (
    ROOT,
    Background,
    Beanpole,
    beanpole_home,
    cpu_total,
    fmt,
    haproxy_pids,
    machine,
    spread,
    stamp,
    stop_and_check,
    wait_for,
    with_children,
    write_result,
    wrk_argv,
    wrk_json,
)

import swarmkit  # tests/swarmkit.py

from harness import Load  # tests/ is on the path (bench._common)

APP = ROOT / "bench" / "apps" / "tiny"
APPLICATION = "swarmbench"
NODES = ("n1", "n2", "n3")
LABEL = "bench"
NODE_LABELS = {"n1": "local", "n2": "remote", "n3": "remote"}
CASES = ("host", "swarm-local", "swarm-remote")
ENVS = {"host": "sw-host", "swarm-local": "sw-local", "swarm-remote": "sw-remote"}
CASE_SETTINGS = {
    "host": {"beanpole:instance:Runtime": "supervisord"},
    "swarm-local": {"beanpole:instance:Constraints": f"{LABEL}=local"},
    "swarm-remote": {"beanpole:instance:Constraints": f"{LABEL}=remote"},
}
CASE_TITLES = {
    "host": "supervisord on the host",
    "swarm-local": "swarm, tasks on the manager n1",
    "swarm-remote": "swarm, tasks on workers n2/n3",
}
KILL_ENV = "sw-kill"
KILL_SCALE = 6
VICTIMS = ("n2", "n3")
RECOVERY_S = 120.0
POLL_S = 0.02  # between two reads of the environment (each takes a few ms more)
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_TICKS = os.sysconf("SC_CLK_TCK")


def why_not() -> str | None:
    """Why this benchmark cannot run here, or None."""
    from beanpole.adapters.runtime import docker as docker_runtime

    if (reason := swarmkit.unavailable()) is not None:
        return reason
    if (reason := docker_runtime.unavailable()) is not None:
        return f"no Docker engine on this host (it builds and pushes the tasks' image): {reason}"
    for tool in ("wrk", "haproxy"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/bootstrap.sh installs it)"
    return None


# -- the machine's CPU ----------------------------------------------------------------------------


def machine_cpu() -> dict[str, float]:
    """The first line of /proc/stat in seconds: every CPU's time by kind since boot."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1 : 1 + len(CPU_FIELDS)]
    ticks = dict(zip(CPU_FIELDS, (int(x) for x in fields), strict=True))
    busy = sum(v for k, v in ticks.items() if k not in ("idle", "iowait"))
    return {
        "busy": busy / _TICKS,
        "system": ticks["system"] / _TICKS,
        "interrupts": (ticks["irq"] + ticks["softirq"]) / _TICKS,
    }


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- Beanpole's REST API, kept alive (a CLI call costs 0.6 s of start-up) ------------------------


class Api:
    def __init__(self, bp: Beanpole) -> None:
        self.port = bp.api_port
        self.token = (bp.home / "token").read_text().strip()
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> Any:
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self._conn.request(
                    "GET", f"/api/v1{path}", headers={"Authorization": f"Bearer {self.token}"}
                )
                response = self._conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {response.status}: {body[:300]!r}")
            return json.loads(body)
        raise AssertionError("unreachable")

    def environment(self, name: str) -> dict[str, Any]:
        view: dict[str, Any] = self.get(f"/environments/{name}")
        return view

    def events(self, name: str, after: int = 0) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get(
            f"/environments/{name}/events?after={after}&limit=500"
        )
        return found

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def in_service(view: dict[str, Any]) -> set[str]:
    return {i["id"] for i in view["instances"] if i["state"] == "in-service"}


def last_event_id(api: Api, env: str) -> int:
    return max((e["id"] for e in api.events(env)), default=0)


# -- the swarm: node labels, where each instance runs, its task's processes ----------------------


@contextlib.contextmanager
def engine(url: str) -> Iterator[Any]:
    import docker

    client = docker.APIClient(base_url=url, timeout=30)
    try:
        yield client
    finally:
        client.close()


def set_label(bed: swarmkit.SwarmBed, hostname: str, value: str | None) -> None:
    """``docker node update --label-add bench=VALUE`` (``--label-rm`` for None), through the
    manager's API."""
    with engine(bed.manager_url) as api:
        node = api.inspect_node(hostname)
        spec = dict(node["Spec"])
        labels = dict(spec.get("Labels") or {})
        if value is None:
            labels.pop(LABEL, None)
        else:
            labels[LABEL] = value
        spec["Labels"] = labels
        api.update_node(node["ID"], node["Version"]["Index"], spec)


def node_states(bed: swarmkit.SwarmBed) -> dict[str, str]:
    with engine(bed.manager_url) as api:
        return {n["Description"]["Hostname"]: n["Status"]["State"] for n in api.nodes()}


def placement(bed: swarmkit.SwarmBed, home: Path, ids: set[str]) -> dict[str, list[str]]:
    """Instance id → the hostnames of the nodes its service's running tasks are on, for
    those of ``ids`` the swarm runs for ``home`` (from the manager)."""
    with engine(bed.manager_url) as api:
        hostnames = {n["ID"]: n["Description"]["Hostname"] for n in api.nodes()}
        services = api.services(filters={"label": f"beanpole.home={home}"})
        tasks = api.tasks(filters={"label": f"beanpole.home={home}", "desired-state": "running"})
    out: dict[str, list[str]] = {}
    by_service: dict[str, str] = {}
    for service in services:
        labels = service["Spec"].get("Labels") or {}
        if labels.get("beanpole.instance") in ids:
            out[labels["beanpole.instance"]] = []
            by_service[service["ID"]] = labels["beanpole.instance"]
    for task in tasks:
        instance = by_service.get(task.get("ServiceID", ""))
        if instance is not None and task["Status"]["State"] == "running":
            out[instance].append(hostnames.get(task.get("NodeID", ""), "?"))
    return out


def spread_of(where: dict[str, list[str]], ids: set[str]) -> Counter[str]:
    """Node → how many of ``ids`` run there; each must run exactly one task."""
    if set(where) != ids or any(len(nodes) != 1 for nodes in where.values()):
        raise RuntimeError(f"the swarm runs {where}, Beanpole has {sorted(ids)}")
    return Counter(nodes[0] for nodes in where.values())


def task_pids(bed: swarmkit.SwarmBed, home: Path, ids: set[str]) -> list[int]:
    """The host pids of these instances' containers and their children (a node's containers
    are this kernel's processes)."""
    pids: list[int] = []
    for node in NODES:
        with engine(bed.url(node)) as api:
            for row in api.containers(filters={"label": [f"beanpole.home={home}"]}):
                if (row.get("Labels") or {}).get("beanpole.instance") in ids:
                    pid = int(api.inspect_container(row["Id"])["State"]["Pid"] or 0)
                    if pid:
                        pids.extend(with_children(pid))
    return pids


def swarm_leftovers(bed: swarmkit.SwarmBed, home: Path) -> dict[str, Any]:
    """What of this home's swarm side exists now: services, gateway, overlay network, the
    host's route to it and nft table."""
    import docker

    from beanpole.adapters.runtime.swarm import Swarm

    names = Swarm(str(home), registry=None, base_url=bed.manager_url)  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    with engine(bed.manager_url) as api:
        out["services"] = len(api.services(filters={"label": f"beanpole.home={home}"}))
        out["gateway"] = bool(api.containers(all=True, filters={"name": names.gateway}))
        try:
            network = api.inspect_network(names.network)
            subnet = network["IPAM"]["Config"][0]["Subnet"]
        except docker.errors.NotFound:
            subnet = None
    out["network"] = subnet
    routes = subprocess.run(["ip", "-o", "route"], capture_output=True, text=True, check=False)
    out["host_route"] = next(
        (line.strip() for line in routes.stdout.splitlines() if subnet and line.startswith(subnet)),
        None,
    )
    table = f"beanpole-swarm-{names.prefix[3:]}"
    nft = subprocess.run(
        ["nft", "list", "table", "ip", table], capture_output=True, text=True, check=False
    )
    out["nft_table"] = table if nft.returncode == 0 else None
    return out


def remove_swarm_side(bed: swarmkit.SwarmBed, home: Path, registry: Any) -> None:
    """What ``server stop --all`` leaves of a swarm home: its services, gateway, network,
    host route and nft table (`Swarm.shutdown`), the images it made, and its registry."""
    import docker

    from beanpole.adapters.runtime.swarm import Swarm

    runtime = Swarm(
        str(home), registry=registry, base_url=bed.manager_url, manager_address=bed.manager_address
    )
    try:
        with contextlib.suppress(docker.errors.NotFound):
            runtime.api.inspect_network(runtime.network)
            runtime.subnet  # noqa: B018 - known, so that shutdown removes its route
        runtime.shutdown()
    finally:
        runtime.remove_images()  # the versions' images it made on this host's engine
        runtime.close()
        registry.stop()


# -- 1. throughput --------------------------------------------------------------------------------


def create(bp: Beanpole, env: str, scale: int, settings: dict[str, str]) -> float:
    started = time.monotonic()
    bp.cli(
        "create", env, "--app", APPLICATION, "--source", str(APP), "--platform", "procfile",
        "--scale", str(scale),
        *(a for k, v in settings.items() for a in ("--setting", f"{k}={v}")),
    )  # fmt: skip
    return time.monotonic() - started


def answers_from_all(bp: Beanpole, env: str, ids: set[str]) -> None:
    """HAProxy answers for ``env`` from every one of its instances."""
    seen: set[str] = set()

    def all_seen() -> bool:
        status, body = bp.get(env, timeout=5)
        if status == 200:
            seen.add(json.loads(body)["instance"])
        return seen >= ids

    wait_for(all_seen, 30, f"HAProxy to answer for {env} from all of {sorted(ids)}", 0.02)


class Case:
    """One environment of the throughput part: where it runs and whose CPU to count."""

    def __init__(self, name: str, bp: Beanpole, bed: swarmkit.SwarmBed, api: Api) -> None:
        self.name, self.env = name, ENVS[name]
        view = api.environment(self.env)
        self.ids = {i["id"] for i in view["instances"]}
        self.network = sorted({i["network"] for i in view["instances"]})
        if name == "host":
            self.nodes: dict[str, int] = {"host": len(self.ids)}
            self.app_pids = [p for i in view["instances"] for p in with_children(int(i["pid"]))]
            if placement(bed, bp.home, self.ids):
                raise RuntimeError(f"{self.env} asked for supervisord but runs on the swarm")
        else:
            self.nodes = dict(spread_of(placement(bed, bp.home, self.ids), self.ids))
            self.app_pids = task_pids(bed, bp.home, self.ids)
        wanted = (
            {"host"}
            if name == "host"
            else {n for n, v in NODE_LABELS.items() if name == f"swarm-{v}"}
        )
        if set(self.nodes) != wanted:
            raise RuntimeError(f"{self.env} runs on {self.nodes}, not on {sorted(wanted)}")
        if len(self.app_pids) < len(self.ids):
            raise RuntimeError(f"found {self.app_pids} as the processes of {sorted(self.ids)}")

    def describe(self) -> dict[str, Any]:
        return {
            "environment": self.env,
            "settings": CASE_SETTINGS[self.name],
            "instances": sorted(self.ids),
            "nodes": self.nodes,
            "network": self.network,
        }


def measure(
    bp: Beanpole, case: Case | None, seconds: float, connections: int, threads: int
) -> dict[str, Any]:
    """One run of wrk against ``case``'s environment through HAProxy (None: idle, a sleep
    as long), and the CPU time spent meanwhile."""
    master, workers = haproxy_pids(bp.home)
    haproxy = ([master] if master else []) + workers
    app = case.app_pids if case else []
    cpu_before = machine_cpu()
    haproxy_before, app_before, wrk_before = cpu_total(haproxy), cpu_total(app), children_cpu()
    started = time.monotonic()
    report: dict[str, Any] | None = None
    if case is None:
        time.sleep(seconds)
    else:
        wrk = shutil.which("wrk") or "wrk"
        proc = subprocess.run(
            wrk_argv(
                wrk,
                f"http://127.0.0.1:{bp.lb_port}/",
                seconds=seconds,
                threads=threads,
                connections=connections,
                headers=["-H", f"Host: {case.env}.localhost:{bp.lb_port}"],
            ),
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        report = wrk_json(proc)
    wall = time.monotonic() - started
    cpu_after = machine_cpu()
    cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_before}
    cpu["haproxy"] = cpu_total(haproxy) - haproxy_before
    cpu["app"] = cpu_total(app) - app_before
    cpu["wrk"] = children_cpu() - wrk_before
    row: dict[str, Any] = {
        "case": case.name if case else "idle",
        "wall_s": round(wall, 3),
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "busy_cores": round(cpu["busy"] / wall, 3),
        # a reload mid-run would swap HAProxy's workers and lose their CPU time
        "haproxy_workers_changed": haproxy_pids(bp.home)[1] != workers,
    }
    if report is not None:
        requests = report["requests"]
        row.update(
            requests=requests,
            errors=report["errors"],
            error_count=sum(report["errors"].values()),
            rps=requests / (report["duration_us"] / 1e6),
            latency_us=report["latency_us"],
            cpu_us_per_request={
                k: (v * 1e6 / requests if requests else None) for k, v in cpu.items()
            },
        )
    return row


def net_of_idle(row: dict[str, Any], idle: dict[str, Any] | None) -> float | None:
    """The machine's CPU µs per request above what it spent idle in the same round."""
    if idle is None or not row.get("requests"):
        return None
    idle_rate = idle["cpu_s"]["busy"] / idle["wall_s"]
    return float((row["cpu_s"]["busy"] - idle_rate * row["wall_s"]) * 1e6 / row["requests"])


def throughput(
    bp: Beanpole, bed: swarmkit.SwarmBed, api: Api, args: argparse.Namespace, result: dict[str, Any]
) -> None:
    for node, value in NODE_LABELS.items():
        set_label(bed, node, value)
    cases: dict[str, Case] = {}
    for name in CASES:
        took = create(bp, ENVS[name], args.instances, CASE_SETTINGS[name])
        case = Case(name, bp, bed, api)
        answers_from_all(bp, case.env, case.ids)
        cases[name] = case
        result["cases"][name] = {**case.describe(), "create_s": round(took, 2)}
        print(f"  {case.env}: {args.instances} instances on {case.nodes} in {took:.1f} s")
    for name in CASES:  # warm-up: connections, caches; discarded
        measure(bp, cases[name], 1.0, args.connections, args.threads)
    order: list[str | None] = [*CASES, None]
    for r in range(args.rounds):
        idle: dict[str, Any] | None = None
        rows = []
        for which in order[r % len(order) :] + order[: r % len(order)]:
            row = measure(
                bp, cases[which] if which else None, args.seconds, args.connections, args.threads
            )
            row["round"] = r + 1
            rows.append(row)
            if which is None:
                idle = row
        for row in rows:
            if row["case"] != "idle":
                row["cpu_us_per_request"]["busy_net_of_idle"] = net_of_idle(row, idle)
            result["runs"].append(row)
            print("  " + run_line(row, r + 1, args.rounds))


def run_line(row: dict[str, Any], r: int, rounds: int) -> str:
    head = f"round {r}/{rounds} {row['case']:<12}"
    if row["case"] == "idle":
        return f"{head} machine busy {row['busy_cores']:.2f} cores"
    per = row["cpu_us_per_request"]
    return (
        f"{head} {row['rps']:>7.0f} req/s  p99 {row['latency_us']['p99']:>6} µs  "
        f"machine {per['busy']:>5.1f} µs/req (net {fmt(per['busy_net_of_idle'], '.1f')}, "
        f"irq {per['interrupts']:.1f})  haproxy {per['haproxy']:.1f}  app {per['app']:.1f}  "
        f"busy {row['busy_cores']:.2f} cores"
        + (f"  ERRORS {row['errors']}" if row["error_count"] else "")
    )


# -- 2. a node's death ----------------------------------------------------------------------------


class Watch(Background):
    """Reads the environment from the REST API back to back; keeps every change of its
    instances' states, with the load's counts at that moment, and each client's longest
    stretch without a new answer."""

    def __init__(self, bp: Beanpole, env: str, loads: list[Load]) -> None:
        super().__init__()
        self.api, self.env, self.loads = Api(bp), env, loads  # a connection of its own
        self.changes: list[dict[str, Any]] = []
        self.polls = 0
        self.errors: list[str] = []
        self.round_trips: list[float] = []
        now = time.time()
        # per client: (seconds, from) of its longest stretch without an answer, and when its
        # answer count last grew
        self.stalls = [(0.0, now) for _ in loads]
        self._last_answer = [(now, load.ok) for load in loads]

    def _run(self) -> None:
        last: dict[str, str] | None = None
        while not self._stop.is_set():
            sent = time.time()
            try:
                view = self.api.environment(self.env)
            except Exception as exc:  # the server is busy, or restarting: note it, go on
                self.errors.append(f"{sent:.3f} {exc!r}")
                self._stop.wait(POLL_S)
                continue
            got = time.time()
            ok = sum(load.ok for load in self.loads)
            failed = sum(len(load.failures) for load in self.loads)
            with self._lock:
                self.polls += 1
                self.round_trips.append(got - sent)
                for n, load in enumerate(self.loads):
                    at, count = self._last_answer[n]
                    if load.ok > count:
                        if got - at > self.stalls[n][0]:
                            self.stalls[n] = (got - at, at)
                        self._last_answer[n] = (got, load.ok)
                states = {i["id"]: i["state"] for i in view["instances"]}
                if states != last:
                    self.changes.append(
                        {"sent": sent, "got": got, "states": states, "ok": ok, "failed": failed}
                    )
                    last = states
            self._stop.wait(POLL_S)
        self.api.close()


def kill_time(log: str, fallback: float) -> float:
    """The wall-clock time of swarm-netns.sh's first ``kill -9 node`` line (it logs
    ``[HH:MM:SS.mmm]`` just before sending the signals), else ``fallback``."""
    match = re.search(r"^\[(\d\d):(\d\d):(\d\d\.\d+)\] kill -9 node", log, re.M)
    if match is None:
        return fallback
    h, m, s = int(match[1]), int(match[2]), float(match[3])
    day = datetime.fromtimestamp(fallback).replace(hour=0, minute=0, second=0, microsecond=0)
    at = day.timestamp() + h * 3600 + m * 60 + s
    return at if abs(at - fallback) < 60 else fallback


def kill_round(
    bp: Beanpole, bed: swarmkit.SwarmBed, api: Api, victim: str, r: int, clients: int
) -> dict[str, Any]:
    took = create(bp, KILL_ENV, KILL_SCALE, {})
    ids = in_service(api.environment(KILL_ENV))
    answers_from_all(bp, KILL_ENV, ids)
    where = placement(bed, bp.home, ids)
    counts = spread_of(where, ids)
    lost = {i for i, nodes in where.items() if nodes == [victim]}
    row: dict[str, Any] = {
        "round": r,
        "victim": victim,
        "create_s": round(took, 2),
        "spread_before": dict(sorted(counts.items())),
        "lost_instances": sorted(lost),
    }
    if len(ids) != KILL_SCALE or not lost:
        raise RuntimeError(f"{KILL_ENV}: {len(ids)} in service, spread {dict(counts)}")
    after_id = last_event_id(api, KILL_ENV)
    killed = False
    try:
        with contextlib.ExitStack() as stack:
            loads = [
                stack.enter_context(Load(bp.lb_port, KILL_ENV, max_seconds=RECOVERY_S + 60))
                for _ in range(clients)
            ]
            wait_for(lambda: all(ld.ok >= 50 for ld in loads), 30, "50 answers to each client")
            watch = Watch(bp, KILL_ENV, loads)
            watch.start()
            time.sleep(1.0)
            called = time.time()
            log = bed.run("kill-node", victim)
            killed = True
            t_kill = kill_time(log, called)
            row["kill_call_s"] = round(time.time() - called, 3)

            def recovered() -> bool:
                view = api.environment(KILL_ENV)
                serving = in_service(view)
                return len(serving) >= KILL_SCALE and not serving & lost

            try:
                wait_for(recovered, RECOVERY_S, f"{KILL_SCALE} instances in service again", 0.1)
            finally:
                time.sleep(2.0)  # the load and the watch a while after
                watch.stop()
                for load in loads:
                    load.stop()
        row.update(evaluate(watch, loads, t_kill, lost))
        events = [e for e in api.events(KILL_ENV, after_id) if e["time"] >= t_kill - 1]
        row["events"] = [
            {"after_s": round(e["time"] - t_kill, 3), "message": e["message"]} for e in events
        ]
        down = next((e for e in events if e["message"] == f"Node {victim} is down."), None)
        row["node_down_event_s"] = round(down["time"] - t_kill, 3) if down else None
        lost_events = [e["time"] - t_kill for e in events if " lost: " in e["message"]]
        row["lost_events_s"] = [round(t, 3) for t in lost_events]
        # the lost instances' stop ended (out of HAProxy, services removed), then the repair
        row["lost_stopped_s"] = round(max(lost_events), 3) if lost_events else None
        starting = [e for e in events if e["message"].startswith("Starting ")]
        row["replacements_started_s"] = round(starting[0]["time"] - t_kill, 3) if starting else None
        serving = in_service(api.environment(KILL_ENV))
        row["spread_after"] = dict(
            sorted(spread_of(placement(bed, bp.home, serving), serving).items())
        )
    finally:
        if killed:
            row["node_back"] = restart_node(bed, api, victim)
    row["terminate_s"] = terminate(bp, KILL_ENV)
    return row


def evaluate(watch: Watch, loads: list[Load], t_kill: float, lost: set[str]) -> dict[str, Any]:
    """The instants of interest, in seconds after the kill, from the watch's changes."""
    first_left = all_left = full = None
    lowest = KILL_SCALE
    failed_at: dict[str, int | None] = {"first_left": None, "full": None}
    for change in watch.changes:
        if change["got"] < t_kill:
            continue
        states = change["states"]
        serving = {i for i, s in states.items() if s == "in-service"}
        lowest = min(lowest, len(serving))
        t = change["got"] - t_kill
        if first_left is None and lost - serving:
            first_left = t
            failed_at["first_left"] = change["failed"]
        if all_left is None and not lost & serving:
            all_left = t
        if first_left is not None and full is None and len(serving) >= KILL_SCALE:
            full = None if lost & serving else t
            if full is not None:
                failed_at["full"] = change["failed"]
    trips = sorted(watch.round_trips)
    failures = [f for load in loads for f in load.failures]
    return {
        "first_lost_left_service_s": _r(first_left),
        "all_lost_left_service_s": _r(all_left),
        "full_capacity_s": _r(full),
        "fewest_in_service": lowest,
        "requests_ok": sum(load.ok for load in loads),
        "requests_failed": len(failures),
        "failed_before_first_left": failed_at["first_left"],
        "failed_before_full": failed_at["full"],
        "failures": sorted(Counter(f.split(":")[0][:80] for f in failures).items()),
        "longest_without_answer_s": round(max(s for s, _ in watch.stalls), 3),
        # per client: its longest stretch without an answer and when it began (after the kill)
        "stalls": [
            {"seconds": round(s, 3), "from_s": round(at - t_kill, 3)} for s, at in watch.stalls
        ],
        "polls": watch.polls,
        "poll_errors": watch.errors[:10],
        "poll_round_trip_ms_median": round(trips[len(trips) // 2] * 1e3, 1) if trips else None,
        "poll_period_ms": round(
            (watch.changes[-1]["got"] - watch.changes[0]["sent"]) / max(watch.polls - 1, 1) * 1e3,
            1,
        )
        if watch.changes
        else None,
        "changes": [
            {
                "after_s": round(c["got"] - t_kill, 3),
                "in_service": sum(s == "in-service" for s in c["states"].values()),
                "states": dict(Counter(c["states"].values())),
                "failed": c["failed"],
            }
            for c in watch.changes
        ],
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def restart_node(bed: swarmkit.SwarmBed, api: Api, node: str) -> dict[str, Any]:
    """Start the node again; wait until the manager, then Beanpole, see it ready."""
    after_id = last_event_id(api, KILL_ENV)
    started = time.time()
    bed.start_node(node)
    dockerd = time.time() - started
    wait_for(lambda: node_states(bed).get(node) == "ready", 120, f"{node} ready in the swarm", 0.1)
    ready = time.time() - started

    def back() -> dict[str, Any] | None:
        return next(
            (e for e in api.events(KILL_ENV, after_id) if e["message"] == f"Node {node} is back."),
            None,
        )

    event = wait_for(back, 60, f"Beanpole's event: Node {node} is back.", 0.2)
    return {
        "dockerd_up_s": round(dockerd, 2),
        "ready_in_swarm_s": round(ready, 2),
        "beanpole_event_s": round(event["time"] - started, 2),
    }


def terminate(bp: Beanpole, env: str) -> float:
    started = time.monotonic()
    bp.cli("terminate", env, timeout=300)
    return round(time.monotonic() - started, 2)


# -- the run --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="of each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk's")
    parser.add_argument("--instances", type=int, default=2, help="per throughput environment")
    parser.add_argument(
        "--clients", type=int, default=4, help="keep-alive GET clients across a node's death"
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 2.0
    if (reason := why_not()) is not None:
        print(f"bench.swarm: skipped: {reason}")
        return {"benchmark": "swarm", "skipped": reason}

    from beanpole.adapters.registry import Registry

    result: dict[str, Any] = {
        "benchmark": "swarm",
        "config": {
            **vars(args),
            "app": str(APP.relative_to(ROOT)),
            "kill_scale": KILL_SCALE,
            "victims": list(VICTIMS),
            "node_labels": NODE_LABELS,
        },
        "machine": machine(),
        "cases": {},
        "runs": [],
        "kills": [],
    }
    started = time.monotonic()
    bed = swarmkit.new_bed(f"bpb{os.getpid() % 100000}")
    print(f"  test bed {bed.prefix} on {bed.subnet}.0/24 up in {time.monotonic() - started:.1f} s")
    result["bed"] = {"prefix": bed.prefix, "subnet": bed.subnet, "up_s": time.monotonic() - started}
    try:
        with beanpole_home("swarm") as tmp:
            home = tmp / "home"
            home.mkdir(mode=0o711)
            port = swarmkit.free_port()
            registry = Registry(home / "registry", address=bed.host_address, port=port)
            bed.trust(registry.ensure_ca(), registry.host)
            bp = Beanpole(
                home,
                runtime="swarm",
                start_args=(
                    "--docker-host", bed.manager_url,
                    "--manager-address", bed.manager_address,
                    "--registry-address", bed.host_address,
                    "--registry-port", str(port),
                ),
            )  # fmt: skip
            api: Api | None = None
            try:
                bp.start()
                api = Api(bp)
                throughput(bp, bed, api, args, result)
                for name in CASES:
                    terminate(bp, ENVS[name])
                for r in range(args.rounds):
                    victim = VICTIMS[r % len(VICTIMS)]
                    try:
                        row = kill_round(bp, bed, api, victim, r + 1, args.clients)
                    except Exception as exc:  # recorded; the next round starts afresh
                        row = {"round": r + 1, "victim": victim, "error": repr(exc)[:2000]}
                        bp.cli("terminate", KILL_ENV, check=False, timeout=300)
                    result["kills"].append(row)
                    print("  " + kill_line(row, args.rounds))
            finally:
                if api is not None:
                    api.close()
                bp.stop_all()
                result["left_by_server_stop_all"] = [
                    " ".join(p.cmdline())[:200] for p in _processes(home)
                ]
                with contextlib.suppress(Exception):
                    result["swarm_left_by_server_stop_all"] = swarm_leftovers(bed, home)
                try:
                    remove_swarm_side(bed, home, registry)
                finally:
                    result["leaked_processes"] = stop_and_check(bp)
                    for node in NODES:
                        with contextlib.suppress(Exception):
                            set_label(bed, node, None)
    finally:
        bed.down()
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["summary"] = summarize(result)
    path = write_result("swarm", stamp(), result)
    print_summary(result, path)
    return result


def _processes(home: Path) -> list[Any]:
    from bench._common import processes_of

    return processes_of(home)


def kill_line(row: dict[str, Any], rounds: int) -> str:
    if "error" in row:
        return f"round {row['round']}/{rounds} kill {row['victim']}: FAILED {row['error'][:500]}"
    return (
        f"round {row['round']}/{rounds} kill {row['victim']} "
        f"({len(row['lost_instances'])} of {KILL_SCALE} lost, spread {row['spread_before']}): "
        f"node down event {fmt(row['node_down_event_s'])} s, first lost out "
        f"{fmt(row['first_lost_left_service_s'])} s, all out {fmt(row['all_lost_left_service_s'])}"
        f" s, {KILL_SCALE} in service {fmt(row['full_capacity_s'])} s; "
        f"failed {row['requests_failed']}/{row['requests_ok'] + row['requests_failed']}, "
        f"longest without an answer {row['longest_without_answer_s']:.2f} s; "
        f"node ready again {row['node_back']['ready_in_swarm_s']:.1f} s after start"
    )


# -- summary --------------------------------------------------------------------------------------

PER_REQUEST = ("busy", "busy_net_of_idle", "interrupts", "haproxy", "app", "wrk")


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    runs = result["runs"]
    summary: dict[str, Any] = {"cases": {}, "ratios_to_host": {}, "kill": {}}
    idle = [r for r in runs if r["case"] == "idle"]
    summary["idle_busy_cores"] = spread(r["busy_cores"] for r in idle)
    for case in CASES:
        rows = [r for r in runs if r["case"] == case]
        summary["cases"][case] = {
            "rps": spread(r["rps"] for r in rows),
            "p50_us": spread(r["latency_us"]["p50"] for r in rows),
            "p99_us": spread(r["latency_us"]["p99"] for r in rows),
            "busy_cores": spread(r["busy_cores"] for r in rows),
            "errors": sum(r["error_count"] for r in rows),
            "cpu_us_per_request": {
                k: spread(
                    r["cpu_us_per_request"][k]
                    for r in rows
                    if r["cpu_us_per_request"].get(k) is not None
                )
                for k in PER_REQUEST
            },
        }
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["case"]] = r
    for case in CASES[1:]:
        pairs = [(rs[case], rs["host"]) for rs in by_round.values() if case in rs and "host" in rs]
        summary["ratios_to_host"][case] = {
            "rps": spread(a["rps"] / b["rps"] for a, b in pairs),
            **{
                f"{k}_per_request": spread(
                    a["cpu_us_per_request"][k] / b["cpu_us_per_request"][k]
                    for a, b in pairs
                    if a["cpu_us_per_request"].get(k) and b["cpu_us_per_request"].get(k)
                )
                for k in ("busy", "busy_net_of_idle", "haproxy")
            },
        }
    kills = result["kills"]
    for key in (
        "node_down_event_s",
        "first_lost_left_service_s",
        "all_lost_left_service_s",
        "lost_stopped_s",
        "replacements_started_s",
        "full_capacity_s",
        "requests_failed",
        "longest_without_answer_s",
    ):
        summary["kill"][key] = spread(k[key] for k in kills if k.get(key) is not None)
    summary["kill"]["node_ready_after_start_s"] = spread(
        k["node_back"]["ready_in_swarm_s"] for k in kills if "node_back" in k
    )
    summary["kill"]["requests_total"] = sum(
        k.get("requests_ok", 0) + k.get("requests_failed", 0) for k in kills
    )
    return summary


def _range(s: dict[str, Any], spec: str = ",.0f") -> str:
    if s["median"] is None:
        return "-"
    return f"{s['median']:{spec}} ({s['min']:{spec}}-{s['max']:{spec}})"


def print_summary(result: dict[str, Any], path: Path) -> None:
    summary = result["summary"]
    rounds = result["config"]["rounds"]
    print(f"swarm (medians of {rounds} rounds, min-max):")
    print(
        f"  {'':<31} {'req/s':>24} {'p99 µs':>8} {'machine µs/req':>22} {'net of idle':>11} "
        f"{'irq+softirq':>11} {'HAProxy µs/req':>20} {'app':>6}"
    )
    for case in CASES:
        s = summary["cases"][case]
        per = s["cpu_us_per_request"]
        print(
            f"  {CASE_TITLES[case]:<31} {_range(s['rps']):>24} "
            f"{fmt(s['p99_us']['median'], ',.0f'):>8} {_range(per['busy'], '.1f'):>22} "
            f"{fmt(per['busy_net_of_idle']['median'], '.1f'):>11} "
            f"{fmt(per['interrupts']['median'], '.1f'):>11} {_range(per['haproxy'], '.1f'):>20} "
            f"{fmt(per['app']['median'], '.1f'):>6}"
            + (f"  ERRORS {s['errors']}" if s["errors"] else "")
        )
    print(f"  idle machine: {_range(summary['idle_busy_cores'], '.2f')} cores busy")
    for case, ratio in summary["ratios_to_host"].items():
        print(
            f"  {case}/host, paired by round: req/s x{fmt(ratio['rps']['median'])}, machine CPU "
            f"per request x{fmt(ratio['busy_per_request']['median'])} (net of idle "
            f"x{fmt(ratio['busy_net_of_idle_per_request']['median'])}), HAProxy's "
            f"x{fmt(ratio['haproxy_per_request']['median'])}"
        )
    k = summary["kill"]
    print(f"  node killed under load, {len(result['kills'])} rounds (seconds after the kill):")
    for key, title in (
        ("node_down_event_s", "Beanpole's event 'Node … is down.'"),
        ("first_lost_left_service_s", "first lost instance out of service"),
        ("all_lost_left_service_s", "all lost instances out of service"),
        ("lost_stopped_s", "lost instances stopped (their events)"),
        ("replacements_started_s", "replacements started (event)"),
        ("full_capacity_s", f"{KILL_SCALE} instances in service again"),
        ("longest_without_answer_s", "longest a client got no answer"),
        ("node_ready_after_start_s", "node ready again after start-node"),
    ):
        print(f"    {title:<40} {_range(k[key], '.2f')}")
    print(
        f"    failed requests per kill: {_range(k['requests_failed'], ',.0f')} "
        f"(of {k['requests_total']:,} in all rounds)"
    )
    if result.get("left_by_server_stop_all"):
        print(f"  left by `server stop --all`: {result['left_by_server_stop_all']}")
    if result.get("swarm_left_by_server_stop_all"):
        print(f"  of the swarm, left by it: {result['swarm_left_by_server_stop_all']}")
    if result.get("leaked_processes"):
        print(f"  LEAKED: {result['leaked_processes']}")
    print(f"  wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
