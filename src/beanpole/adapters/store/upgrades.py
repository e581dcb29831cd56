"""Migration steps SQL alone cannot do, run right after the SQL file of the same name.

SQLite has no way to mint ids in Beanpole's alphabet, nor to resolve settings over their
defaults, so those steps are Python, inside the migration's transaction: a failure leaves
the database as it was and the migration is tried again at the next start.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from beanpole.core.capacity import bounds
from beanpole.core.ids import new_application_id, new_environment_id, new_version_id
from beanpole.core.settings import resolve

# table, its time column: a record belongs to the latest environment row of its name that
# was created at or before that time (several rows share a name after a terminate)
_LINKED = (
    ("instances", "created_at"),
    ("events", "time"),
    ("releases", "created_at"),
    ("operations", "started_at"),
    ("metrics", "start"),
    ("metrics_rollup", "start"),
)


def _mint(db: sqlite3.Connection, table: str, key: str, new_id: Callable[[], str]) -> None:
    rows = db.execute(f"SELECT {key} FROM {table} WHERE id IS NULL").fetchall()  # noqa: S608
    for (row_key,) in rows:
        db.execute(f"UPDATE {table} SET id = ? WHERE {key} = ?", (new_id(), row_key))  # noqa: S608


def stable_ids(db: sqlite3.Connection) -> None:
    """Give every application, version and environment row an id, and link each record
    to the environment row it belonged to, by time when several rows share its name."""
    _mint(db, "applications", "name", new_application_id)
    _mint(db, "versions", "rowid", new_version_id)
    _mint(db, "environments", "seq", new_environment_id)
    for table, at in _LINKED:
        # Before the first row of its name (clocks step back): the first row. Table and
        # column names come from _LINKED above, never from input.
        latest_before = (
            f"SELECT e.id FROM environments e WHERE e.name = {table}.environment"  # noqa: S608
            f" AND e.created_at <= {table}.{at} ORDER BY e.created_at DESC, e.seq DESC LIMIT 1"
        )
        first = (
            f"SELECT e.id FROM environments e WHERE e.name = {table}.environment"  # noqa: S608
            " ORDER BY e.seq LIMIT 1"
        )
        db.execute(
            f"UPDATE {table} SET environment_id = COALESCE(({latest_before}), ({first}))"  # noqa: S608
            f" WHERE {table}.environment IS NOT NULL"
        )


def desired_capacity(db: sqlite3.Connection) -> None:
    """Every environment runs on as before: its desired count is the MinSize it resolves to
    (over its version's .ebextensions and the defaults)."""
    rows = db.execute(
        "SELECT e.seq, e.settings, v.ebextensions FROM environments e LEFT JOIN versions v"
        " ON v.application = e.application AND v.label = e.version_label"
        " WHERE e.desired_capacity IS NULL"
    ).fetchall()
    for seq, settings, layer in rows:
        count = bounds(resolve(json.loads(layer or "{}"), json.loads(settings))).min_size
        db.execute("UPDATE environments SET desired_capacity = ? WHERE seq = ?", (count, seq))


STEPS: dict[str, Callable[[sqlite3.Connection], None]] = {
    "0008_stable_ids": stable_ids,
    "0010_desired_capacity": desired_capacity,
}
