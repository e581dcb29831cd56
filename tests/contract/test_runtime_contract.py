"""What every runtime backend promises (`beanpole.ports.Runtime`), checked against each.

The same specs mean the same to every backend: a process that serves runs a small HTTP
server on ``$PORT``; one that crashes writes a line to stderr and exits 3 at every start.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from beanpole.core.runtime import InstanceSpec, ProcessObservation, ProcessStatus

from runtime_backends import BACKENDS, Driver

PY = shlex.quote(sys.executable)
SERVE = f"{PY} -m http.server $PORT --bind 127.0.0.1"
CRASH = "echo boom >&2; exit 3"


@pytest.fixture(params=sorted(BACKENDS))
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driver]:
    with BACKENDS[request.param](tmp_path) as made:
        yield made


def spec(tmp_path: Path, instance_id: str, web: str = SERVE) -> InstanceSpec:
    return InstanceSpec(
        instance_id=instance_id,
        processes={"web": web},
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "BEANPOLE_INSTANCE_ID": instance_id},
        log_dir=tmp_path / "logs" / instance_id,
        stop_wait_s=5,
    )


def web(driver: Any, instance_id: str) -> ProcessObservation | None:
    observed = driver.runtime.observe().get(instance_id)
    return observed.web if observed is not None else None


def wait_status(driver: Any, instance_id: str, status: ProcessStatus) -> ProcessObservation:
    return driver.wait_for(
        lambda: (p := web(driver, instance_id)) is not None and p.status is status and p,
        f"{instance_id}'s web process to be {status}",
    )


def test_start_returns_an_endpoint_and_observe_shows_it_starting_then_running(driver, tmp_path):
    endpoint = driver.runtime.start(spec(tmp_path, "i-first"))
    assert ipaddress.ip_address(endpoint.host) and endpoint.port > 0
    assert endpoint.isolated is driver.isolated
    assert driver.runtime.endpoint("i-first") == endpoint
    first = web(driver, "i-first")
    assert first is not None and first.status in (ProcessStatus.STARTING, ProcessStatus.RUNNING)
    running = wait_status(driver, "i-first", ProcessStatus.RUNNING)
    assert running.pid > 0 and not running.dead and running.reason == ""


def test_instances_never_share_an_endpoint(driver, tmp_path):
    endpoints = [driver.runtime.start(spec(tmp_path, f"i-{n}")) for n in range(3)]
    assert len(set(endpoints)) == 3
    driver.runtime.stop("i-1")
    endpoints.append(driver.runtime.start(spec(tmp_path, "i-3")))
    live = [driver.runtime.endpoint(i) for i in ("i-0", "i-2", "i-3")]
    assert len(set(live)) == 3


def test_starting_a_running_instance_again_starts_nothing_new(driver, tmp_path):
    endpoint = driver.runtime.start(spec(tmp_path, "i-once"))
    pid = wait_status(driver, "i-once", ProcessStatus.RUNNING).pid
    assert driver.runtime.start(spec(tmp_path, "i-once")) == endpoint
    assert web(driver, "i-once").pid == pid
    assert list(driver.runtime.observe()) == ["i-once"]


def test_a_crash_shows_its_exit_status_reason_and_log(driver, tmp_path):
    driver.runtime.start(spec(tmp_path, "i-crash", CRASH))
    failed = wait_status(driver, "i-crash", ProcessStatus.FAILED)
    assert failed.dead and failed.exit_status == 3
    assert "status 3" in failed.reason
    assert "boom" in driver.runtime.log_tail("i-crash", 10)
    assert driver.runtime.observe()["i-crash"].dead == (failed,)


def test_restart_starts_a_failed_process_again(driver, tmp_path):
    driver.runtime.start(spec(tmp_path, "i-again", CRASH))
    before = wait_status(driver, "i-again", ProcessStatus.FAILED)
    driver.runtime.restart("i-again", "web")
    driver.wait_for(
        lambda: (p := web(driver, "i-again")) is not None and p.started_at > before.started_at,
        "the web process to be started again",
    )


def test_restart_of_a_running_process_changes_nothing(driver, tmp_path):
    driver.runtime.start(spec(tmp_path, "i-fine"))
    pid = wait_status(driver, "i-fine", ProcessStatus.RUNNING).pid
    driver.runtime.restart("i-fine", "web")
    assert web(driver, "i-fine").pid == pid


def test_stop_removes_the_instance_and_frees_its_endpoint(driver, tmp_path):
    driver.runtime.start(spec(tmp_path, "i-stop"))
    wait_status(driver, "i-stop", ProcessStatus.RUNNING)
    driver.runtime.stop("i-stop")
    assert "i-stop" not in driver.runtime.observe()
    assert driver.runtime.endpoint("i-stop") is None
    driver.runtime.stop("i-stop")  # stopping what is not there is not an error
    driver.runtime.stop("i-never")


def test_the_processes_get_their_port_in_the_environment(driver, tmp_path):
    endpoint = driver.runtime.start(spec(tmp_path, "i-env", f"echo port=$PORT; {SERVE}"))
    wait_status(driver, "i-env", ProcessStatus.RUNNING)
    lines = driver.wait_for(
        lambda: [ln for ln in driver.runtime.log_tail("i-env", 10) if ln.startswith("port=")],
        "the port line in the log",
    )
    assert lines[-1] == f"port={endpoint.port}"


def test_the_runtime_reports_itself_running(driver, tmp_path):
    assert driver.runtime.is_running()
    driver.runtime.ensure_running()  # a no-op when it runs
    assert driver.runtime.is_running()
    driver.runtime.reclaim(set())
    driver.runtime.close()


FIXED = f"{PY} -m http.server 8080 --bind {{bind}}"


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0"])
def test_instances_with_a_network_of_their_own_can_all_bind_one_fixed_port(driver, tmp_path, bind):
    if not driver.isolated:
        pytest.skip("this backend runs instances on the host's network: one port, one instance")
    endpoints = [
        driver.runtime.start(
            replace(spec(tmp_path, f"i-fixed{n}", FIXED.format(bind=bind)), listen_port=8080)
        )
        for n in range(2)
    ]
    assert [e.port for e in endpoints] == [8080, 8080] and len({e.host for e in endpoints}) == 2
    for n, endpoint in enumerate(endpoints):
        wait_status(driver, f"i-fixed{n}", ProcessStatus.RUNNING)
        answer = driver.wait_for(lambda e=endpoint: _get(e.url("/")), f"{endpoint} to answer")
        assert answer.status_code == 200
    driver.runtime.stop("i-fixed0")
    assert driver.runtime.endpoint("i-fixed0") is None
    assert _get(endpoints[1].url("/")) is not None  # the other one still serves


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2.0, trust_env=False)
    except httpx.HTTPError:
        return None
