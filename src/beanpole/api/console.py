"""What the web console reads: one view per page, so a page shows its data after one round
trip (`GET /api/v1/console/...`), then keeps it current from the live stream."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from beanpole.api.views import (
    ApplicationView,
    EnvironmentSummary,
    EnvironmentView,
    EventView,
    HealthView,
    MetricsView,
    OperationView,
    ReleaseView,
    SettingsView,
    VersionView,
    View,
)

MetricsRange = Literal["1h", "3h", "1d", "2w"]


class ServerInfo(View):
    version: str
    lb_port: int
    domain: str


class OverviewPage(View):
    applications: list[ApplicationView]
    environments: list[EnvironmentSummary]
    versions: dict[str, list[VersionView]] = Field(
        description="Each application's versions, newest first"
    )
    last_events: dict[str, EventView] = Field(description="Each environment's latest event")
    server: ServerInfo


class OptionView(View):
    """An option Beanpole gives meaning to: its type, default, range and what a change does."""

    namespace: str
    name: str
    kind: str
    default: str
    help: str
    effect: str
    minimum: int | None
    maximum: int | None
    choices: list[str]


class EnvironmentPage(View):
    environment: EnvironmentView
    health: HealthView
    metrics: MetricsView = Field(description="The last hour, 10 s points")
    events: list[EventView] = Field(description="The latest 200, oldest first")
    releases: list[ReleaseView]
    settings: SettingsView
    options: list[OptionView]
    versions: list[VersionView] = Field(description="Its application's, newest first")
    operation: OperationView | None = Field(description="The operation running now, if any")
