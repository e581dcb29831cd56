"""Limits on what a request may make the server hold: bodies (413) and headers (431).

A JSON body is read whole before a handler runs, so every route but the version upload
(which streams to disk under its own limit, `services.applications`) takes at most
`MAX_BODY_BYTES`: a larger ``Content-Length`` is refused before a byte is read, and a
chunked body is read into memory only up to the limit. Headers are h11's to bound
(``max_incomplete_event_size``, 16 KiB by default) while they arrive, and headers that
arrive whole are measured once parsed (`MAX_HEADER_BYTES`); past either, uvicorn would
answer 400, and `HeaderLimitH11Protocol` answers what it is, 431.
"""

from __future__ import annotations

import json
import re
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beanpole.server.coalesce import CoalescingH11Protocol

MAX_BODY_BYTES = 1 << 20  # far beyond any JSON body of the API (settings, a certificate)
MAX_HEADER_BYTES = 16 << 10  # the request line and headers, as h11 bounds them unread
_STREAMED = re.compile(r"^/api/v1/applications/[^/]+/versions$")  # uploads: their own limit


def _error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _STREAMED.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        # no length given (chunked, or no body): read it here, up to the limit
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, send: Send) -> None:
        body = _error(
            413,
            "too_large",
            f"The request body is larger than {self.limit // 1024} KiB, the most any API "
            "call takes (versions are uploaded to POST /api/v1/applications/{name}/versions).",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


class _Recording:
    """An h11 connection that remembers the last protocol error it raised."""

    def __init__(self, conn: h11.Connection) -> None:
        self._conn = conn
        self.error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            event = self._conn.next_event()
            if isinstance(event, h11.Request) and _header_bytes(event) > MAX_HEADER_BYTES:
                # h11 bounds only what arrives incomplete: headers read in one go pass it
                raise h11.RemoteProtocolError("headers too large", error_status_hint=431)
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise
        return event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _header_bytes(request: h11.Request) -> int:
    return len(request.target) + sum(len(k) + len(v) + 4 for k, v in request.headers)


class HeaderLimitH11Protocol(CoalescingH11Protocol):
    """uvicorn's h11 protocol (coalescing its writes) that answers headers over h11's
    limit with 431 rather than 400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _Recording(self.conn)  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        error = self.conn.error if isinstance(self.conn, _Recording) else None
        if error is None or error.error_status_hint != 431:
            super().send_400_response(msg)
            return
        body = _error(
            431,
            "headers_too_large",
            "The request's headers are larger than 16 KiB, the most the API takes.",
        )
        event = h11.Response(
            status_code=431,
            headers=[(b"content-type", b"application/json"), (b"connection", b"close")],
            reason=b"Request Header Fields Too Large",
        )
        for part in (event, h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(part))
        self.transport.close()
