"""What the benchmarks share: the test harness, process CPU, statistics, leak checks, results."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))

from harness import Beanpole, free_port, wait_for  # noqa: E402

__all__ = ["ROOT", "Background", "Beanpole", "free_port", "wait_for"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads) from /proc/<pid>/stat; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After "pid (comm)": state is field 3, so utime (14) and stime (15) are at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_total(pids: Iterable[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def with_children(pid: int) -> list[int]:
    """``pid`` and its descendants (an instance may be a shell, a pyenv shim, a worker pool)."""
    try:
        proc = psutil.Process(pid)
        return [pid, *(c.pid for c in proc.children(recursive=True))]
    except psutil.Error:
        return []


def haproxy_pids(home: Path) -> tuple[int | None, list[int]]:
    """The HAProxy master of this BEANPOLE_HOME (its pid file) and its workers."""
    try:
        master = int((home / "haproxy" / "haproxy.pid").read_text().split()[0])
        workers = [c.pid for c in psutil.Process(master).children()]
    except (OSError, ValueError, IndexError, psutil.Error):
        return None, []
    return master, workers


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def spread(values: Iterable[float]) -> dict[str, float | int | None]:
    """Median, min, max and count: what the summaries quote."""
    values = list(values)
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


# -- processes of one BEANPOLE_HOME ---------------------------------------------------------------


def _belongs(proc: psutil.Process, home: str) -> bool:
    """Whether a process was started for this home: named in its command line, its
    BEANPOLE_HOME, or running inside it (app instances run in their build folder)."""
    with contextlib.suppress(psutil.Error):
        if any(home in part for part in proc.cmdline()):
            return True
    with contextlib.suppress(psutil.Error):
        if proc.environ().get("BEANPOLE_HOME") == home:
            return True
    with contextlib.suppress(psutil.Error):
        cwd = proc.cwd()
        if cwd == home or cwd.startswith(home + os.sep):
            return True
    return False


def processes_of(home: Path) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        if _belongs(proc, str(home)):
            found.append(proc)
    return found


def stop_and_check(bp: Beanpole) -> list[str]:
    """``beanpole server stop --all``, then stop by pid whatever of this home still runs.

    Returns a description of each process that had to be stopped by hand (a leak).
    """
    bp.stop_all()
    deadline = time.monotonic() + 10
    left = processes_of(bp.home)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_of(bp.home)
    leaked = []
    for proc in left:
        with contextlib.suppress(psutil.Error):
            leaked.append(f"pid {proc.pid}: {' '.join(proc.cmdline())[:200]}")
            proc.send_signal(signal.SIGTERM)
    if left:
        _, alive = psutil.wait_procs(left, timeout=5)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
    return leaked


WRK_REPORT = ROOT / "bench" / "wrk_report.lua"  # prints one WRK_JSON line at the end


def wrk_argv(
    wrk: str, url: str, *, seconds: float, threads: int, connections: int, headers: list[str]
) -> list[str]:
    """wrk's command line for ``url`` with the JSON report (`wrk_report.lua`)."""
    return [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "5s",
        "-s",
        str(WRK_REPORT),
        *headers,
        url,
    ]


def wrk_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The report `wrk_report.lua` printed (one ``WRK_JSON`` line), or an error with wrk's
    output."""
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {proc.stdout}\n{proc.stderr}")
    report: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    return report


@contextlib.contextmanager
def beanpole_home(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"bp-bench-{prefix}-") as tmp:
        # As root, applications run as an unprivileged user that must traverse to the home.
        Path(tmp).chmod(0o711)
        try:
            yield Path(tmp)
        finally:
            remove_app_users(Path(tmp))


def remove_app_users(home: Path) -> None:
    """The application users made by a bench's home, or a home in that folder (as root: one
    per application, named in their comment, `beanpole.adapters.appuser.comment`), once its
    server has stopped."""
    if os.geteuid() != 0:
        return
    userdel = shutil.which("userdel") or "/usr/sbin/userdel"
    for entry in pwd.getpwall():
        gecos = entry.pw_gecos  # the home may be a folder of the bench's temporary one
        if gecos.startswith("beanpole app ") and (
            gecos.endswith(f" {home}") or f" {home}/" in gecos
        ):
            subprocess.run([userdel, entry.pw_name], capture_output=True, check=False, timeout=60)


# -- results --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    def run(*argv: str) -> str:
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=10, check=False, cwd=ROOT
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    haproxy = run("haproxy", "-v").splitlines()
    wrk = run("wrk", "--version").splitlines()
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
        "haproxy": haproxy[0] if haproxy else None,
        "wrk": wrk[0].strip() if wrk else None,
        "commit": run("git", "rev-parse", "--short", "HEAD") or None,
        "dirty_files": len(run("git", "--no-optional-locks", "status", "--porcelain").splitlines()),
    }


def write_result(name: str, stamp: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


class Background:
    """A daemon thread running ``_run`` until `stop` (probes, pollers); subclasses share
    ``_lock`` with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        raise NotImplementedError
