"""The same Python app on supervisord and on Docker, side by side in one run.

Two Beanpole homes run at once, one per runtime, each with one environment of the Flask app
(`bench/apps/flask`: gunicorn in a uv virtualenv) at one instance. Round by round, in
alternating order, it measures for each runtime:

- **throughput**: wrk (keep-alive) through HAProxy for ``--seconds``: requests/s, p50/p99,
  and CPU per request of the instance's processes plus that home's HAProxy (µs);
- **deploy**: a code-only ``beanpole deploy`` (Rolling, so the figure is the start of one
  new instance, not the Immutable dance): seconds from the command to the first answer from
  the new version;
- **memory per instance**: the proportional set size (PSS) of every process the instance
  costs: under supervisord its process tree; under Docker also its two containers'
  containerd shims and the network holder.

    .venv/bin/python -m bench.docker_runtime [--rounds 3] [--seconds 5] [--quick]

Needs wrk and a running Docker engine (`scripts/bootstrap.sh --docker`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from bench._common import (
    ROOT,
    Beanpole,
    beanpole_home,
    cpu_total,
    haproxy_pids,
    machine,
    median,
    stamp,
    stop_and_check,
    with_children,
    write_result,
    wrk_argv,
    wrk_json,
)

ENV = "rt-bench"
RUNTIMES = ("supervisord", "docker")
APP = ROOT / "bench" / "apps" / "flask"


def variant(work: Path, label: str) -> Path:
    app = work / label
    shutil.copytree(APP, app)
    source = (app / "application.py").read_text()
    (app / "application.py").write_text(source.replace('VERSION = "v0"', f'VERSION = "{label}"'))
    return app


def instance_pids(bp: Beanpole) -> list[int]:
    """Every process the environment's instances cost, by their runtime's account."""
    status = json.loads(bp.cli("status", ENV, "--json").stdout)
    if bp.runtime != "docker":
        return [p for i in status["instances"] for p in with_children(int(i["pid"]))]
    import docker  # only this side needs the SDK

    client = docker.from_env()
    try:
        pids: list[int] = []
        for row in client.api.containers(filters={"label": f"beanpole.home={bp.home}"}):
            pid = int(client.api.inspect_container(row["Id"])["State"]["Pid"] or 0)
            if pid:
                shim = psutil.Process(pid).ppid()  # containerd-shim-runc-v2, one per container
                pids.extend(with_children(shim))
        return sorted(set(pids))
    finally:
        client.close()


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except (psutil.Error, AttributeError):
            continue
    return total / 2**20


def run_wrk(bp: Beanpole, seconds: float) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench: needs wrk (apt-get install wrk; scripts/bootstrap.sh does)")
    pids = instance_pids(bp) + [p for p in haproxy_pids(bp.home)[1] if p]
    cpu_before = cpu_total(pids)
    proc = subprocess.run(
        wrk_argv(
            wrk,
            f"http://127.0.0.1:{bp.lb_port}/",
            seconds=seconds,
            threads=2,
            connections=16,
            headers=["-H", f"Host: {ENV}.localhost:{bp.lb_port}"],
        ),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    cpu = cpu_total(pids) - cpu_before
    report = wrk_json(proc)
    requests = report["requests"]
    return {
        "requests": requests,
        "errors": report["errors"],
        "rps": requests / (report["duration_us"] / 1e6),
        "p50_us": report["latency_us"]["p50"],
        "p99_us": report["latency_us"]["p99"],
        "cpu_us_per_request": cpu / requests * 1e6 if requests else None,
    }


def deploy_seconds(bp: Beanpole, work: Path, label: str) -> float:
    """From `beanpole deploy` to the first answer of the new version."""
    app = variant(work, label)
    first: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                status, body = bp.get(ENV, "/", timeout=2)
                if status == 200 and json.loads(body).get("version") == label:
                    first.append(time.monotonic())
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    started = time.monotonic()
    poller.start()
    try:
        bp.cli("deploy", ENV, "--source", str(app), "--label", label, "--policy", "Rolling")
        poller.join(timeout=30)
    finally:
        done.set()
    if not first:
        raise RuntimeError(f"{bp.runtime}: version {label} never answered")
    return first[0] - started


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 1.0
    result: dict[str, Any] = {
        "benchmark": "docker_runtime",
        "config": vars(args),
        "machine": machine(),
        "runs": [],
    }
    with beanpole_home("runtimes") as tmp:
        work = tmp / "src"
        work.mkdir()
        homes = {rt: Beanpole(tmp / f"home-{rt}", runtime=rt) for rt in RUNTIMES}
        try:
            for rt, bp in homes.items():
                bp.home.mkdir(mode=0o711)
                bp.start()
                bp.cli("create", ENV, "--app", ENV, "--source", str(variant(work, f"{rt}-v0")))
                run_wrk(bp, 1.0)  # warm-up
            for r in range(args.rounds):
                order = RUNTIMES if r % 2 == 0 else RUNTIMES[::-1]
                for rt in order:
                    bp = homes[rt]
                    row = run_wrk(bp, args.seconds)
                    row["memory_pss_mib"] = pss_mib(instance_pids(bp))
                    row["deploy_s"] = deploy_seconds(bp, work, f"{rt}-r{r + 1}")
                    row.update(runtime=rt, round=r + 1)
                    result["runs"].append(row)
                    print(
                        f"  round {r + 1}/{args.rounds} {rt:<11} {row['rps']:>7.0f} req/s  "
                        f"{row['cpu_us_per_request']:>6.0f} µs CPU/req  "
                        f"p99 {row['p99_us']:>6} µs  {row['memory_pss_mib']:>5.1f} MiB  "
                        f"deploy {row['deploy_s']:.2f} s"
                    )
        finally:
            result["leaked_processes"] = [p for bp in homes.values() for p in stop_and_check(bp)]
    summary: dict[str, Any] = {}
    for rt in RUNTIMES:
        rows = [r for r in result["runs"] if r["runtime"] == rt]
        summary[rt] = {
            key: median(r[key] for r in rows)
            for key in ("rps", "cpu_us_per_request", "p99_us", "memory_pss_mib", "deploy_s")
        }
    sv, dk = summary["supervisord"], summary["docker"]
    summary["docker_over_supervisord"] = {
        key: dk[key] / sv[key] if dk[key] and sv[key] else None for key in sv
    }
    result["summary"] = summary
    path = write_result("docker_runtime", stamp(), result)
    print(f"docker_runtime (median of {args.rounds} rounds):")
    for rt in RUNTIMES:
        s = summary[rt]
        print(
            f"  {rt:<11} {s['rps']:>7.0f} req/s  {s['cpu_us_per_request']:>6.0f} µs CPU/req  "
            f"p99 {s['p99_us']:>6.0f} µs  {s['memory_pss_mib']:>5.1f} MiB/instance  "
            f"deploy {s['deploy_s']:.2f} s"
        )
    ratio = summary["docker_over_supervisord"]
    print(
        "  docker/supervisord: "
        + ", ".join(f"{k} x{v:.2f}" for k, v in ratio.items() if v is not None)
        + f"; wrote {path}"
    )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
