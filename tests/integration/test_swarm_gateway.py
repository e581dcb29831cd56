"""The way from this host into a swarm's overlay (issue 13, part 3): a gateway container on
the manager and this host's route through it. Both are made again when they go (a gateway
restarted by its engine may have another address), while instances keep running.

Real 3-node swarm (`swarmkit`), registry and engine; skipped with the reason where the test
bed cannot run.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import swarmkit
from beanpole.adapters.runtime import swarm as swarm_runtime
from beanpole.core.runtime import InstanceSpec

from harness import wait_for

SERVE = f"{shlex.quote(sys.executable)} -m http.server $PORT --bind 127.0.0.1"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[swarm_runtime.Swarm]:
    with swarmkit.swarm_runtime(tmp_path, f"gateway:{tmp_path}") as made:
        yield made


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_lost_route_or_gateway_is_made_again_while_instances_run(runtime, tmp_path):
    endpoint = runtime.start(
        InstanceSpec(
            instance_id="i-gw",
            processes={"web": SERVE},
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin"},
            log_dir=tmp_path / "logs",
            stop_wait_s=2,
        )
    )
    wait_for(lambda: answers(endpoint.url()), 60, "the instance to answer")
    subnet = str(runtime.subnet)

    subprocess.run(["ip", "route", "del", subnet], check=True)
    assert not answers(endpoint.url())
    assert not runtime.is_running()
    wait_for(lambda: runtime.observe() and answers(endpoint.url()), 30, "the route again")

    runtime.api.remove_container(runtime.gateway, force=True)
    wait_for(lambda: runtime.observe() and answers(endpoint.url()), 60, "a new gateway")
    assert runtime.is_running()
