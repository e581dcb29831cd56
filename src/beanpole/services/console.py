"""The web console's reads: one view per page (`ConsolePages`) and the live feed that keeps
an open page current (`Feed`).

A page asks for everything it shows in one request, then listens to the feed, a
server-sent event stream, rather than polling per widget. The feed runs one loop for all
listeners, and only while there are any: each second it reads what changed (the environment
list, new events, and for each environment someone watches: its view, health verdict, new
metric points and operations) and hands every listener what it asked for. An idle server
with no console open does no work for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from beanpole import __version__
from beanpole.adapters.store.db import Store
from beanpole.api.console import (
    EnvironmentPage,
    MetricsRange,
    OptionView,
    OverviewPage,
    ServerInfo,
)
from beanpole.api.views import EventView, MetricsView, View
from beanpole.core.errors import NotFound
from beanpole.core.model import OperationKind
from beanpole.core.settings.options import OPTIONS
from beanpole.home import ServerConfig
from beanpole.services.applications import Applications
from beanpole.services.environments import Environments, event_view, operation_view
from beanpole.services.health import HealthService, Resolution
from beanpole.services.logs import EnvironmentLogs
from beanpole.services.monitor import Monitor

log = logging.getLogger(__name__)

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
RANGES: dict[str, float] = {
    "1h": HOUR_S,
    "3h": 3 * HOUR_S,
    "1d": 24 * HOUR_S,
    "2w": 14 * 24 * HOUR_S,
}
PAGE_EVENTS = 200
TICK_S = 1.0
KEEPALIVE_S = 15.0
QUEUE_MAX = 256  # messages a slow listener may lag behind before it is dropped
LOG_POLL_S = 0.5
_ALL_KINDS = tuple(k.value for k in OperationKind)
WINDOW_LAG_S = 30.0
"""How far back a new listener's first metric read looks: the page it opened holds the
points before (a point seen twice is replaced by its start time on the page)."""


def _option_views() -> list[OptionView]:
    return [
        OptionView(
            namespace=o.namespace,
            name=o.name,
            kind=o.kind,
            default=o.default,
            help=o.help,
            effect=o.effect.value,
            minimum=o.minimum,
            maximum=o.maximum,
            choices=list(o.choices),
        )
        for o in OPTIONS.values()
    ]


class ConsolePages:
    def __init__(
        self,
        store: Store,
        config: ServerConfig,
        applications: Applications,
        environments: Environments,
        health: HealthService,
    ) -> None:
        self.store = store
        self.config = config
        self.applications = applications
        self.environments = environments
        self.health = health
        self.options = _option_views()

    async def overview(self) -> OverviewPage:
        apps = await self.applications.list_all()
        envs = await self.environments.list_all()
        versions = {a.name: await self.applications.versions(a.name) for a in apps}

        def last_events() -> dict[str, EventView]:
            found = {}
            for env in envs:
                latest = self.store.events(env.name, limit=1)
                if latest:
                    found[env.name] = event_view(latest[-1])
            return found

        return OverviewPage(
            applications=apps,
            environments=envs,
            versions={name: _newest_first(v) for name, v in versions.items()},
            last_events=await asyncio.to_thread(last_events),
            server=ServerInfo(
                version=__version__, lb_port=self.config.lb_port, domain=self.config.domain
            ),
        )

    async def environment(self, name: str) -> EnvironmentPage:
        env = await self.environments.get(name)
        running = await asyncio.to_thread(self.store.running_operations)
        operation = next((o for o in running if o.environment_id == env.id), None)
        return EnvironmentPage(
            environment=env,
            health=await self.health.health(name),
            metrics=await self.metrics(name, "1h"),
            events=await self.environments.events(name, limit=PAGE_EVENTS),
            releases=await self.environments.releases(name),
            settings=await self.environments.settings(name),
            options=self.options,
            versions=_newest_first(await self.applications.versions(env.application)),
            operation=None if operation is None else operation_view(operation),
        )

    async def metrics(self, name: str, span: MetricsRange) -> MetricsView:
        """The environment's points over the range: 10 s ones up to a day, 5 min beyond."""
        now = time.time()
        # 10 s points up to a day, 5 min roll-ups beyond, whatever the clock did meanwhile.
        resolution: Resolution = "300" if RANGES[span] > DAY_S else "10"
        return await self.health.metrics(name, since=now - RANGES[span], resolution=resolution)


def _newest_first(versions: list[Any]) -> list[Any]:
    return sorted(versions, key=lambda v: v.created_at, reverse=True)


# the live feed ---------------------------------------------------------------------------


@dataclass
class _Watch:
    """What the feed last sent about one environment its listeners watch."""

    view: str = ""
    health_at: float = -1.0
    metrics_after: float = 0.0
    operation: tuple[int, str] | None = None


@dataclass(eq=False)
class Listener:
    environment: str | None
    queue: asyncio.Queue[tuple[str, str] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_MAX)
    )

    def put(self, name: str, data: str) -> bool:
        """Queue one message; False if the listener lags too far behind (it is dropped)."""
        try:
            self.queue.put_nowait((name, data))
        except asyncio.QueueFull:
            return False
        return True


def _end(listener: Listener) -> None:
    """Tell the listener's stream to end, even when its queue is full."""
    with contextlib.suppress(asyncio.QueueEmpty):
        if listener.queue.full():
            listener.queue.get_nowait()
    listener.queue.put_nowait(None)


Allowed = Callable[[], Awaitable[bool]]
"""Whether a stream's client may still listen (its console session is still live)."""


async def always() -> bool:
    return True


def _json(value: Any) -> str:
    if isinstance(value, View):
        return value.model_dump_json()
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    return json.dumps(value)


class Feed:
    def __init__(
        self, store: Store, environments: Environments, health: HealthService, monitor: Monitor
    ) -> None:
        self.store = store
        self.environments = environments
        self.health = health
        self.monitor = monitor
        self.listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._summaries = ""
        self._last_event = 0
        self._watched: dict[str, _Watch] = {}
        self._closing = asyncio.Event()

    async def listen(
        self, environment: str | None, allowed: Allowed = always
    ) -> AsyncIterator[str]:
        """The server-sent event stream of one listener: the environment list at once and,
        with ``environment``, its view, health, latest events, recent metric points and
        latest operation (the page may hold some already: listeners take repeats), then
        every change, until the client leaves, ``allowed`` says no more (its console
        session ended; asked every `KEEPALIVE_S`) or the server stops."""
        if environment is not None:
            await self.environments.get(environment)  # NotFound before the stream starts
        listener = Listener(environment)
        summaries = await self.environments.list_all()
        listener.put("environments", _json(summaries))
        if environment is not None:
            # What changed between the page's read and this connection is not lost.
            await self._current(environment, listener)
        if self._last_event == 0:
            latest = await asyncio.to_thread(self.store.events, None, 0, 1)
            self._last_event = latest[-1].id if latest else 0
        if not self.listeners:
            self._summaries = _json(summaries)  # what this listener just got
        self.listeners.add(listener)
        self._ensure_running()
        try:
            yield ": connected\n\n"
            checked = time.monotonic()
            while not self._closing.is_set():
                try:
                    item = await asyncio.wait_for(listener.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    item = ("", "")
                if item is None:  # dropped, or the server is stopping
                    return
                if time.monotonic() - checked >= KEEPALIVE_S:
                    if not await allowed():
                        return
                    checked = time.monotonic()
                name, data = item
                yield f"event: {name}\ndata: {data}\n\n" if name else ": keep-alive\n\n"
        finally:
            self.listeners.discard(listener)

    async def _current(self, name: str, listener: Listener) -> None:
        listener.put("environment", _json(await self.environments.get(name)))
        listener.put("health", _json(await self.health.health(name)))
        listener.put("events", _json(await self.environments.events(name, limit=50)))
        points = await self.health.metrics(name, since=time.time() - WINDOW_LAG_S)
        if points.points:
            listener.put("metrics", _json(points.points))
        op = await asyncio.to_thread(self.store.last_operation, name, _ALL_KINDS)
        if op is not None:
            listener.put("operation", _json(operation_view(op)))

    def close(self) -> None:
        """End every stream (the server is stopping: an open stream must not hold it up)."""
        self._closing.set()
        for listener in list(self.listeners):
            _end(listener)
        if self._task is not None:
            self._task.cancel()

    def _ensure_running(self) -> None:
        if not self._closing.is_set() and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name="console-feed")

    async def _run(self) -> None:
        while self.listeners:
            await asyncio.sleep(TICK_S)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not end the feed; it is logged
                log.exception("console feed tick failed")
        self._summaries, self._watched, self._last_event = "", {}, 0

    async def tick(self) -> None:
        # Who watches what, before any read: a listener that joins meanwhile is seen next
        # tick, never judged against a list read before its environment existed.
        watched = {x.environment for x in self.listeners if x.environment is not None}
        summaries = await self.environments.list_all()
        text = _json(summaries)
        if text != self._summaries:
            self._summaries = text
            self._send(None, "environments", text)
        events = await asyncio.to_thread(self.store.events, None, self._last_event, 500)
        if events:
            self._last_event = events[-1].id
            self._send(None, "events", _json([event_view(e) for e in events]))
        live = {s.name for s in summaries}
        for name in list(self._watched):
            if name not in watched:
                del self._watched[name]
        for name in watched:
            if name not in live:
                self._send(name, "gone", json.dumps({"environment": name}))
                continue
            try:
                await self._environment(name, self._watched.setdefault(name, _Watch()))
            except NotFound:
                self._send(name, "gone", json.dumps({"environment": name}))

    async def _environment(self, name: str, seen: _Watch) -> None:
        view = await self.environments.get(name)
        # Compared without the instances' uptimes, which change every second by themselves.
        stable = view.model_dump_json(exclude={"instances": {"__all__": {"uptime_s"}}})
        if stable != seen.view:
            seen.view = stable
            self._send(name, "environment", _json(view))
        snapshot_at = self.monitor.snapshot.at
        if snapshot_at != seen.health_at:
            seen.health_at = snapshot_at
            self._send(name, "health", _json(await self.health.health(name)))
        if seen.metrics_after == 0.0:
            seen.metrics_after = time.time() - WINDOW_LAG_S
        points = await self.health.metrics(name, since=seen.metrics_after)
        if points.points:
            seen.metrics_after = points.points[-1].start + 1
            self._send(name, "metrics", _json(points.points))
        # The latest operation, not only a running one: one that started and ended between
        # two ticks (an abort at once) is still reported, ended.
        op = await asyncio.to_thread(self.store.last_operation, name, _ALL_KINDS)
        if op is not None and (op.id, op.status) != seen.operation:
            seen.operation = (op.id, op.status)
            self._send(name, "operation", _json(operation_view(op)))

    async def follow_logs(
        self,
        logs: EnvironmentLogs,
        environment: str,
        instance: str | None,
        allowed: Allowed = always,
    ) -> AsyncIterator[str]:
        """A server-sent event stream of an environment's log lines from now on: ``lines``
        events, each a list of `LogLine`, until the client leaves, ``allowed`` says no more
        or the server stops."""
        page = await logs.follow(environment, instance, None)  # NotFound before the stream
        cursor = page.cursor
        yield ": connected\n\n"
        quiet = 0.0
        while not self._closing.is_set():
            page = await logs.follow(environment, instance, cursor)
            cursor = page.cursor
            if page.lines:
                quiet = 0.0
                yield f"event: lines\ndata: {_json(list(page.lines))}\n\n"
            if page.more:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), LOG_POLL_S)
            quiet += LOG_POLL_S
            if quiet >= KEEPALIVE_S:
                quiet = 0.0
                if not await allowed():
                    return
                yield ": keep-alive\n\n"

    def _send(self, environment: str | None, name: str, data: str) -> None:
        """To every listener of ``environment`` (None: to all)."""
        for listener in list(self.listeners):
            if environment is not None and listener.environment != environment:
                continue
            if not listener.put(name, data):
                log.info("console listener dropped: it fell %d messages behind", QUEUE_MAX)
                self.listeners.discard(listener)
                _end(listener)
