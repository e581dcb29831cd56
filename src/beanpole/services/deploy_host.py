"""What a deployment run needs from the operations that start it, and nothing more.

`DeploymentRun` takes this protocol instead of the `Operations` class: the operations
create runs, so a runner that imported them back would make the two modules a cycle, and
a narrow protocol also says exactly what a test must provide to drive a run.
"""

from __future__ import annotations

from typing import Protocol

from beanpole.adapters.build import Artifact
from beanpole.adapters.lb.requests import RequestStream
from beanpole.adapters.store.db import Store
from beanpole.core.model import Environment, Instance
from beanpole.core.release import Release
from beanpole.services.fleet import Fleet


class DeployHost(Protocol):
    """The operations as a deployment run sees them (`Operations` is the one implementation)."""

    @property
    def fleet(self) -> Fleet:
        """Launches, probes, drains and stops instances."""

    @property
    def store(self) -> Store:
        """Where instances and events are recorded."""

    @property
    def requests(self) -> RequestStream | None:
        """The request stream the gate taps for error rates and latency, if one runs."""

    async def artifact(
        self, env: Environment, release: Release, deployment_id: int | None = None
    ) -> Artifact:
        """The release's build, built first if it is not yet, in the deployment's own folder
        where it has one."""

    def instances_started(self, env_name: str, release_key: str) -> None:
        """New instances of the release have started: its postdeploy hooks may run."""

    async def bring_up(
        self, env: Environment, release: Release, count: int, *, deployment_id: int
    ) -> list[Instance]:
        """Launch ``count`` instances of ``release`` and put them in service (the rollback's
        way back to full capacity)."""
