"""What a face hands a service: request bodies, checked for shape (types, ranges) here and
for meaning (names, settings) by the services."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PolicyName = Literal[
    "AllAtOnce", "Rolling", "RollingWithAdditionalBatch", "Immutable", "TrafficSplitting"
]

PlatformName = Literal["python", "node", "static", "docker", "procfile"]
"""What an environment can name as its platform (`beanpole.core.platforms.PLATFORMS`)."""

MAX_INSTANCES = 100
"""The most instances `scale` (and `create --scale`) asks for: one host runs them all."""


class Input(BaseModel):
    """Unknown fields are refused, so a misspelt option is an error, not silently ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateEnvironment(Input):
    name: str
    application: str
    version_label: str | None = None
    cname: str | None = None
    settings: dict[str, str] = Field(default_factory=dict)
    scale: int | None = Field(
        default=None, ge=0, le=MAX_INSTANCES, description="Instances to run (as `scale` sets)"
    )
    desired_capacity: int | None = Field(
        default=None,
        ge=0,
        le=MAX_INSTANCES,
        description="Instances to start with, clamped to MinSize..MaxSize (default MinSize)",
    )
    platform: PlatformName | None = Field(
        default=None,
        description="The platform every version runs on (default: detected from each bundle)",
    )
    saved_configuration: str | None = Field(
        default=None,
        description="Start from this saved configuration of the application (EB's "
        "TemplateName): its settings apply below the ones given here",
    )


class CloneEnvironment(Input):
    """A new environment running the source's version with its direct settings."""

    name: str
    cname: str | None = None


class Deploy(Input):
    version_label: str | None = Field(default=None, description="Required unless a dry run")
    policy: PolicyName | None = None


class Lifecycle(Input):
    max_versions: int = Field(ge=0, le=10000)


class Swap(Input):
    other: str


class AddDomain(Input):
    domain: str = Field(max_length=300, description="A host name, such as shop.example.com")


MAX_PEM_TEXT = 64 * 1024
"""The longest certificate, chain or key a request may carry: a body past it is refused by
validation before anything parses it (a stored PEM is smaller still: `core.certificates`)."""


class AddCertificate(Input):
    """A certificate to store under ``name``, or to renew when the name exists."""

    name: str = Field(max_length=64, description="Its name, such as shop-example-com")
    certificate: str = Field(max_length=MAX_PEM_TEXT, description="The leaf certificate (PEM)")
    private_key: str = Field(max_length=MAX_PEM_TEXT, description="Its unencrypted key (PEM)")
    chain: str = Field(
        default="", max_length=MAX_PEM_TEXT, description="Intermediate certificates (PEM)"
    )


class Scale(Input):
    """``count`` pins the environment (MinSize = MaxSize = count); ``min_size`` and
    ``max_size`` set the bounds auto scaling moves within. One or the other."""

    count: int | None = Field(default=None, ge=0, le=MAX_INSTANCES)
    min_size: int | None = Field(default=None, ge=0, le=MAX_INSTANCES)
    max_size: int | None = Field(default=None, ge=1, le=MAX_INSTANCES)


class SettingsChange(Input):
    set: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)
    secret: list[str] = Field(
        default_factory=list,
        description="Keys of `set` (environment properties) to store encrypted and show "
        "masked (****) everywhere: `beanpole setenv ENV --secret K=V`.",
    )


class SaveConfiguration(Input):
    """A saved configuration: ``environment``'s own settings (its saved configuration's and
    its direct ones, and its platform), with ``settings`` laid over them (EB's
    CreateConfigurationTemplate with an EnvironmentId and OptionSettings)."""

    name: str
    environment: str | None = None
    settings: dict[str, str] = Field(default_factory=dict)
    description: str = Field(default="", max_length=200)
