"""What HAProxy in front of an app costs: throughput, latency and CPU per request, HTTP and TLS.

    python -m bench.lb_overhead [--rounds 5] [--seconds 5] [--connections 24]
                                [--modes lb,lb-rules,lb-new,tls,tls-new,direct1,direct3]
                                [--quick]

One Beanpole server, one environment of three instances of a tiny asyncio app
(`bench/apps/tiny`). The same load (wrk, fixed connection count) is sent several ways,
interleaved round by round in a rotating order (``--modes`` picks some; default all):

- ``lb``:      through Beanpole's HAProxy over HTTP (``Host: <env>.localhost``), keep-alive;
  HAProxy balances over the 3;
- ``lb-rules``: ``lb`` while the environment has listener rules (`RULES`: 4 path rules and a
  host rule, none matching, so every request is checked against all 5 and then goes to the
  default process, as most of a real environment's requests do); the rules are set with
  ``beanpole config`` before each such run and removed after it (a reload each way, outside
  the measured seconds): what routing by rules costs HAProxy per request;
- ``lb-new``:  the same with a new TCP connection per request (``Connection: close``); HAProxy
  then opens a new connection to the instance for each request too (its backend counters,
  ``connect`` and ``reuse``, are read around every run through it and recorded);
- ``tls``:     through HAProxy's HTTPS listener, keep-alive: TLS record cost only;
- ``tls-new``: HTTPS with a new TCP connection and TLS handshake per request
  (``Connection: close``). wrk keeps each connection slot's TLS session and offers it on the
  next connect (OpenSSL's ``SSL_clear`` keeps it), and HAProxy accepts it (TLS 1.3 session
  tickets, on by default): so after the first handshake of each slot these are *resumed*
  handshakes (PSK with an ephemeral key exchange, no certificate signature), not full ones.
  HAProxy's own counters (``ssl_sess``, ``ssl_reused_sess``) are read around every TLS run and
  recorded, so the JSON says how many of each there were. (Measured aside, full handshakes
  cost HAProxy about the same CPU as resumed ones here: bench/README.md, ``lb_overhead``.);
- ``direct1``: straight to one instance's port;
- ``direct3``: straight to the three instances, wrk's threads spread over them (the same
  round robin, without the proxy).

TLS: the bench makes its own certificate (ECDSA P-256, self-signed, for the environment's
name ``lbbench.localhost``), stores it with ``beanpole certs add`` and creates the environment
with ``aws:elbv2:listener:443:SSLCertificateArns`` naming it. HAProxy picks the certificate by
SNI, and wrk sends the URL's host name as SNI; ``lbbench.localhost`` does not resolve here,
so wrk runs in a private mount namespace whose ``/etc/hosts`` maps it to 127.0.0.1
(``unshare --mount`` then ``mount --bind``; wrk is still this process's child, so its CPU is
still counted from RUSAGE_CHILDREN). Before measuring, one handshake from Python's ssl module
(SNI ``lbbench.localhost`` to 127.0.0.1) checks that the certificate served is the bench's
(same serial) and records the protocol and cipher negotiated (same OpenSSL as wrk's). Without
``unshare`` (or if the mount fails) wrk gets ``https://127.0.0.1:PORT/`` and a ``Host:``
header: no SNI, HAProxy's self-signed default certificate; the result then says
``"sni": false`` and the printed summary says so.

wrk offers no ALPN, so HTTPS is HTTP/1.1 as HTTP is.

Per run: requests/s, latency p50/p90/p99 (wrk's own histogram: from a request's first write to
its answer, so the ``-new`` modes' latency leaves out connect and handshake; their req/s do not),
and the CPU time each party used (/proc/<pid>/stat utime+stime) divided by the requests:
HAProxy's workers, the app instances, the Beanpole server (which receives one log line per
proxied request, sampled at high rates) and wrk itself, and their total. The two cores are
shared by all of them, so the ratios matter more than the absolute figures: lb/direct (req/s,
latency) and tls/lb, tls-new/lb-new (HAProxy's CPU per request), each paired within a round.
Results: ``bench/results/lb_overhead-<time>.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import socket
import ssl
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
HOST = f"{ENV}.localhost"  # the environment's CNAME, which the certificate names
CERT_NAME = "lbbench"
INSTANCES = 3
MODES = ("lb", "lb-rules", "lb-new", "tls", "tls-new", "direct1", "direct3")
_RULE = "aws:elbv2:listenerrule"
RULES = {
    **{f"{_RULE}:r{n}:PathPatterns": f"/r{n}/*,/v{n}/*.json" for n in range(1, 5)},
    **{f"{_RULE}:r{n}:Priority": str(n) for n in range(1, 5)},
    f"{_RULE}:host:HostHeaders": "admin.lbbench.test,*.internal.test",
    f"{_RULE}:host:Priority": "5",
}
TLS_MODES = ("tls", "tls-new")
NEW_CONNECTION_MODES = ("lb-new", "tls-new")
MODE_TITLES = {
    "lb": f"HAProxy HTTP keep-alive ({INSTANCES} inst.)",
    "lb-rules": "HAProxy HTTP keep-alive, 5 rules",
    "lb-new": "HAProxy HTTP, new conn./request",
    "tls": "HAProxy HTTPS keep-alive",
    "tls-new": "HAProxy HTTPS, new conn./request",
    "direct1": "direct, 1 instance",
    "direct3": f"direct, round robin over {INSTANCES}",
}
COMPONENTS = ("haproxy", "app", "server", "wrk")
# (numerator, denominator) of the ratios paired within a round
TLS_RATIOS = (("tls", "lb"), ("tls-new", "lb-new"), ("lb-rules", "lb"))
Pair = tuple[dict[str, Any], dict[str, Any]]  # runs of two modes in one round


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


# -- TLS: the bench's certificate, the check of what HAProxy serves, SNI for wrk -----------------


def make_certificate(folder: Path) -> tuple[Path, Path, int]:
    """A self-signed ECDSA P-256 certificate for `HOST` (Beanpole's own maker, valid past
    `certs add`'s 30-day expiry warning): (cert PEM, key PEM, serial)."""
    from cryptography import x509

    from beanpole.core.certificates import self_signed

    pem = self_signed(HOST, days=90)
    cut = pem.index("-----BEGIN PRIVATE KEY-----")
    cert_path, key_path = folder / "lbbench.crt", folder / "lbbench.key"
    cert_path.write_text(pem[:cut])
    key_path.write_text(pem[cut:])
    key_path.chmod(0o600)
    return cert_path, key_path, x509.load_pem_x509_certificate(pem[:cut].encode()).serial_number


def tls_handshake(port: int, sni: str | None) -> dict[str, Any]:
    """One HTTPS request to 127.0.0.1:``port`` from Python's ssl module (no ALPN, as wrk):
    the certificate served, the protocol and cipher negotiated, the answer's status."""
    from cryptography import x509

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed: compared by serial instead
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname=sni) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        protocol, cipher = tls.version(), tls.cipher()
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    status_line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    return {
        "sni": sni,
        "served_serial": cert.serial_number,
        "served_subject": cert.subject.rfc4514_string(),
        "protocol": protocol,
        "cipher": cipher[0] if cipher else None,
        "status": int(status_line.split()[1]) if len(status_line.split()) > 1 else None,
    }


def sni_wrapper(folder: Path) -> tuple[list[str] | None, str | None]:
    """The command prefix that runs a program where `HOST` resolves to 127.0.0.1, or None
    and why not.

    A private mount namespace (``unshare --mount``, private propagation by default) with a
    copy of /etc/hosts plus `HOST` bind-mounted over it; the mount vanishes with the
    namespace. ``unshare`` and ``sh`` exec in turn, so the program keeps their pid and stays
    this process's child (RUSAGE_CHILDREN still counts it).
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "unshare is not installed"
    hosts = folder / "hosts"
    try:
        original = Path("/etc/hosts").read_text()
    except OSError:
        original = "127.0.0.1 localhost\n"
    hosts.write_text(f"{original.rstrip()}\n127.0.0.1 {HOST}\n")
    hosts.chmod(0o644)
    prefix = [
        unshare,
        "--mount",
        "--",
        "sh",
        "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"',
        str(hosts),
    ]
    try:
        probe = subprocess.run(
            [*prefix, "getent", "hosts", HOST],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"unshare failed: {exc!r}"
    if probe.returncode != 0 or "127.0.0.1" not in probe.stdout:
        return None, (
            f"unshare --mount / mount --bind failed (exit {probe.returncode}): "
            f"{(probe.stderr or probe.stdout).strip()[:300]}"
        )
    return prefix, None


def setup_tls(bp: Beanpole, folder: Path, serial: int) -> dict[str, Any]:
    """Check what HAProxy serves for `HOST` and arrange wrk's SNI; the ``tls`` result entry
    (plus ``wrapper``, the command prefix for wrk, popped by the caller)."""

    def served() -> dict[str, Any] | None:
        check = tls_handshake(bp.https_port, HOST)
        return check if check["status"] == 200 and check["served_serial"] == serial else None

    by_sni = wait_for(
        served, 15, f"HAProxy to serve the bench's certificate for SNI {HOST} and answer 200"
    )
    no_sni = tls_handshake(bp.https_port, None)
    wrapper, why_not = sni_wrapper(folder)
    if wrapper is None and no_sni["status"] != 200:
        raise RuntimeError(f"without SNI HAProxy answered {no_sni}: the fallback cannot work")
    return {
        "sni": wrapper is not None,
        "sni_fallback_reason": why_not,
        "certificate": {
            "name": CERT_NAME,
            "key": "ECDSA P-256",
            "subject": by_sni["served_subject"],
            "serial": str(serial),
        },
        # the handshake with SNI: our certificate, and what was negotiated
        "check_with_sni": {**by_sni, "served_serial": str(by_sni["served_serial"])},
        "bench_certificate_served_by_sni": by_sni["served_serial"] == serial,
        # and without: HAProxy's default certificate (what the fallback measures)
        "check_without_sni": {**no_sni, "served_serial": str(no_sni["served_serial"])},
        "protocol": (by_sni if wrapper else no_sni)["protocol"],
        "cipher": (by_sni if wrapper else no_sni)["cipher"],
        "wrapper": wrapper,
    }


def haproxy_counters(home: Path) -> dict[str, int] | None:
    """HAProxy's counters (``show stat``) this bench reads around each run through it: TLS
    handshakes on the frontends, full (``ssl_sess``), resumed (``ssl_reused_sess``) and failed,
    and connections to the instances on the environment's backend, new (``connect``) and
    reused (``reuse``)."""
    from beanpole.adapters.lb.haproxy import HAProxy
    from beanpole.core.lb.config import backend_id

    try:
        text = HAProxy(home / "haproxy").runtime("show stat -1 3 -1")  # frontends, backends
    except Exception:
        return None
    lines = text.splitlines()
    if not lines:
        return None
    header = lines[0].lstrip("# ").split(",")
    totals = dict.fromkeys(("full", "resumed", "failed", "backend_new", "backend_reused"), 0)
    frontend = {"full": "ssl_sess", "resumed": "ssl_reused_sess", "failed": "ssl_failed_handshake"}
    backend = {"backend_new": "connect", "backend_reused": "reuse"}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("svname") == "FRONTEND":
            fields = frontend
        elif row.get("svname") == "BACKEND" and row.get("pxname") == backend_id(ENV):
            fields = backend
        else:
            continue
        for key, field in fields.items():
            if (row.get(field) or "").isdigit():
                totals[key] += int(row[field])
    return totals


# -- the load -------------------------------------------------------------------------------------


class Target:
    """The running environment: where to send load and whose CPU to count."""

    def __init__(self, bp: Beanpole, sni_wrapper: list[str] | None = None) -> None:
        self.bp = bp
        self.sni_wrapper = sni_wrapper
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

    def url_and_targets(self, mode: str) -> tuple[str, list[str], list[str], list[str]]:
        """URL for wrk, WRK_TARGETS, extra headers, a command prefix for wrk."""
        close = ["-H", "Connection: close"] if mode in NEW_CONNECTION_MODES else []
        if mode in ("lb", "lb-rules", "lb-new"):
            return (
                f"http://127.0.0.1:{self.bp.lb_port}/",
                [],
                ["-H", f"Host: {HOST}:{self.bp.lb_port}", *close],
                [],
            )
        if mode in TLS_MODES:
            port = self.bp.https_port
            if self.sni_wrapper:  # wrk sends the URL's host as SNI and Host
                return f"https://{HOST}:{port}/", [], close, self.sni_wrapper
            return f"https://127.0.0.1:{port}/", [], ["-H", f"Host: {HOST}:{port}", *close], []
        addresses = [address for _, address, _ in self.instances]
        if mode == "direct1":
            return f"http://{addresses[0]}/", [], [], []
        return f"http://{addresses[0]}/", addresses, [], []


def run_wrk(
    wrk: str, target: Target, mode: str, seconds: float, threads: int, connections: int
) -> dict[str, Any]:
    url, targets, headers, prefix = target.url_and_targets(mode)
    pids = target.pids()
    via_lb = mode not in ("direct1", "direct3")
    counters_before = haproxy_counters(target.bp.home) if via_lb else None
    before = {name: cpu_total(p) for name, p in pids.items()}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        [
            *prefix,
            *wrk_argv(
                wrk, url, seconds=seconds, threads=threads, connections=connections, headers=headers
            ),
        ],
        env={**os.environ, "WRK_TARGETS": ",".join(targets)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    wall = time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = {name: cpu_total(p) for name, p in target.pids().items()}
    counters_after = haproxy_counters(target.bp.home) if via_lb else None
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stdout}\n{proc.stderr}")
    report = json.loads(line.removeprefix("WRK_JSON "))
    requests = report["requests"]
    cpu = {name: after[name] - before[name] for name in before}
    cpu["wrk"] = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    cpu_total_s = sum(cpu.values())
    errors = sum(report["errors"].values())
    row: dict[str, Any] = {
        "mode": mode,
        "url": url,
        "headers": headers[1::2],
        "requests": requests,
        "errors": report["errors"],
        "error_count": errors,
        "seconds": report["duration_us"] / 1e6,
        "rps": requests / (report["duration_us"] / 1e6),
        "latency_us": report["latency_us"],
        "cpu_s": {**{k: round(v, 3) for k, v in cpu.items()}, "total": round(cpu_total_s, 3)},
        "cpu_us_per_request": {
            k: (v * 1e6 / requests if requests else None)
            for k, v in {**cpu, "total": cpu_total_s}.items()
        },
        "busy_cores": round(cpu_total_s / wall, 2),
        # A reload mid-run would swap HAProxy's workers and lose their CPU time.
        "haproxy_workers_changed": pids["haproxy"] != target.pids()["haproxy"],
    }
    if counters_before is not None and counters_after is not None:
        delta = {k: counters_after[k] - counters_before[k] for k in counters_before}
        # connections HAProxy opened to the instances, and requests sent on one it kept
        row["backend_connections"] = {
            "new": delta["backend_new"],
            "reused": delta["backend_reused"],
        }
        if mode in TLS_MODES:
            # HAProxy's frontend counters: handshakes made during the run. "failed" are the
            # connections wrk closes mid-handshake when its time is up (it counts no error).
            row["tls_handshakes"] = {k: delta[k] for k in ("full", "resumed", "failed")}
    return row


def check_routing(bp: Beanpole, ids: set[str]) -> None:
    """The LB answers for the environment, and from every instance (it does balance)."""
    seen: set[str] = set()

    def all_seen() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", bp.lb_port, timeout=5)
        try:
            conn.request("GET", "/", headers={"Host": HOST})
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
    modes: tuple[str, ...] = MODES,
    log: Any = print,
) -> dict[str, Any]:
    wrk = require_wrk()
    tls_wanted = any(m in TLS_MODES for m in modes)
    result: dict[str, Any] = {
        "benchmark": "lb_overhead",
        "config": {
            "rounds": rounds,
            "seconds": seconds,
            "threads": threads,
            "connections": connections,
            "instances": INSTANCES,
            "modes": list(modes),
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
            settings: list[str] = []
            serial = 0
            if tls_wanted:
                cert, key, serial = make_certificate(tmp)
                bp.cli("certs", "add", CERT_NAME, "--cert", str(cert), "--key", str(key))
                settings = ["--setting", f"aws:elbv2:listener:443:SSLCertificateArns={CERT_NAME}"]
            bp.cli(
                "create",
                ENV,
                "--app",
                "tiny",
                "--source",
                str(APP),
                "--scale",
                str(INSTANCES),
                *settings,
            )
            log(f"  environment of {INSTANCES} instances ready in {time.monotonic() - t0:.1f} s")
            wrapper = None
            if tls_wanted:
                tls = setup_tls(bp, tmp, serial)
                wrapper = tls.pop("wrapper")
                result["tls"] = tls
                log("  " + tls_line(tls))
            target = Target(bp, wrapper)
            check_routing(bp, {i for i, _, _ in target.instances})
            master, workers = haproxy_pids(bp.home)
            result["haproxy"] = {
                "master": master,
                "workers": workers,
                "info": _haproxy_info(bp.home),
            }
            for mode in modes:  # warm-up: connections, caches, CPU frequency; discarded
                row = measure(bp, wrk, target, mode, 1, threads, connections)
                if row["cpu_s"]["wrk"] <= 0:  # e.g. if the unshare wrapper hid wrk's CPU
                    raise RuntimeError(f"wrk's CPU was not counted in mode {mode}: {row}")
            for r in range(rounds):
                order = modes[r % len(modes) :] + modes[: r % len(modes)]
                for mode in order:
                    row = measure(bp, wrk, target, mode, seconds, threads, connections)
                    row["round"] = r + 1
                    result["runs"].append(row)
                    hs = row.get("tls_handshakes")
                    log(
                        f"  round {r + 1}/{rounds} {mode:<8} {row['rps']:>9.0f} req/s  "
                        f"p50 {row['latency_us']['p50']:>5} µs  "
                        f"p99 {row['latency_us']['p99']:>6} µs"
                        f"  haproxy {fmt(row['cpu_us_per_request']['haproxy'], '.1f')} µs/req"
                        f"  total {fmt(row['cpu_us_per_request']['total'], '.1f')} µs/req"
                        + (f"  handshakes {hs['full']} full {hs['resumed']} resumed" if hs else "")
                        + (f"  ERRORS {row['errors']}" if row["error_count"] else "")
                    )
        finally:
            result["leaked_processes"] = stop_and_check(bp)
    result["summary"] = summarize(result["runs"], modes)
    return result


def measure(
    bp: Beanpole, wrk: str, target: Target, mode: str, seconds: float, threads: int, conns: int
) -> dict[str, Any]:
    """One run; ``lb-rules`` with the environment's listener rules set for its duration."""
    if mode != "lb-rules":
        return run_wrk(wrk, target, mode, seconds, threads, conns)
    bp.cli("config", ENV, *(f"{k}={v}" for k, v in RULES.items()))
    try:
        return run_wrk(wrk, target, mode, seconds, threads, conns)
    finally:
        bp.cli("config", ENV, *(f"{k}=" for k in RULES))


def tls_line(tls: dict[str, Any]) -> str:
    how = (
        f"SNI {HOST}: the bench's certificate (ECDSA P-256, serial matches), wrk resolves "
        f"{HOST} in a private mount namespace"
        if tls["sni"]
        else f"NO SNI ({tls['sni_fallback_reason']}): wrk sends Host only and gets HAProxy's "
        "self-signed default certificate"
    )
    return f"TLS: {how}; {tls['protocol']} {tls['cipher']}"


def _haproxy_info(home: Path) -> dict[str, str]:
    from beanpole.adapters.lb.haproxy import HAProxy

    try:
        text = HAProxy(home / "haproxy").runtime("show info")
    except Exception as exc:
        return {"error": repr(exc)}
    info = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return {k: info[k] for k in ("Version", "Nbthread", "Maxconn") if k in info}


def _paired(runs: list[dict[str, Any]], a: str, b: str) -> list[Pair]:
    """(run of mode a, run of mode b) of each round that has both (seconds apart)."""
    pairs = []
    for n in sorted({r["round"] for r in runs}):
        ra = next((r for r in runs if r["round"] == n and r["mode"] == a), None)
        rb = next((r for r in runs if r["round"] == n and r["mode"] == b), None)
        if ra and rb:
            pairs.append((ra, rb))
    return pairs


def _ratio(pairs: list[Pair], value: Any) -> float | None:
    """Median over rounds of value(a) / value(b)."""
    return median(
        value(a) / value(b) for a, b in pairs if value(a) is not None and value(b) not in (None, 0)
    )


def summarize(runs: list[dict[str, Any]], modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    by_mode: dict[str, Any] = {}
    for mode in modes:
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
                for c in (*COMPONENTS, "total")
            },
            "busy_cores": median(r["busy_cores"] for r in rows),
            "errors": sum(r["error_count"] for r in rows),
            "requests": sum(r["requests"] for r in rows),
        }
        backend = [r["backend_connections"] for r in rows if "backend_connections" in r]
        if backend:
            new = sum(b["new"] for b in backend)
            by_mode[mode]["backend_connections"] = {
                "new": new,
                "reused": sum(b["reused"] for b in backend),
                "new_per_request": new / by_mode[mode]["requests"] if rows else None,
            }
        handshakes = [r["tls_handshakes"] for r in rows if "tls_handshakes" in r]
        if handshakes:
            total = {k: sum(h[k] for h in handshakes) for k in handshakes[0]}
            made = total["full"] + total["resumed"]
            by_mode[mode]["tls_handshakes"] = {
                **total,
                "per_request": made / by_mode[mode]["requests"] if rows else None,
                "resumed_share": total["resumed"] / made if made else None,
            }
    ratios: dict[str, Any] = {}
    for other in ("direct1", "direct3"):
        pairs = _paired(runs, "lb", other)
        if pairs:  # paired within a round, then the median of the ratios
            ratios[f"lb/{other}"] = {
                "rps": _ratio(pairs, lambda r: r["rps"]),
                "p50": _ratio(pairs, lambda r: r["latency_us"]["p50"]),
                "p99": _ratio(pairs, lambda r: r["latency_us"]["p99"]),
            }
    for a, b in TLS_RATIOS:
        pairs = _paired(runs, a, b)
        if pairs:
            ratios[f"{a}/{b}"] = {
                "haproxy_cpu": _ratio(pairs, lambda r: r["cpu_us_per_request"]["haproxy"]),
                # the same as a difference, µs per request (less sensitive to the baseline)
                "haproxy_cpu_extra_us": median(
                    x["cpu_us_per_request"]["haproxy"] - y["cpu_us_per_request"]["haproxy"]
                    for x, y in pairs
                ),
                "total_cpu": _ratio(pairs, lambda r: r["cpu_us_per_request"]["total"]),
                "rps": _ratio(pairs, lambda r: r["rps"]),
                "p50": _ratio(pairs, lambda r: r["latency_us"]["p50"]),
            }
    return {"modes": by_mode, "ratios": ratios}


def report(result: dict[str, Any]) -> str:
    s = result["summary"]
    c = result["config"]
    lines = [
        f"Load balancer overhead: wrk -t{c['threads']} -c{c['connections']} -d{c['seconds']:g}s, "
        f"{c['rounds']} interleaved rounds, medians (min-max)",
    ]
    if "tls" in result:
        lines.append(tls_line(result["tls"]))
    lines.append(
        f"{'':<34}{'req/s':>22}{'p50 µs':>21}{'p99 µs':>22}   CPU µs/request: "
        f"{'haproxy':>7} {'app':>6} {'server':>6} {'wrk':>6} {'total':>6}"
    )

    def rng(x: dict[str, Any], spec: str) -> str:
        return f"{fmt(x['median'], spec)} ({fmt(x['min'], spec)}-{fmt(x['max'], spec)})"

    for mode in c.get("modes", MODES):
        m = s["modes"][mode]
        cpu = m["cpu_us_per_request"]
        lines.append(
            f"{MODE_TITLES[mode]:<34}{rng(m['rps'], '.0f'):>22}{rng(m['p50_us'], '.0f'):>21}"
            f"{rng(m['p99_us'], '.0f'):>22}   {'':<16}{fmt(cpu['haproxy'], '.1f'):>7} "
            f"{fmt(cpu['app'], '.1f'):>6} {fmt(cpu['server'], '.1f'):>6} "
            f"{fmt(cpu['wrk'], '.1f'):>6} {fmt(cpu['total'], '.1f'):>6}"
            + (f"   ERRORS: {m['errors']}" if m["errors"] else "")
        )
    for mode in c.get("modes", MODES):
        backend = s["modes"][mode].get("backend_connections")
        if backend:
            lines.append(
                f"{mode} HAProxy to the instances: {fmt(backend['new_per_request'], '.3f')} new "
                f"connections per request ({backend['new']} new, {backend['reused']} reused)"
            )
    for mode in c.get("modes", MODES):
        hs = s["modes"][mode].get("tls_handshakes")
        if hs:
            share = hs["resumed_share"]
            lines.append(
                f"{mode} TLS handshakes: {fmt(hs['per_request'], '.3f')} per request, "
                f"{hs['full']} full, {hs['resumed']} resumed"
                + (f" ({share * 100:.1f} % resumed)" if share is not None else "")
                + f", {hs['failed']} failed (wrk closing mid-handshake at its end)"
            )
    for key, r in s["ratios"].items():
        if "haproxy_cpu" in r:
            lines.append(
                f"ratio {key:<16}HAProxy CPU/request x{fmt(r['haproxy_cpu'])} "
                f"(+{fmt(r['haproxy_cpu_extra_us'], '.1f')} µs)   "
                f"total CPU/request x{fmt(r['total_cpu'])}   req/s x{fmt(r['rps'])}   "
                f"p50 x{fmt(r['p50'])}"
            )
        else:
            lines.append(
                f"ratio {key:<16}req/s x{fmt(r['rps'])}   p50 x{fmt(r['p50'])}   "
                f"p99 x{fmt(r['p99'])}"
            )
    if result.get("leaked_processes"):
        lines.append(f"LEAKED (stopped by pid): {result['leaked_processes']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=24)
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"comma-separated, run in this rotating order (default: {','.join(MODES)}; "
        "the figures before TLS: lb,direct1,direct3)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 2 s")
    args = parser.parse_args(argv)
    modes = tuple(dict.fromkeys(m.strip() for m in args.modes.split(",") if m.strip()))
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        parser.error(f"unknown mode(s) {', '.join(unknown) or '(none)'}; choose from {MODES}")
    if args.quick:
        args.rounds, args.seconds = 1, 2.0
    result = run(args.rounds, args.seconds, args.connections, modes=modes)
    print(report(result))
    path = write_result("lb_overhead", stamp(), result)
    print(f"written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
