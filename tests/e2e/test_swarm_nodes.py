"""Nodes are visible, and one drains with no failed request (issue 13, part 4).

A real server with ``--runtime swarm`` against the 3-node test bed (`swarmkit`: one dockerd
per network namespace), its registry on the host, HAProxy and Beanpole's probes reaching the
tasks over the overlay. Skipped with the reason where the test bed cannot run.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import swarmkit
from beanpole.adapters.registry import Registry
from beanpole.adapters.runtime import docker as docker_runtime
from beanpole.adapters.runtime.swarm import Swarm

from harness import Beanpole, Load, wait_for

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python"


def nodes(bp: Beanpole) -> dict[str, dict[str, Any]]:
    """`beanpole nodes --json`, by hostname."""
    listed = json.loads(bp.cli("nodes", "--json").stdout)["nodes"]
    return {n["hostname"]: n for n in listed}


def spread(bp: Beanpole, env: str) -> dict[str, int]:
    """How many of the environment's instances each node holds."""
    return {
        name: sum(1 for i in node["instances"] if i["environment"] == env)
        for name, node in nodes(bp).items()
    }


@pytest.fixture
def swarm_server(public_tmp):
    """A server with the swarm runtime on the shared test bed; everything it started, and
    every node's availability, is put back afterwards."""
    if (why_not := swarmkit.unavailable()) is not None:
        pytest.skip(f"no swarm test bed here: {why_not}")
    if (why_not := docker_runtime.unavailable()) is not None:
        pytest.skip(f"no Docker engine here (it builds and pushes images): {why_not}")
    if shutil.which("haproxy") is None:
        pytest.skip("HAProxy is not installed (scripts/bootstrap.sh installs it)")
    bed = swarmkit.shared_bed()
    home = public_tmp / "home"
    port = swarmkit.free_port()
    # the nodes trust the registry's CA before the server first starts (docs: nodes ca)
    registry = Registry(home / "registry", address=bed.host_address, port=port)
    bed.trust(registry.ensure_ca(), f"{bed.host_address}:{port}")
    bp = Beanpole(
        home,
        runtime="swarm",
        start_args=(
            "--docker-host",
            bed.manager_url,
            "--manager-address",
            bed.manager_address,
            "--registry-address",
            bed.host_address,
            "--registry-port",
            str(port),
        ),
    )
    swarm = Swarm(
        str(home.resolve()),
        registry=registry,
        base_url=bed.manager_url,
        manager_address=bed.manager_address,
    )
    try:
        bp.start()
        yield bp, bed, port
    finally:
        bp.stop_all()
        # what `server stop --all` leaves of a swarm home: its services, gateway, network
        # and route, its images, and the registry (they outlive the control plane)
        with contextlib.suppress(Exception):
            swarm.api.inspect_network(swarm.network)  # NotFound: none was made
            _ = swarm.subnet  # known, so that shutdown removes its routes too
        with contextlib.suppress(Exception):
            swarm.shutdown()
        swarm.remove_images()  # the versions' images the server made on this host's engine
        for node in bed.nodes:
            with contextlib.suppress(Exception):
                swarm.set_availability(node, "active")
        swarm.close()
        registry.stop()
        bp.remove_app_users()


def test_a_node_drains_under_load_with_no_failed_request(swarm_server):
    bp, bed, port = swarm_server
    registry = f"{bed.host_address}:{port}"
    ca = bp.cli("nodes", "ca").stdout
    assert f"Registry CA certificate: {bp.home / 'registry' / 'ca.crt'}" in ca
    assert f"/etc/docker/certs.d/{registry}/ca.crt" in ca
    # the server answers: one command per node, by its address
    assert f"ssh root@{bed.manager_address} " in ca

    bp.cli("create", "drain", "--app", "drain", "--source", str(EXAMPLE), "--scale", "6")
    listed = nodes(bp)
    assert sorted(listed) == ["n1", "n2", "n3"]
    assert {n["state"] for n in listed.values()} == {"ready"}
    assert {n["availability"] for n in listed.values()} == {"active"}
    assert listed["n1"]["role"] == "manager" and listed["n1"]["address"] == bed.manager_address
    assert spread(bp, "drain") == {"n1": 2, "n2": 2, "n3": 2}
    leaving = {i["id"] for i in listed["n2"]["instances"]}
    table = bp.cli("nodes").stdout
    assert "n2" in table and "drain:" in table

    with Load(bp.lb_port, "drain") as load:
        wait_for(lambda: load.ok >= 50, 60, "requests to flow")
        before = load.ok
        started = time.monotonic()
        drained = json.loads(bp.cli("nodes", "drain", "n2", "--json").stdout)
        took = time.monotonic() - started
        wait_for(lambda: load.ok >= before + 200, 60, "requests after the drain")
    print(
        f"drain of n2: {took:.1f} s (server: {drained['seconds']} s), "
        f"{load.ok} requests, {len(load.failures)} failed"
    )
    assert load.failures == [], load.failures[:5]

    assert drained["node"]["availability"] == "drain"
    assert {m["instance"] for m in drained["moved"]} == leaving
    assert {m["node"] for m in drained["moved"]} <= {"n1", "n3"}
    after = nodes(bp)
    assert after["n2"]["availability"] == "drain" and after["n2"]["instances"] == []
    counts = spread(bp, "drain")
    assert counts["n2"] == 0 and counts["n1"] + counts["n3"] == 6, counts
    status = bp.status("drain")
    assert Counter(i["state"] for i in status["instances"]) == {"in-service": 6}
    assert not leaving & {i["id"] for i in status["instances"]}
    events = bp.cli("events", "drain", "-n", "200").stdout
    for instance in leaving:
        assert f"Instance {instance} moved off node n2 (drain)" in events

    activated = bp.cli("nodes", "activate", "n2").stdout
    assert "Node n2 is active" in activated
    assert nodes(bp)["n2"]["availability"] == "active"


def test_nodes_exist_only_under_the_swarm_runtime(beanpole):
    for args in (("nodes",), ("nodes", "drain", "n2"), ("nodes", "activate", "n2")):
        refused = beanpole.cli(*args, check=False)
        assert refused.returncode == 1, refused
        assert refused.stderr.startswith("Error: Nodes exist only under --runtime swarm"), (
            refused.stderr
        )
