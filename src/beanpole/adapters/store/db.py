"""SQLite store: WAL, named migrations, explicit transactions, one writer (the server)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from beanpole.core.errors import Conflict, NotFound
from beanpole.core.model import (
    Application,
    BuildStatus,
    Environment,
    EnvStatus,
    Event,
    Health,
    Instance,
    InstanceState,
    Operation,
    OperationKind,
    OperationStatus,
    Release,
    Severity,
    Version,
)

# An environment comes with the .ebextensions layer of the version it runs, so resolving its
# settings (`Environment.layers`) needs no second lookup anywhere.
_ENVIRONMENTS = (
    "SELECT e.*, v.ebextensions AS version_settings FROM environments e"
    " LEFT JOIN versions v ON v.application = e.application AND v.label = e.version_label"
)


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("beanpole.adapters.store") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


class Store:
    """All persistent state. Methods are short transactions; callers hold no cursors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        # Called with each event once it is stored (the operations' deploy logs).
        self.event_listeners: list[Callable[[Event], None]] = []

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def change_stamp(self) -> tuple[int, int]:
        """Changes whenever anything was written, by this connection or another: a reader
        polling every second skips its work while the stamp stays the same."""
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            return self._db.total_changes, int(version)

    def _query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, at REAL)")
            done = {r[0] for r in db.execute("SELECT name FROM migrations")}
            for name, sql in _migrations():
                if name in done:
                    continue
                for statement in sql.split(";\n"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))

    # applications and versions ------------------------------------------------

    def ensure_application(self, name: str) -> Application:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO applications (name, created_at) VALUES (?, ?)",
                (name, time.time()),
            )
            row = db.execute("SELECT * FROM applications WHERE name = ?", (name,)).fetchone()
        return Application(row["name"], row["created_at"])

    def application(self, name: str) -> Application:
        rows = self._query("SELECT * FROM applications WHERE name = ?", name)
        if not rows:
            raise NotFound(
                f"No application named {name!r}. Create it with: beanpole create ENV --app "
                f"{name} --source PATH"
            )
        return Application(rows[0]["name"], rows[0]["created_at"])

    def set_max_versions(self, application: str, count: int) -> None:
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE applications SET max_versions = ? WHERE name = ?", (count, application)
            )
            if cur.rowcount == 0:
                raise NotFound(f"No application named {application!r}.")

    def max_versions(self, application: str) -> int:
        rows = self._query("SELECT max_versions FROM applications WHERE name = ?", application)
        return int(rows[0][0]) if rows else 0

    def digest_in_use(self, digest: str) -> bool:
        return bool(self._query("SELECT 1 FROM versions WHERE digest = ? LIMIT 1", digest))

    def applications(self) -> list[Application]:
        rows = self._query("SELECT * FROM applications ORDER BY name")
        return [Application(r["name"], r["created_at"]) for r in rows]

    def add_version(
        self,
        application: str,
        label: str,
        digest: str,
        description: str = "",
        ebextensions: dict[str, str] | None = None,
        ebextensions_warnings: Sequence[str] = (),
    ) -> Version:
        with self.transaction() as db:
            row = db.execute(
                "SELECT * FROM versions WHERE application = ? AND label = ?",
                (application, label),
            ).fetchone()
            if row is not None:
                if row["digest"] == digest:
                    return _version(row)
                raise Conflict(
                    f"Application {application} already has a version labelled {label!r} with "
                    "different contents. Versions are immutable: choose a new label."
                )
            db.execute(
                "INSERT INTO versions (application, label, digest, description, created_at,"
                " build_status, ebextensions, ebextensions_warnings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    application,
                    label,
                    digest,
                    description,
                    time.time(),
                    BuildStatus.PENDING,
                    json.dumps(ebextensions or {}),
                    json.dumps(list(ebextensions_warnings)),
                ),
            )
        return self.version(application, label)

    def version(self, application: str, label: str) -> Version:
        rows = self._query(
            "SELECT * FROM versions WHERE application = ? AND label = ?", application, label
        )
        if not rows:
            raise NotFound(
                f"Application {application} has no version {label!r}. "
                f"List them with: beanpole versions {application}"
            )
        return _version(rows[0])

    def versions(self, application: str) -> list[Version]:
        rows = self._query(
            "SELECT * FROM versions WHERE application = ? ORDER BY created_at DESC", application
        )
        return [_version(r) for r in rows]

    def set_build_status(
        self, application: str, label: str, status: BuildStatus, error: str = ""
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE versions SET build_status = ?, build_error = ?"
                " WHERE application = ? AND label = ?",
                (status, error, application, label),
            )

    # environments ---------------------------------------------------------------

    def create_environment(
        self, name: str, application: str, cname: str, settings: dict[str, str]
    ) -> Environment:
        now = time.time()
        with self.transaction() as db:
            clash = db.execute(
                "SELECT name, cname FROM environments WHERE status != 'Terminated'"
                " AND (name = ? OR cname = ?)",
                (name, cname),
            ).fetchone()
            if clash is not None:
                if clash["name"] == name:
                    raise Conflict(
                        f"Environment {name} already exists. Deploy to it with "
                        f"'beanpole deploy {name}', or choose another name."
                    )
                raise Conflict(
                    f"CNAME prefix {cname!r} is already used by environment {clash['name']}. "
                    "Choose another with --cname."
                )
            db.execute(
                "INSERT INTO environments (name, application, cname, status, health,"
                " version_label, settings, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                (
                    name,
                    application,
                    cname,
                    EnvStatus.LAUNCHING,
                    Health.GREY,
                    json.dumps(settings),
                    now,
                    now,
                ),
            )
        return self.environment(name)

    def environment(self, name: str) -> Environment:
        rows = self._query(f"{_ENVIRONMENTS} WHERE e.name = ? ORDER BY e.id DESC LIMIT 1", name)
        if not rows or rows[0]["status"] == EnvStatus.TERMINATED:
            raise NotFound(f"No environment named {name!r}. List environments with: beanpole list")
        return _environment(rows[0])

    def environments(self, include_terminated: bool = False) -> list[Environment]:
        where = "" if include_terminated else "WHERE e.status != 'Terminated'"
        rows = self._query(f"{_ENVIRONMENTS} {where} ORDER BY e.name")
        return [_environment(r) for r in rows]

    def update_environment(self, name: str, **fields: Any) -> Environment:
        allowed = {
            "status",
            "health",
            "version_label",
            "settings",
            "deployment_id",
            "causes",
            "health_status",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {unknown}")
        encoded = {
            k: json.dumps(list(v) if k == "causes" else v) if k in ("settings", "causes") else v
            for k, v in fields.items()
        }
        assignments = ", ".join(f"{k} = ?" for k in encoded)
        with self.transaction() as db:
            cur = db.execute(
                f"UPDATE environments SET {assignments}, updated_at = ?"  # noqa: S608
                " WHERE name = ? AND status != 'Terminated'",
                (*encoded.values(), time.time(), name),
            )
            if cur.rowcount == 0:
                raise NotFound(f"No environment named {name!r}.")
        return (
            self.environment(name)
            if fields.get("status") != EnvStatus.TERMINATED
            else (
                _environment(
                    self._query(
                        f"{_ENVIRONMENTS} WHERE e.name = ? ORDER BY e.id DESC LIMIT 1", name
                    )[0]
                )
            )
        )

    def swap_cnames(self, a: str, b: str) -> None:
        """Exchange two live environments' CNAMEs in one transaction."""
        live = "status != 'Terminated'"
        with self.transaction() as db:
            rows = {
                r["name"]: r["cname"]
                for r in db.execute(
                    f"SELECT name, cname FROM environments WHERE name IN (?, ?) AND {live}",  # noqa: S608
                    (a, b),
                )
            }
            if set(rows) != {a, b}:
                raise NotFound(f"Both environments must exist to swap: {a}, {b}.")
            update = (
                "UPDATE environments SET cname = ?, updated_at = ?"
                " WHERE name = ? AND status != 'Terminated'"
            )
            now = time.time()
            db.execute(update, (f"~swap~{a}", now, a))
            db.execute(update, (rows[a], now, b))
            db.execute(update, (rows[b], now, a))

    # instances ------------------------------------------------------------------

    def add_instance(self, instance: Instance) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO instances (id, environment, version_label, release_key,"
                " deployment_id, host, port, state, pid, healthy, causes, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    instance.id,
                    instance.environment,
                    instance.version_label,
                    instance.release_key,
                    instance.deployment_id,
                    instance.host,
                    instance.port,
                    instance.state,
                    instance.pid,
                    int(instance.healthy),
                    json.dumps(list(instance.causes)),
                    instance.created_at,
                ),
            )

    def update_instance(self, instance_id: str, **fields: Any) -> None:
        allowed = {"state", "pid", "healthy", "causes", "weight", "health_status", "host", "port"}
        if set(fields) - allowed:
            raise ValueError(f"cannot update {set(fields) - allowed}")
        encoded = {
            k: json.dumps(list(v)) if k == "causes" else int(v) if k == "healthy" else v
            for k, v in fields.items()
        }
        assignments = ", ".join(f"{k} = ?" for k in encoded)
        with self.transaction() as db:
            db.execute(
                f"UPDATE instances SET {assignments} WHERE id = ?",  # noqa: S608
                (*encoded.values(), instance_id),
            )

    def instances(self, environment: str | None = None, live: bool = True) -> list[Instance]:
        clauses, args = [], []
        if environment is not None:
            clauses.append("environment = ?")
            args.append(environment)
        if live:
            clauses.append("state != 'stopped'")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._query(
            f"SELECT * FROM instances {where} ORDER BY created_at, id",  # noqa: S608
            *args,
        )
        return [_instance(r) for r in rows]

    def used_ports(self) -> set[int]:
        return {r[0] for r in self._query("SELECT port FROM instances WHERE state != 'stopped'")}

    # releases -------------------------------------------------------------------

    def add_release(
        self, environment: str, deployment_id: int, version_label: str, settings: dict[str, str]
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO releases (environment, deployment_id, version_label, settings,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (environment, deployment_id, version_label, json.dumps(settings), time.time()),
            )

    def releases(self, environment: str, limit: int = 20) -> list[Release]:
        rows = self._query(
            "SELECT * FROM releases WHERE environment = ? ORDER BY id DESC LIMIT ?",
            environment,
            limit,
        )
        return [
            Release(
                r["id"],
                r["environment"],
                r["deployment_id"],
                r["version_label"],
                json.loads(r["settings"]),
                r["created_at"],
            )
            for r in rows
        ]

    def deployed_labels(self, application: str) -> set[str]:
        rows = self._query(
            "SELECT DISTINCT version_label FROM environments WHERE application = ?"
            " AND status != 'Terminated' AND version_label IS NOT NULL"
            " UNION SELECT DISTINCT i.version_label FROM instances i JOIN environments e"
            " ON e.name = i.environment AND e.status != 'Terminated'"
            " WHERE e.application = ? AND i.state != 'stopped'",
            application,
            application,
        )
        return {r[0] for r in rows}

    def delete_version(self, application: str, label: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM versions WHERE application = ? AND label = ?", (application, label)
            )

    # metrics --------------------------------------------------------------------

    def add_metrics(
        self,
        rows: Sequence[tuple[str, str, float, str]],
        keep_s: float,
        rollups: Sequence[tuple[str, str, float, str]] = (),
        rollup_keep_s: float = 0.0,
    ) -> None:
        """Store closed windows and roll-ups (env, instance or '', start, JSON); drop the
        expired ones, so the tables stay bounded by retention times the live keys."""
        now = time.time()
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)", rows)
            db.execute("DELETE FROM metrics WHERE start < ?", (now - keep_s,))
            if rollups:
                db.executemany("INSERT OR REPLACE INTO metrics_rollup VALUES (?, ?, ?, ?)", rollups)
            if rollup_keep_s:
                db.execute("DELETE FROM metrics_rollup WHERE start < ?", (now - rollup_keep_s,))

    def metrics(
        self,
        environment: str,
        instance: str,
        since: float,
        until: float = float("inf"),
        *,
        rollup: bool = False,
        limit: int = 10_000,
    ) -> list[tuple[float, dict[str, Any]]]:
        """Windows of one key (instance '' = the environment) from ``since`` to ``until``."""
        table = "metrics_rollup" if rollup else "metrics"
        rows = self._query(
            f"SELECT start, data FROM {table} WHERE environment = ? AND instance = ?"  # noqa: S608
            " AND start >= ? AND start < ? ORDER BY start LIMIT ?",
            environment,
            instance,
            since,
            until,
            limit,
        )
        return [(r[0], json.loads(r[1])) for r in rows]

    # events ---------------------------------------------------------------------

    def add_event(
        self,
        message: str,
        *,
        severity: Severity = Severity.INFO,
        environment: str | None = None,
        application: str | None = None,
        version_label: str | None = None,
    ) -> Event:
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO events (time, severity, environment, application, version_label,"
                " message) VALUES (?, ?, ?, ?, ?, ?)",
                (now, severity, environment, application, version_label, message),
            )
            event_id = cur.lastrowid or 0
        event = Event(event_id, now, severity, environment, application, version_label, message)
        for listener in self.event_listeners:
            listener(event)
        return event

    def events(
        self, environment: str | None = None, after: int = 0, limit: int = 500
    ) -> list[Event]:
        if environment is None:
            rows = self._query(
                "SELECT * FROM events WHERE id > ? ORDER BY id DESC LIMIT ?", after, limit
            )
        else:
            rows = self._query(
                "SELECT * FROM events WHERE environment = ? AND id > ? ORDER BY id DESC LIMIT ?",
                environment,
                after,
                limit,
            )
        return [_event(r) for r in reversed(rows)]

    # operations -----------------------------------------------------------------

    def start_operation(
        self,
        environment: str,
        kind: OperationKind,
        *,
        target_version: str | None,
        previous_version: str | None,
        params: dict[str, Any] | None = None,
    ) -> Operation:
        with self.transaction() as db:
            running = db.execute(
                "SELECT kind FROM operations WHERE environment = ? AND status = 'running'",
                (environment,),
            ).fetchone()
            if running is not None:
                raise Conflict(
                    f"Environment {environment} is busy with a {running['kind']} operation. "
                    f"Wait for it to finish (beanpole events {environment} -f) and try again."
                )
            cur = db.execute(
                "INSERT INTO operations (environment, kind, status, target_version,"
                " previous_version, params, started_at) VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (
                    environment,
                    kind,
                    target_version,
                    previous_version,
                    json.dumps(params or {}),
                    time.time(),
                ),
            )
            op_id = cur.lastrowid or 0
        return self.operation(op_id)

    def finish_operation(self, op_id: int, status: OperationStatus, message: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE operations SET status = ?, message = ?, finished_at = ? WHERE id = ?",
                (status, message, time.time(), op_id),
            )

    def operation(self, op_id: int) -> Operation:
        rows = self._query("SELECT * FROM operations WHERE id = ?", op_id)
        if not rows:
            raise NotFound(f"No operation {op_id}.")
        return _operation(rows[0])

    def last_operation(self, environment: str, kinds: tuple[str, ...]) -> Operation | None:
        marks = ", ".join("?" for _ in kinds)
        rows = self._query(
            f"SELECT * FROM operations WHERE environment = ? AND kind IN ({marks})"  # noqa: S608
            " ORDER BY id DESC LIMIT 1",
            environment,
            *kinds,
        )
        return _operation(rows[0]) if rows else None

    def running_operations(self) -> list[Operation]:
        rows = self._query("SELECT * FROM operations WHERE status = 'running' ORDER BY id")
        return [_operation(r) for r in rows]


def _version(r: sqlite3.Row) -> Version:
    return Version(
        r["application"],
        r["label"],
        r["digest"],
        r["created_at"],
        BuildStatus(r["build_status"]),
        r["build_error"],
        r["description"],
        json.loads(r["ebextensions"]),
        tuple(json.loads(r["ebextensions_warnings"])),
    )


def _environment(r: sqlite3.Row) -> Environment:
    return Environment(
        name=r["name"],
        application=r["application"],
        cname=r["cname"],
        status=EnvStatus(r["status"]),
        health=Health(r["health"]),
        version_label=r["version_label"],
        settings=json.loads(r["settings"]),
        deployment_id=r["deployment_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        causes=tuple(json.loads(r["causes"])),
        health_status=r["health_status"],
        version_settings=json.loads(r["version_settings"] or "{}"),
    )


def _instance(r: sqlite3.Row) -> Instance:
    return Instance(
        id=r["id"],
        environment=r["environment"],
        version_label=r["version_label"],
        release_key=r["release_key"],
        deployment_id=r["deployment_id"],
        host=r["host"],
        port=r["port"],
        state=InstanceState(r["state"]),
        created_at=r["created_at"],
        pid=r["pid"],
        healthy=bool(r["healthy"]),
        causes=tuple(json.loads(r["causes"])),
        weight=r["weight"],
        health_status=r["health_status"],
    )


def _event(r: sqlite3.Row) -> Event:
    return Event(
        r["id"],
        r["time"],
        Severity(r["severity"]),
        r["environment"],
        r["application"],
        r["version_label"],
        r["message"],
    )


def _operation(r: sqlite3.Row) -> Operation:
    return Operation(
        id=r["id"],
        environment=r["environment"],
        kind=OperationKind(r["kind"]),
        status=OperationStatus(r["status"]),
        target_version=r["target_version"],
        previous_version=r["previous_version"],
        message=r["message"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        params=json.loads(r["params"]),
    )
