"""The request stream: one line per request from HAProxy, parsed into samples.

HAProxy sends each `LOG_FORMAT` line (raw, no syslog header) as a UDP datagram to a port on
127.0.0.1 the server binds. Each line becomes a `metrics.Sample` (for health, and for the
deployment gate's taps) and, unchanged, a line of the environment's access log. Parsing is a
split, no regex: this loop is the pipeline's cost (`bench/health_pipeline.py` measures it).

Why UDP on loopback, measured on the alternatives:

- a unix datagram socket queues at most ``net.unix.max_dgram_qlen`` datagrams (10 on
  Debian): any pause of the server's event loop longer than ten requests lost lines. A UDP
  socket's queue is bounded in bytes (``SO_RCVBUF``, 4 MB asked), hundreds of milliseconds
  of lines even at the sampled rate;
- HAProxy's ring buffer forwarded over a stream socket holds lines while the server is down,
  but HAProxy 2.6 retries the connection in a busy loop: one core at 100 % whenever the
  server is not running. The data plane must not pay for the control plane being down;
  unsent datagrams cost nothing.

The socket is drained every `DRAIN_EVERY_S` in one batch, not read on every datagram:
waking the event loop per line cost more than parsing it. Each line carries its own end
time, so a line read late still lands in its request's window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from beanpole.core.lb.config import BACKEND_PREFIX
from beanpole.core.metrics import Sample, percentile

log = logging.getLogger(__name__)

_PREFIX = BACKEND_PREFIX.encode()

LINES_PER_S = 1000
"""Per environment: 10,000 samples per 10 s window, enough for p99.9, at ~1 % of a core."""
MAX_RATIO = 1024


_names: dict[bytes, str] = {}
_MAX_NAMES = 10_000


def _name(raw: bytes, skip: int = 0) -> str:
    """Decoded once per distinct backend or server name, not once per request (a process's
    backend, ``env-shop.api``, decodes to its environment's name)."""
    name = _names.get(raw)
    if name is None:
        if len(_names) >= _MAX_NAMES:  # instances come and go: keep the cache bounded
            _names.clear()
        name = _names[raw] = raw[skip:].decode(errors="replace").partition(".")[0]
    return name


# What HAProxy writes for a backend (env-<environment name>, or env-<environment>.<process>
# for a listener rule's process, whose requests are its environment's) and a server (an instance id,
# or <NOSRV>): anything else did not come from HAProxy and is dropped, so a stray datagram
# can name no file and no key.
_BACKEND = re.compile(
    rb"env-[A-Za-z0-9](?:[A-Za-z0-9-]{0,98}[A-Za-z0-9])?(?:\.[A-Za-z0-9_-]{1,64})?"
)
_SERVER = re.compile(rb"[A-Za-z0-9](?:[A-Za-z0-9-]{0,98}[A-Za-z0-9])?|<NOSRV>")
_MAX_LATENCY_MS = 86_400_000.0


def parse(line: bytes) -> Sample | None:
    """A `LOG_FORMAT` line → a sample; None for anything else (never an exception: the
    socket is on loopback, and any local process can send it anything)."""
    parts = line.split(b" ", 6)
    if len(parts) < 6 or not _BACKEND.fullmatch(parts[1]) or not _SERVER.fullmatch(parts[2]):
        return None
    try:
        ended_ms = int(parts[0])
        status = int(parts[3])
        latency = float(parts[4])
        weight = 1 if parts[5] == b"-" else int(parts[5])
    except ValueError:
        return None
    if not (0 <= ended_ms < 2**53 and -1 <= status <= 999 and latency <= _MAX_LATENCY_MS):
        return None  # out of range (also: inf and nan fail these comparisons)
    return Sample(
        _name(parts[1], len(_PREFIX)),
        _name(parts[2]),
        status,
        latency if latency > 0 else 0.0,
        min(weight, MAX_RATIO) if weight > 1 else 1,
        ended_ms / 1000,
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
    lines: int = 0  # observations behind the weighted counts
    _latencies: list[tuple[float, int]] = field(default_factory=list)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311

    def add(self, sample: Sample) -> None:
        self.requests += sample.weight
        if sample.status >= 500:
            self.status_5xx += sample.weight
        self.lines += 1
        if len(self._latencies) < self.max_samples:
            self._latencies.append((sample.latency_ms, sample.weight))
        else:
            slot = int(self._rng.random() * self.lines)
            if slot < self.max_samples:
                self._latencies[slot] = (sample.latency_ms, sample.weight)

    def latency_ms(self, p: float) -> float | None:
        if not self._latencies:
            return None
        kept = sorted(self._latencies)
        return percentile([v for v, _ in kept], p, [w for _, w in kept])


class RequestStream:
    """Parses request lines; hands samples on, feeds open taps, batches access-log lines."""

    def __init__(
        self, on_sample: Callable[[Sample], None], logs: AccessLogs, token: str = ""
    ) -> None:
        self.on_sample = on_sample
        self.logs = logs
        # every line HAProxy sends starts with it (`LoadBalancerSpec.log_token`): one that
        # does not came from another local process, and is dropped
        self._token = f"{token} ".encode() if token else b""
        self.received = 0  # lines, of any kind
        self.forged = 0  # lines without the token
        self._pending: dict[str, list[bytes]] = {}
        self._counts: dict[str, int] = {}  # env -> weighted requests since `take_counts`
        self._taps: dict[str, list[Tap]] = {}
        self._second = 0
        self._stamp = b""

    def line_received(self, line: bytes) -> None:
        self.received += 1
        token = self._token
        if token:
            if not line.startswith(token):
                self.forged += 1
                return
            line = line[len(token) :]
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


DRAIN_EVERY_S = 0.1


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Until ``fd`` has something to read."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


MAX_DATAGRAM = 4096
RECEIVE_BUFFER = 4 * 2**20


def bind(port: int = 0) -> socket.socket:
    """The UDP socket on 127.0.0.1 HAProxy sends request lines to (0: any free port).

    Raises OSError when the port is taken; the caller picks another and tells HAProxy.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
        sock.setblocking(False)
        # As root the buffer may exceed net.core.rmem_max; otherwise the kernel caps it.
        force = getattr(socket, "SO_RCVBUFFORCE", None)
        try:
            if force is None:
                raise PermissionError
            sock.setsockopt(socket.SOL_SOCKET, force, RECEIVE_BUFFER)
        except PermissionError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    except OSError:
        sock.close()
        raise
    return sock


class Listener:
    """Drains the request socket into the stream every `DRAIN_EVERY_S` while lines arrive
    (one wake-up per batch, not per line), and sleeps until the next one when none do (a
    10 Hz poll of an empty socket was a tenth of the idle server's CPU)."""

    def __init__(
        self, sock: socket.socket, stream: RequestStream, every_s: float = DRAIN_EVERY_S
    ) -> None:
        self.sock, self.stream, self.every_s = sock, stream, every_s
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def drain(self, limit: int = 200_000) -> int:
        """Read every datagram waiting (at most ``limit``); return how many."""
        receive, deliver = self.sock.recv, self.stream.line_received
        for count in range(limit):
            try:
                data = receive(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return count
            except OSError:  # closed under us
                return count
            try:
                deliver(data.rstrip(b"\n"))
            except Exception:  # one bad line must not stop the stream; it is logged
                log.exception("request line dropped: %r", data[:200])
        return limit

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        fd = self.sock.fileno()
        while True:
            if self.drain():
                await asyncio.sleep(self.every_s)
            else:
                await _readable(loop, fd)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="request-stream")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sock.close()
