"""The host's clock, as the `beanpole.core.clock.Clock` the services take."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from beanpole.core.clock import Clock


class SystemClock:
    """Real time: `time.monotonic`, `time.time` and `asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


if TYPE_CHECKING:
    _IS_A_CLOCK: Clock = SystemClock()  # mypy fails here if the protocol and this part ways
