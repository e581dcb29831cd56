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

from beanpole.adapters.store.upgrades import STEPS
from beanpole.core.autoscaling.bounds import Override
from beanpole.core.bundle_steps import Steps
from beanpole.core.certificates import CertificateRecord
from beanpole.core.errors import Conflict, NotFound
from beanpole.core.ids import new_application_id, new_environment_id, new_version_id
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
    SavedConfiguration,
    Severity,
    Version,
)
from beanpole.core.requests import current_request
from beanpole.core.secrets import mask

# An environment comes with the .ebextensions layer of the version it runs, so resolving its
# settings (`Environment.layers`) needs no second lookup anywhere.
_ENVIRONMENTS = (
    "SELECT e.*, v.ebextensions AS version_settings,"
    " v.ebextensions_origins AS version_origins FROM environments e"
    " LEFT JOIN versions v ON v.application = e.application AND v.label = e.version_label"
)
# Records carry the environment's id; its name comes from the environment row.
_INSTANCES = (
    "SELECT i.*, e.name AS environment FROM instances i JOIN environments e"
    " ON e.id = i.environment_id"
)
_EVENTS = (
    "SELECT ev.*, e.name AS environment FROM events ev LEFT JOIN environments e"
    " ON e.id = ev.environment_id"
)
_OPERATIONS = (
    "SELECT o.*, e.name AS environment FROM operations o JOIN environments e"
    " ON e.id = o.environment_id"
)
# A saved configuration with the name of the environment it was saved from.
_SAVED = (
    "SELECT s.*, e.name AS environment FROM saved_configurations s"
    " LEFT JOIN environments e ON e.id = s.environment_id"
)
# The environment row a name means: the live one, else the latest (a live row is always the
# latest of its name, since a name is free again only once its row is terminated).
_ID_OF_NAME = "(SELECT id FROM environments WHERE name = ? ORDER BY seq DESC LIMIT 1)"


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("beanpole.adapters.store") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


class Store:
    """All persistent state. Methods are short transactions; callers hold no cursors.

    Writes go through one connection under a lock (SQLite has one writer anyway). Reads go
    through a read-only connection of the calling thread and take no lock: with WAL a
    reader sees the last committed state without waiting for a writer, so a large read a
    service runs in a worker thread (a day of metrics, a long event list) never holds up
    the event loop's own store calls (docs/decisions.md, "Store access").
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()  # not the writers' lock: reads never wait
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        # Called with each event once it is stored (the operations' deploy logs).
        self.event_listeners: list[Callable[[Event], None]] = []
        # (environment id, message) -> the message as recorded: secrets hidden
        # (`services.secrets.Secrets.redact_by_id`, set by the composition root)
        self.redact: Callable[[str | None, str], str] = lambda _env_id, text: mask(text)
        last = self._db.execute("SELECT MAX(time) FROM events").fetchone()[0]
        self._last_event_time: float = float(last or 0.0)

    def close(self) -> None:
        with self._lock, self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
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
        """Rows of a read, on this thread's connection. No method reads inside its own
        write transaction, where another connection would not see the uncommitted rows."""
        return self._reader().execute(sql, args).fetchall()

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
            )
            reader.row_factory = sqlite3.Row
            with self._readers_lock:
                self._readers.append(reader)
            self._local.reader = reader
        return reader

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
                step = STEPS.get(name)
                if step is not None:
                    step(db)
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))

    # applications and versions ------------------------------------------------

    def ensure_application(self, name: str) -> Application:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO applications (name, created_at, id) VALUES (?, ?, ?)",
                (name, time.time(), new_application_id()),
            )
            row = db.execute("SELECT * FROM applications WHERE name = ?", (name,)).fetchone()
        return _application(row)

    def application(self, name: str) -> Application:
        rows = self._query("SELECT * FROM applications WHERE name = ?", name)
        if not rows:
            raise NotFound(
                f"No application named {name!r}. Create it with: beanpole create ENV --app "
                f"{name} --source PATH"
            )
        return _application(rows[0])

    def set_max_versions(self, application: str, count: int) -> None:
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE applications SET max_versions = ? WHERE name = ?", (count, application)
            )
            if cur.rowcount == 0:
                raise NotFound(f"No application named {application!r}.")

    def set_max_age_days(self, application: str, days: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE applications SET max_age_days = ? WHERE name = ?", (days, application)
            )

    def max_age_days(self, application: str) -> int:
        rows = self._query("SELECT max_age_days FROM applications WHERE name = ?", application)
        return int(rows[0][0]) if rows else 0

    def max_versions(self, application: str) -> int:
        rows = self._query("SELECT max_versions FROM applications WHERE name = ?", application)
        return int(rows[0][0]) if rows else 0

    def digest_in_use(self, digest: str) -> bool:
        return bool(self._query("SELECT 1 FROM versions WHERE digest = ? LIMIT 1", digest))

    def applications(self) -> list[Application]:
        rows = self._query("SELECT * FROM applications ORDER BY name")
        return [_application(r) for r in rows]

    def add_version(
        self,
        application: str,
        label: str,
        digest: str,
        description: str = "",
        ebextensions: dict[str, str] | None = None,
        ebextensions_warnings: Sequence[str] = (),
        ebextensions_origins: dict[str, str] | None = None,
        steps: Steps | None = None,
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
                " build_status, ebextensions, ebextensions_warnings, id, ebextensions_origins,"
                " steps)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    application,
                    label,
                    digest,
                    description,
                    time.time(),
                    BuildStatus.PENDING,
                    json.dumps(ebextensions or {}),
                    json.dumps(list(ebextensions_warnings)),
                    new_version_id(),
                    json.dumps(ebextensions_origins or {}),
                    (steps or Steps()).to_json(),
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

    def set_version_platform(self, application: str, label: str, platform: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE versions SET platform = ? WHERE application = ? AND label = ?",
                (platform, application, label),
            )

    # environments ---------------------------------------------------------------

    def create_environment(
        self,
        name: str,
        application: str,
        cname: str,
        settings: dict[str, str],
        desired_capacity: int | None = None,
        platform: str | None = None,
        saved: SavedConfiguration | None = None,
    ) -> Environment:
        """Record a new environment; one created from a saved configuration keeps its name
        and a copy of its settings."""
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
            env_id = new_environment_id()
            db.execute(
                "INSERT INTO environments (id, name, application, cname, status, health,"
                " version_label, settings, created_at, updated_at, desired_capacity, platform,"
                " saved_configuration, saved_settings)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)",
                (
                    env_id,
                    name,
                    application,
                    cname,
                    EnvStatus.LAUNCHING,
                    Health.GREY,
                    json.dumps(settings),
                    now,
                    now,
                    desired_capacity,
                    platform,
                    saved.name if saved else None,
                    json.dumps(saved.settings if saved else {}),
                ),
            )
        return self.environment_by_id(env_id)

    def environment(self, name: str) -> Environment:
        rows = self._query(f"{_ENVIRONMENTS} WHERE e.name = ? ORDER BY e.seq DESC LIMIT 1", name)
        if not rows or rows[0]["status"] == EnvStatus.TERMINATED:
            raise NotFound(f"No environment named {name!r}. List environments with: beanpole list")
        return _environment(rows[0])

    def environment_by_id(self, env_id: str) -> Environment:
        """An environment by its id, a terminated one too (its records stay)."""
        rows = self._query(f"{_ENVIRONMENTS} WHERE e.id = ?", env_id)
        if not rows:
            raise NotFound(
                f"No environment with id {env_id!r}. List environments with: beanpole list"
            )
        return _environment(rows[0])

    def environment_id_of(self, name: str) -> str | None:
        """The id a name means now: its newest environment, terminated or not."""
        return self._environment_id(name)

    def _environment_id(self, name: str) -> str | None:
        """The id a name means now (see `_ID_OF_NAME`), None if no row ever had it."""
        rows = self._query(
            "SELECT id FROM environments WHERE name = ? ORDER BY seq DESC LIMIT 1", name
        )
        return str(rows[0][0]) if rows else None

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
            "desired_capacity",
            "scheduled_bounds",
            "scaling",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {unknown}")
        if isinstance(fields.get("scheduled_bounds"), Override):
            fields["scheduled_bounds"] = fields["scheduled_bounds"].as_dict()
        encoded = {
            k: (
                json.dumps(list(v) if k == "causes" else v)
                if k in ("settings", "causes", "scaling")
                or (k == "scheduled_bounds" and v is not None)
                else v
            )
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
                        f"{_ENVIRONMENTS} WHERE e.name = ? ORDER BY e.seq DESC LIMIT 1", name
                    )[0]
                )
            )
        )

    # domains ------------------------------------------------------------------------

    def add_domain(self, environment: Environment, domain: str) -> None:
        """Route ``domain`` to the environment too; one environment per domain. A domain
        an environment that has ended still holds (a create that failed, one a restart
        interrupted) is free."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT d.environment_id, e.name, e.status FROM domains d "
                "LEFT JOIN environments e ON e.id = d.environment_id WHERE d.domain = ?",
                (domain,),
            ).fetchone()
            if row is not None and row[2] in (None, EnvStatus.TERMINATED.value):
                db.execute("DELETE FROM domains WHERE domain = ?", (domain,))
                row = None
            if row is not None:
                owner = row[1] or row[0]
                if row[0] == environment.id:
                    raise Conflict(f"{domain} already routes to {environment.name}.")
                raise Conflict(
                    f"{domain} already routes to environment {owner}. Remove it there first: "
                    f"beanpole domains remove {owner} {domain}"
                )
            db.execute(
                "INSERT INTO domains (domain, environment_id, created_at) VALUES (?, ?, ?)",
                (domain, environment.id, time.time()),
            )

    def remove_domain(self, environment: Environment, domain: str) -> None:
        with self.transaction() as db:
            gone = db.execute(
                "DELETE FROM domains WHERE domain = ? AND environment_id = ?",
                (domain, environment.id),
            ).rowcount
        if not gone:
            raise NotFound(
                f"{domain} does not route to {environment.name}. See its domains with: "
                f"beanpole domains list {environment.name}"
            )

    def domains(self, environment_id: str | None = None) -> dict[str, list[str]]:
        """Environment id -> its domains, sorted (one environment's with ``environment_id``);
        those of environments that have ended are left out."""
        rows = self._query(
            "SELECT d.domain, d.environment_id FROM domains d JOIN environments e "
            "ON e.id = d.environment_id WHERE e.status != 'Terminated' ORDER BY d.domain"
        )
        out: dict[str, list[str]] = {}
        for row in rows:
            if environment_id is None or row["environment_id"] == environment_id:
                out.setdefault(row["environment_id"], []).append(row["domain"])
        return out

    def forget_domains(self, environment_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM domains WHERE environment_id = ?", (environment_id,))

    # certificates ----------------------------------------------------------------------

    def put_certificate(self, record: CertificateRecord) -> None:
        """Store a certificate's facts, replacing those of its name (a renewal) but keeping
        when the name was first added."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO certificates (name, domains, not_before, not_after, fingerprint,"
                " serial, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET domains = excluded.domains,"
                " not_before = excluded.not_before, not_after = excluded.not_after,"
                " fingerprint = excluded.fingerprint, serial = excluded.serial,"
                " updated_at = excluded.updated_at",
                (
                    record.name,
                    json.dumps(list(record.domains)),
                    record.not_before,
                    record.not_after,
                    record.fingerprint,
                    record.serial,
                    record.created_at,
                    record.updated_at,
                ),
            )

    def certificates(self) -> list[CertificateRecord]:
        return [_certificate(r) for r in self._query("SELECT * FROM certificates ORDER BY name")]

    def certificate(self, name: str) -> CertificateRecord:
        rows = self._query("SELECT * FROM certificates WHERE name = ?", name)
        if not rows:
            raise NotFound(
                f"No certificate named {name!r}. List certificates with: beanpole certs list"
            )
        return _certificate(rows[0])

    def remove_certificate(self, name: str) -> None:
        with self.transaction() as db:
            gone = db.execute("DELETE FROM certificates WHERE name = ?", (name,)).rowcount
        if not gone:
            raise NotFound(
                f"No certificate named {name!r}. List certificates with: beanpole certs list"
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
        """Record an instance of ``instance.environment_id``, or, without one, of the live
        environment named ``instance.environment``."""
        env_id = instance.environment_id or self.environment(instance.environment).id
        with self.transaction() as db:
            db.execute(
                "INSERT INTO instances (id, environment_id, version_label, release_key,"
                " deployment_id, host, port, state, pid, healthy, causes, created_at, run_as)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    instance.id,
                    env_id,
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
                    instance.run_as,
                ),
            )

    def update_instance(self, instance_id: str, **fields: Any) -> None:
        allowed = {
            "state", "pid", "healthy", "causes", "weight", "health_status", "host", "port",
            "process_ports",
        }  # fmt: skip
        if set(fields) - allowed:
            raise ValueError(f"cannot update {set(fields) - allowed}")
        encoded = {
            k: json.dumps(list(v))
            if k == "causes"
            else json.dumps(dict(v), sort_keys=True)
            if k == "process_ports"
            else int(v)
            if k == "healthy"
            else v
            for k, v in fields.items()
        }
        assignments = ", ".join(f"{k} = ?" for k in encoded)
        with self.transaction() as db:
            db.execute(
                f"UPDATE instances SET {assignments} WHERE id = ?",  # noqa: S608
                (*encoded.values(), instance_id),
            )

    def instances(self, environment: str | None = None, live: bool = True) -> list[Instance]:
        """Instances of the environment a name means now (`_ID_OF_NAME`), or of all."""
        clauses, args = [], []
        if environment is not None:
            clauses.append(f"i.environment_id = {_ID_OF_NAME}")
            args.append(environment)
        if live:
            clauses.append("i.state != 'stopped'")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._query(
            f"{_INSTANCES} {where} ORDER BY i.created_at, i.id",
            *args,
        )
        return [_instance(r) for r in rows]

    # releases -------------------------------------------------------------------

    def add_release(
        self, environment: str, deployment_id: int, version_label: str, settings: dict[str, str]
    ) -> None:
        """Record a release of the live environment named ``environment``."""
        env_id = self.environment(environment).id
        with self.transaction() as db:
            db.execute(
                "INSERT INTO releases (environment_id, deployment_id, version_label, settings,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (env_id, deployment_id, version_label, json.dumps(settings), time.time()),
            )

    def releases(self, environment: str, limit: int = 20) -> list[Release]:
        """The releases of the environment the name means now, newest first: a name
        re-created after a terminate has none of its namesake's (nothing to roll back to)."""
        rows = self._query(
            "SELECT r.*, e.name AS environment FROM releases r JOIN environments e"  # noqa: S608
            f" ON e.id = r.environment_id WHERE r.environment_id = {_ID_OF_NAME}"
            " ORDER BY r.id DESC LIMIT ?",
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
                r["environment_id"],
            )
            for r in rows
        ]

    def deployed_labels(self, application: str) -> set[str]:
        rows = self._query(
            "SELECT DISTINCT version_label FROM environments WHERE application = ?"
            " AND status != 'Terminated' AND version_label IS NOT NULL"
            " UNION SELECT DISTINCT i.version_label FROM instances i JOIN environments e"
            " ON e.id = i.environment_id AND e.status != 'Terminated'"
            " WHERE e.application = ? AND i.state != 'stopped'",
            application,
            application,
        )
        return {r[0] for r in rows}

    def set_version_description(self, application: str, label: str, description: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE versions SET description = ? WHERE application = ? AND label = ?",
                (description, application, label),
            )

    def delete_version(self, application: str, label: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM versions WHERE application = ? AND label = ?", (application, label)
            )

    def delete_application(self, name: str) -> list[Version]:
        """Delete an application with its versions, saved configurations and the records of
        its terminated environments; refused while one of its environments is live.
        Returns the versions deleted (their bundles are the caller's to remove)."""
        with self.transaction() as db:
            live = db.execute(
                "SELECT name FROM environments WHERE application = ? AND status != 'Terminated'",
                (name,),
            ).fetchall()
            if live:
                names = ", ".join(r[0] for r in live)
                raise Conflict(
                    f"Unable to delete application {name} because it has running environments "
                    f"({names}). Terminate them first."
                )
            versions = [
                _version(r)
                for r in db.execute("SELECT * FROM versions WHERE application = ?", (name,))
            ]
            found = db.execute("SELECT 1 FROM applications WHERE name = ?", (name,)).fetchone()
            if found is None:
                raise NotFound(f"No Application named {name!r} found.")
            for table in ("versions", "saved_configurations", "environments"):
                db.execute(f"DELETE FROM {table} WHERE application = ?", (name,))  # noqa: S608
            db.execute("DELETE FROM applications WHERE name = ?", (name,))
        return versions

    # saved configurations -----------------------------------------------------------

    def add_saved_configuration(
        self, config: SavedConfiguration, environment_id: str | None = None
    ) -> SavedConfiguration:
        """Record a saved configuration; its name is unique within its application."""
        with self.transaction() as db:
            if (
                db.execute(
                    "SELECT 1 FROM applications WHERE name = ?", (config.application,)
                ).fetchone()
                is None
            ):
                raise NotFound(f"No application named {config.application!r}.")
            exists = db.execute(
                "SELECT 1 FROM saved_configurations WHERE application = ? AND name = ?",
                (config.application, config.name),
            ).fetchone()
            if exists is not None:
                raise Conflict(
                    f"Application {config.application} already has a saved configuration "
                    f"{config.name}. Choose another name, or delete it first with: beanpole "
                    f"config delete {config.application} {config.name}"
                )
            db.execute(
                "INSERT INTO saved_configurations (application, name, settings, description,"
                " platform, environment_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    config.application,
                    config.name,
                    json.dumps(config.settings),
                    config.description,
                    config.platform,
                    environment_id,
                    config.created_at,
                ),
            )
        return self.saved_configuration(config.application, config.name)

    def saved_configuration(self, application: str, name: str) -> SavedConfiguration:
        rows = self._query(f"{_SAVED} WHERE s.application = ? AND s.name = ?", application, name)
        if not rows:
            raise NotFound(
                f"No saved configuration {name} in application {application}. "
                f"`beanpole config list {application}` shows them."
            )
        return _saved(rows[0])

    def saved_configurations(self, application: str | None = None) -> list[SavedConfiguration]:
        """An application's saved configurations (or every application's), by name."""
        if application is None:
            rows = self._query(f"{_SAVED} ORDER BY s.application, s.name")
        else:
            rows = self._query(f"{_SAVED} WHERE s.application = ? ORDER BY s.name", application)
        return [_saved(r) for r in rows]

    def delete_saved_configuration(self, application: str, name: str) -> None:
        """Delete it; environments created from it keep their copy of its settings."""
        with self.transaction() as db:
            cur = db.execute(
                "DELETE FROM saved_configurations WHERE application = ? AND name = ?",
                (application, name),
            )
        if cur.rowcount == 0:
            raise NotFound(
                f"No saved configuration {name} in application {application}. "
                f"`beanpole config list {application}` shows them."
            )

    # metrics --------------------------------------------------------------------

    def add_metrics(
        self,
        rows: Sequence[tuple[str, str, float, str]],
        keep_s: float,
        rollups: Sequence[tuple[str, str, float, str]] = (),
        rollup_keep_s: float = 0.0,
    ) -> None:
        """Store closed windows and roll-ups (env name, instance or '', start, JSON) under the
        ids of the live environments of those names (a window of an environment terminated
        meanwhile is dropped); drop the expired ones, so the tables stay bounded by retention
        times the live keys."""
        now = time.time()
        insert = (
            "INSERT OR REPLACE INTO {} (environment_id, instance, start, data) VALUES (?, ?, ?, ?)"
        )
        with self.transaction() as db:
            ids = {
                r[0]: r[1]
                for r in db.execute(
                    "SELECT name, id FROM environments WHERE status != 'Terminated'"
                )
            }
            by_id = [(ids[r[0]], *r[1:]) for r in rows if r[0] in ids]
            db.executemany(insert.format("metrics"), by_id)
            db.execute("DELETE FROM metrics WHERE start < ?", (now - keep_s,))
            if rollups:
                rolled = [(ids[r[0]], *r[1:]) for r in rollups if r[0] in ids]
                db.executemany(insert.format("metrics_rollup"), rolled)
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
            f"SELECT start, data FROM {table} WHERE environment_id = {_ID_OF_NAME}"  # noqa: S608
            " AND instance = ?"
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
        environment_id: str | None = None,
    ) -> Event:
        """Record an event of the environment ``environment_id``, or else of the one the
        name ``environment`` means now. Callers that hold the environment pass its id: an
        event that comes late (after a terminate) must not land on a re-created namesake."""
        if environment_id is not None:
            environment = self.environment_by_id(environment_id).name
        elif environment is not None:
            environment_id = self._environment_id(environment)
        request_id = current_request.get()
        message = self.redact(environment_id, message)
        with self.transaction() as db:
            # Distinct milliseconds: EB's clients page events by "after the last one's time
            # + 1 ms", and would never see a second event stamped in the same millisecond.
            now = max(time.time(), self._last_event_time + 0.001)
            self._last_event_time = now
            cur = db.execute(
                "INSERT INTO events (time, severity, environment_id, application, version_label,"
                " message, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, severity, environment_id, application, version_label, message, request_id),
            )
            event_id = cur.lastrowid or 0
        event = Event(
            event_id,
            now,
            severity,
            environment,
            application,
            version_label,
            message,
            environment_id,
            request_id,
        )
        for listener in self.event_listeners:
            listener(event)
        return event

    def events(
        self, environment: str | None = None, after: int = 0, limit: int = 500
    ) -> list[Event]:
        """Events of the environment the name means now (`_ID_OF_NAME`), or of all."""
        if environment is None:
            rows = self._query(
                f"{_EVENTS} WHERE ev.id > ? ORDER BY ev.id DESC LIMIT ?", after, limit
            )
        else:
            rows = self._query(
                f"{_EVENTS} WHERE ev.environment_id = {_ID_OF_NAME} AND ev.id > ?"
                " ORDER BY ev.id DESC LIMIT ?",
                environment,
                after,
                limit,
            )
        return [_event(r) for r in reversed(rows)]

    def find_events(
        self,
        *,
        application: str | None = None,
        environment_id: str | None = None,
        version_label: str | None = None,
        request_id: str | None = None,
        severities: tuple[str, ...] = (),
        start: float | None = None,
        end: float | None = None,
        before_id: int | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """Events matching every filter given, newest first (EB's DescribeEvents)."""
        where, args = ["1 = 1"], []
        for clause, value in (
            ("ev.application = ?", application),
            ("ev.environment_id = ?", environment_id),
            ("ev.version_label = ?", version_label),
            ("ev.request_id = ?", request_id),
            ("ev.time >= ?", start),
            ("ev.time < ?", end),
            ("ev.id < ?", before_id),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        if severities:
            where.append(f"ev.severity IN ({', '.join('?' for _ in severities)})")
            args.extend(severities)
        rows = self._query(
            f"{_EVENTS} WHERE {' AND '.join(where)} ORDER BY ev.id DESC LIMIT ?",
            *args,
            limit,
        )
        return [_event(r) for r in rows]

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
        """Start an operation on the live environment named ``environment``."""
        env_id = self.environment(environment).id
        with self.transaction() as db:
            running = db.execute(
                "SELECT kind FROM operations WHERE environment_id = ? AND status = 'running'",
                (env_id,),
            ).fetchone()
            if running is not None:
                raise Conflict(
                    f"Environment {environment} is busy with a {running['kind']} operation. "
                    f"Wait for it to finish (beanpole events {environment} -f) and try again."
                )
            cur = db.execute(
                "INSERT INTO operations (environment_id, kind, status, target_version,"
                " previous_version, params, started_at, request_id)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                (
                    env_id,
                    kind,
                    target_version,
                    previous_version,
                    json.dumps(params or {}),
                    time.time(),
                    current_request.get(),
                ),
            )
            op_id = cur.lastrowid or 0
        return self.operation(op_id)

    def finish_operation(self, op_id: int, status: OperationStatus, message: str) -> None:
        # the message may end with a command's output: secrets hidden, as in events
        message = self.redact(self._operation_environment_id(op_id), message)
        with self.transaction() as db:
            db.execute(
                "UPDATE operations SET status = ?, message = ?, finished_at = ? WHERE id = ?",
                (status, message, time.time(), op_id),
            )

    def _operation_environment_id(self, op_id: int) -> str | None:
        rows = self._query("SELECT environment_id FROM operations WHERE id = ?", op_id)
        return str(rows[0][0]) if rows and rows[0][0] else None

    def operation(self, op_id: int) -> Operation:
        rows = self._query(f"{_OPERATIONS} WHERE o.id = ?", op_id)
        if not rows:
            raise NotFound(f"No operation {op_id}.")
        return _operation(rows[0])

    def last_operation(self, environment: str, kinds: tuple[str, ...]) -> Operation | None:
        marks = ", ".join("?" for _ in kinds)
        rows = self._query(
            f"{_OPERATIONS} WHERE o.environment_id = {_ID_OF_NAME}"
            f" AND o.kind IN ({marks}) ORDER BY o.id DESC LIMIT 1",
            environment,
            *kinds,
        )
        return _operation(rows[0]) if rows else None

    def running_operations(self) -> list[Operation]:
        rows = self._query(f"{_OPERATIONS} WHERE o.status = 'running' ORDER BY o.id")
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
        r["id"],
        ebextensions_origins=json.loads(r["ebextensions_origins"]),
        platform=r["platform"],
        steps=Steps.from_json(r["steps"]),
    )


def _application(r: sqlite3.Row) -> Application:
    return Application(r["name"], r["created_at"], r["id"])


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
        id=r["id"],
        desired_capacity=r["desired_capacity"],
        platform=r["platform"],
        saved_configuration=r["saved_configuration"],
        saved_settings=json.loads(r["saved_settings"]),
        version_origins=json.loads(r["version_origins"] or "{}"),
        scheduled_bounds=(
            Override.from_dict(json.loads(r["scheduled_bounds"])) if r["scheduled_bounds"] else None
        ),
        scaling=json.loads(r["scaling"] or "{}"),
    )


def _saved(r: sqlite3.Row) -> SavedConfiguration:
    return SavedConfiguration(
        application=r["application"],
        name=r["name"],
        settings=json.loads(r["settings"]),
        created_at=r["created_at"],
        description=r["description"],
        platform=r["platform"],
        environment=r["environment"],
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
        environment_id=r["environment_id"],
        process_ports=json.loads(r["process_ports"]),
        run_as=r["run_as"],
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
        r["environment_id"],
        r["request_id"],
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
        environment_id=r["environment_id"],
        request_id=r["request_id"],
    )


def _certificate(r: sqlite3.Row) -> CertificateRecord:
    return CertificateRecord(
        name=r["name"],
        domains=tuple(json.loads(r["domains"])),
        not_before=r["not_before"],
        not_after=r["not_after"],
        fingerprint=r["fingerprint"],
        serial=r["serial"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )
