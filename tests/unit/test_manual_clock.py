"""The manual clock: time moves only when told, and sleepers wake at their deadlines."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from beanpole.adapters.clock import SystemClock
from beanpole.core.clock import Clock
from beanpole.testing.clock import ManualClock, settle


def in_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run an async test in a fresh event loop (the suite uses no asyncio plugin)."""

    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


@pytest.mark.parametrize("clock_type", [ManualClock, SystemClock])
def test_every_clock_has_the_protocols_members_sync_or_async_alike(clock_type: type) -> None:
    members = [name for name in vars(Clock) if not name.startswith("_")]
    assert sorted(members) == ["monotonic", "sleep", "time"]
    for name in members:
        ours, protocol = getattr(clock_type, name), getattr(Clock, name)
        assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(protocol), name


def test_the_system_clock_tells_real_time() -> None:
    clock = SystemClock()
    assert abs(clock.time() - time.time()) < 60
    before = clock.monotonic()
    asyncio.run(clock.sleep(0))
    assert clock.monotonic() >= before


@in_loop
async def test_time_stands_still_until_advanced() -> None:
    clock = ManualClock(start=100.0, wall=1_000.0)
    for _ in range(10):
        await asyncio.sleep(0)
    assert (clock.monotonic(), clock.time()) == (100.0, 1_000.0)
    await clock.advance(2.5)
    assert (clock.monotonic(), clock.time()) == (102.5, 1_002.5)


@in_loop
async def test_sleep_returns_only_once_its_deadline_is_reached() -> None:
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(5))
    await clock.advance(4.9)
    assert not sleeper.done()
    assert clock.sleepers == 1
    await clock.advance(0.1)
    assert sleeper.done()
    assert clock.monotonic() == 5.0
    assert clock.sleepers == 0


@in_loop
async def test_advance_wakes_sleepers_in_deadline_order_at_their_own_time() -> None:
    clock = ManualClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(nap(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 2))]
    await clock.advance(10)
    assert woke == [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    assert clock.monotonic() == 10.0
    await asyncio.gather(*tasks)


@in_loop
async def test_a_loop_that_sleeps_again_sees_every_tick_inside_the_window() -> None:
    clock = ManualClock()
    ticks: list[float] = []

    async def every_second() -> None:
        while True:
            ticks.append(clock.monotonic())
            await clock.sleep(1)

    task = asyncio.create_task(every_second())
    await clock.advance(3.5)
    assert ticks == [0.0, 1.0, 2.0, 3.0]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@in_loop
async def test_jump_moves_time_at_once_and_the_woken_run_when_the_caller_yields() -> None:
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(30))
    await settle()
    clock.jump(60)
    assert clock.monotonic() == 60.0
    await sleeper


@in_loop
async def test_a_cancelled_sleeper_is_forgotten() -> None:
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(5))
    await settle()
    sleeper.cancel()
    await settle()
    assert clock.sleepers == 0
    assert clock.next_deadline() is None
    await clock.advance(10)  # nothing to wake, nothing raised


@in_loop
async def test_sleeping_zero_seconds_yields_without_waiting_for_the_clock() -> None:
    clock = ManualClock()
    await asyncio.wait_for(clock.sleep(0), timeout=5)
    await asyncio.wait_for(clock.sleep(-1), timeout=5)
    assert clock.sleepers == 0


@in_loop
async def test_time_never_goes_back() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="never goes back"):
        await clock.advance(-1)
    with pytest.raises(ValueError, match="never goes back"):
        clock.jump(-0.5)


@in_loop
async def test_autojump_runs_an_hour_of_sleeping_at_once() -> None:
    clock = ManualClock()

    async def bake() -> float:
        for _ in range(60):
            await clock.sleep(60)
        return clock.monotonic()

    async with clock.autojump():
        finished_at = await asyncio.wait_for(bake(), timeout=30)
    assert finished_at == 3600.0


@in_loop
async def test_autojump_waits_while_any_task_can_still_run() -> None:
    """Time jumps only when every task waits: a consumer blocked on a queue is woken by a
    producer's put, not by time passing."""
    clock = ManualClock()
    queue: asyncio.Queue[str] = asyncio.Queue()
    received: list[tuple[str, float]] = []

    async def producer() -> None:
        for _ in range(100):
            await asyncio.sleep(0)  # runnable the whole time: no jump may happen
        await queue.put("early")
        await clock.sleep(10)
        await queue.put("late")

    async def consumer() -> None:
        for _ in range(2):
            item = await queue.get()
            received.append((item, clock.monotonic()))

    async with clock.autojump():
        alarm = asyncio.create_task(clock.sleep(5))  # a deadline to jump to, too early
        await asyncio.wait_for(asyncio.gather(producer(), consumer()), timeout=30)
    assert received == [("early", 0.0), ("late", 10.0)]
    assert alarm.done()


@in_loop
async def test_autojump_idles_until_someone_sleeps() -> None:
    clock = ManualClock()
    async with clock.autojump():
        await settle()
        assert clock.monotonic() == 0.0  # nobody sleeps: nothing to jump to
        await asyncio.wait_for(clock.sleep(7), timeout=30)
    assert clock.monotonic() == 7.0
