"""The HAProxy adapter: runs one master-worker HAProxy and converges it to a spec.

HAProxy is the data plane, so it must keep serving when Beanpole is not running: it is started
as a daemon that outlives the caller, and every question is asked of the running process (its
admin socket) rather than of files this module wrote, so a restarted control plane adopts
whatever runs.

Changes take the least disruptive path (see ``docs`` and DESIGN.md's measured notes):
servers, weights and hosts go through the runtime API; anything else is a reload through the
master CLI, which was measured to lose no request. The files on disk are always rewritten to
the full spec so that a reload, by us or by anyone, keeps the current truth.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

import psutil

from beanpole.adapters.lb.static_files import StaticFileServer
from beanpole.core import certificates
from beanpole.core.errors import ComponentError, InvalidInput, NotFound
from beanpole.core.lb.config import (
    BACKEND_PREFIX,
    MAX_WEIGHT,
    Backend,
    Certificate,
    HAProxyPaths,
    LoadBalancerSpec,
    backend_id,
    render_config,
    render_crt_list,
    render_hosts_map,
    render_static_routes,
    sample_var,
    server_line,
    structural_key,
)
from beanpole.core.runtime import ServerState

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 5.0
START_TIMEOUT_S = 15.0
RELOAD_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
#: How long ``del server`` is retried while in-flight requests finish, before their sessions
#: are shut down, and again after. Callers drain first, so this is normally not reached;
#: with a connect timeout under `MAX_DELETE_GRACE_S`, the grace outlasts it (`_delete_grace`).
DELETE_GRACE_S = 1.0
MAX_DELETE_GRACE_S = 2.0
POLL_S = 0.02
WEIGHTS_REFRESH_S = 10.0  # the longest server_states() reuses the servers' own weights
SET_VAR_BATCH = 100  # commands per CLI line: well under HAProxy's 16 KB line buffer

_PASSING_CHECKS = frozenset({"L4OK", "L6OK", "L7OK", "L7OKC"})
# srv_admin_state bits (server.h): forced maintenance and forced drain, the two that
# ``set server .. state`` sets and ``state ready`` clears.
_ADMIN_FORCED_MAINT = 0x01
_ADMIN_FORCED_DRAIN = 0x08
_RESPONSE_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")


@dataclass(frozen=True)
class _Running:
    """A server as ``show servers state`` reports it: what apply diffs against."""

    address: str
    port: int
    weight: int
    admin: int


class HAProxy:
    """One HAProxy (master + workers) whose files live in ``directory``; implements
    `beanpole.ports.LoadBalancer`."""

    def __init__(self, directory: Path, haproxy_bin: str = "haproxy") -> None:
        self.paths = HAProxyPaths.under(directory)
        self.haproxy_bin = haproxy_bin
        self._log = self.paths.directory / "haproxy.log"
        self._lock_file = self.paths.directory / "lock"
        self._writes = 0  # commands sent that may change something (see _user_weights)
        self._weights: tuple[int, float, dict[tuple[str, str], int]] | None = None
        self.static_files = StaticFileServer(self.paths)
        self._static_wanted = False  # some environment has static files: keep it running

    # -- process ---------------------------------------------------------------------------

    def is_running(self) -> bool:
        """The master in the pid file is alive and a worker answers on the admin socket."""
        if self._master() is None:
            return False
        try:
            self.runtime("show info")
        except ComponentError:
            return False
        return True

    def start(self, spec: LoadBalancerSpec) -> None:
        """Start HAProxy as a daemon serving ``spec``; adopt and converge one already running.

        Adopting matters because HAProxy outlives the control plane: a restarted Beanpole
        calls ``start`` and must neither fail nor start a second HAProxy on the same files.
        """
        with self._locked():
            if self.is_running():
                self._apply(spec)
                return
            self._write_files(spec)
            self._ensure_static_files(spec)
            self.paths.pid_file.unlink(missing_ok=True)
            argv = [
                self.haproxy_bin,
                "-W",
                "-D",
                "-S",
                f"{self.paths.master_socket},mode,600",
                "-p",
                str(self.paths.pid_file),
                "-f",
                str(self.paths.cfg),
            ]
            # The master keeps its stderr for worker notices for its whole life, so it goes to
            # a file (one per master): a pipe would keep this call waiting until HAProxy exits.
            with self._log.open("wb") as log:
                try:
                    launcher = subprocess.run(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                        timeout=START_TIMEOUT_S,
                        check=False,
                    )
                except (OSError, subprocess.TimeoutExpired) as exc:
                    raise ComponentError(f"Could not run {self.haproxy_bin}: {exc}") from exc
            if launcher.returncode != 0:
                raise ComponentError(
                    f"HAProxy did not start (exit {launcher.returncode}): {self._log_tail()}"
                )
            key = structural_key(spec)
            if not _poll(lambda: self._master() is not None and self._serves(key), START_TIMEOUT_S):
                raise ComponentError(
                    f"HAProxy started but its admin socket did not answer within "
                    f"{START_TIMEOUT_S:.0f} s: {self._log_tail()}"
                )

    def stop(self) -> None:
        """Stop the master and its workers now (in-flight requests are cut), wait for them,
        and the static file server."""
        with self._locked():
            self.static_files.stop()
            master = self._master()
            if master is None:
                self.paths.pid_file.unlink(missing_ok=True)
                return
            with contextlib.suppress(psutil.Error):
                processes = [master, *master.children(recursive=True)]
                for proc in processes:
                    with contextlib.suppress(psutil.Error):
                        proc.send_signal(signal.SIGTERM)
                if not _poll(lambda: not any(_alive(p) for p in processes), STOP_TIMEOUT_S):
                    for proc in processes:
                        with contextlib.suppress(psutil.Error):
                            proc.kill()
                    if not _poll(lambda: not any(_alive(p) for p in processes), STOP_TIMEOUT_S):
                        raise ComponentError(f"HAProxy (pid {master.pid}) did not stop.")
            self.paths.pid_file.unlink(missing_ok=True)

    # -- convergence -----------------------------------------------------------------------

    def apply(self, spec: LoadBalancerSpec) -> None:
        """Converge the running HAProxy to ``spec`` with the least disruption.

        A structural change (listener, backends, checks) is a reload. Otherwise servers, weights
        and hosts change in place through the runtime API. Servers in the spec are also put
        back to the ready state: a ``drain`` is a runtime-only request that a reload forgets
        anyway, so the spec (weight 0 to keep draining) is the one truth.
        """
        with self._locked():
            self._apply(spec)

    def _apply(self, spec: LoadBalancerSpec) -> None:
        if self._master() is None:
            raise ComponentError("HAProxy is not running: start it before applying changes.")
        key = structural_key(spec)
        self._write_files(spec)
        self._ensure_static_files(spec)
        if self._info().get("description") != f"beanpole-{key}":
            self._reload(key)
            return
        running = self._running_servers()
        for backend in spec.backends:
            self._converge_servers(backend, running.get(backend.name, {}))
        self._converge_hosts(spec)
        if spec.https_port:
            self._converge_certificates(spec)
        wanted = {(b.name, s.name) for b in spec.backends for s in b.servers}
        for env, servers in running.items():
            for name in servers:
                if (env, name) not in wanted:
                    self._remove_server(env, name, _delete_grace(spec))

    def _ensure_static_files(self, spec: LoadBalancerSpec) -> None:
        """Start the static file server when an environment has static files (and leave it
        running once started: its routes file says what it serves)."""
        if any(b.static is not None and b.static.roots for b in spec.backends):
            self._static_wanted = True
        if self._static_wanted:
            self.static_files.ensure_running()

    def _converge_servers(self, backend: Backend, running: dict[str, _Running]) -> None:
        be = backend_id(backend.name)
        for server in backend.servers:
            ref = f"{be}/{server.name}"
            now = running.get(server.name)
            if now is None:
                # Dynamic servers start in maintenance with checks off.
                line = server_line(server, backend.check)
                self._expect(f"add server {be}/{line}", "New server registered.")
                self._expect(f"enable health {ref}")
                self._expect(f"enable server {ref}")
                continue
            moved = now.port != server.port or ip_address(now.address) != ip_address(server.address)
            if moved:
                answer = self.runtime(f"set server {ref} addr {server.address} port {server.port}")
                if "changed" not in answer and "no need to change" not in answer:
                    raise ComponentError(f"HAProxy refused to move {ref}: {answer.strip()}")
            if now.weight != server.weight:
                self._expect(f"set server {ref} weight {server.weight}")
            if now.admin & (_ADMIN_FORCED_MAINT | _ADMIN_FORCED_DRAIN):
                self._expect(f"set server {ref} state ready")

    def _converge_hosts(self, spec: LoadBalancerSpec) -> None:
        map_file = self.paths.hosts_map
        current: dict[str, str] = {}
        for line in self.runtime(f"show map {map_file}").splitlines():
            fields = line.split()
            if len(fields) == 3:
                current[fields[1]] = fields[2]
        wanted = {h: backend_id(b.name) for b in spec.backends for h in b.hosts}
        for host, backend in wanted.items():
            if host not in current:
                self._expect(f"add map {map_file} {host} {backend}")
            elif current[host] != backend:
                self._expect(f"set map {map_file} {host} {backend}")
        for host in current.keys() - wanted.keys():
            self._expect(f"del map {map_file} {host}")

    def _converge_certificates(self, spec: LoadBalancerSpec) -> None:
        """Add, renew and remove the listener's certificates through the runtime API.

        A certificate is loaded into HAProxy's store (``new``/``set``/``commit ssl cert``),
        then put on the listener (``add ssl crt-list``); a renewal replaces the store's
        entry in one commit, so handshakes in flight finish with the old certificate and
        the next ones get the new one. Connections already open are not touched.
        """
        crt_list = self.paths.crt_list
        listed: set[str] = set()
        for line in self.runtime(f"show ssl crt-list {crt_list}").splitlines():
            if line and not line.startswith("#"):
                listed.add(line.split()[0])
        for cert in spec.certificates:
            if cert.path not in listed:
                self._load_certificate(cert, new=True)
                answer = self._send_payload(f"add ssl crt-list {crt_list}", cert.crt_list_line)
                if "Success!" not in answer:
                    raise ComponentError(
                        f"HAProxy did not take certificate {cert.name!r}: {_essential(answer)}"
                    )
            elif self._fingerprint(cert.path) != cert.fingerprint:
                self._load_certificate(cert, new=False)
        for path in listed - {c.path for c in spec.certificates}:
            answer = self.runtime(f"del ssl crt-list {crt_list} {path}")
            if "deleted" not in answer:
                raise ComponentError(f"HAProxy did not remove {path}: {_essential(answer)}")
            self.runtime(f"del ssl cert {path}")

    def _load_certificate(self, cert: Certificate, *, new: bool) -> None:
        try:
            pem = Path(cert.path).read_text()
        except OSError as exc:
            raise ComponentError(f"Certificate {cert.name!r} cannot be read: {exc}") from exc
        if new:
            answer = self.runtime(f"new ssl cert {cert.path}")
            if "New empty certificate store" not in answer and "already exists" not in answer:
                raise ComponentError(f"HAProxy refused certificate {cert.name!r}: {answer}")
        answer = self._send_payload(f"set ssl cert {cert.path}", pem)
        if "Transaction" not in answer:
            self.runtime(f"abort ssl cert {cert.path}")
            raise ComponentError(f"HAProxy refused certificate {cert.name!r}: {_essential(answer)}")
        answer = self.runtime(f"commit ssl cert {cert.path}")
        if "Success!" not in answer:
            raise ComponentError(
                f"HAProxy could not commit certificate {cert.name!r}: {_essential(answer)}"
            )

    def _fingerprint(self, path: str) -> str:
        for line in self.runtime(f"show ssl cert {path}").splitlines():
            if line.startswith("SHA1 FingerPrint:"):
                return line.partition(":")[2].strip().upper()
        return ""

    def _remove_server(self, env: str, server: str, grace_s: float = DELETE_GRACE_S) -> None:
        """Maintenance, then delete; in-flight requests get a bounded grace, then are cut."""
        ref = f"{backend_id(env)}/{server}"
        self._expect(f"set server {ref} state maint")
        answer = ""

        def deleted() -> bool:
            nonlocal answer
            answer = self.runtime(f"del server {ref}").strip()
            return answer in ("Server deleted.", "No such server.")

        if _poll(deleted, grace_s):
            return
        self.runtime(f"shutdown sessions server {ref}")
        if not _poll(deleted, DELETE_GRACE_S):
            raise ComponentError(f"HAProxy would not delete server {ref}: {answer}")

    def _reload(self, key: str) -> None:
        """Reload through the master CLI and wait until a worker with the new config answers."""
        old_pid = self._info().get("Pid")
        log_offset = self._log_size()
        failed_before = self._failed_reloads()
        self._master_cli("reload")

        def new_worker_serves() -> bool:
            try:
                failed = self._failed_reloads()
            except ComponentError:
                # The master re-executes itself to reload: its socket refuses for a moment.
                failed = failed_before
            if failed > failed_before:
                raise ComponentError(
                    f"HAProxy refused the new config: {self._log_tail(log_offset)}"
                )
            info = self._info_or_empty()
            return info.get("Pid") != old_pid and info.get("description") == f"beanpole-{key}"

        if not _poll(new_worker_serves, RELOAD_TIMEOUT_S):
            raise ComponentError(
                f"HAProxy did not serve the new config within {RELOAD_TIMEOUT_S:.0f} s: "
                f"{self._log_tail(log_offset)}"
            )

    # -- runtime operations -----------------------------------------------------------------

    def server_states(self) -> dict[tuple[str, str], ServerState]:
        """Every environment server's status, keyed by ``(environment, server)``."""
        weights = self._user_weights()
        text = self.runtime("show stat -1 4 -1")  # type 4: servers only
        # Its data plane's other half: started again at once if it died (a pid check).
        if self._static_wanted and self.static_files.ensure_running():
            log.warning("the static file server was not running; started it again")
        # csv.reader and the header's column numbers, not csv.DictReader: this runs every
        # second, and a dict of HAProxy's ~100 columns per server was most of its cost.
        rows = csv.reader(text.removeprefix("# ").splitlines())
        header = next(rows, [])
        column = {name: i for i, name in enumerate(header)}
        if "pxname" not in column or "svname" not in column:
            return {}
        px, sv = column["pxname"], column["svname"]
        status_at, check_at, weight_at, scur_at, err_at, bin_at, bout_at = (
            column.get(name, -1)
            for name in ("status", "check_status", "weight", "scur", "hrsp_5xx", "bin", "bout")
        )
        classes_at = [column.get(f"hrsp_{c}", -1) for c in _RESPONSE_CLASSES]

        def field(row: list[str], i: int) -> str:
            return row[i] if i >= 0 else ""

        states: dict[tuple[str, str], ServerState] = {}
        for row in rows:
            if len(row) < len(header):
                continue
            proxy, name = row[px], row[sv]
            if not proxy.startswith(BACKEND_PREFIX) or name in ("BACKEND", "FRONTEND"):
                continue
            env = proxy.removeprefix(BACKEND_PREFIX)
            status = field(row, status_at)
            # A check in progress is shown as "* L7OK".
            check_status = field(row, check_at).removeprefix("* ")
            states[(env, name)] = ServerState(
                backend=env,
                server=name,
                status=status,
                check_status=check_status,
                healthy=server_healthy(status, check_status),
                weight=weights.get((env, name), _int(field(row, weight_at))),
                sessions=_int(field(row, scur_at)),
                responses=sum(_int(field(row, i)) for i in classes_at),
                responses_5xx=_int(field(row, err_at)),
                bytes_in=_int(field(row, bin_at)),
                bytes_out=_int(field(row, bout_at)),
            )
        return states

    def _user_weights(self) -> dict[tuple[str, str], int]:
        """Each server's own weight (``show stat`` has the effective one, 0 while draining).

        Read again only after a command that may change it was sent through this object, or
        every ``WEIGHTS_REFRESH_S``: server_states() runs every second, and this second
        command was half of its cost on an idle server.
        """
        cached = self._weights
        if cached is not None and cached[0] == self._writes and time.monotonic() < cached[1]:
            return cached[2]
        writes = self._writes
        weights = {
            (env, name): now.weight
            for env, servers in self._running_servers().items()
            for name, now in servers.items()
        }
        self._weights = (writes, time.monotonic() + WEIGHTS_REFRESH_S, weights)
        return weights

    def set_weight(self, env: str, server: str, weight: int) -> None:
        """Change a server's share of new requests now (0: none). Runtime only, like ``drain``."""
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise InvalidInput(f"Server weight {weight!r} is not valid: use 0 to {MAX_WEIGHT}.")
        self._expect_server(f"set server {backend_id(env)}/{server} weight {weight}", env, server)

    def set_sampling(self, ratios: Mapping[str, int]) -> None:
        """Log one request in N for each environment (``ratios``: name -> N >= 1), now.

        Runtime only (``set var``, which HAProxy 2.6 keeps behind ``experimental-mode``);
        the rendered config carries the same values (`Backend.sample_ratio`), so a reload
        keeps them.
        """
        commands = []
        for env, ratio in sorted(ratios.items()):
            if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
                raise InvalidInput(
                    f"Sampling ratio {ratio!r} for {env!r} is not valid: use 1 or more."
                )
            commands.append(f"set var {sample_var(env)} int({ratio})")
        with self._locked():  # not between a reload's config and its new worker
            for start in range(0, len(commands), SET_VAR_BATCH):
                line = "; ".join(["experimental-mode on", *commands[start : start + SET_VAR_BATCH]])
                answer = self._send(self.paths.admin_socket, line, batch=True).strip()
                if answer:
                    raise ComponentError(f"HAProxy refused the sampling ratios: {answer}")

    def drain(self, env: str, server: str) -> None:
        """Send no new requests to a server; the ones in flight finish."""
        self._expect_server(f"set server {backend_id(env)}/{server} state drain", env, server)

    def runtime(self, command: str) -> str:
        """Send one runtime-API command to the admin socket and return HAProxy's answer."""
        return self._send(self.paths.admin_socket, command)

    # -- helpers ---------------------------------------------------------------------------

    def _send_payload(self, command: str, payload: str) -> str:
        """A command that takes lines after it (``<<``), ended by an empty line."""
        text = payload.strip("\n")
        if "\n\n" in text or "\r" in text:
            raise InvalidInput("A runtime payload cannot hold an empty line.")
        return self._send(self.paths.admin_socket, f"{command} <<\n{text}\n", payload=True)

    def _master_cli(self, command: str) -> str:
        return self._send(self.paths.master_socket, command)

    def _send(self, path: Path, command: str, *, batch: bool = False, payload: bool = False) -> str:
        if ("\n" in command and not payload) or (";" in command and not batch):
            raise InvalidInput("Send one runtime command at a time (no newline or ';').")
        if not command.startswith("show "):
            self._writes += 1  # anything but a question may change the servers' weights
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(SOCKET_TIMEOUT_S)
                sock.connect(str(path))
                sock.sendall(command.encode() + b"\n")
                # The master CLI answers only once the client half-closes; the admin socket
                # does not care, so both are driven the same way.
                sock.shutdown(socket.SHUT_WR)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise ComponentError(f"HAProxy did not answer on {path}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def _expect(self, command: str, success: str = "") -> None:
        answer = self.runtime(command).strip()
        if answer != success:
            raise ComponentError(f"HAProxy refused {command!r}: {answer or 'no answer'}")

    def _expect_server(self, command: str, env: str, server: str) -> None:
        answer = self.runtime(command).strip()
        if answer in ("No such server.", "No such backend."):
            raise NotFound(f"Environment {env!r} has no server {server!r} in HAProxy.")
        if answer:
            raise ComponentError(f"HAProxy refused {command!r}: {answer}")

    def _info(self) -> dict[str, str]:
        info = {}
        for line in self.runtime("show info").splitlines():
            name, sep, value = line.partition(":")
            if sep:
                info[name.strip()] = value.strip()
        return info

    def _info_or_empty(self) -> dict[str, str]:
        try:
            return self._info()
        except ComponentError:
            return {}

    def _serves(self, key: str) -> bool:
        return self._info_or_empty().get("description") == f"beanpole-{key}"

    def _failed_reloads(self) -> int:
        """The master's count of reloads that failed (``show proc``: "1 [failed: 0]")."""
        for line in self._master_cli("show proc").splitlines():
            if "master" in line and "[failed:" in line:
                return _int(line.split("[failed:")[1].split("]")[0])
        return 0

    def _running_servers(self) -> dict[str, dict[str, _Running]]:
        """``{env: {server: _Running}}`` for every env-* backend, from ``show servers state``."""
        lines = self.runtime("show servers state").splitlines()
        header = next((ln[2:].split() for ln in lines if ln.startswith("# ")), [])
        running: dict[str, dict[str, _Running]] = {}
        for line in lines:
            fields = line.split()
            if line.startswith("#") or len(fields) != len(header):
                continue
            row = dict(zip(header, fields, strict=True))
            if not row["be_name"].startswith(BACKEND_PREFIX):
                continue
            env = row["be_name"].removeprefix(BACKEND_PREFIX)
            running.setdefault(env, {})[row["srv_name"]] = _Running(
                address=row["srv_addr"],
                port=_int(row["srv_port"]),
                weight=_int(row["srv_uweight"]),
                admin=_int(row["srv_admin_state"]),
            )
        return running

    def _master(self) -> psutil.Process | None:
        """The live HAProxy master named by the pid file, if it is ours (pids get reused)."""
        try:
            pid = int(self.paths.pid_file.read_text().split()[0])
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or str(self.paths.cfg) not in proc.cmdline():
                return None
        except (OSError, ValueError, IndexError, psutil.Error):
            return None
        return proc

    def _write_files(self, spec: LoadBalancerSpec) -> None:
        """Write map and config atomically; the config only after ``haproxy -c`` accepts it.
        The folder is the owner's alone: the config holds the request lines' token."""
        self.paths.directory.mkdir(parents=True, exist_ok=True)
        self.paths.directory.chmod(0o700)
        _write_atomic(self.paths.hosts_map, render_hosts_map(spec))
        _write_atomic(self.paths.static_routes, render_static_routes(spec))
        _write_atomic(self.paths.crt_list, render_crt_list(spec))
        if spec.https_port and not self.paths.default_cert.exists():
            _write_atomic(self.paths.default_cert, certificates.self_signed())
        candidate = self.paths.cfg.with_name(self.paths.cfg.name + ".new")
        candidate.write_text(render_config(spec, self.paths))
        try:
            result = subprocess.run(
                [self.haproxy_bin, "-c", "-f", str(candidate)],
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ComponentError(f"Could not run {self.haproxy_bin} -c: {exc}") from exc
        if result.returncode != 0:
            candidate.unlink(missing_ok=True)
            message = _essential(result.stderr or result.stdout)
            raise ComponentError(f"HAProxy rejected the rendered config: {message}")
        candidate.replace(self.paths.cfg)

    def _log_size(self) -> int:
        try:
            return self._log.stat().st_size
        except OSError:
            return 0

    def _log_tail(self, offset: int = 0) -> str:
        """What the master wrote since ``offset``, its alerts first (for error messages)."""
        try:
            with self._log.open("rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return "(no output)"
        return _essential(text)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One change at a time, across threads and processes (CLI and server alike)."""
        self.paths.directory.mkdir(parents=True, exist_ok=True)
        with self._lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def server_healthy(status: str, check_status: str) -> bool:
    """In service by HAProxy's account *and* its latest health check passed.

    Both halves matter. A server just added and enabled shows "UP 1/2" with check status
    "INI" before any check ran (HAProxy assumes it up): that is not healthy, or a deploy
    waiting for health would open traffic to an instance not yet listening. A server
    shown "UP 1/5" whose latest check failed is still in rotation until ``fall`` failures,
    but reported unhealthy one check early: the conservative reading for a gate.
    "DRAIN" and "NOLB" are alive but taking no new traffic; they count as healthy when
    their check passes, because weight and health are separate questions.
    """
    if status == "no check":
        return True
    in_service = status.startswith(("UP", "DRAIN", "NOLB"))
    return in_service and check_status in _PASSING_CHECKS


def _delete_grace(spec: LoadBalancerSpec) -> float:
    """How long a removed server's requests may go on before they are cut: past the connect
    timeout where that is short (a swarm's), so that a request still connecting to a dead
    node's instance is sent to another one (``retry-on conn-failure``, ``redispatch``)
    rather than cut; a longer one (5 s on one host, where a dead port refuses at once) is
    not waited out."""
    past_connect = spec.connect_timeout_ms / 1000 + 0.5
    return (
        max(DELETE_GRACE_S, past_connect) if past_connect <= MAX_DELETE_GRACE_S else DELETE_GRACE_S
    )


def _poll(condition: Callable[[], bool], timeout_s: float) -> bool:
    """True as soon as ``condition`` holds, False if it still does not after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _essential(output: str, limit: int = 10) -> str:
    """HAProxy's alerts and warnings on one line, without the version notices around them."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    important = [ln for ln in lines if not ln.startswith("[NOTICE]")] or lines
    return " | ".join(important[-limit:]) or "(no output)"


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
