"""Auto scaling (issue 9): from idle to a load that saturates one instance, and back.

    python -m bench.autoscale [--runs 1] [--hold 120] [--quick]

One Beanpole server and one environment `cpu-load` of `bench/apps/cpu` (every GET / costs
about 10 ms of pure-Python CPU, so one instance serves about 100 requests/s on one core),
created with only ``aws:autoscaling:asg:MinSize=1`` and ``MaxSize=4``: no trigger option, no
``beanpole:*`` option, the defaults decide. After 15 s idle, wrk (``-t1 -c8``, keep-alive,
through HAProxy) runs as back-to-back 5 s segments for ``--hold`` seconds, each with its own
requests/s, p99 and errors (`bench/wrk_report.lua`). Meanwhile a probe sends one GET /ping
through HAProxy every 100 ms under load (every second otherwise) and records which instance
answered, and a poller reads the environment from the REST API every second (in-service
instances, ``desired_capacity`` and, if the server reports it, ``autoscaling.last_decision``).
After the load it waits until the environment is back at MinSize (one instance in service,
desired capacity 1), 10 minutes at most.

Per run: seconds from the load's start until a second instance answered the probe, the peak
in-service count, requests/s and p99 before the second instance answered and after the peak
was reached, seconds from the load's end until back at MinSize, failed requests (wrk's non-2xx
and socket errors plus failed probes), the scaling decisions seen, and the issue's goals
(second instance within 30 s, back at MinSize within 5 minutes, 0 failed) as met or not.
``--runs N`` repeats it with a fresh server and environment and prints medians. ``--quick``:
a 60 s hold. Figures go to bench/results/autoscale-<time>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench._common import (
    ROOT,
    Background,
    Beanpole,
    beanpole_home,
    fmt,
    machine,
    median,
    stamp,
    stop_and_check,
    write_result,
    wrk_argv,
)

APP = ROOT / "bench" / "apps" / "cpu"
ENV = "cpu-load"  # environment names have 4 to 40 characters: "cpu" is refused
MIN_SIZE, MAX_SIZE = 1, 4
SETTINGS = {
    "aws:autoscaling:asg:MinSize": str(MIN_SIZE),
    "aws:autoscaling:asg:MaxSize": str(MAX_SIZE),
}
IDLE_S = 15.0  # baseline before the load
SEGMENT_S = 5  # seconds of one wrk run (whole seconds)
THREADS, CONNECTIONS = 1, 8
PROBE_UNDER_LOAD_S = 0.1
PROBE_IDLE_S = 1.0
POLL_S = 1.0
SETTLE_DEADLINE_S = 600.0  # after the load, waiting to be back at MinSize
GOALS = {"second_instance_s": 30.0, "back_to_min_s": 300.0, "failed_requests": 0}


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "bench: the auto scaling benchmark needs wrk (a Python client would be the "
            "bottleneck). Install it with `apt-get install wrk` (scripts/bootstrap.sh does)."
        )
    return wrk


class Api:
    """The server's REST API read directly (the raw JSON: fields this client does not know
    yet, such as ``autoscaling``, are kept), a few ms a call instead of a CLI start-up."""

    def __init__(self, home: Path) -> None:
        self.url = json.loads((home / "server.json").read_text())["url"].rstrip("/") + "/api/v1"
        self.token = (home / "token").read_text().strip()

    def get(self, path: str, timeout: float = 10) -> Any:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=timeout) as response:
            return json.loads(response.read())

    def environment(self, name: str) -> dict[str, Any]:
        return dict(self.get(f"/environments/{name}"))

    def events(self, name: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = 0
        for _ in range(100):  # 100,000 events at most
            page = self.get(f"/environments/{name}/events?after={after}&limit=1000")
            found += page
            if len(page) < 1000:
                break
            after = max(e["id"] for e in page)
        return found


class Probe(Background):
    """One GET /ping at a time through HAProxy (a new connection each), every ``interval``
    s: (time, instance or None, "200" or what failed). /ping costs the app no work, so the
    probe adds no load, but it waits in the same queue for the instance as wrk's requests."""

    def __init__(self, port: int, host: str) -> None:
        super().__init__()
        self.port, self.host = port, host
        self.interval = PROBE_IDLE_S
        self.answers: list[tuple[float, str | None, str]] = []

    def snapshot(self) -> list[tuple[float, str | None, str]]:
        with self._lock:
            return list(self.answers)

    def _once(self) -> tuple[str | None, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/ping", headers={"Host": f"{self.host}.localhost:{self.port}"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                return None, f"HTTP {response.status}"
            return str(json.loads(body)["instance"]), "200"
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            return None, repr(exc)
        finally:
            conn.close()

    def _run(self) -> None:
        deadline = time.monotonic() + 3 * 3600
        next_at = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < deadline:
            instance, outcome = self._once()
            with self._lock:
                self.answers.append((time.monotonic(), instance, outcome))
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:  # a slow answer: the next one now, not a burst to catch up
                next_at = now
            self._stop.wait(next_at - now)


class Poller(Background):
    """The environment once a second: in-service count, desired capacity, instance states and
    the autoscaler's last decision (``autoscaling.last_decision.message``), if reported."""

    def __init__(self, api: Api, name: str) -> None:
        super().__init__()
        self.api, self.name = api, name
        self.samples: list[dict[str, Any]] = []  # {"t", "in_service", "desired", "states"}
        self.decisions: dict[str, float] = {}  # message -> when first seen (monotonic)
        self.autoscaling_field = False  # whether the server reports `autoscaling` at all
        self.errors: list[str] = []

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.samples)

    def _run(self) -> None:
        deadline = time.monotonic() + 3 * 3600
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                info = self.api.environment(self.name)
            except (OSError, ValueError, urllib.error.URLError) as exc:
                with self._lock:
                    if len(self.errors) < 100:
                        self.errors.append(f"{time.monotonic():.1f}: {exc!r}")
            else:
                at = time.monotonic()
                instances = info.get("instances") or []
                sample = {
                    "t": at,
                    "in_service": sum(1 for i in instances if i.get("state") == "in-service"),
                    "desired": info.get("desired_capacity"),
                    "states": sorted(f"{i.get('id')}:{i.get('state')}" for i in instances),
                }
                message = decision_message(info.get("autoscaling"))
                with self._lock:
                    self.samples.append(sample)
                    if "autoscaling" in info:
                        self.autoscaling_field = True
                    if message and message not in self.decisions:
                        self.decisions[message] = at
            self._stop.wait(max(0.0, POLL_S - (time.monotonic() - started)))


def decision_message(autoscaling: Any) -> str | None:
    """``autoscaling.last_decision.message`` (or a bare string decision), else None."""
    if not isinstance(autoscaling, dict):
        return None
    decision = autoscaling.get("last_decision")
    if isinstance(decision, dict):
        message = decision.get("message")
        return str(message) if message else None
    return str(decision) if decision else None


def segment_plan(hold: float) -> list[int]:
    """wrk's durations for ``hold`` seconds: whole seconds (wrk takes no fractions), 5 each,
    the rest as a last shorter one."""
    full = int(hold // SEGMENT_S)
    rest = round(hold - full * SEGMENT_S)
    return [int(SEGMENT_S)] * full + ([rest] if rest >= 1 else [])


def run_segment(wrk: str, bp: Beanpole, seconds: float) -> dict[str, Any]:
    """One wrk run through HAProxy: its times (monotonic), requests/s, latency and errors."""
    url = f"http://127.0.0.1:{bp.lb_port}/"
    headers = ["-H", f"Host: {ENV}.localhost:{bp.lb_port}"]
    started = time.monotonic()
    proc = subprocess.run(
        wrk_argv(
            wrk, url, seconds=seconds, threads=THREADS, connections=CONNECTIONS, headers=headers
        ),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    ended = time.monotonic()
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        # Counted as one failure: the segment's requests are unknown.
        return {
            "start": started,
            "end": ended,
            "requests": 0,
            "rps": None,
            "p50_ms": None,
            "p99_ms": None,
            "errors": {"wrk_failed": 1},
            "error_count": 1,
            "wrk_output": (proc.stdout + proc.stderr)[-500:],
        }
    report = json.loads(line.removeprefix("WRK_JSON "))
    duration = report["duration_us"] / 1e6
    return {
        "start": started,
        "end": ended,
        "requests": report["requests"],
        "rps": report["requests"] / duration if duration else None,
        "p50_ms": report["latency_us"]["p50"] / 1000,
        "p99_ms": report["latency_us"]["p99"] / 1000,
        "errors": report["errors"],
        "error_count": sum(report["errors"].values()),
    }


def in_service_at(samples: list[dict[str, Any]], t: float) -> int | None:
    """The in-service count of the last sample at or before ``t``."""
    seen = [s["in_service"] for s in samples if s["t"] <= t]
    return seen[-1] if seen else None


def run_once(n: int, wrk: str, hold: float, tmp: Path, log: Any = print) -> dict[str, Any]:
    bp = Beanpole(tmp / f"home-{n}")
    probe: Probe | None = None
    poller: Poller | None = None
    result: dict[str, Any] = {"run": n}
    try:
        t_create = time.monotonic()
        bp.start()
        settings = [a for k, v in SETTINGS.items() for a in ("--setting", f"{k}={v}")]
        bp.cli("create", ENV, "--app", ENV, "--source", str(APP), *settings)
        result["create_s"] = round(time.monotonic() - t_create, 2)
        api = Api(bp.home)
        info = api.environment(ENV)
        before_ids = {str(i["id"]) for i in info.get("instances", [])}
        log(
            f"  run {n}: environment ready in {result['create_s']:.1f} s, "
            f"{len(before_ids)} instance(s), desired {info.get('desired_capacity')}; "
            f"{IDLE_S:.0f} s idle"
        )

        probe = Probe(bp.lb_port, ENV)
        poller = Poller(api, ENV)
        probe.start()
        poller.start()
        time.sleep(IDLE_S)
        before_ids |= {i for _, i, _ in probe.snapshot() if i is not None}

        # -- the load: back-to-back wrk segments ------------------------------------------
        probe.interval = PROBE_UNDER_LOAD_S
        load_start = time.monotonic()
        load_start_wall = time.time()
        segments: list[dict[str, Any]] = []
        for seconds in segment_plan(hold):
            seg = run_segment(wrk, bp, seconds)
            segments.append(seg)
            log(
                f"    +{seg['end'] - load_start:5.1f} s  {fmt(seg['rps'], '.0f'):>5} req/s  "
                f"p99 {fmt(seg['p99_ms'], '.0f'):>5} ms  in service "
                f"{in_service_at(poller.snapshot(), seg['end'])}"
                + (f"  ERRORS {seg['errors']}" if seg["error_count"] else "")
            )
        load_end = time.monotonic()
        probe.interval = PROBE_IDLE_S

        # -- after: until back at MinSize ------------------------------------------------
        def back_at_min() -> float | None:
            assert poller is not None
            for s in poller.snapshot():
                if s["t"] >= load_end and s["in_service"] == MIN_SIZE and s["desired"] == MIN_SIZE:
                    return float(s["t"])
            return None

        back_t = back_at_min()
        last_said = load_end
        while back_t is None and time.monotonic() - load_end < SETTLE_DEADLINE_S:
            time.sleep(1)
            back_t = back_at_min()
            if time.monotonic() - last_said >= 30:
                last_said = time.monotonic()
                last = poller.snapshot()[-1:] or [{}]
                log(
                    f"    load stopped {last_said - load_end:.0f} s ago: in service "
                    f"{last[0].get('in_service')}, desired {last[0].get('desired')}"
                )
        probe.stop()
        poller.stop()

        # -- figures ---------------------------------------------------------------------
        answers = probe.snapshot()
        samples = poller.snapshot()
        peak = max((s["in_service"] for s in samples if s["t"] >= load_start), default=0)
        scaled_out = peak >= 2
        new_answers = [t for t, i, _ in answers if t >= load_start and i and i not in before_ids]
        second_t = new_answers[0] if new_answers and scaled_out else None
        peak_t = next(
            (s["t"] for s in samples if s["t"] >= load_start and s["in_service"] == peak), None
        )
        two_t = next(
            (s["t"] for s in samples if s["t"] >= load_start and s["in_service"] >= 2), None
        )
        if second_t is not None:
            before_segs = [s for s in segments if s["end"] <= second_t]
            before_rule = "segments that ended before the second instance answered"
        else:
            before_segs = list(segments)
            before_rule = "every segment (no second instance answered)"
        after_segs = (
            [s for s in segments if peak_t is not None and s["start"] >= peak_t]
            if scaled_out
            else []
        )
        failed_probes = [(t, o) for t, _, o in answers if o != "200"]
        # Which instances answered the probe under load once the second one had: the balance.
        share: dict[str, int] = {}
        for t, i, _ in answers:
            if i and second_t is not None and second_t <= t <= load_end:
                share[i] = share.get(i, 0) + 1
        wrk_errors = sum(s["error_count"] for s in segments)

        def rel(t: float | None, origin: float) -> float | None:
            return None if t is None else round(t - origin, 2)

        def block(segs: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "segments": len(segs),
                "rps": median(s["rps"] for s in segs if s["rps"] is not None),
                "p99_ms": median(s["p99_ms"] for s in segs if s["p99_ms"] is not None),
            }

        # Segments during which the in-service count did not change, by that count.
        by_count: dict[int, list[dict[str, Any]]] = {}
        for seg in segments:
            counts = {x["in_service"] for x in samples if seg["start"] <= x["t"] <= seg["end"]}
            at_start = in_service_at(samples, seg["start"])
            if at_start is not None:
                counts.add(at_start)
            if len(counts) == 1:
                by_count.setdefault(counts.pop(), []).append(seg)

        events = []
        try:
            events = [
                {"t": round(e["time"] - load_start_wall, 2), "message": e["message"]}
                for e in api.events(ENV)
                if e["time"] >= load_start_wall - 1
            ]
        except (OSError, ValueError, urllib.error.URLError) as exc:
            events = [{"t": None, "message": f"(events not read: {exc!r})"}]

        # A change of in-service count, desired capacity or instance states, once each.
        timeline = []
        for s in samples:
            row = {
                "t": round(s["t"] - load_start, 1),
                "in_service": s["in_service"],
                "desired": s["desired"],
                "states": s["states"],
            }
            if not timeline or any(timeline[-1][k] != row[k] for k in row if k != "t"):
                timeline.append(row)

        result.update(
            {
                "scaled_out": scaled_out,
                "second_instance_s": rel(second_t, load_start),
                "two_in_service_s": rel(two_t, load_start),  # from the poller, 1 s resolution
                "peak_instances": peak,
                "peak_reached_s": rel(peak_t, load_start),
                "before": block(before_segs) | {"rule": before_rule},
                "after": block(after_segs)
                | {"rule": "segments that started after the peak count was first reached"},
                "by_instances": {str(k): block(v) for k, v in sorted(by_count.items())},
                "load_s": round(load_end - load_start, 2),
                "back_to_min_s": rel(back_t, load_end),
                "failed_requests": wrk_errors + len(failed_probes),
                "wrk_requests": sum(s["requests"] for s in segments),
                "wrk_errors": wrk_errors,
                "probes": len(answers),
                "failed_probes": len(failed_probes),
                "failed_probes_sample": sorted({o for _, o in failed_probes})[:5],
                "probe_answers_after_second": share,
                "autoscaling_field": poller.autoscaling_field,
                "decisions": [
                    {"t": rel(t, load_start), "message": m}
                    for m, t in sorted(poller.decisions.items(), key=lambda d: d[1])
                ],
                "poll_errors": poller.errors[:10],
                "segments": [
                    {
                        **{k: v for k, v in s.items() if k not in ("start", "end")},
                        "start_s": rel(s["start"], load_start),
                        "end_s": rel(s["end"], load_start),
                    }
                    for s in segments
                ],
                "timeline": timeline,
                "events": events,
            }
        )
        result["goals"] = goals(result)
    finally:
        if probe is not None:
            probe.stop()
        if poller is not None:
            poller.stop()
        result["leaked_processes"] = stop_and_check(bp)
    return result


def goals(r: dict[str, Any]) -> dict[str, bool]:
    second, back = r.get("second_instance_s"), r.get("back_to_min_s")
    return {
        "second_instance_within_30s": second is not None and second <= GOALS["second_instance_s"],
        # Back at MinSize counts only after a scale-out: without one there was nothing to undo.
        "back_to_min_within_5min": bool(r.get("scaled_out"))
        and back is not None
        and back <= GOALS["back_to_min_s"],
        "no_failed_requests": r.get("failed_requests") == GOALS["failed_requests"],
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str, sub: str | None = None) -> float | None:
        values = [r[key][sub] if sub else r[key] for r in runs]
        return median(v for v in values if v is not None)

    return {
        "runs": len(runs),
        "scaled_out": sum(1 for r in runs if r["scaled_out"]),
        "second_instance_s": med("second_instance_s"),
        "peak_instances": med("peak_instances"),
        "before_rps": med("before", "rps"),
        "before_p99_ms": med("before", "p99_ms"),
        "after_rps": med("after", "rps"),
        "after_p99_ms": med("after", "p99_ms"),
        "back_to_min_s": med("back_to_min_s"),
        "failed_requests": sum(r["failed_requests"] for r in runs),
        "goals": {g: all(r["goals"][g] for r in runs) for g in runs[0]["goals"]} if runs else {},
    }


def report(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"Auto scaling: MinSize {MIN_SIZE}, MaxSize {MAX_SIZE} (nothing else set); "
        f"{c['idle_s']:.0f} s idle, then wrk -t{THREADS} -c{CONNECTIONS} through HAProxy for "
        f"{c['hold_s']:.0f} s in {SEGMENT_S:.0f} s segments ({c['app']}: ~10 ms CPU a request)",
        f"{'run':<5}{'2nd instance s':>15}{'peak':>6}{'before req/s':>14}{'p99 ms':>8}"
        f"{'after req/s':>13}{'p99 ms':>8}{'back to min s':>15}{'failed':>8}",
    ]
    for r in result["runs"]:
        b, a = r["before"], r["after"]
        second = fmt(r["second_instance_s"], ".1f") if r["scaled_out"] else "no scale-out"
        back = fmt(r["back_to_min_s"], ".1f") if r["back_to_min_s"] is not None else "> 600"
        lines.append(
            f"{r['run']:<5}{second:>15}{r['peak_instances']:>6}{fmt(b['rps'], '.0f'):>14}"
            f"{fmt(b['p99_ms'], '.0f'):>8}{fmt(a['rps'], '.0f'):>13}{fmt(a['p99_ms'], '.0f'):>8}"
            f"{back:>15}{r['failed_requests']:>8}"
        )
    s = result["summary"]
    if len(result["runs"]) > 1:
        lines.append(
            f"{'med':<5}{fmt(s['second_instance_s'], '.1f'):>15}"
            f"{fmt(s['peak_instances'], 'g'):>6}{fmt(s['before_rps'], '.0f'):>14}"
            f"{fmt(s['before_p99_ms'], '.0f'):>8}{fmt(s['after_rps'], '.0f'):>13}"
            f"{fmt(s['after_p99_ms'], '.0f'):>8}{fmt(s['back_to_min_s'], '.1f'):>15}"
            f"{s['failed_requests']:>8}"
        )
    lines.append(
        "before: median of the segments that ended before the second instance answered (all "
        "of them without a scale-out); after: of those that started once the peak was reached"
    )
    for r in result["runs"]:
        prefix = f"run {r['run']}: "
        if not r["scaled_out"]:
            lines.append(
                prefix
                + f"did not scale out (in service at most {r['peak_instances']}"
                + (
                    "; the server reports no `autoscaling` field)"
                    if not r["autoscaling_field"]
                    else ")"
                )
            )
        if len(r["by_instances"]) > 1:
            lines.append(
                prefix
                + "segments with a steady count, by instances in service: "
                + "; ".join(
                    f"{k}: {fmt(v['rps'], '.0f')} req/s, p99 {fmt(v['p99_ms'], '.0f')} ms "
                    f"({v['segments']})"
                    for k, v in r["by_instances"].items()
                )
            )
        if r["failed_requests"]:
            lines.append(
                prefix + f"failed: {r['wrk_errors']} wrk errors, {r['failed_probes']} of "
                f"{r['probes']} probes {r['failed_probes_sample']}"
            )
        for d in r["decisions"][:12]:
            lines.append(prefix + f"decision at +{fmt(d['t'], '.0f')} s: {d['message']}")
        if not r["decisions"]:
            scaling = [e for e in r["events"] if "scal" in e["message"].lower()]
            for e in scaling[:8]:
                lines.append(prefix + f"event at +{fmt(e['t'], '.0f')} s: {e['message']}")
        if r.get("leaked_processes"):
            lines.append(prefix + f"LEAKED (stopped by pid): {r['leaked_processes']}")
    labels = {
        "second_instance_within_30s": "second instance serving within 30 s",
        "back_to_min_within_5min": "back at MinSize within 5 minutes",
        "no_failed_requests": "0 failed requests",
    }
    for key, label in labels.items():
        met = sum(1 for r in result["runs"] if r["goals"][key])
        verdict = "met" if met == len(result["runs"]) else "not met"
        if len(result["runs"]) > 1:
            verdict += f" (in {met} of {len(result['runs'])} runs)"
        elif met == 0 and key != "no_failed_requests" and not result["runs"][0]["scaled_out"]:
            verdict += " (did not scale out)"
        lines.append(f"goal: {label + ':':<40} {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="whole scenarios, each fresh")
    parser.add_argument("--hold", type=float, help="seconds of load (default 120)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a 60 s hold")
    args = parser.parse_args(argv)
    if args.hold is None:
        args.hold = 60.0 if args.quick else 120.0
    if args.runs < 1 or args.hold < SEGMENT_S:
        parser.error(f"--runs must be at least 1 and --hold at least {SEGMENT_S:g}")
    wrk = require_wrk()
    print(
        f"auto scaling: {args.runs} run(s), {IDLE_S:.0f} s idle, {args.hold:.0f} s of load, "
        f"then up to {SETTLE_DEADLINE_S / 60:.0f} min back to MinSize",
        flush=True,
    )
    result: dict[str, Any] = {
        "benchmark": "autoscale",
        "config": {
            "runs": args.runs,
            "hold_s": args.hold,
            "idle_s": IDLE_S,
            "segment_s": SEGMENT_S,
            "wrk_threads": THREADS,
            "wrk_connections": CONNECTIONS,
            "probe_interval_s": {"load": PROBE_UNDER_LOAD_S, "otherwise": PROBE_IDLE_S},
            "poll_interval_s": POLL_S,
            "settle_deadline_s": SETTLE_DEADLINE_S,
            "settings": SETTINGS,
            "app": str(APP.relative_to(ROOT)),
            "goals": GOALS,
        },
        "machine": machine(),
        "runs": [],
    }
    with beanpole_home("autoscale") as tmp:
        for n in range(1, args.runs + 1):
            result["runs"].append(run_once(n, wrk, args.hold, tmp))
    result["summary"] = summarize(result["runs"])
    print(report(result))
    path = write_result("autoscale", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
