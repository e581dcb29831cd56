"""The nouns Beanpole manages, in Elastic Beanstalk's vocabulary.

Application → versions (an immutable bundle + label) and environments. An
environment runs instances of one *release*: a version plus a snapshot of the
option settings. These are plain records; the store persists them and the
operations change them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from beanpole.core.autoscaling.bounds import Override
from beanpole.core.bundle_steps import Steps
from beanpole.core.errors import InvalidInput


class EnvStatus(StrEnum):
    LAUNCHING = "Launching"
    UPDATING = "Updating"
    READY = "Ready"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


class Health(StrEnum):
    """Basic health colours."""

    GREY = "Grey"
    GREEN = "Green"
    YELLOW = "Yellow"
    RED = "Red"


class InstanceState(StrEnum):
    PENDING = "pending"  # started, not yet answering its health check; weight 0
    IN_SERVICE = "in-service"  # answering, receiving traffic
    DRAINING = "draining"  # leaving the load balancer: weight 0, in-flight requests finish
    # The previous version's, during a deployment's bake window: weight 0 in HAProxy (still
    # checked), processes alive, so a rollback puts it back in service without a start.
    STANDBY = "standby"
    STOPPING = "stopping"  # out of the load balancer, its processes being stopped
    STOPPED = "stopped"  # gone; kept for history and logs


class BuildStatus(StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    BUILT = "built"
    FAILED = "failed"


class Severity(StrEnum):
    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    FATAL = "FATAL"


class OperationKind(StrEnum):
    CREATE = "create"
    DEPLOY = "deploy"
    CONFIGURE = "configure"  # settings or scale change
    TERMINATE = "terminate"


class OperationStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,38}[A-Za-z0-9]$")
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")


def check_env_name(name: str) -> str:
    """EB's rule: 4 to 40 letters, digits and hyphens, not starting or ending with a hyphen."""
    if not _ENV_NAME.match(name):
        raise InvalidInput(
            f"Environment name {name!r} is not valid. Use 4 to 40 letters, digits and "
            "hyphens, starting and ending with a letter or digit (for example 'shop-prod')."
        )
    return name


def check_cname(cname: str) -> str:
    if not _ENV_NAME.match(cname):
        raise InvalidInput(
            f"CNAME prefix {cname!r} is not valid. Use 4 to 40 letters, digits and hyphens, "
            "starting and ending with a letter or digit."
        )
    return cname.lower()


def check_app_name(name: str) -> str:
    if not _APP_NAME.match(name):
        raise InvalidInput(
            f"Application name {name!r} is not valid. Use up to 100 letters, digits, "
            "'.', '_' and '-', starting with a letter or digit."
        )
    return name


def check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise InvalidInput(
            f"Version label {label!r} is not valid. Use up to 100 letters, digits and "
            "'.', '_', '@', '+', '-', starting with a letter or digit."
        )
    return label


MAX_CONFIGURATION_NAME = 100


def check_configuration_name(name: str) -> str:
    """EB's rule for a saved configuration (template) name: 1 to 100 characters, no '/'.
    Control characters are refused too: the name is shown in tables and events."""
    if (
        not 1 <= len(name) <= MAX_CONFIGURATION_NAME
        or "/" in name
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or name != name.strip()
    ):
        raise InvalidInput(
            f"Saved configuration name {name[:120]!r} is not valid. Use 1 to "
            f"{MAX_CONFIGURATION_NAME} characters without '/', control characters or "
            "leading or trailing spaces (for example 'prod-baseline')."
        )
    return name


def new_instance_id() -> str:
    return "i-" + secrets.token_hex(4)


@dataclass(frozen=True)
class Application:
    name: str
    created_at: float
    id: str = ""  # a-xxxxxxxxxx (`beanpole.core.ids`), for ARNs; names are never reused


@dataclass(frozen=True)
class Version:
    application: str
    label: str
    digest: str
    created_at: float
    build_status: BuildStatus
    build_error: str = ""
    description: str = ""
    # Its .ebextensions option settings, read once at upload (versions are immutable), and
    # the warnings about what was ignored, which become events when it is deployed.
    ebextensions: dict[str, str] = field(default_factory=dict)
    ebextensions_warnings: tuple[str, ...] = ()
    id: str = ""  # av-xxxxxxxxxx (`beanpole.core.ids`), for ARNs
    # which .ebextensions file set each of its option settings (empty for versions uploaded
    # before Beanpole recorded it)
    ebextensions_origins: dict[str, str] = field(default_factory=dict)
    platform: str = ""  # what its build detected ("python" ...); "" until it is built
    # Its .ebextensions files, commands and container_commands (issue 8), read at upload.
    steps: Steps = field(default_factory=Steps)


@dataclass(frozen=True)
class Environment:
    name: str
    application: str
    cname: str
    status: EnvStatus
    health: Health
    version_label: str | None  # the version the environment runs (desired once Ready)
    settings: dict[str, str]  # "namespace:Option" -> value, as given directly
    deployment_id: int
    created_at: float
    updated_at: float
    causes: tuple[str, ...] = ()
    health_status: str = "Unknown"  # enhanced health: Ok, Info, Warning, Degraded, Severe, ...
    version_settings: dict[str, str] = field(default_factory=dict)  # version_label's .ebextensions
    # e-xxxxxxxxxx (`beanpole.core.ids`): what every record of it refers to, since its name is
    # free again once it is terminated
    id: str = ""
    # how many instances it should run, read through `beanpole.core.capacity.desired_count`
    # (clamped to MinSize..MaxSize); None: not decided yet, MinSize
    desired_capacity: int | None = None
    # the platform it names (`beanpole.core.platforms.PLATFORMS`); None: detected per version
    platform: str | None = None
    # The saved configuration it was created from (None: none), and that configuration's
    # settings as they were then: copied, so deleting the saved configuration changes nothing
    saved_configuration: str | None = None
    saved_settings: dict[str, str] = field(default_factory=dict)
    version_origins: dict[str, str] = field(default_factory=dict)  # of version_settings
    # the bounds a scheduled action set when it fired (None: the settings' own)
    scheduled_bounds: Override | None = None
    # the autoscaler's memory (`services.autoscaler`): last decision, last activity, firing
    scaling: dict[str, Any] = field(default_factory=dict)

    def layers(
        self,
        version_settings: Mapping[str, str] | None = None,
        direct: Mapping[str, str] | None = None,
    ) -> tuple[Mapping[str, str], Mapping[str, str], Mapping[str, str]]:
        """Its option settings, lowest precedence first, for `beanpole.core.settings.resolve`:
        the .ebextensions of a version, the saved configuration it was created from, then the
        settings given directly (EB's order). By default those of its current release; a
        deployment passes the layer of the version it deploys and the direct settings it
        deploys with (a rollback: its release's)."""
        return (
            self.version_settings if version_settings is None else version_settings,
            self.saved_settings,
            self.settings if direct is None else direct,
        )


@dataclass(frozen=True)
class SavedConfiguration:
    """Named option settings of an application (EB's configuration template): an
    environment created from it starts with them, below its direct settings."""

    application: str
    name: str
    settings: dict[str, str]
    created_at: float
    description: str = ""
    platform: str | None = None  # the platform of the environment it was saved from
    environment: str | None = None  # the environment it was saved from (its name then)


@dataclass(frozen=True)
class Instance:
    id: str
    environment: str
    version_label: str
    release_key: str  # digest of version + settings the instance was started with
    deployment_id: int
    port: int  # with ``host``, where the runtime made it answer (0 until it has started)
    state: InstanceState
    created_at: float
    host: str = "127.0.0.1"
    pid: int = 0
    healthy: bool = False
    causes: tuple[str, ...] = ()
    weight: int = 100  # load-balancer weight while in service (lowered by traffic splitting)
    health_status: str = "Pending"
    environment_id: str = ""  # `environment` is its name, for display and the load balancer
    # a listener rule's processes it runs, each at its own port on ``host`` (isolated
    # instances only: `core.listener_rules`); set once it has started
    process_ports: Mapping[str, int] = field(default_factory=dict)
    # the user its processes run as (`Artifact.run_as`); None: as Beanpole's own user (not
    # root), or started before Beanpole recorded it (every application ran as one user)
    run_as: str | None = None


@dataclass(frozen=True)
class Release:
    """A version plus the settings it ran with: what a rollback restores."""

    id: int
    environment: str
    deployment_id: int
    version_label: str
    settings: dict[str, str]
    created_at: float
    environment_id: str = ""


@dataclass(frozen=True)
class Event:
    id: int
    time: float
    severity: Severity
    environment: str | None
    application: str | None
    version_label: str | None
    message: str
    environment_id: str | None = None  # `environment` is its name (None with it)
    request_id: str | None = None  # the API call whose operation it belongs to (`core.requests`)


@dataclass(frozen=True)
class Operation:
    id: int
    environment: str
    kind: OperationKind
    status: OperationStatus
    target_version: str | None
    previous_version: str | None
    message: str
    started_at: float
    finished_at: float | None
    params: dict[str, object] = field(default_factory=dict)
    environment_id: str = ""  # `environment` is its name
    request_id: str | None = None  # the API call that started it (`core.requests`)
