"""Instances from before each application had a user of its own: which environments still
run them (`core.user_upgrade`, pure), and the server's start deploying those again
(`services.user_upgrade`, over a real store and a stand-in for the deployments)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from beanpole.adapters.appuser import APP_USER_ENV, AppUsers, user_name
from beanpole.adapters.store.db import Store
from beanpole.core.errors import InvalidInput
from beanpole.core.model import (
    Environment,
    EnvStatus,
    Health,
    Instance,
    InstanceState,
    Severity,
)
from beanpole.core.user_upgrade import stale_users
from beanpole.services.user_upgrade import POLL_S, UserUpgrade
from beanpole.testing.clock import ManualClock, settle


def _env(
    name: str,
    app: str = "shop",
    status: EnvStatus = EnvStatus.READY,
    version: str | None = "v1",
) -> Environment:
    return Environment(
        name, app, name, status, Health.GREEN, version, {}, 1, 0.0, 0.0, id=f"e-{name}"
    )


def _instance(
    id: str, env: str, run_as: str | None, state: InstanceState = InstanceState.IN_SERVICE
) -> Instance:
    return Instance(
        id, env, "v1", "k", 1, 20001, state, 0.0, environment_id=f"e-{env}", run_as=run_as
    )


OWN = {"shop": "bp-1111", "blog": "bp-2222"}


def test_instances_of_a_shared_or_unrecorded_user_make_their_environment_stale():
    envs = [_env("shop-prod"), _env("blog-prod", app="blog"), _env("shop-test")]
    instances = [
        _instance("i-1", "shop-prod", None),  # started before the user was recorded
        _instance("i-2", "shop-prod", "webapp"),  # the shared user
        _instance("i-3", "shop-prod", "bp-1111"),  # already its own
        _instance("i-4", "blog-prod", "bp-2222"),
        _instance("i-5", "shop-test", "bp-1111"),
    ]
    (stale,) = stale_users(envs, instances, OWN)
    assert stale.environment.name == "shop-prod"
    assert stale.user == "bp-1111"
    assert [i.id for i in stale.instances] == ["i-1", "i-2"]
    assert stale.old_users == ("webapp", None)
    assert stale.startable


def test_another_applications_user_is_another_user_too():
    envs = [_env("shop-prod")]
    (stale,) = stale_users(envs, [_instance("i-1", "shop-prod", "bp-2222")], OWN)
    assert stale.old_users == ("bp-2222",)


def test_nothing_is_stale_without_users_of_their_own():
    """Users disabled (Beanpole is not root) or one shared user: the caller passes none."""
    envs = [_env("shop-prod")]
    assert stale_users(envs, [_instance("i-1", "shop-prod", None)], {}) == []


def test_instances_leaving_and_terminated_environments_are_left_alone():
    envs = [_env("shop-prod"), _env("shop-old", status=EnvStatus.TERMINATED)]
    instances = [
        _instance("i-1", "shop-prod", None, InstanceState.DRAINING),
        _instance("i-2", "shop-prod", None, InstanceState.STOPPING),
        _instance("i-3", "shop-prod", None, InstanceState.STOPPED),
        _instance("i-4", "shop-prod", "bp-1111"),
        _instance("i-5", "shop-old", None),
    ]
    assert stale_users(envs, instances, OWN) == []


def test_pending_and_standby_instances_count():
    envs = [_env("shop-prod")]
    instances = [
        _instance("i-1", "shop-prod", None, InstanceState.PENDING),
        _instance("i-2", "shop-prod", "webapp", InstanceState.STANDBY),
    ]
    (stale,) = stale_users(envs, instances, OWN)
    assert [i.id for i in stale.instances] == ["i-1", "i-2"]


def test_an_application_without_a_user_here_is_left_alone():
    envs = [_env("wiki-prod", app="wiki")]
    assert stale_users(envs, [_instance("i-1", "wiki-prod", None)], OWN) == []


@pytest.mark.parametrize(
    ("status", "version", "startable"),
    [
        (EnvStatus.READY, "v1", True),
        (EnvStatus.UPDATING, "v1", False),
        (EnvStatus.LAUNCHING, "v1", False),
        (EnvStatus.READY, None, False),
    ],
)
def test_only_a_ready_environment_with_a_version_can_be_deployed_again(status, version, startable):
    envs = [_env("shop-prod", status=status, version=version)]
    (stale,) = stale_users(envs, [_instance("i-1", "shop-prod", None)], OWN)
    assert stale.startable is startable


def test_the_event_says_whom_they_run_as_and_whom_the_new_ones_will():
    envs = [_env("shop-prod")]
    instances = [_instance("i-1", "shop-prod", "webapp"), _instance("i-2", "shop-prod", None)]
    (stale,) = stale_users(envs, instances, OWN)
    assert stale.message() == (
        "Replacing 2 instance(s) (i-1, i-2) that run as webapp or the user all applications "
        "shared then (not recorded), from before each application had a user of its own, "
        "with instances running as bp-1111: deploying version v1 again."
    )


# the service ---------------------------------------------------------------------------


@dataclass
class _Ops:
    busy_names: set[str] = field(default_factory=set)

    def busy(self, name: str) -> bool:
        return name in self.busy_names


@dataclass
class _Environments:
    """What `UserUpgrade` uses of `services.environments.Environments`: the store, the
    operations' `busy`, and `deploy` (recorded; it sets the environment Updating)."""

    store: Store
    ops: _Ops = field(default_factory=_Ops)
    deployed: list[tuple[str, str | None]] = field(default_factory=list)
    fail: Exception | None = None

    async def deploy(self, name: str, spec: Any) -> None:
        if self.fail is not None:
            raise self.fail
        self.deployed.append((name, spec.version_label))
        self.store.update_environment(name, status=EnvStatus.UPDATING)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "s.db")
    yield s
    s.close()


@pytest.fixture
def users(tmp_path, monkeypatch):
    monkeypatch.delenv(APP_USER_ENV, raising=False)
    return AppUsers(tmp_path, enabled=True)


def _running(store: Store, name: str, run_as: str | None, status=EnvStatus.READY) -> str:
    """An environment of application ``shop`` running two instances as ``run_as``."""
    store.ensure_application("shop")
    env = store.create_environment(name, "shop", name, {})
    store.update_environment(name, status=status, version_label="v1")
    for n in range(2):
        store.add_instance(
            Instance(
                f"i-{name}-{n}", name, "v1", "k", 1, 20001 + n, InstanceState.IN_SERVICE,
                time.time(), environment_id=env.id, run_as=run_as,
            )
        )  # fmt: skip
    return env.id


def _own(store: Store) -> str:
    (app,) = store.applications()
    return user_name(app)


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (the suite uses no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def test_start_deploys_again_the_environments_that_run_as_a_shared_user(store, users):
    _running(store, "shop-prod", None)
    _running(store, "shop-test", "webapp")
    own = _own(store)
    _running(store, "shop-new", own)
    envs = _Environments(store)
    asyncio.run(UserUpgrade(envs, users).run())  # type: ignore[arg-type]
    assert envs.deployed == [("shop-prod", "v1"), ("shop-test", "v1")]
    (*_, event) = store.events("shop-prod")
    assert event.severity is Severity.INFO
    assert event.message.startswith("Replacing 2 instance(s) (i-shop-prod-0, i-shop-prod-1)")
    assert event.message.endswith(f"with instances running as {own}: deploying version v1 again.")
    (*_, event) = store.events("shop-test")
    assert "that run as webapp," in event.message
    assert not [e for e in store.events("shop-new") if "Replacing" in e.message]


def test_nothing_happens_when_applications_share_a_user_or_beanpole_is_not_root(
    store, tmp_path, monkeypatch
):
    _running(store, "shop-prod", None)
    for users in (
        AppUsers(tmp_path, enabled=False),
        _shared(tmp_path, monkeypatch),
    ):
        envs = _Environments(store)
        upgrade = UserUpgrade(envs, users)  # type: ignore[arg-type]
        assert upgrade.plan() == []
        asyncio.run(upgrade.run())
        assert envs.deployed == []
    assert not [e for e in store.events("shop-prod") if "Replacing" in e.message]


def _shared(tmp_path, monkeypatch) -> AppUsers:
    monkeypatch.setenv(APP_USER_ENV, "webapp")
    return AppUsers(tmp_path, enabled=True)


@in_loop
async def test_an_environment_mid_operation_is_deployed_once_it_is_ready(store, users):
    _running(store, "shop-prod", None, status=EnvStatus.UPDATING)  # a repair after a crash
    envs = _Environments(store)
    clock = ManualClock()
    task = asyncio.create_task(UserUpgrade(envs, users, clock=clock).run())  # type: ignore[arg-type]
    await settle()
    assert envs.deployed == []
    await clock.advance(POLL_S)
    assert envs.deployed == []  # still Updating
    store.update_environment("shop-prod", status=EnvStatus.READY)
    envs.ops.busy_names.add("shop-prod")  # Ready, but an operation holds it
    await clock.advance(POLL_S)
    assert envs.deployed == []
    envs.ops.busy_names.clear()
    await clock.advance(POLL_S)
    assert envs.deployed == [("shop-prod", "v1")]
    await asyncio.wait_for(task, 1)


@in_loop
async def test_an_environment_deployed_meanwhile_needs_nothing_more(store, users):
    _running(store, "shop-prod", None, status=EnvStatus.UPDATING)
    envs = _Environments(store)
    clock = ManualClock()
    task = asyncio.create_task(UserUpgrade(envs, users, clock=clock).run())  # type: ignore[arg-type]
    await settle()
    for instance in store.instances("shop-prod"):  # the operator deployed it meanwhile
        store.update_instance(instance.id, state=InstanceState.STOPPED)
    store.update_environment("shop-prod", status=EnvStatus.READY)
    await clock.advance(POLL_S)
    await asyncio.wait_for(task, 1)
    assert envs.deployed == []


@in_loop
async def test_an_environment_never_ready_is_left_to_its_next_deployment(store, users):
    _running(store, "shop-prod", None, status=EnvStatus.UPDATING)
    envs = _Environments(store)
    clock = ManualClock()
    upgrade = UserUpgrade(envs, users, clock=clock, patience_s=60)  # type: ignore[arg-type]
    task = asyncio.create_task(upgrade.run())
    await clock.advance(60)
    await asyncio.wait_for(task, 1)
    assert envs.deployed == []
    (*_, event) = store.events("shop-prod")
    assert event.severity is Severity.WARN
    assert "still run as another user than bp-" in event.message
    assert "Deploy it to replace them." in event.message


def test_a_deployment_that_cannot_start_is_an_event_and_is_not_tried_again(store, users):
    _running(store, "shop-prod", None)
    envs = _Environments(store, fail=InvalidInput("Version v1 is gone."))
    asyncio.run(UserUpgrade(envs, users).run())  # type: ignore[arg-type]
    *_, info, warning = store.events("shop-prod")  # oldest first
    assert info.message.startswith("Replacing 2 instance(s)")
    assert warning.severity is Severity.WARN
    assert warning.message.endswith("again to replace the instances that run as another user "
                                    f"than {_own(store)}: Version v1 is gone.")  # fmt: skip


def test_an_unexpected_error_is_logged_and_evented_never_raised(store, users, caplog):
    _running(store, "shop-prod", None)
    envs = _Environments(store, fail=RuntimeError("boom"))
    asyncio.run(UserUpgrade(envs, users).run())  # type: ignore[arg-type]
    (*_, warning) = store.events("shop-prod")
    assert warning.severity is Severity.WARN
    assert "An unexpected error (RuntimeError)" in warning.message
    assert "could not deploy shop-prod again" in caplog.text
