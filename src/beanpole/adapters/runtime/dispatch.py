"""Two runtimes behind one: each instance runs under the one its spec asks for.

The server has a default runtime (`beanpole server start --runtime`); an environment may
ask for another (``beanpole:instance:Runtime``), and a version of the Docker platform (an
image) always runs under Docker. So one server may run processes under supervisord and
containers under Docker at once. This adapter is the `Runtime` the services see: it starts
each instance under its runtime, merges what both observe, and sends everything about an
instance to the runtime that runs it.

A runtime is *in use* when it is the default or when it runs instances (found at start-up,
or started since); only runtimes in use are observed and kept running, so a server that
never runs a container never asks the engine anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from beanpole.core.errors import InvalidInput
from beanpole.core.runtime import Endpoint, InstanceObservation, InstanceSpec
from beanpole.ports import Runtime

SUPERVISORD = "supervisord"
DOCKER = "docker"
SWARM = "swarm"


class DispatchingRuntime:
    """``runtimes`` by name (supervisord, docker); ``default`` names the server's. A runtime
    may be missing (no Docker engine here): ``missing[name]`` says why, for the error of an
    instance that asks for it."""

    def __init__(
        self,
        default: str,
        runtimes: dict[str, Runtime],
        missing: dict[str, str] | None = None,
    ) -> None:
        if default not in runtimes:
            raise InvalidInput(_unavailable(default, (missing or {}).get(default, "")))
        self.default = default
        self.runtimes = runtimes
        self.missing = missing or {}
        self._lock = threading.Lock()
        self._in_use = {default}
        self._owner: dict[str, str] = {}  # instance id -> the runtime that runs it

    # -- which runtime ----------------------------------------------------------------------

    def runtime_for(self, spec: InstanceSpec) -> str:
        """The spec's runtime, else the default; an image runs under Docker, or under the
        swarm when that is the default (its nodes pull it)."""
        if spec.image and not spec.runtime and self.default == SWARM:
            return SWARM
        return spec.wanted_runtime or self.default

    def adopt(self) -> dict[str, int]:
        """Put in use every other runtime that runs instances of this home already (a server
        restarted with another default, or environments that chose another); return how
        many each runs."""
        counts: dict[str, int] = {}
        for name, runtime in self.runtimes.items():
            if name in self._in_use or not runtime.is_running():
                continue
            running = runtime.observe()
            if running:
                counts[name] = len(running)
                with self._lock:
                    self._in_use.add(name)
                    self._owner.update(dict.fromkeys(running, name))
        return counts

    def _in_use_runtimes(self) -> list[tuple[str, Runtime]]:
        with self._lock:
            return [(n, self.runtimes[n]) for n in sorted(self._in_use)]

    def _of(self, instance_id: str) -> Runtime | None:
        with self._lock:
            name = self._owner.get(instance_id)
        return self.runtimes[name] if name is not None else None

    def _candidates(self, instance_id: str) -> list[Runtime]:
        """The runtime that runs the instance, else every runtime in use (an instance one
        does not know is nothing to it)."""
        owner = self._of(instance_id)
        return [owner] if owner is not None else [r for _, r in self._in_use_runtimes()]

    def _each(self, instance_id: str, call: Callable[[Runtime], object]) -> None:
        for runtime in self._candidates(instance_id):
            call(runtime)

    # -- the Runtime protocol ---------------------------------------------------------------

    def ensure_running(self) -> None:
        self.adopt()
        for _, runtime in self._in_use_runtimes():
            runtime.ensure_running()

    def is_running(self) -> bool:
        return all(runtime.is_running() for _, runtime in self._in_use_runtimes())

    def start(self, spec: InstanceSpec) -> Endpoint:
        name = self.runtime_for(spec)
        runtime = self.runtimes.get(name)
        if runtime is None:
            raise InvalidInput(_unavailable(name, self.missing.get(name, "")))
        with self._lock:
            new = name not in self._in_use
        if new:
            runtime.ensure_running()
            with self._lock:
                self._in_use.add(name)
        with self._lock:
            self._owner[spec.instance_id] = name
        return runtime.start(spec)

    def endpoint(self, instance_id: str) -> Endpoint | None:
        for runtime in self._candidates(instance_id):
            found = runtime.endpoint(instance_id)
            if found is not None:
                return found
        return None

    def stop(self, instance_id: str) -> None:
        self._each(instance_id, lambda runtime: runtime.stop(instance_id))
        with self._lock:
            self._owner.pop(instance_id, None)

    def observe(self) -> dict[str, InstanceObservation]:
        merged: dict[str, InstanceObservation] = {}
        owners: dict[str, str] = {}
        for name, runtime in self._in_use_runtimes():
            seen = runtime.observe()
            merged.update(seen)
            owners.update(dict.fromkeys(seen, name))
        with self._lock:
            self._owner.update(owners)
        return merged

    def restart(self, instance_id: str, process: str) -> None:
        self._each(instance_id, lambda runtime: runtime.restart(instance_id, process))

    def log_tail(self, instance_id: str, lines: int, process: str | None = None) -> list[str]:
        for runtime in self._candidates(instance_id):
            found = runtime.log_tail(instance_id, lines, process)
            if found:
                return found
        return []

    def log_files(self, instance_id: str) -> list[Path]:
        for runtime in self._candidates(instance_id):
            found = runtime.log_files(instance_id)
            if found:
                return found
        return []

    def reclaim(self, live: set[str]) -> None:
        for _, runtime in self._in_use_runtimes():
            runtime.reclaim(live)

    def node_states(self) -> dict[str, str]:
        """The cluster nodes' states (hostname -> ready, down, …) as the runtimes in use saw
        them at their last look; empty without a cluster runtime."""
        states: dict[str, str] = {}
        for _, runtime in self._in_use_runtimes():
            seen = getattr(runtime, "node_states", None)
            if callable(seen):
                states.update(seen())
        return states

    def close(self) -> None:
        for runtime in self.runtimes.values():
            runtime.close()


def _unavailable(name: str, why: str) -> str:
    if name == DOCKER:
        return (
            "This instance runs under Docker (the Docker platform, or beanpole:instance:Runtime "
            f"= docker), and {why or 'the Docker engine is not available'}. Install and start "
            "it with `scripts/bootstrap.sh --docker` (Debian's docker.io), or set "
            "beanpole:instance:Runtime to supervisord."
        )
    if name == SWARM:
        return (
            "This environment asks for the swarm runtime (beanpole:instance:Runtime = swarm), "
            "which runs only on a server started with --runtime swarm"
            f"{f' ({why})' if why else ''}. Start it so (docs/swarm.md), or set "
            "beanpole:instance:Runtime to default."
        )
    return f"The {name} runtime is not available here{f': {why}' if why else ''}."
