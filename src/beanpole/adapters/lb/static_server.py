"""The static file server of the load balancer's side: one per Beanpole home, behind HAProxy.

Run as ``python -m beanpole.adapters.lb.static_server ROUTES SOCKET``. It listens on the unix
socket SOCKET (mode 0600: only HAProxy, running as the same user, reaches it) and answers
requests HAProxy sends it with the ``x-beanpole-env`` header naming an environment. ROUTES
(`beanpole.core.lb.config.render_static_routes`) gives each environment its mappings (URL
path -> folder) and app folders; it is read again whenever it changes, so the switch to a
new version's files needs no restart and no HAProxy reload.

Files are found at request time (what ``collectstatic`` wrote after the build is served) and
only inside the app folder: the file is opened, then the path the kernel actually opened
(``/proc/self/fd``) must lie in the app folder, so a symbolic link that leads out of it, or
one swapped in between a check and the open, is a 404. GET and HEAD only (405 otherwise),
404 for anything missing (never the app's answer), content types from the extension,
``ETag``, ``Last-Modified``, ``Cache-Control`` and 304 for conditional requests. Small files
are kept in memory (validated by inode, size and mtime at every request); large ones are sent
with ``sendfile``.

A small asyncio HTTP/1.1 server rather than ``http.server``: keep-alive connections from
HAProxy's pool and no thread per connection (see bench/static_files.py for the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import mimetypes
import os
import signal
import stat
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from beanpole.core.lb.config import STATIC_HEADER
from beanpole.core.staticfiles import MAX_AGE_S, Conditional, etag, http_date, locate

log = logging.getLogger("beanpole.static")

MAX_HEAD_BYTES = 16 * 1024
CACHE_FILE_BYTES = 256 * 1024  # files up to this size are kept in memory
CACHE_TOTAL_BYTES = 64 * 1024 * 1024
_PROC_FD = Path("/proc/self/fd")
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".xml": "application/xml",
}
_REASONS = {
    200: "OK",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
}


def content_type(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    if ext in _TYPES:
        return _TYPES[ext]
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


@dataclass(frozen=True)
class _Route:
    mappings: tuple[tuple[str, str], ...]
    roots: tuple[tuple[str, str], ...]  # (app folder, its real path with a trailing '/')


@dataclass(frozen=True)
class _File:
    """What a response needs of one file; ``body`` when it is small enough to keep."""

    key: tuple[int, int, int, int]  # device, inode, size, mtime_ns
    headers: bytes  # from Content-Type to Cache-Control, each line ending in CRLF
    tag: str
    mtime_s: float
    size: int
    body: bytes | None


class Routes:
    """The routes file, read again when its inode, size or mtime change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self.routes: dict[str, _Route] = {}

    def get(self, env: str) -> _Route | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return self.routes.get(env)
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            self._load(seen)
        return self.routes.get(env)

    def _load(self, seen: tuple[int, int, int]) -> None:
        try:
            data = json.loads(self.path.read_text())
            routes = {}
            for env, route in data["environments"].items():
                roots = tuple(
                    (root, os.path.realpath(root).rstrip("/") + "/") for root in route["roots"]
                )
                mappings = tuple((str(p), str(f)) for p, f in route["mappings"])
                routes[str(env)] = _Route(mappings, roots)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("routes file %s not read (%s); keeping the previous routes", self.path, exc)
            return
        self.routes = routes
        self._seen = seen


class Files:
    """Find, check and describe files; keep the small ones."""

    def __init__(self) -> None:
        self._cache: OrderedDict[str, _File] = OrderedDict()
        self._cached_bytes = 0

    def open(self, route: _Route, folder: str, relative: str) -> tuple[_File, int | None] | None:
        """The first app folder's file, with an open fd when its body is not cached (the caller
        closes it), or None. Each candidate is opened, then checked by the path it opened."""
        for root, real_root in route.roots:
            candidate = f"{root}/{folder}/{relative}"
            try:
                fd = os.open(candidate, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue
            keep = False
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    continue
                if not _opened_path(fd, candidate).startswith(real_root):
                    log.warning("refused %s: it leads out of the app folder %s", candidate, root)
                    continue
                key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                cached = self._cache.get(candidate)
                if cached is not None and cached.key == key:
                    self._cache.move_to_end(candidate)
                    return cached, None
                file = self._describe(candidate, st, key, fd)
                if file.body is None:
                    keep = True
                    return file, fd
                return file, None
            finally:
                if not keep:
                    os.close(fd)
        return None

    def _describe(self, name: str, st: os.stat_result, key: tuple[int, ...], fd: int) -> _File:
        tag = etag(st.st_mtime_ns, st.st_size, st.st_ino)
        headers = (
            f"Content-Type: {content_type(name)}\r\n"
            f"Last-Modified: {http_date(st.st_mtime)}\r\n"
            f"ETag: {tag}\r\n"
            f"Cache-Control: public, max-age={MAX_AGE_S}\r\n"
        ).encode()
        body = None
        if st.st_size <= CACHE_FILE_BYTES:
            body = _read_all(fd, st.st_size)
        file = _File(
            (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns),
            headers,
            tag,
            st.st_mtime,
            st.st_size,
            body,
        )
        if body is not None and len(body) == st.st_size:
            old = self._cache.pop(name, None)
            if old is not None and old.body is not None:
                self._cached_bytes -= len(old.body)
            self._cache[name] = file
            self._cached_bytes += len(body)
            while self._cached_bytes > CACHE_TOTAL_BYTES:
                _, evicted = self._cache.popitem(last=False)
                self._cached_bytes -= len(evicted.body or b"")
        return file


def _opened_path(fd: int, fallback: str) -> str:
    try:
        return os.readlink(_PROC_FD / str(fd))
    except OSError:  # no /proc: resolve the name (checked, but not race-free)
        return os.path.realpath(fallback)


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class _Clock:
    """The Date header, formatted once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = f"Date: {http_date(now)}\r\n".encode()
        return self._line


class _Connection(asyncio.Protocol):
    def __init__(self, server: StaticServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a large file is being sent: later requests wait in the buffer
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._serve_buffered()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def _serve_buffered(self) -> None:
        transport = self.transport
        assert transport is not None
        while not self.busy:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    transport.write(self.server.error(431, close=True))
                    transport.close()
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            reply, fd, close = self.server.respond(head)
            if fd is None:
                transport.write(reply)
            else:
                self.busy = True
                transport.pause_reading()
                asyncio.get_running_loop().create_task(self._send_file(reply, fd, close))
                return
            if close:
                transport.close()
                return

    async def _send_file(self, head: bytes, fd: int, close: bool) -> None:
        transport = self.transport
        assert transport is not None
        try:
            transport.write(head)
            with os.fdopen(fd, "rb", closefd=True) as file:
                await asyncio.get_running_loop().sendfile(transport, file)
        except (OSError, RuntimeError, ConnectionError):
            transport.close()
            return
        if close or transport.is_closing():
            transport.close()
            return
        self.busy = False
        transport.resume_reading()
        self._serve_buffered()


class StaticServer:
    """Turns a request head into a response: the HTTP rules of the module docstring."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.files = Files()
        self.clock = _Clock()

    def respond(self, head: bytes) -> tuple[bytes, int | None, bool]:  # noqa: PLR0911 (one per answer)
        """(response bytes, an fd whose body follows, whether to close the connection)."""
        request = _parse(head)
        if request is None:
            return self.error(400, close=True), None, True
        method, target, headers, close = request
        if method not in (b"GET", b"HEAD"):
            return self.error(405, close=close), None, close
        route = self.routes.get(headers.get(STATIC_HEADER.encode(), b"").decode("latin-1"))
        found = None if route is None else locate(route.mappings, target.decode("latin-1"))
        opened = None if route is None or found is None else self.files.open(route, *found)
        if opened is None:
            return self.error(404, close=close), None, close
        file, fd = opened
        conditional = Conditional(
            _text(headers.get(b"if-none-match")), _text(headers.get(b"if-modified-since"))
        )
        connection = b"Connection: close\r\n" if close else b""
        if conditional.not_modified(file.tag, file.mtime_s) or method == b"HEAD":
            if fd is not None:
                os.close(fd)
            fd = None
        if conditional.not_modified(file.tag, file.mtime_s):
            status = b"HTTP/1.1 304 Not Modified\r\n"
            return status + self.clock.line() + file.headers + connection + b"\r\n", None, close
        head_out = (
            b"HTTP/1.1 200 OK\r\n"
            + self.clock.line()
            + file.headers
            + b"Content-Length: %d\r\n" % file.size
            + connection
            + b"\r\n"
        )
        if method == b"HEAD":
            return head_out, None, close
        if fd is None:
            return head_out + (file.body or b""), None, close
        return head_out, fd, close

    def error(self, status: int, *, close: bool) -> bytes:
        body = f"{status} {_REASONS[status]}\n".encode()
        extra = b"Allow: GET, HEAD\r\n" if status == 405 else b""
        return (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n".encode()
            + self.clock.line()
            + b"Content-Type: text/plain\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + b"Cache-Control: no-cache\r\n"
            + extra
            + (b"Connection: close\r\n" if close else b"")
            + b"\r\n"
            + body
        )


def _parse(head: bytes) -> tuple[bytes, bytes, dict[bytes, bytes], bool] | None:
    """Method, target, headers (lower-case names) and whether the connection must close after
    the answer; None for a malformed head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    close = parts[2] == b"HTTP/1.0" or headers.get(b"connection", b"").lower() == b"close"
    if b"content-length" in headers or b"transfer-encoding" in headers:
        close = True  # a body this server does not read: the connection cannot be reused
    return parts[0], parts[1], headers, close


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def serve(routes_path: Path, socket_path: Path, ready: asyncio.Event | None = None) -> None:
    server = StaticServer(Routes(routes_path))
    old_umask = os.umask(0o177)  # the socket is created 0600
    try:
        listener = await asyncio.get_running_loop().create_unix_server(
            lambda: _Connection(server), str(socket_path), backlog=1024
        )
    finally:
        os.umask(old_umask)
    if ready is not None:
        ready.set()
    async with listener:
        await listener.serve_forever()


def main(argv: list[str]) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if len(argv) != 2:
        sys.exit("usage: python -m beanpole.adapters.lb.static_server ROUTES SOCKET")

    Path(argv[1]).unlink(missing_ok=True)  # a previous server's socket

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(serve(Path(argv[0]), Path(argv[1])))
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1:])
