"""What the web console costs the server: its page reads, and its live streams on an idle
host.

    python -m bench.console [--envs 20] [--per-env 3] [--seconds 30] [--rounds 3] [--quick]

A fresh server with ``--envs`` idle environments of ``--per-env`` instances (`bench/apps/tiny`,
as the idle control plane benchmark). Then, side by side in one run, rounds of three phases
of ``--seconds`` each, in turn: no console open; one overview page open (the stream without
an environment); five environment pages open (five streams, each watching an environment).
Reported: the server's share of one core per phase (median over rounds), so the streams'
own cost is the difference; and the latency of the page reads a console makes first
(`GET /api/v1/console/overview`, `GET /api/v1/console/environments/NAME`, and the REST
environment list for scale), medians of ``--calls`` calls. ``--quick``: 3 environments,
10 s phases, 1 round.

Figures go to bench/results/console-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from bench._common import (
    ROOT,
    Beanpole,
    beanpole_home,
    cpu_seconds,
    machine,
    stamp,
    stop_and_check,
    write_result,
)
from bench.idle_control_plane import SETTLE_S, create_environments, env_name

PHASES = ("none", "overview", "5 environment pages")


class Streams:
    """Open event streams, each read by a thread on a plain socket, until closed; counts the
    messages received. Closing shuts the sockets down, which wakes the readers at once and
    shows the server the clients left (so no listener lingers into the next phase)."""

    def __init__(self, port: int, token: str, paths: list[str]) -> None:
        self.messages = 0
        self._lock = threading.Lock()
        self.socks = []
        for path in paths:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            self.socks.append(sock)
        self.threads = [
            threading.Thread(target=self._read, args=(s,), daemon=True) for s in self.socks
        ]

    def _read(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                with self._lock:
                    self.messages += chunk.count(b"\nevent: ") + chunk.startswith(b"event: ")

    def __enter__(self) -> Streams:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for t in self.threads:
            t.join(5)
        for sock in self.socks:
            sock.close()


def cpu_percent(pid: int, seconds: float) -> float:
    started, cpu = time.monotonic(), cpu_seconds(pid)
    time.sleep(seconds)  # the measured span, not a synchronisation
    return 100.0 * (cpu_seconds(pid) - cpu) / (time.monotonic() - started)


def read_latency(client: httpx.Client, path: str, calls: int) -> dict[str, float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p90_ms": round(sorted(times)[int(len(times) * 0.9) - 1], 2),
    }


def run(
    envs: int, per_env: int, seconds: float, rounds: int, calls: int, work: Path
) -> dict[str, Any]:
    bp = Beanpole(work / "home")
    try:
        bp.start()
        create_environments(bp, envs, per_env)
        time.sleep(SETTLE_S)  # a benchmark's settle time, not a test's synchronisation
        base = f"http://127.0.0.1:{bp.api_port}"
        token = (bp.home / "token").read_text().strip()
        pid = bp.server_pid()
        assert pid is not None
        paths = {
            "none": [],
            "overview": ["/api/v1/console/stream"],
            "5 environment pages": [
                f"/api/v1/console/stream?environment={env_name(i % envs)}" for i in range(5)
            ],
        }
        cpu: dict[str, list[float]] = {p: [] for p in PHASES}
        messages: dict[str, list[int]] = {p: [] for p in PHASES}
        for r in range(rounds):
            for phase in PHASES:
                with Streams(bp.api_port, token, paths[phase]) as streams:
                    time.sleep(1.0)  # the streams' first messages are not the steady state
                    before = streams.messages
                    cpu[phase].append(cpu_percent(pid, seconds))
                    messages[phase].append(streams.messages - before)
                print(
                    f"  round {r + 1}: {phase:<20} server {cpu[phase][-1]:.2f} % of a core, "
                    f"{messages[phase][-1]} messages",
                    flush=True,
                )
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            latency = {
                "rest_environments": read_latency(client, "/api/v1/environments", calls),
                "console_overview": read_latency(client, "/api/v1/console/overview", calls),
                "console_environment": read_latency(
                    client, f"/api/v1/console/environments/{env_name(0)}", calls
                ),
            }
            sizes = {
                "console_overview_bytes": len(client.get("/api/v1/console/overview").content),
                "console_environment_bytes": len(
                    client.get(f"/api/v1/console/environments/{env_name(0)}").content
                ),
            }
    finally:
        leaks = stop_and_check(bp)
    return {
        "cpu_percent": cpu,
        "cpu_percent_median": {p: round(statistics.median(v), 3) for p, v in cpu.items()},
        "messages": messages,
        "latency": latency,
        **sizes,
        "leaked_processes": leaks,
    }


def report(result: dict[str, Any]) -> str:
    c, r = result["config"], result["run"]
    lines = [
        f"Console: {c['envs']} idle environments x {c['per_env']} instances, "
        f"{c['rounds']} rounds of {c['seconds']:.0f} s per phase",
        f"{'console open':<22}{'server % of a core (median)':>30}{'messages/phase':>16}",
    ]
    for phase in PHASES:
        lines.append(
            f"{phase:<22}{r['cpu_percent_median'][phase]:>30.2f}"
            f"{statistics.median(r['messages'][phase]):>16.0f}"
        )
    lines.append(f"{'page read':<28}{'p50 ms':>8}{'p90 ms':>8}")
    for name, figures in r["latency"].items():
        lines.append(f"{name:<28}{figures['p50_ms']:>8.2f}{figures['p90_ms']:>8.2f}")
    lines.append(
        f"sizes: overview {r['console_overview_bytes'] / 1024:.0f} KiB, "
        f"environment page {r['console_environment_bytes'] / 1024:.0f} KiB"
    )
    if r["leaked_processes"]:
        lines.append(f"LEAKED (stopped by pid): {r['leaked_processes']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=20)
    parser.add_argument("--per-env", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 environments, 10 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.envs, args.seconds, args.rounds, args.calls = 3, 10.0, 1, 10
    print(f"console: {args.envs} x {args.per_env} idle, {args.rounds} x {len(PHASES)} phases")
    result: dict[str, Any] = {
        "benchmark": "console",
        "config": {
            "envs": args.envs,
            "per_env": args.per_env,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "calls": args.calls,
        },
        "machine": machine(),
    }
    with beanpole_home("console") as tmp:
        result["run"] = run(
            args.envs, args.per_env, args.seconds, args.rounds, args.calls, Path(tmp)
        )
    print(report(result))
    path = write_result("console", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    print(json.dumps(result["run"]["cpu_percent_median"]))
    return result


if __name__ == "__main__":
    main()
