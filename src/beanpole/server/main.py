"""The server process: `python -m beanpole.server.main`, started by `beanpole server start`.

It starts (or adopts) supervisord and HAProxy, which outlive it, then serves the API and
runs the reconcile loop in one asyncio process until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from beanpole.adapters.appuser import AppUsers, check_reachable
from beanpole.adapters.build import Builder
from beanpole.adapters.bundles import BundleStore
from beanpole.adapters.lb import requests
from beanpole.adapters.lb.haproxy import HAProxy
from beanpole.adapters.registry import ExternalRegistry, Registry
from beanpole.adapters.runtime import docker, netns
from beanpole.adapters.runtime.dispatch import DOCKER, SUPERVISORD, SWARM, DispatchingRuntime
from beanpole.adapters.runtime.docker import Docker
from beanpole.adapters.runtime.ports import PortLeases
from beanpole.adapters.runtime.supervisord import Supervisor
from beanpole.adapters.runtime.swarm import Swarm, registry_address
from beanpole.adapters.store.access import AccessStore
from beanpole.adapters.store.db import Store
from beanpole.adapters.store.keys import AccessKeyStore
from beanpole.adapters.store.meta import ResourceMeta
from beanpole.adapters.store.objects import ObjectIndex
from beanpole.adapters.store.users import UserStore
from beanpole.core.errors import InvalidInput
from beanpole.home import Home, ServerConfig
from beanpole.ports import Runtime
from beanpole.server.context import Context, environment_url
from beanpole.server.eb.app import EBApp, Receive, Scope, Send
from beanpole.server.eb.context import EB
from beanpole.server.rest.app import create_app
from beanpole.server.rest.limits import HeaderLimitH11Protocol
from beanpole.services.access import Access
from beanpole.services.applications import Applications
from beanpole.services.autoscaler import Autoscaler
from beanpole.services.buckets import Buckets
from beanpole.services.certificates import Certificates
from beanpole.services.configurations import Configurations
from beanpole.services.console import ConsolePages, Feed
from beanpole.services.domains import Domains
from beanpole.services.environments import Environments
from beanpole.services.fleet import Fleet
from beanpole.services.health import HealthService
from beanpole.services.keys import AccessKeys
from beanpole.services.logs import EnvironmentLogs
from beanpole.services.monitor import Monitor
from beanpole.services.nodes import Nodes
from beanpole.services.operations import Operations
from beanpole.services.reconciler import Reconciler
from beanpole.services.user_upgrade import UserUpgrade
from beanpole.services.users import Users

log = logging.getLogger("beanpole.server")


def build_context(home: Home) -> Context:
    home.prepare()
    config = home.load_config()
    listener = request_socket(config)
    if listener.getsockname()[1] != config.log_port:
        config = config.with_overrides(log_port=listener.getsockname()[1])
        home.save_config(config)
    store = Store(home.db)
    # Applications run as unprivileged users when Beanpole is root (one per application, or
    # $BEANPOLE_APP_USER); they must reach their folders.
    users = AppUsers(home.root)
    check_reachable(home.root / "builds", users.traverser())
    # The backends are chosen here, and only here: services see the ports (beanpole.ports).
    # Ports are leased host-wide (docs/decisions.md), under this home's root as owner.
    # Instances get a network namespace each where the host allows it (docs/decisions.md).
    runtime = choose_runtime(home, config)
    haproxy = HAProxy(home.root / "haproxy")
    fleet = Fleet(home, config, store, runtime, haproxy)
    bundles = BundleStore(home.root / "bundles")
    monitor = Monitor(home, store, fleet, listener)
    docker_runtime = runtime.runtimes.get(DOCKER)  # makes the Docker platform's images
    images = docker_runtime if isinstance(docker_runtime, Docker) else None
    builder = Builder(
        home.root,
        users,
        images,
        prefer_containers=config.runtime == DOCKER,
        reveal=fleet.secrets.reveal,
    )
    ops = Operations(store, fleet, builder, bundles, requests=monitor.stream)
    # no event, no deploy log shows a secret environment property (`services.secrets`)
    store.redact = fleet.secrets.redact_by_id
    ops.logs.redact = fleet.secrets.redact_by_name
    autoscaler = Autoscaler(ops)
    monitor.autoscaler = autoscaler
    environments = Environments(
        store,
        ops,
        functools.partial(environment_url, config),
        autoscaler,
        containers=images is not None,
        default_runtime=config.runtime,
        shared_network=netns.unavailable() or "",
    )
    applications = Applications(store, bundles, home.root, users)
    health = HealthService(store, monitor, environments)
    token = home.token()
    return Context(
        home,
        config,
        token,
        store,
        bundles,
        fleet,
        ops,
        runtime,
        monitor,
        applications=applications,
        environments=environments,
        health=health,
        logs=EnvironmentLogs(store, ops.logs, home.logs),
        configurations=Configurations(store),
        keys=AccessKeys(AccessKeyStore(store)),
        users=Users(UserStore(store), token),
        console=ConsolePages(store, config, applications, environments, health),
        feed=Feed(store, environments, health, monitor),
        domains=Domains(
            ops,
            tuple(d for d in (config.domain, config.eb_domain) if d),
            functools.partial(environment_url, config),
        ),
        certificates=Certificates(ops, home),
        access=Access(AccessStore(store), token),
        nodes=Nodes(ops, _swarm_of(runtime), config.runtime),
    )


def _swarm_of(runtime: DispatchingRuntime) -> Swarm | None:
    """The swarm runtime, whose nodes `beanpole nodes` shows (None: not started so)."""
    swarm = runtime.runtimes.get(SWARM)
    return swarm if isinstance(swarm, Swarm) else None


def choose_runtime(home: Home, config: ServerConfig) -> DispatchingRuntime:
    """The runtimes of this server: supervisord always, Docker where its engine answers (or
    where the config makes it the default: starting it is then the runtime's to do), with
    the config's as the default (`adapters.runtime.dispatch`). Instances already running
    under the other one keep running there and are adopted."""
    if config.runtime not in (SUPERVISORD, DOCKER, SWARM):
        raise InvalidInput(
            f"Unknown runtime {config.runtime!r} in {home.config_file}: "
            "use supervisord, docker or swarm (beanpole server start --runtime …)."
        )
    runtimes: dict[str, Runtime] = {
        SUPERVISORD: Supervisor(
            home.root / "supervisor",
            port_range=config.port_range,
            ports=PortLeases(),
            owner=str(home.root),
            namespaces=netns.Namespaces() if netns.unavailable() is None else None,
        )
    }
    missing: dict[str, str] = {}
    why_not = docker.unavailable()
    if why_not is None or config.runtime == DOCKER:
        runtimes[DOCKER] = Docker(
            str(home.root), directory=home.root / "docker", shared=(home.root / "builds",)
        )
    else:
        missing[DOCKER] = why_not
    if config.runtime == SWARM:
        runtimes[SWARM] = Swarm(
            str(home.root),
            registry=ExternalRegistry(config.registry)
            if config.registry
            else Registry(
                home.root / "registry",
                address=registry_address(config.docker_host or None, config),
                port=config.registry_port,
            ),
            base_url=config.docker_host or None,
            manager_address=config.manager_address or None,
            shared=(home.root / "builds",),
            hidden=(home.root,),
        )
    else:
        missing[SWARM] = "the server was not started with --runtime swarm"
    why_shared = netns.unavailable()
    if why_shared is not None:
        log.info("supervisord's instances share the host's network: %s", why_shared)
    return DispatchingRuntime(config.runtime, runtimes, missing)


def request_socket(config: ServerConfig) -> socket.socket:
    """The UDP port HAProxy already sends request lines to, if it is free again; else a new
    one (HAProxy is then reloaded onto it, since the port is part of its config).

    A new one comes from the top of the instances' port range rather than the kernel's
    ephemeral range, where any client socket could take it while the server is down.
    """
    if config.log_port:
        try:
            return requests.bind(config.log_port)
        except OSError as exc:
            log.warning("request log port %d is taken (%s); choosing another", config.log_port, exc)
    low, high = config.port_range
    for port in range(high, low - 1, -1):
        try:
            return requests.bind(port)
        except OSError:
            continue
    return requests.bind(0)


async def serve(home: Home) -> None:
    ctx = build_context(home)
    # Uploads a previous server was receiving when it died; none can be in progress yet.
    for partial in (home.root / "bundles" / "incoming").glob("*.zip"):
        partial.unlink(missing_ok=True)
    await asyncio.to_thread(ctx.runtime.ensure_running)
    if await asyncio.to_thread(ctx.fleet.lb.is_running):
        await ctx.fleet.sync_lb()
    else:
        await asyncio.to_thread(ctx.fleet.lb.start, ctx.fleet.lb_spec())
    reconciler = Reconciler(ctx.ops)
    await reconciler.adopt()
    monitor = ctx.monitor
    await monitor.start()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop_task = asyncio.create_task(reconciler.run(), name="reconciler")
        monitor_task = asyncio.create_task(monitor.run(), name="monitor")
        # instances from before each application had a user of its own: deployed again,
        # in the background (`services.user_upgrade`)
        upgrade = UserUpgrade(ctx.environments, ctx.ops.builder.users)
        upgrade_task = asyncio.create_task(upgrade.run(), name="user-upgrade")
        # a cluster's environments spread evenly again when a node comes back
        rebalance_task = asyncio.create_task(ctx.nodes.rebalance_loop(), name="rebalance")
        # Written whole then renamed: `beanpole server start` polls for this file and read a
        # half-written one (a JSON error) when it came between the create and the write.
        partial = home.server_file.with_name(home.server_file.name + ".tmp")
        partial.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "url": f"http://{ctx.config.api_host}:{ctx.config.api_port}",
                    "lb_port": ctx.config.lb_port,
                    "eb_endpoint": f"http://{ctx.config.api_host}:{ctx.config.eb_port}",
                    "console": f"http://{ctx.config.api_host}:{ctx.config.api_port}/",
                }
            )
        )
        partial.replace(home.server_file)
        try:
            yield
        finally:
            for task in (rebalance_task, upgrade_task, loop_task, monitor_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            monitor.close()
            ctx.feed.close()
            await ctx.ops.cancel_all()
            await ctx.fleet.close()
            ctx.runtime.close()
            home.server_file.unlink(missing_ok=True)
            ctx.store.close()

    app = create_app(ctx)
    app.router.lifespan_context = lifespan
    # One server, two listeners: the REST API, and Elastic Beanstalk's API with the S3
    # subset on its own port (its paths are S3's: any bucket name may follow the slash).
    eb_app = EBApp(build_eb(ctx))
    sockets = [_listen(ctx.config.api_host, ctx.config.api_port)]
    sockets.append(_listen(ctx.config.api_host, ctx.config.eb_port))
    eb_port = sockets[1].getsockname()[1]

    async def by_port(scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if scope["type"] == "http" and server is not None and server[1] == eb_port:
            await eb_app(scope, receive, send)
        else:
            await app(scope, receive, send)

    config = uvicorn.Config(
        by_port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # each answer in one write (server/coalesce.py); 431 for headers over h11's limit
        http=HeaderLimitH11Protocol,
    )
    # uvicorn turns SIGTERM and SIGINT into a graceful exit, which runs the lifespan's cleanup
    # once every connection is done: the console's streams are ended first, or they would
    # hold the exit up for ever.
    server = _ApiServer(config)
    server.on_exit = ctx.feed.close
    await server.serve(sockets=sockets)


def build_eb(ctx: Context) -> EB:
    buckets = Buckets(ObjectIndex(ctx.store), ctx.home.root)
    buckets.sweep()
    return EB(
        ctx,
        ctx.keys,
        buckets,
        ResourceMeta(ctx.store),
        ctx.home.root / "cache" / "eb-info",
    )


def _listen(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP named, not 0: asyncio turns TCP_NODELAY on for accepted connections only
    # when the listener says TCP, and without it a keep-alive answer written in two parts
    # waits ~40 ms for the client's delayed ACK (measured: 44 ms against 0.3 ms a request).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _ApiServer(uvicorn.Server):
    """uvicorn, waking once a second instead of ten times.

    Its main loop only refreshes the ``Date`` header (once a second) and checks whether to
    exit; ten wake-ups a second cost an idle server 0.2 % of a core, a fifth of all it spends
    (measured: 0.23 % against 0.03 % for an idle uvicorn alone). An exit signal still
    wakes it at once.
    """

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    on_exit: Callable[[], None] | None = None  # run in the loop when an exit is asked for

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
            if self.on_exit is not None:
                self._loop.call_soon_threadsafe(self.on_exit)

    async def main_loop(self) -> None:
        self._wake, self._loop = asyncio.Event(), asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000  # on_tick refreshes the date at multiples of 10
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            should_exit = await self.on_tick(counter)


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("BEANPOLE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health probe is noise
    asyncio.run(serve(Home.default()))


if __name__ == "__main__":
    main()
