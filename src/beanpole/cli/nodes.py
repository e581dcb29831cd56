"""`beanpole nodes [drain|activate|ca]`: the swarm's nodes (a server run with --runtime swarm)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from beanpole.api.nodes import NodeView
from beanpole.cli.console import out
from beanpole.client import Client
from beanpole.core.errors import BeanpoleError, ComponentError
from beanpole.home import Home

CA_TIMEOUT_S = 60.0
CERTS_D = "/etc/docker/certs.d"


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def nodes(ctx: click.Context, as_json: bool) -> None:
    """The swarm's nodes and the instances on each; drain or activate one.

    Without a command: each node's hostname, state, availability, role, address, zone (the
    node label beanpole.az), labels and Beanpole's instances there, by environment. Only a
    server started with --runtime swarm has nodes (docs/nodes.md).
    """
    if ctx.invoked_subcommand is not None:
        return
    view = Client.discover().nodes()
    if as_json:
        click.echo(json.dumps(view.model_dump(mode="json"), indent=2))
        return
    table = Table("node", "state", "availability", "role", "address", "zone", "labels", "instances")
    for node in view.nodes:
        table.add_row(
            Text(node.hostname),
            _coloured(node.state, ok="ready"),
            _coloured(node.availability, ok="active"),
            node.role,
            node.address,
            Text(node.zone or "-"),
            Text(", ".join(f"{k}={v}" for k, v in sorted(node.labels.items())) or "-"),
            Text(_instances(node) or "-"),
        )
    out.print(table)


def _coloured(value: str, ok: str) -> Text:
    return Text(value, style="green" if value == ok else "yellow")


def _instances(node: NodeView) -> str:
    """``env: i-1, i-2; other: i-3``, by environment."""
    by_env: dict[str, list[str]] = {}
    for instance in node.instances:
        by_env.setdefault(instance.environment, []).append(instance.id)
    return "; ".join(f"{env}: {', '.join(ids)}" for env, ids in sorted(by_env.items()))


@nodes.command("drain")
@click.argument("node")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def drain(node: str, as_json: bool) -> None:
    """Move Beanpole's instances off NODE with no request dropped, then drain it.

    NODE is paused first (nothing new lands there); each instance there gets a successor on
    another node, which goes in service once it passes its health check; then the instance
    is drained in the load balancer and stopped. Last, NODE's availability becomes drain
    (Docker stops whatever else runs there). Refused while an operation runs on an
    environment with instances there. Undo with: beanpole nodes activate NODE.
    """
    if not as_json:
        out.print(f"Draining node {node}: its instances move to other nodes first…", markup=False)
    result = Client.discover().drain_node(node)
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    for moved in result.moved:
        where = f"{moved.replacement} on {moved.node or '?'}" if moved.replacement else "stopped"
        out.print(f"  {moved.instance} ({moved.environment}) -> {where}", markup=False)
    hostname = result.node.hostname
    out.print(
        f"Node {hostname} drained in {result.seconds:.1f} s ({len(result.moved)} instance(s) "
        f"moved); availability {result.node.availability}. Bring it back with: beanpole nodes "
        f"activate {hostname}",
        markup=False,
    )


@nodes.command("activate")
@click.argument("node")
def activate(node: str) -> None:
    """Let NODE take new instances again (availability active). Instances that moved off it
    stay where they are."""
    view = Client.discover().activate_node(node)
    out.print(
        f"Node {view.hostname} is {view.availability}: new instances may be placed there.",
        markup=False,
    )


@nodes.command("ca")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ca(as_json: bool) -> None:
    """Print the registry's CA certificate and how each node trusts it.

    Every node pulls images from the registry Beanpole runs, over TLS with a certificate
    from this CA: copy it to /etc/docker/certs.d/<registry host:port>/ca.crt on each (no
    restart). It is made if missing, from the home's config (server start
    --registry-address, --registry-port); no server needs to run.
    """
    home = Home.default()
    answer = _registry_ca(home)
    ca_file, registry = str(answer["ca_file"]), str(answer["registry"])
    if as_json:
        click.echo(json.dumps({"ca_file": ca_file, "registry": registry}, indent=2))
        return
    folder = f"{CERTS_D}/{registry}"
    out.print(f"Registry CA certificate: {ca_file}", markup=False)
    out.print(
        f"Every node of the swarm must trust it to pull from the registry at {registry}. "
        "On each node, as root (Docker reads it at the next pull, no restart):",
        markup=False,
    )
    out.print(f"  mkdir -p {folder}\n  cp ca.crt {folder}/ca.crt", markup=False)
    out.print("From this host:", markup=False)
    for address in _node_addresses() or ["NODE"]:
        out.print(
            f"  ssh root@{address} 'mkdir -p {folder} && cat > {folder}/ca.crt' < {ca_file}",
            markup=False,
        )


def _registry_ca(home: Home) -> dict[str, Any]:
    """Ask the server package for the CA in a child process (the CLI imports no adapter:
    docs/architecture.md, Layers), with the same ``BEANPOLE_HOME``."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "beanpole.server.registry_ca"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**os.environ, "BEANPOLE_HOME": str(home.root)},
            timeout=CA_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ComponentError(
            f"Making the registry's CA took over {CA_TIMEOUT_S:.0f} s: the swarm manager may "
            "not answer. Name the registry's address with beanpole server start "
            "--registry-address ADDRESS."
        ) from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().removeprefix("Error: ") or f"exit status {proc.returncode}"
        raise ComponentError(f"Could not make the registry's CA: {detail}")
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def _node_addresses() -> list[str]:
    """The nodes' addresses when a swarm server answers; none otherwise (the commands then
    name NODE: the CA is often made before the server first starts)."""
    try:
        return [n.address for n in Client.discover().nodes().nodes if n.address]
    except BeanpoleError:
        return []
