"""The version lifecycle: keep an application's newest N versions, never a deployed one."""

from __future__ import annotations

from collections.abc import Sequence

from beanpole.core.model import Version


def versions_to_delete(versions: Sequence[Version], keep: int, in_use: set[str]) -> list[Version]:
    """Versions beyond the newest ``keep`` (0: keep all), except those ``in_use`` (pure)."""
    if keep <= 0:
        return []
    newest_first = sorted(versions, key=lambda v: v.created_at, reverse=True)
    return [v for v in newest_first[keep:] if v.label not in in_use]
