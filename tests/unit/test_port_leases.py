"""The host-wide port registry: two Beanpole homes on one host never hand out the same port.

Regression for issue 7, part 8: ports were probed free and bound by the app later, so two
homes scanning the same range both handed out the first free port and one app failed with
EADDRINUSE.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from beanpole.adapters.runtime import ports
from beanpole.adapters.runtime.ports import REGISTRY_ENV, PortLeases, default_path
from beanpole.core.errors import ComponentError

THREADS = 8
LEASES_PER_THREAD = 10


def free_range(size: int) -> tuple[int, int]:
    """A run of ``size`` ports that bind free now, found from a kernel-chosen port (port 0)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            low = int(s.getsockname()[1])
        if low + size > 65535:
            continue
        if all(_binds(port) for port in range(low, low + size)):
            return low, low + size - 1
    pytest.skip(f"no run of {size} free ports found on 127.0.0.1")


def _binds(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def owner(tmp_path: Path, name: str) -> str:
    """A live home: its folder exists."""
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    return str(home)


def test_leases_hand_out_the_lowest_free_port_and_the_same_one_again(tmp_path):
    low, high = free_range(5)
    leases = PortLeases(tmp_path / "ports.db")
    home = owner(tmp_path, "home")
    first = leases.lease(home, "i-1", (low, high))
    second = leases.lease(home, "i-2", (low, high))
    assert (first, second) == (low, low + 1)
    assert leases.lease(home, "i-1", (low, high)) == first  # asking again: its own port back
    assert leases.leases(home) == {"i-1": low, "i-2": low + 1}


def test_two_registries_on_one_file_never_share_a_port(tmp_path):
    low, high = free_range(4)
    a = PortLeases(tmp_path / "ports.db")
    b = PortLeases(tmp_path / "ports.db")
    home_a, home_b = owner(tmp_path, "a"), owner(tmp_path, "b")
    got = [a.lease(home_a, "i-1", (low, high)), b.lease(home_b, "i-1", (low, high))]
    got += [a.lease(home_a, "i-2", (low, high)), b.lease(home_b, "i-2", (low, high))]
    assert sorted(got) == list(range(low, high + 1))


def test_a_released_port_is_leased_again(tmp_path):
    low, high = free_range(3)
    leases = PortLeases(tmp_path / "ports.db")
    home = owner(tmp_path, "home")
    first = leases.lease(home, "i-1", (low, high))
    leases.lease(home, "i-2", (low, high))
    leases.release(home, "i-1")
    assert leases.lease(home, "i-3", (low, high)) == first
    assert leases.leases(home) == {"i-2": low + 1, "i-3": first}


def test_an_exhausted_range_names_the_range_and_the_fix(tmp_path):
    low, high = free_range(2)
    leases = PortLeases(tmp_path / "ports.db")
    home = owner(tmp_path, "home")
    leases.lease(home, "i-1", (low, high))
    leases.lease(home, "i-2", (low, high))
    with pytest.raises(ComponentError, match=rf"{low}-{high}.*port_range"):
        leases.lease(home, "i-3", (low, high))


def test_a_port_held_by_an_unrelated_socket_is_skipped(tmp_path):
    low, high = free_range(3)
    leases = PortLeases(tmp_path / "ports.db")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", low))
        squatter.listen()
        assert leases.lease(owner(tmp_path, "home"), "i-1", (low, high)) == low + 1


def test_reclaim_drops_only_this_owners_leases_of_instances_no_longer_live(tmp_path):
    low, high = free_range(4)
    leases = PortLeases(tmp_path / "ports.db")
    mine, other = owner(tmp_path, "mine"), owner(tmp_path, "other")
    leases.lease(mine, "i-live", (low, high))
    leases.lease(mine, "i-gone", (low, high))
    leases.lease(other, "i-theirs", (low, high))
    leases.reclaim(mine, {"i-live"})
    assert leases.leases(mine) == {"i-live": low}
    assert leases.leases(other) == {"i-theirs": low + 2}
    assert leases.lease(mine, "i-new", (low, high)) == low + 1


def test_the_leases_of_a_home_whose_folder_is_gone_are_dropped_when_leasing(tmp_path):
    low, high = free_range(2)
    leases = PortLeases(tmp_path / "ports.db")
    dead, alive = owner(tmp_path, "dead"), owner(tmp_path, "alive")
    leases.lease(dead, "i-1", (low, high))
    leases.lease(alive, "i-1", (low, high))
    shutil.rmtree(dead)
    assert leases.lease(alive, "i-2", (low, high)) == low
    assert leases.leases(dead) == {}


def test_adopt_records_a_running_instances_port_so_it_is_not_handed_out(tmp_path):
    low, high = free_range(3)
    leases = PortLeases(tmp_path / "ports.db")
    old, new = owner(tmp_path, "old"), owner(tmp_path, "new")
    assert leases.adopt(old, "i-running", low)  # its app may not even listen right now
    assert leases.adopt(old, "i-running", low)  # again: still its own
    assert not leases.adopt(new, "i-other", low)  # another claimant is told
    assert leases.lease(new, "i-1", (low, high)) == low + 1


def _lease_many(path: str, home: str, port_range: tuple[int, int], out: list[int]) -> None:
    leases = PortLeases(Path(path))
    lock = threading.Lock()

    def work(thread: int) -> None:
        for n in range(LEASES_PER_THREAD):
            port = leases.lease(home, f"i-{os.getpid()}-{thread}-{n}", port_range)
            with lock:
                out.append(port)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _child(path: str, home: str, port_range: tuple[int, int], queue: Any) -> None:
    out: list[int] = []
    _lease_many(path, home, port_range, out)
    queue.put(out)


def test_threads_in_two_processes_leasing_at_once_never_get_the_same_port(tmp_path):
    per_process = THREADS * LEASES_PER_THREAD
    low, high = free_range(2 * per_process + 10)
    path = str(tmp_path / "ports.db")
    home_a, home_b = owner(tmp_path, "a"), owner(tmp_path, "b")
    PortLeases(Path(path))  # the schema exists before both start
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(path, home_b, (low, high), queue))
    child.start()
    try:
        mine: list[int] = []
        _lease_many(path, home_a, (low, high), mine)
        theirs = queue.get(timeout=120)
    finally:
        child.join(timeout=120)
        if child.is_alive():
            child.kill()
            child.join()
    assert child.exitcode == 0
    every = mine + theirs
    assert len(every) == 2 * per_process
    assert len(set(every)) == len(every), "a port was handed out twice"
    assert all(low <= port <= high for port in every)


def test_the_registry_file_can_be_chosen_by_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "elsewhere" / "ports.db"))
    leases = PortLeases()
    assert leases.path == tmp_path / "elsewhere" / "ports.db"
    assert leases.path.exists()


def test_a_user_who_cannot_write_run_gets_a_private_folder_in_the_runtime_dir(
    tmp_path, monkeypatch
):
    real_access = os.access
    monkeypatch.setattr(
        ports.os, "access", lambda p, mode: str(p) != "/run" and real_access(p, mode)
    )
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_path() == tmp_path / "beanpole" / "ports.db"
    leases = PortLeases()
    assert leases.path == tmp_path / "beanpole" / "ports.db"
    assert stat.S_IMODE(leases.path.parent.stat().st_mode) == 0o700


def test_without_a_runtime_dir_the_folder_is_per_user_under_the_temp_dir(monkeypatch):
    real_access = os.access
    monkeypatch.setattr(
        ports.os, "access", lambda p, mode: str(p) != "/run" and real_access(p, mode)
    )
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert default_path().parent.name == f"beanpole-{os.getuid()}"


def test_a_folder_owned_by_someone_else_is_refused(tmp_path):
    target = tmp_path / "theirs"
    target.mkdir()
    link = tmp_path / "beanpole"
    link.symlink_to(target)
    with pytest.raises(ComponentError, match=REGISTRY_ENV):
        ports._private_dir(link)


def _runtime(root: Path, registry: PortLeases, port_range: tuple[int, int]) -> Any:
    """A home's supervisord runtime (it leases the ports; supervisord need not run here)."""
    from beanpole.adapters.runtime.supervisord import Supervisor

    root.mkdir(parents=True, exist_ok=True)
    return Supervisor(root / "supervisor", port_range=port_range, ports=registry, owner=str(root))


def test_two_homes_runtimes_lease_different_ports(tmp_path):
    low, high = free_range(4)
    registry = PortLeases(tmp_path / "ports.db")
    a = _runtime(tmp_path / "a", registry, (low, high))
    b = _runtime(tmp_path / "b", PortLeases(tmp_path / "ports.db"), (low, high))
    leased = [r.ports.lease(r.owner, "i-1", r.port_range) for r in (a, b)]
    assert leased == [low, low + 1]
    assert registry.leases(str(tmp_path / "a")) == {"i-1": low}


def test_a_starting_server_leases_its_live_instances_ports_and_drops_the_rest(tmp_path):
    """A home from before the registry: its running instance's port must not be handed out."""
    import json

    low, high = free_range(4)
    registry = PortLeases(tmp_path / "ports.db")
    runtime = _runtime(tmp_path / "home", registry, (low, high))
    owner_ = str(tmp_path / "home")
    runtime.specs_dir.mkdir(parents=True)
    # what the runtime wrote when it started the instance, which outlives the server
    (runtime.specs_dir / "i-running.json").write_text(json.dumps({"env": {"PORT": str(low)}}))
    registry.lease(owner_, "i-crashed-before-release", (low + 2, low + 2))
    runtime.reclaim({"i-running"})
    assert registry.leases(owner_) == {"i-running": low}
    other = owner(tmp_path, "other")
    assert registry.lease(other, "i-1", (low, high)) == low + 1
