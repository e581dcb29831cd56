"""Environments: create, clone, deploy, configure, scale, rollback, abort, swap, terminate,
and the views of them (the environment, its releases, events, settings, an operation).

Every face (REST today, Elastic Beanstalk's query API and the console later) calls these;
none repeats a check or a choice made here. Long use cases start an operation
(`services.operations`) and answer at once with its id.

Store access: reads that grow with the data (lists, events, releases, the environment with
its instances) run in a worker thread on the thread's own read connection, so they never
stall the event loop; the writes that start an operation stay on the loop, where the
operation's task is created, and are single-row transactions (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Mapping
from typing import cast

from beanpole.adapters.store.db import Store
from beanpole.api import inputs
from beanpole.api.views import (
    AbortRequested,
    AutoscalingView,
    Checked,
    Colour,
    EffectiveSettingView,
    EnvironmentCreated,
    EnvironmentSummary,
    EnvironmentView,
    EventView,
    InstanceView,
    OperationStarted,
    OperationView,
    ReleaseView,
    RollbackStarted,
    ScaleStarted,
    ScalingDecisionView,
    ScheduledFiringView,
    SettingsView,
    SwapResult,
)
from beanpole.core import certificates, listener_rules
from beanpole.core.autoscaling import schedule
from beanpole.core.autoscaling.measures import MEASURES
from beanpole.core.autoscaling.policy import check_policy, policy_from
from beanpole.core.capacity import bounds, desired_count, plan_scale
from beanpole.core.errors import Conflict, InvalidInput
from beanpole.core.lb.desired import HTTPS_LISTENER
from beanpole.core.model import (
    Environment,
    Event,
    Instance,
    InstanceState,
    Operation,
    SavedConfiguration,
    Severity,
    Version,
    check_app_name,
    check_cname,
    check_env_name,
)
from beanpole.core.settings import ResolvedSettings, merge_changes, resolve, validate
from beanpole.core.settings.inert import inert_keys
from beanpole.core.settings.options import OPTIONS
from beanpole.core.settings.sources import (
    DIRECT,
    SourcedLayer,
    ebextensions_layer,
    explain,
    saved_source,
)
from beanpole.services.autoscaler import Autoscaler
from beanpole.services.operations import Operations

_ASG = "aws:autoscaling:asg"


def capacity_settings(count: int) -> dict[str, str]:
    """The settings that run ``count`` instances (`eb scale`: MinSize = MaxSize = count)."""
    return {f"{_ASG}:MinSize": str(count), f"{_ASG}:MaxSize": str(max(count, 1))}


def check_sizes(resolved: ResolvedSettings) -> None:
    """What no single option can be checked for alone: the bounds, the trigger's units and
    thresholds, and each scheduled action as a whole."""
    low = resolved.int(_ASG, "MinSize")
    high = resolved.int(_ASG, "MaxSize")
    if low > high:
        raise InvalidInput(
            f"aws:autoscaling:asg MinSize ({low}) is above MaxSize ({high}). "
            "Raise MaxSize too, or lower MinSize."
        )
    check_policy(resolved.values)
    schedule.actions_from(resolved.values)


def instance_view(i: Instance, now: float) -> InstanceView:
    health: Colour = "Grey" if i.state is InstanceState.PENDING else "Green" if i.healthy else "Red"
    return InstanceView(
        id=i.id,
        state=i.state,
        health=health,
        port=i.port,
        pid=i.pid,
        host=i.host,
        # the runtime gives an isolated instance an address of its own, never a loopback one
        network="host" if ipaddress.ip_address(i.host).is_loopback else "own",
        version=i.version_label,
        deployment_id=i.deployment_id,
        causes=list(i.causes),
        launched_at=i.created_at,
        uptime_s=round(now - i.created_at, 1),
    )


def event_view(e: Event) -> EventView:
    return EventView(
        id=e.id,
        time=e.time,
        severity=e.severity,
        environment=e.environment,
        environment_id=e.environment_id,
        version=e.version_label,
        message=e.message,
    )


def operation_view(op: Operation) -> OperationView:
    return OperationView(
        id=op.id,
        environment=op.environment,
        environment_id=op.environment_id,
        kind=op.kind,
        status=op.status,
        message=op.message,
        started_at=op.started_at,
        finished_at=op.finished_at,
    )


class Environments:
    def __init__(
        self,
        store: Store,
        ops: Operations,
        url: Callable[[str], str],
        autoscaler: Autoscaler,
        *,
        containers: bool = False,
        default_runtime: str = "supervisord",
        shared_network: str = "",
    ) -> None:
        self.store = store
        # why supervisord's instances share the host's network here ("": they have their
        # own), and the runtime environments get by default: a listener rule's process
        # needs an instance address of its own
        self.default_runtime, self.shared_network = default_runtime, shared_network
        self.ops = ops
        self.url = url  # an environment's URL from its CNAME prefix
        self.autoscaler = autoscaler  # its latest verdicts, for the views
        self.containers = containers  # the server runs containers: the docker platform runs

    # views --------------------------------------------------------------------------

    async def list_all(self) -> list[EnvironmentSummary]:
        def read() -> list[EnvironmentSummary]:
            envs = self.store.environments()
            in_service: dict[str, int] = {}
            for i in self.store.instances():  # one read for all, not one per environment
                if i.state is InstanceState.IN_SERVICE:
                    in_service[i.environment] = in_service.get(i.environment, 0) + 1
            return [self._summary(e, in_service.get(e.name, 0)) for e in envs]

        return await asyncio.to_thread(read)

    async def get(self, name: str) -> EnvironmentView:
        return await asyncio.to_thread(self._view, name)

    async def releases(self, name: str) -> list[ReleaseView]:
        def read() -> list[ReleaseView]:
            self.store.environment(name)  # NotFound, with its advice
            return [
                ReleaseView(
                    deployment_id=r.deployment_id,
                    version=r.version_label,
                    settings=r.settings,
                    created_at=r.created_at,
                )
                for r in self.store.releases(name)
            ]

        return await asyncio.to_thread(read)

    async def events(self, name: str, after: int = 0, limit: int = 100) -> list[EventView]:
        def read() -> list[EventView]:
            found = self.store.events(name, after=after, limit=limit)
            if not found and not any(
                e.name == name for e in self.store.environments(include_terminated=True)
            ):
                self.store.environment(name)  # NotFound, with its advice
            return [event_view(e) for e in found]

        return await asyncio.to_thread(read)

    async def settings(self, name: str) -> SettingsView:
        """Every effective setting of ``name`` with its source, and each layer (what EB's
        DescribeConfigurationSettings answers for an environment)."""
        env = await asyncio.to_thread(self.store.environment, name)
        resolved = resolve(*env.layers())
        saved_name = env.saved_configuration or ""
        effective = explain(
            ebextensions_layer(env.version_settings, env.version_origins),
            SourcedLayer(env.saved_settings, saved_source(saved_name)),
            SourcedLayer(env.settings, DIRECT),
        )
        return SettingsView(
            version=env.version_label,
            direct=env.settings,
            ebextensions=env.version_settings,
            resolved=resolved.values,
            sources={
                key: "direct"
                if key in env.settings
                else "saved"
                if key in env.saved_settings
                else "ebextensions"
                if key in env.version_settings
                else "default"
                for key in resolved.values
            },
            environment=resolved.env,
            saved_configuration=env.saved_configuration,
            saved=env.saved_settings,
            effective=[
                EffectiveSettingView(
                    namespace=s.namespace, option=s.option, value=s.value, source=s.source
                )
                for s in effective
            ],
        )

    async def operation(self, op_id: int) -> OperationView:
        return operation_view(await asyncio.to_thread(self.store.operation, op_id))

    # use cases ----------------------------------------------------------------------

    async def check_create(self, spec: inputs.CreateEnvironment) -> Checked:
        """Everything that can be checked before the version is uploaded (a dry run)."""
        self._checked(spec, self._saved(spec), with_version=False)
        return Checked(ok=True)

    async def create(self, spec: inputs.CreateEnvironment) -> EnvironmentCreated:
        """Record the environment and start launching its version (from a saved
        configuration when ``spec`` names one)."""
        return self._create(spec, self._saved(spec))

    def _saved(self, spec: inputs.CreateEnvironment) -> SavedConfiguration | None:
        if spec.saved_configuration is None:
            return None
        return self.store.saved_configuration(spec.application, spec.saved_configuration)

    def _create(
        self,
        spec: inputs.CreateEnvironment,
        saved: SavedConfiguration | None,
        *,
        copied: bool = False,
    ) -> EnvironmentCreated:
        """``copied``: the settings are another environment's (a clone), sealed secrets
        included, not a caller's."""
        name, cname, settings, version = self._checked(
            spec, saved, with_version=True, copied=copied
        )
        if version is None:
            raise InvalidInput("version_label is required: upload a version first.")
        env = self.store.create_environment(
            name,
            spec.application,
            cname,
            settings,
            spec.desired_capacity,
            # EB's saved configuration carries the platform too; a named one wins
            spec.platform or (saved.platform if saved is not None else None),
            saved,
        )
        op = self.ops.create(env, version.label)
        self._report_inert(env, {}, settings)
        return EnvironmentCreated(operation=op.id, environment=self._view(env.name))

    def _check_resolved(self, resolved: ResolvedSettings) -> None:
        """`check_sizes`, and the HTTPS listener's certificates are stored ones."""
        check_sizes(resolved)
        listener_rules.check(resolved.values)
        self._check_process_reachable(resolved)
        names = certificates.referenced_names(resolved.get(HTTPS_LISTENER, "SSLCertificateArns"))
        stored = {c.name for c in self.store.certificates()}
        for name in names:
            if name not in stored:
                raise InvalidInput(
                    f"Certificate {name!r} (in {HTTPS_LISTENER} SSLCertificateArns) is not "
                    f"stored: add it first with beanpole certs add {name} --cert FILE --key "
                    "FILE (beanpole certs list shows those stored)."
                )
        if resolved.get("beanpole:proxy", "RedirectHTTPToHTTPS") == "true" and not names:
            raise InvalidInput(
                "beanpole:proxy RedirectHTTPToHTTPS needs an HTTPS listener to redirect to: "
                f"set {HTTPS_LISTENER} SSLCertificateArns to a certificate (beanpole certs add)."
            )

    def _check_process_reachable(self, resolved: ResolvedSettings) -> None:
        """A listener rule's process is reached at each instance's own address: refused
        where the environment's instances share the host's network."""
        to_process = [
            r.name
            for r in listener_rules.rules(resolved.values)
            if r.process != listener_rules.DEFAULT_PROCESS
        ]
        if not to_process:
            return
        runtime = resolved.get("beanpole:instance", "Runtime")
        if (runtime if runtime != "default" else self.default_runtime) == "docker":
            return  # a container has an address of its own
        fix = "or send the rule to the default process."
        if resolved.get("beanpole:instance", "NetworkIsolation") == "none":
            raise InvalidInput(
                f"Listener rule {to_process[0]!r} sends requests to a process on a port of its "
                "own, which needs instances with a network of their own: set "
                f"beanpole:instance NetworkIsolation to auto (the default), {fix}"
            )
        if self.shared_network:
            raise InvalidInput(
                f"Listener rule {to_process[0]!r} sends requests to a process on a port of its "
                "own, which needs instances with a network of their own, and this server's "
                f"share the host's ({self.shared_network}): run Beanpole as root, set "
                f"beanpole:instance Runtime to docker, {fix}"
            )

    def _report_inert(
        self, env: Environment, before: Mapping[str, str], after: Mapping[str, str]
    ) -> None:
        """Say once which of EB's options given mean nothing here (`settings.inert`)."""
        new = [k for k in inert_keys(dict(after), frozenset(OPTIONS)) if k not in before]
        if new:
            self.store.add_event(
                f"Beanpole keeps these options as set but gives them no meaning: {', '.join(new)}.",
                severity=Severity.WARN,
                environment_id=env.id,
                application=env.application,
            )

    def _checked(
        self,
        spec: inputs.CreateEnvironment,
        saved: SavedConfiguration | None,
        *,
        with_version: bool,
        copied: bool = False,
    ) -> tuple[str, str, dict[str, str], Version | None]:
        name = check_env_name(spec.name)
        check_app_name(spec.application)
        if spec.platform == "docker" and not self.containers:
            # Refused before anything is uploaded: no bundle can run on it here.
            raise InvalidInput(
                "The docker platform needs a server that runs containers, and Docker's engine "
                "does not answer here: install and start it with `scripts/bootstrap.sh "
                "--docker`, then restart the server (beanpole server stop, beanpole server "
                "start). Or create the environment with --platform python, node, static or "
                "procfile (or no --platform, to detect it from the bundle)."
            )
        cname = check_cname(spec.cname or name)
        # a caller's sealed-looking value is refused; a clone's copies are its source's
        direct = dict(spec.settings) if copied else self.ops.fleet.secrets.seal(spec.settings, [])
        if spec.scale is not None:
            direct.update(capacity_settings(spec.scale))
        settings = validate(direct)
        # Checked over the version's .ebextensions once there is one (not in a dry run).
        version = None
        if spec.version_label is not None and with_version:
            version = self.store.version(spec.application, spec.version_label)  # NotFound
        layer = version.ebextensions if version else {}
        self._check_resolved(resolve(layer, saved.settings if saved else {}, settings))
        if any(e.name == name for e in self.store.environments()):
            raise Conflict(
                f"Environment {name} already exists. Deploy to it with "
                f"'beanpole deploy {name}', or choose another name."
            )
        return name, cname, settings, version

    async def clone(self, name: str, spec: inputs.CloneEnvironment) -> EnvironmentCreated:
        """A new environment running ``name``'s version with its direct settings and its
        copy of the saved configuration it was created from (blue/green: deploy to the
        clone, then swap)."""
        source = self.store.environment(name)
        if source.version_label is None:
            raise InvalidInput(
                f"Environment {name} runs no version yet, so there is nothing to clone. "
                "Wait until it is Ready."
            )
        inherited = None
        if source.saved_configuration is not None:
            inherited = SavedConfiguration(
                source.application,
                source.saved_configuration,
                source.saved_settings,
                source.created_at,
            )
        return self._create(
            inputs.CreateEnvironment(
                name=spec.name,
                application=source.application,
                cname=spec.cname,
                version_label=source.version_label,
                settings=source.settings,
                platform=cast("inputs.PlatformName | None", source.platform),
            ),
            inherited,
            copied=True,
        )

    async def deploy(
        self, name: str, spec: inputs.Deploy, *, dry_run: bool = False
    ) -> OperationStarted | Checked:
        """Deploy a version; a dry run checks that the environment can take a deployment
        now (before a client uploads a new version for it) and starts nothing."""
        env = self.store.environment(name)
        if dry_run:
            self.ops.require_ready(env)
            return Checked(ok=True)
        if spec.version_label is None:
            raise InvalidInput("version_label is required: upload a version first.")
        version = self.store.version(env.application, spec.version_label)
        self._check_resolved(resolve(*env.layers(version.ebextensions)))
        op = self.ops.deploy(env, spec.version_label, policy=spec.policy)
        return OperationStarted(operation=op.id)

    async def abort(self, name: str) -> AbortRequested:
        env = self.store.environment(name)
        self.ops.abort(env)
        running = [op for op in self.store.running_operations() if op.environment_id == env.id]
        return AbortRequested(operation=running[0].id if running else None)

    async def rollback(self, name: str) -> RollbackStarted:
        """Deploy the previous release again: its version and its settings."""
        env = self.store.environment(name)
        releases = self.store.releases(name, limit=2)
        if len(releases) < 2:
            raise InvalidInput(f"Environment {name} has no previous release to roll back to.")
        previous = releases[1]
        op = self.ops.deploy(env, previous.version_label, settings=previous.settings)
        return RollbackStarted(operation=op.id, version=previous.version_label)

    async def scale(
        self,
        name: str,
        count: int | None = None,
        *,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> ScaleStarted:
        """``count``: pin the environment at it (MinSize = MaxSize = count, as `eb scale`);
        ``min_size``/``max_size``: the bounds auto scaling moves within (the desired count
        is clamped into them). The notes say what changed (events too)."""
        env = self.store.environment(name)
        change = plan_scale(
            bounds(resolve(*env.layers())), count, min_size=min_size, max_size=max_size
        )
        settings = validate({**env.settings, **change.settings})
        resolved = resolve(*env.layers(direct=settings))
        self._check_resolved(resolved)
        op = self.ops.configure(env, settings, desired=change.desired, notes=change.notes)
        desired = desired_count(
            resolved, env.desired_capacity if change.desired is None else change.desired
        )
        return ScaleStarted(operation=op.id, desired_capacity=desired, notes=list(change.notes))

    async def configure(self, name: str, change: inputs.SettingsChange) -> OperationStarted:
        """Set and remove direct settings; the result is checked before anything runs."""
        env = self.store.environment(name)
        changes = self.ops.fleet.secrets.seal(change.set, change.secret)
        merged = merge_changes(env.settings, changes, change.remove)
        self._check_resolved(resolve(*env.layers(direct=merged)))
        op = self.ops.configure(env, merged)
        return OperationStarted(operation=op.id)

    async def update(
        self,
        name: str,
        *,
        version_label: str | None = None,
        set_: dict[str, str] | None = None,
        remove: list[str] | None = None,
    ) -> OperationStarted | None:
        """EB's UpdateEnvironment: a new version, settings changes, or both in one
        deployment (through the environment's deployment policy). None: nothing to do."""
        env = self.store.environment(name)
        changes = self.ops.fleet.secrets.seal(set_ or {}, [])  # refuses sealed-looking values
        merged = merge_changes(env.settings, changes, remove or [])
        if version_label is None or version_label == env.version_label:
            if merged == env.settings:
                return None
            self._check_resolved(resolve(*env.layers(direct=merged)))
            op = self.ops.configure(env, merged)
        else:
            version = self.store.version(env.application, version_label)
            self._check_resolved(resolve(*env.layers(version.ebextensions, merged)))
            op = self.ops.deploy(env, version_label, settings=merged)
        self._report_inert(env, env.settings, merged)
        return OperationStarted(operation=op.id)

    async def swap(self, name: str, other: str) -> SwapResult:
        env, peer = self.store.environment(name), self.store.environment(other)
        await self.ops.swap(env, peer)
        return SwapResult(environments=[self._view(n) for n in (name, other)])

    async def terminate(self, name: str) -> OperationStarted:
        op = self.ops.terminate(self.store.environment(name))
        return OperationStarted(operation=op.id)

    # views, built in the calling thread -----------------------------------------------

    def _summary(self, env: Environment, in_service: int) -> EnvironmentSummary:
        return EnvironmentSummary.model_validate({**self._fields(env), "in_service": in_service})

    def _view(self, name: str) -> EnvironmentView:
        env = self.store.environment(name)
        now = time.time()
        live = self.store.instances(env.name)
        in_service = sum(i.state is InstanceState.IN_SERVICE for i in live)
        instances = [instance_view(i, now) for i in live]
        return EnvironmentView.model_validate(
            {
                **self._fields(env),
                "in_service": in_service,
                "instances": instances,
                "domains": self.store.domains(env.id).get(env.id, []),
            }
        )

    def _fields(self, env: Environment) -> dict[str, object]:
        resolved = resolve(*env.layers())
        return {
            "id": env.id,
            "name": env.name,
            "application": env.application,
            "cname": env.cname,
            "status": env.status,
            "health": env.health,
            "version": env.version_label,
            "deployment_id": env.deployment_id,
            "url": self.url(env.cname),
            "causes": list(env.causes),
            "created_at": env.created_at,
            "updated_at": env.updated_at,
            "environment_variables": sorted(resolved.env),
            "desired_capacity": desired_count(resolved, env.desired_capacity, env.scheduled_bounds),
            "platform": env.platform,
            "autoscaling": self._autoscaling(env, resolved),
        }

    async def autoscaling(self, name: str) -> AutoscalingView:
        def read() -> AutoscalingView:
            env = self.store.environment(name)
            return self._autoscaling(env, resolve(*env.layers()))

        return await asyncio.to_thread(read)

    def _autoscaling(self, env: Environment, resolved: ResolvedSettings) -> AutoscalingView:
        now = time.time()
        override = env.scheduled_bounds
        limits = bounds(resolved, override)
        verdict = self.autoscaler.verdict(env.name)
        policy = verdict.policy
        if policy is None:
            explicit = {*env.version_settings, *env.saved_settings, *env.settings}
            policy = policy_from(resolved.values, explicit)
        actions = schedule.actions_from(resolved.values)
        memory = env.scaling
        decided_at, decided = memory.get("decided_at"), memory.get("decision")
        current = verdict.decision
        return AutoscalingView(
            min_size=limits.min_size,
            max_size=limits.max_size,
            desired_capacity=desired_count(resolved, env.desired_capacity, override),
            bounds_source=f"scheduled action {override.action}" if override else "settings",
            policy=policy.describe(),
            measure=policy.measure,
            unit=MEASURES[policy.measure].unit,
            value=current.value if current else None,
            current=(
                ScalingDecisionView(at=verdict.decided_at, message=current.message)
                if current
                else None
            ),
            last_decision=(
                ScalingDecisionView(at=float(decided_at), message=str(decided))
                if decided_at is not None and decided
                else None
            ),
            last_activity_at=memory.get("activity_at"),
            upcoming=[
                ScheduledFiringView(action=f.action.name, at=f.at, description=schedule.describe(f))
                for f in schedule.upcoming(actions, now)
            ],
        )
