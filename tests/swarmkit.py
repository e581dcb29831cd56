"""A real 3-node Docker Swarm on this machine for tests: ``tests/tools/swarm-netns.sh``.

Each node is its own dockerd in its own network namespace (``<prefix>-n1`` … ``-n3``, at
``<subnet>.11`` …, the host at ``<subnet>.1``). One test bed serves a whole test session
(`shared_bed`): it takes a few seconds to make and is taken down when the session ends.
Its prefix and subnet are chosen free, so two sessions on one machine do not collide.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The test bed script: a copy of the project's shared/tools/swarm-netns.sh is kept in
#: tests/tools, so a fresh clone has it (BEANPOLE_SWARM_SCRIPT names another).
SCRIPT_CANDIDATES = (
    Path(os.environ.get("BEANPOLE_SWARM_SCRIPT", "/nonexistent")),
    Path(__file__).resolve().parent / "tools" / "swarm-netns.sh",
)


def script() -> Path | None:
    return next((p for p in SCRIPT_CANDIDATES if p.is_file()), None)


def unavailable() -> str | None:
    """Why the test bed cannot run here, or None."""
    if os.geteuid() != 0:
        return "the swarm test bed needs root (network namespaces, one dockerd per node)"
    if script() is None:
        return "tests/tools/swarm-netns.sh (the swarm test bed) is missing"
    for tool, package in (("dockerd", "docker.io"), ("nsenter", "util-linux"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            return f"{tool} is missing: apt-get install {package} (scripts/bootstrap.sh --docker)"
    if not Path("/bin/busybox").exists():
        return "busybox-static is missing (scripts/bootstrap.sh --docker installs it)"
    if not Path("/usr/bin/docker-registry").exists():
        return "docker-registry is missing (scripts/bootstrap.sh --docker installs it)"
    return None


def free_port() -> int:
    """A TCP port free on this host now (for a registry the test starts)."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def _free_subnet() -> str:
    routes = subprocess.run(
        ["ip", "-o", "route"], capture_output=True, text=True, check=False
    ).stdout
    for n in range(90, 130):
        candidate = f"10.{n}.0"
        if f"{candidate}." not in routes:
            return candidate
    raise RuntimeError("no free 10.N.0.0/24 for the swarm test bed")


@dataclass
class SwarmBed:
    prefix: str
    subnet: str  # the first three octets
    nodes: tuple[str, ...] = ("n1", "n2", "n3")
    up_log: str = ""
    _down: bool = field(default=False, repr=False)

    @property
    def manager_url(self) -> str:
        return f"unix:///run/{self.prefix}/n1/docker.sock"

    def url(self, node: str) -> str:
        return f"unix:///run/{self.prefix}/{node}/docker.sock"

    @property
    def manager_address(self) -> str:
        return f"{self.subnet}.11"

    @property
    def host_address(self) -> str:
        return f"{self.subnet}.1"

    def run(self, *args: str, timeout: float = 120) -> str:
        env = {
            **os.environ,
            "PREFIX": self.prefix,
            "SUBNET": self.subnet,
            "HEARTBEAT": "1s",
            "RESTART_DELAY": "0s",
        }
        done = subprocess.run(
            ["bash", str(script()), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"swarm-netns.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout + done.stderr

    def trust(self, ca_file: Path, registry_host: str) -> None:
        """Every node trusts the registry's certificate (its own /etc/docker/certs.d)."""
        for node in self.nodes:
            folder = Path(f"/var/lib/{self.prefix}/{node}.etc-docker/certs.d/{registry_host}")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ca_file, folder / "ca.crt")

    def kill_node(self, node: str) -> None:
        self.run("kill-node", node)

    def start_node(self, node: str) -> None:
        """Start a killed node again. A SIGKILLed dockerd leaves its pid file, which a new
        dockerd refuses to start over: removed once no live process has that pid."""
        pid_file = Path(f"/run/{self.prefix}/{node}/docker.pid")
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                pid_file.unlink()
        self.run("start-node", node)

    def down(self) -> None:
        if not self._down:
            self._down = True
            self.run("down")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


_lock = threading.Lock()
_shared: list[SwarmBed] = []


def shared_bed() -> SwarmBed:
    """The session's test bed, made on first use (taken down at exit)."""
    with _lock:
        if not _shared:
            # one bed made at a time on this machine: each takes a subnet no route uses yet
            with open("/run/lock/beanpole-swarmkit.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                bed = SwarmBed(prefix=f"bps{os.getpid() % 100000}", subnet=_free_subnet())
                atexit.register(bed.down)
                bed.up_log = bed.run("up")
            _shared.append(bed)
        return _shared[0]


def new_bed(prefix: str) -> SwarmBed:
    """A test bed of the caller's own (a benchmark's), made as `shared_bed` makes one (one at
    a time on this machine, on a subnet no route uses yet); the caller takes it down."""
    with open("/run/lock/beanpole-swarmkit.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bed = SwarmBed(prefix=prefix, subnet=_free_subnet())
        try:
            bed.up_log = bed.run("up")
        except BaseException:
            with contextlib.suppress(Exception):  # what `up` made of it
                bed.down()
            raise
    return bed


def remove_images(owner: str) -> None:
    """Remove the version images the home ``owner`` built on this host's engine."""
    from beanpole.adapters.registry import ExternalRegistry
    from beanpole.adapters.runtime.swarm import Swarm

    runtime = Swarm(owner, registry=ExternalRegistry("127.0.0.1:5000"))
    try:
        runtime.remove_images()
    finally:
        runtime.close()


@contextlib.contextmanager
def swarm_runtime(folder: Path, owner: str, **options: Any) -> Iterator[Any]:
    """A `Swarm` runtime of the home ``owner`` on the session's bed, with a registry of its
    own in ``folder`` that every node trusts (skips where the bed or the engine cannot
    run); everything it made is removed after. ``options``: more of `Swarm`'s arguments."""
    import pytest

    from beanpole.adapters.registry import Registry
    from beanpole.adapters.runtime import docker as docker_runtime
    from beanpole.adapters.runtime.swarm import Swarm

    if (why_not := unavailable()) is not None:
        pytest.skip(f"no swarm test bed here: {why_not}")
    if (why_not := docker_runtime.unavailable()) is not None:
        pytest.skip(f"no Docker engine here (it builds and pushes images): {why_not}")
    bed = shared_bed()
    registry = Registry(folder / "registry", address=bed.host_address, port=free_port())
    runtime = Swarm(
        owner,
        registry=registry,
        base_url=bed.manager_url,
        manager_address=bed.manager_address,
        **options,
    )
    try:
        registry.ensure_running()
        bed.trust(registry.ca_file, registry.host)
        runtime.ensure_running()
        yield runtime
    finally:
        runtime.shutdown()
        runtime.remove_images()
        runtime.close()
        registry.stop()
