"""Instances in network namespaces of their own, against real namespaces, veths and nft.

Root only (with ip and nft): skipped with the reason otherwise. Every namespace a test makes
is under a slot of this test's own temp owner, and each test stops what it started.
"""

from __future__ import annotations

import http.server
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from beanpole.adapters.runtime import netns
from beanpole.adapters.runtime.supervisord import Supervisor
from beanpole.adapters.runtime.usage import UsageSampler
from beanpole.core.runtime import InstanceSpec, ProcessStatus

pytestmark = pytest.mark.skipif(
    netns.unavailable() is not None,
    reason=f"network namespaces are not available here: {netns.unavailable()}",
)

PY = shlex.quote(sys.executable)
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    runtime = Supervisor(tmp_path / "sv", namespaces=netns.Namespaces())
    runtime.ensure_running()
    try:
        yield runtime
    finally:
        runtime.shutdown()


def spec(tmp_path: Path, instance_id: str, web: str, port: int = 8080) -> InstanceSpec:
    return InstanceSpec(
        instance_id=instance_id,
        processes={"web": web},
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        log_dir=tmp_path / "logs" / instance_id,
        stop_wait_s=5,
        listen_port=port,
    )


def exists(sandbox: netns.Sandbox) -> tuple[bool, bool]:
    """(namespace, host-side veth) present."""
    return sandbox.path.exists(), Path("/sys/class/net", sandbox.link).exists()


def answers(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2.0, trust_env=False)
    except httpx.HTTPError:
        return None


def running_pid(sup: Supervisor, instance_id: str) -> int:
    def web() -> int:
        observed = sup.observe().get(instance_id)
        process = observed.web if observed is not None else None
        return process.pid if process is not None and process.status is ProcessStatus.RUNNING else 0

    return wait_for(web, f"{instance_id} to run")


def test_an_instance_gets_a_namespace_that_its_stop_removes(sup, tmp_path):
    serve = (
        "echo port=$PORT host=$BEANPOLE_HOST_ADDRESS; "
        f"exec {PY} -m http.server $PORT --bind 127.0.0.1"
    )
    endpoint = sup.start(spec(tmp_path, "i-ns", serve))
    sandbox = sup.namespaces.sandbox(sup.owner, "i-ns")
    assert sandbox is not None and endpoint.isolated
    assert (endpoint.host, endpoint.port) == (sandbox.address, 8080)
    assert exists(sandbox) == (True, True)
    pid = running_pid(sup, "i-ns")
    # the process runs in the namespace, not in the host's network
    host_ns = Path("/proc/self/ns/net").readlink()
    assert Path(f"/proc/{pid}/ns/net").readlink() != host_ns
    assert wait_for(lambda: answers(endpoint.url("/")), "the instance to answer").status_code == 200
    assert f"port=8080 host={sandbox.host_address}" in sup.log_tail("i-ns", 10)
    # usage sampling follows the process whatever its network
    usage = UsageSampler().sample({"i-ns": [pid]})["i-ns"]
    assert usage.processes >= 1 and usage.rss_bytes > 0

    sup.stop("i-ns")
    assert exists(sandbox) == (False, False)
    # its address goes nowhere now (the blackhole route), not out of the default route
    assert answers(endpoint.url("/")) is None
    assert "i-ns" not in sup.namespaces.registry.slots(sup.owner)
    assert sup.endpoint("i-ns") is None


def test_instances_cannot_reach_each_other_but_reach_the_host(sup, tmp_path):
    server = sup.start(spec(tmp_path, "i-server", f"{PY} -m http.server 8080 --bind 0.0.0.0"))
    wait_for(lambda: answers(server.url("/")), "the server instance to answer")
    sup.start(spec(tmp_path, "i-client", fetch(shlex.quote(server.url("/")))))
    assert result(sup, "i-client").startswith("result=blocked")
    # a service on the host, listening on all its addresses, is reached at the host's address
    host_service = http.server.ThreadingHTTPServer(
        ("0.0.0.0", 0), http.server.SimpleHTTPRequestHandler
    )
    thread = threading.Thread(target=host_service.serve_forever, daemon=True)
    thread.start()
    try:
        port = host_service.server_address[1]
        sup.start(spec(tmp_path, "i-host", fetch(f'"http://$BEANPOLE_HOST_ADDRESS:{port}/"')))
        assert result(sup, "i-host").startswith("result=reached")
    finally:
        host_service.shutdown()
        host_service.server_close()
    for instance in ("i-server", "i-client", "i-host"):
        sup.stop(instance)


def fetch(url_word: str) -> str:
    """A process that GETs the URL (a shell word) once, says whether it got an answer, idles."""
    code = (
        "import sys, time, urllib.request as u\n"
        "try:\n"
        "    u.urlopen(sys.argv[1], timeout=2); print('result=reached', flush=True)\n"
        "except Exception as e:\n"
        "    print('result=blocked', repr(e), flush=True)\n"
        "time.sleep(1000)\n"
    )
    return f"{PY} -c {shlex.quote(code)} {url_word}"


def result(sup: Supervisor, instance_id: str) -> str:
    lines = wait_for(
        lambda: [ln for ln in sup.log_tail(instance_id, 10) if ln.startswith("result=")],
        f"{instance_id}'s result",
    )
    return str(lines[-1])


def test_reclaim_removes_namespaces_no_live_instance_holds(sup, tmp_path):
    spaces = sup.namespaces
    # a crash after the namespace was built but before supervisord ran the instance
    ghost = spaces.create(sup.owner, "i-ghost", [8080])
    # a home whose folder is gone (its lease outlived it)
    dead_owner = str(tmp_path / "gone-home")
    orphan = spaces.create(dead_owner, "i-orphan", [8080])
    # a namespace of Beanpole's with no lease at all (a registry lost with /run, say)
    stray = netns.Sandbox(netns.SLOTS - 1)
    assert stray.slot not in {s for _, _, s in spaces.registry.all_slots()}
    subprocess.run(["ip", "netns", "add", stray.name], check=True)
    live = sup.start(spec(tmp_path, "i-live", f"{PY} -m http.server 8080 --bind 127.0.0.1"))
    live_box = spaces.sandbox(sup.owner, "i-live")
    try:
        sup.reclaim({"i-live"})
        assert exists(ghost) == (False, False)
        assert exists(orphan) == (False, False)
        assert exists(stray) == (False, False)
        assert "i-ghost" not in spaces.registry.slots(sup.owner)
        assert spaces.registry.slots(dead_owner) == {}
        assert live_box is not None and exists(live_box) == (True, True)
        assert wait_for(lambda: answers(live.url("/")), "the live one to answer")
    finally:
        subprocess.run(["ip", "netns", "del", stray.name], check=False, capture_output=True)


def test_shutdown_removes_every_namespace_of_the_home(tmp_path):
    runtime = Supervisor(tmp_path / "sv", namespaces=netns.Namespaces())
    runtime.ensure_running()
    try:
        for n in range(2):
            runtime.start(spec(tmp_path, f"i-{n}", f"{PY} -m http.server 8080 --bind 127.0.0.1"))
        boxes = [runtime.namespaces.sandbox(runtime.owner, f"i-{n}") for n in range(2)]
    finally:
        runtime.shutdown()
    assert all(b is not None and exists(b) == (False, False) for b in boxes)
    assert runtime.namespaces.registry.slots(runtime.owner) == {}


def test_an_instance_that_opts_out_shares_the_host_network(sup, tmp_path):
    shared = replace(
        spec(tmp_path, "i-shared", f"{PY} -m http.server $PORT --bind 127.0.0.1"),
        isolate=False,
    )
    endpoint = sup.start(shared)
    assert endpoint.host == "127.0.0.1" and not endpoint.isolated
    assert sup.namespaces.sandbox(sup.owner, "i-shared") is None
    assert sup.ports.leases(sup.owner)["i-shared"] == endpoint.port
    sup.stop("i-shared")
