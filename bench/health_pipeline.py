"""What the health and log pipeline costs: CPU per request, with it and without it.

    python -m bench.health_pipeline [--rounds 5] [--seconds 5] [--connections 24]

One Beanpole server, one environment of three instances of `bench/apps/tiny`. Two load
balancers in front of the same three instances, loaded in turn by wrk (keep-alive, closed
loop: as fast as the two cores allow), interleaved round by round:

- ``pipeline``: Beanpole's own HAProxy, which logs every request (sampled 1:N once the rate
  is high) through its ring to the server, which parses it, keeps the 10 s windows and
  roll-ups, writes the access log and evaluates health;
- ``alone``: a second HAProxy started here from the very same rendered config with the
  request log and the sampling rules taken out: HAProxy alone.

The figure is CPU time per request (/proc utime+stime): HAProxy's workers plus the Beanpole
server for ``pipeline``, HAProxy's workers alone for ``alone``; the overhead is their ratio,
paired within each round, median over rounds. The server's CPU includes everything it does
meanwhile (reconciler and monitor ticks too), so the figure is an upper bound.

A second, smaller figure: the server's cost per request line, measured in this process by
feeding recorded lines to the real parser and windows (what the pipeline would cost per
request if nothing were sampled).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._common import (
    ROOT,
    Beanpole,
    beanpole_home,
    fmt,
    machine,
    median,
    spread,
    stamp,
    stop_and_check,
    wait_for,
    write_result,
)
from bench.lb_overhead import APP, ENV, INSTANCES, Target, check_routing, require_wrk, run_wrk

from beanpole.core.lb.config import (
    Backend,
    HAProxyPaths,
    HealthCheck,
    LoadBalancerSpec,
    Server,
    render_config,
    render_hosts_map,
)

MODES = ("pipeline", "alone")
TOKEN = "0123456789abcdef0123456789abcdef"  # the request token's shape (Home.request_token)

# `make bench` installs valgrind for the instruction counts when it is missing.


def bare_config(spec: LoadBalancerSpec, paths: HAProxyPaths) -> str:
    """Beanpole's rendered config without the request log and the sampling rules."""
    keep = []
    for line in render_config(spec, paths).splitlines():
        stripped = line.strip()
        if stripped.startswith(("log ", "log-format", "option dontlognull")):
            continue
        if "set-log-level" in stripped or "bp_w" in stripped:  # the sampling rules and vars
            continue
        keep.append(line)
    return "\n".join(keep) + "\n"


class BareHAProxy:
    """A second HAProxy on its own port, serving the same instances, logging nothing."""

    def __init__(self, directory: Path, instances: list[tuple[str, str, int, int]]) -> None:
        from harness import free_port

        directory.mkdir(parents=True, exist_ok=True)
        self.paths = HAProxyPaths.under(directory)
        self.port = free_port()
        check = HealthCheck(interval_s=15, timeout_s=5, healthy_threshold=3)
        servers = tuple(Server(i, host, port, 100) for i, host, port, _ in instances)
        self.spec = LoadBalancerSpec(
            "127.0.0.1", self.port, (Backend(ENV, (f"{ENV}.localhost",), check, servers),)
        )
        self.master: int | None = None

    def start(self) -> None:
        self.paths.hosts_map.write_text(render_hosts_map(self.spec))
        self.paths.cfg.write_text(bare_config(self.spec, self.paths))
        subprocess.run(
            ["haproxy", "-W", "-D", "-p", str(self.paths.pid_file), "-f", str(self.paths.cfg)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.master = wait_for(self._read_pid, 10, "the bare HAProxy's pid file")

    def _read_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(self.paths.pid_file.read_text().split()[0])
        return None

    def workers(self) -> list[int]:
        import psutil

        if self.master is None:
            return []
        with contextlib.suppress(psutil.Error):
            return [c.pid for c in psutil.Process(self.master).children()]
        return []

    def stop(self) -> None:
        import psutil

        if self.master is None:
            return
        with contextlib.suppress(psutil.Error):
            procs = [psutil.Process(self.master), *psutil.Process(self.master).children()]
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGTERM)
            _, alive = psutil.wait_procs(procs, timeout=10)
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        self.master = None


def _instructions_per_request(cfg: Path, port: int, out: Path) -> int:
    """HAProxy's instructions per request under callgrind: (3,300 requests - 300) / 3,000,
    so start-up and shut-down cancel out. One keep-alive connection, one thread."""
    import http.client

    totals = []
    for requests in (300, 3300):
        log = out.with_suffix(f".{requests}")
        proc = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={log}",
                "-q",
                "haproxy",
                "-db",
                "-f",
                str(cfg),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def connected() -> http.client.HTTPConnection | None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    conn.request("GET", "/", headers={"Host": f"{ENV}.localhost"})
                    conn.getresponse().read()
                except OSError:
                    conn.close()
                    return None
                return conn

            conn = wait_for(connected, 120, "HAProxy under valgrind to answer", 0.2)
            for _ in range(requests - 1):
                conn.request("GET", "/", headers={"Host": f"{ENV}.localhost"})
                conn.getresponse().read()
            conn.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        summary = next(
            line
            for line in log.read_text().splitlines()
            if line.startswith(("summary:", "totals:"))
        )
        totals.append(int(summary.split()[1]))
    return (totals[1] - totals[0]) // 3000


def instructions(instance: str, log_port: int, log: Any) -> dict[str, int] | None:
    """Instructions per request of HAProxy with the request log and sampling rules (at the
    1:32 a busy environment gets) and without: a deterministic figure, whatever the noise.
    ``instance``: the "host:port" of one instance."""
    import shutil

    instance_host, _, instance_port = instance.rpartition(":")

    if shutil.which("valgrind") is None:
        log("  (valgrind not installed: no instruction counts; apt-get install valgrind)")
        return None
    from harness import free_port

    counts = {}
    with beanpole_home("callgrind") as tmp:
        for mode in (*MODES, "alone_no_copy"):
            paths = HAProxyPaths.under(tmp / mode)
            paths.directory.mkdir(parents=True)
            port = free_port()
            check = HealthCheck(interval_s=3600, timeout_s=5, healthy_threshold=1)
            backend = Backend(
                ENV,
                (f"{ENV}.localhost",),
                check,
                (Server("i-1", instance_host, int(instance_port), 100),),
                sample_ratio=32,
            )
            spec = LoadBalancerSpec("127.0.0.1", port, (backend,), log_port=log_port)
            text = render_config(spec, paths) if mode == "pipeline" else bare_config(spec, paths)
            text = text.replace("    master-worker\n", "    nbthread 1\n", 1)
            if mode == "alone_no_copy":  # without the request copy empty-response retries need
                text = text.replace("retry-on conn-failure empty-response", "retry-on conn-failure")
            paths.hosts_map.write_text(render_hosts_map(spec))
            paths.cfg.write_text(text)
            counts[mode] = _instructions_per_request(paths.cfg, port, tmp / f"{mode}.out")
            log(f"  callgrind: {mode:<8} {counts[mode]:>7,} instructions per request")
    return counts


class PipelineTarget(Target):
    """`Target` with the two modes of this benchmark."""

    def __init__(self, bp: Beanpole, bare: BareHAProxy) -> None:
        super().__init__(bp)
        self.bare = bare

    def pids(self) -> dict[str, list[int]]:
        pids = super().pids()
        pids["bare"] = [self.bare.master, *self.bare.workers()] if self.bare.master else []
        return pids

    def url_and_targets(self, mode: str) -> tuple[str, list[str], list[str]]:
        port = self.bp.lb_port if mode == "pipeline" else self.bare.port
        return f"http://127.0.0.1:{port}/", [], ["-H", f"Host: {ENV}.localhost:{port}"]


def per_request_us(row: dict[str, Any]) -> float | None:
    cpu = row["cpu_s"]
    spent = cpu["haproxy"] + cpu["server"] if row["mode"] == "pipeline" else cpu["bare"]
    return spent * 1e6 / row["requests"] if row["requests"] else None


_SENDER = """
import socket, sys, time
port, lines, now_ms = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
prefix = sys.argv[4] + " " if len(sys.argv) > 4 and sys.argv[4] else ""
data = [
    f'{prefix}{now_ms} env-lbbench i-{n % 3:08x} 200 {n % 7} 1 {80 + n % 5} ::1 GET "/"'.encode()
    for n in range(1000)
]
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for n in range(lines):
    out.sendto(data[n % 1000], ("127.0.0.1", port))
    if n % 100 == 99:
        time.sleep(0.001)  # about 100,000 lines/s: within the receiver's buffer
"""


def line_cost_us(lines: int = 100_000, token: str = "") -> float:
    """CPU µs to receive a request line from the socket, parse it and count it in the
    windows and the access log: this process's CPU, the lines sent by another process
    (each starting with ``token`` when one is given, as HAProxy's do: the server checks
    and strips it)."""
    import sys

    from beanpole.adapters.lb.requests import AccessLogs, Listener, RequestStream, bind
    from beanpole.core.metrics import Windows

    windows, rollups = Windows(10.0), Windows(300.0)

    samples = 0

    def on_sample(sample: Any) -> None:
        nonlocal samples
        samples += 1
        windows.add(sample, sample.at)
        rollups.add(sample, sample.at)

    with beanpole_home("line") as tmp:
        listener = Listener(bind(0), RequestStream(on_sample, AccessLogs(tmp), token))
        now_ms = str(int(time.time() * 1000))
        start = time.process_time()
        sender = subprocess.Popen(
            [sys.executable, "-c", _SENDER, str(listener.port), str(lines), now_ms, token]
        )
        received = 0
        while sender.poll() is None:
            received += listener.drain()
            listener.stream.flush()
            time.sleep(0.01)
        received += listener.drain()
        listener.stream.flush()
        spent = time.process_time() - start
        listener.close()
    if samples < received:  # a line the stream refused measures nothing: a broken bench
        raise RuntimeError(f"only {samples} of {received} request lines were parsed")
    return spent * 1e6 / max(received, 1)


@contextlib.contextmanager
def environment(log: Any) -> Iterator[tuple[Beanpole, PipelineTarget]]:
    with beanpole_home("pipeline") as tmp:
        bp = Beanpole(tmp / "home")
        bare: BareHAProxy | None = None
        try:
            bp.start()
            bp.cli("create", ENV, "--app", "tiny", "--source", str(APP), "--scale", str(INSTANCES))
            instances = [
                # a namespaced instance has an address of its own
                (i["id"], i.get("host") or "127.0.0.1", int(i["port"]), int(i["pid"]))
                for i in bp.status(ENV)["instances"]
            ]
            bare = BareHAProxy(tmp / "bare", instances)
            bare.start()
            target = PipelineTarget(bp, bare)
            check_routing(bp, {i for i, _, _, _ in instances})
            log(f"  {INSTANCES} instances; Beanpole's HAProxy :{bp.lb_port}, bare :{bare.port}")
            yield bp, target
        finally:
            if bare is not None:
                bare.stop()
            leaked = stop_and_check(bp)
            if leaked:
                log(f"  LEAKED (stopped by pid): {leaked}")


def bp_log_port(bp: Beanpole) -> int:
    """The server's request-log port: the callgrind runs send their lines there too, so the
    pipeline mode pays for real sends to a real reader."""
    return int(json.loads((bp.home / "config.json").read_text())["log_port"])


def sampling_of(bp: Beanpole) -> int:
    info = json.loads(bp.cli("health", ENV, "--json").stdout)
    return int(info.get("sampling", 1))


def run(
    rounds: int = 5, seconds: float = 5.0, connections: int = 24, log: Any = print
) -> dict[str, Any]:
    wrk = require_wrk()
    result: dict[str, Any] = {
        "benchmark": "health_pipeline",
        "config": {
            "rounds": rounds,
            "seconds": seconds,
            "connections": connections,
            "instances": INSTANCES,
        },
        "machine": machine(),
        "runs": [],
    }
    with environment(log) as (bp, target):
        for mode in MODES:  # warm-up, discarded; also lets the sampler settle on its ratio
            run_wrk(wrk, target, mode, 3, INSTANCES, connections)
        for r in range(rounds):
            order = MODES if r % 2 == 0 else MODES[::-1]
            for mode in order:
                row = run_wrk(wrk, target, mode, seconds, INSTANCES, connections)
                row["round"] = r + 1
                row["cpu_us_per_request_total"] = per_request_us(row)
                if mode == "pipeline":
                    row["sampling_after"] = sampling_of(bp)
                result["runs"].append(row)
                log(
                    f"  round {r + 1}/{rounds} {mode:<8} {row['rps']:>8.0f} req/s  "
                    f"{fmt(row['cpu_us_per_request_total'], '.2f')} µs/req"
                    + (
                        f"  (haproxy {row['cpu_us_per_request']['haproxy']:.2f}, server "
                        f"{row['cpu_us_per_request']['server']:.2f}, 1:{row['sampling_after']})"
                        if mode == "pipeline"
                        else ""
                    )
                    + (f"  ERRORS {row['errors']}" if row["error_count"] else "")
                )
        result["instructions"] = instructions(target.instances[0][1], bp_log_port(bp), log)
    result["line_cost_us"] = [round(line_cost_us(token=TOKEN), 2) for _ in range(3)]
    result["summary"] = summarize(result["runs"], result["line_cost_us"])
    return result


def summarize(runs: list[dict[str, Any]], line_costs: list[float]) -> dict[str, Any]:
    modes = {
        mode: {
            "rps": spread(r["rps"] for r in runs if r["mode"] == mode),
            "cpu_us_per_request": spread(
                r["cpu_us_per_request_total"] for r in runs if r["mode"] == mode
            ),
        }
        for mode in MODES
    }
    pairs = []
    for n in sorted({r["round"] for r in runs}):
        with_it = next(r for r in runs if r["round"] == n and r["mode"] == "pipeline")
        alone = next(r for r in runs if r["round"] == n and r["mode"] == "alone")
        pairs.append(with_it["cpu_us_per_request_total"] / alone["cpu_us_per_request_total"])
    pipeline_rows = [r for r in runs if r["mode"] == "pipeline"]
    return {
        "modes": modes,
        "overhead_ratio": spread(pairs),
        "server_us_per_request": median(r["cpu_us_per_request"]["server"] for r in pipeline_rows),
        "haproxy_us_per_request_with_log": median(
            r["cpu_us_per_request"]["haproxy"] for r in pipeline_rows
        ),
        "sampling": sorted({r.get("sampling_after", 1) for r in pipeline_rows}),
        "line_cost_us": median(line_costs),
    }


def instruction_overhead(counts: dict[str, int] | None) -> float | None:
    return counts["pipeline"] / counts["alone"] if counts else None


def report(result: dict[str, Any]) -> str:
    s, c = result["summary"], result["config"]
    lines = [
        f"Health pipeline cost: wrk -t{INSTANCES} -c{c['connections']} -d{c['seconds']:g}s, "
        f"{c['rounds']} interleaved rounds, medians (min-max)",
    ]
    for mode, title in (("pipeline", "HAProxy + Beanpole pipeline"), ("alone", "HAProxy alone")):
        m = s["modes"][mode]
        lines.append(
            f"  {title:<30} {fmt(m['rps']['median'], '.0f'):>7} req/s   "
            f"{fmt(m['cpu_us_per_request']['median'])} µs CPU/request "
            f"({fmt(m['cpu_us_per_request']['min'])}-{fmt(m['cpu_us_per_request']['max'])})"
        )
    o = s["overhead_ratio"]
    lines += [
        f"  overhead: x{fmt(o['median'], '.3f')} CPU per request "
        f"({fmt(o['min'], '.3f')}-{fmt(o['max'], '.3f')}); goal <= x1.10",
        f"  of which: HAProxy with logging {fmt(s['haproxy_us_per_request_with_log'])} µs, "
        f"Beanpole server {fmt(s['server_us_per_request'])} µs per request; "
        f"sampling seen 1:{'/'.join(str(x) for x in s['sampling'])}",
        f"  unsampled, the server would spend {fmt(s['line_cost_us'])} µs per request line "
        "(parse + windows + access log, measured in-process)",
    ]
    counts = result.get("instructions")
    if counts:
        extra = counts["pipeline"] - counts["alone"]
        base = counts["alone_no_copy"]
        server_share = (
            s["server_us_per_request"] / s["modes"]["alone"]["cpu_us_per_request"]["median"]
        )
        lines += [
            f"  HAProxy instructions per request (callgrind, keep-alive, 1:32): "
            f"{counts['alone']:,} alone, {counts['pipeline']:,} with the log and sampling: "
            f"+{extra:,} (+{100 * extra / counts['alone']:.1f} %)",
            f"  valgrind counts the 16 KB request copy for empty-response retries byte by byte "
            f"(alone without it: {base:,}; in CPU time the copy is within noise): against "
            f"that, +{100 * extra / base:.1f} %",
            f"  estimate: server CPU {100 * server_share:.1f} % of HAProxy's per request + "
            f"HAProxy's extra {100 * extra / base:.1f} % = "
            f"+{100 * server_share + 100 * extra / base:.1f} % (goal <= +10 %)",
        ]
    return "\n".join(lines)


def token_cost(rounds: int) -> dict[str, Any]:
    """The line cost with the token HAProxy now starts each line with (checked and cut by
    the server) against the same lines without one, alternating, medians."""
    costs: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(rounds):
        costs["without"].append(line_cost_us())
        costs["with"].append(line_cost_us(token=TOKEN))
    result: dict[str, Any] = {
        "benchmark": "health_pipeline_token",
        "machine": machine(),
        "rounds": rounds,
        "line_cost_us": {k: [round(v, 3) for v in vals] for k, vals in costs.items()},
        "median_us": {k: median(vals) for k, vals in costs.items()},
    }
    m = result["median_us"]
    result["ratio"] = m["with"] / m["without"] if m["without"] else None
    print(
        f"server CPU per request line, median of {rounds}: without a token "
        f"{fmt(m['without'])} µs, with one {fmt(m['with'])} µs "
        f"(ratio {fmt(result['ratio'], '.3f')})"
    )
    path = write_result("health_pipeline_token", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=24)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 2 s")
    parser.add_argument(
        "--lines",
        action="store_true",
        help="only the server's cost per request line, with and without the request token, "
        "alternating round by round",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 2.0
    if args.lines:
        return token_cost(args.rounds)
    result = run(args.rounds, args.seconds, args.connections)
    print(report(result))
    path = write_result("health_pipeline", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
