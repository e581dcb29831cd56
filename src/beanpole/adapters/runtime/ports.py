"""Instance ports (and network-namespace slots) leased host-wide, so two Beanpole homes on
one host never share one.

Probing a port free and letting the app bind it later leaves a gap; when every home scans
the same range, a second home probes the port the first one just handed out (its app has
not bound it yet) and both apps race for it: one fails with EADDRINUSE. A lease taken in
one SQLite transaction on a file every home of this host shares closes that gap between
Beanpole homes. It cannot stop an unrelated program from binding the port between the probe
and the app's bind (docs/decisions.md).

The registry lives in the first of: ``$BEANPOLE_PORT_REGISTRY`` (a file path, for tests),
``/run/beanpole/ports.db`` when ``/run`` is writable (root), ``$XDG_RUNTIME_DIR/beanpole/``,
or a per-user folder under the system temp dir. Every folder is made 0700: leases are
shared between the homes of one user (and root's between root's homes).

The same file format holds the slots of instances' network namespaces (``slots``:
`beanpole.adapters.runtime.netns` keeps them in ``/run/beanpole/netns.db``, whatever
``$BEANPOLE_PORT_REGISTRY`` says, as the kernel's names they stand for are host-wide).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from beanpole.core.errors import ComponentError

REGISTRY_ENV = "BEANPOLE_PORT_REGISTRY"
BUSY_TIMEOUT_S = 30.0  # homes wait for each other's short transactions rather than fail

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    port INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    leased_at REAL NOT NULL,
    UNIQUE (owner, instance_id)
)
"""
_SLOTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS slots (
    slot INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    leased_at REAL NOT NULL,
    UNIQUE (owner, instance_id)
)
"""


def default_path() -> Path:
    """Where this host's registry is for this user, unless ``$BEANPOLE_PORT_REGISTRY`` says."""
    if os.access("/run", os.W_OK):
        return Path("/run/beanpole/ports.db")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.access(runtime, os.W_OK):
        return Path(runtime) / "beanpole" / "ports.db"
    return Path(tempfile.gettempdir()) / f"beanpole-{os.getuid()}" / "ports.db"


def _private_dir(folder: Path) -> None:
    """Make ``folder`` 0700, refusing one that another user owns or a symlink put there.

    The temp dir is shared by every user: someone else could create the folder first and
    read or rewrite the leases.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = folder.lstat()
    if folder.is_symlink() or info.st_uid != os.getuid():
        raise ComponentError(
            f"The port registry folder {folder} is not a folder owned by this user. Remove "
            f"it, or set {REGISTRY_ENV} to a file in a folder of your own."
        )
    if info.st_mode & 0o077:
        folder.chmod(0o700)


def _binds_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortLeases:
    """The host's lease registry. Each call is one short transaction on its own connection,
    so one object serves any thread, and any number of processes share the file."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None and (explicit := os.environ.get(REGISTRY_ENV)):
            path = Path(explicit).expanduser()
        if path is None:
            path = default_path()
            _private_dir(path.parent)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._transaction() as db:
            db.execute(_SCHEMA)
            db.execute(_SLOTS_SCHEMA)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise ComponentError(
                f"Cannot open the port registry {self.path}: {exc}. Check that its folder is "
                f"writable, or set {REGISTRY_ENV} to another file."
            ) from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")  # commits without a full sync, still safe
            db.execute("PRAGMA synchronous=NORMAL")
            # IMMEDIATE takes the write lock before reading, so two homes cannot both read
            # a port as unleased and then both lease it.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise ComponentError(
                f"The port registry {self.path} failed: {exc}. Another Beanpole home may "
                f"hold it locked for more than {BUSY_TIMEOUT_S:.0f} s; retry, or set "
                f"{REGISTRY_ENV} to another file."
            ) from exc
        finally:
            db.close()

    def lease(self, owner: str, instance_id: str, port_range: tuple[int, int]) -> int:
        """The lowest port in ``port_range`` no one holds and that binds free right now.

        The same (owner, instance_id) asking again gets its port back. ``owner`` is the
        Beanpole home's root: leases of homes whose folder is gone are dropped here.
        """
        low, high = port_range
        with self._transaction() as db:
            row = db.execute(
                "SELECT port FROM leases WHERE owner = ? AND instance_id = ?",
                (owner, instance_id),
            ).fetchone()
            if row is not None and low <= row[0] <= high:
                return int(row[0])
            if row is not None:  # the range changed since: lease anew inside it
                db.execute(
                    "DELETE FROM leases WHERE owner = ? AND instance_id = ?", (owner, instance_id)
                )
            _drop_dead_owners(db, owner)
            taken = {
                r[0]
                for r in db.execute(
                    "SELECT port FROM leases WHERE port BETWEEN ? AND ?", (low, high)
                )
            }
            for port in range(low, high + 1):
                if port in taken or not _binds_free(port):
                    continue
                db.execute(
                    "INSERT INTO leases (port, owner, instance_id, leased_at) VALUES (?, ?, ?, ?)",
                    (port, owner, instance_id, time.time()),
                )
                return port
        raise ComponentError(
            f"No free port left in {low}-{high} for a new instance. Terminate unused "
            "environments or widen the range in config.json (port_range)."
        )

    def adopt(self, owner: str, instance_id: str, port: int) -> bool:
        """Record that ``instance_id`` already runs on ``port`` (a home from before leases).

        False when another instance holds that port's lease: two instances then claim one
        port, and the caller says so.
        """
        with self._transaction() as db:
            row = db.execute("SELECT owner, instance_id FROM leases WHERE port = ?", (port,))
            holder = row.fetchone()
            if holder is not None:
                return (holder[0], holder[1]) == (owner, instance_id)
            db.execute(
                "DELETE FROM leases WHERE owner = ? AND instance_id = ?", (owner, instance_id)
            )
            db.execute(
                "INSERT INTO leases (port, owner, instance_id, leased_at) VALUES (?, ?, ?, ?)",
                (port, owner, instance_id, time.time()),
            )
        return True

    def release(self, owner: str, instance_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "DELETE FROM leases WHERE owner = ? AND instance_id = ?", (owner, instance_id)
            )

    def reclaim(self, owner: str, live: set[str]) -> None:
        """Drop this owner's leases whose instance is not in ``live``.

        Called when a server starts: a crash between stopping an instance and releasing
        its lease leaves the lease behind.
        """
        with self._transaction() as db:
            held = db.execute("SELECT instance_id FROM leases WHERE owner = ?", (owner,))
            gone = [(owner, r[0]) for r in held.fetchall() if r[0] not in live]
            db.executemany("DELETE FROM leases WHERE owner = ? AND instance_id = ?", gone)

    def leases(self, owner: str) -> dict[str, int]:
        """Instance id → port of one owner's leases (for tests and diagnostics)."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT instance_id, port FROM leases WHERE owner = ?", (owner,)
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    # -- network-namespace slots (beanpole.adapters.runtime.netns) ------------------------------

    def lease_slot(
        self, owner: str, instance_id: str, count: int, usable: Callable[[int], bool]
    ) -> int:
        """The lowest slot below ``count`` no one holds and ``usable`` accepts; the same
        (owner, instance_id) asking again gets its slot back."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT slot FROM slots WHERE owner = ? AND instance_id = ?", (owner, instance_id)
            ).fetchone()
            if row is not None:
                return int(row[0])
            taken = {r[0] for r in db.execute("SELECT slot FROM slots")}
            for slot in range(count):
                if slot in taken or not usable(slot):
                    continue
                db.execute(
                    "INSERT INTO slots (slot, owner, instance_id, leased_at) VALUES (?, ?, ?, ?)",
                    (slot, owner, instance_id, time.time()),
                )
                return slot
        raise ComponentError(
            f"No free network slot left for a new instance (all {count} are held or overlap "
            "this host's routes). Terminate unused environments, or set "
            "beanpole:instance:NetworkIsolation to none."
        )

    def release_slot(self, owner: str, instance_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "DELETE FROM slots WHERE owner = ? AND instance_id = ?", (owner, instance_id)
            )

    def slots(self, owner: str) -> dict[str, int]:
        """Instance id → slot of one owner's leases."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT instance_id, slot FROM slots WHERE owner = ?", (owner,)
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def all_slots(self) -> list[tuple[str, str, int]]:
        """(owner, instance id, slot) of every lease, every home's."""
        with self._transaction() as db:
            rows = db.execute("SELECT owner, instance_id, slot FROM slots").fetchall()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def with_slots(self, action: Callable[[set[int]], None]) -> None:
        """Call ``action`` with the leased slots while holding the registry's write lock, so
        no slot is leased meanwhile (a sweep of leftovers must not take a new one's)."""
        with self._transaction() as db:
            action({int(r[0]) for r in db.execute("SELECT slot FROM slots")})


def _drop_dead_owners(db: sqlite3.Connection, asking: str) -> None:
    """Forget the leases of homes whose folder no longer exists (a test's deleted temp home,
    a home removed with its instances long gone)."""
    others = db.execute("SELECT DISTINCT owner FROM leases WHERE owner != ?", (asking,))
    owners = [r[0] for r in others.fetchall()]
    for owner in owners:
        if not Path(owner).is_dir():
            db.execute("DELETE FROM leases WHERE owner = ?", (owner,))
