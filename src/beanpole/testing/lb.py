"""`FakeLoadBalancer`: a `beanpole.ports.LoadBalancer` that remembers what it was told.

Every server of the last applied spec is up and passing its check, unless a test says
otherwise with `set_server`; `fail` makes it stop answering, as a dead HAProxy does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace

from beanpole.core.errors import ComponentError
from beanpole.core.lb.config import LoadBalancerSpec
from beanpole.core.runtime import ServerState


class FakeLoadBalancer:
    def __init__(self) -> None:
        self.spec: LoadBalancerSpec | None = None
        self.sampling: dict[str, int] = {}
        self.running = False
        self.applied = 0  # how many specs it was given (start or apply)
        self.asked = 0  # how many times its server states were read
        self._overrides: dict[tuple[str, str], ServerState] = {}
        self._lock = threading.Lock()

    def is_running(self) -> bool:
        return self.running

    def start(self, spec: LoadBalancerSpec) -> None:
        with self._lock:
            self.running = True
            self.spec = spec
            self.applied += 1

    def apply(self, spec: LoadBalancerSpec) -> None:
        self._require_running()
        with self._lock:
            self.spec = spec
            self.applied += 1

    def server_states(self) -> dict[tuple[str, str], ServerState]:
        self._require_running()
        with self._lock:
            self.asked += 1
            states = {}
            for backend in self.spec.backends if self.spec else ():
                for server in backend.servers:
                    key = (backend.name, server.name)
                    states[key] = self._overrides.get(key) or ServerState(
                        backend.name, server.name, "UP", "L7OK", server.weight, 0, healthy=True
                    )
            return states

    def set_sampling(self, ratios: Mapping[str, int]) -> None:
        self._require_running()
        with self._lock:
            self.sampling = dict(ratios)

    # -- what tests drive ---------------------------------------------------------------------

    def set_server(self, env: str, server: str, **fields: object) -> None:
        """Override what it reports for one server (e.g. ``status="DOWN", healthy=False``)."""
        base = ServerState(env, server, "UP", "L7OK", 100, 0, healthy=True)
        with self._lock:
            self._overrides[(env, server)] = replace(
                self._overrides.get((env, server), base),
                **fields,  # type: ignore[arg-type]
            )

    def fail(self) -> None:
        self.running = False

    def _require_running(self) -> None:
        if not self.running:
            raise ComponentError("the fake load balancer is not running; call start()")
