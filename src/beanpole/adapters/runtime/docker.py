"""Instances as Docker containers: the Docker Engine, through the Docker SDK for Python.

Each instance is a small pod, as Kubernetes makes one:

- a *network holder* container (``<prefix>-<instance>``, process label ``_net``) that only
  sleeps. It owns the instance's network namespace on this home's Docker network, at an
  address Beanpole chose (``beanpole.address``), so the address survives the restarts of
  the app's processes and every process of the instance shares one ``localhost``, as the
  processes of an Elastic Beanstalk instance do;
- one container per Procfile process (``<prefix>-<instance>-<process>``), joined to that
  namespace (``network_mode=container:…``), restarted by the engine when it dies
  (``on-failure``, `RETRIES` times, then it stays exited: ``failed``).

The containers run the version's build as it lies on the host, with the host's own userland
mounted read-only at the same paths (`host_mounts`): a build made for supervisord runs
unchanged, nothing is pulled from a registry, and switching an environment's runtime needs
no rebuild (docs/decisions.md says why this and not an image per platform). Only the app's
folder, its log folder and its runtime folder are writable, plus a private ``/tmp``.

Networking: the home's network (``<prefix>``, a bridge with a subnet out of `POOL`) is
``internal`` (no route out of the host) with inter-container traffic off, and no port is
published: the host (HAProxy, the probes) reaches an instance at its address. Inside, as
with supervisord's namespaces, an nft DNAT sends the port arriving on ``eth0`` to
``127.0.0.1``, so an app bound to loopback (gunicorn's default) is reachable too.

Output: each process writes to ``<log_dir>/<process>.stdout.log`` (stdout and stderr in the
order written), the files every log reader of Beanpole reads, whichever the runtime.

Everything about an instance is in its containers' labels, so a new control plane adopts
what runs (``observe``) with no file of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ipaddress
import logging
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import docker
import docker.errors
import docker.types

from beanpole.adapters import logs
from beanpole.adapters.runtime.launch import shell_line
from beanpole.adapters.runtime.netns import inner_rules, only_root_connects
from beanpole.core.errors import BuildError, ComponentError, InvalidInput
from beanpole.core.runtime import (
    Endpoint,
    InstanceObservation,
    InstanceSpec,
    Mount,
    ProcessObservation,
    ProcessStatus,
)

log = logging.getLogger(__name__)

#: Where homes' networks come from: one /20 each (2,000 instances), the first free one.
POOL = ipaddress.IPv4Network("10.214.0.0/16")
#: Beanpole assigns instance addresses from the lower half of a home's /20; the engine gives
#: the process containers' (unused) endpoints addresses from the upper half.
RETRIES = 3
IMAGE = "beanpole/host-root"
NET = "_net"  # the network holder's process label: not a process of the app
LABEL = "beanpole"
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_PROCESS_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_ENGINE_START_S = 30.0
TAIL_LINES = 20
_API_TIMEOUT_S = 60
#: Host folders never mounted: the kernel's, per-boot state, and the host's own /tmp.
_NOT_MOUNTED = frozenset(
    {"proc", "sys", "dev", "run", "tmp", "boot", "lost+found", "media", "mnt", "sbin"}
)
#: A full look (every container inspected) at least this often, as supervisord's backend does.
OBSERVE_REFRESH_S = 30.0
_UP = re.compile(
    r"Up (?:(?P<less>Less than a second)|(?P<about>About an? )?(?:(?P<n>\d+) )?"
    r"(?P<unit>second|minute|hour|day|week|month|year)s?)"
)
_UNIT_S = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def unavailable(base_url: str | None = None) -> str | None:
    """Why containers cannot run here, or None when the engine answers."""
    try:
        client = _client(base_url, timeout=5)
    except docker.errors.DockerException as exc:
        return f"the Docker engine does not answer ({_short(exc)})"
    try:
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        return f"the Docker engine does not answer ({_short(exc)})"
    finally:
        client.close()
    return None


def host_mounts(root: Path = Path("/")) -> list[str]:
    """The host folders every container sees read-only at the same path: every top-level
    folder but the kernel's, per-boot and temporary ones (symlinks such as ``/bin`` →
    ``usr/bin`` are part of the image)."""
    return sorted(
        str(p)
        for p in root.iterdir()
        if p.is_dir() and not p.is_symlink() and p.name not in _NOT_MOUNTED
    )


def host_mounts_beside(hidden: Sequence[Path], root: Path = Path("/")) -> list[str]:
    """`host_mounts`, leaving out the folders ``hidden`` (absolute): a top-level folder that
    holds one is replaced by what it holds beside it, down to the hidden folder (its files
    and links too: a link is mounted as what it points to, when that exists)."""
    hidden = [h.absolute() for h in hidden]

    def beside(folder: Path) -> list[str]:
        if folder in hidden:
            return []
        if not any(folder in h.parents for h in hidden):
            return [str(folder)]
        out: list[str] = []
        for child in sorted(folder.iterdir()):
            if child.is_dir() and not child.is_symlink():
                out += beside(child)
            elif child.exists():  # a file, or a link to something (a dangling one is left)
                out.append(str(child))
        return out

    return sorted(m for folder in host_mounts(root) for m in beside(Path(folder)))


def host_root_layout(root: Path = Path("/")) -> bytes:
    """The image's filesystem as a tar: an empty folder for each mount point and the host's
    top-level symlinks (merged /usr), ``/sbin`` a real folder (the engine's init goes there)
    and an empty ``/tmp``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        names = {*(Path(m).name for m in host_mounts(root)), "proc", "sys", "dev", "run", "sbin"}
        for name in sorted(names):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
        for p in sorted(root.iterdir()):
            if p.is_symlink() and p.name not in names and p.name != "tmp":
                link = tarfile.TarInfo(p.name)
                link.type, link.linkname = tarfile.SYMTYPE, os.readlink(p)
                tar.addfile(link)
    return buf.getvalue()


def owner_ids(spec: InstanceSpec) -> tuple[int, int]:
    """The uid and gid the app's processes run as (this process's when the spec names none)."""
    return (spec.run_as.uid, spec.run_as.gid) if spec.run_as else (os.getuid(), os.getgid())


def host_root_mounts(spec: InstanceSpec, shared: Sequence[Path]) -> list[docker.types.Mount]:
    """The mounts of a container that runs ``spec`` under the host-root image: the host's
    folders and ``shared`` read-only, a private ``/tmp``, and writable only the app's folder,
    its log folder and its run folder (made the app user's here)."""
    owner = owner_ids(spec)
    writable = [spec.cwd.absolute(), spec.log_dir.absolute()]
    # the instance's own run folder (`Fleet.instance_spec`), never another path a
    # setting names: it is made the app user's and mounted writable
    run_dir = spec.log_dir.absolute().parent / "run"
    if spec.env.get("XDG_RUNTIME_DIR") == str(run_dir):
        writable.append(run_dir)
    for folder in writable[1:]:
        folder.mkdir(parents=True, exist_ok=True)
        if spec.run_as is not None:
            os.chown(folder, *owner)
    return [
        *(
            docker.types.Mount(p, p, type="bind", read_only=True)
            for p in (*host_mounts(), *map(str, shared))
            if Path(p) not in writable
        ),
        # the container's own /tmp, in the same list as the binds: the engine mounts a
        # list in path order, so a writable folder under /tmp is not hidden by it
        docker.types.Mount("/tmp", None, type="tmpfs", tmpfs_mode=0o1777),  # noqa: S108
        *(docker.types.Mount(str(w), str(w), type="bind") for w in writable),
    ]


def taken_subnets(api: docker.APIClient) -> list[ipaddress.IPv4Network]:
    """The subnets of every network the engine knows."""
    taken = []
    for network in api.networks():
        for pool in (network.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, ValueError):
                taken.append(ipaddress.IPv4Network(pool["Subnet"]))
    return taken


@dataclass(frozen=True)
class _Container:
    """One of our containers as the engine's list shows it."""

    id: str
    instance: str
    process: str
    state: str  # created, running, restarting, exited, dead, removing, paused
    status: str  # the engine's words: "Up 3 seconds", "Exited (3) 2 seconds ago"
    labels: Mapping[str, str]


@dataclass
class _Inspected:
    """What only an inspect tells: kept per container until its summary says it changed."""

    state: str
    pid: int
    exit_code: int
    started_at: float
    oom_killed: bool
    error: str
    restart_count: int
    at: float  # time.time() of the inspect
    last_exit: str = ""  # how the death before the engine's last restart ended


class Docker:
    """This home's containers on the Docker Engine at ``base_url`` (``DOCKER_HOST`` or the
    local socket when None). ``owner`` names the home: its containers, network and addresses
    are its own; two homes on one engine never see each other's."""

    def __init__(
        self,
        owner: str,
        *,
        base_url: str | None = None,
        directory: Path | None = None,
        shared: tuple[Path, ...] = (),
    ) -> None:
        self.owner = owner
        # folders every container also sees read-only, wherever they are (the home's builds:
        # a version's dependencies are shared between versions, outside its app folder)
        self.shared = tuple(p.absolute() for p in shared)
        self.base_url = base_url
        self.directory = directory  # where a dockerd started here writes its log
        digest = hashlib.sha256(owner.encode()).hexdigest()[:10]
        self.prefix = f"beanpole-{digest}"
        self.network = self.prefix
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()  # address allocation and pod creation
        self._inspected: dict[str, _Inspected] = {}
        self._observe_lock = threading.Lock()
        self._subnet: ipaddress.IPv4Network | None = None
        self._dnat_applied: dict[str, str] = {}  # holder container id -> its netns inode
        self._pumps: dict[str, threading.Thread] = {}  # container id -> its log copier
        self._drained: dict[str, str] = {}  # container id -> the stopped state copied

    # -- the engine ----------------------------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = _client(self.base_url, timeout=_API_TIMEOUT_S)
        return self._client

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def is_running(self) -> bool:
        try:
            return bool(self.client.ping())
        except (docker.errors.DockerException, OSError):
            return False

    def ensure_running(self) -> None:
        """Start the engine when it is installed but not running (as root), then make this
        home's image and network."""
        if not self.is_running():
            self._start_engine()
        self._ensure_image()
        self._ensure_network()
        self._guard_host()

    def _guard_host(self) -> None:
        """As root with nft: host processes that are not root (HAProxy and the probes are)
        cannot connect to an instance; other containers cannot either (the network is
        internal, with traffic between its containers off)."""
        if os.geteuid() != 0 or shutil.which("nft") is None:
            return
        table = (
            f"table ip beanpole-docker {{}}\ndelete table ip beanpole-docker\n"
            f"table ip beanpole-docker {{\n{only_root_connects(POOL)}\n}}\n"
        )
        done = subprocess.run(
            ["nft", "-f", "-"], input=table, capture_output=True, text=True, timeout=20, check=False
        )
        if done.returncode != 0:
            raise ComponentError(f"could not set the host's rule for {POOL}: {done.stderr.strip()}")

    def _start_engine(self) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None or os.geteuid() != 0 or self.base_url not in (None, _LOCAL):
            raise ComponentError(
                "The Docker engine does not answer at "
                f"{self.base_url or os.environ.get('DOCKER_HOST') or _LOCAL}. Install it "
                "(scripts/bootstrap.sh --docker, or apt-get install docker.io) and start "
                "it (dockerd), or run the server with --runtime supervisord."
            )
        out = subprocess.DEVNULL
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            out = (self.directory / "dockerd.log").open("ab")  # type: ignore[assignment]
        subprocess.Popen(  # the engine outlives this process, as supervisord does
            [dockerd], stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
        deadline = time.monotonic() + _ENGINE_START_S
        while not self.is_running():
            if time.monotonic() > deadline:
                raise ComponentError(
                    f"dockerd was started but did not answer within {_ENGINE_START_S:.0f} s"
                    + (f"; see {self.directory / 'dockerd.log'}" if self.directory else "")
                )
            time.sleep(0.2)

    def _ensure_image(self) -> str:
        layout = host_root_layout()
        tag = hashlib.sha256(layout).hexdigest()[:12]
        name = f"{IMAGE}:{tag}"
        try:
            self.api.inspect_image(name)  # type: ignore[no-untyped-call]
        except docker.errors.ImageNotFound:
            self.api.import_image_from_data(layout, repository=IMAGE, tag=tag)
        self._image = name
        return name

    def _ensure_network(self) -> ipaddress.IPv4Network:
        if self._subnet is not None:
            return self._subnet
        with contextlib.suppress(docker.errors.NotFound):
            return self._remember(self.api.inspect_network(self.network))
        taken = self._taken_subnets()
        for subnet in POOL.subnets(new_prefix=20):
            if any(subnet.overlaps(t) for t in taken):
                continue
            ipam = docker.types.IPAMConfig(
                pool_configs=[
                    docker.types.IPAMPool(
                        subnet=str(subnet),
                        gateway=str(subnet.network_address + 1),
                        iprange=str(list(subnet.subnets(prefixlen_diff=1))[1]),
                    )
                ]
            )
            try:
                self.api.create_network(
                    self.network,
                    driver="bridge",
                    internal=True,
                    ipam=ipam,
                    options={"com.docker.network.bridge.enable_icc": "false"},
                    labels={f"{LABEL}.home": self.owner},
                    check_duplicate=True,
                )
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # another control plane of this home made it
                    return self._remember(self.api.inspect_network(self.network))
                if "overlap" in str(exc):
                    continue
                raise ComponentError(
                    f"could not create Docker network {self.network}: {exc}"
                ) from exc
            return self._remember(self.api.inspect_network(self.network))
        raise ComponentError(f"no free /20 left in {POOL} for this home's Docker network")

    def _taken_subnets(self) -> list[ipaddress.IPv4Network]:
        return taken_subnets(self.api)

    def _remember(self, network: Mapping[str, Any]) -> ipaddress.IPv4Network:
        self._subnet = ipaddress.IPv4Network(network["IPAM"]["Config"][0]["Subnet"])
        return self._subnet

    @property
    def gateway(self) -> str:
        """The host's address on this home's network: how an instance reaches the host."""
        return str(self._ensure_network().network_address + 1)

    # -- the Runtime port ----------------------------------------------------------------------

    def start(self, spec: InstanceSpec) -> Endpoint:
        """Create the instance's pod and start it; return its address and ``listen_port``.

        Starting an instance that runs returns its endpoint; one left half-made (a crash
        between two creates) is removed first and made again."""
        _validate(spec)
        with self._lock:
            containers = self._containers(spec.instance_id)
            holder = next((c for c in containers if c.process == NET), None)
            expected = {NET, *spec.processes, *(c.name for c in spec.companions)}
            whole = {c.process for c in containers} >= expected
            if holder is not None and holder.state == "running" and whole:
                return _endpoint(holder)
            for container in containers:
                self._remove(container.id)
            address = self._free_address()
            self._create_pod(spec, address)
        return Endpoint(address, spec.listen_port, isolated=True)

    def _create_pod(self, spec: InstanceSpec, address: str) -> None:
        host_root = getattr(self, "_image", None) or self._ensure_image()
        labels = {
            f"{LABEL}.home": self.owner,
            f"{LABEL}.instance": spec.instance_id,
            f"{LABEL}.address": address,
            f"{LABEL}.port": str(spec.listen_port),
            # every port the instance is reached at (a listener rule's processes too)
            f"{LABEL}.ports": ",".join(map(str, spec.ports)),
            f"{LABEL}.log-dir": str(spec.log_dir.absolute()),
            f"{LABEL}.stop-wait": str(spec.stop_wait_s),
            f"{LABEL}.memory-limit": str(spec.memory_limit_mib),
            **{f"{LABEL}.{k}": v for k, v in _spec_labels(spec.env).items()},
        }
        holder = self.api.create_container(
            host_root,
            command=["sleep", "infinity"],
            name=f"{self.prefix}-{spec.instance_id}",
            hostname=spec.instance_id[:63],
            user="65534:65534",
            labels={**labels, f"{LABEL}.process": NET},
            host_config=self.api.create_host_config(
                mounts=[docker.types.Mount("/usr", "/usr", type="bind", read_only=True)],
                read_only=True,
                network_mode=self.network,
                restart_policy={"Name": "unless-stopped"},
                sysctls={"net.ipv4.conf.all.route_localnet": "1"},
                # docker-compose's service names are the instance itself (one network)
                extra_hosts={c.name: "127.0.0.1" for c in spec.companions},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
            ),
            networking_config=self.api.create_networking_config(
                {self.network: self.api.create_endpoint_config(ipv4_address=address)},  # type: ignore[arg-type]
            ),
        )
        self.api.start(holder["Id"])
        self._dnat(holder["Id"], spec.ports)
        if spec.image:
            self._create_image_process(spec, holder["Id"], labels)
            return
        owner = owner_ids(spec)
        mounts = host_root_mounts(spec, self.shared)
        env = {
            **spec.env,
            "PORT": str(spec.listen_port),
            "BEANPOLE_HOST_ADDRESS": self.gateway,
        }
        for name, command in spec.processes.items():
            out = shlex.quote(str(spec.log_dir.absolute() / f"{name}.stdout.log"))
            created = self.api.create_container(
                host_root,
                command=["/bin/sh", "-c", f"exec >>{out} 2>&1; {shell_line(command)}"],
                name=f"{self.prefix}-{spec.instance_id}-{name}",
                user=f"{owner[0]}:{owner[1]}",
                working_dir=str(spec.cwd.absolute()),
                # a listener rule's process listens on its own port
                environment={**env, "PORT": str(spec.process_ports.get(name, spec.listen_port))},
                labels={**labels, f"{LABEL}.process": name},
                stop_signal="SIGTERM",
                stop_timeout=spec.stop_wait_s,
                host_config=self.api.create_host_config(
                    mounts=mounts,
                    read_only=True,
                    init=True,
                    network_mode=f"container:{holder['Id']}",
                    restart_policy={"Name": "on-failure", "MaximumRetryCount": RETRIES},
                    cap_drop=["ALL"],
                    cap_add=["NET_BIND_SERVICE"],
                    security_opt=["no-new-privileges"],
                    **_limits(spec),
                ),
            )
            self.api.start(created["Id"])

    def _create_image_process(
        self, spec: InstanceSpec, holder_id: str, labels: Mapping[str, str]
    ) -> None:
        """The Docker platform's containers: docker-compose's other services first, in
        order, then the routed one, each with its image's own command (or compose's), user
        and files. Their output stays with the engine (an image may have no shell to
        redirect it), rotated there, and `_pump_logs` copies it to the instance's files."""
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        for companion in spec.companions:
            self._create_image_container(
                spec, holder_id, labels, companion.name, companion.image,
                companion.command, companion.env, companion.mounts,
            )  # fmt: skip
        self._create_image_container(
            spec, holder_id, labels, "web", spec.image, spec.command,
            {**spec.env, "PORT": str(spec.listen_port)}, spec.mounts,
        )  # fmt: skip

    def _create_image_container(
        self,
        spec: InstanceSpec,
        holder_id: str,
        labels: Mapping[str, str],
        name: str,
        image: str,
        command: tuple[str, ...],
        env: Mapping[str, str],
        mounts: tuple[Mount, ...] = (),
    ) -> None:
        created = self.api.create_container(
            image,
            command=list(command) or None,
            name=f"{self.prefix}-{spec.instance_id}-{name}",
            environment=dict(env),
            labels={**labels, f"{LABEL}.process": name, f"{LABEL}.logs": "engine"},
            stop_signal="SIGTERM",
            stop_timeout=spec.stop_wait_s,
            host_config=self.api.create_host_config(
                mounts=[
                    docker.types.Mount(m.target, str(m.source.absolute()), "bind", m.read_only)
                    for m in mounts
                ],
                init=True,
                network_mode=f"container:{holder_id}",
                restart_policy={"Name": "on-failure", "MaximumRetryCount": RETRIES},
                # The image's user, root in most images, keeps Docker's default capabilities
                # but two: a device node it made in a bind-mounted host folder would open the
                # device to host processes (the cgroup stops only the container's own use),
                # and file capabilities it set there could raise a host process that runs
                # the file. The set-uid bit needs no capability: host-side processes run
                # with no_new_privs (`appuser.no_new_privileges`), so it is ignored there.
                cap_drop=["MKNOD", "SETFCAP"],
                security_opt=["no-new-privileges"],
                **_limits(spec),
                log_config=docker.types.LogConfig(
                    type="json-file",
                    config={
                        "max-size": str(max(spec.log_max_bytes, 1024 * 1024)),
                        "max-file": str(max(spec.log_backups, 1) + 1),
                    },
                ),
            ),
        )
        self.api.start(created["Id"])

    # -- images (beanpole.ports.Images) --------------------------------------------------------

    def build_image(
        self, context: Path, tag: str, log: Path, dockerfile: str = "Dockerfile"
    ) -> tuple[str, int | None]:
        """``docker build`` of ``context`` (no pull of newer base images: they must be on
        this host or reachable), its output appended to ``log``."""
        with contextlib.suppress(docker.errors.ImageNotFound):
            return tag, self._exposed(tag)  # built before (the tag is the bundle's digest)
        error = ""
        with log.open("ab") as out:
            out.write(f"$ docker build --tag {tag} .\n".encode())
            try:
                for item in self.api.build(
                    path=str(context),
                    dockerfile=dockerfile,
                    tag=tag,
                    rm=True,
                    forcerm=True,
                    decode=True,
                    labels={f"{LABEL}.home": self.owner},
                ):
                    if "stream" in item:
                        out.write(str(item["stream"]).encode())
                    elif "status" in item:
                        out.write(f"{item['status']} {item.get('progress', '')}\n".encode())
                    elif "error" in item:
                        error = str(item["error"]).strip()
                        out.write(f"{error}\n".encode())
            except docker.errors.DockerException as exc:
                error = _short(exc)
                out.write(f"{error}\n".encode())
        if error:
            tail = logs.tail(log, TAIL_LINES)
            raise BuildError(
                f"docker build failed: {error}{_base_image_hint(context / dockerfile, error)} "
                f"Last {len(tail)} lines of the build output:\n" + "\n".join(tail)
            )
        return tag, self._exposed(tag)

    def ensure_image(self, name: str, log: Path) -> tuple[str, int | None]:
        """The image from this host, else pulled from its registry."""
        try:
            self.api.inspect_image(name)  # type: ignore[no-untyped-call]
        except docker.errors.ImageNotFound:
            with log.open("ab") as out:
                out.write(f"$ docker pull {name}\n".encode())
            try:
                self.api.pull(name)
            except docker.errors.DockerException as exc:
                raise BuildError(
                    f"The image {name} is not on this host and could not be pulled "
                    f"({_short(exc)}). Load it (docker load --input FILE.tar) or build it "
                    f"here (docker build --tag {name} .), then deploy again."
                ) from exc
        return name, self._exposed(name)

    def _exposed(self, image: str) -> int | None:
        config = self.api.inspect_image(image).get("Config") or {}  # type: ignore[no-untyped-call]
        ports = sorted(
            int(key.split("/")[0])
            for key in (config.get("ExposedPorts") or {})
            if key.split("/")[0].isdigit() and key.endswith("/tcp")
        )
        return ports[0] if ports else None

    # -- the engine's logs, copied to the instance's log files ---------------------------------

    def _pump_logs(self, container: _Container) -> None:
        """Copy an image container's new output (since the last line copied, kept beside the
        file) to ``<log_dir>/<process>.stdout.log``: a thread that follows it while it runs,
        one pass when it has stopped (once per state)."""
        if container.labels.get(f"{LABEL}.logs") != "engine":
            return
        pump = self._pumps.get(container.id)
        if pump is not None and pump.is_alive():
            return
        running = container.state == "running"
        if not running and self._drained.get(container.id) == container.state:
            return
        folder = container.labels.get(f"{LABEL}.log-dir")
        if not folder:
            return
        self._drained[container.id] = "" if running else container.state
        thread = threading.Thread(
            target=self._copy_logs,
            args=(container.id, Path(folder) / f"{container.process}.stdout.log", running),
            name=f"logs-{container.instance}",
            daemon=True,
        )
        self._pumps[container.id] = thread
        thread.start()

    def _copy_logs(self, container_id: str, path: Path, follow: bool) -> None:
        copy_logs(
            lambda since: self.api.logs(
                container_id, stream=True, follow=follow, timestamps=True, since=since
            ),
            path,
            container_id[:12],
        )

    def _dnat(self, holder_id: str, ports: Sequence[int]) -> None:
        """Send ``ports`` arriving on the namespace's ``eth0`` to its loopback (as root with
        nft; without, an app must bind 0.0.0.0 to be reached)."""
        if os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("nsenter") is None:
            return
        pid = int(self.api.inspect_container(holder_id)["State"]["Pid"])
        rules = inner_rules(ports)
        done = subprocess.run(
            ["nsenter", "-t", str(pid), "-n", "nft", "-f", "-"],
            input=rules,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if done.returncode != 0:
            raise ComponentError(f"could not set the instance's DNAT rule: {done.stderr.strip()}")
        with contextlib.suppress(OSError):
            self._dnat_applied[holder_id] = str(os.stat(f"/proc/{pid}/ns/net").st_ino)

    def _free_address(self) -> str:
        """The lowest address of the home's lower half that no container of ours holds."""
        subnet = self._ensure_network()
        taken = {c.labels.get(f"{LABEL}.address") for c in self._containers()}
        lower = next(iter(subnet.subnets(prefixlen_diff=1)))
        for address in lower.hosts():
            if address == subnet.network_address + 1 or str(address) in taken:
                continue
            return str(address)
        raise ComponentError(f"every address of {lower} is taken: stop some instances")

    def endpoint(self, instance_id: str) -> Endpoint | None:
        holder = next((c for c in self._containers(instance_id) if c.process == NET), None)
        return _endpoint(holder) if holder is not None else None

    def stop(self, instance_id: str) -> None:
        """TERM every process, wait up to its stop wait, KILL (the engine's ``stop``), then
        remove the pod; the network holder last."""
        containers = self._containers(instance_id)
        for container in sorted(containers, key=lambda c: c.process == NET):
            self._stop(container)
        for container in containers:
            self._remove(container.id)

    def _stop(self, container: _Container) -> None:
        wait = int(container.labels.get(f"{LABEL}.stop-wait", "10"))
        with contextlib.suppress(docker.errors.NotFound):
            self.api.stop(container.id, timeout=wait if container.process != NET else 0)

    def _remove(self, container_id: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_container(container_id, force=True)
        self._inspected.pop(container_id, None)
        self._dnat_applied.pop(container_id, None)
        self._drained.pop(container_id, None)

    def observe(self) -> dict[str, InstanceObservation]:
        """Every pod of this home, in the runtime's neutral words.

        One list call; a container is inspected again (for its pid, exit status and start
        time) only when its state changed, its uptime says it restarted, or every
        `OBSERVE_REFRESH_S`."""
        with self._observe_lock:
            now = time.time()
            containers = self._containers()
            live = {c.id for c in containers}
            for gone in set(self._inspected) - live:
                del self._inspected[gone]
            processes: dict[str, list[ProcessObservation]] = {}
            for container in containers:
                processes.setdefault(container.instance, [])
                if container.process == NET:
                    self._holder_check(container)
                    continue
                self._pump_logs(container)
                limit = int(container.labels.get(f"{LABEL}.memory-limit") or 0)
                before = seen = self._inspected.get(container.id)
                if seen is None or _changed(container, seen, now):
                    seen = self._inspect(container.id)
                    if seen is None:
                        continue
                    if before is not None and seen.restart_count > before.restart_count:
                        seen.last_exit = self._last_death(container.id, before.at - 1.0, limit)
                    elif before is not None:
                        seen.last_exit = before.last_exit
                processes[container.instance].append(_observation(container.process, seen, limit))
            return {
                instance: InstanceObservation(instance, tuple(sorted(ps, key=lambda p: p.name)))
                for instance, ps in processes.items()
            }

    def _holder_check(self, holder: _Container) -> None:
        """A network holder the engine restarted has a new namespace: apply its DNAT again."""
        if holder.state != "running":
            return
        seen = self._inspected.get(holder.id)
        if seen is not None and not _changed(holder, seen, time.time()):
            return
        fresh = self._inspect(holder.id)
        if fresh is None or fresh.pid == 0:
            return
        try:
            inode = str(os.stat(f"/proc/{fresh.pid}/ns/net").st_ino)
        except OSError:
            return
        if self._dnat_applied.get(holder.id) != inode:
            with contextlib.suppress(ComponentError, subprocess.SubprocessError):
                self._dnat(holder.id, _ports(holder.labels))

    def _inspect(self, container_id: str) -> _Inspected | None:
        try:
            attrs = self.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return None
        state = attrs.get("State") or {}
        inspected = _Inspected(
            state=str(state.get("Status", "")),
            pid=int(state.get("Pid") or 0),
            exit_code=int(state.get("ExitCode") or 0),
            started_at=_timestamp(state.get("StartedAt")),
            oom_killed=bool(state.get("OOMKilled")),
            error=str(state.get("Error") or ""),
            restart_count=int(attrs.get("RestartCount") or 0),
            at=time.time(),
        )
        self._inspected[container_id] = inspected
        return inspected

    def _last_death(self, container_id: str, since: float, memory_limit_mib: int) -> str:
        """How the container's last death since ``since`` ended, from the engine's events
        (after a restart its state no longer says it was killed for memory)."""
        oom, code = False, None
        try:
            for event in self.api.events(
                since=int(since),
                until=int(time.time()) + 1,
                filters={"container": container_id, "event": ["die", "oom"]},
                decode=True,
            ):
                if event.get("status") == "oom" or event.get("Action") == "oom":
                    oom = True
                else:
                    attributes = (event.get("Actor") or {}).get("Attributes") or {}
                    code = attributes.get("exitCode", code)
        except docker.errors.DockerException as exc:
            log.debug("events of %s: %s", container_id[:12], exc)
            return ""
        if code is None:
            return ""
        if oom:
            limit = f"exceeded {memory_limit_mib} MiB" if memory_limit_mib else "out of memory"
            return f"OOM: {limit} (killed, exit status {code})"
        return f"exited with status {code}"

    def restart(self, instance_id: str, process: str) -> None:
        """Start again a process whose container stays exited (the engine gave up)."""
        for container in self._containers(instance_id):
            if container.process == process and container.state in ("exited", "created"):
                self.api.start(container.id)
                self._inspected.pop(container.id, None)

    def log_files(self, instance_id: str) -> list[Path]:
        containers = self._containers(instance_id)
        folder = next((c.labels.get(f"{LABEL}.log-dir") for c in containers), None)
        if not folder:
            return []
        names = sorted(c.process for c in containers if c.process != NET)
        return [Path(folder) / f"{name}.stdout.log" for name in names]

    def log_tail(self, instance_id: str, lines: int, process: str | None = None) -> list[str]:
        """The last lines, from the files; an image container's from the engine itself (its
        copy may lag a container that just died, whose last words matter most)."""
        containers = [c for c in self._containers(instance_id) if c.process != NET]
        if any(c.labels.get(f"{LABEL}.logs") == "engine" for c in containers):
            engine: list[str] = []
            for c in sorted(containers, key=lambda c: c.process):
                if process is None or c.process == process:
                    with contextlib.suppress(docker.errors.DockerException):
                        text = self.api.logs(c.id, tail=lines).decode(errors="replace")
                        engine.extend(line for line in text.splitlines() if line.strip())
            return engine[-lines:]
        out: list[str] = []
        for path in self.log_files(instance_id):
            if process is None or path.name.startswith(f"{process}."):
                with contextlib.suppress(OSError):
                    out.extend(line for line in logs.tail(path, lines) if line.strip())
        return out[-lines:]

    def reclaim(self, live: set[str]) -> None:
        """Addresses belong to containers: nothing to free apart from them. Pods of
        instances the store does not know are stopped by the reconciler, like any orphan."""

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def shutdown(self) -> None:
        """Stop and remove every container of this home, then its network."""
        for instance in {c.instance for c in self._containers()}:
            self.stop(instance)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.api.remove_network(self.network)
        self._subnet = None

    # -- helpers -------------------------------------------------------------------------------

    def _containers(self, instance_id: str | None = None) -> list[_Container]:
        filters = [f"{LABEL}.home={self.owner}"]
        if instance_id is not None:
            filters.append(f"{LABEL}.instance={instance_id}")
        try:
            rows = self.api.containers(all=True, filters={"label": filters})
        except (docker.errors.DockerException, OSError) as exc:
            raise ComponentError(f"the Docker engine did not answer: {_short(exc)}") from exc
        return [
            _Container(
                id=row["Id"],
                instance=labels[f"{LABEL}.instance"],
                process=labels.get(f"{LABEL}.process", ""),
                state=str(row.get("State", "")),
                status=str(row.get("Status", "")),
                labels=labels,
            )
            for row in rows
            if f"{LABEL}.instance" in (labels := row.get("Labels") or {})
        ]


_LOCAL = "unix:///var/run/docker.sock"


def _client(base_url: str | None, *, timeout: int) -> docker.DockerClient:
    if base_url is None and "DOCKER_HOST" not in os.environ:
        base_url = _LOCAL
    if base_url is None:
        return docker.from_env(timeout=timeout)
    return docker.DockerClient(base_url=base_url, timeout=timeout)


def copy_logs(
    open_stream: Callable[[float | None], Iterable[bytes]],
    path: Path,
    what: str,
    route: Callable[[bytes], tuple[Path, bytes]] | None = None,
) -> None:
    """Append the engine's output (lines stamped with ``timestamps=True``) to ``path``, from
    just after the last line copied before (its time is kept beside the file), until the
    stream ends. ``open_stream(since)`` opens it (``since``: None for all). ``route``: the
    file each line goes to instead, and the line to write there."""
    mark = path.with_name(f".{path.name}.since")
    try:
        since = float(mark.read_text())
    except (OSError, ValueError):
        since = 0.0
    files: dict[Path, BinaryIO] = {}
    try:
        stream = open_stream(since if since > 0 else None)
        files[path] = path.open("ab")
        pending = b""
        for chunk in stream:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                stamp, _, text = line.partition(b" ")
                target, text = route(text) if route is not None else (path, text)
                if target not in files:
                    files[target] = target.open("ab")
                files[target].write(text + b"\n")
                since = max(since, _timestamp(stamp.decode(errors="replace")))
            for out in files.values():
                out.flush()
            mark.write_text(f"{since + 1e-6:.6f}")
    except Exception as exc:  # the stream broke (its engine went): a new copy goes on
        log.debug("copying %s's logs stopped: %s", what, exc)
    finally:
        for out in files.values():
            out.close()


def _base_image_hint(dockerfile: Path, error: str) -> str:
    """What to do when the Dockerfile's base image could not be had."""
    if not re.search(r"pull access denied|no such host|not found|manifest unknown|dial tcp", error):
        return "."
    try:
        text = dockerfile.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "."
    bases = re.findall(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", text, re.I | re.M)
    if not bases:
        return "."
    return (
        f". The base image ({', '.join(dict.fromkeys(bases))}) must be on this host when no "
        "registry can be reached: load it (docker load --input FILE.tar) or build it here, "
        "then deploy again."
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__


def _endpoint(holder: _Container) -> Endpoint:
    return Endpoint(
        holder.labels[f"{LABEL}.address"], int(holder.labels[f"{LABEL}.port"]), isolated=True
    )


def _spec_labels(env: Mapping[str, str]) -> dict[str, str]:
    """Where an instance belongs, for ``docker ps`` readers (the environment and version)."""
    out = {}
    for variable, label in (
        ("BEANPOLE_ENVIRONMENT", "environment"),
        ("BEANPOLE_ENVIRONMENT_ID", "environment-id"),
        ("BEANPOLE_VERSION", "version"),
    ):
        if variable in env:
            out[label] = env[variable]
    return out


def _timestamp(value: object) -> float:
    """The engine's RFC 3339 time (nanoseconds) as a Unix time; 0 for its zero time."""
    if not isinstance(value, str) or value.startswith("0001-"):
        return 0.0
    text = re.sub(r"(\.\d{6})\d*", r"\1", value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def uptime_bounds(status: str) -> tuple[float, float] | None:
    """The range of uptimes the engine's ``Up …`` words allow, in seconds (None: not up)."""
    match = _UP.search(status)
    if match is None:
        return None
    if match["less"]:
        return (0.0, 1.0)
    unit = _UNIT_S.get(match["unit"], 2_592_000)
    if match["about"]:
        return (unit * 0.5, unit * 2.0)
    n = int(match["n"] or 1)
    return (n * unit - 1.0, (n + 1) * unit + 1.0)


def _changed(container: _Container, seen: _Inspected, now: float) -> bool:
    """Whether the list row says the container changed since ``seen`` was inspected."""
    if container.state != seen.state or now - seen.at > OBSERVE_REFRESH_S:
        return True
    if container.state != "running" or seen.started_at <= 0:
        return False
    bounds = uptime_bounds(container.status)
    # restarted since: its uptime is shorter than the time since the start we know of
    return bounds is not None and bounds[1] < now - seen.started_at - 1.0


def _limits(spec: InstanceSpec) -> dict[str, Any]:
    """The engine's limits for the spec's (none unless set; no swap beyond the memory)."""
    out: dict[str, Any] = {}
    if spec.memory_limit_mib > 0:
        out["mem_limit"] = f"{spec.memory_limit_mib}m"
        out["memswap_limit"] = f"{spec.memory_limit_mib}m"
    if spec.cpu_limit_percent > 0:
        out["nano_cpus"] = spec.cpu_limit_percent * 10_000_000
    return out


def _observation(name: str, seen: _Inspected, memory_limit_mib: int = 0) -> ProcessObservation:
    if seen.state == "running":
        return ProcessObservation(
            name,
            ProcessStatus.RUNNING,
            seen.pid,
            0,
            "",
            seen.started_at,
            restarts=seen.restart_count,
            last_exit=seen.last_exit,
        )
    if seen.state == "created":
        return ProcessObservation(name, ProcessStatus.STARTING, 0, 0, "", seen.started_at)
    if seen.state in ("removing", "paused"):
        return ProcessObservation(name, ProcessStatus.STOPPED, 0, 0, "", seen.started_at)
    reason = _reason(seen, memory_limit_mib)
    if seen.state == "restarting":
        return ProcessObservation(
            name, ProcessStatus.EXITED, 0, seen.exit_code, reason + "; restarting",
            seen.started_at,
        )  # fmt: skip
    return ProcessObservation(
        name, ProcessStatus.FAILED, 0, seen.exit_code, reason, seen.started_at
    )


def _reason(seen: _Inspected, memory_limit_mib: int = 0) -> str:
    if seen.error:
        return f"could not start: {seen.error}"
    if seen.oom_killed:
        limit = f"exceeded {memory_limit_mib} MiB" if memory_limit_mib else "out of memory"
        return f"OOM: {limit} (killed, exit status {seen.exit_code})"
    return f"exited with status {seen.exit_code}"


def _validate(spec: InstanceSpec) -> None:
    if not _INSTANCE_ID.match(spec.instance_id):
        raise InvalidInput(f"instance id {spec.instance_id!r} has characters Docker refuses")
    for name in spec.processes:
        if not _PROCESS_NAME.match(name) or name == NET:
            raise InvalidInput(f"process name {name!r}: use letters, digits, '_' and '-'")
    if not 0 < spec.listen_port < 65536:
        raise InvalidInput(f"listen_port must be 1-65535, got {spec.listen_port}")
    for companion in spec.companions:
        if not _PROCESS_NAME.match(companion.name) or companion.name in (NET, "web"):
            raise InvalidInput(f"container name {companion.name!r} is taken or not allowed")


def _ports(labels: Mapping[str, str]) -> list[int]:
    """The ports an instance's holder was made to DNAT (a holder made before ``ports``
    labels existed has only ``port``)."""
    listed = labels.get(f"{LABEL}.ports") or labels.get(f"{LABEL}.port", "")
    return [int(p) for p in listed.split(",") if p.strip().isdigit()]
