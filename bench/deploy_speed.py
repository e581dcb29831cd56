"""From `beanpole deploy` to serving, for a Python app whose dependencies are cached.

    python -m bench.deploy_speed [--rounds 5] [--policies default,AllAtOnce,Rolling] [--quick]

One Beanpole server, one environment of three instances of a Flask app in Elastic Beanstalk's
layout (`bench/apps/flask`: `application` in application.py, flask in requirements.txt). The
first `create` runs with an empty uv cache and installs the dependencies: that time is the
"cold" figure. Then, for each policy, each round changes only the code (the VERSION string) and
runs `beanpole deploy`, measuring from the command's start:

- ``first_new``: the first request through the load balancer answered by the new version (a
  probe sends one keep-alive GET every 10 ms through HAProxy during the whole run);
- ``all_new``:   the last request answered by the previous version (after it, only the new one
  answers);
- ``cli``:       the command returning (it waits until the environment is Ready: the old
  instances drained and stopped, then the bake window, BakeTime 10 s by default);

and from the environment's events, the phases: the upload (the CLI starting, zipping and
uploading, until the server accepted the deploy), from then to the first instance launched
(planning and the build: extracting the bundle; a cache hit installs nothing), the build itself
("Building" to "Built"), from the first launch to the first answer from the new version, and from
that answer to the CLI returning (drain, bake window, the CLI's polling). Each deploy also
checks that nothing was installed: the dependency cache (`builds/deps/python/<key>`) is
unchanged and no build command ran.

"default" deploys without --policy (Beanpole's default, Immutable). Rolling runs with
BatchSizeType Fixed and BatchSize 1 (one instance at a time; EB's default of 100 % would be
one batch of all three, i.e. AllAtOnce with a drain). A policy spelled "default+steps" deploys
the app with a container_command, so that each deployment copies the app folder into one of
its own and runs the command there before its instances start (`--policies
default,default+steps` compares the two in one run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench._common import (
    ROOT,
    Background,
    Beanpole,
    beanpole_home,
    fmt,
    machine,
    spread,
    stamp,
    stop_and_check,
    write_result,
)

APP = ROOT / "bench" / "apps" / "flask"
ENV = "speed"
INSTANCES = 3
POLICIES = ("default", "AllAtOnce", "Rolling")
SETTINGS = {
    # Rolling one instance at a time; AllAtOnce and Immutable do not read these.
    "aws:elasticbeanstalk:command:BatchSizeType": "Fixed",
    "aws:elasticbeanstalk:command:BatchSize": "1",
}
PROBE_INTERVAL_S = 0.01
VERSION_LINE = 'VERSION = "v0"'
METRICS = (
    "first_new",
    "all_new",
    "cli",
    "upload",
    "to_launch",
    "build",
    "launch_to_serving",
    "after_serving",
)


class Probe(Background):
    """One keep-alive GET through the load balancer every 10 ms; each answer with its time.

    An answer is (time, the version the app reports or ``FAIL:<why>``, the instance id that
    answered or ""). Bounded: it stops when told, or after ``max_seconds``.
    """

    def __init__(self, port: int, host: str, max_seconds: float = 3600) -> None:
        super().__init__()
        self.port, self.host, self.max_seconds = port, host, max_seconds
        self.answers: list[tuple[float, str, str]] = []

    def window(self, start: float, end: float) -> list[tuple[float, str, str]]:
        with self._lock:
            return [a for a in self.answers if start <= a[0] <= end]

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn: http.client.HTTPConnection | None = None
        headers = {"Host": f"{self.host}.localhost:{self.port}"}
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/", headers=headers)
                response = conn.getresponse()
                body = response.read()
                if response.status == 200:
                    data = json.loads(body)
                    answer, instance = str(data["version"]), str(data["instance"])
                else:
                    answer, instance = f"FAIL:HTTP {response.status}", ""
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                answer, instance = f"FAIL:{exc!r}", ""
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.answers.append((time.time(), answer, instance))
            self._stop.wait(PROBE_INTERVAL_S)
        if conn is not None:
            conn.close()


STEPS_CONFIG = """\
container_commands:
  01_record:
    command: echo "$(date +%s.%N) deployed" >> deployed.txt
"""


def variant(work: Path, label: str, *, steps: bool = False) -> Path:
    """A copy of the app whose only change is its VERSION string (``steps``: and a
    container_command, so that each deployment copies the app into a folder of its own)."""
    dest = work / f"src-{label}"
    shutil.copytree(APP, dest)
    if steps:
        (dest / ".ebextensions").mkdir()
        (dest / ".ebextensions" / "01-steps.config").write_text(STEPS_CONFIG)
    source = dest / "application.py"
    text = source.read_text()
    if VERSION_LINE not in text:
        raise RuntimeError(f"{APP / 'application.py'} has no line {VERSION_LINE!r} to change")
    source.write_text(text.replace(VERSION_LINE, f'VERSION = "{label}"'))
    return dest


def events_since(home: Path, since: float) -> list[tuple[float, str, str]]:
    """(time, severity, message) of the environment's events from ``since`` on."""
    db = sqlite3.connect(home / "state.db", timeout=10)
    try:
        rows = db.execute(
            "SELECT time, severity, message FROM events WHERE time >= ? AND environment_id IN"
            " (SELECT id FROM environments WHERE name = ?) ORDER BY id",
            (since, ENV),
        ).fetchall()
    finally:
        db.close()
    return [(float(t), str(s), str(m)) for t, s, m in rows]


def deps_state(home: Path) -> dict[str, float]:
    """Each Python dependency cache entry and when it was completed."""
    root = home / "builds" / "deps" / "python"
    if not root.is_dir():
        return {}
    return {d.name: (d / ".done").stat().st_mtime for d in root.iterdir() if (d / ".done").exists()}


def build_commands_since(home: Path, since: float) -> list[str]:
    """The build commands (``$ uv ...`` lines of build logs) written since ``since``."""
    commands = []
    for log in (home / "builds").glob("*/build.log"):
        if log.stat().st_mtime >= since:
            lines = log.read_text(errors="replace").splitlines()
            commands += [ln for ln in lines if ln.startswith("$ ")]
    return commands


def _first(
    events: list[tuple[float, str, str]], prefix: str | None = None, pattern: str | None = None
) -> tuple[float, str] | None:
    for t, _, message in events:
        if (prefix is not None and message.startswith(prefix)) or (
            pattern is not None and re.search(pattern, message)
        ):
            return t, message
    return None


def _offset(t0: float, hit: tuple[float, str] | None) -> float | None:
    return round(hit[0] - t0, 3) if hit else None


def _minus(a: float | None, b: float | None) -> float | None:
    return round(a - b, 3) if a is not None and b is not None else None


def _built_seconds(hit: tuple[float, str] | None) -> float | None:
    """The server's own build time, from "Built version X (python) in 2.1 s."."""
    m = re.search(r" in ([0-9.]+) s\.$", hit[1]) if hit else None
    return float(m.group(1)) if m else None


def cold_create(bp: Beanpole, work: Path, log: Any) -> dict[str, Any]:
    source = variant(work, "v0")
    settings = [a for k, v in SETTINGS.items() for a in ("--setting", f"{k}={v}")]
    t0 = time.time()
    bp.cli(
        "create",
        ENV,
        "--app",
        "speed",
        "--source",
        str(source),
        "--scale",
        str(INSTANCES),
        *settings,
    )
    cli = time.time() - t0
    events = events_since(bp.home, t0)
    accepted = _first(events, "createEnvironment is starting")
    built = _first(events, "Built version")
    in_service = _first(events, pattern=r"instance\(s\) of version .* are in service")
    commands = build_commands_since(bp.home, t0)
    row = {
        "cli": round(cli, 3),
        "upload": _offset(t0, accepted),
        "build": _built_seconds(built),
        "in_service": _offset(t0, in_service),
        "deps_cache_entries": len(deps_state(bp.home)),
        "installed": any("pip install" in c for c in commands),
        "build_commands": commands,
    }
    log(
        f"  cold create ({INSTANCES} instances, empty uv cache): CLI {row['cli']:.1f} s, "
        f"build (venv + flask + gunicorn) {fmt(row['build'], '.1f')} s, "
        f"in service at {fmt(row['in_service'], '.1f')} s"
    )
    return row


def deploy_round(
    bp: Beanpole, probe: Probe, work: Path, policy: str, n: int, log: Any
) -> dict[str, Any]:
    label = f"{policy.lower().replace('+', '-')}-{n}"
    base, _, extra = policy.partition("+")  # "default+steps": with a container_command
    source = variant(work, label, steps=extra == "steps")
    deps_before = deps_state(bp.home)
    policy_args = [] if base == "default" else ["--policy", base]
    t0 = time.time()
    proc = bp.cli(
        "deploy", ENV, "--source", str(source), "--label", label, *policy_args, check=False
    )
    t_cli = time.time()
    answers = probe.window(t0, t_cli)
    if not any(a == label for _, a, _ in answers):  # the CLI returned first: wait a little
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            a == label for _, a, _ in probe.window(t0, time.time())
        ):
            time.sleep(0.05)
        answers = probe.window(t0, time.time())
    new_at = [t for t, a, _ in answers if a == label]
    old_at = [t for t, a, _ in answers if a != label and not a.startswith("FAIL:")]
    failed = [(t, a) for t, a, _ in answers if t <= t_cli and a.startswith("FAIL:")]
    # Answers from another version after the new one first answered: a cut-over that is not
    # clean (for Rolling, expected until the last batch).
    stale = [
        (round(t - t0, 3), a, i)
        for t, a, i in answers
        if new_at and t > new_at[0] and a != label and not a.startswith("FAIL:")
    ]

    events = events_since(bp.home, t0)
    accepted = _first(events, "Environment update is starting")
    building = _first(events, "Building version")
    built = _first(events, "Built version")
    deploying = _first(events, "Deploying version")
    launched = _first(events, pattern=r"starting \d+ instance\(s\) of version")
    errors = [m for _, s, m in events if s.upper() == "ERROR"]
    first_new = round(new_at[0] - t0, 3) if new_at else None
    policy_used = re.search(r"with policy (\w+)", deploying[1]) if deploying else None
    commands = build_commands_since(bp.home, t0)
    deps_after = deps_state(bp.home)
    row: dict[str, Any] = {
        "policy": policy,
        "policy_used": policy_used.group(1) if policy_used else None,
        "round": n,
        "label": label,
        "exit": proc.returncode,
        "cli": round(t_cli - t0, 3),
        "first_new": first_new,
        "all_new": round(old_at[-1] - t0, 3) if old_at else None,
        "upload": _offset(t0, accepted),
        "to_launch": _minus(_offset(t0, launched), _offset(t0, accepted)),
        "build": _minus(_offset(t0, built), _offset(t0, building)),
        "launch_to_serving": _minus(first_new, _offset(t0, launched)),
        "after_serving": _minus(round(t_cli - t0, 3), first_new),
        "probe_requests": sum(1 for t, _, _ in answers if t <= t_cli),
        "stale_answers": len(stale),
        "stale_sample": stale[:5] + stale[-5:] if len(stale) > 10 else stale,
        "instances_after": [
            (i["id"], i.get("version"), i.get("state")) for i in bp.status(ENV)["instances"]
        ],
        "failed": len(failed),
        "failed_sample": sorted({a for _, a in failed})[:3],
        "outage": round(failed[-1][0] - failed[0][0], 3) if failed else 0.0,
        "installed_nothing": deps_after == deps_before and not commands,
        "build_commands": commands,
        "errors": errors,
        "events": [(round(t - t0, 3), m) for t, _, m in events],
    }
    if proc.returncode != 0:
        row["stderr"] = proc.stderr[-2000:]
    problems = "" if row["installed_nothing"] else "  INSTALLED SOMETHING"
    if proc.returncode:
        problems += f"  EXIT {proc.returncode}: {errors[-1:] or proc.stderr[-200:]}"
    log(
        f"  {policy:<10} round {n}: first new answer {fmt(row['first_new'])} s, "
        f"all new {fmt(row['all_new'])} s, CLI {row['cli']:.2f} s "
        f"(upload {fmt(row['upload'])}, to launch {fmt(row['to_launch'])}, "
        f"build {fmt(row['build'], '.3f')}, launch→serving {fmt(row['launch_to_serving'])})  "
        f"{row['failed']} failed of {row['probe_requests']}{problems}"
    )
    return row


def run(rounds: int = 5, policies: tuple[str, ...] = POLICIES, log: Any = print) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "deploy_speed",
        "config": {
            "rounds": rounds,
            "policies": list(policies),
            "instances": INSTANCES,
            "app": str(APP.relative_to(ROOT)),
            "settings": SETTINGS,
            "probe_interval_s": PROBE_INTERVAL_S,
        },
        "machine": machine(),
        "runs": [],
    }
    with beanpole_home("speed") as tmp:
        bp = Beanpole(tmp / "home")
        probe: Probe | None = None
        try:
            bp.start()
            result["cold"] = cold_create(bp, tmp, log)
            probe = Probe(bp.lb_port, ENV)
            probe.start()
            for policy in policies:
                for n in range(1, rounds + 1):
                    result["runs"].append(deploy_round(bp, probe, tmp, policy, n, log))
        finally:
            if probe is not None:
                probe.stop()
            result["leaked_processes"] = stop_and_check(bp)
    result["summary"] = summarize(result["runs"], policies)
    return result


def summarize(runs: list[dict[str, Any]], policies: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for policy in policies:
        rows = [r for r in runs if r["policy"] == policy]
        out[policy] = {
            "policy_used": next((r["policy_used"] for r in rows if r["policy_used"]), None),
            **{m: spread(r[m] for r in rows if r[m] is not None) for m in METRICS},
            "failed_requests": sum(r["failed"] for r in rows),
            "probe_requests": sum(r["probe_requests"] for r in rows),
            "failed_deploys": sum(1 for r in rows if r["exit"] != 0),
            "installed_nothing": all(r["installed_nothing"] for r in rows),
        }
    return out


def report(result: dict[str, Any]) -> str:
    c, cold = result["config"], result["cold"]

    def rng(x: dict[str, Any], spec: str = ".2f") -> str:
        return f"{fmt(x['median'], spec)} ({fmt(x['min'], spec)}-{fmt(x['max'], spec)})"

    def name(policy: str, s: dict[str, Any]) -> str:
        return policy if policy != "default" else f"default ({s['policy_used']})"

    summary = result["summary"]
    lines = [
        f"Deploy speed: Flask app, {c['instances']} instances, {c['rounds']} code-only deploys "
        "per policy; seconds from the command's start, median (min-max)",
        "cold create (empty uv cache, installs flask + gunicorn): "
        f"CLI returned {cold['cli']:.2f} s, build {fmt(cold['build'])} s, "
        f"in service at {fmt(cold['in_service'])} s",
        f"{'policy':<22}{'first new answer':>22}{'all answers new':>22}{'CLI returned':>22}"
        "   failed/probed  installed",
    ]
    for policy, s in summary.items():
        lines.append(
            f"{name(policy, s):<22}{rng(s['first_new']):>22}{rng(s['all_new']):>22}"
            f"{rng(s['cli']):>22}   {s['failed_requests']:>6}/{s['probe_requests']:<6}  "
            f"{'nothing' if s['installed_nothing'] else 'SOMETHING'}"
            + (f"  {s['failed_deploys']} DEPLOYS FAILED" if s["failed_deploys"] else "")
        )
    lines.append(
        f"{'phases':<22}{'upload':>18}{'accepted→launch':>18}{'build':>22}"
        f"{'launch→serving':>18}{'serving→CLI':>20}"
    )
    for policy, s in summary.items():
        lines.append(
            f"{name(policy, s):<22}{rng(s['upload']):>18}{rng(s['to_launch']):>18}"
            f"{rng(s['build'], '.3f'):>22}{rng(s['launch_to_serving']):>18}"
            f"{rng(s['after_serving']):>20}"
        )
    if result.get("leaked_processes"):
        lines.append(f"LEAKED (stopped by pid): {result['leaked_processes']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 default deploys")
    args = parser.parse_args(argv)
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    if args.quick:
        args.rounds, policies = 2, ("default",)
    result = run(args.rounds, policies)
    print(report(result))
    path = write_result("deploy_speed", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
