"""Instances as Docker Swarm services: one service per instance, on the node Beanpole chose.

Beanpole talks to a swarm manager's API (``base_url``; the local engine when None). Each
instance is a service of one task (``<prefix>-<instance>``), pinned by a constraint to the
node `core.placement` chose, so the environment spreads over the nodes as an auto scaling
group spreads over zones, and Beanpole's deployment policies, health gates and rollbacks
decide which instance runs which version. The engine runs the task, restarts it when it
dies (``on-failure``, `RETRIES` times, as the Docker runtime does) and kills it when its
service is removed, also on a node that was down when it was.

Images: every node pulls each instance's image by digest from a registry (`Registry`,
``docker-registry`` run by Beanpole unless the operator names another). A Docker-platform
version's image is pushed there the first time an instance of it starts. A version of the
other platforms becomes an image then too (`version_image`): ``beanpole/host-root`` (the
Docker runtime's image: an empty tree for the node's folders) with a layer per folder of
its build, at their paths; the task mounts the node's folders read-only beside Beanpole's
home, which it never sees, and its output reaches this host through the engine. So the
nodes need the host's runtime (system folders, interpreters), not its files
(docs/swarm.md). A spec without build folders (tests) runs from the host's folders.

Networking (docs/swarm-plan.md measured the choices): the home's services sit on one
``attachable`` overlay network (``beanpole-<digest>``, a /20 out of `POOL`), with no port
published and no virtual IP (``dnsrr``: kernels without IPVS work). A *gateway* container on
the manager (``<prefix>-gw``), on that overlay, forwards and masquerades what arrives from
its other side; the host routes the overlay's subnet through it, so HAProxy and Beanpole's
probes reach every task at its overlay address, on any node, and only root may connect
(the Docker runtime's rule). Inside a task an nft rule sends the instance's ports arriving
from outside to its loopback, so an app bound to 127.0.0.1 is reached as under the other
runtimes; the task starts as root only to set that rule, then drops to the app's user with
no privileges left (``setpriv``).

A task's address is the engine's choice: a task restarted by the engine may get another.
`observe` reports each instance's current endpoint, and the reconciler moves the load
balancer's server when it changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ipaddress
import logging
import os
import shlex
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import docker
import docker.errors
import docker.types

from beanpole.adapters import logs
from beanpole.adapters.runtime import docker as docker_runtime
from beanpole.adapters.runtime.docker import IMAGE, host_root_layout
from beanpole.adapters.runtime.launch import shell_line
from beanpole.adapters.runtime.netns import only_root_connects
from beanpole.core import placement
from beanpole.core.errors import ComponentError, InvalidInput
from beanpole.core.runtime import (
    Endpoint,
    InstanceObservation,
    InstanceSpec,
    ProcessObservation,
    ProcessStatus,
)

log = logging.getLogger(__name__)

#: Where homes' overlay networks come from: one /20 each (128), free on the manager and in
#: this host's routes, starting at one that depends on the home: a node keeps a removed
#: network's subnet a while, and refuses a new network that overlaps it.
POOL = ipaddress.IPv4Network("10.216.0.0/13")
RETRIES = 3
LABEL = "beanpole"
#: The repository of versions' images (`Swarm.version_image`), tagged by their layers.
BUILD_IMAGE = "beanpole/build"
#: Before a line of an instance's output, when it runs more than one process: whose it is.
PROCESS_MARK = b"\x1f"
#: Docker's default node heartbeat, and the one Beanpole sets instead (`_quick_heartbeat`).
DEFAULT_HEARTBEAT_NS = 5_000_000_000
HEARTBEAT_NS = 1_000_000_000
#: How often `observe` checks that the gateway runs and the route goes through it.
GATEWAY_CHECK_S = 5.0
#: How often `observe` starts a collection of the version images no instance can need again
#: (`Swarm.collect_images`): the first one this long after the runtime is made.
IMAGE_COLLECT_S = 300.0
_API_TIMEOUT_S = 60
_ADDRESS_WAIT_S = 20.0
#: Task states before the container runs.
_STARTING = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
)
_FAILED = frozenset({"failed", "rejected", "complete", "orphaned"})
#: The gateway's one job: forward what the host sends to the overlay, as its own address
#: there (a task's reply then comes back through it, not by its own node's default route).
_GATEWAY_RULES = """\
table ip beanpole-gw {{
    chain post {{
        type nat hook postrouting priority srcnat; policy accept;
        ip daddr {subnet} masquerade
    }}
}}
"""


class ImageRegistry(Protocol):
    """Where the nodes pull images from (`adapters.registry`: the one Beanpole runs, or the
    operator's)."""

    @property
    def host(self) -> str: ...

    def ensure_running(self) -> None: ...

    def push(self, client: docker.APIClient, image: str, repository: str) -> str: ...

    def trust_hint(self) -> str: ...

    def manifest_digest(self, repository: str, tag: str) -> str | None: ...

    def delete(self, reference: str) -> None: ...

    def collect_garbage(self) -> int: ...


class _PushGate:
    """Pushes to the registry run side by side; its garbage collection runs alone (a layer
    it removes while a push is between uploading it and sending its manifest would be
    lost)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._pushes = 0
        self._collecting = False

    @contextlib.contextmanager
    def push(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._collecting)
            self._pushes += 1
        try:
            yield
        finally:
            with self._changed:
                self._pushes -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def collect(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._collecting and not self._pushes)
            self._collecting = True
        try:
            yield
        finally:
            with self._changed:
                self._collecting = False
                self._changed.notify_all()


@dataclass(frozen=True)
class SwarmNode:
    """A node of the swarm as ``beanpole nodes`` shows it."""

    id: str
    hostname: str
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    role: str  # manager, worker
    address: str
    labels: Mapping[str, str]

    @property
    def placement(self) -> placement.Node:
        return placement.Node(
            self.id,
            self.hostname,
            ready=self.state == "ready",
            active=self.availability == "active",
            labels=self.labels,
        )


@dataclass(frozen=True)
class _Service:
    """One of our services as the manager lists it."""

    id: str
    instance: str
    labels: Mapping[str, str]
    force_update: int

    @property
    def node(self) -> str:
        return self.labels.get(f"{LABEL}.node", "")

    @property
    def processes(self) -> list[str]:
        return [p for p in self.labels.get(f"{LABEL}.processes", "web").split(",") if p]


class Swarm:
    """This home's services on the swarm whose manager answers at ``base_url``.

    ``registry``: where images go for the nodes to pull. ``local_url``: the engine that
    builds images (the local one when None: on a cluster, Beanpole runs on a manager).
    ``manager_address``: when Beanpole's host is not the manager, the manager's address as
    seen from here; the overlay's traffic is routed through it (the manager's firewall must
    forward it: docs/swarm.md).
    """

    def __init__(
        self,
        owner: str,
        *,
        registry: ImageRegistry,
        base_url: str | None = None,
        local_url: str | None = None,
        manager_address: str | None = None,
        shared: tuple[Path, ...] = (),
        hidden: tuple[Path, ...] = (),
    ) -> None:
        self.owner = owner
        self.registry = registry
        self.base_url = base_url
        self.local_url = local_url
        self.manager_address = manager_address
        self.shared = tuple(p.absolute() for p in shared)
        # host folders a version's instance never sees (the home: its database, keys and
        # builds); its build comes in its image
        self.hidden = tuple(p.absolute() for p in hidden)
        digest = hashlib.sha256(owner.encode()).hexdigest()[:10]
        self.prefix = f"bp-{digest}"
        self.network = f"beanpole-{digest}"
        self.gateway = f"{self.prefix}-gw"
        self._api: docker.APIClient | None = None
        self._local: docker.APIClient | None = None
        self._lock = threading.Lock()  # placement and service creation
        self._pushed: dict[str, str] = {}  # local image -> the reference nodes pull
        self._subnet: ipaddress.IPv4Network | None = None
        self._network_id = ""
        self._seen_nodes: dict[str, str] = {}  # hostname -> state, at the last observe
        self._gateway_checked = 0.0  # time.monotonic() of the last gateway check
        self._pumps: dict[str, threading.Thread] = {}  # service id -> its log copier
        self._image_locks: dict[str, threading.Lock] = {}  # build image tag -> its builder
        self._push_gate = _PushGate()
        self._collected = time.monotonic()  # when the last image collection started
        self._collector: threading.Thread | None = None

    # -- the engines -----------------------------------------------------------------------

    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            self._api = docker_runtime._client(self.base_url, timeout=_API_TIMEOUT_S).api
        return self._api

    @property
    def local(self) -> docker.APIClient:
        """The engine that builds and pushes images."""
        if self.local_url == self.base_url:
            return self.api
        if self._local is None:
            self._local = docker_runtime._client(self.local_url, timeout=_API_TIMEOUT_S).api
        return self._local

    def is_running(self) -> bool:
        """The manager answers as a manager, and the gateway runs."""
        try:
            info = self.api.info()
            if not (info.get("Swarm") or {}).get("ControlAvailable"):
                return False
            gateway = self.api.inspect_container(self.gateway)
        except (docker.errors.DockerException, OSError):
            return False
        return bool((gateway.get("State") or {}).get("Running")) and self._routed(gateway)

    def ensure_running(self) -> None:
        """Check the manager, start the registry, push the base image, then make the overlay
        network, its gateway and the host's route through it (each only when missing)."""
        try:
            info = self.api.info()
        except (docker.errors.DockerException, OSError) as exc:
            raise ComponentError(
                f"The swarm manager does not answer at {self._where()} "
                f"({docker_runtime._short(exc)}). Start Docker there, or name the manager "
                "with beanpole server start --runtime swarm --docker-host URL."
            ) from exc
        if not (info.get("Swarm") or {}).get("ControlAvailable"):
            raise ComponentError(
                f"The Docker engine at {self._where()} is not a swarm manager. Make it one "
                "(docker swarm init --advertise-addr ADDRESS; docs/swarm.md), or name a "
                "manager with --docker-host."
            )
        self._quick_heartbeat()
        self.registry.ensure_running()
        self._ensure_network()
        self._ensure_gateway()
        self._guard_host()

    def _quick_heartbeat(self) -> None:
        """Nodes report every second rather than Docker's default 5 s, so a dead node is
        known in about 2 s rather than 13 (docs/swarm.md). A period the operator set
        (anything but the default) is left alone."""
        try:
            inspected = self.api.inspect_swarm()
        except docker.errors.DockerException as exc:
            log.warning("could not read the swarm's settings: %s", exc)
            return
        spec = dict(inspected.get("Spec") or {})
        dispatcher = dict(spec.get("Dispatcher") or {})
        if int(dispatcher.get("HeartbeatPeriod") or 0) != DEFAULT_HEARTBEAT_NS:
            return
        dispatcher["HeartbeatPeriod"] = HEARTBEAT_NS
        spec["Dispatcher"] = dispatcher
        try:
            self.api.update_swarm(int(inspected["Version"]["Index"]), swarm_spec=spec)
        except docker.errors.DockerException as exc:
            log.warning("could not shorten the swarm's heartbeat: %s", exc)
        else:
            log.info("swarm heartbeat set to %.0f s (was 5 s)", HEARTBEAT_NS / 1e9)

    def _where(self) -> str:
        return self.base_url or os.environ.get("DOCKER_HOST") or docker_runtime._LOCAL

    def host_root(self) -> str:
        """The reference of the host-root image in the registry (pushed once per layout)."""
        return self._push(self._local_host_root())

    def _local_host_root(self) -> str:
        """The host-root image on the engine that builds (made there once per layout)."""
        layout = host_root_layout()
        name = f"{IMAGE}:{hashlib.sha256(layout).hexdigest()[:12]}"
        if name not in self._pushed:
            try:
                self.local.inspect_image(name)  # type: ignore[no-untyped-call]
            except docker.errors.ImageNotFound:
                self.local.import_image_from_data(layout, repository=IMAGE, tag=name.split(":")[1])
        return name

    def version_image(self, spec: InstanceSpec) -> str:
        """The reference nodes pull of the image of ``spec``'s build: the host-root image
        with a layer per folder of `InstanceSpec.build_dirs` (the dependencies' layer is
        shared by the versions that share them), made on the engine that builds the first
        time an instance of the version starts, and pushed to the registry."""
        image = self._local_host_root()
        chain = hashlib.sha256(image.encode())
        for folder in (p.absolute() for p in spec.build_dirs):
            try:
                stat = folder.stat()
            except OSError as exc:
                raise ComponentError(
                    f"instance {spec.instance_id}'s build folder {folder} cannot be read "
                    f"({exc.strerror}): deploy the version again to build it anew"
                ) from exc
            # a folder made again (a build removed and redone), or a file at its top written
            # again (a tool copied anew), is another layer; a build's files never change
            # once it is done
            changed = max([stat.st_mtime_ns, *(p.lstat().st_mtime_ns for p in folder.iterdir())])
            chain.update(f"\0{folder}\0{stat.st_dev}\0{stat.st_ino}\0{changed}".encode())
            tag = f"{BUILD_IMAGE}:{chain.hexdigest()[:32]}"
            with self._image_lock(tag):
                try:
                    self.local.inspect_image(tag)  # type: ignore[no-untyped-call]
                except docker.errors.ImageNotFound:
                    self._build_layer(image, folder, tag)
            image = tag
        with self._image_lock(image):
            return self._push(image)

    def remove_images(self) -> int:
        """Remove this home's version images from the engine that builds (a cache: they are
        made again when needed); how many were removed."""
        removed = 0
        mine = {"label": [f"{LABEL}.home={self.owner}", f"{LABEL}.build"]}
        while True:  # an image another is made from goes once that one went
            gone = 0
            for image in self.local.images(filters=mine):
                with contextlib.suppress(docker.errors.DockerException):
                    self.local.remove_image(image["Id"], force=True)
                    gone += 1
            removed += gone
            if not gone:
                break
        self._pushed = {k: v for k, v in self._pushed.items() if not k.startswith(BUILD_IMAGE)}
        return removed

    def _image_lock(self, tag: str) -> threading.Lock:
        with self._lock:
            return self._image_locks.setdefault(tag, threading.Lock())

    def _build_layer(self, parent: str, folder: Path, tag: str) -> None:
        """``tag``: ``parent`` with ``folder`` and all it holds at its own path, each file
        owned and moded as here (a tar ``ADD``ed: ``COPY`` would give every file one owner,
        and a build's files have two: Beanpole's and the app user's)."""
        started = time.monotonic()
        dockerfile = f"FROM {parent}\nADD layer.tar /\n".encode()
        near = next((p for p in self.shared if p in folder.parents), None)
        with (
            tempfile.TemporaryFile(dir=near) as layer,
            tempfile.TemporaryFile(dir=near) as context,
        ):
            with tarfile.open(fileobj=layer, mode="w") as tar:
                tar.add(folder, arcname=str(folder).lstrip("/"))
            size = layer.tell()
            layer.seek(0)
            with tarfile.open(fileobj=context, mode="w") as tar:
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(dockerfile)
                tar.addfile(info, io.BytesIO(dockerfile))
                info = tarfile.TarInfo("layer.tar")
                info.size = size
                tar.addfile(info, layer)
            context.seek(0)
            error = ""
            try:
                for item in self.local.build(
                    fileobj=context,
                    custom_context=True,
                    tag=tag,
                    rm=True,
                    forcerm=True,
                    decode=True,
                    labels={f"{LABEL}.home": self.owner, f"{LABEL}.build": str(folder)},
                ):
                    if "error" in item:
                        error = str(item["error"]).strip()
            except docker.errors.DockerException as exc:
                error = docker_runtime._short(exc)
        if error:
            raise ComponentError(f"could not make the image of {folder}: {error}")
        log.info(
            "image %s: %s (%.1f MB) in %.1f s",
            tag,
            folder,
            size / 1e6,
            time.monotonic() - started,
        )

    def _push(self, image: str) -> str:
        if image not in self._pushed:
            repository = image.rpartition(":")[0] if ":" in image.rpartition("/")[2] else image
            with self._push_gate.push():
                self._pushed[image] = self.registry.push(self.local, image, repository)
        return self._pushed[image]

    def collect_images(self) -> int:
        """Remove the version images no instance can need again: those whose build folder
        is gone (its version was deleted) and that no service of this home runs. Each goes
        from the registry (its manifest, then the layers no other manifest holds) and from
        the engine that builds. The nodes keep what they pulled (docs/swarm.md). Returns how
        many images went."""
        mine = {"label": [f"{LABEL}.home={self.owner}", f"{LABEL}.build"]}
        try:
            images = self.local.images(filters=mine)
            running = {
                _image_of(row).rpartition("@")[2] for row in self._labelled(self.api.services, None)
            }
        except (docker.errors.DockerException, OSError) as exc:
            log.warning("version images not collected: %s", docker_runtime._short(exc))
            return 0
        doomed = [
            image
            for image in images
            if (folder := (image.get("Labels") or {}).get(f"{LABEL}.build"))
            and not os.path.lexists(folder)
        ]
        if not doomed:
            return 0
        deleted = 0
        with self._push_gate.collect():
            for image in list(doomed):
                # pushed under its id as tag (`registry.push_image`)
                tag = str(image["Id"]).rpartition(":")[2]
                try:
                    digest = self.registry.manifest_digest(BUILD_IMAGE, tag)
                    if digest in running:
                        doomed.remove(image)  # a service still runs it: kept
                        continue
                    if digest is not None:
                        self.registry.delete(f"{self.registry.host}/{BUILD_IMAGE}@{digest}")
                        deleted += 1
                except ComponentError as exc:
                    log.warning("version image %s kept: %s", tag[:12], exc)
                    doomed.remove(image)
            if deleted:
                try:
                    freed = self.registry.collect_garbage()
                except ComponentError as exc:
                    log.warning("%s", exc)
                else:
                    log.info(
                        "registry: %d version images deleted, %.1f MB freed", deleted, freed / 1e6
                    )
        removed = self._remove_local(doomed)
        gone = {t for image in doomed for t in image.get("RepoTags") or []}
        self._pushed = {k: v for k, v in self._pushed.items() if k not in gone}
        return removed

    def _remove_local(self, images: list[dict[str, Any]]) -> int:
        """Remove ``images`` from the engine that builds, by each of their names (one that
        another is made from is only untagged, and goes with the last image made from it);
        how many went."""
        for image in images:
            for name in [*(image.get("RepoTags") or []), *(image.get("RepoDigests") or [])]:
                try:
                    self.local.remove_image(name)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    log.warning("version image %s kept: %s", name, docker_runtime._short(exc))
        removed = 0
        for image in images:
            try:
                self.local.inspect_image(image["Id"])  # type: ignore[no-untyped-call]
            except docker.errors.NotFound:
                removed += 1
            except docker.errors.DockerException:
                pass
        return removed

    def _collect_when_due(self) -> None:
        """Start `collect_images` in the background every `IMAGE_COLLECT_S`."""
        now = time.monotonic()
        if now - self._collected < IMAGE_COLLECT_S or (
            self._collector is not None and self._collector.is_alive()
        ):
            return
        self._collected = now
        self._collector = threading.Thread(
            target=self.collect_images, name="swarm-image-collector", daemon=True
        )
        self._collector.start()

    def _pull_on_manager(self, reference: str) -> None:
        try:
            self.api.inspect_image(reference)  # type: ignore[no-untyped-call]
        except docker.errors.ImageNotFound:
            try:
                self.api.pull(reference)
            except docker.errors.DockerException as exc:
                raise ComponentError(
                    f"The swarm manager could not pull {reference} "
                    f"({docker_runtime._short(exc)}). {self.registry.trust_hint()}"
                ) from exc

    # -- the overlay, its gateway and the route --------------------------------------------

    def _ensure_network(self) -> ipaddress.IPv4Network:
        if self._subnet is not None:
            return self._subnet
        with contextlib.suppress(docker.errors.NotFound):
            return self._remember(self.api.inspect_network(self.network))
        # the manager's networks, and what this host already routes elsewhere
        taken = [*docker_runtime.taken_subnets(self.api), *_routed_here()]
        subnets = list(POOL.subnets(new_prefix=20))
        start = int(hashlib.sha256(self.owner.encode()).hexdigest(), 16) % len(subnets)
        for subnet in subnets[start:] + subnets[:start]:
            if any(subnet.overlaps(t) for t in taken):
                continue
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))])
            try:
                self.api.create_network(
                    self.network,
                    driver="overlay",
                    attachable=True,
                    ipam=ipam,
                    labels={f"{LABEL}.home": self.owner},
                    check_duplicate=True,
                )
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    return self._remember(self.api.inspect_network(self.network))
                raise ComponentError(
                    f"could not create the overlay network {self.network}: {exc}"
                ) from exc
            return self._remember(self.api.inspect_network(self.network))
        raise ComponentError(f"no free /20 left in {POOL} for this home's overlay network")

    def _remember(self, network: Mapping[str, Any]) -> ipaddress.IPv4Network:
        deadline = time.monotonic() + 10.0
        while not (network.get("IPAM") or {}).get("Config"):  # allocated just after create
            if time.monotonic() > deadline:
                raise ComponentError(f"the overlay network {self.network} got no subnet")
            time.sleep(0.05)
            network = self.api.inspect_network(self.network)
        self._subnet = ipaddress.IPv4Network(network["IPAM"]["Config"][0]["Subnet"])
        self._network_id = str(network["Id"])
        return self._subnet

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return self._ensure_network()

    def _ensure_gateway(self) -> None:
        subnet = self._ensure_network()
        try:
            gateway = self.api.inspect_container(self.gateway)
        except docker.errors.NotFound:
            gateway = None
        if gateway is not None and not (gateway.get("State") or {}).get("Running"):
            with contextlib.suppress(docker.errors.DockerException):
                self.api.start(self.gateway)
            gateway = self.api.inspect_container(self.gateway)
            if not (gateway.get("State") or {}).get("Running"):
                self.api.remove_container(self.gateway, force=True)
                gateway = None
        if gateway is None:
            image = self.host_root()
            self._pull_on_manager(image)
            created = self.api.create_container(
                image,
                command=[
                    "/usr/bin/sh",
                    "-c",
                    'printf "%s" "$RULES" | nft -f - && exec sleep infinity',
                ],
                name=self.gateway,
                environment={
                    "RULES": _GATEWAY_RULES.format(subnet=subnet),
                    "PATH": "/usr/sbin:/usr/bin",
                },
                labels={f"{LABEL}.home": self.owner, f"{LABEL}.role": "gateway"},
                host_config=self.api.create_host_config(
                    mounts=[docker.types.Mount("/usr", "/usr", type="bind", read_only=True)],
                    read_only=True,
                    init=True,
                    network_mode=self.network,
                    restart_policy={"Name": "always"},
                    sysctls={"net.ipv4.ip_forward": "1"},
                    cap_drop=["ALL"],
                    cap_add=["NET_ADMIN"],
                ),
            )
            self.api.start(created["Id"])
            gateway = self.api.inspect_container(created["Id"])
        self._route(gateway)

    def _check_gateway(self) -> None:
        """Every `GATEWAY_CHECK_S`: the gateway runs and this host's route goes through it,
        else both are made again (a restarted gateway may have another address)."""
        now = time.monotonic()
        if now - self._gateway_checked < GATEWAY_CHECK_S:
            return
        self._gateway_checked = now
        try:
            gateway = self.api.inspect_container(self.gateway)
            if (gateway.get("State") or {}).get("Running") and self._routed(gateway):
                return
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as exc:
            log.warning("could not check the gateway %s: %s", self.gateway, exc)
            return
        log.warning(
            "the gateway %s or the route through it is gone: making them again", self.gateway
        )
        try:
            self._ensure_gateway()
        except (ComponentError, docker.errors.DockerException) as exc:
            log.warning("could not make the gateway %s again: %s", self.gateway, exc)

    def _gateway_bridge_address(self, gateway: Mapping[str, Any]) -> str:
        """The gateway's address on the manager's ``docker_gwbridge`` (the way in)."""
        bridge = self.api.inspect_network("docker_gwbridge")
        entry = (bridge.get("Containers") or {}).get(gateway["Id"]) or {}
        address = str(entry.get("IPv4Address") or "").partition("/")[0]
        if not address:
            raise ComponentError(
                f"the gateway container {self.gateway} has no address on docker_gwbridge"
            )
        return address

    def _route(self, gateway: Mapping[str, Any]) -> None:
        """Route the overlay's subnet through the gateway: from here straight to it on the
        manager's bridge, or (Beanpole off the manager) to the manager, which a one-off
        container on its host network routes on to the gateway."""
        subnet = str(self._ensure_network())
        via = self._gateway_bridge_address(gateway)
        if self.manager_address is not None:
            self._ip_on_manager("route", "replace", subnet, "via", via)
            via = self.manager_address
        _ip("route", "replace", subnet, "via", via, "mtu", "1450")

    def _ip_on_manager(self, *args: str) -> None:
        """``ip ARGS`` on the manager's host network (a one-off container)."""
        image = self.host_root()
        created = self.api.create_container(
            image,
            command=["/usr/sbin/ip", *args],
            labels={f"{LABEL}.home": self.owner, f"{LABEL}.role": "route"},
            host_config=self.api.create_host_config(
                mounts=[docker.types.Mount("/usr", "/usr", type="bind", read_only=True)],
                read_only=True,
                network_mode="host",
                cap_drop=["ALL"],
                cap_add=["NET_ADMIN"],
            ),
        )
        try:
            self.api.start(created["Id"])
            result = self.api.wait(created["Id"], timeout=30)
            if int(result.get("StatusCode", 1)) != 0:
                out = self.api.logs(created["Id"]).decode(errors="replace").strip()
                raise ComponentError(f"ip {' '.join(args)} failed on the manager: {out}")
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                self.api.remove_container(created["Id"], force=True)

    def _routed(self, gateway: Mapping[str, Any]) -> bool:
        """Whether this host's route to the overlay goes where it should."""
        try:
            via = self.manager_address or self._gateway_bridge_address(gateway)
        except (ComponentError, docker.errors.DockerException):
            return False
        done = subprocess.run(
            ["ip", "-o", "route", "show", "exact", str(self._ensure_network())],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return f"via {via} " in done.stdout + " "

    def _guard_host(self) -> None:
        """As root with nft: host processes that are not root cannot connect to a task."""
        if os.geteuid() != 0 or shutil.which("nft") is None:
            return
        name = f"beanpole-swarm-{self.prefix[3:]}"
        table = (
            f"table ip {name} {{}}\ndelete table ip {name}\n"
            f"table ip {name} {{\n{only_root_connects(self._ensure_network())}\n}}\n"
        )
        done = subprocess.run(
            ["nft", "-f", "-"], input=table, capture_output=True, text=True, timeout=20, check=False
        )
        if done.returncode != 0:
            raise ComponentError(f"could not set the host's rule: {done.stderr.strip()}")

    # -- nodes -----------------------------------------------------------------------------

    def nodes(self) -> list[SwarmNode]:
        """Every node of the swarm, by hostname."""
        try:
            rows = self.api.nodes()
        except (docker.errors.DockerException, OSError) as exc:
            raise ComponentError(
                f"the swarm manager did not answer: {docker_runtime._short(exc)}"
            ) from exc
        out = []
        for node in rows:
            spec = node.get("Spec") or {}
            status = node.get("Status") or {}
            out.append(
                SwarmNode(
                    id=str(node["ID"]),
                    hostname=str((node.get("Description") or {}).get("Hostname", node["ID"])),
                    state=str(status.get("State", "unknown")),
                    availability=str(spec.get("Availability", "active")),
                    role=str(spec.get("Role", "worker")),
                    address=str(status.get("Addr", "")),
                    labels=dict(spec.get("Labels") or {}),
                )
            )
        return sorted(out, key=lambda n: (n.hostname, n.id))

    def node_states(self) -> dict[str, str]:
        """Each node's state (ready, down, …) as the last `observe` saw it."""
        return dict(self._seen_nodes)

    def set_availability(self, node: str, availability: str) -> SwarmNode:
        """Set a node's availability (active, pause, drain) by hostname or id."""
        if availability not in ("active", "pause", "drain"):
            raise InvalidInput(f"availability {availability!r}: use active, pause or drain")
        found = next((n for n in self.nodes() if node in (n.hostname, n.id)), None)
        if found is None:
            raise InvalidInput(f"No node {node!r} in the swarm: see beanpole nodes.")
        try:
            inspected = self.api.inspect_node(found.id)
            spec = dict(inspected["Spec"])
            spec["Availability"] = availability
            self._update_node(found.id, int(inspected["Version"]["Index"]), spec)
        except docker.errors.DockerException as exc:
            raise ComponentError(
                f"the swarm manager refused to set {found.hostname} {availability}: "
                f"{docker_runtime._short(exc)}"
            ) from exc
        return next(n for n in self.nodes() if n.id == found.id)

    def _update_node(self, node_id: str, version: int, spec: dict[str, Any]) -> None:
        self.api.update_node(node_id, version, spec)  # type: ignore[arg-type]

    # -- the Runtime port ------------------------------------------------------------------

    def start(self, spec: InstanceSpec) -> Endpoint:
        """Place the instance, create its service and return its address once the engine
        gave it one (a tenth of a second; the app starts after)."""
        docker_runtime._validate(spec)
        if spec.companions:
            raise InvalidInput(
                "A docker-compose application with more than one service cannot run under "
                "the swarm runtime yet: give the environment the docker runtime "
                "(beanpole:instance:Runtime = docker)."
            )
        for service in self._services(spec.instance_id):
            endpoint = self._endpoint_of(service)
            if endpoint is not None:
                return endpoint
        # made before the lock: the first instance of a version builds and pushes its image
        image = self.version_image(spec) if spec.build_dirs and not spec.image else ""
        with self._lock:
            existing = self._services(spec.instance_id)
            for service in existing:
                endpoint = self._endpoint_of(service)
                if endpoint is not None:
                    return endpoint
                self._remove(service)
            node = self._place(spec)
            service_id = self._create(spec, node, image)
        return self._wait_address(service_id, spec)

    def _place(self, spec: InstanceSpec) -> SwarmNode:
        nodes = self.nodes()
        env = _environment(spec)
        env_counts: dict[str, int] = {}
        all_counts: dict[str, int] = {}
        for service in self._services():
            all_counts[service.node] = all_counts.get(service.node, 0) + 1
            if env and service.labels.get(f"{LABEL}.environment-key") == env:
                env_counts[service.node] = env_counts.get(service.node, 0) + 1
        chosen = placement.choose(
            [n.placement for n in nodes], env_counts, all_counts, spec.node_labels
        )
        if chosen is None:
            wanted = ", ".join(f"{k}={v}" for k, v in spec.node_labels.items())
            raise ComponentError(
                "No node of the swarm can take a new instance: none is ready and active"
                + (f" with the labels {wanted}" if wanted else "")
                + ". See beanpole nodes; label a node with docker node update --label-add."
            )
        return next(n for n in nodes if n.id == chosen.id)

    def _create(self, spec: InstanceSpec, node: SwarmNode, image: str = "") -> str:
        env_key = _environment(spec)
        labels = {
            f"{LABEL}.home": self.owner,
            f"{LABEL}.instance": spec.instance_id,
            f"{LABEL}.node": node.id,
            f"{LABEL}.port": str(spec.listen_port),
            f"{LABEL}.ports": ",".join(map(str, spec.ports)),
            f"{LABEL}.log-dir": str(spec.log_dir.absolute()),
            f"{LABEL}.processes": ",".join(spec.processes) if not spec.image else "web",
            f"{LABEL}.environment-key": env_key,
            f"{LABEL}.memory-limit": str(spec.memory_limit_mib),
            f"{LABEL}.stop-wait": str(spec.stop_wait_s),
            # an image's output (a version image's too) reaches this host by the engine
            **({f"{LABEL}.logs": "engine"} if spec.image or image else {}),
            **{f"{LABEL}.{k}": v for k, v in docker_runtime._spec_labels(spec.env).items()},
        }
        container = (
            self._image_container(spec, labels)
            if spec.image
            else self._container(spec, labels, image)
        )
        resources = docker.types.Resources(
            cpu_limit=spec.cpu_limit_percent * 10_000_000 or None,
            mem_limit=spec.memory_limit_mib * 1024 * 1024 or None,
        )
        template = docker.types.TaskTemplate(
            container,
            resources=resources,
            restart_policy=docker.types.RestartPolicy(
                condition="on-failure", delay=0, max_attempts=RETRIES
            ),
            placement=docker.types.Placement(constraints=[f"node.id=={node.id}"]),
            networks=[docker.types.NetworkAttachmentConfig(self.network)],
            log_driver=docker.types.DriverConfig(
                "json-file",
                {
                    "max-size": str(max(spec.log_max_bytes, 1024 * 1024)),
                    "max-file": str(max(spec.log_backups, 1) + 1),
                },
            ),
        )
        try:
            created = self.api.create_service(  # type: ignore[no-untyped-call]
                template,
                name=f"{self.prefix}-{spec.instance_id}",
                labels=labels,
                endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
            )
        except docker.errors.APIError as exc:
            raise ComponentError(
                f"the swarm manager refused instance {spec.instance_id}: "
                f"{docker_runtime._short(exc)}"
            ) from exc
        return str(created["ID"])

    def _container(
        self, spec: InstanceSpec, labels: Mapping[str, str], image: str = ""
    ) -> docker.types.ContainerSpec:
        """A Procfile instance: its processes in one task, the first to die ending it.

        With ``image`` (its version's, `version_image`) the build comes from the image and
        the output goes to the engine; without, the build is read at its host path (the
        host-root image) and the output is written to ``log_dir``."""
        owner = docker_runtime.owner_ids(spec)
        if image:
            spec.log_dir.mkdir(parents=True, exist_ok=True)  # the engine's copy goes there
            mounts = self._version_mounts(spec)
        else:
            mounts = docker_runtime.host_root_mounts(spec, self.shared)
        rules = (
            "table ip beanpole {\n chain prerouting {\n"
            "  type nat hook prerouting priority dstnat; policy accept;\n"
            f'  iifname != "lo" tcp dport {{ {", ".join(map(str, spec.ports))} }} '
            "dnat to 127.0.0.1\n }\n}\n"
        )
        drop = (
            f"exec setpriv --reuid={owner[0]} --regid={owner[1]} --clear-groups "
            "--no-new-privs --inh-caps=-all --bounding-set=-all "
            '-- /usr/bin/bash -c "$BEANPOLE_RUN"'
        )
        entry = 'printf "%s" "$BEANPOLE_NFT" | nft -f - || exit 70; unset BEANPOLE_NFT; ' + drop
        env = {
            **spec.env,
            "PORT": str(spec.listen_port),
            "BEANPOLE_NFT": rules,
            "BEANPOLE_RUN": _supervise(spec, to_files=not image),
        }
        return docker.types.ContainerSpec(
            image or self.host_root(),
            command=["/usr/bin/sh", "-c", entry],
            hostname=spec.instance_id[:63],
            env={**env, "PATH": env.get("PATH", "/usr/local/bin:/usr/bin:/bin") + ":/usr/sbin"},
            workdir=str(spec.cwd.absolute()),
            user="0:0",
            labels=dict(labels),
            mounts=mounts,
            stop_grace_period=spec.stop_wait_s * 1_000_000_000,
            stop_signal="SIGTERM",
            # a version's instance writes into its own copy of the build, as on EB's
            # instances; the host's folders stay read-only mounts
            read_only=not image,
            init=True,
            cap_drop=["ALL"],
            cap_add=["NET_ADMIN", "SETUID", "SETGID", "SETPCAP"],
            sysctls={
                "net.ipv4.conf.all.route_localnet": "1",
                "net.ipv4.ip_unprivileged_port_start": "0",
            },
        )

    def _version_mounts(self, spec: InstanceSpec) -> list[docker.types.Mount]:
        """A version image's task: the node's folders read-only beside the home and the
        build (the image brings the build), and a per-user run folder of its own. Its
        ``/tmp`` is the image's, its own: a tmpfs there would hide a build under /tmp."""
        hidden = (*self.hidden, *self.shared, *(p.absolute() for p in spec.build_dirs))
        mounts = [
            docker.types.Mount(p, p, type="bind", read_only=True)
            for p in docker_runtime.host_mounts_beside(hidden)
        ]
        private = []
        run_dir = spec.log_dir.absolute().parent / "run"  # as `host_root_mounts` has it
        if spec.env.get("XDG_RUNTIME_DIR") == str(run_dir):
            private.append(str(run_dir))
        return sorted(
            [
                *mounts,
                *(docker.types.Mount(p, None, type="tmpfs", tmpfs_mode=0o1777) for p in private),
            ],
            key=lambda m: m["Target"],
        )

    def _image_container(
        self, spec: InstanceSpec, labels: Mapping[str, str]
    ) -> docker.types.ContainerSpec:
        """A Docker-platform instance: its image's own command, user and files."""
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        return docker.types.ContainerSpec(
            self._push(spec.image),
            args=list(spec.command) or None,
            hostname=spec.instance_id[:63],
            env={**spec.env, "PORT": str(spec.listen_port)},
            labels=dict(labels),
            mounts=[
                docker.types.Mount(m.target, str(m.source.absolute()), "bind", m.read_only)
                for m in spec.mounts
            ],
            stop_grace_period=spec.stop_wait_s * 1_000_000_000,
            stop_signal="SIGTERM",
            init=True,
            cap_drop=["MKNOD", "SETFCAP"],
        )

    def _wait_address(self, service_id: str, spec: InstanceSpec) -> Endpoint:
        deadline = time.monotonic() + _ADDRESS_WAIT_S
        while True:
            service = next(
                (s for s in self._services(spec.instance_id) if s.id == service_id), None
            )
            if service is None:
                raise ComponentError(f"instance {spec.instance_id}'s service vanished")
            endpoint = self._endpoint_of(service)
            if endpoint is not None:
                return endpoint
            if time.monotonic() > deadline:
                raise ComponentError(
                    f"the swarm gave instance {spec.instance_id} no address within "
                    f"{_ADDRESS_WAIT_S:.0f} s"
                )
            time.sleep(0.05)

    def endpoint(self, instance_id: str) -> Endpoint | None:
        for service in self._services(instance_id):
            return self._endpoint_of(service)
        return None

    def _endpoint_of(self, service: _Service) -> Endpoint | None:
        task = _latest(self._tasks(service.instance).get(service.id, []))
        address = self._address(task) if task is not None else ""
        if not address:
            return None
        return Endpoint(address, int(service.labels.get(f"{LABEL}.port", "0")), isolated=True)

    def _address(self, task: Mapping[str, Any]) -> str:
        self._ensure_network()
        for attachment in task.get("NetworksAttachments") or []:
            network = attachment.get("Network") or {}
            if network.get("ID") == self._network_id:
                for address in attachment.get("Addresses") or []:
                    return str(address).partition("/")[0]
        return ""

    def stop(self, instance_id: str) -> None:
        """Remove the instance's service: its node's engine sends TERM, waits the stop wait,
        then KILLs (also later, on a node that is down now). Returns once its task ended or
        after the stop wait and a margin."""
        for service in self._services(instance_id):
            wait = int(service.labels.get(f"{LABEL}.stop-wait", "10") or 10)
            self._remove(service)
            deadline = time.monotonic() + wait + 5.0
            while time.monotonic() < deadline:
                tasks = self._tasks(service.instance).get(service.id, [])
                live = [t for t in tasks if _state(t) in ("running", *_STARTING)]
                if not live or all(self._node_down(t.get("NodeID", "")) for t in live):
                    break
                time.sleep(0.1)

    def _node_down(self, node_id: str) -> bool:
        with contextlib.suppress(docker.errors.DockerException):
            node = self.api.inspect_node(node_id)
            return (node.get("Status") or {}).get("State") != "ready"
        return True

    def _remove(self, service: _Service) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_service(service.id)  # type: ignore[no-untyped-call]

    def observe(self) -> dict[str, InstanceObservation]:
        """Every instance of this home: the latest task of its service, in the runtime's
        words; one that sits on a node that is down has failed (``node n3 is down``)."""
        self._collect_when_due()
        services = self._services()
        if not services:
            return {}
        self._check_gateway()
        tasks = self._tasks()
        nodes = {n.id: n for n in self.nodes()}
        self._seen_nodes = {n.hostname: n.state for n in nodes.values()}
        out = {}
        for gone in set(self._pumps) - {s.id for s in services}:
            del self._pumps[gone]
        for service in services:
            self._pump_logs(service)
            history = tasks.get(service.id, [])
            status, pid, code, reason, started, restarts, last = _status(
                history, service.force_update
            )
            node = nodes.get(service.node)
            lost = ""
            if node is None:
                lost = "its node left the swarm"
            elif node.state != "ready":
                lost = f"node {node.hostname} is {node.state}"
            if lost and status is not ProcessStatus.STOPPED:
                status, pid, reason = ProcessStatus.FAILED, 0, lost
            endpoint = None
            latest = _latest(history)
            if latest is not None and (address := self._address(latest)):
                endpoint = Endpoint(
                    address, int(service.labels.get(f"{LABEL}.port", "0")), isolated=True
                )
            out[service.instance] = InstanceObservation(
                service.instance,
                tuple(
                    ProcessObservation(
                        name,
                        status,
                        pid,
                        code,
                        reason,
                        started,
                        restarts=restarts,
                        last_exit=last,
                    )
                    for name in sorted(service.processes)
                ),
                endpoint=endpoint,
                node=node.hostname if node is not None else "",
                lost=lost,
            )
        return out

    def _pump_logs(self, service: _Service) -> None:
        """Follow an image instance's output into ``<log_dir>/web.stdout.log`` (a thread per
        service, started again when it stopped), as the Docker runtime copies its
        containers': the files are what every log reader of Beanpole reads, and a dead
        node's output cannot be read later."""
        folder = service.labels.get(f"{LABEL}.log-dir")
        if service.labels.get(f"{LABEL}.logs") != "engine" or not folder:
            return
        pump = self._pumps.get(service.id)
        if pump is not None and pump.is_alive():
            return
        names = sorted(service.processes) or ["web"]
        files = {name.encode(): Path(folder) / f"{name}.stdout.log" for name in names}
        path = files[b"web"] if b"web" in files else files[names[0].encode()]
        thread = threading.Thread(
            target=docker_runtime.copy_logs,
            args=(
                lambda since: self.api.service_logs(
                    service.id,
                    follow=True,
                    stdout=True,
                    stderr=True,
                    timestamps=True,
                    since=int(since or 0),
                    is_tty=False,
                ),
                path,
                service.instance,
                (lambda text: _route(text, files, path)) if len(files) > 1 else None,
            ),
            name=f"logs-{service.instance}",
            daemon=True,
        )
        self._pumps[service.id] = thread
        thread.start()

    def restart(self, instance_id: str, process: str) -> None:
        """Run the instance's task again once the engine gave up on it (a new task). Not on
        a node that is down: such an instance is lost, and replaced elsewhere."""
        for service in self._services(instance_id):
            latest = _latest(self._tasks(service.instance).get(service.id, []))
            if latest is not None and _state(latest) in ("running", *_STARTING):
                continue
            if self._node_down(service.node):
                continue
            inspected = self.api.inspect_service(service.id)  # type: ignore[no-untyped-call]
            template = dict(inspected["Spec"]["TaskTemplate"])
            template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
            self.api.update_service(
                service.id,
                int(inspected["Version"]["Index"]),
                task_template=template,
                fetch_current_spec=True,
            )

    def log_files(self, instance_id: str) -> list[Path]:
        for service in self._services(instance_id):
            folder = service.labels.get(f"{LABEL}.log-dir")
            if folder:
                return [Path(folder) / f"{name}.stdout.log" for name in sorted(service.processes)]
        return []

    def log_tail(self, instance_id: str, lines: int, process: str | None = None) -> list[str]:
        """The last lines: an image's from the engine, the others' from their files."""
        out: list[str] = []
        for service in self._services(instance_id):
            if service.labels.get(f"{LABEL}.logs") == "engine":
                with contextlib.suppress(docker.errors.DockerException):
                    raw = self.api.service_logs(
                        service.id, stdout=True, stderr=True, tail=str(lines), is_tty=False
                    )
                    text = (
                        b"".join(raw).decode(errors="replace")
                        if not isinstance(raw, bytes)
                        else raw.decode(errors="replace")
                    )
                    for line in text.splitlines():
                        name, marked, rest = line.partition(PROCESS_MARK.decode())
                        if marked and name in service.processes:
                            if process is None or name == process:
                                out.append(rest)
                        elif line.strip() and process in (None, "web"):
                            out.append(line)
                return [line for line in out if line.strip()][-lines:]
        for path in self.log_files(instance_id):
            if process is None or path.name.startswith(f"{process}."):
                with contextlib.suppress(OSError):
                    out.extend(line for line in logs.tail(path, lines) if line.strip())
        return out[-lines:]

    def reclaim(self, live: set[str]) -> None:
        """Addresses belong to tasks: nothing to free apart from them."""

    def close(self) -> None:
        for client in (self._api, self._local):
            if client is not None:
                client.close()
        self._api = self._local = None

    def shutdown(self) -> None:
        """Remove every service of this home, its gateway, the route and the network."""
        if self._subnet is None:  # a client made to clean up: learn the subnet to unroute
            with contextlib.suppress(docker.errors.DockerException, ComponentError):
                self._remember(self.api.inspect_network(self.network))
        for service in self._services():
            self._remove(service)
        with contextlib.suppress(docker.errors.DockerException):
            self.api.remove_container(self.gateway, force=True)
        if self._subnet is not None:
            with contextlib.suppress(ComponentError):
                _ip("route", "del", str(self._subnet))
            if self.manager_address is not None:
                with contextlib.suppress(ComponentError, docker.errors.DockerException):
                    self._ip_on_manager("route", "del", str(self._subnet))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.api.remove_network(self.network)
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:  # tasks still attached: they are ending
                time.sleep(0.2)
        if os.geteuid() == 0 and shutil.which("nft") is not None:
            subprocess.run(
                ["nft", "delete", "table", "ip", f"beanpole-swarm-{self.prefix[3:]}"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        self._subnet = None

    # -- helpers ---------------------------------------------------------------------------

    def _labelled(self, listing: Any, instance_id: str | None) -> list[dict[str, Any]]:
        """What ``listing`` (the manager's services or tasks) gives of this home's (or one
        instance's), by their labels."""
        filters = [f"{LABEL}.home={self.owner}"]
        if instance_id is not None:
            filters.append(f"{LABEL}.instance={instance_id}")
        try:
            return list(listing(filters={"label": filters}))
        except (docker.errors.DockerException, OSError) as exc:
            raise ComponentError(
                f"the swarm manager did not answer: {docker_runtime._short(exc)}"
            ) from exc

    def _services(self, instance_id: str | None = None) -> list[_Service]:
        rows = self._labelled(self.api.services, instance_id)
        return [
            _Service(
                id=str(row["ID"]),
                instance=labels[f"{LABEL}.instance"],
                labels=labels,
                force_update=int(
                    ((row.get("Spec") or {}).get("TaskTemplate") or {}).get("ForceUpdate") or 0
                ),
            )
            for row in rows
            if f"{LABEL}.instance" in (labels := (row.get("Spec") or {}).get("Labels") or {})
        ]

    def _tasks(self, instance_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """This home's tasks (or one instance's) by service id: the label filter finds the
        tasks of a service already removed too, until they have ended."""
        rows = self._labelled(self.api.tasks, instance_id)
        out: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(str(row.get("ServiceID", "")), []).append(row)
        return out


class _Addresses(Protocol):
    @property
    def registry_address(self) -> str: ...

    @property
    def manager_address(self) -> str: ...


def registry_address(base_url: str | None, config: _Addresses) -> str:
    """The address the nodes reach this host's registry at: the configured one, else the
    local address facing the manager (Beanpole off the manager), else the manager's own
    address in the swarm (Beanpole on it)."""
    if config.registry_address:
        return config.registry_address
    if config.manager_address:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((config.manager_address, 9))  # no packet is sent: a route lookup
            return str(probe.getsockname()[0])
    try:
        client = docker_runtime._client(base_url, timeout=10)
        try:
            address = str((client.api.info().get("Swarm") or {}).get("NodeAddr") or "")
        finally:
            client.close()
    except (docker.errors.DockerException, OSError) as exc:
        raise ComponentError(
            f"The swarm manager does not answer at {base_url or docker_runtime._LOCAL} "
            f"({docker_runtime._short(exc)}): start Docker there, or name it with "
            "--docker-host."
        ) from exc
    if not address:
        raise ComponentError(
            "The Docker engine is not part of a swarm (docker swarm init --advertise-addr "
            "ADDRESS; docs/swarm.md), so the nodes' registry address is unknown."
        )
    return address


def _supervise(spec: InstanceSpec, *, to_files: bool = True) -> str:
    """The bash script that runs the instance's processes (as the app's user): each with its
    output appended to ``<log_dir>/<name>.stdout.log`` (``to_files``), or to the task's
    output, each line marked with its process's name (`PROCESS_MARK`) when there are more
    than one; when one ends, the others get TERM (KILL after the stop wait) and the task
    ends with its status (the engine then starts the task again)."""
    wait = max(spec.stop_wait_s, 1) * 10
    lines = [
        "pids=()",
        # TERM, and once more soon after: a child TERMed before its exec (bash's own
        # handler still set) loses the signal; KILL what is left after the stop wait
        "end() {",
        '  kill -TERM "${pids[@]}" 2>/dev/null',
        f"  for ((i = 0; i < {wait}; i++)); do",
        '    kill -0 "${pids[@]}" 2>/dev/null || break',
        '    ((i == 3)) && kill -TERM "${pids[@]}" 2>/dev/null',
        "    sleep 0.1",
        "  done",
        '  kill -KILL "${pids[@]}" 2>/dev/null; wait',
        "}",
        "stop() { end; exit 143; }",
    ]
    mark = len(spec.processes) > 1
    for name, command in spec.processes.items():
        port = spec.process_ports.get(name, spec.listen_port)
        if to_files:
            out = shlex.quote(str(spec.log_dir.absolute() / f"{name}.stdout.log"))
            inner = shlex.quote(f"exec >>{out} 2>&1; {shell_line(command)}")
            lines.append(f"PORT={port} /usr/bin/sh -c {inner} &")
        elif mark:
            inner = shlex.quote(f"exec 2>&1; {shell_line(command)}")
            prefix = shlex.quote(f"s/^/{name}{PROCESS_MARK.decode()}/")
            # the pipe's reader is not the process: $! stays the process's own pid
            lines.append(f"PORT={port} /usr/bin/sh -c {inner} > >(exec sed -u {prefix}) &")
        else:
            inner = shlex.quote(f"exec 2>&1; {shell_line(command)}")
            lines.append(f"PORT={port} /usr/bin/sh -c {inner} &")
        lines.append("pids+=($!)")
    lines += [
        "trap stop TERM INT",
        # wait -n misses a child that ended before it was called (bash 5.2): look at each,
        # then wait for one to end or a tick's time, whichever comes first
        "while :; do",
        '  for p in "${pids[@]}"; do',
        '    if ! kill -0 "$p" 2>/dev/null; then wait "$p"; code=$?; break 2; fi',
        "  done",
        "  sleep 2 & tick=$!",
        "  wait -n",
        '  kill "$tick" 2>/dev/null',
        "done",
        "end",
        "exit $code",
    ]
    return "\n".join(lines) + "\n"


def _route(text: bytes, files: Mapping[bytes, Path], default: Path) -> tuple[Path, bytes]:
    """Which process's file a line of a task's output goes to, and the line without its
    mark (`_supervise`); an unmarked line goes to ``default``."""
    name, marked, rest = text.partition(PROCESS_MARK)
    if marked and name in files:
        return files[name], rest
    return default, text


def _environment(spec: InstanceSpec) -> str:
    """Which environment the instance spreads with (its instances are counted together)."""
    return spec.environment or spec.env.get("BEANPOLE_ENVIRONMENT_ID", "")


def _image_of(service: Mapping[str, Any]) -> str:
    """The image reference a service's tasks run."""
    template = (service.get("Spec") or {}).get("TaskTemplate") or {}
    return str((template.get("ContainerSpec") or {}).get("Image") or "")


def _state(task: Mapping[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State", ""))


def _latest(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(tasks, key=lambda t: str(t.get("CreatedAt", "")), default=None)


def _ended(task: Mapping[str, Any]) -> tuple[int, str]:
    status = task.get("Status") or {}
    code = int((status.get("ContainerStatus") or {}).get("ExitCode") or 0)
    if _state(task) == "rejected":
        return code, f"could not start: {status.get('Err') or status.get('Message', '')}"
    return code, f"exited with status {code}"


def _status(
    tasks: list[dict[str, Any]], generation: int = 0
) -> tuple[ProcessStatus, int, int, str, float, int, str]:
    """status, pid, exit status, reason, since, restarts and the last death, from a
    service's tasks (the latest decides; the earlier ones that failed count restarts).

    A task that failed is restarted by the engine until `RETRIES` restarts of the service's
    current ``generation`` (its ForceUpdate: `restart` starts a new one) have failed too:
    until then it is ``exited`` (restarting), not ``failed``."""
    latest = _latest(tasks)
    if latest is None:
        return ProcessStatus.STARTING, 0, 0, "", 0.0, 0, ""
    earlier = sorted(
        (t for t in tasks if t is not latest and _state(t) in _FAILED),
        key=lambda t: str(t.get("CreatedAt", "")),
    )
    restarts = len(earlier)
    last = _ended(earlier[-1])[1] if earlier else ""
    state = _state(latest)
    status = latest.get("Status") or {}
    since = docker_runtime._timestamp(status.get("Timestamp"))
    if state == "running":
        pid = int((status.get("ContainerStatus") or {}).get("PID") or 0)
        return ProcessStatus.RUNNING, pid, 0, "", since, restarts, last
    if state in _STARTING:  # no start time yet: a process's start time changes only when
        # it starts again (readiness reads a change as a restart)
        if earlier:
            code, reason = _ended(earlier[-1])
            return ProcessStatus.EXITED, 0, code, reason + "; restarting", 0.0, restarts, last
        return ProcessStatus.STARTING, 0, 0, "", 0.0, restarts, last
    if state not in _FAILED:
        return ProcessStatus.STOPPED, 0, 0, "", since, restarts, last
    code, reason = _ended(latest)
    if _restarting(latest, tasks, generation):  # as while it starts again: no start time
        status_now, reason, since = ProcessStatus.EXITED, reason + "; restarting", 0.0
    else:
        status_now = ProcessStatus.FAILED
    return status_now, 0, code, reason, since, restarts, last


def _restarting(latest: Mapping[str, Any], tasks: list[dict[str, Any]], generation: int) -> bool:
    """Whether the engine will start the failed ``latest`` task again (restarts left)."""
    if _state(latest) not in ("failed", "rejected"):
        return False  # complete: on-failure leaves it
    failures = sum(
        1 for t in tasks if _state(t) in ("failed", "rejected") and _generation(t) == generation
    )
    return failures <= RETRIES


def _generation(task: Mapping[str, Any]) -> int:
    """The ForceUpdate of the service spec the task was made from."""
    return int(((task.get("Spec") or {}).get("ForceUpdate")) or 0)


def _routed_here() -> list[ipaddress.IPv4Network]:
    """The IPv4 destinations this host has a route to (the default route aside)."""
    done = subprocess.run(
        ["ip", "-o", "-4", "route", "show"], capture_output=True, text=True, timeout=10, check=False
    )
    out = []
    for line in done.stdout.splitlines():
        destination = line.split(" ", 1)[0]
        with contextlib.suppress(ValueError):
            if destination != "default":
                out.append(ipaddress.IPv4Network(destination, strict=False))
    return out


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise ComponentError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
