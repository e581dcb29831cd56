"""The Elastic Beanstalk port: one ASGI app for EB's query API and the S3 subset.

Every request is SigV4-signed; the credential scope's service says which face answers it
(``elasticbeanstalk`` or ``s3``), so both share one port as AWS's clients allow
(``endpoints {}`` in Terraform, ``AWS_ENDPOINT_URL`` for boto3 and the eb CLI). The one
unsigned path is ``/_beanpole/info/<token>``: the logs `RetrieveEnvironmentInfo` hands out,
which the eb CLI fetches with a plain GET, as it does S3's presigned URLs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from beanpole.adapters.store.access import AuditRecord
from beanpole.core.access import SAFE_METHODS
from beanpole.core.errors import BeanpoleError, ComponentError, Conflict, InvalidInput, NotFound
from beanpole.core.requests import current_request
from beanpole.core.sigv4 import SigV4Error, parse
from beanpole.server.eb import s3
from beanpole.server.eb.auth import authenticate
from beanpole.server.eb.catalog import ACTIONS
from beanpole.server.eb.context import EB
from beanpole.server.eb.protocol import VERSION, EBError, Params, render, render_error

log = logging.getLogger("beanpole.eb")

# Actions that change nothing: every other one is recorded in the audit log.
_READS = ("Describe", "List", "Check", "Validate", "Retrieve", "Request")
MAX_QUERY_BODY = 1 << 20  # an EB request is a form; a megabyte is far beyond any real one

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class EBApp:
    def __init__(self, eb: EB) -> None:
        self.eb = eb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = str(uuid.uuid4())
        try:
            response = await self._handle(request, request_id)
        except Exception:  # a bug answers 500 in EB's shape, never a bare traceback
            log.exception("EB API request failed")
            response = _eb_error(
                EBError("InternalFailure", "Beanpole failed to handle the request.", 500),
                request_id,
            )
        await response(scope, receive, send)

    async def _handle(self, request: Request, request_id: str) -> Response:
        path = request.url.path
        if request.method == "GET" and path.startswith("/_beanpole/info/"):
            return self._info(path.removeprefix("/_beanpole/info/"))
        raw_path = request.scope.get("raw_path", path.encode()).decode("latin-1")
        raw_path = raw_path.split("?", 1)[0]
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        service = _service(request)
        if service not in ("s3", "elasticbeanstalk", ""):
            return _eb_error(
                EBError(
                    "InvalidAction",
                    f"This request is signed for AWS service {service!r}; Beanpole's endpoint "
                    "answers Elastic Beanstalk and S3 only (docs/eb-api.md).",
                ),
                request_id,
            )
        if service == "s3":
            return await self._s3(request, raw_path, raw_query, request_id)
        return await self._signed_query(request, raw_path, raw_query, request_id)

    async def _s3(
        self, request: Request, raw_path: str, raw_query: str, request_id: str
    ) -> Response:
        content_sha256 = request.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        action = f"S3 {request.method} {raw_path}"
        try:
            key_id = await self._authenticate(request, raw_path, raw_query, content_sha256)
        except SigV4Error as exc:
            await self._audit(request, "anonymous", action, exc.status, request_id)
            return _s3_error(exc.code, exc.message, exc.status, request_id)
        response = await s3.handle(request, self.eb.buckets, content_sha256, request_id)
        if request.method not in SAFE_METHODS:
            await self._audit(
                request, f"access key {key_id}", action, response.status_code, request_id
            )
        return response

    async def _signed_query(
        self, request: Request, raw_path: str, raw_query: str, request_id: str
    ) -> Response:
        try:
            body = await _read_limited(request)
        except EBError as exc:
            return _eb_error(exc, request_id)
        form = dict(parse_qsl(raw_query, keep_blank_values=True))
        if request.method == "POST":
            form.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = form.get("Action", "")
        try:
            key_id = await self._authenticate(
                request, raw_path, raw_query, hashlib.sha256(body).hexdigest()
            )
        except SigV4Error as exc:
            await self._audit(request, "anonymous", action, exc.status, request_id, form)
            return _eb_error(EBError(exc.code, exc.message, exc.status), request_id)
        response = await self._query(form, request_id)
        if not action.startswith(_READS):
            actor = f"access key {key_id}"
            await self._audit(request, actor, action, response.status_code, request_id, form)
        return response

    async def _audit(
        self,
        request: Request,
        actor: str,
        action: str,
        status: int,
        request_id: str,
        form: dict[str, str] | None = None,
    ) -> None:
        """Record a change (or a refused signature) in the audit log (`services.access`)."""
        form = form or {}
        client = request.client.host if request.client else "unknown"
        agent = request.headers.get("user-agent", "")[:100]
        entry = AuditRecord(
            time=time.time(),
            actor=actor,
            role=None,
            application=form.get("ApplicationName"),
            environment=form.get("EnvironmentName"),
            action=action or "(no action)",
            status=status,
            source=f"{client} {agent}".strip(),
            request_id=request_id,
        )
        try:
            await asyncio.to_thread(self.eb.ctx.access.record, entry)
        except Exception:  # the answer is made: a failed record is logged, not raised
            log.exception("could not record %s in the audit log", action)

    async def _authenticate(
        self, request: Request, raw_path: str, raw_query: str, payload_hash: str
    ) -> str:
        """The access key id that signed the request (`SigV4Error` if none did)."""
        scope = authenticate(
            request.method,
            raw_path,
            raw_query,
            request.headers,
            payload_hash,
            self.eb.keys,
            time.time(),
        )
        await self.eb.keys.touch(scope.access_key_id)
        return scope.access_key_id

    async def _query(self, form: dict[str, str], request_id: str) -> Response:
        action = form.get("Action", "")
        try:
            if form.get("Version", VERSION) != VERSION:
                raise EBError(
                    "InvalidParameterValue",
                    f"Version {form.get('Version')!r} is not supported; Beanpole speaks "
                    f"Elastic Beanstalk's API version {VERSION}.",
                )
            handler = ACTIONS.get(action)
            if handler is None:
                raise EBError(
                    "InvalidAction",
                    f"The action {action or '(none)'} is not valid for Beanpole's Elastic "
                    "Beanstalk API: Beanpole has no counterpart to it. "
                    "docs/eb-api.md lists the actions it answers.",
                )
            token = current_request.set(request_id)
            try:
                result = await handler(self.eb, Params(form))
            finally:
                current_request.reset(token)
        except EBError as exc:
            return _eb_error(exc, request_id)
        except BeanpoleError as exc:
            return _eb_error(translate(exc), request_id)
        return Response(
            render(action, result, request_id),
            media_type="text/xml",
            headers={"x-amzn-RequestId": request_id},
        )

    def _info(self, token: str) -> Response:
        path = self.eb.info_file(token)
        if path is None:
            return Response("Not found: the link expired or never existed.\n", status_code=404)
        media = "application/zip" if path.suffix == ".zip" else "text/plain; charset=utf-8"
        return FileResponse(path, media_type=media)


def translate(exc: BeanpoleError) -> EBError:
    """The core's error codes in EB's: what clients branch on is the code
    ``InvalidParameterValue`` and the message (Terraform looks for "No Application named",
    "No Environment found"...)."""
    if isinstance(exc, NotFound | InvalidInput | Conflict):
        return EBError("InvalidParameterValue", exc.message)
    if isinstance(exc, ComponentError):
        return EBError("ServiceUnavailable", exc.message, 503)
    return EBError("InternalFailure", exc.message, 500)


def _eb_error(error: EBError, request_id: str) -> Response:
    return Response(
        render_error(error, request_id),
        status_code=error.status,
        media_type="text/xml",
        headers={"x-amzn-RequestId": request_id},
    )


def _s3_error(code: str, message: str, status: int, request_id: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    )
    return Response(
        body.encode(),
        status_code=status,
        media_type="application/xml",
        # the body was not read: a client waiting on `Expect: 100-continue` sends none,
        # and the next request must not be read from where it would have been
        headers={"x-amz-request-id": request_id, "Connection": "close"},
    )


def _service(request: Request) -> str:
    """The service a request's credential scope names ('' when unsigned or malformed)."""
    try:
        auth = parse(request.headers, request.scope.get("query_string", b"").decode("latin-1"))
    except SigV4Error:
        return ""
    return auth.scope.service


async def _read_limited(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_QUERY_BODY:
            raise EBError("InvalidParameterValue", "The request is larger than 1 MiB.")
    return bytes(body)
