"""Everything the server's parts share, built once at start-up: the adapters, the loops
and the services every face calls."""

from __future__ import annotations

from dataclasses import dataclass

from beanpole.adapters.bundles import BundleStore
from beanpole.adapters.store.db import Store
from beanpole.home import Home, ServerConfig
from beanpole.ports import Runtime
from beanpole.services.access import Access
from beanpole.services.applications import Applications
from beanpole.services.certificates import Certificates
from beanpole.services.configurations import Configurations
from beanpole.services.console import ConsolePages, Feed
from beanpole.services.domains import Domains
from beanpole.services.environments import Environments
from beanpole.services.fleet import Fleet
from beanpole.services.health import HealthService
from beanpole.services.keys import AccessKeys
from beanpole.services.logs import EnvironmentLogs
from beanpole.services.monitor import Monitor
from beanpole.services.nodes import Nodes
from beanpole.services.operations import Operations
from beanpole.services.users import Users


def environment_url(config: ServerConfig, cname: str) -> str:
    """Where an environment answers: its CNAME prefix under the configured domain."""
    port = "" if config.lb_port == 80 else f":{config.lb_port}"
    return f"http://{cname}.{config.domain}{port}"


@dataclass
class Context:
    home: Home
    config: ServerConfig
    token: str
    store: Store
    bundles: BundleStore
    fleet: Fleet
    ops: Operations
    runtime: Runtime
    monitor: Monitor
    applications: Applications
    environments: Environments
    health: HealthService
    logs: EnvironmentLogs
    configurations: Configurations
    keys: AccessKeys
    users: Users
    console: ConsolePages
    feed: Feed
    domains: Domains
    certificates: Certificates
    access: Access
    nodes: Nodes

    def url(self, cname: str) -> str:
        return environment_url(self.config, cname)
