"""The request stream: one datagram per request from HAProxy, parsed into samples.

HAProxy writes `LOG_FORMAT` lines (raw, no syslog header) to a unix datagram socket owned by
the server. Each line becomes a `metrics.Sample` (for health, and for the deployment gate's
taps) and, unchanged, a line of the environment's access log. Parsing is a split, no regex:
this loop is the pipeline's cost (`bench/health_pipeline.py` measures it).

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
import socket
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
    parts = line.split(b" ", 5)
    if len(parts) < 5 or not parts[0].startswith(_PREFIX):
        return None
    try:
        status = int(parts[2])
        latency = float(parts[3])
        weight = int(parts[4]) if parts[4] != b"-" else 1
    except ValueError:
        return None
    return Sample(
        env=parts[0][len(_PREFIX) :].decode(errors="replace"),
        instance=parts[1].decode(errors="replace"),
        status=status,
        latency_ms=max(latency, 0.0),
        weight=max(weight, 1),
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


class RequestStream(asyncio.DatagramProtocol):
    """Receives HAProxy's request lines; hands samples on, batches access-log lines."""

    def __init__(self, on_sample: Callable[[Sample, float], None], logs: AccessLogs) -> None:
        self.on_sample = on_sample
        self.logs = logs
        self.received = 0  # datagrams, of any kind
        self._pending: dict[str, list[bytes]] = {}
        self._counts: dict[str, int] = {}  # env -> weighted requests since `take_counts`
        self._taps: dict[str, list[Tap]] = {}
        self._second = 0
        self._stamp = b""

    def datagram_received(self, data: bytes, addr: object) -> None:
        now = time.time()
        self.received += 1
        sample = parse(data)
        if sample is None:
            return
        env = sample.env
        self.on_sample(sample, now)
        self._counts[env] = self._counts.get(env, 0) + sample.weight
        taps = self._taps.get(env)
        if taps:
            for tap in taps:
                if sample.instance in tap.instances:
                    tap.add(sample)
        second = int(now)
        if second != self._second:  # one strftime a second, not one per request
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)).encode()
        self._pending.setdefault(env, []).append(self._stamp + b" " + data.rstrip(b"\n") + b"\n")

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


async def listen(path: Path, stream: RequestStream) -> asyncio.DatagramTransport:
    """Bind the datagram socket HAProxy logs to (a stale one from a killed server is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    # A deep receive buffer absorbs bursts while the event loop is busy elsewhere.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: stream, sock=sock)
    return transport
