"""Deploy under steady load, for every policy: a good version, then one that fails its checks.

    python -m bench.deploy_under_load [--instances 4] [--clients 4] [--policies Rolling,...]
                                      [--quick]

One Beanpole server per policy, one environment of `tests/apps/pid` instances, and several
keep-alive clients (threads, no pause between requests) through HAProxy for the whole run. For
each policy it deploys a good version, then one whose health check fails (it must roll back).
Per deploy it prints the duration, the requests sent during it, the failed ones (non-2xx and
socket errors) and the span from the first failure to the last, and for TrafficSplitting the
share of requests the new version answered during its evaluation. Figures go to
bench/results/deploy_under_load-<time>.json. ``--quick``: 2 instances, Rolling, Rolling-default
and Immutable. ``Rolling-default`` is
Rolling with EB's default BatchSize (100 %, not given).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._common import (
    ROOT,
    Beanpole,
    beanpole_home,
    machine,
    stamp,
    stop_and_check,
    write_result,
)

# "Rolling-default": Rolling with EB's default batch (no BatchSize given: 100 %), which
# took every instance out of service at once before issue #7.
ROLLING_DEFAULT = "Rolling-default"
POLICIES = [
    "AllAtOnce",
    "Rolling",
    ROLLING_DEFAULT,
    "RollingWithAdditionalBatch",
    "Immutable",
    "TrafficSplitting",
]
SETTINGS = {
    "beanpole:deploy:BakeTime": "3",
    "beanpole:deploy:EvaluationSeconds": "10",
    "beanpole:instance:StartTimeout": "10",
    "aws:elasticbeanstalk:command:BatchSize": "25",
    "aws:elasticbeanstalk:trafficsplitting:NewVersionPercent": "10",
}


@dataclass
class Run:
    policy: str
    version: str  # "good" or "bad"
    seconds: float
    requests: int
    failed: int
    outcome: str  # what the environment ended on
    outage_s: float = 0.0  # from the first failed request to the last one
    new_share_during_evaluation: float | None = None
    failures_sample: tuple[str, ...] = ()


class Load:
    """Keep-alive GETs from several threads; each answer is recorded with its time."""

    def __init__(self, port: int, host: str, clients: int) -> None:
        self.port, self.host = port, host
        self.answers: list[tuple[float, str]] = []  # (time, version or "FAIL:<why>")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def window(self, start: float, end: float) -> list[tuple[float, str]]:
        with self._lock:
            return [a for a in self.answers if start <= a[0] <= end]

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        deadline = time.monotonic() + 3600
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/", headers={"Host": f"{self.host}.localhost"})
                response = conn.getresponse()
                body = response.read()
                result = (
                    json.loads(body)["version"]
                    if response.status == 200
                    else f"FAIL:HTTP {response.status}"
                )
            except (OSError, http.client.HTTPException, ValueError) as exc:
                result = f"FAIL:{exc!r}"
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.answers.append((time.time(), result))


def variant(base: Path, dest: Path, name: str, *, unhealthy: bool) -> Path:
    shutil.copytree(base, dest)
    (dest / "VERSION").write_text(name + "\n")
    if unhealthy:
        (dest / "UNHEALTHY").write_text("")
    return dest


def evaluation_window(home: Path, after: float) -> tuple[float, float] | None:
    db = sqlite3.connect(home / "state.db")
    rows = db.execute(
        "SELECT time, message FROM events WHERE time >= ? ORDER BY id", (after,)
    ).fetchall()
    db.close()
    start = next((t for t, m in rows if m.startswith("Evaluating version")), None)
    end = next((t for t, m in rows if m.startswith("Traffic splitting evaluation passed")), None)
    return (start, end) if start and end else None


def run_policy(
    policy: str, instances: int, clients: int, work: Path, leaks: list[str]
) -> list[Run]:
    bp = Beanpole(work / f"home-{policy}")
    app = ROOT / "tests" / "apps" / "pid"
    runs: list[Run] = []
    try:
        bp.start()
        given = dict(SETTINGS)
        if policy == ROLLING_DEFAULT:
            del given["aws:elasticbeanstalk:command:BatchSize"]
        settings = [a for k, v in given.items() for a in ("--setting", f"{k}={v}")]
        bp.cli(
            "create",
            "shop",
            "--app",
            "shop",
            "--source",
            str(app),
            "--scale",
            str(instances),
            *settings,
        )
        load = Load(bp.lb_port, "shop", clients)
        load.start()
        try:
            for name, unhealthy in (("good", False), ("bad", True)):
                source = variant(app, work / f"{policy}-{name}", name, unhealthy=unhealthy)
                started = time.time()
                result = bp.cli(
                    "deploy",
                    "shop",
                    "--source",
                    str(source),
                    "--label",
                    f"{policy}-{name}",
                    "--policy",
                    policy.removesuffix("-default"),
                    check=False,
                )
                ended = time.time()
                answers = load.window(started, ended)
                failures = [a for _, a in answers if a.startswith("FAIL:")]
                failed_at = [t for t, a in answers if a.startswith("FAIL:")]
                outage = round(max(failed_at) - min(failed_at), 2) if failed_at else 0.0
                info = bp.status("shop")
                run = Run(
                    policy,
                    name,
                    round(ended - started, 2),
                    len(answers),
                    len(failures),
                    f"{info['version']} (exit {result.returncode})",
                    outage,
                    failures_sample=tuple(sorted(set(failures)))[:3],
                )
                if policy == "TrafficSplitting" and name == "good":
                    window = evaluation_window(bp.home, started)
                    if window:
                        seen = [a for _, a in load.window(*window) if not a.startswith("FAIL")]
                        if seen:
                            new = sum(1 for a in seen if a == name)
                            run.new_share_during_evaluation = round(new / len(seen), 3)
                runs.append(run)
                print(
                    f"  {policy:<27} {name:<4} {run.seconds:>6.1f} s {run.requests:>6} req "
                    f"{run.failed:>6} failed (outage {run.outage_s:.1f} s)  ends on {run.outcome}"
                    + (
                        f"  new share {run.new_share_during_evaluation:.1%}"
                        if run.new_share_during_evaluation is not None
                        else ""
                    ),
                    flush=True,
                )
        finally:
            load.stop()
    finally:
        leaks += stop_and_check(bp)
    return runs


def report(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"Deploy under load: {c['instances']} instances, {c['clients']} keep-alive clients "
        "through HAProxy, one deploy per row",
        f"{'policy':<28}{'version':<9}{'seconds':>8}{'requests':>10}{'failed':>8}"
        f"{'outage s':>10}  ends on",
    ]
    for r in result["runs"]:
        share = r["new_share_during_evaluation"]
        lines.append(
            f"{r['policy']:<28}{r['version']:<9}{r['seconds']:>8.1f}{r['requests']:>10}"
            f"{r['failed']:>8}{r['outage_s']:>10.1f}  {r['outcome']}"
            + (f"  new share {share:.1%}" if share is not None else "")
            + (f"  {r['failures_sample']}" if r["failed"] else "")
        )
    if result.get("leaked_processes"):
        lines.append(f"LEAKED (stopped by pid): {result['leaked_processes']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 2 instances, Rolling, Rolling-default and Immutable",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.instances, args.policies = 2, f"Rolling,{ROLLING_DEFAULT},Immutable"
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    print(f"deploy under load: {args.instances} instances, {args.clients} keep-alive clients")
    result: dict[str, Any] = {
        "benchmark": "deploy_under_load",
        "config": {
            "instances": args.instances,
            "clients": args.clients,
            "policies": policies,
            "settings": SETTINGS,
        },
        "machine": machine(),
        "runs": [],
    }
    leaks: list[str] = []
    with beanpole_home("deploy") as tmp:
        for policy in policies:
            runs = run_policy(policy, args.instances, args.clients, tmp, leaks)
            result["runs"] += [asdict(r) for r in runs]
    result["leaked_processes"] = leaks
    print(report(result))
    path = write_result("deploy_under_load", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
