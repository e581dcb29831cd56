"""Helpers for tests that run a real Beanpole server: free ports, the CLI, HTTP through HAProxy."""

from __future__ import annotations

import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # the condition may fail until it holds
            last_error = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what}"
        + (f" (last error: {last_error!r})" if last_error else "")
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Beanpole:
    """A Beanpole server in its own BEANPOLE_HOME, driven through the real CLI."""

    home: Path
    lb_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    eb_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    runtime: str | None = None  # `server start --runtime` (None: the default)
    docker_host: str | None = None  # DOCKER_HOST for the server (None: the environment's)
    start_args: tuple[str, ...] = ()  # more options of `server start` (the swarm's)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BEANPOLE_")}
        env["BEANPOLE_HOME"] = str(self.home)
        if self.docker_host is not None:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def cli(
        self, *args: str, check: bool = True, timeout: float = 600, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "beanpole.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input_text,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"beanpole {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def start(self) -> None:
        self.cli(
            "server",
            "start",
            "--lb-port",
            str(self.lb_port),
            "--lb-host",
            "127.0.0.1",
            "--api-port",
            str(self.api_port),
            "--eb-port",
            str(self.eb_port),
            "--https-port",
            str(self.https_port),
            *(("--runtime", self.runtime) if self.runtime else ()),
            *self.start_args,
        )

    @property
    def eb_endpoint(self) -> str:
        """Elastic Beanstalk's API and the S3 subset (`beanpole server status --json`)."""
        return f"http://127.0.0.1:{self.eb_port}"

    def eb_client(self) -> Any:
        """A boto3 Elastic Beanstalk client signed with a new access key of this server's."""
        import boto3
        from botocore.config import Config

        key = json.loads(self.cli("keys", "create", "--json").stdout)
        return boto3.client(
            "elasticbeanstalk",
            endpoint_url=self.eb_endpoint,
            region_name="us-east-1",
            aws_access_key_id=key["access_key_id"],
            aws_secret_access_key=key["secret_access_key"],
            config=Config(retries={"max_attempts": 1}),
        )

    def server_pid(self) -> int | None:
        try:
            return int(json.loads((self.home / "server.json").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def kill_server(self) -> None:
        """kill -9 the control plane only."""
        pid = self.server_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid) or _zombie(pid), 10, "the server to die")

    def stop_all(self) -> None:
        self.cli("server", "stop", "--all", check=False, timeout=120)

    def app_users(self) -> list[pwd.struct_passwd]:
        """The users the server made for this home's applications (their comment names the
        home: `beanpole.adapters.appuser.comment`)."""
        return [
            entry
            for entry in pwd.getpwall()
            if entry.pw_name.startswith("bp-")
            and entry.pw_gecos.startswith("beanpole app ")
            and entry.pw_gecos.endswith(f" {self.home}")
        ]

    def remove_app_users(self) -> None:
        """At teardown, once everything is stopped: remove this home's application users, so
        that a test machine does not collect them. Best effort: a user that cannot be removed
        (a process of it still running) is left."""
        if os.geteuid() != 0:
            return
        userdel = shutil.which("userdel") or "/usr/sbin/userdel"
        for entry in self.app_users():
            subprocess.run([userdel, entry.pw_name], capture_output=True, check=False, timeout=60)

    def app_id(self, name: str) -> str:
        """The id of the application ``name`` (from the REST API)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}/api/v1/applications",
            headers={"Authorization": f"Bearer {(self.home / 'token').read_text().strip()}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            apps = json.loads(response.read())
        return str(next(a["id"] for a in apps if a["name"] == name))

    def status(self, env: str) -> dict[str, Any]:
        return json.loads(self.cli("status", env, "--json").stdout)

    def get(self, host: str, path: str = "/", timeout: float = 10) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.lb_port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": f"{host}.localhost:{self.lb_port}"})
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


class Load:
    """Steady keep-alive GETs through the load balancer from a thread; counts failures.

    Bounded: it stops when told, or after ``max_seconds``.
    """

    def __init__(self, port: int, host: str, path: str = "/", max_seconds: float = 300) -> None:
        self.port, self.host, self.path = port, host, path
        self.max_seconds = max_seconds
        self.ok = 0
        self.failures: list[str] = []
        self.bodies: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request(
                    "GET", self.path, headers={"Host": f"{self.host}.localhost:{self.port}"}
                )
                response = conn.getresponse()
                body = response.read().decode(errors="replace")
                if response.status == 200:
                    self.ok += 1
                    if len(self.bodies) < 100_000:
                        self.bodies.append(body)
                else:
                    self.failures.append(f"HTTP {response.status}: {body[:100]}")
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.005)
        if conn is not None:
            conn.close()


def dependency_folders(home: Path, kind: str) -> list[Path]:
    """The installed dependencies of ``kind`` (python, node): shared by manifest, or an
    application's own when applications have users of their own (Beanpole as root)."""
    return sorted(
        p
        for pattern in (f"builds/deps/{kind}/*", f"builds/*/deps/{kind}/*")
        for p in home.glob(pattern)
        if p.is_dir()
    )
