"""What a service answers: the views every face renders and the client parses.

Frozen pydantic models, so the REST face declares them as response models (the OpenAPI
document carries their schemas) and the client validates what it receives against the same
classes. Statuses are the core's enums, so their values are part of the schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_serializer

from beanpole.core.model import (
    BuildStatus,
    EnvStatus,
    Health,
    InstanceState,
    OperationKind,
    OperationStatus,
    Severity,
)
from beanpole.core.secrets import mask

Colour = Literal["Grey", "Green", "Yellow", "Red"]
Source = Literal["direct", "saved", "ebextensions", "default"]


class View(BaseModel):
    """Read-only; fields a newer server adds are ignored by an older client.

    Serialised with every secret environment property masked (`core.secrets.mask`): no
    view, whatever it carries, shows one.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    @field_serializer("*", mode="wrap")
    def _masked(self, value: Any, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # No return annotation: pydantic would take it as each field's serialised schema
        # (Any), and the OpenAPI document would lose every field's type.
        return mask(handler(value))


class ErrorDetail(View):
    code: str
    message: str


class ErrorBody(View):
    """The one shape of every error the REST API answers."""

    error: ErrorDetail


class Ping(View):
    ok: bool
    version: str
    pid: int


# applications and versions -------------------------------------------------------------


class ApplicationView(View):
    id: str
    name: str
    created_at: float


class VersionView(View):
    id: str
    application: str
    label: str
    digest: str
    created_at: float
    build_status: BuildStatus
    build_error: str
    description: str
    ebextensions: dict[str, str]
    ebextensions_warnings: list[str]


class LifecycleResult(View):
    max_versions: int
    deleted: list[str]


# environments ---------------------------------------------------------------------------


class InstanceView(View):
    id: str
    state: InstanceState
    health: Colour
    port: int
    pid: int
    host: str = "127.0.0.1"  # with ``port``, where HAProxy reaches it
    # "own": a network namespace of its own (fixed ports cannot collide); "host": shared
    network: Literal["own", "host"] = "host"
    version: str
    deployment_id: int
    causes: list[str]
    launched_at: float
    uptime_s: float


class ScheduledFiringView(View):
    action: str
    at: float
    description: str


class ScalingDecisionView(View):
    at: float
    message: str


class AutoscalingView(View):
    """An environment's auto scaling: bounds, the policy in force, the measure now, the
    latest verdict (a change, or why the count holds) and the scheduled actions to come."""

    min_size: int
    max_size: int
    desired_capacity: int
    bounds_source: str = Field(description='"settings", or "scheduled action NAME"')
    policy: str = Field(description="The policy in force, in words")
    measure: str
    unit: str
    value: float | None = Field(default=None, description="The measure now, in ``unit``")
    current: ScalingDecisionView | None = Field(
        default=None, description="The latest verdict: a change, or why the count holds"
    )
    last_decision: ScalingDecisionView | None = Field(
        default=None, description="The latest change of the desired count"
    )
    last_activity_at: float | None = None
    upcoming: list[ScheduledFiringView] = Field(default_factory=list)


class EnvironmentSummary(View):
    id: str
    name: str
    application: str
    cname: str
    status: EnvStatus
    health: Health
    version: str | None
    deployment_id: int
    url: str
    causes: list[str]
    created_at: float
    updated_at: float
    environment_variables: list[str]
    desired_capacity: int
    in_service: int = Field(default=0, description="Instances in service now")
    platform: str | None = Field(
        default=None, description="The platform it names; null: detected from each bundle"
    )
    autoscaling: AutoscalingView | None = None


class EnvironmentView(EnvironmentSummary):
    instances: list[InstanceView]
    domains: list[str] = Field(
        default_factory=list, description="Host names it answers on besides its CNAME"
    )


class OperationStarted(View):
    operation: int


class ScaleStarted(OperationStarted):
    """A scale: the desired count it set, and what it had to change in the bounds."""

    desired_capacity: int
    notes: list[str]


class EnvironmentCreated(OperationStarted):
    environment: EnvironmentView


class Checked(View):
    """A dry run (of create, of deploy): what can be checked before an upload passed."""

    ok: bool


class RollbackStarted(OperationStarted):
    version: str


class AbortRequested(View):
    operation: int | None


class SwapResult(View):
    environments: list[EnvironmentSummary]


class ReleaseView(View):
    deployment_id: int
    version: str
    settings: dict[str, str]
    created_at: float


class EffectiveSettingView(View):
    """One effective option and where its value comes from: ``direct``, ``saved:NAME`` (the
    saved configuration the environment was created from), ``.ebextensions/FILE`` or
    ``default``."""

    namespace: str
    option: str
    value: str
    source: str


class SettingsView(View):
    """Each layer and the result: ``direct`` (given with the CLI or API), ``saved`` (the
    saved configuration ``saved_configuration`` it was created from, as copied then),
    ``ebextensions`` (of the version the environment runs), ``resolved`` over the defaults
    and, for each resolved option, the layer it comes from (``sources``); ``effective``:
    every option with its precise source, sorted by namespace and option."""

    version: str | None
    direct: dict[str, str]
    ebextensions: dict[str, str]
    resolved: dict[str, str]
    sources: dict[str, Source]
    environment: dict[str, str]
    saved_configuration: str | None = None
    saved: dict[str, str] = Field(default_factory=dict)
    effective: list[EffectiveSettingView] = Field(default_factory=list)


class SavedConfigurationView(View):
    """A saved configuration (EB's configuration template): the option settings an
    environment created from it starts with, below its direct settings."""

    application: str
    name: str
    description: str
    platform: str | None
    environment: str | None  # the environment it was saved from
    settings: dict[str, str]
    created_at: float


class SavedConfigurationDeleted(View):
    application: str
    name: str


class DomainsView(View):
    """The host names an environment answers on besides its CNAME."""

    environment: str
    cname_url: str
    domains: list[str]


class CertificateView(View):
    """A stored certificate's facts: never its key, nor the PEM itself."""

    name: str
    domains: list[str] = Field(description="The host names it covers (wildcards one label deep)")
    not_before: str = Field(description="Valid from (ISO-8601, UTC)")
    not_after: str = Field(description="Valid until (ISO-8601, UTC)")
    days_left: int = Field(description="Whole days until it expires")
    expiring: bool = Field(description="It expires within 30 days: renew it")
    fingerprint: str = Field(description="SHA-1 of the certificate, upper-case hex")
    serial: str
    environments: list[str] = Field(
        description="Environments whose aws:elbv2:listener:443 SSLCertificateArns name it"
    )
    renewed: bool = Field(
        default=False, description="Answering an add: it replaced a certificate of that name"
    )


class CertificatesView(View):
    certificates: list[CertificateView]


class EventView(View):
    id: int
    time: float
    severity: Severity
    environment: str | None
    environment_id: str | None
    version: str | None
    message: str


class OperationView(View):
    id: int
    environment: str
    environment_id: str
    kind: OperationKind
    status: OperationStatus
    message: str
    started_at: float
    finished_at: float | None


# health and metrics ---------------------------------------------------------------------


class WindowView(View):
    """One 10 s (or 5 min) window of requests of an instance or an environment."""

    env: str
    instance: str | None
    start: float
    duration_s: float
    requests: int
    status_2xx: int
    status_3xx: int
    status_4xx: int
    status_5xx: int
    latency_ms: dict[str, float]  # percentile ("99.0") -> ms
    lines: int = 0
    requests_per_s: float
    latency_mean_ms: float = 0.0
    instances: int | None = Field(
        default=None,
        description="The environment's InService instances when the window closed "
        "(environment points only; a window with no request is stored with 0 requests)",
    )


class HostView(View):
    load1: float
    load5: float
    user: float
    system: float
    idle: float
    iowait: float


class InstanceHealth(View):
    id: str
    state: InstanceState
    version: str
    deployment_id: int
    launched_at: float
    status: str
    colour: Colour
    causes: list[str]
    requests: WindowView | None  # the latest window while it is recent, else None
    requests_ended_at: float | None = None  # when the latest window ended (None: never)
    cpu_percent: float | None
    rss_bytes: int | None
    processes: int | None


class HealthView(View):
    """``at`` is when the verdict was made (0: none could be; the stored statuses)."""

    name: str
    environment_status: EnvStatus
    version: str | None
    deployment_id: int
    at: float
    load_average: tuple[float, float]
    status: str
    colour: Colour
    causes: list[str]
    requests: WindowView | None  # the latest window while it is recent, else None
    requests_ended_at: float | None = None  # when the latest window ended (None: never)
    sampling: int
    host: HostView | None
    instances: list[InstanceHealth]
    autoscaling: AutoscalingView | None = None  # the desired count, bounds, last decision


class MetricsView(View):
    environment: str
    instance: str | None
    resolution_s: int
    points: list[WindowView]


# logs -----------------------------------------------------------------------------------


class LogFile(View):
    """A log's name, size and last lines (None: not read)."""

    name: str
    size: int
    lines: list[str] | None


class DeployLog(LogFile):
    """The latest operation's deploy log, with the operation when it is still recorded."""

    operation: int | None = None
    kind: OperationKind | None = None
    status: OperationStatus | None = None


class InstanceLogs(View):
    id: str
    state: InstanceState
    last_written: float | None
    files: list[LogFile]


class LogTail(View):
    instances: list[InstanceLogs]
    access: LogFile | None
    deploy: DeployLog | None


class LogLine(View):
    source: str
    file: str
    line: str


class LogPage(View):
    """The lines since the cursor; ``more``: the read budget ran out, ask again at once."""

    lines: list[LogLine]
    cursor: str
    more: bool
