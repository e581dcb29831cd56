"""A release: a version plus the snapshot of settings it ran with.

Rollback restores both halves, so a release is what deployments, repairs and rollbacks
pass around. It lives in the core, not beside the operations that record it, because the
deployment runner, the repairs and the faces all speak of it and none of them should have
to import the operations to do so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from beanpole.core.settings import ResolvedSettings


@dataclass(frozen=True)
class Release:
    version_label: str
    digest: str
    settings: ResolvedSettings
    ebextensions: dict[str, str] = field(default_factory=dict)  # the version's layer
    warnings: tuple[str, ...] = ()  # what its .ebextensions had ignored

    @property
    def key(self) -> str:
        return self.settings.release_key(self.digest)
