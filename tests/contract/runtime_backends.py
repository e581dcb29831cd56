"""The runtime backends the contract suite runs against.

Adding a backend is one line in ``BACKENDS``: a name and a function that makes a `Driver` for
it (the runtime plus how to wait on it), and cleans up whatever it started. (Not a
conftest.py: the suite's modules import each other by name, and ``conftest`` is the top
folder's.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

import swarmkit
from beanpole.adapters.runtime import docker as docker_runtime
from beanpole.adapters.runtime import netns
from beanpole.adapters.runtime.dispatch import DispatchingRuntime
from beanpole.adapters.runtime.supervisord import Supervisor
from beanpole.ports import Runtime
from beanpole.testing import FakeRuntime

T = TypeVar("T")


@dataclass
class Driver:
    """A runtime under test and how time passes for it (real time, or the fake's steps)."""

    runtime: Runtime
    step: Callable[[], None]
    deadline_s: float
    isolated: bool = False  # instances get a network of their own (same port, no collision)

    def wait_for(self, condition: Callable[[], T | None], what: str) -> T:
        """Step until ``condition`` holds; fail naming ``what`` after the deadline."""
        deadline = time.monotonic() + self.deadline_s
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {self.deadline_s} s waiting for {what}")
            self.step()


@contextmanager
def supervisord(tmp_path: Path) -> Iterator[Driver]:
    runtime = Supervisor(tmp_path / "sv")
    runtime.ensure_running()
    try:
        # supervisord gives up on a process that dies at every start after about 10 s.
        yield Driver(runtime, lambda: time.sleep(0.05), deadline_s=30.0)
    finally:
        runtime.shutdown()


@contextmanager
def supervisord_netns(tmp_path: Path) -> Iterator[Driver]:
    """supervisord with a network namespace per instance (root, with ip and nft)."""
    if (why_not := netns.unavailable()) is not None:
        pytest.skip(f"network namespaces are not available here: {why_not}")
    runtime = Supervisor(tmp_path / "sv", namespaces=netns.Namespaces())
    runtime.ensure_running()
    try:
        yield Driver(runtime, lambda: time.sleep(0.05), deadline_s=30.0, isolated=True)
    finally:
        runtime.shutdown()


@contextmanager
def docker(tmp_path: Path) -> Iterator[Driver]:
    """Containers on the Docker engine (root, with the engine running: `make docker`)."""
    if (why_not := docker_runtime.unavailable()) is not None:
        pytest.skip(f"no Docker engine here: {why_not}")
    runtime = docker_runtime.Docker(f"contract:{tmp_path}")
    runtime.ensure_running()
    try:
        # the engine restarts a crashing process 3 times (100 ms, 200 ms, 400 ms apart)
        yield Driver(runtime, lambda: time.sleep(0.05), deadline_s=30.0, isolated=True)
    finally:
        runtime.shutdown()
        runtime.close()


@contextmanager
def dispatching(tmp_path: Path) -> Iterator[Driver]:
    """The server's runtime: supervisord as the default, Docker beside it where its engine
    answers (`adapters.runtime.dispatch`)."""
    supervisor = Supervisor(tmp_path / "sv")
    runtimes: dict[str, Runtime] = {"supervisord": supervisor}
    engine = None
    if docker_runtime.unavailable() is None:
        engine = docker_runtime.Docker(f"contract:{tmp_path}")
        runtimes["docker"] = engine
    runtime = DispatchingRuntime("supervisord", runtimes)
    runtime.ensure_running()
    try:
        yield Driver(runtime, lambda: time.sleep(0.05), deadline_s=30.0)
    finally:
        supervisor.shutdown()
        if engine is not None:
            engine.shutdown()
        runtime.close()


@contextmanager
def swarm(tmp_path: Path) -> Iterator[Driver]:
    """Services on a 3-node Docker Swarm (`swarmkit`: one dockerd per network namespace),
    images from a registry on the host, reached over the overlay through the gateway."""
    with swarmkit.swarm_runtime(tmp_path, f"contract:{tmp_path}") as runtime:
        # the engine restarts a crashing task 3 times, each a new task on the same node
        yield Driver(runtime, lambda: time.sleep(0.1), deadline_s=60.0, isolated=True)


@contextmanager
def fake(tmp_path: Path) -> Iterator[Driver]:
    runtime = FakeRuntime(start_at_once=False)
    yield Driver(runtime, runtime.advance, deadline_s=2.0)


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Driver]]] = {
    "supervisord": supervisord,
    "supervisord-netns": supervisord_netns,
    "docker": docker,
    "dispatching": dispatching,
    "swarm": swarm,
    "fake": fake,
}
