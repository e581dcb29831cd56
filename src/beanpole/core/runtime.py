"""What every instance runtime speaks: specs in, endpoints and observations out (pure data).

The services never see a backend's own vocabulary (supervisord's statenames, Docker's
container states): each backend translates what it sees into these records, so the reconcile
decisions, health and the deploy gate read the same facts whichever runtime runs the
instances, and a fake runtime in tests produces them without starting a process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class ProcessStatus(StrEnum):
    """A process's state in words every backend can map onto."""

    STARTING = "starting"  # spawned, not yet past the runtime's start period
    RUNNING = "running"
    EXITED = "exited"  # died; the runtime is restarting it on its own (with its backoff)
    FAILED = "failed"  # died and the runtime gave up on it: only a restart brings it back
    STOPPED = "stopped"  # stopped on request (or being stopped)


#: A process in one of these has died: the instance is failing, whatever the load balancer says.
DEAD = frozenset({ProcessStatus.EXITED, ProcessStatus.FAILED})


@dataclass(frozen=True)
class Endpoint:
    """Where an instance answers: the runtime chooses it, the load balancer and probes use it.

    ``isolated``: the instance has a network of its own (a namespace), where its port is
    its platform's, not one shared with the host's other programs.
    """

    host: str
    port: int
    isolated: bool = False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"


@dataclass(frozen=True)
class RunAs:
    """The unprivileged user an application's processes and commands run as."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Mount:
    """A folder of the host in an image's container (the Docker platform's volumes)."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Companion:
    """Another container of an instance: a docker-compose service beside the routed one,
    in the instance's network (its name resolves to the instance itself)."""

    name: str
    image: str
    command: tuple[str, ...] = ()  # () : the image's own
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()


@dataclass(frozen=True)
class InstanceSpec:
    """What to run for one instance; ``env`` is the processes' whole environment except
    ``PORT``, which the runtime sets to the port it allocated.

    ``isolate``: give the instance a network of its own when the runtime can
    (``beanpole:instance:NetworkIsolation``); there ``PORT`` is ``listen_port``, its
    platform's port on Elastic Beanstalk (8080 Node.js, 8000 Python, 5000 otherwise), so an
    app that hard-codes that port works as one that reads ``PORT`` does.

    ``image``: only a container runtime runs it (the Docker platform); the others refuse it.
    """

    instance_id: str
    processes: Mapping[str, str]
    cwd: Path
    env: Mapping[str, str]
    log_dir: Path
    log_max_bytes: int = 10 * 1024 * 1024  # 0 never rotates
    log_backups: int = 5
    stop_wait_s: int = 10
    isolate: bool = True
    listen_port: int = 5000
    run_as: RunAs | None = None  # None: as the runtime's own user (Beanpole is not root)
    # A container image to run (the Docker platform): its own command, user and files;
    # ``processes`` then maps "web" to "" (the image's command) and ``cwd`` is unused.
    image: str = ""
    command: tuple[str, ...] = ()  # the image's command instead of its own (compose's)
    companions: tuple[Companion, ...] = ()  # started first, in order
    mounts: tuple[Mount, ...] = ()  # the image's container's volumes
    memory_limit_mib: int = 0  # 0: none (a container runtime enforces it)
    cpu_limit_percent: int = 0  # of one core; 0: none
    runtime: str = ""  # which runtime runs it (beanpole:instance:Runtime); "": the server's
    # Processes a listener rule reaches (`core.listener_rules`): name -> the port it listens
    # on in an isolated instance, given to that Procfile line as its PORT and reached at the
    # instance's address like ``listen_port``. Instances on the host's network ignore it.
    process_ports: Mapping[str, int] = field(default_factory=dict)
    # Node labels a cluster runtime places the instance by (``beanpole:instance:Constraints``,
    # `core.placement`); the runtimes of one host ignore them.
    node_labels: Mapping[str, str] = field(default_factory=dict)
    environment: str = ""  # the environment's id: a cluster runtime spreads each one's
    # The version's build the processes run from, as folders of this host (its dependencies,
    # then its app folder; `cwd` is in the last). A runtime whose nodes do not share this
    # host's files ships them in an image (`adapters.runtime.swarm`); the others ignore it.
    build_dirs: tuple[Path, ...] = ()

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port an isolated instance is reached at: ``listen_port`` first."""
        return tuple(dict.fromkeys((self.listen_port, *sorted(self.process_ports.values()))))

    @property
    def wanted_runtime(self) -> str:
        """ "docker" for an image (unless it asks for the swarm, whose nodes pull it), else
        ``runtime`` ("" for the server's default)."""
        return "docker" if self.image and self.runtime != "swarm" else self.runtime


@dataclass(frozen=True)
class ProcessObservation:
    """One process of an instance as its runtime sees it now.

    ``reason`` says in words why a dead process ended (``exited with status 3``, ``could not
    start: command not found``); empty while it lives.
    """

    name: str
    status: ProcessStatus
    pid: int = 0
    exit_status: int = 0
    reason: str = ""
    started_at: float = 0.0
    # Times the runtime restarted it on its own, and how the last of those deaths ended
    # (``OOM: exceeded 64 MiB …``): a restart quicker than a look is seen only here.
    restarts: int = 0
    last_exit: str = ""

    @property
    def dead(self) -> bool:
        return self.status in DEAD


@dataclass(frozen=True)
class InstanceObservation:
    """One instance as its runtime sees it: its processes (``web`` serves requests).

    ``endpoint``: where it answers now, from a runtime that may move it (a cluster engine
    gives a task it restarted another address); None from the others, whose endpoint stays
    the one ``start`` returned. ``node``: the cluster node it runs on ("" on one host).
    ``lost``: why it can no longer serve, whatever its processes were last seen doing
    (``node n3 is down``): it is replaced at once, not restarted.
    """

    instance_id: str
    processes: tuple[ProcessObservation, ...] = field(default=())
    endpoint: Endpoint | None = None
    node: str = ""
    lost: str = ""

    @property
    def web(self) -> ProcessObservation | None:
        return next((p for p in self.processes if p.name == "web"), None)

    @property
    def pid(self) -> int:
        """The web process's pid, 0 when it has none (or the instance has no web process)."""
        web = self.web
        return web.pid if web is not None else 0

    @property
    def dead(self) -> tuple[ProcessObservation, ...]:
        return tuple(p for p in self.processes if p.dead)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid]


@dataclass(frozen=True)
class ServerState:
    """One instance as the load balancer sees it (HAProxy's words are its adapter's: ``status``
    and ``check_status`` are kept for the messages users read, ``healthy`` is the verdict)."""

    backend: str  # environment name
    server: str  # instance id
    status: str  # e.g. "UP", "DOWN", "MAINT", "DRAIN", "UP 1/3"
    check_status: str  # e.g. "L7OK", "L4CON", "INI" (no check has run yet)
    weight: int
    sessions: int  # requests in flight
    responses: int = 0  # responses since it joined
    responses_5xx: int = 0
    healthy: bool = False  # in service by the balancer's account and its latest check passed
    bytes_in: int = 0  # since it joined: requests' bytes sent to it (auto scaling's NetworkIn)
    bytes_out: int = 0  # its responses' bytes (NetworkOut)

    @property
    def down(self) -> bool:
        """Its check failed enough times for the balancer to take it out (or it is disabled)."""
        return self.status.startswith(("DOWN", "MAINT"))

    @property
    def unchecked(self) -> bool:
        """Up, but its first check has not run yet."""
        return self.status.startswith("UP") and self.check_status == "INI"

    @property
    def passing(self) -> bool:
        """Healthy, counting a server whose first check is still to come: Beanpole's own probe
        passed HealthyThresholdCount times before it got traffic."""
        return self.healthy or self.unchecked


def describe_failure(process: ProcessObservation, log_lines: list[str]) -> str:
    """A dead process in words a user can act on: how it ended and its last log lines."""
    detail = f"{process.name} {process.reason or f'exited with status {process.exit_status}'}"
    return detail + (": " + " | ".join(log_lines) if log_lines else "")
