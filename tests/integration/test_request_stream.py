"""HAProxy's per-request lines, received and parsed by the server's listener.

A real HAProxy logs to the real UDP socket `lb.requests.bind` opens on loopback; the
test sends real requests and reads what arrived: one sample per request with its
environment, instance, status and latency; one line in N once the environment is sampled
1:N, each carrying N; access-log lines on disk, rotated by size.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import psutil

from beanpole.adapters.lb.haproxy import HAProxy
from beanpole.adapters.lb.requests import AccessLogs, Listener, RequestStream, bind
from beanpole.core.lb.config import Backend, HealthCheck, LoadBalancerSpec
from beanpole.core.metrics import NO_SERVER, Sample

from lbkit import App, free_port, haproxy_pid

CHECK = HealthCheck(interval_s=1, timeout_s=1, healthy_threshold=1, unhealthy_threshold=2)


async def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


async def _get(port: int, host: str, n: int, path: str = "/") -> list[int]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        return [(await client.get(path, headers={"Host": host})).status_code for _ in range(n)]


def _stream(tmp_path: Path, samples: list[Sample], max_bytes: int = 10 * 2**20) -> RequestStream:
    logs = AccessLogs(tmp_path / "access", max_bytes=max_bytes, backups=2)
    return RequestStream(samples.append, logs)


def _listener(stream: RequestStream) -> Listener:
    listener = Listener(bind(0), stream)
    listener.start()
    return listener


def test_every_request_becomes_a_sample_with_its_instance_status_and_latency(
    lb: HAProxy, apps: Callable[[str], App], tmp_path: Path
) -> None:
    one, two = apps("i-one"), apps("i-two")
    port = free_port()
    spec = LoadBalancerSpec(
        "127.0.0.1",
        port,
        (Backend("shop", ("shop.localhost",), CHECK, (one.server(), two.server())),),
    )
    samples: list[Sample] = []
    stream = _stream(tmp_path, samples)

    async def scenario() -> None:
        transport = _listener(stream)
        try:
            await asyncio.to_thread(lb.start, replace(spec, log_port=transport.port))
            statuses = await _get(port, "shop.localhost", 40)
            await _get(port, "nobody.localhost", 5)  # unknown hosts are not logged
            await _until(lambda: len(samples) >= 40, 10, "40 samples")
        finally:
            transport.close()
        assert statuses == [200] * 40

    asyncio.run(scenario())
    assert len(samples) == 40
    assert {s.env for s in samples} == {"shop"}
    assert {s.instance for s in samples} == {"i-one", "i-two"}
    assert all(s.status == 200 and s.weight == 1 and s.latency_ms >= 0 for s in samples)
    assert all(abs(s.at - time.time()) < 60 for s in samples)  # each carries its own time
    stream.flush()
    lines = (tmp_path / "access" / "shop.access.log").read_text().splitlines()
    assert len(lines) == 40
    assert lines[0].split()[2:5] == ["env-shop", lines[0].split()[3], "200"]
    assert lines[0].endswith('GET "/"')


def test_with_a_token_haproxys_lines_count_and_a_forged_datagram_does_not(
    lb: HAProxy, apps: Callable[[str], App], tmp_path: Path
) -> None:
    """Another local process can send the request port anything; without the token HAProxy
    starts its lines with, it feeds nothing (issue 14: health lines cannot be forged)."""
    one = apps("i-one")
    port = free_port()
    token = "0123456789abcdef0123"
    spec = LoadBalancerSpec(
        "127.0.0.1",
        port,
        (Backend("shop", ("shop.localhost",), CHECK, (one.server(),)),),
        log_token=token,
    )
    samples: list[Sample] = []
    logs = AccessLogs(tmp_path / "access", max_bytes=10 * 2**20, backups=2)
    stream = RequestStream(samples.append, logs, token=token)

    async def scenario() -> None:
        transport = _listener(stream)
        try:
            await asyncio.to_thread(lb.start, replace(spec, log_port=transport.port))
            await _get(port, "shop.localhost", 10)
            forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:  # what a forger would send: 500s for the instance, to fail its health
                for _ in range(50):
                    line = f'{int(time.time() * 1000)} env-shop i-one 500 3 - 10 ::1 GET "/"'
                    forger.sendto(line.encode(), ("127.0.0.1", transport.port))
            finally:
                forger.close()
            await _until(lambda: stream.received >= 60, 10, "60 lines")
        finally:
            transport.close()

    asyncio.run(scenario())
    assert len(samples) == 10 and {s.status for s in samples} == {200}
    assert stream.forged == 50


def test_haproxy_own_503_is_logged_with_no_server(lb: HAProxy, tmp_path: Path) -> None:
    port = free_port()
    spec = LoadBalancerSpec("127.0.0.1", port, (Backend("empty", ("empty.localhost",), CHECK, ()),))
    samples: list[Sample] = []
    stream = _stream(tmp_path, samples)

    async def scenario() -> None:
        transport = _listener(stream)
        try:
            await asyncio.to_thread(lb.start, replace(spec, log_port=transport.port))
            assert await _get(port, "empty.localhost", 3) == [503] * 3
            await _until(lambda: len(samples) >= 3, 10, "3 samples")
        finally:
            transport.close()

    asyncio.run(scenario())
    assert [(s.env, s.instance, s.status, s.weight) for s in samples] == [
        ("empty", NO_SERVER, 503, 1)
    ] * 3


def test_a_sampled_environment_sends_about_one_line_in_n_each_weighing_n(
    lb: HAProxy, apps: Callable[[str], App], tmp_path: Path
) -> None:
    app = apps("i-one")
    port = free_port()
    spec = LoadBalancerSpec(
        "127.0.0.1",
        port,
        (
            Backend("shop", ("shop.localhost",), CHECK, (app.server(),)),
            Backend("blog", ("blog.localhost",), CHECK, (app.server(),)),
        ),
    )
    samples: list[Sample] = []
    stream = _stream(tmp_path, samples)
    sent = 800

    def shop() -> list[Sample]:
        return [s for s in samples if s.env == "shop"]

    async def scenario() -> None:
        transport = _listener(stream)
        try:
            await asyncio.to_thread(lb.start, replace(spec, log_port=transport.port))
            worker = lb.runtime("show info")
            await asyncio.to_thread(lb.set_sampling, {"shop": 8, "blog": 1})
            await _get(port, "shop.localhost", sent)
            await _get(port, "blog.localhost", 50)  # not sampled: every request
            await _until(
                lambda: sum(1 for s in samples if s.env == "blog") >= 50, 10, "blog's samples"
            )
            sampled = shop()
            # 800 requests at 1:8 -> 100 lines expected; a binomial count stays inside 50..150
            assert {s.weight for s in sampled} == {8}
            assert 50 <= len(sampled) <= 150, len(sampled)
            # back to every request, at run time
            await asyncio.to_thread(lb.set_sampling, {"shop": 1})
            await _get(port, "shop.localhost", 40)
            await _until(lambda: len(shop()) >= len(sampled) + 40, 10, "every shop request")
            assert [s.weight for s in shop()[len(sampled) :]] == [1] * 40
            assert (
                lb.runtime("show info").split("Pid:")[1].split()[0]
                == (worker.split("Pid:")[1].split()[0])
            ), "changing the ratio must not reload HAProxy"
        finally:
            transport.close()

    asyncio.run(scenario())
    assert [s.weight for s in samples if s.env == "blog"] == [1] * 50


def test_access_logs_rotate_by_size_and_keep_a_bounded_number(tmp_path: Path) -> None:
    logs = AccessLogs(tmp_path, max_bytes=1000, backups=2)
    line = b"x" * 99 + b"\n"
    for _ in range(35):
        logs.write("shop", [line] * 3)  # 300 bytes a batch
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["shop.access.log", "shop.access.log.1", "shop.access.log.2"]
    assert all((tmp_path / n).stat().st_size <= 1200 for n in names)


def test_a_burst_while_the_server_is_busy_loses_no_line(
    lb: HAProxy, apps: Callable[[str], App], tmp_path: Path
) -> None:
    """The socket holds the lines of a pause: 300 requests while the event loop is blocked."""
    app = apps("i-one")
    port = free_port()
    spec = LoadBalancerSpec(
        "127.0.0.1", port, (Backend("shop", ("shop.localhost",), CHECK, (app.server(),)),)
    )
    samples: list[Sample] = []
    stream = _stream(tmp_path, samples)

    def burst() -> list[int]:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            return [
                client.get("/", headers={"Host": "shop.localhost"}).status_code for _ in range(300)
            ]

    async def scenario() -> None:
        listener = _listener(stream)
        try:
            await asyncio.to_thread(lb.start, replace(spec, log_port=listener.port))
            sender = threading.Thread(target=lambda: statuses.extend(burst()))
            sender.start()
            sender.join()  # deliberately blocks the event loop: nothing is read meanwhile
            assert statuses == [200] * 300
            await _until(lambda: len(samples) >= 300, 10, "every line of the burst")
        finally:
            listener.close()

    statuses: list[int] = []
    asyncio.run(scenario())
    assert len(samples) == 300


def test_haproxy_stays_idle_while_nobody_reads_its_request_lines(
    lb: HAProxy, apps: Callable[[str], App]
) -> None:
    """Regression: a ring forwarded to a socket nobody listens on made HAProxy 2.6 spin a
    core. Datagrams to a closed port cost nothing: the data plane idles while the server is
    down. (A measurement over a fixed span, not a wait for a condition.)"""
    app = apps("i-one")
    closed = bind(0)
    log_port = closed.getsockname()[1]
    closed.close()
    port = free_port()
    spec = LoadBalancerSpec(
        "127.0.0.1",
        port,
        (Backend("shop", ("shop.localhost",), CHECK, (app.server(),)),),
        log_port=log_port,
    )
    lb.start(spec)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        assert {
            client.get("/", headers={"Host": "shop.localhost"}).status_code for _ in range(50)
        } == {200}
    master = psutil.Process(haproxy_pid(lb))
    workers = master.children()
    before = sum(sum(w.cpu_times()[:2]) for w in workers)
    time.sleep(2.0)
    spent = sum(sum(w.cpu_times()[:2]) for w in workers) - before
    assert spent < 0.3, f"HAProxy used {spent:.2f} s of CPU in 2 s with nobody reading"
