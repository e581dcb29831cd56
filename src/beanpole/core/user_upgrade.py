"""Which environments still run instances as another user than their application's own.

Homes from before each application had a user of its own ran every application as one shared
user (``webapp``, or ``$BEANPOLE_APP_USER``), and an upgrade of Beanpole in place leaves those
instances running as it until their environment's next deployment: not isolated from each
other. At start the server asks `stale_users` which environments these are and deploys each
one's current version again (`services.user_upgrade`): the new instances run as the
application's own user, and the old ones leave as in any deployment.

An instance records the user it was started as (`Instance.run_as`); one started before
Beanpole recorded it has none, and is counted as running as another user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from beanpole.core.model import Environment, EnvStatus, Instance, InstanceState

# on their way out already: a deployment would not replace them
LEAVING = frozenset({InstanceState.DRAINING, InstanceState.STOPPING, InstanceState.STOPPED})
UNRECORDED = "the user all applications shared then (not recorded)"


@dataclass(frozen=True)
class StaleUsers:
    """An environment with live instances that do not run as its application's user."""

    environment: Environment
    user: str  # the application's own user, which new instances run as
    instances: tuple[Instance, ...]  # those running as another user (or an unrecorded one)

    @property
    def startable(self) -> bool:
        """A redeployment may start now: Ready with a version (no operation in progress)."""
        env = self.environment
        return env.status is EnvStatus.READY and env.version_label is not None

    @property
    def old_users(self) -> tuple[str | None, ...]:
        """The users they run as, recorded ones by name first, then None (not recorded)."""
        found = {i.run_as for i in self.instances}
        return (*sorted(u for u in found if u is not None), *((None,) if None in found else ()))

    def message(self) -> str:
        """The event that says why the environment is deployed again."""
        users = " or ".join(UNRECORDED if u is None else u for u in self.old_users)
        ids = ", ".join(i.id for i in self.instances)
        return (
            f"Replacing {len(self.instances)} instance(s) ({ids}) that run as {users}, from "
            "before each application had a user of its own, with instances running as "
            f"{self.user}: deploying version {self.environment.version_label} again."
        )


def stale_users(
    environments: Iterable[Environment],
    instances: Iterable[Instance],
    own_users: Mapping[str, str],
) -> list[StaleUsers]:
    """The environments with a live instance that runs as another user than its
    application's own, or whose user was not recorded, in the order given.

    ``own_users``: application name -> the name of its own user. It is empty when
    applications have no user of their own (one shared user for all, or Beanpole is not
    root): nothing is stale then. An application missing from it is left alone, and so are
    terminated environments and instances already leaving (draining, stopping, stopped).
    """
    if not own_users:
        return []
    by_env: dict[str, list[Instance]] = {}
    for instance in instances:
        if instance.state not in LEAVING:
            key = instance.environment_id or instance.environment
            by_env.setdefault(key, []).append(instance)
    out = []
    for env in environments:
        user = own_users.get(env.application)
        if user is None or env.status is EnvStatus.TERMINATED:
            continue
        live = by_env.get(env.id or env.name, [])
        stale = tuple(i for i in live if i.run_as != user)
        if stale:
            out.append(StaleUsers(env, user, stale))
    return out
