"""One look at the data plane per tick, shared by every loop that needs it.

The reconciler, the monitor, the deployment gate and the wait for new instances all need the
same two facts: what the runtime runs (processes, pids, exits) and what the load balancer
sees (checks, sessions, responses). Each used to poll supervisord and HAProxy on its own,
several times a second between them; now the observer takes one snapshot of both and they
read it. A caller that needs a fresher view than the latest (a deploy waiting on new
instances) asks for one no older than it can accept; callers asking at the same time share
one poll.
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

    async def refresh(self) -> Snapshot:
        """A new snapshot; a caller arriving while one is being taken shares it."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._take())
        return await asyncio.shield(self._inflight)

    async def fresh(self, max_age_s: float) -> Snapshot:
        """The latest snapshot if it is at most ``max_age_s`` old, else a new one."""
        if self.clock() - self.latest.at <= max_age_s:
            return self.latest
        return await self.refresh()

    async def _take(self) -> Snapshot:
        at = self.clock()
        (instances, runtime_error), (servers, lb_error) = await asyncio.gather(
            asyncio.to_thread(_ask, self.runtime.observe),
            asyncio.to_thread(_ask, self.lb.server_states),
        )
        snapshot = Snapshot(
            at=at,
            instances=instances or {},
            servers=servers or {},
            runtime_error=runtime_error,
            lb_error=lb_error,
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
