"""An environment's logs as the faces show them: the last lines, new lines since a cursor,
and a zip of everything. File reading runs in a worker thread, never on the event loop.

`beanpole.adapters.logs` knows the files; this service knows whose they are (the
environment's instances, stopped ones too, but not those of an earlier environment of the
same name) and shapes the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from beanpole.adapters.logs import Logs, Stream, follow, tail_stream, write_bundle
from beanpole.adapters.store.db import Store
from beanpole.api.views import DeployLog, InstanceLogs, LogFile, LogLine, LogPage, LogTail
from beanpole.core.errors import NotFound
from beanpole.core.model import Instance, InstanceState


class EnvironmentLogs:
    def __init__(self, store: Store, logs: Logs, scratch: Path) -> None:
        self.store = store
        self.logs = logs
        self.scratch = scratch  # where bundles are written before they are sent

    async def tail(self, env: str, instance_id: str | None, lines: int) -> LogTail:
        """The last lines of each log of each instance, the access log and the latest
        deploy log. Stopped instances whose logs are kept are listed; their lines are read
        when ``instance_id`` asks for one."""
        return await asyncio.to_thread(self._tail, env, instance_id, lines)

    async def follow(self, env: str, instance_id: str | None, cursor: str | None) -> LogPage:
        """The lines written since ``cursor`` (see `adapters.logs.follow`)."""

        def read() -> LogPage:
            sources = self.logs.sources(env, self._instances(env), instance_id)
            page = follow(env, [s for source in sources for s in source.streams], cursor)
            return LogPage(
                lines=[LogLine(source=x.source, file=x.file, line=x.line) for x in page.lines],
                cursor=page.cursor,
                more=page.more,
            )

        return await asyncio.to_thread(read)

    async def bundle(self, env: str, instance_id: str | None) -> Path:
        """A zip of every log (rotated parts too) in a temporary file the caller removes."""
        return await asyncio.to_thread(self._bundle, env, instance_id)

    def _tail(self, env: str, instance_id: str | None, lines: int) -> LogTail:
        instances = []
        for source in self.logs.instance_sources(env, self._instances(env), instance_id):
            stopped = source.state == InstanceState.STOPPED
            read = lines if instance_id is not None or not stopped else 0
            instances.append(
                InstanceLogs(
                    id=source.id,
                    state=InstanceState(source.state),
                    last_written=source.last_written() if stopped else None,
                    files=[_tail(s, read) for s in source.streams],
                )
            )
        if instance_id is not None:
            return LogTail(instances=instances, access=None, deploy=None)
        access = self.logs.access_source(env).streams
        deploys = self.logs.deploy_source(env).streams
        deploy = None
        if deploys:
            deploy = DeployLog.model_validate(_tail(deploys[-1], lines).model_dump())
            with contextlib.suppress(NotFound, ValueError):
                op = self.store.operation(int(deploys[-1].path.stem))
                deploy = deploy.model_copy(
                    update={"operation": op.id, "kind": op.kind, "status": op.status}
                )
        return LogTail(
            instances=instances,
            access=_tail(access[0], lines) if access else None,
            deploy=deploy,
        )

    def _bundle(self, env: str, instance_id: str | None) -> Path:
        sources = self.logs.sources(env, self._instances(env), instance_id)
        fd, name = tempfile.mkstemp(dir=self.scratch, prefix=".bundle-", suffix=".zip")
        os.close(fd)
        try:
            write_bundle(sources, Path(name))
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def _instances(self, env: str) -> list[Instance]:
        """The environment's instances, stopped ones too, but not those of an earlier
        environment of the same name.

        With no live environment of that name, the latest one that ended while its logs are
        kept: a create that failed (its instances' output says why) until the name is used
        again or retention removes them. A terminated one (`terminate` removes its logs) is
        not found."""
        try:
            since = self.store.environment(env).created_at
        except NotFound:
            ended = [e for e in self.store.environments(include_terminated=True) if e.name == env]
            if not ended:
                raise
            since = max(e.created_at for e in ended)
            instances = [i for i in self.store.instances(env, live=False) if i.created_at >= since]
            kept = any(self.logs.instance_dir(i.id).is_dir() for i in instances)
            if not kept and not self.logs.deploy_logs(env):
                raise
            return instances
        return [i for i in self.store.instances(env, live=False) if i.created_at >= since]


def _tail(stream: Stream, lines: int) -> LogFile:
    """A stream's name, size and last lines (None: not read)."""
    try:
        size = stream.path.stat().st_size
    except OSError:
        size = 0
    return LogFile(name=stream.name, size=size, lines=tail_stream(stream, lines) if lines else None)
