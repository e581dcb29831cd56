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
import shutil
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from beanpole.adapters.build import Artifact, Builder
from beanpole.adapters.bundles import BundleStore
from beanpole.adapters.lb.requests import RequestStream
from beanpole.adapters.lifecycle import StepRunner, find_hooks
from beanpole.adapters.logs import Logs
from beanpole.adapters.store.db import Store
from beanpole.core.bundle_steps import Kind, Phase, phase_plan
from beanpole.core.capacity import MAX_SIZE_KEY, MIN_SIZE_KEY, desired_count
from beanpole.core.deploy.policies import DeployParams, Policy
from beanpole.core.errors import BeanpoleError, Conflict, NotFound, unexpected
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


class PostdeployHooks:
    """A deployment's postdeploy hooks, started as soon as its first new instances have
    started, while the deployment waits for them to pass their health checks: EB runs them
    on each instance right after the app starts, before the load balancer's checks pass, and
    an app may need them to pass (a migration its pages read). Run once per deployment, and
    finished before the operation completes."""

    def __init__(self, release_key: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.release_key = release_key  # the release whose instances start them
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="postdeploy")

    async def finish(self) -> None:
        """Run them (if no instance started them) and wait for them to end."""
        self.start()
        assert self._task is not None
        await self._task

    async def settle(self, cancelled: bool) -> None:
        """The deployment failed: let hooks already running end (a migration cut half-way
        is worse than one that completes), or stop them when the server stops."""
        if self._task is None:
            return
        if cancelled:
            self._task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._task


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
        # auto scaling activities: the environment stays Ready; an operation waits for one
        self.activities: dict[str, asyncio.Task[None]] = {}
        self.aborts: dict[str, asyncio.Event] = {}
        self._step_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.postdeploys: dict[str, PostdeployHooks] = {}  # environment -> its deployment's

    def instances_started(self, env_name: str, release_key: str) -> None:
        """New instances of ``release_key`` have started: the deployment's postdeploy hooks
        may run (not a rollback's instances of the old release)."""
        hooks = self.postdeploys.get(env_name)
        if hooks is not None and hooks.release_key == release_key:
            hooks.start()

    @contextlib.asynccontextmanager
    async def _postdeploy_hooks(
        self, env: Environment, release: Release, kind: Kind, deployment_id: int
    ) -> AsyncIterator[PostdeployHooks]:
        """The deployment's postdeploy hooks for its duration (`PostdeployHooks`)."""
        hooks = PostdeployHooks(
            release.key, lambda: self._postdeploy(env, release, kind, deployment_id)
        )
        self.postdeploys[env.name] = hooks
        try:
            yield hooks
        except BaseException as exc:
            await hooks.settle(isinstance(exc, asyncio.CancelledError))
            raise
        finally:
            self.postdeploys.pop(env.name, None)

    def busy(self, env_name: str) -> bool:
        """An operation, a repair or a scaling activity holds the environment."""
        return self.operating(env_name) or self.scaling(env_name)

    def operating(self, env_name: str) -> bool:
        task = self.tasks.get(env_name)
        return task is not None and not task.done()

    def scaling(self, env_name: str) -> bool:
        task = self.activities.get(env_name)
        return task is not None and not task.done()

    def busy_environments(self) -> list[str]:
        return sorted(name for name in {*self.tasks, *self.activities} if self.busy(name))

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
        if not self.operating(env.name):
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
        if env.status in (EnvStatus.LAUNCHING, EnvStatus.UPDATING) and self.operating(env.name):
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
        count = desired_count(release.settings, env.desired_capacity, env.scheduled_bounds)
        self.store.update_environment(env.name, desired_capacity=count)
        async with self._postdeploy_hooks(env, release, Kind.APPLICATION, 1) as postdeploy:
            try:
                await self.prepare(env, release, Kind.APPLICATION, 1)
                await self.bring_up(env, release, count, deployment_id=1)
            except BaseException:
                await self.fleet.stop(self.store.instances(env.name))
                self._set_status(env.name, EnvStatus.TERMINATED)
                await self.fleet.sync_lb()
                await self._prune_stages(env)
                raise
            self.store.update_environment(
                env.name, version_label=label, deployment_id=1, health=Health.GREEN, causes=[]
            )
            self.store.add_release(env.name, 1, label, env.settings)
            try:
                await postdeploy.finish()
                self._event(env, f"Successfully launched environment: {env.name}")
            finally:  # Ready last: a client that sees it finds every event of the launch
                self._set_status(env.name, EnvStatus.READY)

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
        deployment_id = self._next_deployment_id(env)
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
            # container_commands and predeploy hooks run before any instance of the new
            # version starts (or any old one stops): a failure leaves the old one serving.
            async with self._postdeploy_hooks(
                env, release, Kind.APPLICATION, deployment_id
            ) as postdeploy:
                await self.prepare(env, release, Kind.APPLICATION, deployment_id)
                await run.run()
        except BaseException:
            self._set_status(name, EnvStatus.READY)
            await self._prune_stages(env)
            raise
        self.store.update_environment(
            name,
            version_label=label,
            deployment_id=deployment_id,
            settings=new_settings,
            causes=[],
            # a rollback's settings may bound it differently
            desired_capacity=desired_count(
                release.settings, env.desired_capacity, env.scheduled_bounds
            ),
        )
        self.store.add_release(name, deployment_id, label, new_settings)
        # The release's load-balancer settings (its health check) may differ from the ones
        # HAProxy runs with: a rollback restored them in the store and HAProxy kept the newer.
        try:
            await self._prune_stages(env)
            await self.fleet.sync_lb()
            await postdeploy.finish()  # started with the first new instances
            self._event(
                env, "New application version was deployed to running instances.", version=label
            )
            self._event(env, "Environment update completed successfully.", version=label)
        finally:  # Ready last: a client that sees it finds every event of the update
            self._set_status(name, EnvStatus.READY)

    async def _configure(
        self, op: Operation, name: str, new_settings: dict[str, str], desired: int | None
    ) -> None:
        env = self.store.environment(name)
        label = env.version_label or ""
        old_release = await self._release(env, label, env.settings, build=False)
        release = await self._release(env, label, new_settings)
        # Bounds set directly replace what a scheduled action set (as in an Auto Scaling
        # group: the latest change wins); any other change keeps the action's bounds.
        direct_bounds = desired is not None or any(
            new_settings.get(k) != env.settings.get(k) for k in (MIN_SIZE_KEY, MAX_SIZE_KEY)
        )
        override = None if direct_bounds else env.scheduled_bounds
        count = desired_count(
            release.settings, env.desired_capacity if desired is None else desired, override
        )
        live = [i for i in self.store.instances(name) if i.state is not InstanceState.STOPPED]
        try:
            if release.key != old_release.key:
                # Settings the processes see changed: roll out a new release of the same version.
                deployment_id = self._next_deployment_id(env)
                self.store.update_environment(
                    name, settings=new_settings, desired_capacity=count, scheduled_bounds=override
                )
                run = DeploymentRun(
                    self,
                    env,
                    release,
                    old_release,
                    config_params(release.settings),
                    deployment_id,
                    self.aborts.setdefault(name, asyncio.Event()),
                )
                async with self._postdeploy_hooks(
                    env, release, Kind.CONFIGURATION, deployment_id
                ) as postdeploy:
                    await self.prepare(env, release, Kind.CONFIGURATION, deployment_id)
                    await run.run()
                    self.store.update_environment(name, deployment_id=deployment_id)
                    self.store.add_release(name, deployment_id, label, new_settings)
                    await self._prune_stages(env)
                    await postdeploy.finish()
            else:
                self.store.update_environment(
                    name, settings=new_settings, desired_capacity=count, scheduled_bounds=override
                )
                await self.fleet.sync_lb()  # health check settings
                await self._scale(env, release, live, count)
        except BaseException:
            self.store.update_environment(
                name,
                settings=env.settings,
                desired_capacity=env.desired_capacity,
                scheduled_bounds=env.scheduled_bounds,
                status=EnvStatus.READY,
            )
            await self.fleet.sync_lb()
            await self._prune_stages(env)
            raise
        # The event first: a client that sees Ready must find the completion (and any ERROR)
        # among the events already (Terraform reads them right after its Ready wait).
        self._event(env, "Environment update completed successfully.")
        self.store.update_environment(name, status=EnvStatus.READY, causes=[])

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
        self.store.forget_domains(env.id)  # free for another environment
        await self.fleet.sync_lb()
        await self._prune_stages(env)
        # its volumes (the Docker platform's host folders) go with it, as EB's instances do
        await asyncio.to_thread(shutil.rmtree, self.fleet.home.root / "volumes" / env.id, True)
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

    async def artifact(
        self, env: Environment, release: Release, deployment_id: int | None = None
    ) -> Artifact:
        """What instances of the release start from: the version's build, in the folder of
        deployment ``deployment_id`` where that deployment has one (`prepare`)."""
        artifact = await self._build(env, release)
        if deployment_id is not None:
            app = self.store.application(env.application)
            stage = await asyncio.to_thread(
                self.builder.existing_stage, app, release.digest, env.id, deployment_id
            )
            if stage is not None:
                return replace(artifact, app_dir=stage)
        return artifact

    async def prepare(
        self, env: Environment, release: Release, kind: Kind, deployment_id: int
    ) -> None:
        """Before a deployment's instances start: its own folder (`Builder.stage`) when the
        version runs steps in it, then its steps (a configuration deployment: confighooks'
        prebuild, then container_commands and confighooks' predeploy; an application one:
        container_commands and predeploy hooks). A failure leaves every running instance's
        folder as it was."""
        built = await self._build(env, release)
        version = self.store.version(env.application, release.version_label)
        # container_commands and hooks, or containers that write into the bundle's files
        # (a writable volume of /var/app/current), change the folder: a copy of its own
        docker = built.plan.docker
        staged = (docker is not None and docker.writes_its_bundle()) or await asyncio.to_thread(
            self.builder.changed_by_deployments, built.app_dir, version.steps
        )
        if staged:
            source = built.app_dir
            if kind is Kind.CONFIGURATION:  # the files the running deployment has
                source = (await self.artifact(env, release, env.deployment_id)).app_dir
            app = self.store.application(env.application)
            await self.builder.stage(source, app, release.digest, env.id, deployment_id)
        artifact = await self.artifact(env, release, deployment_id)
        phases = (
            (Phase.PREBUILD, Phase.PREDEPLOY) if kind is Kind.CONFIGURATION else (Phase.PREDEPLOY,)
        )
        for phase in phases:
            await self.run_phase(env, release, artifact, kind, phase)

    def _next_deployment_id(self, env: Environment) -> int:
        """One more than the recorded deployment's, or than one a failed attempt left live
        instances of (a rollback that could not finish), so that a new attempt never shares
        an id, and a folder (`prepare`), with instances still running."""
        used = [i.deployment_id for i in self.store.instances(env.name)]
        return max([env.deployment_id, *used]) + 1

    async def _prune_stages(self, env: Environment) -> None:
        """Remove the deployment folders of an environment that no instance starts from any
        more: all but its current deployment's and those its live instances run (all of
        them once it is terminated)."""
        keep: set[int] = set()
        with contextlib.suppress(NotFound):  # terminated: its name finds nothing
            now = self.store.environment(env.name)
            if now.id == env.id and now.status is not EnvStatus.TERMINATED:
                keep = {now.deployment_id} | {
                    i.deployment_id
                    for i in self.store.instances(env.name)
                    if i.state is not InstanceState.STOPPED
                }
        await asyncio.to_thread(self.builder.prune_stages, env.id, keep)

    async def _build(self, env: Environment, release: Release) -> Artifact:
        version = self.store.version(env.application, release.version_label)
        if version.build_status is not BuildStatus.BUILT:
            self.store.set_build_status(env.application, version.label, BuildStatus.BUILDING)
            self._event(env, f"Building version {version.label}.", version=version.label)
        started = time.monotonic()
        app = self.store.application(env.application)
        build_log = self.builder.version_dir(app, version.digest) / "build.log"
        build_log_size = _size(build_log)
        try:
            # Whether a version runs under Docker is decided at its first build, and kept:
            # a server started again with another default runtime (or an engine installed
            # since) must not turn the instances of one release into another platform's.
            pinned = version.platform
            artifact = await self.builder.build(
                app,
                version.digest,
                self.bundles.path(version.digest),
                release.settings,
                env.platform or ("docker" if pinned == "docker" else None),
                version.steps,
                containers=pinned in ("", "docker"),
                report=lambda message, warn: self._event(
                    env,
                    message,
                    severity=Severity.WARN if warn else Severity.INFO,
                    version=version.label,
                ),
            )
        except BeanpoleError as exc:
            # the error ends with the build's output: secrets hidden (the version's record
            # is shown to every face, the message is the operation's too)
            shown = self.fleet.secrets.redact(env, exc.message, release.settings.values)
            self.store.set_build_status(env.application, version.label, BuildStatus.FAILED, shown)
            exc.message = shown
            exc.args = (shown,)
            raise
        finally:
            op_id = self._operation_id(env.id)
            if op_id is not None:
                with contextlib.suppress(OSError):
                    title = f"build output of version {version.label}"
                    self.logs.append_output(env.name, op_id, title, build_log, build_log_size)
        if version.platform != artifact.plan.platform:  # which static files it has by default
            self.store.set_version_platform(env.application, version.label, artifact.plan.platform)
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

    async def run_phase(
        self, env: Environment, release: Release, artifact: Artifact, kind: Kind, phase: Phase
    ) -> None:
        """A deployment's steps of one phase in the staged app (`core.bundle_steps`):
        container_commands and predeploy hooks before the new instances start, postdeploy
        hooks once they serve; each named in an event, its output in the deploy log."""
        version = self.store.version(env.application, release.version_label)
        hooks = await asyncio.to_thread(find_hooks, artifact.app_dir, kind, phase)
        steps, warnings = phase_plan(phase, kind, version.steps, hooks)
        label = release.version_label
        for warning in warnings:
            self._event(env, warning, severity=Severity.WARN, version=label)
        if not steps:
            return
        timeout = release.settings.int(_CMD, "Timeout")
        process_env = artifact.process_env(self.fleet.secrets.reveal(release.settings.env))
        process_env["PORT"] = str(artifact.plan.default_port)
        op_id = self._operation_id(env.id)

        def output(title: str, log_file: Path, offset: int) -> None:
            if op_id is not None:
                with contextlib.suppress(OSError):
                    self.logs.append_output(env.name, op_id, f"output of {title}", log_file, offset)

        runner = StepRunner(
            artifact.app_dir,
            process_env,
            self.builder.version_dir(self.store.application(env.application), release.digest)
            / "hooks.log",
            time.monotonic() + timeout,
            timeout,
            self.builder.step_spawn(artifact.run_as),
            lambda message, warn: self._event(
                env, message, severity=Severity.WARN if warn else Severity.INFO, version=label
            ),
            output,
        )
        # One folder per deployment, or the version's build shared by them: take turns.
        async with self._step_locks[str(artifact.app_dir)]:
            await runner.run(steps)

    async def _postdeploy(
        self, env: Environment, release: Release, kind: Kind, deployment_id: int
    ) -> None:
        """Postdeploy hooks (`PostdeployHooks`: from the first new instances' start). They
        do not undo the deployment: a failure is an ERROR event; the deployment completes if
        its instances pass their checks, as on EB, where the load balancer decides."""
        try:
            artifact = await self.artifact(env, release, deployment_id)
            await self.run_phase(env, release, artifact, kind, Phase.POSTDEPLOY)
        except BeanpoleError as exc:
            self._event(
                env,
                f"{exc.message}\nA postdeploy hook does not undo the deployment of version "
                f"{release.version_label}: fix the hook and deploy again.",
                severity=Severity.ERROR,
                version=release.version_label,
            )

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
        artifact = await self.artifact(env, release, deployment_id)
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
            self.instances_started(env.name, release.key)
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

    # auto scaling --------------------------------------------------------------------

    def autoscale(self, env: Environment, desired: int, message: str) -> None:
        """Carry out an auto scaling decision (``message`` is its event): start instances of
        the current release and put them in service, or drain and stop the surplus. The
        environment stays Ready meanwhile (as EB's does); a deployment or configuration
        change that arrives starts once the activity ends, and nothing else decides until
        then (`busy`)."""
        if self.busy(env.name):
            raise Conflict(f"Environment {env.name} is busy; the decision waits.")
        self._event(env, message)
        previous = env.desired_capacity
        self.store.update_environment(env.name, desired_capacity=desired)
        self.activities[env.name] = asyncio.create_task(
            self._autoscale(env.name, previous, desired), name=f"autoscale-{env.name}"
        )

    async def _autoscale(self, name: str, previous: int | None, desired: int) -> None:
        env = self.store.environment(name)
        try:
            if env.version_label is None:
                return
            release = await self._release(env, env.version_label, env.settings, build=False)
            live = [
                i
                for i in self.store.instances(name)
                if i.state is InstanceState.IN_SERVICE and i.release_key == release.key
            ]
            if len(live) < desired:
                new = await self.bring_up(
                    env, release, desired - len(live), deployment_id=env.deployment_id
                )
                self._event(
                    env,
                    f"Added {len(new)} instance(s) ({', '.join(i.id for i in new)}); now "
                    f"{desired} in service.",
                )
            elif len(live) > desired:
                leaving = scale_in_order(live)[: len(live) - desired]
                await self.fleet.retire(leaving, release.settings.int(_PROC, "DeregistrationDelay"))
                self._event(
                    env,
                    f"Removed {len(leaving)} instance(s) ({', '.join(i.id for i in leaving)}) "
                    f"after draining them; now {desired} in service.",
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the count goes back; the next decision may try again
            if not isinstance(exc, BeanpoleError):
                log.error("auto scaling of %s failed", name, exc_info=exc)
            with contextlib.suppress(BeanpoleError):
                self.store.update_environment(name, desired_capacity=previous)
            self._event(
                env,
                f"Auto scaling could not reach {desired} instance(s): {unexpected(exc)}",
                severity=Severity.WARN,
            )
        finally:
            # when it ended: the trigger's Cooldown counts from here
            with contextlib.suppress(BeanpoleError):
                memory = dict(self.store.environment(name).scaling)
                memory["activity_at"] = time.time()
                self.store.update_environment(name, scaling=memory)

    async def _after_scaling(self, name: str) -> None:
        """An operation waits for a scaling activity in progress to end (seconds: a start,
        or a drain of at most DeregistrationDelay)."""
        activity = self.activities.get(name)
        if activity is not None and not activity.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(activity)

    # bookkeeping ---------------------------------------------------------------------

    def _spawn(self, op: Operation, flow: Coroutine[Any, Any, None]) -> None:
        async def run() -> None:
            env = self.store.environment_by_id(op.environment_id)
            try:
                await self._after_scaling(op.environment)
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
        if env.status is not EnvStatus.READY or self.operating(env.name):
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
        tasks = [*self.tasks.values(), *self.activities.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def scale_in_order(instances: list[Instance]) -> list[Instance]:
    """Which instances a scale-in removes first: those not healthy, then the newest (the
    oldest have served longest and are known good; `core.repairs` retires the same way)."""
    return sorted(
        instances,
        key=lambda i: (i.health_status in ("Ok", "Info"), -i.created_at, i.id),
    )


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
        count = desired_count(resolve(*env.layers()), env.desired_capacity, env.scheduled_bounds)
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
        count = desired_count(release.settings, env.desired_capacity, env.scheduled_bounds)
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
