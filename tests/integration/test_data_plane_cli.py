"""`beanpole server status` and `server stop --all` see and stop the real data plane.

The CLI imports no adapter: it asks `beanpole.server.dataplane` in a child process. These
tests start a real supervisord (with one instance) and a real HAProxy in a fresh
``BEANPOLE_HOME``, with no control plane running, and drive the real CLI.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from beanpole.adapters.lb.haproxy import HAProxy
from beanpole.adapters.runtime import docker
from beanpole.adapters.runtime.ports import REGISTRY_ENV, PortLeases
from beanpole.adapters.runtime.supervisord import InstanceSpec, Supervisor
from beanpole.core.lb.config import LoadBalancerSpec

from lbkit import alive, free_port, haproxy_pid, process_tree

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None,
    reason="the haproxy binary is not installed (apt install haproxy)",
)


@dataclass
class DataPlane:
    home: Path
    supervisor: Supervisor
    haproxy: HAProxy
    leases: PortLeases  # the test's own registry (the child processes are pointed at it)
    pids: list[int]  # supervisord, its instance's process, HAProxy's master and workers


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEANPOLE_")}
    return subprocess.run(
        [sys.executable, "-m", *args],
        env={**env, "BEANPOLE_HOME": str(home), REGISTRY_ENV: str(home.parent / "ports.db")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def data_plane(tmp_path: Path) -> Iterator[DataPlane]:
    home = tmp_path / "home"
    leases = PortLeases(tmp_path / "ports.db")
    supervisor = Supervisor(home / "supervisor", ports=leases, owner=str(home))
    haproxy = HAProxy(home / "haproxy")
    try:
        supervisor.ensure_running()
        (home / "app").mkdir()
        supervisor.start(
            InstanceSpec(
                instance_id="i-0a1b2c3d",
                processes={"web": f"{sys.executable} -c 'import time; time.sleep(600)'"},
                cwd=home / "app",
                env={"PATH": os.environ["PATH"]},
                log_dir=home / "logs",
                stop_wait_s=2,
            )
        )
        haproxy.start(LoadBalancerSpec("127.0.0.1", free_port(), ()))
        daemon = int(supervisor.pid_path.read_text())
        pids = [daemon, *(p.pid for ps in supervisor.instances().values() for p in ps if p.pid)]
        pids += process_tree(haproxy_pid(haproxy))
        yield DataPlane(home, supervisor, haproxy, leases, pids)
    finally:
        started = process_tree(haproxy_pid(haproxy))
        haproxy.stop()
        supervisor.shutdown()
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_status_reports_the_daemons_while_the_server_is_stopped(data_plane: DataPlane) -> None:
    status = run(data_plane.home, "beanpole.cli.main", "server", "status")
    assert status.returncode == 3, status.stderr  # 3: the control plane is not running
    assert "server:      stopped" in status.stdout
    assert "haproxy:     running" in status.stdout
    assert "supervisord: running" in status.stdout


def test_stop_all_stops_every_instance_supervisord_and_haproxy(data_plane: DataPlane) -> None:
    assert len(data_plane.pids) >= 4  # supervisord, the instance, HAProxy's master and worker
    assert list(data_plane.leases.leases(str(data_plane.home))) == ["i-0a1b2c3d"]
    stop = run(data_plane.home, "beanpole.cli.main", "server", "stop", "--all")
    assert stop.returncode == 0, stop.stderr
    assert "Stopped supervisord and every instance." in stop.stdout
    assert "Stopped HAProxy." in stop.stdout
    assert not [pid for pid in data_plane.pids if alive(pid)]
    assert data_plane.leases.leases(str(data_plane.home)) == {}  # its ports are free again
    status = run(data_plane.home, "beanpole.cli.main", "server", "status")
    assert "haproxy:     stopped" in status.stdout
    assert "supervisord: stopped" in status.stdout
    again = run(data_plane.home, "beanpole.cli.main", "server", "stop", "--all")
    assert again.returncode == 0, again.stderr
    assert "Stopped" not in again.stdout  # nothing was left to stop


def test_the_data_plane_command_answers_json_and_refuses_unknown_actions(
    data_plane: DataPlane,
) -> None:
    status = run(data_plane.home, "beanpole.server.dataplane", "status")
    assert status.returncode == 0, status.stderr
    # docker: whether the engine answers (any home may run containers)
    engine = docker.unavailable() is None
    assert status.stdout.strip() == (
        f'{{"haproxy": true, "supervisord": true, "docker": {"true" if engine else "false"}}}'
    )
    wrong = run(data_plane.home, "beanpole.server.dataplane", "restart")
    assert wrong.returncode == 2
    assert "usage: python -m beanpole.server.dataplane {status|stop}" in wrong.stderr
