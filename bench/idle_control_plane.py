"""What the control plane costs when nothing happens: CPU and memory of an idle server.

    python -m bench.idle_control_plane [--sizes 20,100] [--per-env 3] [--seconds 60] [--quick]

Per size, a fresh Beanpole server and that many environments of ``--per-env`` instances of
`bench/apps/tiny` (dependency-free, so nothing is built), no traffic and no operation. Once
every environment is Ready and the start-up has settled (a health window has closed since the
last instance went in service), the server's CPU (utime + stime of all its threads, from
/proc) and resident memory are read every ``--slice`` seconds for ``--seconds``. Reported: the
server's share of one core (median of the slices, with min-max, and over the whole span), the
same per instance, its RSS, and what supervisord and HAProxy spent meanwhile (the server's
polling costs them CPU too). ``--quick``: 5 environments, 15 s.

Figures go to bench/results/idle_control_plane-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import psutil
from bench._common import (
    ROOT,
    Beanpole,
    beanpole_home,
    cpu_seconds,
    cpu_total,
    fmt,
    haproxy_pids,
    machine,
    spread,
    stamp,
    stop_and_check,
    wait_for,
    write_result,
)

from beanpole.client import Client
from beanpole.home import Home

APP = ROOT / "bench" / "apps" / "tiny"
APPLICATION = "tiny"
SETTLE_S = 12.0  # more than one 10 s health window after the last instance went in service
CREATE_BATCH = 10  # environments created at once: the start-up itself is not measured


def env_name(i: int) -> str:
    return f"idle-{i:03d}"


def create_environments(bp: Beanpole, count: int, per_env: int) -> None:
    """The first through the CLI (it uploads the version), the rest through the API."""
    scale = {
        "aws:autoscaling:asg:MinSize": str(per_env),
        "aws:autoscaling:asg:MaxSize": str(per_env),
    }
    bp.cli(
        "create",
        env_name(0),
        "--app",
        APPLICATION,
        "--source",
        str(APP),
        "--label",
        "v1",
        "--scale",
        str(per_env),
    )
    client = Client.discover(Home(bp.home))
    body = {"application": APPLICATION, "version_label": "v1", "settings": scale}
    try:
        for start in range(1, count, CREATE_BATCH):
            names = [env_name(i) for i in range(start, min(count, start + CREATE_BATCH))]
            for name in names:
                client.request("POST", "/environments", json={"name": name, **body})
            retried: set[str] = set()

            def ready(names: list[str] = names, retried: set[str] = retried) -> bool:
                statuses = {e["name"]: e["status"] for e in client.request("GET", "/environments")}
                for name in names:
                    if statuses.get(name, "Terminated") != "Terminated":
                        continue
                    # A launch can fail on a busy shared machine (a start timeout, a port
                    # another home took): once more, then it counts as a failure.
                    if name in retried:
                        raise AssertionError(f"{name} failed to launch twice")
                    retried.add(name)
                    print(f"  {name} failed to launch; creating it again", flush=True)
                    client.request("POST", "/environments", json={"name": name, **body})
                return all(statuses.get(n) == "Ready" for n in names)

            wait_for(ready, 900, f"environments {names[0]}..{names[-1]} to be Ready", 1.0)
    finally:
        client.close()


def supervisord_pid(home: Path) -> int | None:
    try:
        return int((home / "supervisor" / "supervisord.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def measure(bp: Beanpole, seconds: float, slice_s: float) -> dict[str, Any]:
    """CPU of the server, supervisord and HAProxy over ``seconds``, in slices."""
    server = bp.server_pid()
    assert server is not None, "the server is not running"
    supervisord = supervisord_pid(bp.home)
    master, workers = haproxy_pids(bp.home)
    haproxy = ([master] if master else []) + workers

    def read() -> tuple[float, float, float, float]:
        return (
            time.monotonic(),
            cpu_seconds(server),
            cpu_seconds(supervisord) if supervisord else 0.0,
            cpu_total(haproxy),
        )

    slices: list[float] = []
    first = last = read()
    deadline = first[0] + seconds
    while last[0] < deadline:
        time.sleep(min(slice_s, max(0.0, deadline - last[0])))
        now = read()
        slices.append(100.0 * (now[1] - last[1]) / (now[0] - last[0]))
        last = now
    span = last[0] - first[0]
    rss = psutil.Process(server).memory_info().rss
    return {
        "seconds": round(span, 2),
        "server_percent_slices": [round(s, 3) for s in slices],
        "server_percent": round(100.0 * (last[1] - first[1]) / span, 3),
        "supervisord_percent": round(100.0 * (last[2] - first[2]) / span, 3),
        "haproxy_percent": round(100.0 * (last[3] - first[3]) / span, 3),
        "server_rss_mb": round(rss / 2**20, 1),
    }


def run_size(envs: int, per_env: int, seconds: float, slice_s: float, work: Path) -> dict[str, Any]:
    bp = Beanpole(work / f"home-{envs}")
    leaks: list[str] = []
    try:
        bp.start()
        started = time.monotonic()
        create_environments(bp, envs, per_env)
        created_s = time.monotonic() - started
        time.sleep(SETTLE_S)  # a benchmark's settle time, not a test's synchronisation
        figures = measure(bp, seconds, slice_s)
    finally:
        leaks = stop_and_check(bp)
    instances = envs * per_env
    figures.update(
        environments=envs,
        instances=instances,
        create_s=round(created_s, 1),
        server_percent_per_instance=round(figures["server_percent"] / instances, 4),
        server_rss_kb_per_instance=round(figures["server_rss_mb"] * 1024 / instances, 1),
        leaked_processes=leaks,
    )
    print(
        f"  {envs:>4} x {per_env} instances: server {figures['server_percent']:.2f} % of a core "
        f"({figures['server_percent_per_instance']:.4f} % per instance), "
        f"RSS {figures['server_rss_mb']:.0f} MB; "
        f"supervisord {figures['supervisord_percent']:.2f} %, "
        f"HAProxy {figures['haproxy_percent']:.2f} %",
        flush=True,
    )
    return figures


def report(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"Idle control plane: {c['per_env']} instances per environment, no traffic, "
        f"{c['seconds']:.0f} s in {c['slice_s']:.0f} s slices",
        f"{'instances':>10}{'server % core':>16}{'(slices)':>20}{'% per inst':>12}"
        f"{'RSS MB':>8}{'supervisord %':>15}{'HAProxy %':>11}",
    ]
    for r in result["runs"]:
        s = spread(r["server_percent_slices"])
        lines.append(
            f"{r['environments']:>4} x {c['per_env']:<3}{r['server_percent']:>14.2f}"
            f"{fmt(s['median']):>10} ({fmt(s['min'])}-{fmt(s['max'])})"
            f"{r['server_percent_per_instance']:>12.4f}{r['server_rss_mb']:>8.0f}"
            f"{r['supervisord_percent']:>15.2f}{r['haproxy_percent']:>11.2f}"
        )
        if r["leaked_processes"]:
            lines.append(f"LEAKED (stopped by pid): {r['leaked_processes']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,100", help="environments per run, e.g. 20,100")
    parser.add_argument("--per-env", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--slice", dest="slice_s", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 environments, 15 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.seconds, args.slice_s = "5", 15.0, 5.0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"idle control plane: sizes {sizes} x {args.per_env}, {args.seconds:.0f} s each")
    result: dict[str, Any] = {
        "benchmark": "idle_control_plane",
        "config": {
            "sizes": sizes,
            "per_env": args.per_env,
            "seconds": args.seconds,
            "slice_s": args.slice_s,
        },
        "machine": machine(),
        "runs": [],
    }
    with beanpole_home("idle") as tmp:
        for envs in sizes:
            result["runs"].append(
                run_size(envs, args.per_env, args.seconds, args.slice_s, Path(tmp))
            )
    print(report(result))
    path = write_result("idle_control_plane", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    print(json.dumps({r["instances"]: r["server_percent"] for r in result["runs"]}))
    return result


if __name__ == "__main__":
    main()
