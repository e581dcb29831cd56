"""The local runtime: every instance is a supervisord process group on this host.

`Supervisor` implements `beanpole.ports.Runtime` (``start``, ``stop``, ``observe``, ...): the
services see neutral observations, never supervisord's statenames, which stay in this module.
It also hands out the instances' addresses: ``start`` leases a port on this host's loopback
(``ports``), writes it into the instance's ``PORT`` and returns the endpoint; ``stop`` frees it.
With ``namespaces`` (Beanpole runs as root), an instance whose spec asks for it gets a network
namespace of its own instead (`beanpole.adapters.runtime.netns`): ``PORT`` is its platform's
port, its endpoint the namespace's address, and the launcher enters the namespace before it
runs the command.
Below those, ``start_instance``/``stop_instance``/``instances`` speak supervisord's own terms.

One supervisord per Beanpole data directory runs all instances. It is a daemon of its own, so
apps keep serving while the control plane restarts; the control plane then *adopts* what is
running by reading ``instances()``. Each instance is one ``programs/<id>.conf`` (a group with a
program per Procfile entry) plus ``specs/<id>.json`` read by
``beanpole.adapters.runtime.launch``, which keeps app settings out
of supervisord's quoting and %-expansion rules.

Everything is synchronous and thread-safe: the asyncio server calls it through
``asyncio.to_thread``, and every XML-RPC call opens its own connection with a timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import psutil

from beanpole.adapters import logs
from beanpole.adapters.runtime.netns import Namespaces, Sandbox
from beanpole.adapters.runtime.ports import PortLeases as HostPortLeases
from beanpole.core.errors import ComponentError, InvalidInput, NotFound
from beanpole.core.runtime import (
    Endpoint,
    InstanceObservation,
    InstanceSpec,
    ProcessObservation,
    ProcessStatus,
)

log = logging.getLogger(__name__)

_PROCESS_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
# supervisord's ini parser ends a value at a newline and at an inline comment (" ;", " #").
_UNSAFE_INI = re.compile(r"[\r\n]|\s[;#]")
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes on Linux, including the NUL

_RPC_TIMEOUT_S = 30.0
_START_TIMEOUT_S = 20.0
_EXITED = re.compile(r" exited: (\S+) \(exit status (\d+);")
_CRASHED = frozenset({"BACKOFF", "FATAL"})
_STOPPED = frozenset({"STOPPED", "EXITED", "FATAL", "UNKNOWN"})  # removeProcessGroup accepts these
# supervisord's statenames in the runtime's neutral words. BACKOFF and EXITED: it died and
# supervisord starts it again by itself (autorestart, startretries); FATAL: it gave up.
_STATUS = {
    "STARTING": ProcessStatus.STARTING,
    "RUNNING": ProcessStatus.RUNNING,
    "BACKOFF": ProcessStatus.EXITED,
    "EXITED": ProcessStatus.EXITED,
    "FATAL": ProcessStatus.FAILED,
    "UNKNOWN": ProcessStatus.FAILED,
    "STOPPING": ProcessStatus.STOPPED,
    "STOPPED": ProcessStatus.STOPPED,
}
DEFAULT_PORT_RANGE = (20000, 29999)
#: How long `observe` may answer from its last full look while nothing is seen to change.
#: A change made through Beanpole, a process that dies, starts or backs off is seen on the next
#: call whatever this says; only a change behind Beanpole's back (`supervisorctl stop`) waits
#: for it. The full look (XML-RPC for every process) was the idle server's largest cost left.
OBSERVE_REFRESH_S = 30.0

# supervisor.xmlrpc.Faults, spelled out because the module is untyped.
_BAD_NAME = 10
_SPAWN_ERROR = 50
_ALREADY_STARTED = 60
_SUCCESS = 80
_ALREADY_ADDED = 90


@dataclass(frozen=True)
class ProcessState:
    """One process as supervisord reports it (``state`` is supervisord's statename)."""

    instance_id: str
    name: str
    state: str
    pid: int
    exit_status: int
    spawn_error: str
    started_at: float
    stdout_log: Path
    stderr_log: Path


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over supervisord's unix socket, with a timeout so a wedged supervisord cannot hang
    a worker thread forever (supervisor.xmlrpc's own connection has none)."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixHTTPConnection(self._path, self._timeout)


class PortLeases(Protocol):
    """Who hands out instance ports so that no two live instances on this host share one,
    whichever Beanpole home (``owner``) started them."""

    def lease(self, owner: str, instance_id: str, port_range: tuple[int, int]) -> int: ...

    def release(self, owner: str, instance_id: str) -> None: ...

    def reclaim(self, owner: str, live: set[str]) -> None: ...

    def adopt(self, owner: str, instance_id: str, port: int) -> bool: ...


class Supervisor:
    """A supervisord whose files all live under ``directory``; its instances answer on
    ``host`` at ports leased from ``ports`` within ``port_range``."""

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
        ports: PortLeases | None = None,
        owner: str | None = None,
        namespaces: Namespaces | None = None,
    ) -> None:
        self.directory = directory.absolute()
        self.host = host
        self.port_range = port_range
        self.owner = owner if owner is not None else str(self.directory)
        # host-wide by default: no other Beanpole home (or test) hands out the same port
        self.ports: PortLeases = ports if ports is not None else HostPortLeases()
        # None: every instance shares the host's network (not root, no ip/nft)
        self.namespaces = namespaces
        self.conf_path = self.directory / "supervisord.conf"
        self.socket_path = self.directory / "supervisor.sock"
        self.pid_path = self.directory / "supervisord.pid"
        self.log_path = self.directory / "supervisord.log"
        self.programs_dir = self.directory / "programs"
        self.specs_dir = self.directory / "specs"
        if len(os.fsencode(self.socket_path)) > _SUN_PATH_MAX:
            raise InvalidInput(
                f"{self.socket_path} is too long for a unix socket path "
                f"(max {_SUN_PATH_MAX} bytes); use a shorter data directory"
            )
        _check_ini_value("data directory", str(self.directory))
        self._lock = threading.Lock()
        self._observed: _Observed | None = None
        self._observe_lock = threading.Lock()
        self._changes = 0  # bumped by every change made through this object

    # -- the daemon ---------------------------------------------------------------------------

    def is_running(self) -> bool:
        """True when our supervisord's pid is alive and it answers on its socket."""
        pid = self._daemon_pid()
        if pid is None:
            return False
        try:
            return bool(self._call("getPID", timeout=5.0) == pid)
        except ComponentError:
            return False

    def ensure_running(self) -> None:
        """Start supervisord unless it already runs, and wait until it answers.

        supervisord daemonizes (fork + setsid), so it outlives this process and is not our child.
        """
        if self.is_running():
            return
        self._forget_observation()
        for d in (self.directory, self.programs_dir, self.specs_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_atomic(self.conf_path, self._main_conf())
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_START_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ComponentError(f"could not start supervisord: {exc}") from exc
        # A non-zero exit may just mean another caller won the race to start it.
        if proc.returncode != 0 and not self.is_running():
            output = (proc.stderr + proc.stdout).strip()
            raise ComponentError(f"supervisord failed to start: {output[-2000:]}")
        if not _wait_until(self.is_running, _START_TIMEOUT_S):
            log = "\n".join(self.tail(self.log_path, 20))
            raise ComponentError(f"supervisord started but never answered; its log ends:\n{log}")

    def shutdown(self) -> None:
        """Stop every program, then supervisord itself, and wait until its pid is gone."""
        pid = self._daemon_pid()
        self._forget_observation()
        if pid is None:
            return
        try:
            # TERM everything at once: supervisord's own shutdown stops groups one by one.
            self._call("stopAllProcesses", False)
            self._call("shutdown")
        except ComponentError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # supervisord treats TERM as "shut down cleanly"
        timeout = self._stop_wait_s(p.stem for p in self.specs_dir.glob("*.json")) + _RPC_TIMEOUT_S
        if not _wait_until(lambda: not _alive(pid), timeout):
            raise ComponentError(f"supervisord (pid {pid}) did not exit within {timeout:.0f}s")
        # Every instance stopped with it: their ports are free for any home again.
        self.ports.reclaim(self.owner, set())
        if self.namespaces is not None:
            self.namespaces.reclaim(self.owner, set())

    # -- the Runtime port (beanpole.ports.Runtime) ----------------------------------------------

    def start(self, spec: InstanceSpec) -> Endpoint:
        """Lease a port, start the instance with ``PORT`` set to it, return its endpoint (or,
        isolated, give it a namespace where ``PORT`` is ``spec.listen_port``)."""
        existing = self.endpoint(spec.instance_id)
        if existing is not None and spec.instance_id in self._groups():
            return existing
        if spec.isolate and self.namespaces is not None:
            return self._start_isolated(spec, self.namespaces)
        port = self.ports.lease(self.owner, spec.instance_id, self.port_range)
        try:
            self.start_instance(replace(spec, env={**spec.env, "PORT": str(port)}))
        except BaseException:
            self.ports.release(self.owner, spec.instance_id)
            raise
        return Endpoint(self.host, port)

    def _start_isolated(self, spec: InstanceSpec, namespaces: Namespaces) -> Endpoint:
        if not 0 < spec.listen_port < 65536:
            raise InvalidInput(f"listen_port must be 1-65535, got {spec.listen_port}")
        sandbox = namespaces.create(self.owner, spec.instance_id, spec.ports)
        env = {
            **spec.env,
            "PORT": str(spec.listen_port),
            # the host as the instance sees it: its 127.0.0.1 is the instance's own
            "BEANPOLE_HOST_ADDRESS": sandbox.host_address,
        }
        try:
            self.start_instance(replace(spec, env=env), network=sandbox)
        except BaseException:
            namespaces.delete(self.owner, spec.instance_id)
            raise
        return Endpoint(sandbox.address, spec.listen_port, isolated=True)

    def endpoint(self, instance_id: str) -> Endpoint | None:
        """The endpoint recorded in the instance's spec file (it outlives the control plane)."""
        payload = self._spec_payload(instance_id)
        try:
            return Endpoint(
                str(payload.get("host") or self.host),
                int(payload["env"]["PORT"]),
                isolated=bool(payload.get("netns")),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def stop(self, instance_id: str) -> None:
        """Stop and forget the instance (`stop_instance`), then free its port or namespace."""
        self.stop_instance(instance_id)
        self.ports.release(self.owner, instance_id)
        if self.namespaces is not None:
            self.namespaces.delete(self.owner, instance_id)

    def observe(self) -> dict[str, InstanceObservation]:
        """Every group supervisord runs, in the runtime's neutral words.

        Asked every second, and at hundreds of processes supervisord's answer (XML-RPC) was
        the idle server's largest cost after usage sampling. So the last answer is reused
        while it is certain to hold: nothing was started, stopped or restarted through this
        object since, and supervisord and every running process are still alive (a signal 0
        each: microseconds). Processes starting or backing off (supervisord changes them by
        itself) and running ones whose pid is gone are asked about alone
        (``getProcessInfo``) while they are few. A process that dies is seen on the next
        call, as before; only a change made behind Beanpole's back (``supervisorctl stop``)
        waits up to ``OBSERVE_REFRESH_S``.
        """
        with self._observe_lock:
            cached = self._observed
            if cached is not None and cached.changes == self._changes and cached.fresh():
                stale = cached.stale()
                if not stale:
                    return cached.instances
                some = (
                    self._observe_some(cached, stale)
                    if len(stale) * 4 <= cached.processes
                    else None
                )
                if some is not None:
                    return some
            changes = self._changes
            daemon = self._daemon_pid()
            instances = {
                group: InstanceObservation(group, tuple(_observation(p) for p in processes))
                for group, processes in self.instances().items()
            }
            # Kept only if nothing changed while supervisord answered (another thread may
            # have added a group the answer lacks).
            self._observed = _Observed(time.monotonic(), daemon, instances, changes)
            return instances

    def _observe_some(
        self, cached: _Observed, stale: list[tuple[str, str]]
    ) -> dict[str, InstanceObservation] | None:
        """Ask again only about the processes that may have changed (one that keeps crashing
        must not cost a look at every other), and keep the rest of the last answer; None when
        a group went away behind our back (look at everything then)."""
        infos = [
            self._call("getProcessInfo", f"{group}:{group}_{name}", ok_faults=(_BAD_NAME,))
            for group, name in stale
        ]
        if any(info is None for info in infos):
            return None
        fresh = {
            (group, _observation(state).name): _observation(state)
            for group, states in self._states(infos).items()
            for state in states
        }
        instances = {
            group: InstanceObservation(
                group, tuple(fresh.get((group, p.name), p) for p in observed.processes)
            )
            for group, observed in cached.instances.items()
        }
        self._observed = _Observed(cached.at, cached.daemon, instances, cached.changes)
        return instances

    def _forget_observation(self) -> None:
        """Something changed through this object: the next `observe` looks again."""
        self._changes += 1
        self._observed = None

    def restart(self, instance_id: str, process: str) -> None:
        self.start_process(instance_id, process)

    def log_files(self, instance_id: str) -> list[Path]:
        payload = self._spec_payload(instance_id)
        log_dir = payload.get("log_dir")
        if not isinstance(log_dir, str):
            return []
        names = sorted(payload.get("processes") or {})
        # One file per process, stdout and stderr in the order written (redirect_stderr); an
        # instance started before that still has its separate stderr file, read first.
        return [
            path
            for n in names
            for path in (Path(log_dir) / f"{n}.stderr.log", Path(log_dir) / f"{n}.stdout.log")
            if path.name.endswith(".stdout.log") or path.exists()
        ]

    def log_tail(self, instance_id: str, lines: int, process: str | None = None) -> list[str]:
        """The last non-blank lines of the instance's (or one process's) output, stdout and
        stderr in the order written."""
        out: list[str] = []
        for path in self.log_files(instance_id):
            if process is None or path.name.startswith(f"{process}."):
                with contextlib.suppress(OSError):
                    out.extend(line for line in self.tail(path, lines) if line.strip())
        return out[-lines:]

    def reclaim(self, live: set[str]) -> None:
        """Free the leases of instances that are gone, and hold the ports of live ones that
        have none (a crash between a lease and its spec file, a home from before leases).
        Namespaces: those of instances that are gone, and leftovers no lease holds."""
        self.ports.reclaim(self.owner, live)
        if self.namespaces is not None:
            self.namespaces.reclaim(self.owner, live)
        for instance_id in live:
            endpoint = self.endpoint(instance_id)
            if (
                endpoint is not None
                and not endpoint.isolated
                and not self.ports.adopt(self.owner, instance_id, endpoint.port)
            ):
                log.warning(
                    "instance %s runs on port %d, which another instance on this host also "
                    "holds; one of them cannot have bound it",
                    instance_id,
                    endpoint.port,
                )

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own connection."""

    def _groups(self) -> set[str]:
        infos: list[dict[str, Any]] = self._call("getAllProcessInfo")
        return {info["group"] for info in infos}

    def _spec_payload(self, instance_id: str) -> dict[str, Any]:
        if not _INSTANCE_ID.match(instance_id):
            return {}
        try:
            payload = json.loads((self.specs_dir / f"{instance_id}.json").read_text())
        except (OSError, ValueError):
            return {}
        return payload if isinstance(payload, dict) else {}

    # -- instances ----------------------------------------------------------------------------

    def start_instance(self, spec: InstanceSpec, *, network: Sandbox | None = None) -> None:
        """Add the instance's process group; supervisord starts it. No-op if it already exists.

        With ``network``, its processes run in that namespace, answering at its address."""
        _validate(spec)
        self._forget_observation()
        conf = self.programs_dir / f"{spec.instance_id}.conf"
        spec_file = self.specs_dir / f"{spec.instance_id}.json"
        with self._lock:
            infos: list[dict[str, Any]] = self._call("getAllProcessInfo")
            if any(info["group"] == spec.instance_id for info in infos):
                return
            spec.log_dir.mkdir(parents=True, exist_ok=True)
            payload = {
                "env": dict(spec.env),
                "cwd": str(spec.cwd.absolute()),
                "processes": dict(spec.processes),
                # a listener rule's process listens on its own port (isolated instances)
                "ports": {} if network is None else dict(spec.process_ports),
                "host": self.host if network is None else network.address,
                "netns": None if network is None else str(network.path),
                "log_dir": str(spec.log_dir.absolute()),
                "stop_wait_s": spec.stop_wait_s,  # for the deadlines of stop_instance and shutdown
                "run_as": None
                if spec.run_as is None
                else {"uid": spec.run_as.uid, "gid": spec.run_as.gid},
            }
            _write_atomic(spec_file, json.dumps(payload, indent=2))
            _write_atomic(conf, self._program_conf(spec, spec_file))
            try:
                # reloadConfig re-reads every file under programs/; addProcessGroup uses it.
                self._call("reloadConfig")
                self._call("addProcessGroup", spec.instance_id, ok_faults=(_ALREADY_ADDED,))
            except ComponentError:
                # A conf supervisord rejects would break every later reload: take it back.
                conf.unlink(missing_ok=True)
                spec_file.unlink(missing_ok=True)
                raise
            finally:
                self._forget_observation()  # one taken meanwhile may lack the new group

    def stop_instance(self, instance_id: str) -> None:
        """Stop the group (TERM to each process group, KILL after stop_wait_s) and forget it."""
        _check_instance_id(instance_id)
        self._forget_observation()
        # Not wait=True: supervisord answers a waiting call only on its next 1 s loop tick.
        results = self._call("stopProcessGroup", instance_id, False, ok_faults=(_BAD_NAME,))
        if results is not None:
            _raise_failures(f"stopping {instance_id}", results)
            timeout = self._stop_wait_s([instance_id]) + _RPC_TIMEOUT_S
            if not _wait_until(lambda: self._stopped(instance_id), timeout):
                raise ComponentError(f"{instance_id} did not stop within {timeout:.0f}s")
        with self._lock:
            self._call("removeProcessGroup", instance_id, ok_faults=(_BAD_NAME,))
            (self.programs_dir / f"{instance_id}.conf").unlink(missing_ok=True)
            (self.specs_dir / f"{instance_id}.json").unlink(missing_ok=True)
        self._forget_observation()  # one taken while it stopped still lists it

    def instances(self) -> dict[str, list[ProcessState]]:
        """Every group supervisord runs, ours or not, keyed by instance id."""
        infos: list[dict[str, Any]] = self._call("getAllProcessInfo")
        return self._states(infos)

    def _states(self, infos: list[dict[str, Any]]) -> dict[str, list[ProcessState]]:
        """supervisord's process infos as `ProcessState`s, by group."""
        # supervisord reports exit status 0 for a process that died within startsecs
        # (BACKOFF, then FATAL); only its log still holds the real one.
        crashed = [i["name"] for i in infos if i["statename"] in _CRASHED and not i["exitstatus"]]
        logged = self._logged_exit_statuses() if crashed else {}
        result: dict[str, list[ProcessState]] = {}
        for info in infos:
            group, program = info["group"], info["name"]
            exit_status = int(info["exitstatus"])
            if program in crashed:
                exit_status = logged.get(program, 0)
            result.setdefault(group, []).append(
                ProcessState(
                    instance_id=group,
                    name=program.removeprefix(f"{group}_"),
                    state=info["statename"],
                    pid=int(info["pid"]),
                    exit_status=exit_status,
                    spawn_error=info["spawnerr"],
                    started_at=float(info["start"]),
                    stdout_log=Path(info["stdout_logfile"]),
                    stderr_log=Path(info["stderr_logfile"]),
                )
            )
        return result

    def start_process(self, instance_id: str, name: str) -> None:
        """Start a process that supervisord gave up on (FATAL) or that exited; no-op if running."""
        _check_instance_id(instance_id)
        _check_process_name(name)
        self._forget_observation()
        self._call(
            "startProcess",
            f"{instance_id}:{instance_id}_{name}",
            False,  # don't wait out startsecs: the caller polls instances()
            # SPAWN_ERROR: it died at once; instances() shows BACKOFF/FATAL like any crash.
            ok_faults=(_ALREADY_STARTED, _SPAWN_ERROR),
            not_found=f"supervisord runs no process {name!r} in instance {instance_id}",
        )

    def signal_instance(self, instance_id: str, sig: int) -> None:
        """Send ``sig`` to every running process of the instance (e.g. HUP to reload)."""
        _check_instance_id(instance_id)
        try:
            signum = int(signal.Signals(sig))
        except ValueError as exc:
            raise InvalidInput(f"{sig!r} is not a signal") from exc
        results = self._call(
            "signalProcessGroup",
            instance_id,
            signum,
            not_found=f"supervisord runs no instance {instance_id}",
        )
        _raise_failures(f"signalling {instance_id}", results)

    def tail(self, path: Path, lines: int = 100) -> list[str]:
        """The last ``lines`` lines of a log (`beanpole.adapters.logs.tail`)."""
        return logs.tail(path, lines)

    def _call(
        self,
        method: str,
        *args: Any,
        timeout: float | None = _RPC_TIMEOUT_S,
        ok_faults: tuple[int, ...] = (),
        not_found: str = "",
    ) -> Any:
        """Call ``supervisor.<method>``. Faults in ``ok_faults`` return None; a bad name raises
        NotFound(``not_found``) if that is given; anything else is supervisord's failure."""
        transport = _UnixTransport(str(self.socket_path), timeout)
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        try:
            return getattr(proxy.supervisor, method)(*args)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode in ok_faults:
                return None
            if fault.faultCode == _BAD_NAME and not_found:
                raise NotFound(not_found) from fault
            raise ComponentError(f"supervisord refused {method}: {fault.faultString}") from fault
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as exc:
            raise ComponentError(
                f"supervisord at {self.socket_path} did not answer {method} ({exc}); is it running?"
            ) from exc
        finally:
            transport.close()

    def _daemon_pid(self) -> int | None:
        """The pid in our pidfile, if that process is alive and is *our* supervisord."""
        try:
            pid = int(self.pid_path.read_text().strip())
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return pid if str(self.conf_path) in proc.cmdline() else None
        except (OSError, ValueError, psutil.Error):
            return None

    def _stopped(self, instance_id: str) -> bool:
        infos: list[dict[str, Any]] = self._call("getAllProcessInfo")
        return all(i["statename"] in _STOPPED for i in infos if i["group"] == instance_id)

    def _stop_wait_s(self, instance_ids: Iterable[str]) -> int:
        """The longest stop_wait_s among these instances, as recorded in their spec files."""
        longest = InstanceSpec.stop_wait_s
        for instance_id in instance_ids:
            try:
                spec = json.loads((self.specs_dir / f"{instance_id}.json").read_text())
                longest = max(longest, int(spec["stop_wait_s"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return longest

    def _logged_exit_statuses(self) -> dict[str, int]:
        """Program name -> its latest ``exited: <program> (exit status N; ...)`` in our log."""
        statuses: dict[str, int] = {}
        for line in self.tail(self.log_path, 2000):
            if match := _EXITED.search(line):
                statuses[match.group(1)] = int(match.group(2))
        return statuses

    def _main_conf(self) -> str:
        d = _ini(str(self.directory))
        return f"""\
; Written by Beanpole; rewritten each time supervisord is started.
[unix_http_server]
file = {_ini(str(self.socket_path))}
chmod = 0700

[supervisord]
logfile = {_ini(str(self.log_path))}
logfile_maxbytes = 10MB
logfile_backups = 3
loglevel = info
pidfile = {_ini(str(self.pid_path))}
childlogdir = {d}
directory = {d}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[include]
files = programs/*.conf
"""

    def _program_conf(self, spec: InstanceSpec, spec_file: Path) -> str:
        iid = spec.instance_id
        names = sorted(spec.processes)
        sections = [f"[group:{iid}]\nprograms = {','.join(f'{iid}_{n}' for n in names)}\n"]
        log = spec.log_dir.absolute()
        for name in names:
            command = shlex.join(
                [sys.executable, "-m", "beanpole.adapters.runtime.launch", str(spec_file), name]
            )
            sections.append(f"""\
[program:{iid}_{name}]
command = {_ini(command)}
autostart = true
autorestart = true
startsecs = 1
startretries = 3
stopsignal = TERM
stopwaitsecs = {spec.stop_wait_s}
stopasgroup = true
killasgroup = true
redirect_stderr = true
stdout_logfile = {_ini(str(log / f"{name}.stdout.log"), 2)}
stdout_logfile_maxbytes = {spec.log_max_bytes}
stdout_logfile_backups = {spec.log_backups}
""")
        return "; Written by Beanpole for one instance; deleted when it stops.\n\n" + "\n".join(
            sections
        )


@dataclass(frozen=True)
class _Observed:
    """`Supervisor.observe`'s last full answer, and what must stay true for it to hold."""

    at: float
    daemon: int | None
    instances: dict[str, InstanceObservation]
    changes: int  # Supervisor._changes when it was asked

    @property
    def processes(self) -> int:
        return sum(len(i.processes) for i in self.instances.values())

    def fresh(self) -> bool:
        """Young enough, and supervisord itself still runs."""
        return (
            self.daemon is not None
            and time.monotonic() - self.at < OBSERVE_REFRESH_S
            and _exists(self.daemon)
        )

    def stale(self) -> list[tuple[str, str]]:
        """(group, process) that may have changed since: starting or backing off (supervisord
        changes those by itself), or running under a pid that is gone."""
        out = []
        for group, instance in self.instances.items():
            for process in instance.processes:
                if process.status in (ProcessStatus.STARTING, ProcessStatus.EXITED) or (
                    process.status is ProcessStatus.RUNNING and not _exists(process.pid)
                ):
                    out.append((group, process.name))
        return out


def _exists(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie too: supervisord reaps at once)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _observation(state: ProcessState) -> ProcessObservation:
    status = _STATUS.get(state.state, ProcessStatus.FAILED)
    reason = ""
    if status in (ProcessStatus.EXITED, ProcessStatus.FAILED):
        if state.exit_status == 0 and state.spawn_error:
            # supervisord's words, when it has no exit status (the command was not found…)
            reason = f"could not start: {state.spawn_error}"
        else:
            reason = f"exited with status {state.exit_status}"
    return ProcessObservation(
        name=state.name,
        status=status,
        pid=state.pid,
        exit_status=state.exit_status,
        reason=reason,
        started_at=state.started_at,
    )


def _validate(spec: InstanceSpec) -> None:
    _check_instance_id(spec.instance_id)
    if spec.image:
        raise InvalidInput(
            f"instance {spec.instance_id} runs the image {spec.image}: only a container "
            "runtime can (Docker's)"
        )
    if not spec.processes:
        raise InvalidInput(f"instance {spec.instance_id} has no processes to run")
    for name, command in spec.processes.items():
        _check_process_name(name)
        if not command.strip():
            raise InvalidInput(f"process {name!r} has an empty command")
    for label, value in (
        ("log_max_bytes", spec.log_max_bytes),
        ("log_backups", spec.log_backups),
        ("stop_wait_s", spec.stop_wait_s),
    ):
        if value < 0:
            raise InvalidInput(f"{label} must not be negative, got {value}")
    _check_ini_value("log directory", str(spec.log_dir.absolute()))
    _check_ini_value("python executable", sys.executable)


def _check_instance_id(instance_id: str) -> None:
    if not _INSTANCE_ID.match(instance_id):
        raise InvalidInput(
            f"instance id {instance_id!r} must be letters, digits, '-' or '_' (at most 64)"
        )


def _check_process_name(name: str) -> None:
    if not _PROCESS_NAME.match(name):
        raise InvalidInput(
            f"process name {name!r} must be letters, digits, '-' or '_' (at most 64)"
        )


def _check_ini_value(label: str, value: str) -> None:
    if _UNSAFE_INI.search(value):
        raise InvalidInput(
            f"{label} {value!r} cannot be written to supervisord's config: "
            "no line breaks, and no ';' or '#' after whitespace"
        )


def _ini(value: str, expansions: int = 1) -> str:
    """Escape a value for supervisord's ini files, which %-expand every value once, and
    stdout_logfile/stderr_logfile a second time (with the process's own expansions)."""
    return value.replace("%", "%" * 2**expansions)


def _raise_failures(action: str, results: list[dict[str, Any]] | None) -> None:
    failed = [r for r in results or [] if r["status"] != _SUCCESS]
    if failed:
        details = "; ".join(f"{r['name']}: {r['description']}" for r in failed)
        raise ComponentError(f"supervisord failed {action}: {details}")


def _write_atomic(path: Path, text: str) -> None:
    """Write via rename so supervisord never reads half a file; 0600 as specs hold secrets."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    """A zombie counts as dead: whoever reaps orphans here (PID 1) may never do so."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
