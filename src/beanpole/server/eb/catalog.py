"""Every EB action Beanpole answers, by name; the handlers are in `actions/`, one module
per kind of resource. An action not listed answers 400 ``InvalidAction``."""

from __future__ import annotations

from beanpole.server.eb.actions import (
    applications,
    configuration,
    environments,
    events,
    health,
    platforms,
    tags,
    versions,
)
from beanpole.server.eb.actions.base import Action

ACTIONS: dict[str, Action] = {
    **applications.ACTIONS,
    **versions.ACTIONS,
    **environments.ACTIONS,
    **configuration.ACTIONS,
    **events.ACTIONS,
    **health.ACTIONS,
    **platforms.ACTIONS,
    **tags.ACTIONS,
}

__all__ = ["ACTIONS", "Action"]
