"""The version lifecycle: keep an application's newest N versions, never a deployed one."""

from __future__ import annotations

from collections.abc import Sequence

from beanpole.core.model import Version

DAY_S = 86400.0


def versions_to_delete(
    versions: Sequence[Version],
    keep: int,
    in_use: set[str],
    max_age_days: int = 0,
    now: float = 0.0,
) -> list[Version]:
    """Versions beyond the newest ``keep`` (0: keep all) or older than ``max_age_days``
    at ``now`` (0: any age; EB's MaxAgeRule), except those ``in_use`` (pure)."""
    newest_first = sorted(versions, key=lambda v: v.created_at, reverse=True)
    doomed = newest_first[keep:] if keep > 0 else []
    if max_age_days > 0:
        oldest = now - max_age_days * DAY_S
        doomed += [v for v in newest_first if v.created_at < oldest and v not in doomed]
    return [v for v in doomed if v.label not in in_use]
