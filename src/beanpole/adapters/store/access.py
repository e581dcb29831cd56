"""API tokens and the audit log in the state database (`core.access`)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from beanpole.adapters.store.db import Store
from beanpole.core.access import Role

AUDIT_KEPT = 100_000  # rows of known callers; the oldest go first
ANONYMOUS_KEPT = 10_000  # rows of refused strangers, kept apart: they cannot push out changes
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    role: Role
    application: str | None
    secret_hash: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class AuditRecord:
    time: float
    actor: str
    role: str | None
    application: str | None
    environment: str | None
    action: str  # "POST /api/v1/environments/shop/deploy", "UpdateEnvironment"
    status: int
    source: str  # the client's address (and user agent)
    request_id: str | None = None
    id: int = 0


class AccessStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # tokens --------------------------------------------------------------------------

    def add_token(self, token: TokenRecord) -> None:
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO api_tokens (id, name, role, application, secret_hash, created_at,"
                " last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token.id,
                    token.name,
                    str(token.role),
                    token.application,
                    token.secret_hash,
                    token.created_at,
                    token.last_used_at,
                    token.revoked_at,
                ),
            )

    def token(self, token_id: str) -> TokenRecord | None:
        rows = self.store._query("SELECT * FROM api_tokens WHERE id = ?", token_id)
        return _token(rows[0]) if rows else None

    def tokens(self) -> list[TokenRecord]:
        rows = self.store._query("SELECT * FROM api_tokens ORDER BY created_at, id")
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str, at: float) -> TokenRecord | None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (at, token_id),
            )
            row = db.execute("SELECT * FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        return _token(row) if row is not None else None

    def touch_token(self, token_id: str, at: float) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (at, token_id))

    # audit ---------------------------------------------------------------------------

    def record(self, entry: AuditRecord) -> None:
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT INTO audit (time, actor, role, application, environment, action,"
                " status, source, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.time,
                    entry.actor,
                    entry.role,
                    entry.application,
                    entry.environment,
                    entry.action,
                    entry.status,
                    entry.source,
                    entry.request_id,
                ),
            )
            if (cur.lastrowid or 0) % 1000 == 0:
                for anonymous, kept in ((True, ANONYMOUS_KEPT), (False, AUDIT_KEPT)):
                    which = "actor = ?" if anonymous else "actor != ?"
                    db.execute(
                        f"DELETE FROM audit WHERE {which} AND id <= (SELECT id FROM audit"  # noqa: S608
                        f" WHERE {which} ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        (ANONYMOUS, ANONYMOUS, kept),
                    )

    def entries(self, application: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """The newest ``limit`` entries (of ``application``), newest last."""
        if application is None:
            rows = self.store._query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", limit)
        else:
            rows = self.store._query(
                "SELECT * FROM audit WHERE application = ? ORDER BY id DESC LIMIT ?",
                application,
                limit,
            )
        return [_audit(r) for r in reversed(rows)]


def _token(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        application=row["application"],
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def _audit(row: sqlite3.Row) -> AuditRecord:
    return AuditRecord(
        id=row["id"],
        time=row["time"],
        actor=row["actor"],
        role=row["role"],
        application=row["application"],
        environment=row["environment"],
        action=row["action"],
        status=row["status"],
        source=row["source"],
        request_id=row["request_id"],
    )
