"""The static file server's process: started beside HAProxy, outliving the control plane.

Like HAProxy it is a daemon of its own (own session, pid file, socket and log under HAProxy's
folder), so ``kill -9`` of the server leaves static files served; the HAProxy adapter starts
it with HAProxy, checks it every time it reads HAProxy's state (once a second) and starts it
again if it died, and stops it with HAProxy.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil

from beanpole.core.errors import ComponentError
from beanpole.core.lb.config import HAProxyPaths

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
POLL_S = 0.02
MODULE = "beanpole.adapters.lb.static_server"


class StaticFileServer:
    def __init__(self, paths: HAProxyPaths) -> None:
        self.paths = paths
        self.log = paths.directory / "static.log"
        self._process: psutil.Process | None = None
        self._lock = threading.Lock()  # server_states() and apply() run in worker threads

    def is_running(self) -> bool:
        return self._live() is not None

    def ensure_running(self) -> bool:
        """Start it unless it runs; True when it had to be started."""
        with self._lock:
            return self._ensure_running()

    def _ensure_running(self) -> bool:
        if self._live() is not None:
            return False
        self.paths.static_pid.unlink(missing_ok=True)
        self.paths.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            MODULE,
            str(self.paths.static_routes),
            str(self.paths.static_socket),
        ]
        with self.log.open("ab") as log:
            try:
                child = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise ComponentError(f"Could not start the static file server: {exc}") from exc
        self.paths.static_pid.write_text(f"{child.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers():
            if child.poll() is not None or time.monotonic() > deadline:
                with contextlib.suppress(OSError):
                    child.kill()
                tail = self._log_tail()
                raise ComponentError(f"The static file server did not start: {tail}")
            time.sleep(POLL_S)
        # Not waited for by this process: it outlives it (reaped by init once this exits).
        self._process = psutil.Process(child.pid)
        return True

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        proc = self._live()
        if proc is not None:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except psutil.TimeoutExpired:
                    proc.kill()
                    proc.wait(STOP_TIMEOUT_S)
        self._process = None
        self.paths.static_pid.unlink(missing_ok=True)
        self.paths.static_socket.unlink(missing_ok=True)

    def _live(self) -> psutil.Process | None:
        """The running server named by the pid file, if it is ours (pids get reused)."""
        proc = self._process
        if proc is not None:
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    return proc
        try:
            pid = int(self.paths.static_pid.read_text().split()[0])
            proc = psutil.Process(pid)
            cmdline = proc.cmdline()
            if (
                proc.status() == psutil.STATUS_ZOMBIE
                or MODULE not in cmdline
                or str(self.paths.static_socket) not in cmdline
            ):
                return None
        except (OSError, ValueError, IndexError, psutil.Error):
            return None
        self._process = proc
        return proc

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(str(self.paths.static_socket))
            except OSError:
                return False
        return True

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no output)"
        return " | ".join(lines[-5:]) or "(no output)"
