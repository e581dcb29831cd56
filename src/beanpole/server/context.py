"""Everything the server's parts share, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from beanpole.bundle import BundleStore
from beanpole.home import Home, ServerConfig
from beanpole.model import InstanceState
from beanpole.runtime.supervisor import Supervisor
from beanpole.server.fleet import Fleet
from beanpole.server.operations import Operations
from beanpole.store.db import Store

if TYPE_CHECKING:
    from beanpole.server.monitor import Monitor


@dataclass
class Context:
    home: Home
    config: ServerConfig
    token: str
    store: Store
    bundles: BundleStore
    fleet: Fleet
    ops: Operations
    supervisor: Supervisor
    monitor: Monitor | None = None

    def url(self, cname: str) -> str:
        port = "" if self.config.lb_port == 80 else f":{self.config.lb_port}"
        return f"http://{cname}.{self.config.domain}{port}"

    def logs(self, env: str, instance_id: str | None, lines: int) -> list[dict[str, Any]]:
        """The last lines of every log file of the environment's live instances."""
        out = []
        for instance in self.store.instances(env, live=instance_id is not None):
            if instance_id is not None and instance.id != instance_id:
                continue
            if instance_id is None and instance.state is InstanceState.STOPPED:
                continue
            folder = self.home.instance_dir(instance.id) / "logs"
            files = sorted(folder.glob("*.log")) if folder.is_dir() else []
            out.append(
                {
                    "id": instance.id,
                    "state": instance.state,
                    "files": [
                        {"name": f.name, "lines": self.supervisor.tail(f, lines)} for f in files
                    ],
                }
            )
        if instance_id is not None and not out:
            from beanpole.errors import NotFound

            raise NotFound(
                f"Environment {env} has no instance {instance_id!r}. "
                f"See its instances with: beanpole status {env}"
            )
        return out
