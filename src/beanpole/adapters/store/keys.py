"""Access keys in the state database: the credentials SigV4-signed requests are checked with.

The secret is stored as given, not hashed: a SigV4 signature is an HMAC made with the
secret, so the server can only check one if it holds the secret itself (as AWS does). What
protects it is the database file's mode: 0600, the server owner's alone (`Home.prepare`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from beanpole.adapters.store.db import Store


@dataclass(frozen=True)
class AccessKeyRecord:
    id: str
    secret: str
    created_at: float
    revoked_at: float | None
    last_used_at: float | None
    description: str

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class AccessKeyStore:
    """The ``access_keys`` table, through the `Store`'s writer transaction and readers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, key: AccessKeyRecord) -> bool:
        """Store ``key``; False if its id is taken (by a key live or revoked)."""
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO access_keys"
                " (id, secret, created_at, revoked_at, last_used_at, description)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key.id,
                    key.secret,
                    key.created_at,
                    key.revoked_at,
                    key.last_used_at,
                    key.description,
                ),
            )
            return cur.rowcount == 1

    def get(self, key_id: str) -> AccessKeyRecord | None:
        rows = self.store._query("SELECT * FROM access_keys WHERE id = ?", key_id)
        return _record(rows[0]) if rows else None

    def all(self) -> list[AccessKeyRecord]:
        """Every key, revoked ones too, oldest first."""
        rows = self.store._query("SELECT * FROM access_keys ORDER BY created_at, id")
        return [_record(r) for r in rows]

    def active_secrets(self) -> dict[str, str]:
        """The secret of every key that is not revoked, by id."""
        rows = self.store._query("SELECT id, secret FROM access_keys WHERE revoked_at IS NULL")
        return {str(r["id"]): str(r["secret"]) for r in rows}

    def revoke(self, key_id: str, at: float) -> AccessKeyRecord | None:
        """Mark the key revoked at ``at`` (a key revoked before keeps its first time); the
        key as it now is, or None if there is no such key."""
        with self.store.transaction() as db:
            db.execute(
                "UPDATE access_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (at, key_id),
            )
            row = db.execute("SELECT * FROM access_keys WHERE id = ?", (key_id,)).fetchone()
        return _record(row) if row is not None else None

    def touch(self, key_id: str, at: float) -> None:
        """Record that the key signed a request at ``at``."""
        with self.store.transaction() as db:
            db.execute("UPDATE access_keys SET last_used_at = ? WHERE id = ?", (at, key_id))


def _record(row: sqlite3.Row) -> AccessKeyRecord:
    return AccessKeyRecord(
        id=row["id"],
        secret=row["secret"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        description=row["description"],
    )
