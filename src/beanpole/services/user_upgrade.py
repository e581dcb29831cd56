"""At start, instances from before each application had a user of its own are replaced.

A home upgraded in place keeps running its instances as the one user every application
shared (``webapp``, or ``$BEANPOLE_APP_USER``) until each environment's next deployment.
When each application now has a user of its own (Beanpole is root, no shared user), the
server, once started, deploys the current version of every environment that still runs such
instances again, through the normal deployment path (`Environments.deploy`, as EB's
RebuildEnvironment): the environment's deployment policy replaces them without dropping a
request, and a failure rolls back as any deployment's does. `core.user_upgrade` decides which
environments need it; an event on each says why.

It runs in the background, so the server's start waits for none of it. An environment in the
middle of an operation (a repair after a crash, say) is deployed once it is Ready again, for
up to `PATIENCE_S`. Each environment is deployed again at most once per server start: one
whose deployment failed keeps its instances until the next start or deploy. Nothing here
raises: errors are logged and become events.
"""

from __future__ import annotations

import asyncio
import logging

from beanpole.adapters.appuser import AppUsers
from beanpole.adapters.clock import SystemClock
from beanpole.api import inputs
from beanpole.core.clock import Clock
from beanpole.core.errors import BeanpoleError, Conflict, NotFound, unexpected
from beanpole.core.model import Severity
from beanpole.core.user_upgrade import StaleUsers, stale_users
from beanpole.services.environments import Environments

log = logging.getLogger(__name__)

POLL_S = 5.0  # how often an environment that was not Ready is looked at again
PATIENCE_S = 3600.0  # how long one is waited for before it is left to its next deployment


class UserUpgrade:
    def __init__(
        self,
        environments: Environments,
        users: AppUsers,
        *,
        clock: Clock | None = None,
        poll_s: float = POLL_S,
        patience_s: float = PATIENCE_S,
    ) -> None:
        self.environments = environments
        self.users = users
        self.clock: Clock = clock or SystemClock()
        self.poll_s = poll_s
        self.patience_s = patience_s

    def plan(self) -> list[StaleUsers]:
        """The environments whose instances do not all run as their application's user."""
        if not self.users.per_application:
            return []
        store = self.environments.store
        own = {
            app.name: name
            for app in store.applications()
            if (name := self.users.own_name(app)) is not None
        }
        return stale_users(store.environments(), store.instances(), own)

    async def run(self) -> None:
        """Deploy each such environment again once it is Ready; never raises but when
        cancelled (the server stopping)."""
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("replacing the instances that run as a shared user failed")

    async def _run(self) -> None:
        plan = self.plan()  # a few reads of the store, as the reconciler's every tick
        pending = {stale.environment.id for stale in plan}
        if not pending:
            return
        log.info(
            "%d environment(s) run instances as another user than their application's own: "
            "deploying them again (%s)",
            len(pending),
            ", ".join(stale.environment.name for stale in plan),
        )
        deadline = self.clock.monotonic() + self.patience_s
        while True:
            for stale in plan:
                if stale.environment.id in pending and await self._replace(stale):
                    pending.discard(stale.environment.id)
            if not pending:
                return
            if self.clock.monotonic() >= deadline:
                break
            await self.clock.sleep(self.poll_s)
            plan = self.plan()
            # one deployed meanwhile (or terminated) needs nothing more
            pending &= {stale.environment.id for stale in plan}
        for stale in plan:
            if stale.environment.id in pending:
                self._event(
                    stale,
                    f"{len(stale.instances)} instance(s) still run as another user than "
                    f"{stale.user}: the environment was not Ready for "
                    f"{self.patience_s / 60:.0f} min. Deploy it to replace them.",
                    Severity.WARN,
                )

    async def _replace(self, stale: StaleUsers) -> bool:
        """Start the environment's deployment if it is Ready; False: not now, try later."""
        ops, store = self.environments.ops, self.environments.store
        try:
            env = store.environment_by_id(stale.environment.id)
        except NotFound:
            return True
        stale = StaleUsers(env, stale.user, stale.instances)
        label = env.version_label
        if label is None or not stale.startable or ops.busy(env.name):
            return False
        self._event(stale, stale.message(), Severity.INFO)
        try:
            await self.environments.deploy(env.name, inputs.Deploy(version_label=label))
        except Conflict:  # another operation came first: it is looked at again later
            return False
        except BeanpoleError as exc:
            self._failed(stale, exc.message)
        except Exception as exc:
            log.exception("could not deploy %s again", env.name)
            self._failed(stale, unexpected(exc))
        return True

    def _failed(self, stale: StaleUsers, why: str) -> None:
        self._event(
            stale,
            f"Could not deploy version {stale.environment.version_label} again to replace "
            f"the instances that run as another user than {stale.user}: {why}",
            Severity.WARN,
        )

    def _event(self, stale: StaleUsers, message: str, severity: Severity) -> None:
        env = stale.environment
        self.environments.store.add_event(
            message,
            severity=severity,
            environment_id=env.id,
            application=env.application,
            version_label=env.version_label,
        )
