"""Time as something passed in: the `Clock` the loops and gates wait on.

The deploy gate, the bake window, the reconciler's backoff and the monitor's windows all
wait and measure durations. Reading `time.monotonic` and calling `asyncio.sleep` inside them
would make a 60 s bake window cost a test 60 s; taking a `Clock` lets a test hand in
`beanpole.testing.clock.ManualClock` and move time itself. The core only names the
protocol (it never reads a clock): `beanpole.adapters.clock.SystemClock` is the real one.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Monotonic time for durations and deadlines, wall time for records, and waiting."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations, deadlines)."""

    def time(self) -> float:
        """Seconds since the epoch (timestamps shown to people and stored)."""

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock (at once when <= 0, after
        letting other tasks run)."""
