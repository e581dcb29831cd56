"""Instances' network namespaces without the kernel: addresses, names, slot leases, the steps.

`Namespaces` takes the command runner as a parameter; here it records the commands instead
of running them (the real ones are tests/integration/test_netns.py). The slot registry is a
SQLite file in the test's folder.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import pytest

from beanpole.adapters.runtime import netns
from beanpole.adapters.runtime.ports import PortLeases
from beanpole.core.errors import ComponentError
from beanpole.core.model import Instance, InstanceState
from beanpole.services.environments import instance_view


def test_each_slot_is_a_slash_30_with_the_host_at_1_and_the_instance_at_2():
    first, last = netns.Sandbox(0), netns.Sandbox(netns.SLOTS - 1)
    assert str(first.subnet) == "10.213.0.0/30"
    assert (first.host_address, first.address) == ("10.213.0.1", "10.213.0.2")
    assert str(last.subnet) == "10.213.255.252/30" and last.address == "10.213.255.254"
    assert netns.SLOTS == 16384
    assert all(netns.Sandbox(s).subnet.subnet_of(netns.NETWORK) for s in (0, 1, 9999))
    assert netns.Sandbox(5).subnet != netns.Sandbox(6).subnet


def test_names_fit_the_kernel_limit_on_interface_names():
    last = netns.Sandbox(netns.SLOTS - 1)
    assert last.link == "bpv16383" and len(last.link) <= 15  # IFNAMSIZ - 1
    assert last.name == "beanpole-16383" and last.path == Path("/run/netns/beanpole-16383")


def test_a_slot_overlapping_a_route_of_the_host_is_not_usable():
    routes = [ipaddress.IPv4Network("10.213.0.0/24"), ipaddress.IPv4Network("192.168.1.0/24")]
    assert netns._overlaps(netns.Sandbox(0).subnet, routes)
    assert netns._overlaps(netns.Sandbox(63).subnet, routes)  # 10.213.0.252/30
    assert not netns._overlaps(netns.Sandbox(64).subnet, routes)  # 10.213.1.0/30


def test_the_inner_rules_send_the_ports_to_the_namespace_loopback():
    rules = netns.inner_rules([8080])
    assert 'iifname "eth0" tcp dport { 8080 } dnat to 127.0.0.1' in rules
    assert "hook prerouting" in rules
    # a listener rule's process listens on a port of its own (`InstanceSpec.process_ports`)
    assert "tcp dport { 8080, 5100 } dnat" in netns.inner_rules([8080, 5100, 8080])
    with pytest.raises(ValueError, match="not a TCP port"):
        netns.inner_rules([8080, 70000])


def test_slots_are_leased_once_per_instance_and_never_twice(tmp_path):
    leases = PortLeases(tmp_path / "netns.db")
    a = leases.lease_slot("/home/a", "i-1", 4, lambda s: True)
    assert leases.lease_slot("/home/a", "i-1", 4, lambda s: True) == a  # same instance again
    b = leases.lease_slot("/home/b", "i-1", 4, lambda s: True)  # same id, another home
    c = leases.lease_slot("/home/a", "i-2", 4, lambda s: s != 2)  # slot 2 overlaps a route
    assert (a, b, c) == (0, 1, 3)
    with pytest.raises(ComponentError, match="No free network slot"):
        leases.lease_slot("/home/a", "i-3", 4, lambda s: s != 2)
    leases.release_slot("/home/a", "i-1")
    assert leases.lease_slot("/home/c", "i-9", 4, lambda s: True) == 0
    assert leases.slots("/home/a") == {"i-2": 3}
    assert sorted(leases.all_slots()) == [
        ("/home/a", "i-2", 3),
        ("/home/b", "i-1", 1),
        ("/home/c", "i-9", 0),
    ]


class Recorder:
    def __init__(self, fail_on: str = "") -> None:
        self.commands: list[str] = []
        self.fail_on = fail_on

    def __call__(self, argv, *, stdin=None, ok=()):
        line = " ".join(argv)
        self.commands.append(line)
        if self.fail_on and self.fail_on in line:
            raise ComponentError(f"{line} failed")


def spaces(tmp_path: Path, run: Recorder) -> netns.Namespaces:
    forwarding = tmp_path / "ip_forward"
    forwarding.write_text("0\n")
    made = netns.Namespaces(tmp_path / "netns.db", run=run, forwarding=forwarding)
    # a slot far from any the host may really hold, so teardown's existence checks see nothing
    made.registry.lease_slot("/test/padding", "i-pad", 1, lambda s: True)
    return made


def test_create_builds_the_namespace_in_order_and_switches_forwarding_on(tmp_path):
    run = Recorder()
    made = spaces(tmp_path, run)
    box = made.create("/test/home", "i-new", [8000])
    assert box == netns.Sandbox(1)
    assert made.forwarding.read_text().strip() == "1"
    steps = [c for c in run.commands if not c.startswith(("ip link del", "ip netns del"))]
    assert steps == [
        "nft -f -",  # the host table
        "ip route replace blackhole 10.213.0.0/16",
        "ip netns add beanpole-1",
        "ip link add bpv1 type veth peer name eth0 netns beanpole-1",
        "ip -batch -",
        "ip -n beanpole-1 -batch -",
        "ip netns exec beanpole-1 sh -c sysctl -qw net.ipv4.conf.all.route_localnet=1 "
        "net.ipv4.ip_unprivileged_port_start=0 && exec nft -f -",
    ]
    assert made.sandbox("/test/home", "i-new") == box
    made.create("/test/home", "i-other", [8000])
    assert run.commands.count("nft -f -") == 1  # the host table once per process


def test_a_failed_step_takes_the_slot_back(tmp_path):
    run = Recorder(fail_on="ip link add")
    made = spaces(tmp_path, run)
    with pytest.raises(ComponentError):
        made.create("/test/home", "i-bad", [8000])
    assert made.registry.slots("/test/home") == {}


def test_reclaim_frees_gone_instances_and_dead_homes_and_keeps_live_ones(tmp_path):
    run = Recorder()
    made = spaces(tmp_path, run)
    home = tmp_path / "home"
    home.mkdir()
    made.create(str(home), "i-live", [8080])
    made.create(str(home), "i-gone", [8080])
    made.create(str(tmp_path / "deleted-home"), "i-orphan", [8080])
    made.reclaim(str(home), {"i-live"})
    assert made.registry.slots(str(home)) == {"i-live": 1}
    assert made.registry.slots(str(tmp_path / "deleted-home")) == {}


def instance(host: str) -> Instance:
    return Instance(
        id="i-1",
        environment="shop",
        environment_id="e-1",
        version_label="v1",
        release_key="k",
        deployment_id=1,
        port=8080,
        state=InstanceState.IN_SERVICE,
        created_at=time.time(),
        host=host,
    )


def test_status_says_whether_an_instance_has_a_network_of_its_own():
    assert instance_view(instance("10.213.0.2"), time.time()).network == "own"
    assert instance_view(instance("127.0.0.1"), time.time()).network == "host"
