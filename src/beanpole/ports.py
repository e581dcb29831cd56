"""The ports the services drive: what a runtime and a load balancer promise, as Protocols.

The services (fleet, observer, reconciler, monitor, deploy runner) are written against these
and the composition root (`beanpole.server.main`) picks the backends: supervisord today,
Docker and Swarm later, `beanpole.testing.FakeRuntime` in tests. Every backend must pass the
contract suite in ``tests/contract/``, which states these promises as tests.

All methods are synchronous and may block (sockets, subprocesses): the asyncio server calls
them through ``asyncio.to_thread``, so a backend must be safe to call from several threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from beanpole.core.lb.config import LoadBalancerSpec
from beanpole.core.runtime import Endpoint, InstanceObservation, InstanceSpec, ServerState


class Runtime(Protocol):
    """Runs instances and reports on them. It owns their addresses: ``start`` allocates the
    endpoint (no two live instances of this host share one) and ``stop`` frees it."""

    def ensure_running(self) -> None:
        """Start the runtime itself (a daemon that outlives the control plane) unless it runs."""

    def is_running(self) -> bool:
        """Whether the runtime itself answers."""

    def start(self, spec: InstanceSpec) -> Endpoint:
        """Start the instance's processes with ``PORT`` set; return where it will answer.

        Returns at once, before the app listens (`observe` shows it starting, then running).
        Starting an instance that already runs returns its endpoint and starts nothing.
        """

    def endpoint(self, instance_id: str) -> Endpoint | None:
        """Where a live instance answers (None when the runtime runs no such instance)."""

    def stop(self, instance_id: str) -> None:
        """Stop the instance (TERM to every process, a bounded wait, then KILL), forget it and
        free its endpoint. Stopping an unknown instance does nothing."""

    def observe(self) -> dict[str, InstanceObservation]:
        """Every instance this runtime runs, ours or not, keyed by id, in neutral states."""

    def restart(self, instance_id: str, process: str) -> None:
        """Start again a process that died (the runtime gave up on it); no-op if it runs."""

    def log_tail(self, instance_id: str, lines: int, process: str | None = None) -> list[str]:
        """The last non-blank lines the instance's processes (or one) wrote, stdout and stderr
        in the order written."""

    def log_files(self, instance_id: str) -> list[Path]:
        """The instance's log files (every process's output: stdout and stderr)."""

    def reclaim(self, live: set[str]) -> None:
        """Free the endpoints of instances not in ``live`` (after a crash, at adoption)."""

    def close(self) -> None:
        """Release what this client holds; the instances and the runtime keep running."""


class Images(Protocol):
    """Makes and finds container images (the Docker platform's versions)."""

    def build_image(
        self, context: Path, tag: str, log: Path, dockerfile: str = "Dockerfile"
    ) -> tuple[str, int | None]:
        """Build ``context``'s ``dockerfile`` as ``tag``, its output appended to ``log``; return
        the image and the first port it exposes. A failed build raises `BuildError` with
        the output's last lines."""

    def ensure_image(self, name: str, log: Path) -> tuple[str, int | None]:
        """The image ``name`` from this host, else pulled; its first exposed port."""


class LoadBalancer(Protocol):
    """Routes each environment's requests to its in-service instances and checks them."""

    def is_running(self) -> bool: ...

    def start(self, spec: LoadBalancerSpec) -> None:
        """Start serving ``spec``, or adopt the one already running and converge it."""

    def apply(self, spec: LoadBalancerSpec) -> None:
        """Converge the running load balancer to ``spec`` dropping no request."""

    def server_states(self) -> dict[tuple[str, str], ServerState]:
        """Every instance it routes to, keyed by ``(environment, instance id)``."""

    def set_sampling(self, ratios: Mapping[str, int]) -> None:
        """Log one request in N for each environment (name -> N >= 1)."""
