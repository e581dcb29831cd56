"""A load balancer held in memory, with HAProxy's adapter surface.

`FakeLoadBalancer` answers the calls the services make on
`beanpole.adapters.lb.haproxy.HAProxy` (``start``, ``apply``, ``server_states``,
``set_weight``, ``drain``, ``set_sampling``, ``stop``, ``is_running``) the way the real one
does, as far as the services can tell: a spec's servers appear UP with a passing check, a
weight set at run time or a drain lasts until the next spec is applied, an unknown server
is `NotFound`, a stopped load balancer is a `ComponentError`. What only real traffic and
real checks would produce, the test says: `mark_down` (a failing check), `mark_up`,
`record` (responses and 5xx), `set_sessions` (connections still open while draining),
`fail` (HAProxy stops answering).

It also counts what would have been a reload (a change of `structural_key`), so a test can
say that scaling or a weight change did not reload.

The integration tests run the real HAProxy; this double is for unit tests of decisions
(reconcile, repairs, the deploy gate) that must start no process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from beanpole.core.errors import ComponentError, InvalidInput, NotFound
from beanpole.core.lb.config import MAX_WEIGHT, LoadBalancerSpec, structural_key
from beanpole.core.runtime import ServerState

Key = tuple[str, str]  # (environment, server), as `HAProxy.server_states` keys them


@dataclass(frozen=True)
class _Server:
    weight: int  # the current (user) weight: the spec's, or one set at run time
    drained: bool = False
    down: str = ""  # the failing check status when marked DOWN, "" when passing
    sessions: int = 0
    responses: int = 0
    responses_5xx: int = 0


class FakeLoadBalancer:
    """In-memory stand-in for `HAProxy`; not running until `start`."""

    def __init__(self) -> None:
        self.spec: LoadBalancerSpec | None = None  # the last spec started or applied
        self.reloads = 0  # applies that changed the structure (HAProxy would have reloaded)
        self.sampling: dict[str, int] = {}  # environment -> log one request in N
        self.asked = 0  # server_states calls: how often a service polled it
        self._running = False
        self._servers: dict[Key, _Server] = {}

    # -- what the services call (HAProxy's surface) ------------------------------------------

    def is_running(self) -> bool:
        return self._running

    def start(self, spec: LoadBalancerSpec) -> None:
        """Serve ``spec``; like HAProxy's, adopts (applies) when already running."""
        if self._running:
            self.apply(spec)
            return
        self._running = True
        self.spec = None
        self._servers.clear()
        self._converge(spec)

    def stop(self) -> None:
        self._running = False
        self._servers.clear()

    def apply(self, spec: LoadBalancerSpec) -> None:
        """Converge on ``spec``: servers added, removed, weights set, drains undone.

        Health marks stay: a check's result is observed, not configured.
        """
        self._require_running()
        if self.spec is not None and structural_key(spec) != structural_key(self.spec):
            self.reloads += 1
        self._converge(spec)

    def server_states(self) -> dict[Key, ServerState]:
        self.asked += 1
        self._require_running()
        return {key: self._state(key, server) for key, server in self._servers.items()}

    def set_weight(self, env: str, server: str, weight: int) -> None:
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise InvalidInput(f"Server weight {weight!r} is not valid: use 0 to {MAX_WEIGHT}.")
        self._put(env, server, replace(self._get(env, server), weight=weight))

    def drain(self, env: str, server: str) -> None:
        self._put(env, server, replace(self._get(env, server), drained=True))

    def set_sampling(self, ratios: dict[str, int]) -> None:
        self._require_running()
        for env, ratio in ratios.items():
            if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
                raise InvalidInput(
                    f"Sampling ratio {ratio!r} for {env!r} is not valid: use 1 or more."
                )
        self.sampling.update(ratios)

    # -- what the test says ------------------------------------------------------------------

    def fail(self) -> None:
        """HAProxy died: every call fails until the next `start` (as the adapter's do)."""
        self._running = False

    def mark_down(self, env: str, server: str, check_status: str = "L7STS") -> None:
        """The server's checks fail (``L7STS``: a wrong status; ``L4CON``: refused)."""
        self._put(env, server, replace(self._get(env, server), down=check_status))

    def mark_up(self, env: str, server: str) -> None:
        """The server's checks pass again."""
        self._put(env, server, replace(self._get(env, server), down=""))

    def record(self, env: str, server: str, responses: int, responses_5xx: int = 0) -> None:
        """The server answered ``responses`` more requests, ``responses_5xx`` of them 5xx."""
        if not 0 <= responses_5xx <= responses:
            raise ValueError(f"{responses_5xx} 5xx out of {responses} responses is impossible.")
        now = self._get(env, server)
        self._put(
            env,
            server,
            replace(
                now,
                responses=now.responses + responses,
                responses_5xx=now.responses_5xx + responses_5xx,
            ),
        )

    def set_sessions(self, env: str, server: str, sessions: int) -> None:
        """Connections open on the server now (a drain waits for them to close)."""
        self._put(env, server, replace(self._get(env, server), sessions=sessions))

    # -- the model ---------------------------------------------------------------------------

    def _converge(self, spec: LoadBalancerSpec) -> None:
        wanted = {
            (backend.name, server.name): server.weight
            for backend in spec.backends
            for server in backend.servers
        }
        self._servers = {
            key: replace(self._servers[key], weight=weight, drained=False)
            if key in self._servers
            else _Server(weight)
            for key, weight in wanted.items()
        }
        self.spec = spec

    @staticmethod
    def _state(key: Key, server: _Server) -> ServerState:
        # As HAProxy reports them: DOWN wins over a drain; weight 0 alone is still UP.
        if server.down:
            status = "DOWN"
        elif server.drained:
            status = "DRAIN"
        else:
            status = "UP"
        return ServerState(
            backend=key[0],
            server=key[1],
            status=status,
            check_status=server.down or "L7OK",
            weight=server.weight,
            sessions=server.sessions,
            responses=server.responses,
            responses_5xx=server.responses_5xx,
            healthy=not server.down,  # a drained server whose check passes is healthy
        )

    def _get(self, env: str, server: str) -> _Server:
        self._require_running()
        try:
            return self._servers[(env, server)]
        except KeyError:
            raise NotFound(f"Environment {env!r} has no server {server!r} in HAProxy.") from None

    def _put(self, env: str, server: str, state: _Server) -> None:
        self._servers[(env, server)] = state

    def _require_running(self) -> None:
        if not self._running:
            raise ComponentError("HAProxy is not running: start it before applying changes.")
