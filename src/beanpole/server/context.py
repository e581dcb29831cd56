"""Everything the server's parts share, built once at start-up."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from beanpole.adapters.bundles import BundleStore
from beanpole.adapters.logs import Stream, follow, tail_stream, write_bundle
from beanpole.adapters.store.db import Store
from beanpole.core.errors import NotFound
from beanpole.core.model import Instance, InstanceState
from beanpole.home import Home, ServerConfig
from beanpole.ports import Runtime
from beanpole.services.fleet import Fleet
from beanpole.services.monitor import Monitor
from beanpole.services.operations import Operations


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

    def url(self, cname: str) -> str:
        port = "" if self.config.lb_port == 80 else f":{self.config.lb_port}"
        return f"http://{cname}.{self.config.domain}{port}"

    def log_tail(self, env: str, instance_id: str | None, lines: int) -> dict[str, Any]:
        """The last lines of each log of each instance, the access log and the latest deploy
        log. Stopped instances whose logs are kept are listed; their lines are read when
        ``instance_id`` asks for one."""
        logs = self.ops.logs
        instances = []
        for source in logs.instance_sources(env, self._log_instances(env), instance_id):
            stopped = source.state == InstanceState.STOPPED
            read = lines if instance_id is not None or not stopped else 0
            instances.append(
                {
                    "id": source.id,
                    "state": source.state,
                    "last_written": source.last_written() if stopped else None,
                    "files": [_tail(s, read) for s in source.streams],
                }
            )
        if instance_id is not None:
            return {"instances": instances, "access": None, "deploy": None}
        access = logs.access_source(env).streams
        deploys = logs.deploy_source(env).streams
        deploy = None
        if deploys:
            deploy = _tail(deploys[-1], lines)
            with contextlib.suppress(NotFound):
                op = self.store.operation(int(deploys[-1].path.stem))
                deploy.update(operation=op.id, kind=op.kind, status=op.status)
        return {
            "instances": instances,
            "access": _tail(access[0], lines) if access else None,
            "deploy": deploy,
        }

    def log_follow(self, env: str, instance_id: str | None, cursor: str | None) -> dict[str, Any]:
        """The lines written since ``cursor`` (see `logs.follow`)."""
        sources = self.ops.logs.sources(env, self._log_instances(env), instance_id)
        page = follow(env, [s for source in sources for s in source.streams], cursor)
        return {
            "lines": [asdict(line) for line in page.lines],
            "cursor": page.cursor,
            "more": page.more,
        }

    def log_bundle(self, env: str, instance_id: str | None) -> Path:
        """A zip of every log (rotated parts too) in a temporary file the caller removes."""
        sources = self.ops.logs.sources(env, self._log_instances(env), instance_id)
        fd, name = tempfile.mkstemp(dir=self.home.logs, prefix=".bundle-", suffix=".zip")
        os.close(fd)
        try:
            write_bundle(sources, Path(name))
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def _log_instances(self, env: str) -> list[Instance]:
        """The environment's instances, stopped ones too, but not those of an earlier
        environment of the same name."""
        since = self.store.environment(env).created_at
        return [i for i in self.store.instances(env, live=False) if i.created_at >= since]


def _tail(stream: Stream, lines: int) -> dict[str, Any]:
    """A stream's name, size and last lines (None: not read)."""
    try:
        size = stream.path.stat().st_size
    except OSError:
        size = 0
    return {
        "name": stream.name,
        "size": size,
        "lines": tail_stream(stream, lines) if lines else None,
    }
