"""`FakeRuntime`: instances that live in a dict, driven by the test.

It keeps the promises of `beanpole.ports.Runtime` (the contract suite checks them against it
as against supervisord) without starting a process. Instances start at once, or stay
``starting`` until `advance` (``start_at_once=False``). A process's command is read for two
things only, so one spec means the same to the fake and to a real shell: each ``echo TEXT``
(``>&2`` or not) is a line in its log, ``$NAME`` expanded from its environment; and a
command ending in ``exit N`` dies with status N, and the fake then gives up on it
(``failed``), as a runtime does with a process that dies at every start. Tests make a
running process die with `crash`.
"""

from __future__ import annotations

import itertools
import re
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from beanpole.core.errors import ComponentError, NotFound
from beanpole.core.runtime import (
    Endpoint,
    InstanceObservation,
    InstanceSpec,
    ProcessObservation,
    ProcessStatus,
)

_ECHO = re.compile(r"echo\s+(?P<text>[^;&|>]*?)\s*(?:>&2)?\s*(?:;|&&|$)")
_EXIT = re.compile(r"(?:^|[;&|]\s*)exit\s+(?P<status>\d+)\s*$")


@dataclass
class _Process:
    command: str
    observation: ProcessObservation
    log: list[str] = field(default_factory=list)


@dataclass
class _Instance:
    spec: InstanceSpec
    endpoint: Endpoint
    processes: dict[str, _Process]


class FakeRuntime:
    """An in-memory runtime; every method is thread-safe like a real backend's."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port_range: tuple[int, int] = (20000, 29999),
        start_at_once: bool = True,
    ) -> None:
        self.host = host
        self.port_range = port_range
        self.start_at_once = start_at_once
        self.running = True
        self.started: list[str] = []  # every start of an instance, in order (tests read it)
        self._instances: dict[str, _Instance] = {}
        self._pids = itertools.count(1000)
        self._clock = itertools.count(1)  # started_at values: strictly increasing
        self._lock = threading.Lock()

    # -- the runtime itself --------------------------------------------------------------------

    def ensure_running(self) -> None:
        self.running = True

    def is_running(self) -> bool:
        return self.running

    def fail(self) -> None:
        """The runtime dies and comes back empty (as supervisord restarted without its groups)."""
        with self._lock:
            self.running = False
            self._instances.clear()

    # -- instances -----------------------------------------------------------------------------

    def start(self, spec: InstanceSpec) -> Endpoint:
        self._require_running()
        with self._lock:
            existing = self._instances.get(spec.instance_id)
            if existing is not None:
                return existing.endpoint
            endpoint = Endpoint(self.host, self._free_port())
            spec = replace(spec, env={**spec.env, "PORT": str(endpoint.port)})
            processes = {
                name: _Process(command, self._spawned(name), _echoes(command, spec.env))
                for name, command in spec.processes.items()
            }
            self._instances[spec.instance_id] = _Instance(spec, endpoint, processes)
            self.started.append(spec.instance_id)
            if self.start_at_once:
                self._advance(self._instances[spec.instance_id])
            return endpoint

    def endpoint(self, instance_id: str) -> Endpoint | None:
        with self._lock:
            instance = self._instances.get(instance_id)
            return instance.endpoint if instance is not None else None

    def stop(self, instance_id: str) -> None:
        self._require_running()
        with self._lock:
            self._instances.pop(instance_id, None)

    def observe(self) -> dict[str, InstanceObservation]:
        self._require_running()
        with self._lock:
            return {
                iid: InstanceObservation(
                    iid, tuple(p.observation for _, p in sorted(i.processes.items()))
                )
                for iid, i in self._instances.items()
            }

    def restart(self, instance_id: str, process: str) -> None:
        self._require_running()
        with self._lock:
            proc = self._process(instance_id, process)
            if proc.observation.status in (ProcessStatus.STARTING, ProcessStatus.RUNNING):
                return
            proc.observation = self._spawned(process)
            proc.log += _echoes(proc.command, self._instances[instance_id].spec.env)
            if self.start_at_once:
                self._advance(self._instances[instance_id])

    def log_tail(self, instance_id: str, lines: int, process: str | None = None) -> list[str]:
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None:
                return []
            out = [
                line
                for name, proc in sorted(instance.processes.items())
                if process is None or name == process
                for line in proc.log
            ]
            return out[-lines:]

    def log_files(self, instance_id: str) -> list[Path]:
        return []  # its logs live in memory (`log_tail`)

    def reclaim(self, live: set[str]) -> None:
        """Nothing to free: an endpoint lives exactly as long as its instance here."""

    def close(self) -> None:
        """Nothing to release."""

    # -- what tests drive ---------------------------------------------------------------------

    def advance(self) -> None:
        """Every starting process runs (or dies, if its command ends in ``exit N``)."""
        with self._lock:
            for instance in self._instances.values():
                self._advance(instance)

    def crash(
        self, instance_id: str, process: str = "web", *, exit_status: int = 1, give_up: bool = True
    ) -> None:
        """The process dies with ``exit_status``; ``give_up``: the runtime will not restart it."""
        with self._lock:
            proc = self._process(instance_id, process)
            proc.observation = replace(
                proc.observation,
                status=ProcessStatus.FAILED if give_up else ProcessStatus.EXITED,
                pid=0,
                exit_status=exit_status,
                reason=f"exited with status {exit_status}",
            )

    def write_log(self, instance_id: str, line: str, process: str = "web") -> None:
        with self._lock:
            self._process(instance_id, process).log.append(line)

    def spec(self, instance_id: str) -> InstanceSpec:
        """The spec the instance was started with, ``PORT`` included."""
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None:
                raise NotFound(f"the fake runtime runs no instance {instance_id}")
            return instance.spec

    # -- internals ----------------------------------------------------------------------------

    def _advance(self, instance: _Instance) -> None:
        for proc in instance.processes.values():
            if proc.observation.status is not ProcessStatus.STARTING:
                continue
            match = _EXIT.search(proc.command.strip())
            if match:
                status = int(match.group("status"))
                proc.observation = replace(
                    proc.observation,
                    status=ProcessStatus.FAILED,
                    pid=0,
                    exit_status=status,
                    reason=f"exited with status {status}",
                )
            else:
                proc.observation = replace(proc.observation, status=ProcessStatus.RUNNING)

    def _spawned(self, name: str) -> ProcessObservation:
        return ProcessObservation(
            name, ProcessStatus.STARTING, pid=next(self._pids), started_at=next(self._clock)
        )

    def _free_port(self) -> int:
        used = {i.endpoint.port for i in self._instances.values()}
        low, high = self.port_range
        for port in range(low, high + 1):
            if port not in used:
                return port
        raise ComponentError(f"No free port left in {low}-{high} for a new instance.")

    def _process(self, instance_id: str, process: str) -> _Process:
        instance = self._instances.get(instance_id)
        if instance is None or process not in instance.processes:
            raise NotFound(f"the fake runtime runs no process {process!r} in {instance_id}")
        return instance.processes[process]

    def _require_running(self) -> None:
        if not self.running:
            raise ComponentError("the fake runtime is not running; call ensure_running()")


def _echoes(command: str, env: Mapping[str, str]) -> list[str]:
    return [
        string.Template(m.group("text").strip("'\"")).safe_substitute(env)
        for m in _ECHO.finditer(command)
    ]
