"""CPU and memory of each instance's process tree (psutil), and the host's CPU and load."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Usage:
    cpu_percent: float  # of one core, summed over the tree (200 = two cores busy)
    rss_bytes: int
    processes: int
    # False on an instance's first sample: psutil's first reading of a process is 0.0, which
    # is no measurement (auto scaling must not read it as an idle instance)
    cpu_measured: bool = True


class UsageSampler:
    """Keeps psutil.Process objects between calls: cpu_percent() measures since the last call."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, pids: dict[str, list[int]]) -> dict[str, Usage]:
        """``pids``: instance id → the pids the runtime runs for it (each a tree root)."""
        seen: set[int] = set()
        out: dict[str, Usage] = {}
        before = set(self._procs)  # processes read at an earlier sample
        children = _ChildrenOf()
        for instance, roots in pids.items():
            cpu, rss, count, known = 0.0, 0, 0, False
            for root in roots:
                for proc in self._tree(root, children):
                    known = known or proc.pid in before
                    try:
                        with proc.oneshot():
                            cpu += proc.cpu_percent(None)
                            rss += proc.memory_info().rss
                        count += 1
                        seen.add(proc.pid)
                    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                        continue
            out[instance] = Usage(round(cpu, 1), rss, count, known)
        for pid in set(self._procs) - seen:
            del self._procs[pid]
        return out

    def _tree(self, root: int, children: _ChildrenOf) -> list[psutil.Process]:
        """The root and its descendants. psutil's ``children()`` reads every process of the
        host for each call, which at 60 instances was half of the idle server's CPU."""
        if root <= 0:
            return []
        tree, todo = [], [root]
        while todo:
            pid = todo.pop()
            try:
                tree.append(self._cached(pid))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            todo.extend(children(pid))
        return tree

    def _cached(self, pid: int) -> psutil.Process:
        cached = self._procs.get(pid)
        if cached is None or not cached.is_running():
            cached = psutil.Process(pid)
            self._procs[pid] = cached
        return cached


class _ChildrenOf:
    """A process's children, from Linux's ``/proc/PID/task/TID/children`` (a read per
    thread of the instance's processes, not of the host's); where the kernel lacks it, from
    one pass over every process, made once per sample."""

    def __init__(self) -> None:
        self._table: dict[int, list[int]] | None = None

    def __call__(self, pid: int) -> list[int]:
        if self._table is None:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
                out: list[int] = []
                for tid in tasks:
                    with open(f"/proc/{pid}/task/{tid}/children") as f:
                        out.extend(int(c) for c in f.read().split())
                return out
            except FileNotFoundError:
                if not os.path.exists(f"/proc/{pid}"):
                    return []  # it is gone
            except (OSError, ValueError):
                pass
            self._table = _process_table()
        return self._table.get(pid, [])


def _process_table() -> dict[int, list[int]]:
    """Parent pid → its children's pids, for every process of the host, in one pass."""
    children: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        ppid = proc.info.get("ppid")
        if ppid:
            children.setdefault(ppid, []).append(proc.pid)
    return children


@dataclass(frozen=True)
class HostUsage:
    """The host's CPU since the previous sample, as ``eb health`` shows it, and its load."""

    load1: float
    load5: float
    user: float  # % of all cores
    system: float
    idle: float
    iowait: float


class HostSampler:
    """``cpu_times_percent`` measures since its previous call; the first call primes it."""

    def __init__(self) -> None:
        psutil.cpu_times_percent(None)

    def sample(self) -> HostUsage:
        times = psutil.cpu_times_percent(None)
        one, five = load_average()
        return HostUsage(
            load1=one,
            load5=five,
            user=round(times.user + times.nice, 1),
            system=round(
                times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0), 1
            ),
            idle=round(times.idle, 1),
            iowait=round(getattr(times, "iowait", 0.0), 1),
        )


def load_average() -> tuple[float, float]:
    one, five, _ = os.getloadavg()
    return round(one, 2), round(five, 2)


def listening_ports(pids: Iterable[int]) -> set[int]:
    """The TCP ports these processes and their children listen on, in their own network.

    Read from ``/proc/<pid>/net/tcp{,6}``, which show the process's network namespace
    (psutil reads ``/proc/net``, the caller's, and so misses a namespaced instance's)."""
    ports: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes = [root.pid, *(child.pid for child in root.children(recursive=True))]
        except psutil.Error:
            continue
        for process in processes:
            ports |= _listening(process)
    return ports


_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def _listening(pid: int) -> set[int]:
    inodes: set[str] = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    except OSError:
        return set()
    if not inodes:
        return set()
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as f:
                next(f, None)  # the header
                for line in f:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == _LISTEN and fields[9] in inodes:
                        ports.add(int(fields[1].rpartition(":")[2], 16))
        except OSError:
            continue
    return ports
