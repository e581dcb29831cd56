"""An instance's own network namespace, so apps that listen on a fixed port do not collide.

AWS's samples listen on EB's platform port (8080 for Node.js, 8000 for Python) and ignore
``PORT``. On one host, two instances of such an app would both bind 8080. With a namespace
each, every instance has its own 8080, its own loopback, and one address the host reaches
it at; nothing else on the host shares its ports.

Per instance (``slot`` *n*, a /30 out of `NETWORK`, leased host-wide):

- the namespace ``beanpole-<n>`` (``/run/netns/beanpole-<n>``, what ``ip netns`` makes);
- a veth pair: ``bpv<n>`` on the host with ``10.213.x.y+1/30``, ``eth0`` inside with ``+2``,
  the default route inside via the host side;
- inside, ``lo`` up, ``route_localnet`` on, every port free to bind for the app's
  unprivileged user (``ip_unprivileged_port_start`` 0: the namespace's ports are its own,
  so an app written for port 80 runs), and an nft DNAT of ``tcp dport { PORT, ... }``
  arriving on ``eth0`` to ``127.0.0.1``: an app bound to ``127.0.0.1:$PORT`` (most
  Procfiles) is reachable from the host at the namespace address as one bound to
  ``0.0.0.0`` is; the other ports are a listener rule's processes' (`InstanceSpec.ports`).

On the host one table (``ip beanpole``, the same for every Beanpole home, replaced
atomically) drops connections that the host would forward *into* an instance (only the host
itself, i.e. HAProxy and the probes, opens them; instances do not reach each other), refuses
connections to an instance from host processes that are not root (`only_root_connects`), and
masquerades what instances send to other hosts; a blackhole route for `NETWORK` keeps
packets to a removed instance's address on the host. Forwarding (``net.ipv4.ip_forward``) is
switched on when it is off, as Docker does, or instances could reach only the host.

Slots are leased in ``/run/beanpole/netns.db`` (the kernel's names are host-wide, so the
registry is too, whatever ``BEANPOLE_PORT_REGISTRY`` says) before anything is created, and
released after everything is deleted, so a namespace or veth with no lease is a leftover
(a crash between the steps) that `Namespaces.reclaim` removes.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from beanpole.adapters.runtime.ports import PortLeases
from beanpole.core.errors import ComponentError

log = logging.getLogger(__name__)

#: Where instance subnets come from: 16384 /30s. A slot whose /30 overlaps a route of the
#: host (other than Beanpole's own) is skipped, so a LAN on 10.213.0.0/16 is left alone.
NETWORK = ipaddress.IPv4Network("10.213.0.0/16")
REGISTRY = Path("/run/beanpole/netns.db")
NETNS_DIR = Path("/run/netns")
NS_PREFIX = "beanpole-"
LINK_PREFIX = "bpv"  # bpv16383 is 8 characters: IFNAMSIZ allows 15
_LINK = re.compile(rf"{LINK_PREFIX}(\d+)\Z")
_NS = re.compile(rf"{re.escape(NS_PREFIX)}(\d+)\Z")
_TIMEOUT_S = 20.0
_CAP_NET_ADMIN = 12
_CAP_SYS_ADMIN = 21
FORWARDING = Path("/proc/sys/net/ipv4/ip_forward")


def only_root_connects(network: ipaddress.IPv4Network) -> str:
    """An nft chain (for a table of the host's): a host process that is not root cannot open
    a connection to an address in ``network``; HAProxy and Beanpole's probes (root) can, and
    replies to an instance's own connections (to a database on the host) pass."""
    return f"""\
    chain output_{str(network.network_address).replace(".", "_")} {{
        type filter hook output priority filter; policy accept;
        ip daddr {network} ct state established,related accept
        ip daddr {network} meta skuid != 0 reject
    }}"""


HOST_TABLE = f"""\
table ip beanpole {{}}
delete table ip beanpole
table ip beanpole {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
        oifname "{LINK_PREFIX}*" ct state established,related accept
        oifname "{LINK_PREFIX}*" drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {NETWORK} oifname != "{LINK_PREFIX}*" masquerade
    }}
{only_root_connects(NETWORK)}
}}
"""


def unavailable() -> str | None:
    """Why instances cannot get a namespace on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "Beanpole does not run as root"
    if not _capable():
        return "root here lacks CAP_SYS_ADMIN and CAP_NET_ADMIN (a restricted container)"
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        packages = {"ip": "iproute2", "nft": "nftables"}
        return (
            f"{' and '.join(missing)} not found (install {', '.join(packages[m] for m in missing)})"
        )
    if not os.access("/run", os.W_OK):
        return "/run is not writable"
    return None


def _capable() -> bool:
    """Whether this process may make namespaces and interfaces (root in a container may not)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return True  # not Linux's /proc: let the first `ip` say what is wrong
    match = re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.MULTILINE)
    if match is None:
        return True
    effective = int(match[1], 16)
    return all(effective & (1 << bit) for bit in (_CAP_SYS_ADMIN, _CAP_NET_ADMIN))


@dataclass(frozen=True)
class Sandbox:
    """One instance's network: its namespace and the two ends of its veth."""

    slot: int

    @property
    def name(self) -> str:
        return f"{NS_PREFIX}{self.slot}"

    @property
    def link(self) -> str:
        return f"{LINK_PREFIX}{self.slot}"

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network((int(NETWORK.network_address) + 4 * self.slot, 30))

    @property
    def host_address(self) -> str:
        """The host's end: how the instance reaches services on the host."""
        return str(self.subnet.network_address + 1)

    @property
    def address(self) -> str:
        """The instance's end: where HAProxy and the probes reach it."""
        return str(self.subnet.network_address + 2)

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name


SLOTS = NETWORK.num_addresses // 4


def inner_rules(ports: Sequence[int]) -> str:
    """The namespace's own table: traffic for ``ports`` from the host goes to its loopback
    (the same port there)."""
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"not a TCP port: {port!r}")
    listed = ", ".join(str(p) for p in dict.fromkeys(ports))
    return f"""\
table ip beanpole {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "eth0" tcp dport {{ {listed} }} dnat to 127.0.0.1
    }}
}}
"""


class Namespaces:
    """Creates, deletes and reclaims instances' namespaces; leases their slots host-wide."""

    def __init__(
        self,
        registry: Path = REGISTRY,
        *,
        run: Callable[..., None] | None = None,
        forwarding: Path = FORWARDING,
    ):
        self.registry = PortLeases(registry)
        self._run = run or _run
        self.forwarding = forwarding  # the sysctl switched on for instances' outbound traffic
        self._host_ready = False

    # -- one instance -----------------------------------------------------------------------

    def create(self, owner: str, instance_id: str, ports: Sequence[int]) -> Sandbox:
        """Lease a slot and build the instance's namespace (its ports DNATed to its loopback).

        The same instance asking again gets its slot back, rebuilt. Anything half-built is
        taken down again when a step fails.
        """
        self._prepare_host()
        foreign = _foreign_routes()
        slot = self.registry.lease_slot(
            owner, instance_id, SLOTS, lambda s: not _overlaps(Sandbox(s).subnet, foreign)
        )
        sandbox = Sandbox(slot)
        try:
            self._teardown(sandbox)  # a leftover of an earlier try with this slot
            self._build(sandbox, ports)
        except BaseException:
            self._teardown(sandbox)
            self.registry.release_slot(owner, instance_id)
            raise
        return sandbox

    def delete(self, owner: str, instance_id: str) -> None:
        """Take the instance's namespace and veth down, then free its slot (no-op if none)."""
        slot = self.registry.slots(owner).get(instance_id)
        if slot is None:
            return
        self._teardown(Sandbox(slot))
        self.registry.release_slot(owner, instance_id)

    def sandbox(self, owner: str, instance_id: str) -> Sandbox | None:
        slot = self.registry.slots(owner).get(instance_id)
        return None if slot is None else Sandbox(slot)

    def reclaim(self, owner: str, live: set[str]) -> None:
        """Delete the namespaces of this owner's instances not in ``live``, of homes whose
        folder is gone, and any of Beanpole's namespaces or veths that no lease holds."""
        for held_by, instance_id, slot in self.registry.all_slots():
            gone = held_by == owner and instance_id not in live
            if gone or (held_by != owner and not Path(held_by).is_dir()):
                self._teardown(Sandbox(slot))
                self.registry.release_slot(held_by, instance_id)
        # Inside the registry's lock: a home leasing a slot right now has not built it yet.
        self.registry.with_slots(self._sweep)

    # -- the steps ---------------------------------------------------------------------------

    def _prepare_host(self) -> None:
        """The host's table (forward filter, masquerade) and forwarding, once per process."""
        if self._host_ready:
            return
        self._run(["nft", "-f", "-"], stdin=HOST_TABLE)
        # An address of a removed instance (HAProxy may check it until its `del server`)
        # goes nowhere rather than out of the default route; live /30s are more specific.
        self._run(["ip", "route", "replace", "blackhole", str(NETWORK)])
        forwarding = self.forwarding
        try:
            if forwarding.read_text().strip() != "1":
                forwarding.write_text("1\n")
                log.warning(
                    "switched net.ipv4.ip_forward on, so instances in their own network "
                    "namespace can reach other hosts (masqueraded, as Docker does)"
                )
        except OSError as exc:
            log.warning("could not switch forwarding on (%s): instances reach only this host", exc)
        self._host_ready = True

    def _build(self, sandbox: Sandbox, ports: Sequence[int]) -> None:
        ns, link = sandbox.name, sandbox.link
        prefix = sandbox.subnet.prefixlen
        self._run(["ip", "netns", "add", ns])
        self._run(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns])
        self._run(
            ["ip", "-batch", "-"],
            stdin=f"addr add {sandbox.host_address}/{prefix} dev {link}\nlink set {link} up\n",
        )
        self._run(
            ["ip", "-n", ns, "-batch", "-"],
            stdin=(
                "link set lo up\n"
                f"addr add {sandbox.address}/{prefix} dev eth0\n"
                "link set eth0 up\n"
                f"route add default via {sandbox.host_address}\n"
            ),
        )
        self._run(
            ["ip", "netns", "exec", ns, "sh", "-c",
             "sysctl -qw net.ipv4.conf.all.route_localnet=1 "
             "net.ipv4.ip_unprivileged_port_start=0 && exec nft -f -"],
            stdin=inner_rules(ports),
        )  # fmt: skip

    def _teardown(self, sandbox: Sandbox) -> None:
        """The veth first (deleting it is synchronous; a namespace's end goes asynchronously),
        then the namespace; either may already be gone."""
        if Path("/sys/class/net", sandbox.link).exists():
            self._run(["ip", "link", "del", sandbox.link], ok=("Cannot find device",))
        if sandbox.path.exists():
            self._run(["ip", "netns", "del", sandbox.name], ok=("No such file",))

    def _sweep(self, leased: set[int]) -> None:
        found: set[int] = set()
        if NETNS_DIR.is_dir():
            found |= {int(m[1]) for p in NETNS_DIR.iterdir() if (m := _NS.match(p.name))}
        found |= {int(m[1]) for p in Path("/sys/class/net").iterdir() if (m := _LINK.match(p.name))}
        for slot in sorted(found - leased):
            log.info(
                "removing %s, a leftover network namespace no instance holds", Sandbox(slot).name
            )
            self._teardown(Sandbox(slot))


def _run(argv: Sequence[str], *, stdin: str | None = None, ok: tuple[str, ...] = ()) -> None:
    try:
        proc = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComponentError(f"{' '.join(argv)} failed: {exc}") from exc
    if proc.returncode != 0 and not any(text in proc.stderr for text in ok):
        raise ComponentError(
            f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}. "
            "Set beanpole:instance:NetworkIsolation to none to run instances on the host's "
            "network."
        )


def _foreign_routes() -> list[ipaddress.IPv4Network]:
    """The host's IPv4 routes other than Beanpole's veths and the default route."""
    routes = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or _LINK.match(fields[0]):
            continue
        dest = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
        network = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        if network.prefixlen > 0 and network != NETWORK:  # NETWORK: our own blackhole
            routes.append(network)
    return routes


def _overlaps(subnet: ipaddress.IPv4Network, routes: list[ipaddress.IPv4Network]) -> bool:
    return any(subnet.overlaps(route) for route in routes)
