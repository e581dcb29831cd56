"""Console users and signed-in sessions in the state database (`0019_console.sql`)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from beanpole.adapters.store.db import Store


@dataclass(frozen=True)
class UserRecord:
    name: str
    password_hash: str
    created_at: float
    last_sign_in_at: float | None


@dataclass(frozen=True)
class SessionRecord:
    id_hash: str
    user: str
    method: str  # "password" or "token"
    csrf_token: str
    created_at: float
    expires_at: float


class UserStore:
    """The ``users`` and ``sessions`` tables, through the `Store`'s writer and readers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # users ---------------------------------------------------------------------------

    def add(self, user: UserRecord) -> bool:
        """Store ``user``; False if the name is taken."""
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO users (name, password_hash, created_at, last_sign_in_at)"
                " VALUES (?, ?, ?, ?)",
                (user.name, user.password_hash, user.created_at, user.last_sign_in_at),
            )
            return cur.rowcount == 1

    def get(self, name: str) -> UserRecord | None:
        rows = self.store._query("SELECT * FROM users WHERE name = ?", name)
        return _user(rows[0]) if rows else None

    def all(self) -> list[UserRecord]:
        return [_user(r) for r in self.store._query("SELECT * FROM users ORDER BY name")]

    def set_password(self, name: str, password_hash: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name))

    def signed_in(self, name: str, at: float) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE users SET last_sign_in_at = ? WHERE name = ?", (at, name))

    def remove(self, name: str) -> bool:
        """Delete the user and end their sessions; False if there was no such user."""
        with self.store.transaction() as db:
            cur = db.execute("DELETE FROM users WHERE name = ?", (name,))
            db.execute("DELETE FROM sessions WHERE user = ? AND method = 'password'", (name,))
            return cur.rowcount == 1

    # sessions ------------------------------------------------------------------------

    def add_session(self, session: SessionRecord) -> None:
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO sessions (id_hash, user, method, csrf_token, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session.id_hash,
                    session.user,
                    session.method,
                    session.csrf_token,
                    session.created_at,
                    session.expires_at,
                ),
            )
            # Expired sessions go whenever a new one comes: the table stays bounded.
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (session.created_at,))

    def session(self, id_hash: str) -> SessionRecord | None:
        rows = self.store._query("SELECT * FROM sessions WHERE id_hash = ?", id_hash)
        return _session(rows[0]) if rows else None

    def end_session(self, id_hash: str) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))


def _user(row: sqlite3.Row) -> UserRecord:
    return UserRecord(
        name=str(row["name"]),
        password_hash=str(row["password_hash"]),
        created_at=float(row["created_at"]),
        last_sign_in_at=row["last_sign_in_at"],
    )


def _session(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(
        id_hash=str(row["id_hash"]),
        user=str(row["user"]),
        method=str(row["method"]),
        csrf_token=str(row["csrf_token"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
    )
