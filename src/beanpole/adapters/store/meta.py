"""What Elastic Beanstalk's resources carry beyond Beanpole's own records: a description,
tags, and a few values kept as the client gave them (an environment's solution stack and
its option settings verbatim, an application's lifecycle configuration, a version's S3
source). One row per resource, keyed by its kind and id (`0016_eb_api.sql`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from beanpole.adapters.store.db import Store


@dataclass(frozen=True)
class Meta:
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class ResourceMeta:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, kind: str, key: str) -> Meta:
        rows = self.store._query(
            "SELECT description, tags, extra FROM resource_meta WHERE kind = ? AND key = ?",
            kind,
            key,
        )
        if not rows:
            return Meta()
        return Meta(rows[0][0], json.loads(rows[0][1]), json.loads(rows[0][2]))

    def update(
        self,
        kind: str,
        key: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Meta:
        """Change what is given; ``extra`` is merged key by key (a None value removes one)."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT description, tags, extra FROM resource_meta WHERE kind = ? AND key = ?",
                (kind, key),
            ).fetchone()
            old = Meta(row[0], json.loads(row[1]), json.loads(row[2])) if row else Meta()
            merged = {**old.extra, **(extra or {})}
            new = Meta(
                old.description if description is None else description,
                old.tags if tags is None else tags,
                {k: v for k, v in merged.items() if v is not None},
            )
            db.execute(
                "INSERT OR REPLACE INTO resource_meta (kind, key, description, tags, extra)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind, key, new.description, json.dumps(new.tags), json.dumps(new.extra)),
            )
        return new

    def delete(self, kind: str, key: str) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM resource_meta WHERE kind = ? AND key = ?", (kind, key))
