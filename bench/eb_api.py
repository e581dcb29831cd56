"""What Elastic Beanstalk's API and S3 face cost on Beanpole, beside its REST API (issue 10).

    python -m bench.eb_api [--rounds 5] [--requests 200] [--upload-rounds 3] [--bundle-mib 64]
                           [--deploy-rounds 3] [--quick]

One Beanpole server (the EB endpoint on its own port), one environment of 2 instances of
`tests/apps/pid` (BakeTime 0, so a deploy's time is the path's, not the bake window's), an
access key, boto3 pointed at the EB endpoint. Three parts, each side by side in one run:

1. **What an API call costs the server.** Per round, in a rotating order, ``--requests``
   calls each of the REST API's ``GET /api/v1/environments`` (keep-alive ``http.client``,
   bearer token), EB's ``DescribeEnvironments`` and ``DescribeEvents(EnvironmentName=...)``
   (boto3, SigV4-signed, XML answers). The server's CPU (utime + stime of its pid) over each
   batch divided by the calls; the same less the server's idle rate (measured in each round
   with no call in flight) times the batch's duration. Latency per call: ``call`` is what the
   caller waits for (for boto3 that includes signing and parsing the XML, client CPU),
   ``wire`` from the request leaving to the answer read (botocore's ``before-send`` to
   ``before-parse``; for http.client the two are the same).
2. **Bundle upload.** One zip of ``--bundle-mib`` MiB (random, incompressible files, stored),
   made once. Per round, in a rotating order: (a) the REST upload exactly as the CLI makes it
   (`beanpole.client.Client.upload`: one streamed ``POST /applications/<app>/versions``, which
   also runs the intake: copy, sha256, zip checks), (b) S3 PutObject in one request, then
   (d) CreateApplicationVersion from that object, (c) S3 multipart as the eb CLI uploads
   (boto3 ``upload_file``, 7 MiB threshold, 5 MiB parts, 8 in parallel), then (d) from that
   object. Seconds, MB/s (10^6 bytes) and the server's CPU ms per MiB.
3. **`eb deploy`'s path vs `beanpole deploy`.** A code-only change (the VERSION file), from
   the start until the environment is Ready on the new version: (a) zip, S3 PutObject,
   CreateApplicationVersion, UpdateEnvironment, then DescribeEnvironments every 0.5 s (the
   CLI's own poll interval) until Ready; (b) ``beanpole deploy ENV --source DIR`` (a CLI
   process: start-up, zip, upload, deploy, follow the events). Rounds alternate a, b / b, a.
   Also when the server logged "Environment update completed successfully." (what is left
   is the client's polling) and that the load balancer then answers with the new version.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import statistics
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._common import (
    ROOT,
    Beanpole,
    beanpole_home,
    cpu_seconds,
    fmt,
    machine,
    spread,
    stamp,
    stop_and_check,
    write_result,
)

APP_DIR = ROOT / "tests" / "apps" / "pid"
APP = "ebbench"
ENV = "ebbench"
INSTANCES = 2
SETTINGS = {"beanpole:deploy:BakeTime": "0"}
REGION = "us-east-1"
MIB = 1 << 20
CALLS = ("rest_environments", "eb_describe_environments", "eb_describe_events")
UPLOADS = ("rest_upload", "s3_put", "cav_put", "s3_multipart", "cav_multipart")
DEPLOYS = ("eb_path", "beanpole_deploy")
WARMUP = 20
POLL_S = 0.5  # the beanpole CLI's poll interval (cli/main.py POLL_S)
BLOBS = 4  # random files in the bundle


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- clients --------------------------------------------------------------------------------


class WireTimer:
    """Times botocore's HTTP exchange: from ``before-send`` (signed, about to go) to
    ``before-parse`` (the answer's body read), leaving out boto3's own work around it."""

    def __init__(self, client: Any) -> None:
        self._sent = 0.0
        self.last = 0.0
        client.meta.events.register("before-send", self._before_send)
        client.meta.events.register("before-parse", self._before_parse)

    def _before_send(self, **_: Any) -> None:
        self._sent = time.perf_counter()

    def _before_parse(self, **_: Any) -> None:
        self.last = time.perf_counter() - self._sent


def boto_clients(bp: Beanpole) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config

    key = json.loads(bp.cli("keys", "create", "--json").stdout)
    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},  # a retry would hide a failure
        s3={"addressing_style": "path"},
        max_pool_connections=16,
    )
    kwargs = {
        "endpoint_url": bp.eb_endpoint,
        "region_name": REGION,
        "aws_access_key_id": key["access_key_id"],
        "aws_secret_access_key": key["secret_access_key"],
        "config": config,
    }
    return boto3.client("elasticbeanstalk", **kwargs), boto3.client("s3", **kwargs)


class RestCaller:
    """``GET /api/v1/environments`` on one keep-alive connection, as the CLI's token allows."""

    def __init__(self, bp: Beanpole) -> None:
        self.port = bp.api_port
        self.headers = {"Authorization": f"Bearer {(bp.home / 'token').read_text().strip()}"}
        self.conn: http.client.HTTPConnection | None = None

    def __call__(self) -> None:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            self.conn.request("GET", "/api/v1/environments", headers=self.headers)
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.status != 200 or ENV.encode() not in body:
            raise RuntimeError(f"GET /api/v1/environments: HTTP {response.status} {body[:200]!r}")
        if response.getheader("connection", "").lower() == "close":
            self.close()

    def reconnect(self) -> None:
        """A fresh connection, opened outside the timing: the server closes one left idle for
        5 s (uvicorn's keep-alive timeout), which the other batches of a round can exceed."""
        self.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.conn.connect()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# -- setup ----------------------------------------------------------------------------------


def variant(work: Path, label: str) -> Path:
    """A copy of the pid app whose only change is its VERSION file."""
    dest = work / f"src-{label}"
    shutil.copytree(APP_DIR, dest)
    (dest / "VERSION").write_text(f"{label}\n")
    return dest


def zip_folder(folder: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())
    return out.getvalue()


def make_bundle(work: Path, mib: int) -> Path:
    """A zip of about ``mib`` MiB: the pid app and ``BLOBS`` random files, stored (random bytes
    do not compress, and the stored method costs the client nothing to write)."""
    path = work / f"bundle-{mib}mib.zip"
    blob = (mib * MIB) // BLOBS
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for source in sorted(APP_DIR.iterdir()):
            z.write(source, source.name)
        for i in range(BLOBS):
            with z.open(f"data/blob{i}.bin", "w", force_zip64=True) as out:
                for _ in range(blob // MIB):
                    out.write(os.urandom(MIB))
    return path


# -- 1. API calls ---------------------------------------------------------------------------


def api_calls(
    bp: Beanpole, eb: Any, rounds: int, requests: int, idle_s: float, log: Any
) -> dict[str, Any]:
    pid = bp.server_pid()
    assert pid is not None
    rest = RestCaller(bp)
    wire = WireTimer(eb)
    events_returned: list[int] = []

    def describe_environments() -> None:
        envs = eb.describe_environments()["Environments"]
        if not any(e["EnvironmentName"] == ENV for e in envs):
            raise RuntimeError(f"DescribeEnvironments did not list {ENV}")

    def describe_events() -> None:
        events_returned.append(len(eb.describe_events(EnvironmentName=ENV)["Events"]))

    callers: dict[str, Callable[[], None]] = {
        "rest_environments": rest,
        "eb_describe_environments": describe_environments,
        "eb_describe_events": describe_events,
    }
    for call in callers.values():  # connections open, code paths warm
        for _ in range(WARMUP):
            call()

    batches: list[dict[str, Any]] = []
    latencies: dict[str, dict[str, list[float]]] = {k: {"call": [], "wire": []} for k in CALLS}
    idle: list[tuple[float, float]] = []  # (server CPU seconds, wall seconds)
    for r in range(rounds):
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        time.sleep(idle_s)
        idle.append((cpu_seconds(pid) - c0, time.perf_counter() - t0))
        order = CALLS[r % len(CALLS) :] + CALLS[: r % len(CALLS)]
        for kind in order:
            call, lat = callers[kind], latencies[kind]
            if kind == "rest_environments":
                rest.reconnect()
            c0, t0 = cpu_seconds(pid), time.perf_counter()
            for _ in range(requests):
                s = time.perf_counter()
                call()
                elapsed = time.perf_counter() - s
                lat["call"].append(elapsed)
                lat["wire"].append(elapsed if kind == "rest_environments" else wire.last)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds(pid) - c0
            batches.append(
                {
                    "round": r + 1,
                    "kind": kind,
                    "requests": requests,
                    "seconds": round(seconds, 4),
                    "server_cpu_s": round(cpu, 3),
                }
            )
        log(
            f"  calls round {r + 1}: "
            + ", ".join(
                f"{b['kind']} {1e6 * b['server_cpu_s'] / b['requests']:.0f} µs CPU/req"
                for b in batches[-len(CALLS) :]
            )
        )
    rest.close()

    idle_rate = sum(c for c, _ in idle) / sum(w for _, w in idle)
    for b in batches:
        b["server_cpu_us_per_req"] = round(1e6 * b["server_cpu_s"] / b["requests"], 1)
        net = b["server_cpu_s"] - idle_rate * b["seconds"]
        b["server_cpu_net_us_per_req"] = round(1e6 * net / b["requests"], 1)
    summary = {}
    for kind in CALLS:
        rows = [b for b in batches if b["kind"] == kind]
        lat = latencies[kind]
        summary[kind] = {
            "server_cpu_us_per_req": spread(b["server_cpu_us_per_req"] for b in rows),
            "server_cpu_net_us_per_req": spread(b["server_cpu_net_us_per_req"] for b in rows),
            "requests_per_s": spread(b["requests"] / b["seconds"] for b in rows),
            "call_ms": {
                "p50": 1e3 * statistics.median(lat["call"]),
                "p99": 1e3 * (_percentile(lat["call"], 0.99) or 0),
            },
            "wire_ms": {
                "p50": 1e3 * statistics.median(lat["wire"]),
                "p99": 1e3 * (_percentile(lat["wire"], 0.99) or 0),
            },
        }
    return {
        "idle": {
            "server_cpu_percent": round(100 * idle_rate, 2),
            "samples": [(round(c, 3), round(w, 3)) for c, w in idle],
        },
        "events_returned": spread(events_returned),
        "batches": batches,
        "summary": summary,
    }


# -- 2. uploads -----------------------------------------------------------------------------


def uploads(
    bp: Beanpole, eb: Any, s3: Any, bucket: str, bundle: Path, rounds: int, log: Any
) -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig

    from beanpole.client import Client

    pid = bp.server_pid()
    assert pid is not None
    size = bundle.stat().st_size
    info = json.loads((bp.home / "server.json").read_text())
    client = Client(info["url"], (bp.home / "token").read_text().strip(), timeout=600)
    transfer = TransferConfig(
        multipart_threshold=7 * MIB, multipart_chunksize=5 * MIB, max_concurrency=8
    )

    def measured(kind: str, r: int, fn: Callable[[], Any]) -> dict[str, Any]:
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        fn()
        seconds, cpu = time.perf_counter() - t0, cpu_seconds(pid) - c0
        return {
            "round": r,
            "kind": kind,
            "seconds": round(seconds, 3),
            "mb_per_s": round(size / 1e6 / seconds, 1),
            "server_cpu_s": round(cpu, 3),
            "server_cpu_ms_per_mib": round(1e3 * cpu / (size / MIB), 2),
        }

    def create_version(key: str, label: str) -> None:
        eb.create_application_version(
            ApplicationName=APP,
            VersionLabel=label,
            SourceBundle={"S3Bucket": bucket, "S3Key": key},
            Process=False,
        )

    def put(key: str) -> None:
        with bundle.open("rb") as f:
            s3.put_object(Bucket=bucket, Key=key, Body=f, ContentType="application/zip")

    def rest_upload(r: int) -> list[dict[str, Any]]:
        return [measured("rest_upload", r, lambda: client.upload(APP, bundle, f"rest-{r}"))]

    def s3_put(r: int) -> list[dict[str, Any]]:
        key = f"{APP}/put-{r}.zip"
        return [
            measured("s3_put", r, lambda: put(key)),
            measured("cav_put", r, lambda: create_version(key, f"put-{r}")),
        ]

    def s3_multipart(r: int) -> list[dict[str, Any]]:
        key = f"{APP}/multipart-{r}.zip"
        return [
            measured(
                "s3_multipart",
                r,
                lambda: s3.upload_file(str(bundle), bucket, key, Config=transfer),
            ),
            measured("cav_multipart", r, lambda: create_version(key, f"multipart-{r}")),
        ]

    steps = (rest_upload, s3_put, s3_multipart)
    runs: list[dict[str, Any]] = []
    try:
        for r in range(1, rounds + 1):
            i = (r - 1) % len(steps)
            for step in steps[i:] + steps[:i]:
                rows = step(r)
                runs += rows
                for row in rows:
                    log(
                        f"  upload round {r}: {row['kind']:<14} {row['seconds']:.2f} s, "
                        f"{row['mb_per_s']:.0f} MB/s, server {row['server_cpu_ms_per_mib']:.1f} "
                        "ms CPU/MiB"
                    )
            # what a client pays end to end for a version: upload + intake
            for via in ("put", "multipart"):
                up = next(x for x in runs if x["round"] == r and x["kind"] == f"s3_{via}")
                cav = next(x for x in runs if x["round"] == r and x["kind"] == f"cav_{via}")
                seconds, cpu = (
                    up["seconds"] + cav["seconds"],
                    up["server_cpu_s"] + cav["server_cpu_s"],
                )
                runs.append(
                    {
                        "round": r,
                        "kind": f"s3_{via}+cav",
                        "seconds": round(seconds, 3),
                        "mb_per_s": round(size / 1e6 / seconds, 1),
                        "server_cpu_s": round(cpu, 3),
                        "server_cpu_ms_per_mib": round(1e3 * cpu / (size / MIB), 2),
                    }
                )
    finally:
        client.close()
    kinds = (*UPLOADS, "s3_put+cav", "s3_multipart+cav")
    summary = {
        kind: {
            metric: spread(x[metric] for x in runs if x["kind"] == kind)
            for metric in ("seconds", "mb_per_s", "server_cpu_ms_per_mib")
        }
        for kind in kinds
    }
    return {"bundle_bytes": size, "runs": runs, "summary": summary}


# -- 3. deploys -----------------------------------------------------------------------------


def _completed_at(eb: Any, since: float, label: str) -> float | None:
    """When the server logged the update of ``label`` complete (epoch seconds)."""
    from datetime import datetime

    events = eb.describe_events(
        EnvironmentName=ENV, StartTime=datetime.fromtimestamp(since - 1).astimezone()
    )["Events"]
    done = [
        e["EventDate"].timestamp()
        for e in events
        if e["Message"] == "Environment update completed successfully."
        and e.get("VersionLabel") in (label, None)
        and e["EventDate"].timestamp() >= since - 0.01
    ]
    return min(done) if done else None


def _serving(bp: Beanpole, label: str) -> bool:
    try:
        status, body = bp.get(ENV)
        return status == 200 and json.loads(body).get("version") == label
    except (OSError, ValueError):
        return False


def eb_deploy(bp: Beanpole, eb: Any, s3: Any, bucket: str, source: Path, label: str) -> dict:
    key = f"{APP}/{label}.zip"
    phases: dict[str, float] = {}
    wall0, t0 = time.time(), time.perf_counter()
    body = zip_folder(source)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    phases["put"] = time.perf_counter() - t0
    eb.create_application_version(
        ApplicationName=APP,
        VersionLabel=label,
        SourceBundle={"S3Bucket": bucket, "S3Key": key},
        Process=False,
    )
    phases["create_version"] = time.perf_counter() - t0
    eb.update_environment(EnvironmentName=ENV, VersionLabel=label)
    phases["update_accepted"] = time.perf_counter() - t0
    polls, error, busy = 0, None, False
    deadline = time.monotonic() + 600
    while True:
        env = eb.describe_environments(EnvironmentNames=[ENV])["Environments"][0]
        polls += 1
        busy = busy or env["Status"] != "Ready"
        if env["Status"] == "Ready":
            if env.get("VersionLabel") == label:
                break
            if busy:  # the update ran and the environment is Ready on another version
                error = f"Ready on {env.get('VersionLabel')}, not {label}"
                break
        if time.monotonic() > deadline:
            error = f"not Ready after 600 s ({env['Status']})"
            break
        time.sleep(POLL_S)
    total = time.perf_counter() - t0
    return {"wall0": wall0, "seconds": total, "phases": phases, "polls": polls, "error": error}


def cli_deploy(bp: Beanpole, source: Path, label: str) -> dict:
    wall0, t0 = time.time(), time.perf_counter()
    proc = bp.cli("deploy", ENV, "--source", str(source), "--label", label, check=False)
    total = time.perf_counter() - t0
    error = None if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr[-300:]}"
    return {"wall0": wall0, "seconds": total, "phases": {}, "error": error}


def deploys(
    bp: Beanpole, eb: Any, s3: Any, bucket: str, work: Path, rounds: int, log: Any
) -> dict[str, Any]:
    pid = bp.server_pid()
    assert pid is not None
    runs: list[dict[str, Any]] = []
    for r in range(1, rounds + 1):
        order = DEPLOYS if r % 2 else DEPLOYS[::-1]
        for kind in order:
            label = f"{'eb' if kind == 'eb_path' else 'bp'}-{r}"
            source = variant(work, label)
            c0 = cpu_seconds(pid)
            if kind == "eb_path":
                row = eb_deploy(bp, eb, s3, bucket, source, label)
            else:
                row = cli_deploy(bp, source, label)
            row["server_cpu_s"] = round(cpu_seconds(pid) - c0, 3)
            shutil.rmtree(source, ignore_errors=True)
            done = _completed_at(eb, row["wall0"], label)
            row.update(
                kind=kind,
                round=r,
                label=label,
                seconds=round(row["seconds"], 3),
                phases={k: round(v, 3) for k, v in row["phases"].items()},
                server_done=round(done - row["wall0"], 3) if done else None,
                serving_new=_serving(bp, label),
            )
            row["after_done"] = (
                round(row["seconds"] - row["server_done"], 3) if row["server_done"] else None
            )
            runs.append(row)
            phases = ", ".join(f"{k} {v:.2f}" for k, v in row["phases"].items())
            log(
                f"  deploy round {r}: {kind:<16} Ready after {row['seconds']:.2f} s "
                f"(server done at {fmt(row['server_done'])} s{', ' + phases if phases else ''})"
                f"{'' if row['serving_new'] else '  NOT SERVING THE NEW VERSION'}"
                f"{'  ERROR ' + row['error'] if row['error'] else ''}"
            )
    summary = {
        kind: {
            **{
                metric: spread(
                    x[metric] for x in runs if x["kind"] == kind and x[metric] is not None
                )
                for metric in ("seconds", "server_done", "after_done", "server_cpu_s")
            },
            "failed": sum(1 for x in runs if x["kind"] == kind and x["error"]),
            "not_serving_new": sum(1 for x in runs if x["kind"] == kind and not x["serving_new"]),
        }
        for kind in DEPLOYS
    }
    return {"runs": runs, "summary": summary}


# -- the run --------------------------------------------------------------------------------


def run(
    rounds: int,
    requests: int,
    upload_rounds: int,
    bundle_mib: int,
    deploy_rounds: int,
    idle_s: float,
    log: Any = print,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "eb_api",
        "config": {
            "rounds": rounds,
            "requests": requests,
            "warmup": WARMUP,
            "idle_s": idle_s,
            "upload_rounds": upload_rounds,
            "bundle_mib": bundle_mib,
            "deploy_rounds": deploy_rounds,
            "instances": INSTANCES,
            "app": str(APP_DIR.relative_to(ROOT)),
            "settings": SETTINGS,
            "poll_s": POLL_S,
            "multipart": {"threshold_mib": 7, "chunk_mib": 5, "concurrency": 8},
        },
        "machine": machine(),
    }
    import boto3

    result["machine"]["boto3"] = boto3.__version__
    with beanpole_home("ebapi") as tmp:
        bp = Beanpole(tmp / "home")
        try:
            bp.start()
            settings = [a for k, v in SETTINGS.items() for a in ("--setting", f"{k}={v}")]
            t0 = time.perf_counter()
            bp.cli(
                "create",
                ENV,
                "--app",
                APP,
                "--source",
                str(variant(tmp, "v0")),
                "--label",
                "v0",
                "--scale",
                str(INSTANCES),
                *settings,
            )
            log(f"  created {ENV} ({INSTANCES} instances) in {time.perf_counter() - t0:.1f} s")
            eb, s3 = boto_clients(bp)
            bucket = eb.create_storage_location()["S3Bucket"]
            result["calls"] = api_calls(bp, eb, rounds, requests, idle_s, log)
            bundle = make_bundle(tmp, bundle_mib)
            try:
                result["uploads"] = uploads(bp, eb, s3, bucket, bundle, upload_rounds, log)
            finally:
                bundle.unlink(missing_ok=True)
            result["deploys"] = deploys(bp, eb, s3, bucket, tmp, deploy_rounds, log)
        finally:
            result["leaked_processes"] = stop_and_check(bp)
    return result


def report(result: dict[str, Any]) -> str:
    c = result["config"]

    def rng(x: dict[str, Any], spec: str = ".2f") -> str:
        return f"{fmt(x['median'], spec)} ({fmt(x['min'], spec)}-{fmt(x['max'], spec)})"

    lines = [
        f"EB API on Beanpole: 1 environment x {c['instances']} instances; medians over rounds "
        "(min-max)",
        f"1. API calls: {c['rounds']} rounds x {c['requests']} requests each, rotating order; "
        f"server idle {result['calls']['idle']['server_cpu_percent']:.2f} % of a core "
        "(subtracted in 'net')",
        f"{'call':<28}{'server µs CPU/req':>22}{'net of idle':>20}{'req/s':>18}"
        f"{'call p50/p99 ms':>18}{'wire p50/p99 ms':>18}",
    ]
    for kind, s in result["calls"]["summary"].items():
        lines.append(
            f"{kind:<28}{rng(s['server_cpu_us_per_req'], '.0f'):>22}"
            f"{rng(s['server_cpu_net_us_per_req'], '.0f'):>20}{rng(s['requests_per_s'], '.0f'):>18}"
            f"{s['call_ms']['p50']:>10.2f}/{s['call_ms']['p99']:<7.2f}"
            f"{s['wire_ms']['p50']:>10.2f}/{s['wire_ms']['p99']:<7.2f}"
        )
    if any(s["wire_ms"]["p50"] >= 35 for s in result["calls"]["summary"].values()):
        lines.append(
            "  (a wire p50 near 40 ms on keep-alive connections is Nagle's algorithm against "
            "delayed ACKs: the server's sockets lack TCP_NODELAY; bench/README.md)"
        )
    ev = result["calls"]["events_returned"]
    lines.append(
        f"  (DescribeEvents returned {fmt(ev['min'], '.0f')}-{fmt(ev['max'], '.0f')} events)"
    )
    up = result["uploads"]
    lines += [
        f"2. Bundle upload: {up['bundle_bytes'] / MIB:.1f} MiB zip, {c['upload_rounds']} round(s)",
        f"{'path':<28}{'seconds':>22}{'MB/s':>20}{'server ms CPU/MiB':>24}",
    ]
    names = {
        "rest_upload": "REST upload (+intake)",
        "s3_put": "S3 PutObject",
        "cav_put": "  CreateAppVersion",
        "s3_put+cav": "  = put + intake",
        "s3_multipart": "S3 multipart (5 MiB x 8)",
        "cav_multipart": "  CreateAppVersion",
        "s3_multipart+cav": "  = multipart + intake",
    }
    for kind, name in names.items():
        s = up["summary"][kind]
        lines.append(
            f"{name:<28}{rng(s['seconds']):>22}{rng(s['mb_per_s'], '.0f'):>20}"
            f"{rng(s['server_cpu_ms_per_mib']):>24}"
        )
    dep = result["deploys"]["summary"]
    lines += [
        f"3. Code-only deploy to Ready, {c['deploy_rounds']} round(s) each, alternating "
        f"(BakeTime {SETTINGS['beanpole:deploy:BakeTime']})",
        f"{'path':<28}{'Ready after s':>22}{'server done at s':>20}{'client after s':>18}"
        f"{'server CPU s':>20}",
    ]
    for kind, name in (("eb_path", "S3+CAV+Update+poll"), ("beanpole_deploy", "beanpole deploy")):
        s = dep[kind]
        problems = (f"  {s['failed']} FAILED" if s["failed"] else "") + (
            f"  {s['not_serving_new']} NOT SERVING NEW" if s["not_serving_new"] else ""
        )
        lines.append(
            f"{name:<28}{rng(s['seconds']):>22}{rng(s['server_done']):>20}"
            f"{rng(s['after_done']):>18}{rng(s['server_cpu_s']):>20}{problems}"
        )
    if result.get("leaked_processes"):
        lines.append(f"LEAKED (stopped by pid): {result['leaked_processes']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of API calls")
    parser.add_argument("--requests", type=int, default=200, help="calls of each kind a round")
    parser.add_argument("--upload-rounds", type=int, default=3)
    parser.add_argument("--bundle-mib", type=int, default=64)
    parser.add_argument("--deploy-rounds", type=int, default=3, help="deploys of each path")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 2 x 50 calls, 1 upload round of 16 MiB, 1 deploy each",
    )
    args = parser.parse_args(argv)
    idle_s = 2.0
    if args.quick:
        args.rounds, args.requests, args.upload_rounds = 2, 50, 1
        args.bundle_mib, args.deploy_rounds, idle_s = 16, 1, 1.0
    result = run(
        args.rounds, args.requests, args.upload_rounds, args.bundle_mib, args.deploy_rounds, idle_s
    )
    print(report(result))
    path = write_result("eb_api", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
