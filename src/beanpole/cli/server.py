"""`beanpole server start|stop|status`: the local control plane's process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import psutil

from beanpole.client import Client
from beanpole.core.errors import BeanpoleError, ComponentError
from beanpole.home import Home, ServerConfig

START_TIMEOUT_S = 60.0
# supervisord stops each instance with TERM, a bounded wait and KILL: minutes at worst.
DATA_PLANE_TIMEOUT_S = 600.0


def _alive(pid: int) -> bool:
    """Running, and not a zombie (a container's init may never reap a killed server)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def running_pid(home: Home) -> int | None:
    if not home.server_file.exists():
        return None
    try:
        pid = int(json.loads(home.server_file.read_text())["pid"])
    except (ValueError, KeyError):
        return None
    return pid if _alive(pid) else None


def _data_plane(home: Home, action: str) -> dict[str, Any]:
    """Ask the server package about the data plane's daemons, in a child process.

    The CLI imports no adapter (the layering in docs/architecture.md), so it runs
    ``beanpole.server.dataplane``, which does, with the same ``BEANPOLE_HOME``.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "beanpole.server.dataplane", action],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**os.environ, "BEANPOLE_HOME": str(home.root)},
            timeout=DATA_PLANE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ComponentError(
            f"Could not {action} the data plane within {DATA_PLANE_TIMEOUT_S:.0f} s. "
            f"Look at {home.root / 'supervisor'} and {home.root / 'haproxy'}."
        ) from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().removeprefix("Error: ") or f"exit status {proc.returncode}"
        raise ComponentError(f"Could not {action} the data plane: {detail}")
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@click.group("server")
def server() -> None:
    """Start, stop and inspect the local Beanpole server."""


@server.command("start")
@click.option("--lb-port", type=int, help="Port of the load balancer's HTTP listener (8080).")
@click.option(
    "--https-port",
    type=int,
    help="Port of the load balancer's HTTPS listener (8443; 0: none). Certificates: "
    "beanpole certs add.",
)
@click.option("--lb-host", help="Address the load balancer binds (0.0.0.0).")
@click.option("--api-port", type=int, help="Port of the REST API on 127.0.0.1 (4180).")
@click.option("--api-host", help="Address the REST API binds (127.0.0.1).")
@click.option("--domain", help="Environments are served at <cname>.<domain> (localhost).")
@click.option(
    "--eb-port",
    type=int,
    help="Port of Elastic Beanstalk's API and the S3 subset, on the API's address (4181).",
)
@click.option("--region", help="The region Elastic Beanstalk's API names (us-east-1).")
@click.option(
    "--runtime",
    type=click.Choice(["supervisord", "docker", "swarm"]),
    help="What runs the instances: processes under supervisord (the default), Docker "
    "containers (docs/docker.md), or services on a Docker Swarm's nodes (docs/swarm.md). "
    "Remembered for the next start.",
)
@click.option(
    "--docker-host",
    help="The swarm manager's Docker API (unix:///var/run/docker.sock, tcp://…); the local "
    "engine by default.",
)
@click.option(
    "--manager-address",
    help="The swarm manager's address from this host, when Beanpole does not run on the "
    "manager (the overlay network is routed through it).",
)
@click.option(
    "--registry-address",
    help="The address the swarm's nodes reach this host's image registry at (the "
    "manager's swarm address by default).",
)
@click.option("--registry-port", type=int, help="The image registry's port (5000).")
@click.option(
    "--registry",
    help="HOST:PORT of an image registry you run, for the swarm's images, instead of the one "
    "Beanpole runs (this host's engine must be able to push to it, every node to pull).",
)
def start(
    lb_port: int | None,
    https_port: int | None,
    lb_host: str | None,
    api_port: int | None,
    api_host: str | None,
    domain: str | None,
    eb_port: int | None,
    region: str | None,
    runtime: str | None,
    docker_host: str | None,
    manager_address: str | None,
    registry_address: str | None,
    registry_port: int | None,
    registry: str | None,
) -> None:
    """Start the server (and HAProxy and supervisord or Docker if they are not running)."""
    home = Home.default()
    home.prepare()
    config = home.load_config().with_overrides(
        lb_port=lb_port,
        https_port=https_port,
        lb_host=lb_host,
        api_port=api_port,
        api_host=api_host,
        domain=domain,
        eb_port=eb_port,
        region=region,
        runtime=runtime,
        docker_host=docker_host,
        manager_address=manager_address,
        registry_address=registry_address,
        registry_port=registry_port,
        registry=registry,
    )
    pid = running_pid(home)
    if pid is not None:
        click.echo(
            f"Beanpole server already running (pid {pid}) at "
            f"http://{config.api_host}:{config.api_port}"
        )
        return
    home.server_file.unlink(missing_ok=True)
    home.save_config(config)
    home.token()
    log_path = home.logs / "server.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "beanpole.server.main"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "BEANPOLE_HOME": str(home.root)},
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ComponentError(
                f"The server exited with status {proc.returncode} while starting. "
                f"Last lines of {log_path}:\n{_tail(log_path)}"
            )
        if home.server_file.exists():
            try:
                Client.discover(home).ping()
                break
            except BeanpoleError:
                pass
        time.sleep(0.1)
    else:
        proc.terminate()
        raise ComponentError(
            f"The server did not answer within {START_TIMEOUT_S:.0f} s. See {log_path}."
        )
    click.echo(f"Beanpole server running (pid {proc.pid})")
    click.echo(f"  API:           http://{config.api_host}:{config.api_port}/api/v1")
    click.echo(
        f"  Load balancer: port {config.lb_port}, environments at "
        f"http://<name>.{config.domain}:{config.lb_port}"
    )
    if config.https_port:
        click.echo(
            f"  HTTPS:         port {config.https_port} for environments with a certificate "
            "(beanpole certs add)"
        )
    click.echo(f"  EB API and S3: http://{config.api_host}:{config.eb_port} (beanpole keys create)")
    click.echo(f"  Web console:   {_console_url(config)}  ({_sign_in_hint(home)})")
    click.echo(f"  Runtime:       {config.runtime}")
    click.echo(f"  Home:          {home.root}")


def _console_url(config: ServerConfig) -> str:
    host = "127.0.0.1" if config.api_host in ("0.0.0.0", "::") else config.api_host
    return f"http://{host}:{config.api_port}/"


def _sign_in_hint(home: Home) -> str:
    return f"sign in with the token in {home.token_file}, or a user: beanpole user add NAME"


@server.command("stop")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also stop HAProxy, supervisord and every app instance.",
)
def stop(everything: bool) -> None:
    """Stop the control plane; applications keep serving (unless --all)."""
    home = Home.default()
    pid = running_pid(home)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        home.server_file.unlink(missing_ok=True)
        click.echo(f"Stopped the Beanpole server (pid {pid}).")
    else:
        click.echo("The Beanpole server is not running.")
    if everything:
        stopped = _data_plane(home, "stop")["stopped"]
        if "supervisord" in stopped:
            click.echo("Stopped supervisord and every instance.")
        if "docker" in stopped:
            click.echo("Stopped and removed every instance's containers.")
        if "haproxy" in stopped:
            click.echo("Stopped HAProxy.")


@server.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with eb_endpoint).")
def status(as_json: bool) -> None:
    """Say whether the server, HAProxy and supervisord are running, and where they answer."""
    home = Home.default()
    pid = running_pid(home)
    daemons = _data_plane(home, "status")
    config = home.load_config()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "server": pid is not None,
                    "pid": pid,
                    "haproxy": daemons["haproxy"],
                    "supervisord": daemons["supervisord"],
                    "runtime": config.runtime,
                    "docker": daemons["docker"],
                    "home": str(home.root),
                    "api_url": f"http://{config.api_host}:{config.api_port}/api/v1",
                    "lb_port": config.lb_port,
                    "https_port": config.https_port,
                    # what Terraform's endpoints {} block, AWS_ENDPOINT_URL and boto3 take
                    "eb_endpoint": f"http://{config.api_host}:{config.eb_port}",
                    "region": config.region,
                    "console_url": _console_url(config),
                    "token_file": str(home.token_file),
                },
                indent=2,
            )
        )
    else:
        click.echo(f"server:      {f'running (pid {pid})' if pid else 'stopped'}")
        click.echo(f"haproxy:     {'running' if daemons['haproxy'] else 'stopped'}")
        click.echo(f"supervisord: {'running' if daemons['supervisord'] else 'stopped'}")
        click.echo(f"docker:      {'running' if daemons['docker'] else 'not answering'}")
        click.echo(f"runtime:     {config.runtime} (the default; beanpole:instance:Runtime)")
        https = f", HTTPS {config.https_port}" if config.https_port else ", no HTTPS"
        click.echo(f"listeners:   HTTP {config.lb_port}{https}")
        click.echo(f"eb endpoint: http://{config.api_host}:{config.eb_port}")
        click.echo(f"console:     {_console_url(config)}  ({_sign_in_hint(home)})")
        click.echo(f"home:        {home.root}")
    if pid is None:
        click.get_current_context().exit(3)
