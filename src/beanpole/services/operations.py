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
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from beanpole.adapters.build import Artifact, Builder
from beanpole.adapters.bundles import BundleStore
from beanpole.adapters.lb.requests import RequestStream
from beanpole.adapters.logs import Logs
from beanpole.adapters.store.db import Store
from beanpole.core.capacity import desired_count
from beanpole.core.deploy.policies import DeployParams, Policy
from beanpole.core.errors import BeanpoleError, Conflict, unexpected
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
from beanpole.core.release import Release
from beanpole.core.repairs import plan_repair
from beanpole.core.settings import ResolvedSettings, resolve
from beanpole.services.deploy_runner import DeploymentFailed, DeploymentRun, deploy_params
from beanpole.services.fleet import Fleet

log = logging.getLogger(__name__)

_CMD = "aws:elasticbeanstalk:command"
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
        self.require_ready(env)
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
        """Stop the operation in progress and put the environment back as it was.

        A deployment (and a configuration change that replaces instances) rolls back to the
        previous release; a scale that is still starting instances stops them and restores
        the previous settings. Anything else cannot be undone half-way (a create, a
        terminate, a scale already removing instances) and is refused rather than
        acknowledged and then finished anyway.
        """
        event = self.aborts.get(env.name)
        if not self.busy(env.name):
            raise Conflict(f"Environment {env.name} has no operation in progress to abort.")
        running = [op for op in self.store.running_operations() if op.environment == env.name]
        kind = running[0].kind if running else "operation"
        if event is None:
            raise Conflict(
                f"The {kind} operation in progress on environment {env.name} cannot be "
                "aborted now: only a deployment, or a configuration change while it starts or "
                f"replaces instances, can be. Wait for it to finish (beanpole events {env.name} "
                "-f)."
            )
        if event.is_set():
            raise Conflict(f"The {kind} operation on environment {env.name} is already aborting.")
        self._event(
            env,
            "Abort requested: rolling back to the previous release."
            if kind == OperationKind.DEPLOY
            else "Abort requested: stopping the instances being started and restoring the "
            "previous settings.",
            severity=Severity.WARN,
        )
        event.set()

    def configure(
        self,
        env: Environment,
        settings: dict[str, str],
        *,
        desired: int | None = None,
        notes: tuple[str, ...] = (),
    ) -> Operation:
        """Change the settings and, with ``desired``, the desired capacity (a scale); the
        desired count is re-clamped to the new MinSize..MaxSize either way. ``notes`` become
        events (what a scale changed in the bounds)."""
        self.require_ready(env)
        op = self.store.start_operation(
            env.name,
            OperationKind.CONFIGURE,
            target_version=env.version_label,
            previous_version=env.version_label,
            params={
                "settings": settings,
                "previous_settings": env.settings,
                "desired": desired,
                "previous_desired": env.desired_capacity,
            },
        )
        self._set_status(env.name, EnvStatus.UPDATING)
        self._event(env, "Environment update is starting.")
        for note in notes:
            self._event(env, note)
        self.aborts[env.name] = asyncio.Event()
        self._spawn(op, self._configure(op, env.name, settings, desired))
        return op

    async def swap(self, env: Environment, other: Environment) -> None:
        """Exchange two Ready environments' CNAMEs; each host flips atomically in HAProxy."""
        for e in (env, other):
            self.require_ready(e)
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
        await asyncio.to_thread(self._forget_namesake, env, op.id)
        release = await self._release(env, label, env.settings)
        self._report_ebextensions(env, release)
        # EB starts at MinSize unless told otherwise; MinSize may come from the version.
        count = desired_count(release.settings, env.desired_capacity)
        self.store.update_environment(env.name, desired_capacity=count)
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
            # a rollback's settings may bound it differently
            desired_capacity=desired_count(release.settings, env.desired_capacity),
        )
        self.store.add_release(name, deployment_id, label, new_settings)
        # The release's load-balancer settings (its health check) may differ from the ones
        # HAProxy runs with: a rollback restored them in the store and HAProxy kept the newer.
        await self.fleet.sync_lb()
        self._event(
            env, "New application version was deployed to running instances.", version=label
        )
        self._event(env, "Environment update completed successfully.", version=label)

    async def _configure(
        self, op: Operation, name: str, new_settings: dict[str, str], desired: int | None
    ) -> None:
        env = self.store.environment(name)
        label = env.version_label or ""
        old_release = await self._release(env, label, env.settings, build=False)
        release = await self._release(env, label, new_settings)
        count = desired_count(
            release.settings, env.desired_capacity if desired is None else desired
        )
        live = [i for i in self.store.instances(name) if i.state is not InstanceState.STOPPED]
        try:
            if release.key != old_release.key:
                # Settings the processes see changed: roll out a new release of the same version.
                deployment_id = env.deployment_id + 1
                self.store.update_environment(name, settings=new_settings, desired_capacity=count)
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
                self.store.update_environment(name, settings=new_settings, desired_capacity=count)
                await self.fleet.sync_lb()  # health check settings
                await self._scale(env, release, live, count)
        except BaseException:
            self.store.update_environment(
                name,
                settings=env.settings,
                desired_capacity=env.desired_capacity,
                status=EnvStatus.READY,
            )
            await self.fleet.sync_lb()
            raise
        self.store.update_environment(name, status=EnvStatus.READY, causes=[])
        self._event(env, "Environment update completed successfully.")

    async def _scale(
        self, env: Environment, release: Release, live: list[Instance], count: int
    ) -> None:
        """Start or remove instances. Starting can be aborted (the new instances stop, the
        caller restores the settings); removing cannot, and stops being abortable first."""
        abort = self.aborts.get(env.name)
        if len(live) < count:
            await self.bring_up(
                env, release, count - len(live), deployment_id=env.deployment_id, abort=abort
            )
            self._event(env, f"Added {count - len(live)} instance(s); now {count}.")
        elif len(live) > count:
            self.aborts.pop(env.name, None)
            if abort is not None and abort.is_set():
                raise OperationFailed("The configuration change was aborted.")
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

    def _forget_namesake(self, env: Environment, op_id: int) -> None:
        """The logs an earlier environment of this name kept (a create that failed keeps
        them for `beanpole logs`) go once the name is used again: they are filed by name."""
        earlier = [
            i
            for i in self.store.instances(live=False)
            if i.environment == env.name and i.environment_id != env.id
        ]
        with contextlib.suppress(OSError):
            self.logs.forget(env.name, earlier, before_operation=op_id)

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
                version.digest, self.bundles.path(version.digest), release.settings, env.platform
            )
        except BeanpoleError as exc:
            self.store.set_build_status(
                env.application, version.label, BuildStatus.FAILED, exc.message
            )
            raise
        finally:
            op_id = self._operation_id(env.id)
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
            for warning in artifact.plan.warnings:
                self._event(env, warning, severity=Severity.WARN, version=version.label)
        return artifact

    async def bring_up(
        self,
        env: Environment,
        release: Release,
        count: int,
        *,
        deployment_id: int,
        abort: asyncio.Event | None = None,
    ) -> list[Instance]:
        """Launch ``count`` instances of the release and put them in service, or fail cleanly
        (also when ``abort`` is set before they are in service: they are stopped)."""
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
                new, release.settings, deadline=deadline, start_timeout_s=start_timeout, abort=abort
            )
            if abort is not None and abort.is_set():
                raise OperationFailed("The configuration change was aborted.")
            if failures:
                raise OperationFailed(failures.message(release.version_label))
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
            env = self.store.environment_by_id(op.environment_id)
            try:
                await flow
            except asyncio.CancelledError:
                self.store.finish_operation(
                    op.id, OperationStatus.FAILED, "Interrupted: the server stopped."
                )
                raise
            except Exception as exc:  # every failure ends the operation with a reason
                if not isinstance(exc, BeanpoleError):
                    log.error("operation %d (%s) failed", op.id, op.kind, exc_info=exc)
                message = unexpected(exc)
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

    def require_ready(self, env: Environment) -> None:
        """Refuse to start an operation while another runs (a deploy's dry run asks too)."""
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
            environment_id=env.id,
            application=env.application,
            version_label=version,
        )

    def _operation_id(self, env_id: str) -> int | None:
        running = self.store.running_operations()
        return next((op.id for op in running if op.environment_id == env_id), None)

    def _log_event(self, event: Event) -> None:
        """An event of an environment while an operation runs goes to that operation's deploy
        log too (the store calls this for every event, whoever records it)."""
        if event.environment is None or event.environment_id is None:
            return
        op_id = self._operation_id(event.environment_id)
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
    """Converge a Ready environment on its release: the desired count, the version, the
    settings (`beanpole.core.repairs.plan_repair` decides; this carries it out).

    Runs when the reconciler sees a difference (an instance lost, a deploy interrupted by a
    server crash). New instances are in service before any old one leaves.
    """

    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    def needed(self, env: Environment, release_key: str, instances: list[Instance]) -> bool:
        count = desired_count(resolve(*env.layers()), env.desired_capacity)
        return plan_repair(instances, release_key, count).needed

    def start(self, env: Environment) -> None:
        async def repair() -> None:
            try:
                await self._repair(env.name)
            except Exception as exc:  # reported as an event; the reconciler tries again later
                if not isinstance(exc, BeanpoleError):
                    log.error("repair of %s failed", env.name, exc_info=exc)
                message = unexpected(exc)
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
        count = desired_count(release.settings, env.desired_capacity)
        instances = {i.id: i for i in ops.store.instances(name)}
        # Standby instances of the release (a deployment's bake window that a restart
        # interrupted) go back in service as they are: nothing to start, nothing dropped.
        good = [
            i
            for i in instances.values()
            if i.state is InstanceState.IN_SERVICE and i.release_key == release.key
        ]
        standby = [
            i
            for i in instances.values()
            if i.state is InstanceState.STANDBY and i.release_key == release.key
        ]
        back = (await ops.fleet.checked_healthy(standby))[: max(0, count - len(good))]
        if back:
            await ops.fleet.put_in_service(back)
            ops._event(
                env,
                f"Put {len(back)} standby instance(s) of version {release.version_label} back "
                f"in service: {', '.join(i.id for i in back)}.",
                severity=Severity.WARN,
            )
            instances = {i.id: i for i in ops.store.instances(name)}
        todo = plan_repair(instances.values(), release.key, count)
        await ops.fleet.stop([instances[i] for i in todo.stop])
        if todo.launch:
            ops._event(
                env,
                f"{todo.serving_current} of {count} instances of the current release are in "
                f"service; starting {todo.launch}.",
                severity=Severity.WARN,
            )
            await ops.bring_up(env, release, todo.launch, deployment_id=env.deployment_id)
        await ops.fleet.retire(
            [instances[i] for i in todo.retire],
            release.settings.int(_PROC, "DeregistrationDelay"),
        )
