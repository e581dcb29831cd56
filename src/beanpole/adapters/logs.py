"""An environment's log files: which they are, their tails, following them, the bundle, retention.

Layout under ``BEANPOLE_HOME``::

    instances/<id>/logs/<proc>.stdout.log, <proc>.stderr.log   supervisord, per Procfile process
    logs/access/<env>.access.log                               lb.requests.AccessLogs
    logs/deploy/<env>/<operation id>.log                       one per operation (below)

Every log but the deploy logs is rotated by size the same way: ``name`` is renamed to
``name.1`` (``name.1`` to ``name.2`` …, the oldest dropped) and a new ``name`` begins. A
*stream* is such a file with its rotated parts. Following one keeps, per stream, the inode
and offset of the first line not yet returned, so a rotation between two polls loses nothing
and repeats nothing: the rest of the renamed file is read first, then the new one.

A deploy log holds every event recorded while the operation ran (time, severity, message)
and, framed by ``----- <title> -----`` lines, the output of what the operation ran: the
build today, platform hooks later (`append_output`).

Retention (`Retention`) removes stopped instances' log folders and old deploy logs; the
logs of a live instance are never removed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import shutil
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from beanpole.adapters.lb.requests import AccessLogs
from beanpole.core.errors import InvalidInput, NotFound
from beanpole.core.model import Environment, EnvStatus, Event, Instance, InstanceState
from beanpole.core.secrets import mask
from beanpole.home import Home

DAY_S = 86400.0
MAX_LINE_BYTES = 64 * 1024  # a longer line without a newline is returned in pieces
FOLLOW_BYTES = 1024 * 1024  # read per follow poll, shared fairly among the streams
OUTPUT_BYTES = 1024 * 1024  # of a build's output copied into a deploy log (its end)
STOPPED_MARKER = ".stopped"  # in instances/<id>/: its mtime is when the instance stopped
_ROTATED = re.compile(r"^(?P<base>.+\.log)\.(?P<index>[0-9]+)$")
_CURSOR_VERSION = 1


@dataclass(frozen=True)
class Retention:
    """How long logs outlive what wrote them (the reconciler applies it once a minute).

    A stopped instance's logs stay for ``stopped_days`` after it stopped, and only the
    ``stopped_per_env`` most recently stopped instances of an environment keep theirs (a
    deploy of 4 instances stops 4). The deploy logs of the newest ``deploy_logs_per_env``
    operations of an environment stay. ``beanpole terminate`` removes all of an
    environment's logs at once; an environment that ended otherwise (a create that failed)
    keeps them on disk for ``stopped_days``. The logs of a live instance are never removed.
    """

    stopped_days: float = 7.0
    stopped_per_env: int = 10
    deploy_logs_per_env: int = 20

    def __post_init__(self) -> None:
        if self.stopped_days < 0 or self.stopped_per_env < 0 or self.deploy_logs_per_env < 1:
            raise InvalidInput(f"{self} is not a valid retention: counts and days must be >= 0.")


@dataclass(frozen=True)
class Stream:
    """A log file and its rotated parts: ``name.N`` (oldest) … ``name.1``, ``name``."""

    source: str  # the instance id, "access" or "deploy"
    path: Path
    folder: str = ""  # a subfolder of the source's logs it is in ("app": an image's own)

    @property
    def name(self) -> str:
        return f"{self.folder}/{self.path.name}" if self.folder else self.path.name

    @property
    def key(self) -> str:
        return f"{self.source}/{self.name}"

    def parts(self) -> list[Path]:
        """The files that exist, oldest first; the current file last."""
        rotated = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                match = _ROTATED.match(entry.name)
                if match and match["base"] == self.path.name and _regular(entry):
                    rotated.append((int(match["index"]), Path(entry.path)))
        parts = [path for _, path in sorted(rotated, reverse=True)]
        current = self.path.is_file() and not self.path.is_symlink()
        return [*parts, self.path] if current else parts


@dataclass(frozen=True)
class Source:
    """Whose logs: one instance, or the environment's access or deploy logs."""

    id: str  # the instance id, "access" or "deploy"
    state: str  # the instance's state ("" for access and deploy)
    streams: tuple[Stream, ...]

    def last_written(self) -> float | None:
        times = [_mtime(p) for s in self.streams for p in s.parts()]
        known = [t for t in times if t is not None]
        return max(known) if known else None


class Logs:
    """The log files of every environment under one ``BEANPOLE_HOME``."""

    def __init__(self, home: Home, retention: Retention | None = None) -> None:
        self.home = home
        self.retention = retention or Retention()
        self._access = AccessLogs(home.access_logs)
        # (environment, text) -> the text as written, secrets hidden
        # (`services.secrets.Secrets.redact_by_name`, set by the composition root)
        self.redact: Callable[[str, str], str] = lambda _env, text: mask(text)

    # where ------------------------------------------------------------------------

    def instance_dir(self, instance_id: str) -> Path:
        return self.home.instance_dir(instance_id) / "logs"

    def access_log(self, env: str) -> Path:
        return self._access.path(env)

    def deploy_dir(self, env: str) -> Path:
        return self.home.logs / "deploy" / env

    def deploy_log(self, env: str, operation_id: int) -> Path:
        return self.deploy_dir(env) / f"{operation_id}.log"

    def deploy_logs(self, env: str) -> list[tuple[int, Path]]:
        """The environment's deploy logs by operation id, oldest first."""
        found = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.deploy_dir(env)):
                stem, dot, ext = entry.name.partition(".")
                if dot and ext == "log" and stem.isdigit():
                    found.append((int(stem), Path(entry.path)))
        return sorted(found)

    def sources(
        self, env: str, instances: Iterable[Instance], instance_id: str | None = None
    ) -> list[Source]:
        """Every log of the environment: its instances' (live, and stopped ones whose logs
        retention kept), its access logs and its deploy logs. With ``instance_id``, that
        instance's only."""
        found = self.instance_sources(env, instances, instance_id)
        if instance_id is not None:
            return found
        return [*found, self.access_source(env), self.deploy_source(env)]

    def instance_sources(
        self, env: str, instances: Iterable[Instance], instance_id: str | None = None
    ) -> list[Source]:
        out = []
        for instance in instances:
            if instance_id is not None and instance.id != instance_id:
                continue
            folder = self.instance_dir(instance.id)
            if instance.state is InstanceState.STOPPED and not folder.is_dir():
                if instance_id is not None:
                    raise NotFound(
                        f"Instance {instance_id} of {env} has stopped and retention has removed "
                        f"its logs (a stopped instance's logs stay "
                        f"{self.retention.stopped_days:g} days, for the last "
                        f"{self.retention.stopped_per_env} stopped per environment)."
                    )
                continue
            out.append(Source(instance.id, instance.state.value, _streams(instance.id, folder)))
        if instance_id is not None and not out:
            raise NotFound(
                f"Environment {env} has no instance {instance_id!r}. "
                f"See its instances with: beanpole status {env}"
            )
        return out

    def access_source(self, env: str) -> Source:
        stream = Stream("access", self.access_log(env))
        return Source("access", "", (stream,) if stream.parts() else ())

    def deploy_source(self, env: str) -> Source:
        """The deploy logs, oldest operation first."""
        return Source("deploy", "", tuple(Stream("deploy", p) for _, p in self.deploy_logs(env)))

    # deploy logs ------------------------------------------------------------------

    def append_event(self, env: str, operation_id: int, event: Event) -> None:
        """One event of the operation, as ``beanpole events`` prints it."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.time))
        self._append(env, operation_id, f"{stamp}  {event.severity:<5} {event.message}\n".encode())

    def append_output(
        self, env: str, operation_id: int, title: str, output: Path, offset: int = 0
    ) -> None:
        """What ``output`` gained after ``offset`` (the end of it, at most OUTPUT_BYTES),
        framed by its title: a build's output now, a platform hook's later."""
        try:
            size = output.stat().st_size
        except OSError:
            return
        if size <= offset:
            return
        start = max(offset, size - OUTPUT_BYTES)
        with output.open("rb") as f:
            f.seek(start)
            data = self.redact(env, f.read(size - start).decode(errors="replace")).encode()
        skipped = f"({start - offset} earlier bytes left out)\n".encode() if start > offset else b""
        end = b"" if data.endswith(b"\n") else b"\n"
        self._append(
            env,
            operation_id,
            f"----- {title} -----\n".encode()
            + skipped
            + data
            + end
            + f"----- end of {title} -----\n".encode(),
        )

    def _append(self, env: str, operation_id: int, data: bytes) -> None:
        path = self.deploy_log(env, operation_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as out:
            out.write(data)

    # retention --------------------------------------------------------------------

    def apply_retention(
        self,
        environments: Iterable[Environment],
        instances: Iterable[Instance],
        now: float,
        only: str | None = None,
    ) -> list[Path]:
        """Remove what `Retention` no longer keeps, of every environment or of ``only``;
        return what was removed. ``environments`` and ``instances`` include terminated and
        stopped ones (the store's records, any age)."""
        removed_bundles = []
        for stale in self.home.logs.glob(".bundle-*.zip"):  # left by a crash mid-download
            mtime = _mtime(stale)
            if mtime is not None and mtime < now - STALE_BUNDLE_S:
                stale.unlink(missing_ok=True)
                removed_bundles.append(stale)
        status: dict[str, bool] = {}  # name → terminated (a name may be reused)
        for env in environments:
            terminated = env.status is EnvStatus.TERMINATED
            status[env.name] = status.get(env.name, True) and terminated
        by_env: dict[str, list[Instance]] = {}
        for instance in instances:
            by_env.setdefault(instance.environment, []).append(instance)
        removed: list[Path] = removed_bundles
        for name in sorted(status if only is None else set(status) & {only}):
            mine = by_env.get(name, [])
            stopped = {
                i.id: when
                for i in mine
                if i.state is InstanceState.STOPPED
                and (when := self._stopped_at(i.id, now)) is not None
            }
            deploys = {op: _mtime(path) or now for op, path in self.deploy_logs(name)}
            terminated = status[name]
            doomed_ops = expired_deploy_logs(deploys, now, self.retention, terminated=terminated)
            files = [self.deploy_log(name, op) for op in doomed_ops]
            if terminated:
                files += [
                    path
                    for path in Stream("access", self.access_log(name)).parts()
                    if now - (_mtime(path) or now) > self.retention.stopped_days * DAY_S
                ]
            removed += self._remove(mine, expired_instances(stopped, now, self.retention), files)
        return removed

    def forget(
        self, env: str, instances: Iterable[Instance], before_operation: int | None = None
    ) -> list[Path]:
        """Remove every log of a terminated environment (its instances are all stopped); with
        ``before_operation``, only the deploy logs of earlier operations (the name's new
        environment has begun its own)."""
        mine = list(instances)
        files = [
            path
            for op, path in self.deploy_logs(env)
            if before_operation is None or op < before_operation
        ]
        files += Stream("access", self.access_log(env)).parts()
        removed = self._remove(mine, [i.id for i in mine], files)
        with contextlib.suppress(OSError):
            self.deploy_dir(env).rmdir()
        return removed

    def _stopped_at(self, instance_id: str, now: float) -> float | None:
        """When retention first saw the instance stopped (within a minute of its stop): a
        marker beside its logs. None when its logs are gone."""
        folder = self.home.instance_dir(instance_id)
        if not folder.is_dir():
            return None
        marker = folder / STOPPED_MARKER
        try:
            return marker.stat().st_mtime
        except FileNotFoundError:
            marker.touch()
            os.utime(marker, (now, now))
            return now

    def _remove(
        self, instances: list[Instance], doomed: Iterable[str], files: Iterable[Path]
    ) -> list[Path]:
        live = {i.id for i in instances if i.state is not InstanceState.STOPPED}
        removed = []
        for instance_id in doomed:
            folder = self.home.instance_dir(instance_id)
            if instance_id in live or not folder.exists():
                continue  # a live instance's logs are never removed
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        return removed


def expired_instances(stopped: Mapping[str, float], now: float, retention: Retention) -> list[str]:
    """Stopped instances (id → when it stopped) whose logs go: all but the
    ``stopped_per_env`` most recently stopped, and any stopped over ``stopped_days`` ago."""
    newest_first = sorted(stopped, key=lambda i: (stopped[i], i), reverse=True)
    kept = {
        i
        for i in newest_first[: retention.stopped_per_env]
        if now - stopped[i] <= retention.stopped_days * DAY_S
    }
    return [i for i in newest_first if i not in kept]


def expired_deploy_logs(
    written: Mapping[int, float], now: float, retention: Retention, *, terminated: bool = False
) -> list[int]:
    """Operations (id → when their log was last written) whose deploy logs go: all but the
    newest ``deploy_logs_per_env``; for an environment that is terminated (a create that
    failed), also those older than ``stopped_days``."""
    newest_first = sorted(written, reverse=True)
    too_old = retention.stopped_days * DAY_S
    return [
        op
        for rank, op in enumerate(newest_first)
        if rank >= retention.deploy_logs_per_env or (terminated and now - written[op] > too_old)
    ]


#: The folder of an instance's logs where a Docker image writes its own log files
#: (Dockerrun.aws.json's ``Logging``), read with the processes' output.
APP_LOGS = "app"


def _streams(source: str, folder: Path, subfolder: str = "") -> tuple[Stream, ...]:
    names = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if not _regular(entry):
                continue
            match = _ROTATED.match(entry.name)
            if match:
                names.add(match["base"])
            elif entry.name.endswith(".log"):
                names.add(entry.name)
    found = tuple(Stream(source, folder / name, subfolder) for name in sorted(names))
    if not subfolder and (folder / APP_LOGS).is_dir():
        found += _streams(source, folder / APP_LOGS, APP_LOGS)
    return found


def _regular(entry: os.DirEntry[str]) -> bool:
    """A log is a regular file: never a symbolic link, which an app (or a container root,
    in an image's log folder) could point at any file Beanpole may read."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


# tails ---------------------------------------------------------------------------------


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a file, read backwards from its end in blocks."""
    if lines <= 0:
        return []
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return []
    with f:
        pos = f.seek(0, os.SEEK_END)
        data = b""
        # lines+1 newlines guarantee `lines` whole lines; the cap bounds one endless line.
        while pos > 0 and data.count(b"\n") <= lines and len(data) < 8 * MAX_LINE_BYTES:
            step = min(64 * 1024, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", "replace") for p in parts[-lines:]]


def tail_stream(stream: Stream, lines: int) -> list[str]:
    """The last ``lines`` lines of a stream, reaching into the rotated parts after a rotation."""
    out: list[str] = []
    for path in reversed(stream.parts()):
        out = tail(path, lines - len(out)) + out
        if len(out) >= lines:
            break
    return out


# following -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """Where the first line not yet returned begins: a file (by inode) and an offset in it."""

    inode: int
    offset: int


@dataclass(frozen=True)
class Line:
    source: str
    file: str
    line: str


@dataclass(frozen=True)
class Page:
    lines: list[Line]
    cursor: str  # opaque: give it to the next poll
    more: bool  # the read budget ran out: poll again at once


def follow(env: str, streams: list[Stream], cursor: str | None) -> Page:
    """New lines of ``streams`` since ``cursor``; without one, none, and a cursor at the end.

    A stream that appears after the first poll (a new instance, a new operation's deploy
    log) is read from its beginning. Lines come out per stream, in order; only whole lines
    (a line split across a rotation is joined), except one longer than MAX_LINE_BYTES.
    """
    positions = decode_cursor(env, cursor) if cursor else None
    budget = max(MAX_LINE_BYTES, FOLLOW_BYTES // max(len(streams), 1))
    lines: list[Line] = []
    more = False
    after: dict[str, Position] = {}
    for stream in streams:
        if positions is None:
            end = _end(stream)
            if end is not None:
                after[stream.key] = end
            continue
        got, position, truncated = _read(stream, positions.get(stream.key), budget)
        lines += [Line(stream.source, stream.name, text) for text in got]
        more = more or truncated
        if position is not None:
            after[stream.key] = position
    return Page(lines, encode_cursor(env, after), more)


def encode_cursor(env: str, positions: Mapping[str, Position]) -> str:
    data = {
        "v": _CURSOR_VERSION,
        "env": env,
        "p": {k: [p.inode, p.offset] for k, p in positions.items()},
    }
    packed = zlib.compress(json.dumps(data, separators=(",", ":")).encode())
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


MAX_CURSOR_BYTES = 1 << 20
STALE_BUNDLE_S = 3600  # a log bundle still being written is younger than this


def decode_cursor(env: str, cursor: str) -> dict[str, Position]:
    try:
        packed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        inflate = zlib.decompressobj()
        text = inflate.decompress(packed, MAX_CURSOR_BYTES)  # a bomb stops here
        if inflate.unconsumed_tail:
            raise ValueError("cursor too large")
        data = json.loads(text)
        if data["v"] != _CURSOR_VERSION or data["env"] != env:
            raise ValueError(data["env"])
        positions = {str(k): Position(int(v[0]), int(v[1])) for k, v in data["p"].items()}
        if any(p.inode < 0 or p.offset < 0 for p in positions.values()):
            raise ValueError("negative position")
        return positions
    except (
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        binascii.Error,
        zlib.error,
    ):
        raise InvalidInput(
            f"The logs cursor is not one this server gave for environment {env}. "
            "Start again without a cursor."
        ) from None


def _end(stream: Stream) -> Position | None:
    """Where the line being written at the end of the stream's newest part begins (its end,
    when that line is whole)."""
    parts = stream.parts()
    if not parts:
        return None
    try:
        with parts[-1].open("rb") as f:
            st = os.fstat(f.fileno())
            start = max(0, st.st_size - MAX_LINE_BYTES)
            f.seek(start)
            data = f.read(st.st_size - start)
    except FileNotFoundError:
        return None
    return Position(st.st_ino, start + data.rfind(b"\n") + 1)


def _chain(stream: Stream, position: Position | None) -> list[tuple[Path, int, int]]:
    """(path, inode, size) of the parts still to read, oldest first, from a consistent
    view: a rotation while it looks is retried, so no part is skipped."""
    current = stream.path
    if position is not None:
        with contextlib.suppress(FileNotFoundError):
            st = current.stat()
            if st.st_ino == position.inode:
                return [(current, st.st_ino, st.st_size)]
    view: list[tuple[Path, int, int]] = []
    for _ in range(3):
        view = []
        for path in stream.parts():
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                view.append((path, st.st_ino, st.st_size))
        again = []
        for path, _inode, _size in view:
            with contextlib.suppress(FileNotFoundError):
                again.append(path.stat().st_ino)
        if again == [inode for _, inode, _ in view]:
            break
    if position is None:
        return view
    for index, (_, inode, _) in enumerate(view):
        if inode == position.inode:
            return view[index:]
    return view  # the file was rotated out entirely: every part is newer than the cursor


def _read(
    stream: Stream, position: Position | None, budget: int
) -> tuple[list[str], Position | None, bool]:
    """The whole lines after ``position``; the position after them; whether budget ran out."""
    chain = _chain(stream, position)
    if not chain:
        return [], None, False
    _, first_inode, first_size = chain[0]
    offset = position.offset if position is not None and position.inode == first_inode else 0
    if offset > first_size:
        offset = 0  # truncated in place
    after = Position(first_inode, offset)
    lines: list[str] = []
    pending = b""
    for index, (path, inode, _) in enumerate(chain):
        start = offset if index == 0 else 0
        try:
            with path.open("rb") as f:
                if os.fstat(f.fileno()).st_ino != inode:
                    break  # renamed since: the next poll reads it where it is then
                f.seek(start)
                data = f.read(budget + 1)
        except FileNotFoundError:
            break
        truncated = len(data) > budget
        data = data[:budget]
        budget -= len(data)
        pending += data
        *whole, pending = pending.split(b"\n")
        lines += [w.decode("utf-8", "replace") for w in whole]
        if whole:
            after = Position(inode, start + data.rfind(b"\n") + 1)
        if len(pending) >= MAX_LINE_BYTES:
            lines.append(pending.decode("utf-8", "replace"))
            pending = b""
            after = Position(inode, start + len(data))
        if truncated or budget <= 0:
            return lines, after, True
    return lines, after, False


# the bundle ------------------------------------------------------------------------------


def write_bundle(sources: Iterable[Source], dest: Path) -> int:
    """Zip every part of every stream as ``<source>/<file>``; return how many files."""
    count = 0
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for source in sources:
            for stream in source.streams:
                for path in stream.parts():
                    with contextlib.suppress(FileNotFoundError):  # rotated out meanwhile
                        folder = f"{stream.folder}/" if stream.folder else ""
                        bundle.write(path, f"{source.id}/{folder}{path.name}")
                        count += 1
    return count
