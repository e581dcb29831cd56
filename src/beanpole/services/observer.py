"""One look at the data plane per tick, shared by every loop that needs it.

The reconciler, the monitor, the deployment gate and the wait for new instances all need the
same two facts: what the runtime runs (processes, pids, exits) and what the load balancer
sees (checks, sessions, responses). Each used to poll supervisord and HAProxy on its own,
several times a second between them; now the observer takes one snapshot of both and they
read it. A caller that needs a fresher view than the latest (a deploy waiting on new
instances) asks for one no older than it can accept; callers asking at the same time share
one poll.

While nothing is being changed, the load balancer's view may be reused for a few seconds
(``refresh(lb_max_age_s=…)``): its checks change state only every ``HealthCheckInterval``,
and reading HAProxy's statistics for every server was the idle server's largest remaining
cost. The runtime is asked every time: a process that dies is seen within the second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from beanpole.core.errors import BeanpoleError
from beanpole.core.runtime import InstanceObservation, ServerState
from beanpole.ports import LoadBalancer, Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot:
    """The runtime and the load balancer at one moment (``at``: the monotonic clock).

    ``runtime_error``/``lb_error`` say why one did not answer; its part is then empty, which
    the readers must not take for "nothing runs" (see `runtime_ok`, `lb_ok`).
    """

    at: float
    lb_at: float = float("-inf")  # when the load balancer's part was read (it may be older)
    instances: dict[str, InstanceObservation] = field(default_factory=dict)
    servers: dict[tuple[str, str], ServerState] = field(default_factory=dict)
    runtime_error: str = ""
    lb_error: str = ""

    @property
    def runtime_ok(self) -> bool:
        return not self.runtime_error

    @property
    def lb_ok(self) -> bool:
        return not self.lb_error


class Observer:
    """Takes snapshots of ``runtime`` and ``lb``: one per tick, more when asked."""

    def __init__(
        self,
        runtime: Runtime,
        lb: LoadBalancer,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime, self.lb, self.clock = runtime, lb, clock
        self.latest = Snapshot(at=float("-inf"), runtime_error="not observed yet")
        self.polls = 0  # how many snapshots were taken (tests count them)
        self._inflight: asyncio.Future[Snapshot] | None = None

    async def refresh(self, *, lb_max_age_s: float = 0.0) -> Snapshot:
        """A new snapshot; a caller arriving while one is being taken shares it.

        ``lb_max_age_s``: the load balancer's part of the latest snapshot may be reused while
        it is at most this old (and was read without error); the runtime is always asked."""
        if self._inflight is None or self._inflight.done():
            latest = self.latest
            age = self.clock() - latest.lb_at
            reuse_lb = lb_max_age_s > 0 and latest.lb_ok and age <= lb_max_age_s
            self._inflight = asyncio.ensure_future(self._take(latest if reuse_lb else None))
        return await asyncio.shield(self._inflight)

    async def fresh(self, max_age_s: float) -> Snapshot:
        """The latest snapshot if it is at most ``max_age_s`` old, else a new one."""
        if self.clock() - self.latest.at <= max_age_s:
            return self.latest
        return await self.refresh()

    async def _take(self, lb_from: Snapshot | None) -> Snapshot:
        """Ask both sides in one worker thread (one hand-off, not two: each costs more CPU
        than the idle answers themselves), or only the runtime when ``lb_from`` is given."""
        at = self.clock()

        def ask() -> tuple[tuple[dict[str, InstanceObservation] | None, str], Snapshot]:
            runtime = _ask(self.runtime.observe)
            if lb_from is not None:
                return runtime, lb_from
            lb_at = self.clock()
            servers, lb_error = _ask(self.lb.server_states)
            return runtime, Snapshot(
                at=lb_at, lb_at=lb_at, servers=servers or {}, lb_error=lb_error
            )

        (instances, runtime_error), lb = await asyncio.to_thread(ask)
        snapshot = Snapshot(
            at=at,
            lb_at=lb.lb_at,
            instances=instances or {},
            servers=lb.servers,
            runtime_error=runtime_error,
            lb_error=lb.lb_error,
        )
        self.latest = snapshot
        self.polls += 1
        return snapshot


def _ask(question: Callable[[], T]) -> tuple[T | None, str]:
    """The answer, or None and why there is none (a component down is a fact, not a crash)."""
    try:
        return question(), ""
    except BeanpoleError as exc:
        log.info("observation failed: %s", exc.message)
        return None, exc.message
