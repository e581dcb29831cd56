"""The request stream: one line per request from HAProxy, parsed into samples.

HAProxy writes `LOG_FORMAT` lines into a ring buffer and forwards them over a unix stream
socket the server listens on, as octet-counted frames (``<length> <line>``, RFC 6587), many
per write. Each line becomes a `metrics.Sample` (for health, and for the deployment gate's
taps) and, unchanged, a line of the environment's access log. Parsing is a split, no regex:
this loop is the pipeline's cost (`bench/health_pipeline.py` measures it).

Why a ring and a stream, not a datagram per line: a unix datagram socket queues at most
``net.unix.max_dgram_qlen`` datagrams (10 on Debian), so any pause of the server's event
loop longer than ten requests lost lines; and reading one datagram per wake-up cost more
than parsing it. The ring absorbs pauses and outages (4 MB, about 40,000 lines), HAProxy
reconnects by itself, and lines from before a restart arrive late with their own time:
the access log keeps them, the windows count them as late.

When an environment's rate is high HAProxy sends one line in N (the sample map, see
`lb.config`), and the line carries N; `sampling_ratio` chooses N so that about
`LINES_PER_S` lines a second reach this process per environment, whatever the traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from beanpole.lb.config import BACKEND_PREFIX
from beanpole.metrics import Sample, percentile

_PREFIX = BACKEND_PREFIX.encode()

LINES_PER_S = 1000
"""Per environment: 10,000 samples per 10 s window, enough for p99.9, at ~1 % of a core."""
MAX_RATIO = 1024


def parse(line: bytes) -> Sample | None:
    """A `LOG_FORMAT` line → a sample; None for lines that are not an environment's request."""
    parts = line.split(b" ", 6)
    if len(parts) < 6 or not parts[1].startswith(_PREFIX):
        return None
    try:
        ended_ms = int(parts[0])
        status = int(parts[3])
        latency = max(float(parts[4]), 0.0)
        weight = int(parts[5]) if parts[5] != b"-" else 1
    except ValueError:
        return None
    return Sample(
        env=parts[1][len(_PREFIX) :].decode(errors="replace"),
        instance=parts[2].decode(errors="replace"),
        status=status,
        latency_ms=latency,
        weight=max(weight, 1),
        at=ended_ms / 1000,
    )


def sampling_ratio(requests_per_s: float, current: int, budget_per_s: float = LINES_PER_S) -> int:
    """The 1:N that keeps an environment's lines near ``budget_per_s`` (pure).

    N is a power of two, so changes are few and each halves or doubles the cost. It rises
    as soon as the rate needs it (protecting the server's CPU) and falls only once the rate
    would fit in a quarter of the current N's budget, so a rate near a boundary does not
    make N flap every second.
    """
    needed = requests_per_s / budget_per_s
    target = 1 if needed <= 1 else min(MAX_RATIO, 2 ** math.ceil(math.log2(needed)))
    if target >= current or needed <= current / 4:
        return target
    return current


RATE_DECAY = 0.8
"""Per second: the rate the sampler sees falls at most this fast (it halves in about 3 s)."""


def smoothed_rate(previous: float, observed: float, decay: float = RATE_DECAY) -> float:
    """Fast up, slow down: a pause between bursts does not reset sampling to 1:1, which
    would let the next burst's first second through unsampled."""
    return max(observed, previous * decay)


class AccessLogs:
    """Per-environment access logs under ``directory``, rotated by size, bounded in count."""

    def __init__(self, directory: Path, max_bytes: int = 10 * 2**20, backups: int = 5) -> None:
        self.directory = directory
        self.max_bytes, self.backups = max_bytes, backups
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, env: str) -> Path:
        return self.directory / f"{env}.access.log"

    def write(self, env: str, lines: list[bytes]) -> None:
        path = self.path(env)
        with path.open("ab") as out:
            out.write(b"".join(lines))
            size = out.tell()
        if size > self.max_bytes:
            self._rotate(path)

    def _rotate(self, path: Path) -> None:
        for index in range(self.backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{index + 1}"))
        path.replace(path.with_name(f"{path.name}.1"))


@dataclass
class Tap:
    """The requests some instances of one environment answer while the tap is open.

    The deployment gate opens one on the new instances for its bake window. Counts are
    weighted (estimates of the totals under sampling); latencies are a bounded uniform
    sample, like a window's.
    """

    env: str
    instances: frozenset[str]
    max_samples: int = 5000
    requests: int = 0
    status_5xx: int = 0
    _seen: int = 0
    _latencies: list[tuple[float, int]] = field(default_factory=list)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311

    def add(self, sample: Sample) -> None:
        self.requests += sample.weight
        if sample.status >= 500:
            self.status_5xx += sample.weight
        self._seen += 1
        if len(self._latencies) < self.max_samples:
            self._latencies.append((sample.latency_ms, sample.weight))
        else:
            slot = int(self._rng.random() * self._seen)
            if slot < self.max_samples:
                self._latencies[slot] = (sample.latency_ms, sample.weight)

    def latency_ms(self, p: float) -> float | None:
        if not self._latencies:
            return None
        kept = sorted(self._latencies)
        return percentile([v for v, _ in kept], p, [w for _, w in kept])


class RequestStream:
    """Parses request lines; hands samples on, feeds open taps, batches access-log lines."""

    def __init__(self, on_sample: Callable[[Sample], None], logs: AccessLogs) -> None:
        self.on_sample = on_sample
        self.logs = logs
        self.received = 0  # lines, of any kind
        self._pending: dict[str, list[bytes]] = {}
        self._counts: dict[str, int] = {}  # env -> weighted requests since `take_counts`
        self._taps: dict[str, list[Tap]] = {}
        self._second = 0
        self._stamp = b""

    def line_received(self, line: bytes) -> None:
        self.received += 1
        sample = parse(line)
        if sample is None:
            return
        env = sample.env
        self.on_sample(sample)
        self._counts[env] = self._counts.get(env, 0) + sample.weight
        taps = self._taps.get(env)
        if taps:
            for tap in taps:
                if sample.instance in tap.instances:
                    tap.add(sample)
        second = int(sample.at)
        if second != self._second:  # one strftime a second, not one per request
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second)).encode()
        self._pending.setdefault(env, []).append(self._stamp + b" " + line.rstrip(b"\n") + b"\n")

    def take_counts(self) -> dict[str, int]:
        """Weighted requests per environment since the last call (the sampler's input)."""
        counts, self._counts = self._counts, {}
        return counts

    @contextlib.contextmanager
    def tap(self, env: str, instances: frozenset[str]) -> Iterator[Tap]:
        tap = Tap(env, instances)
        self._taps.setdefault(env, []).append(tap)
        try:
            yield tap
        finally:
            self._taps[env].remove(tap)
            if not self._taps[env]:
                del self._taps[env]

    def flush(self) -> None:
        """Write the batched access-log lines (called about once a second)."""
        pending, self._pending = self._pending, {}
        for env, lines in pending.items():
            with contextlib.suppress(OSError):
                self.logs.write(env, lines)


MAX_FRAME = 65536
READ_EVERY_S = 0.1
"""After each read the connection rests this long, so lines are read in batches: waking
the event loop for every line costs more than parsing it. The socket's buffer and
HAProxy's ring hold what arrives meanwhile."""


class Frames(asyncio.Protocol):
    """One connection from HAProxy's ring forwarder: octet-counted frames to lines."""

    def __init__(self, stream: RequestStream, read_every_s: float = READ_EVERY_S) -> None:
        self.stream = stream
        self.read_every_s = read_every_s
        self._buffer = b""
        self._transport: asyncio.BaseTransport | None = None
        self._resume: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resume is not None:
            self._resume.cancel()

    def data_received(self, data: bytes) -> None:
        self._parse(data)
        transport = self._transport
        if self.read_every_s > 0 and isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()
            loop = asyncio.get_running_loop()
            self._resume = loop.call_later(self.read_every_s, self._resume_reading)

    def _resume_reading(self) -> None:
        transport = self._transport
        if isinstance(transport, asyncio.ReadTransport) and not transport.is_closing():
            transport.resume_reading()

    def _parse(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        deliver = self.stream.line_received
        pos, end = 0, len(buffer)
        while pos < end:
            space = buffer.find(b" ", pos, pos + 8)
            if space < 0:
                if end - pos >= 8:  # no length within 7 digits: not our framing
                    self._drop()
                    return
                break
            try:
                size = int(buffer[pos:space])
            except ValueError:
                self._drop()
                return
            if not 0 < size <= MAX_FRAME:
                self._drop()
                return
            stop = space + 1 + size
            if stop > end:
                break
            deliver(buffer[space + 1 : stop])
            pos = stop
        self._buffer = buffer[pos:]

    def _drop(self) -> None:
        """Garbage on the socket: close it (HAProxy reconnects and resumes at a frame)."""
        self._buffer = b""
        if self._transport is not None:
            self._transport.close()


async def listen(path: Path, stream: RequestStream) -> asyncio.AbstractServer:
    """Listen where HAProxy's ring forwards to (a stale socket from a killed server goes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(lambda: Frames(stream), str(path))
    os.chmod(path, 0o600)
    return server
