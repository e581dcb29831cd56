"""The data plane's daemons on this host (HAProxy, supervisord or Docker): up? stop them.

`beanpole server status` and `beanpole server stop --all` ask these questions, but the CLI
talks to Beanpole only through the client and never imports an adapter (see the Layers
section of docs/architecture.md). The server package owns the adapters, so it answers them,
as a small command the CLI runs in a child process::

    python -m beanpole.server.dataplane status   # {"haproxy": true, "supervisord": false, …}
    python -m beanpole.server.dataplane stop     # {"stopped": ["supervisord", "haproxy"]}

With the Docker runtime (``runtime`` in the home's config), ``docker`` says whether the
engine answers, and ``stop`` also removes this home's containers and network.

Both read ``BEANPOLE_HOME`` like the server does and print one JSON object on stdout; a
failure prints ``Error: …`` on stderr and exits 1. Neither needs the control plane to run:
the data plane outlives it, and stopping it is what an operator does when the control plane
is already gone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from beanpole.adapters.lb.haproxy import HAProxy
from beanpole.adapters.registry import Registry
from beanpole.adapters.runtime import docker, netns
from beanpole.adapters.runtime.docker import Docker
from beanpole.adapters.runtime.supervisord import Supervisor
from beanpole.adapters.runtime.swarm import Swarm
from beanpole.core.errors import BeanpoleError
from beanpole.home import Home

USAGE = "usage: python -m beanpole.server.dataplane {status|stop}"


@dataclass(frozen=True)
class DataPlaneStatus:
    """Whether each daemon runs (not whether it is healthy: its pid lives and it answers)."""

    haproxy: bool
    supervisord: bool
    docker: bool  # the engine answers


def _daemons(home: Home) -> tuple[HAProxy, Supervisor]:
    # The same directories `server.main` gives them, so these objects adopt the running ones.
    # The same owner too, so stopping supervisord frees the ports its instances leased
    # and removes their network namespaces.
    return HAProxy(home.root / "haproxy"), Supervisor(
        home.root / "supervisor",
        owner=str(home.root),
        namespaces=netns.Namespaces() if netns.unavailable() is None else None,
    )


def status(home: Home) -> DataPlaneStatus:
    haproxy, supervisor = _daemons(home)
    engine = docker_runtime(home)
    return DataPlaneStatus(
        haproxy=haproxy.is_running(),
        supervisord=supervisor.is_running(),
        docker=engine is not None and engine.is_running(),
    )


def docker_runtime(home: Home) -> Docker | None:
    """The home's containers, where Docker's engine answers: any home may run some (the
    Docker platform, beanpole:instance:Runtime), whatever its default runtime."""
    if docker.unavailable() is not None:
        return None
    return Docker(str(home.root), directory=home.root / "docker")


def _stop_swarm(home: Home) -> list[str]:
    """Remove the home's swarm services, gateway, route and network, and stop its registry
    (a home whose runtime is the swarm)."""
    config = home.load_config()
    if config.runtime != "swarm":
        return []
    # the registry's address matters only to its certificate: stopping needs its pid file
    registry = Registry(home.root / "registry", address="127.0.0.1", port=config.registry_port)
    engine = Swarm(
        str(home.root),
        registry=registry,
        base_url=config.docker_host or None,
        manager_address=config.manager_address or None,
    )
    stopped = []
    try:
        if engine.observe():
            stopped.append("swarm")
        engine.shutdown()
    except Exception as exc:  # the manager stopped answering: stop the rest anyway
        print(f"could not remove this home's swarm services: {exc}", file=sys.stderr)
    finally:
        engine.close()
    if registry.is_running():
        registry.stop()
        stopped.append("registry")
    return stopped


def stop(home: Home) -> list[str]:
    """Stop supervisord (and with it every instance) or remove the home's containers, then
    HAProxy; name what was stopped."""
    haproxy, supervisor = _daemons(home)
    stopped: list[str] = []
    engine = docker_runtime(home)
    if engine is not None:
        try:
            if engine.observe():  # this home's containers (its network goes either way)
                stopped.append("docker")
            engine.shutdown()
        except Exception as exc:  # the engine stopped answering: stop the rest anyway
            print(f"could not remove this home's containers: {exc}", file=sys.stderr)
        finally:
            engine.close()
    stopped.extend(_stop_swarm(home))
    if supervisor.is_running():
        supervisor.shutdown()
        stopped.append("supervisord")
    elif supervisor.namespaces is not None:
        # supervisord died with its instances: their namespaces are left over
        supervisor.namespaces.reclaim(supervisor.owner, set())
    if haproxy.is_running():
        haproxy.stop()
        stopped.append("haproxy")
    return stopped


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in (["status"], ["stop"]):
        print(USAGE, file=sys.stderr)
        return 2
    home = Home.default()
    try:
        answer = asdict(status(home)) if args == ["status"] else {"stopped": stop(home)}
    except BeanpoleError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
