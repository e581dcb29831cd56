"""What HAProxy in front of an app costs: throughput, latency and CPU per request.

    python -m bench.lb_overhead [--rounds 5] [--seconds 5] [--connections 24] [--quick]

One Beanpole server, one environment of three instances of a tiny asyncio app
(`bench/apps/tiny`). The same load (wrk, keep-alive, fixed connection count) is sent three
ways, interleaved round by round in a rotating order:

- ``lb``:     through Beanpole's HAProxy (``Host: <env>.localhost``), which balances over the 3;
- ``direct1``: straight to one instance's port;
- ``direct3``: straight to the three instances, wrk's threads spread over them (the same
  round robin, without the proxy).

Per run: requests/s, latency p50/p90/p99 (wrk's own histogram), and the CPU time each party used
(/proc/<pid>/stat utime+stime) divided by the requests: HAProxy's workers, the app instances,
the Beanpole server (which receives one log line per proxied request) and wrk itself. The two
cores are shared by all of them, so the ratios matter more than the absolute figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench._common import (
    ROOT,
    Beanpole,
    beanpole_home,
    cpu_total,
    fmt,
    haproxy_pids,
    machine,
    median,
    spread,
    stamp,
    stop_and_check,
    wait_for,
    with_children,
    write_result,
    wrk_argv,
)

APP = ROOT / "bench" / "apps" / "tiny"
ENV = "lbbench"
INSTANCES = 3
MODES = ("lb", "direct1", "direct3")
MODE_TITLES = {
    "lb": f"through HAProxy ({INSTANCES} instances)",
    "direct1": "direct, 1 instance",
    "direct3": f"direct, round robin over {INSTANCES}",
}
COMPONENTS = ("haproxy", "app", "server", "wrk")


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "bench: the load-balancer benchmark needs wrk (a Python client would be the "
            "bottleneck). Install it with `apt-get install wrk` (scripts/bootstrap.sh does), "
            "or run only the deploy benchmarks: "
            "python -m bench.run --only deploy_speed,deploy_under_load"
        )
    return wrk


class Target:
    """The running environment: where to send load and whose CPU to count."""

    def __init__(self, bp: Beanpole) -> None:
        self.bp = bp
        info = bp.status(ENV)
        # (id, "host:port" — a namespaced instance has an address of its own —, pid)
        self.instances = [
            (i["id"], f"{i.get('host') or '127.0.0.1'}:{i['port']}", int(i["pid"]))
            for i in info["instances"]
        ]
        if len(self.instances) != INSTANCES:
            raise RuntimeError(f"expected {INSTANCES} instances, status shows {info['instances']}")
        self.server_pid = bp.server_pid()

    def pids(self) -> dict[str, list[int]]:
        master, workers = haproxy_pids(self.bp.home)
        return {
            "haproxy": ([master] if master else []) + workers,
            "app": [p for _, _, pid in self.instances for p in with_children(pid)],
            "server": [self.server_pid] if self.server_pid else [],
        }

    def url_and_targets(self, mode: str) -> tuple[str, list[str], list[str]]:
        """URL for wrk, WRK_TARGETS, extra headers."""
        if mode == "lb":
            return (
                f"http://127.0.0.1:{self.bp.lb_port}/",
                [],
                ["-H", f"Host: {ENV}.localhost:{self.bp.lb_port}"],
            )
        addresses = [address for _, address, _ in self.instances]
        if mode == "direct1":
            return f"http://{addresses[0]}/", [], []
        return f"http://{addresses[0]}/", addresses, []


def run_wrk(
    wrk: str, target: Target, mode: str, seconds: float, threads: int, connections: int
) -> dict[str, Any]:
    url, targets, headers = target.url_and_targets(mode)
    pids = target.pids()
    before = {name: cpu_total(p) for name, p in pids.items()}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        wrk_argv(
            wrk, url, seconds=seconds, threads=threads, connections=connections, headers=headers
        ),
        env={**os.environ, "WRK_TARGETS": ",".join(targets)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    wall = time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = {name: cpu_total(p) for name, p in target.pids().items()}
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stdout}\n{proc.stderr}")
    report = json.loads(line.removeprefix("WRK_JSON "))
    requests = report["requests"]
    cpu = {name: after[name] - before[name] for name in before}
    cpu["wrk"] = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    errors = sum(report["errors"].values())
    return {
        "mode": mode,
        "requests": requests,
        "errors": report["errors"],
        "error_count": errors,
        "seconds": report["duration_us"] / 1e6,
        "rps": requests / (report["duration_us"] / 1e6),
        "latency_us": report["latency_us"],
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_us_per_request": {
            k: (v * 1e6 / requests if requests else None) for k, v in cpu.items()
        },
        "busy_cores": round(sum(cpu.values()) / wall, 2),
        # A reload mid-run would swap HAProxy's workers and lose their CPU time.
        "haproxy_workers_changed": pids["haproxy"] != target.pids()["haproxy"],
    }


def check_routing(bp: Beanpole, ids: set[str]) -> None:
    """The LB answers for the environment, and from every instance (it does balance)."""
    seen: set[str] = set()

    def all_seen() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", bp.lb_port, timeout=5)
        try:
            conn.request("GET", "/", headers={"Host": f"{ENV}.localhost"})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status == 200:
            seen.add(json.loads(body)["instance"])
        return seen >= ids

    wait_for(all_seen, 15, f"HAProxy to answer from all of {sorted(ids)} (saw {seen})", 0.02)


def run(
    rounds: int = 5,
    seconds: float = 5.0,
    connections: int = 24,
    threads: int = INSTANCES,
    log: Any = print,
) -> dict[str, Any]:
    wrk = require_wrk()
    result: dict[str, Any] = {
        "benchmark": "lb_overhead",
        "config": {
            "rounds": rounds,
            "seconds": seconds,
            "threads": threads,
            "connections": connections,
            "instances": INSTANCES,
            "app": str(APP.relative_to(ROOT)),
        },
        "machine": machine(),
        "runs": [],
    }
    with beanpole_home("lb") as tmp:
        bp = Beanpole(tmp / "home")
        try:
            t0 = time.monotonic()
            bp.start()
            bp.cli("create", ENV, "--app", "tiny", "--source", str(APP), "--scale", str(INSTANCES))
            log(f"  environment of {INSTANCES} instances ready in {time.monotonic() - t0:.1f} s")
            target = Target(bp)
            check_routing(bp, {i for i, _, _ in target.instances})
            master, workers = haproxy_pids(bp.home)
            result["haproxy"] = {
                "master": master,
                "workers": workers,
                "info": _haproxy_info(bp.home),
            }
            for mode in MODES:  # warm-up: connections, caches, CPU frequency; discarded
                run_wrk(wrk, target, mode, 1, threads, connections)
            for r in range(rounds):
                order = MODES[r % len(MODES) :] + MODES[: r % len(MODES)]
                for mode in order:
                    row = run_wrk(wrk, target, mode, seconds, threads, connections)
                    row["round"] = r + 1
                    result["runs"].append(row)
                    log(
                        f"  round {r + 1}/{rounds} {mode:<8} {row['rps']:>9.0f} req/s  "
                        f"p50 {row['latency_us']['p50']:>5} µs  "
                        f"p99 {row['latency_us']['p99']:>6} µs"
                        f"  haproxy {fmt(row['cpu_us_per_request']['haproxy'], '.1f')} µs/req"
                        + (f"  ERRORS {row['errors']}" if row["error_count"] else "")
                    )
        finally:
            result["leaked_processes"] = stop_and_check(bp)
    result["summary"] = summarize(result["runs"])
    return result


def _haproxy_info(home: Path) -> dict[str, str]:
    from beanpole.adapters.lb.haproxy import HAProxy

    try:
        text = HAProxy(home / "haproxy").runtime("show info")
    except Exception as exc:
        return {"error": repr(exc)}
    info = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return {k: info[k] for k in ("Version", "Nbthread", "Maxconn") if k in info}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_mode: dict[str, Any] = {}
    for mode in MODES:
        rows = [r for r in runs if r["mode"] == mode]
        by_mode[mode] = {
            "rps": spread(r["rps"] for r in rows),
            "p50_us": spread(r["latency_us"]["p50"] for r in rows),
            "p99_us": spread(r["latency_us"]["p99"] for r in rows),
            "cpu_us_per_request": {
                c: median(
                    r["cpu_us_per_request"][c]
                    for r in rows
                    if r["cpu_us_per_request"][c] is not None
                )
                for c in COMPONENTS
            },
            "busy_cores": median(r["busy_cores"] for r in rows),
            "errors": sum(r["error_count"] for r in rows),
        }
    ratios: dict[str, Any] = {}
    rounds = sorted({r["round"] for r in runs})
    for other in ("direct1", "direct3"):
        # Paired within a round (the runs were seconds apart), then the median of the ratios.
        pairs = []
        for n in rounds:
            lb = next((r for r in runs if r["round"] == n and r["mode"] == "lb"), None)
            ot = next((r for r in runs if r["round"] == n and r["mode"] == other), None)
            if lb and ot:
                pairs.append((lb, ot))
        ratios[f"lb/{other}"] = {
            "rps": median(a["rps"] / b["rps"] for a, b in pairs),
            "p50": median(a["latency_us"]["p50"] / b["latency_us"]["p50"] for a, b in pairs),
            "p99": median(a["latency_us"]["p99"] / b["latency_us"]["p99"] for a, b in pairs),
        }
    return {"modes": by_mode, "ratios": ratios}


def report(result: dict[str, Any]) -> str:
    s = result["summary"]
    c = result["config"]
    lines = [
        f"Load balancer overhead: wrk -t{c['threads']} -c{c['connections']} -d{c['seconds']:g}s, "
        f"{c['rounds']} interleaved rounds, medians (min-max)",
        f"{'':<34}{'req/s':>22}{'p50 µs':>16}{'p99 µs':>18}   CPU µs/request: "
        f"{'haproxy':>7} {'app':>6} {'server':>6} {'wrk':>6}",
    ]
    for mode in MODES:
        m = s["modes"][mode]
        cpu = m["cpu_us_per_request"]

        def rng(x: dict[str, Any], spec: str) -> str:
            return f"{fmt(x['median'], spec)} ({fmt(x['min'], spec)}-{fmt(x['max'], spec)})"

        lines.append(
            f"{MODE_TITLES[mode]:<34}{rng(m['rps'], '.0f'):>22}{rng(m['p50_us'], '.0f'):>16}"
            f"{rng(m['p99_us'], '.0f'):>18}   {'':<16}{fmt(cpu['haproxy'], '.1f'):>7} "
            f"{fmt(cpu['app'], '.1f'):>6} {fmt(cpu['server'], '.1f'):>6} "
            f"{fmt(cpu['wrk'], '.1f'):>6}" + (f"   ERRORS: {m['errors']}" if m["errors"] else "")
        )
    for key, r in s["ratios"].items():
        lines.append(
            f"ratio {key:<28}req/s x{fmt(r['rps'])}   p50 x{fmt(r['p50'])}   p99 x{fmt(r['p99'])}"
        )
    if result.get("leaked_processes"):
        lines.append(f"LEAKED (stopped by pid): {result['leaked_processes']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=24)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 2 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 2.0
    result = run(args.rounds, args.seconds, args.connections)
    print(report(result))
    path = write_result("lb_overhead", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
