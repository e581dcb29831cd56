"""Real HAProxy and tiny real HTTP instances for the integration tests (no mocks).

Each instance is a ThreadingHTTPServer on a loopback port answering its own name, so a
response body says which instance served it. HAProxy runs as the daemon it is in production;
the ``lb`` fixture stops it by pid.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from beanpole.adapters.lb.haproxy import HAProxy
from beanpole.core.lb.config import Server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port nothing listens on (bound then closed: the kernel will refuse connections)."""
    return free_port()


class App:
    """A tiny instance: answers every GET with its own name, keeps connections alive."""

    def __init__(self, name: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 65536  # one write per response: no Nagle/delayed-ACK 40 ms stalls

            def do_GET(self) -> None:
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        app = self

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                app.connections += 1
                super().process_request(request, client_address)

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # HAProxy closing idle connections (maint, del server) is expected

        self.name = name
        self.connections = 0  # TCP connections accepted (HAProxy's health checks included)
        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def server(self, weight: int = 1) -> Server:
        return Server(self.name, "127.0.0.1", self.port, weight)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def apps() -> Iterator[Callable[[str], App]]:
    started: list[App] = []

    def make(name: str) -> App:
        app = App(name)
        started.append(app)
        return app

    yield make
    for app in started:
        app.close()


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[HAProxy]:
    haproxy = HAProxy(tmp_path / "lb")
    yield haproxy
    pids = process_tree(haproxy_pid(haproxy))
    try:
        haproxy.stop()
    finally:
        # Whatever stop() did, nothing this test started may outlive it.
        leftovers = [p for p in pids if alive(p)]
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"stop() left {leftovers} running"


def process_tree(pid: int | None) -> list[int]:
    if pid is None:
        return []
    try:
        master = psutil.Process(pid)
        return [pid, *(child.pid for child in master.children(recursive=True))]
    except psutil.Error:
        return []


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def haproxy_pid(haproxy: HAProxy) -> int | None:
    try:
        return int(haproxy.paths.pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
