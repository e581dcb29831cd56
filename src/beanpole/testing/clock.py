"""A clock whose time moves only when the test moves it.

`ManualClock` implements `beanpole.core.clock.Clock`. Code under test sleeps on it as it
would on the real clock; the test then either

* moves time itself: ``await clock.advance(30)`` wakes every sleeper whose deadline falls in
  those 30 s, in deadline order, and lets each woken task run before time moves on (a task
  that sleeps again inside the window is woken again); or
* lets it run by itself: inside ``async with clock.autojump():`` time jumps to the next
  deadline whenever every task is waiting, the idea of trio's ``autojump_clock``. A test then
  simply awaits the code under test, and an hour of simulated waiting takes microseconds.

"Every task is waiting" needs to know that the event loop has nothing ready to run, which
asyncio does not offer publicly (trio has ``wait_all_tasks_blocked``). `settle` reads the
default loop's ready queue for it, and on a loop without one (uvloop) falls back to yielding
a fixed number of times. Autojump is for code whose waits are on this clock and on each
other: a task waiting for real I/O looks idle too, so time would jump under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Sized
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from beanpole.core.clock import Clock

SETTLE_ROUNDS = 1000  # a bound, so code that yields forever cannot hang a test in settle
FALLBACK_ROUNDS = 50  # yields when the loop's ready queue cannot be seen


async def settle(max_rounds: int = SETTLE_ROUNDS) -> None:
    """Yield to the event loop until no other task or callback is ready to run."""
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    if not isinstance(ready, Sized):
        for _ in range(FALLBACK_ROUNDS):
            await asyncio.sleep(0)
        return
    for _ in range(max_rounds):
        await asyncio.sleep(0)
        if not ready:
            return


class ManualClock:
    """Simulated time: starts at ``start`` (monotonic) and ``wall`` (epoch seconds)."""

    def __init__(self, start: float = 0.0, wall: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []  # a heap
        self._order = itertools.count()  # ties wake in the order they went to sleep
        self._slept = asyncio.Event()  # set when a task starts sleeping (autojump waits on it)

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        self._slept.set()
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        """When the earliest sleeper wakes, or None when nobody sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled while asleep
        return self._sleepers[0][0] if self._sleepers else None

    def jump(self, seconds: float) -> None:
        """Move time forward now and wake the sleepers that are due.

        Synchronous: the woken tasks run when the caller next yields. Use `advance` to have
        them run at their own deadlines.
        """
        self._check_forward(seconds)
        self._now += seconds
        self._wake_due()

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, one deadline at a time.

        At each deadline inside the window the sleepers due are woken and every task is
        let run until it waits again, so code that sleeps in a loop sees each of its
        ticks at the time it asked for; then time stops at exactly ``now + seconds``.
        """
        self._check_forward(seconds)
        target = self._now + seconds
        await settle()  # tasks started just before reach their first sleep
        while (deadline := self.next_deadline()) is not None and deadline <= target:
            self._now = max(self._now, deadline)
            self._wake_due()
            await settle()
        self._now = target

    @contextlib.asynccontextmanager
    async def autojump(self) -> AsyncIterator[ManualClock]:
        """Within the block, jump to the next deadline whenever every task is waiting."""
        jumper = asyncio.create_task(self._autojump(), name="ManualClock.autojump")
        try:
            yield self
        finally:
            jumper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jumper

    async def _autojump(self) -> None:
        while True:
            await settle()
            deadline = self.next_deadline()
            if deadline is None:
                self._slept.clear()
                await self._slept.wait()
                continue
            self._now = max(self._now, deadline)
            self._wake_due()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    @staticmethod
    def _check_forward(seconds: float) -> None:
        if seconds < 0:
            raise ValueError(
                f"A clock never goes back: {seconds} s is negative. Advance by 0 or more."
            )


if TYPE_CHECKING:
    _IS_A_CLOCK: Clock = ManualClock()  # mypy fails here if the protocol and this part ways
