"""The request stream: one datagram per request from HAProxy, parsed into samples.

HAProxy writes `LOG_FORMAT` lines (raw, no syslog header) to a unix datagram socket owned by
the server. Each line becomes a `metrics.Sample` (for health) and, unchanged, a line of the
environment's access log. Parsing is a split, no regex: at tens of thousands of requests per
second this loop is the pipeline's cost (`bench/health_pipeline.py` measures it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from beanpole.lb.config import BACKEND_PREFIX
from beanpole.metrics import Sample

_PREFIX = BACKEND_PREFIX.encode()


def parse(line: bytes) -> Sample | None:
    """A `LOG_FORMAT` line → a sample; None for lines that are not an environment's request."""
    parts = line.split(b" ", 4)
    if len(parts) < 4 or not parts[0].startswith(_PREFIX):
        return None
    try:
        status = int(parts[2])
        latency = float(parts[3])
    except ValueError:
        return None
    return Sample(
        env=parts[0][len(_PREFIX) :].decode(errors="replace"),
        instance=parts[1].decode(errors="replace"),
        status=status,
        latency_ms=max(latency, 0.0),
    )


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


class RequestStream(asyncio.DatagramProtocol):
    """Receives HAProxy's request lines; hands samples on, batches access-log lines."""

    def __init__(self, on_sample: Callable[[Sample, float], None], logs: AccessLogs) -> None:
        self.on_sample = on_sample
        self.logs = logs
        self.received = 0
        self._pending: dict[str, list[bytes]] = {}

    def datagram_received(self, data: bytes, addr: object) -> None:
        now = time.time()
        self.received += 1
        sample = parse(data)
        if sample is None:
            return
        self.on_sample(sample, now)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)).encode()
        self._pending.setdefault(sample.env, []).append(stamp + b" " + data.rstrip(b"\n") + b"\n")

    def flush(self) -> None:
        """Write the batched access-log lines (called about once a second)."""
        pending, self._pending = self._pending, {}
        for env, lines in pending.items():
            with contextlib.suppress(OSError):
                self.logs.write(env, lines)


async def listen(path: Path, stream: RequestStream) -> asyncio.DatagramTransport:
    """Bind the datagram socket HAProxy logs to (a stale one from a killed server is replaced)."""
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
