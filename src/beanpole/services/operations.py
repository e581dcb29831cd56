"""Long operations on an environment: create, deploy, configure (settings, scale), terminate.

Each runs as one asyncio task, recorded in the store as an operation so that the CLI can
follow it, a second one is refused while it runs, and a restarted server knows what was
interrupted. Instances of the new release take traffic only after passing their checks;
old ones leave only after the new ones are in service, so a failure at any step leaves
the running release serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beanpole.adapters.build import Artifact, Builder
from beanpole.adapters.bundles import BundleStore
from beanpole.adapters.lb.requests import RequestStream
from beanpole.adapters.logs import Logs
from beanpole.adapters.store.db import Store
from beanpole.core.deploy.policies import DeployParams, Policy
from beanpole.core.errors import BeanpoleError, Conflict
from beanpole.core.model import (
    BuildStatus,
    Environment,
    EnvStatus,
    Event,
    Health,
    Instance,
    InstanceState,
    Operation,
    OperationKind,
    OperationStatus,
    Severity,
)
from beanpole.core.reconcile import converged
from beanpole.core.settings import ResolvedSettings, resolve
from beanpole.services.deploy_runner import DeploymentFailed, DeploymentRun, deploy_params
from beanpole.services.fleet import Fleet

_CMD = "aws:elasticbeanstalk:command"
_ASG = "aws:autoscaling:asg"
_PROC = "aws:elasticbeanstalk:environment:process:default"


def config_params(settings: ResolvedSettings) -> DeployParams:
    """How a settings change that replaces instances rolls out
    (``aws:autoscaling:updatepolicy:rollingupdate``). Disabled, EB replaces everything at
    once; Beanpole then uses Immutable instead, so a configuration change drops nothing."""
    ns = "aws:autoscaling:updatepolicy:rollingupdate"
    if (
        settings.get(ns, "RollingUpdateEnabled") != "true"
        or settings.get(ns, "RollingUpdateType") == "Immutable"
    ):
        return DeployParams(Policy.IMMUTABLE)
    return DeployParams(
        Policy.ROLLING_WITH_ADDITIONAL_BATCH
        if settings.int(ns, "MinInstancesInService") >= 1
        else Policy.ROLLING,
        "Fixed",
        settings.int(ns, "MaxBatchSize"),
    )


class OperationFailed(BeanpoleError):
    """An operation step failed; the message is what the user reads."""


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


class Operations:
    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        builder: Builder,
        bundles: BundleStore,
        requests: RequestStream | None = None,
        logs: Logs | None = None,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.builder = builder
        self.bundles = bundles
        self.requests = requests  # the request stream the deployment gate taps
        self.logs = logs or Logs(fleet.home)
        store.event_listeners.append(self._log_event)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.aborts: dict[str, asyncio.Event] = {}

    def busy(self, env_name: str) -> bool:
        task = self.tasks.get(env_name)
        return task is not None and not task.done()

    async def wait_idle(self) -> None:
        pending = [t for t in self.tasks.values() if not t.done()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # entry points (called by the API) ---------------------------------------------------

    def create(self, env: Environment, version_label: str) -> Operation:
        op = self.store.start_operation(
            env.name, OperationKind.CREATE, target_version=version_label, previous_version=None
        )
        self._event(env, "createEnvironment is starting.")
        self._spawn(op, self._create(op, env, version_label))
        return op

    def deploy(
        self,
        env: Environment,
        version_label: str,
        *,
        policy: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> Operation:
        """Deploy a version; ``settings`` replaces the environment's (a rollback's release)."""
        self._require_ready(env)
        op = self.store.start_operation(
            env.name,
            OperationKind.DEPLOY,
            target_version=version_label,
            previous_version=env.version_label,
            params={"policy": policy, "settings": settings, "previous_settings": env.settings},
        )
        self._set_status(env.name, EnvStatus.UPDATING)
        self._event(env, f"Environment update is starting (deploying version {version_label}).")
        self.aborts[env.name] = asyncio.Event()
        self._spawn(op, self._deploy(op, env.name, version_label, policy, settings))
        return op

    def abort(self, env: Environment) -> None:
        """Cancel an in-progress deployment: it rolls back to the previous release."""
        event = self.aborts.get(env.name)
        if not self.busy(env.name) or event is None or event.is_set():
            raise Conflict(f"Environment {env.name} has no deployment in progress to abort.")
        self._event(
            env, "Abort requested: rolling back to the previous release.", severity=Severity.WARN
        )
        event.set()

    def configure(self, env: Environment, settings: dict[str, str]) -> Operation:
        self._require_ready(env)
        op = self.store.start_operation(
            env.name,
            OperationKind.CONFIGURE,
            target_version=env.version_label,
            previous_version=env.version_label,
            params={"settings": settings, "previous_settings": env.settings},
        )
        self._set_status(env.name, EnvStatus.UPDATING)
        self._event(env, "Environment update is starting.")
        self.aborts[env.name] = asyncio.Event()
        self._spawn(op, self._configure(op, env.name, settings))
        return op

    async def swap(self, env: Environment, other: Environment) -> None:
        """Exchange two Ready environments' CNAMEs; each host flips atomically in HAProxy."""
        for e in (env, other):
            self._require_ready(e)
        if env.name == other.name:
            raise Conflict("Swap needs two different environments.")
        self.store.swap_cnames(env.name, other.name)
        await self.fleet.sync_lb()
        for e in (env, other):
            self._event(
                e, f"Completed swapping CNAMEs for environments {env.name} and {other.name}."
            )

    def terminate(self, env: Environment) -> Operation:
        if env.status in (EnvStatus.LAUNCHING, EnvStatus.UPDATING) and self.busy(env.name):
            raise Conflict(
                f"Environment {env.name} is {env.status}; wait until it is Ready, then "
                "terminate it."
            )
        op = self.store.start_operation(
            env.name,
            OperationKind.TERMINATE,
            target_version=None,
            previous_version=env.version_label,
        )
        self._set_status(env.name, EnvStatus.TERMINATING)
        self._event(env, "terminateEnvironment is starting.")
        self._spawn(op, self._terminate(op, env.name))
        return op

    # the flows ----------------------------------------------------------------------

    async def _create(self, op: Operation, env: Environment, label: str) -> None:
        release = await self._release(env, label, env.settings)
        self._report_ebextensions(env, release)
        count = release.settings.int(_ASG, "MinSize")
        try:
            await self.bring_up(env, release, count, deployment_id=1)
        except BaseException:
            await self.fleet.stop(self.store.instances(env.name))
            self._set_status(env.name, EnvStatus.TERMINATED)
            await self.fleet.sync_lb()
            raise
        self.store.update_environment(
            env.name,
            status=EnvStatus.READY,
            version_label=label,
            deployment_id=1,
            health=Health.GREEN,
            causes=[],
        )
        self.store.add_release(env.name, 1, label, env.settings)
        self._event(env, f"Successfully launched environment: {env.name}")

    async def _deploy(
        self,
        op: Operation,
        name: str,
        label: str,
        policy: str | None,
        settings: dict[str, str] | None,
    ) -> None:
        env = self.store.environment(name)
        new_settings = settings if settings is not None else env.settings
        release = await self._release(env, label, new_settings)
        self._report_ebextensions(env, release)
        old = (
            await self._release(env, env.version_label, env.settings) if env.version_label else None
        )
        deployment_id = env.deployment_id + 1
        run = DeploymentRun(
            self,
            env,
            release,
            old,
            deploy_params(release.settings, policy),
            deployment_id,
            self.aborts.setdefault(name, asyncio.Event()),
        )
        try:
            await run.run()
        except BaseException:
            self._set_status(name, EnvStatus.READY)
            raise
        self.store.update_environment(
            name,
            status=EnvStatus.READY,
            version_label=label,
            deployment_id=deployment_id,
            settings=new_settings,
            causes=[],
        )
        self.store.add_release(name, deployment_id, label, new_settings)
        self._event(
            env, "New application version was deployed to running instances.", version=label
        )
        self._event(env, "Environment update completed successfully.", version=label)

    async def _configure(self, op: Operation, name: str, new_settings: dict[str, str]) -> None:
        env = self.store.environment(name)
        label = env.version_label or ""
        old_release = await self._release(env, label, env.settings, build=False)
        release = await self._release(env, label, new_settings)
        count = release.settings.int(_ASG, "MinSize")
        live = [i for i in self.store.instances(name) if i.state is not InstanceState.STOPPED]
        try:
            if release.key != old_release.key:
                # Settings the processes see changed: roll out a new release of the same version.
                deployment_id = env.deployment_id + 1
                self.store.update_environment(name, settings=new_settings)
                run = DeploymentRun(
                    self,
                    env,
                    release,
                    old_release,
                    config_params(release.settings),
                    deployment_id,
                    self.aborts.setdefault(name, asyncio.Event()),
                )
                await run.run()
                self.store.update_environment(name, deployment_id=deployment_id)
                self.store.add_release(name, deployment_id, label, new_settings)
            else:
                self.store.update_environment(name, settings=new_settings)
                await self.fleet.sync_lb()  # health check settings
                await self._scale(env, release, live, count)
        except BaseException:
            self.store.update_environment(name, settings=env.settings, status=EnvStatus.READY)
            await self.fleet.sync_lb()
            raise
        self.store.update_environment(name, status=EnvStatus.READY, causes=[])
        self._event(env, "Environment update completed successfully.")

    async def _scale(
        self, env: Environment, release: Release, live: list[Instance], count: int
    ) -> None:
        if len(live) < count:
            await self.bring_up(env, release, count - len(live), deployment_id=env.deployment_id)
            self._event(env, f"Added {count - len(live)} instance(s); now {count}.")
        elif len(live) > count:
            surplus = sorted(live, key=lambda i: i.created_at, reverse=True)[: len(live) - count]
            await self.fleet.retire(surplus, release.settings.int(_PROC, "DeregistrationDelay"))
            self._event(env, f"Removed {len(surplus)} instance(s); now {count}.")

    async def _terminate(self, op: Operation, name: str) -> None:
        env = self.store.environment(name)
        await self.fleet.retire(self.store.instances(name), drain_s=0)
        self._set_status(name, EnvStatus.TERMINATED)
        await self.fleet.sync_lb()
        self._event(env, "terminateEnvironment completed successfully.")
        # Its logs go with it: nothing can ask for them any more.
        await asyncio.to_thread(self.logs.forget, name, self.store.instances(name, live=False))

    # steps --------------------------------------------------------------------------

    async def _release(
        self, env: Environment, label: str, settings: dict[str, str], *, build: bool = True
    ) -> Release:
        version = self.store.version(env.application, label)
        layers = env.layers(version.ebextensions, settings)
        return Release(
            label,
            version.digest,
            resolve(*layers),
            version.ebextensions,
            version.ebextensions_warnings,
        )

    def _report_ebextensions(self, env: Environment, release: Release) -> None:
        """Events for a version about to be deployed: what its .ebextensions set, and (WARN)
        each file or key they had ignored."""
        label = release.version_label
        if release.ebextensions:
            keys = sorted(release.ebextensions)
            shown = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
            self._event(
                env,
                f"Version {label} sets {len(keys)} option setting(s) in .ebextensions: {shown} "
                "(settings given directly win).",
                version=label,
            )
        for warning in release.warnings:
            self._event(env, warning, severity=Severity.WARN, version=label)

    async def artifact(self, env: Environment, release: Release) -> Artifact:
        version = self.store.version(env.application, release.version_label)
        if version.build_status is not BuildStatus.BUILT:
            self.store.set_build_status(env.application, version.label, BuildStatus.BUILDING)
            self._event(env, f"Building version {version.label}.", version=version.label)
        started = time.monotonic()
        build_log = self.builder.root / version.digest / "build.log"
        build_log_size = _size(build_log)
        try:
            artifact = await self.builder.build(
                version.digest, self.bundles.path(version.digest), release.settings
            )
        except BeanpoleError as exc:
            self.store.set_build_status(
                env.application, version.label, BuildStatus.FAILED, exc.message
            )
            raise
        finally:
            op_id = self._operation_id(env.name)
            if op_id is not None:
                with contextlib.suppress(OSError):
                    title = f"build output of version {version.label}"
                    self.logs.append_output(env.name, op_id, title, build_log, build_log_size)
        if version.build_status is not BuildStatus.BUILT:
            self.store.set_build_status(env.application, version.label, BuildStatus.BUILT)
            self._event(
                env,
                f"Built version {version.label} ({artifact.plan.platform}) in "
                f"{time.monotonic() - started:.1f} s.",
                version=version.label,
            )
            for note in artifact.plan.notes:
                self._event(env, note, version=version.label)
        return artifact

    async def bring_up(
        self, env: Environment, release: Release, count: int, *, deployment_id: int
    ) -> list[Instance]:
        """Launch ``count`` instances of the release and put them in service, or fail cleanly."""
        artifact = await self.artifact(env, release)
        if count <= 0:
            return []
        timeout = release.settings.int(_CMD, "Timeout")
        start_timeout = release.settings.int("beanpole:instance", "StartTimeout")
        deadline = time.time() + timeout
        self._event(
            env,
            f"Starting {count} instance(s) of version {release.version_label}.",
            version=release.version_label,
        )
        new: list[Instance] = []
        try:
            for _ in range(count):
                new.append(
                    await self.fleet.launch(
                        env,
                        artifact,
                        release.settings,
                        version_label=release.version_label,
                        release_key=release.key,
                        deployment_id=deployment_id,
                    )
                )
            failures = await self.fleet.wait_ready(
                new, release.settings, deadline=deadline, start_timeout_s=start_timeout
            )
            if failures:
                first_id, cause = next(iter(failures.items()))
                raise OperationFailed(
                    f"Instance {first_id} of version {release.version_label} failed: {cause}"
                    + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
                )
        except BaseException:
            await self.fleet.stop(new)
            raise
        await self.fleet.put_in_service(new)
        self._event(
            env,
            f"{count} instance(s) of version {release.version_label} are in service.",
            version=release.version_label,
        )
        return new

    # bookkeeping ---------------------------------------------------------------------

    def _spawn(self, op: Operation, flow: Coroutine[Any, Any, None]) -> None:
        async def run() -> None:
            env = self.store.environment(op.environment)
            try:
                await flow
            except asyncio.CancelledError:
                self.store.finish_operation(
                    op.id, OperationStatus.FAILED, "Interrupted: the server stopped."
                )
                raise
            except Exception as exc:  # every failure ends the operation with a reason
                message = exc.message if isinstance(exc, BeanpoleError) else repr(exc)
                if not isinstance(exc, DeploymentFailed):  # the run has told it already
                    self._event(env, message, severity=Severity.ERROR)
                self.aborts.pop(op.environment, None)
                failure = {
                    OperationKind.CREATE: "Failed to launch environment.",
                    OperationKind.DEPLOY: "Failed to deploy application.",
                    OperationKind.CONFIGURE: "Failed to deploy configuration.",
                    OperationKind.TERMINATE: "Failed to terminate environment.",
                }[op.kind]
                self._event(env, failure, severity=Severity.ERROR)
                if op.kind in (OperationKind.DEPLOY, OperationKind.CONFIGURE):
                    self._event(
                        env,
                        "The environment was reverted to the previous configuration setting.",
                        severity=Severity.WARN,
                    )
                self.store.finish_operation(op.id, OperationStatus.FAILED, message)
                return
            self.store.finish_operation(op.id, OperationStatus.SUCCEEDED, "")
            self.aborts.pop(op.environment, None)

        self.tasks[op.environment] = asyncio.create_task(run(), name=f"op-{op.id}")

    def _require_ready(self, env: Environment) -> None:
        if env.status is not EnvStatus.READY or self.busy(env.name):
            raise Conflict(
                f"Environment {env.name} is {env.status}, not Ready: another operation is in "
                f"progress. Wait for it (beanpole events {env.name} -f), then try again."
            )

    def _set_status(self, name: str, status: EnvStatus) -> None:
        self.store.update_environment(name, status=status)

    def _event(
        self,
        env: Environment,
        message: str,
        *,
        severity: Severity = Severity.INFO,
        version: str | None = None,
    ) -> None:
        self.store.add_event(
            message,
            severity=severity,
            environment=env.name,
            application=env.application,
            version_label=version,
        )

    def _operation_id(self, env_name: str) -> int | None:
        running = self.store.running_operations()
        return next((op.id for op in running if op.environment == env_name), None)

    def _log_event(self, event: Event) -> None:
        """An event of an environment while an operation runs goes to that operation's deploy
        log too (the store calls this for every event, whoever records it)."""
        if event.environment is None:
            return
        op_id = self._operation_id(event.environment)
        if op_id is not None:
            with contextlib.suppress(OSError):  # a full disk must not fail the operation
                self.logs.append_event(event.environment, op_id, event)

    def apply_log_retention(self) -> list[Path]:
        """Remove the logs retention no longer keeps (`logs.Retention`)."""
        return self.logs.apply_retention(
            self.store.environments(include_terminated=True),
            self.store.instances(live=False),
            time.time(),
        )

    async def cancel_all(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class Repairs:
    """Converge a Ready environment on its release: the count, the version, the settings.

    Runs when the reconciler sees a difference (an instance lost, a deploy interrupted by a
    server crash). New instances are in service before any old one leaves.
    """

    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    def needed(self, env: Environment, release_key: str, instances: list[Instance]) -> bool:
        count = resolve(*env.layers()).int(_ASG, "MinSize")
        return not converged(release_key, count, instances)

    def start(self, env: Environment) -> None:
        async def repair() -> None:
            try:
                await self._repair(env.name)
            except Exception as exc:  # reported as an event; the reconciler tries again later
                message = exc.message if isinstance(exc, BeanpoleError) else repr(exc)
                self.ops._event(
                    env,
                    f"Could not restore the environment's instances: {message}",
                    severity=Severity.WARN,
                )

        self.ops.tasks[env.name] = asyncio.create_task(repair(), name=f"repair-{env.name}")

    async def _repair(self, name: str) -> None:
        ops = self.ops
        env = ops.store.environment(name)
        if env.version_label is None:
            return
        release = await ops._release(env, env.version_label, env.settings)
        count = release.settings.int(_ASG, "MinSize")
        live = [i for i in ops.store.instances(name) if i.state is not InstanceState.STOPPED]
        stray = [i for i in live if i.state is not InstanceState.IN_SERVICE]
        await ops.fleet.stop(stray)
        serving = [i for i in live if i.state is InstanceState.IN_SERVICE]
        good = [i for i in serving if i.release_key == release.key]
        missing = count - len(good)
        if missing > 0:
            ops._event(
                env,
                f"{len(good)} of {count} instances of the current release are in "
                f"service; starting {missing}.",
                severity=Severity.WARN,
            )
            await ops.bring_up(env, release, missing, deployment_id=env.deployment_id)
        extra = [i for i in serving if i.release_key != release.key]
        extra += sorted(good, key=lambda i: i.created_at, reverse=True)[: max(0, -missing)]
        await ops.fleet.retire(extra, release.settings.int(_PROC, "DeregistrationDelay"))
