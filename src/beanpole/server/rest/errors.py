"""The REST face's translation of errors: each semantic code to an HTTP status, every error
in one JSON shape, ``{"error": {"code": ..., "message": ...}}``.

The core names what went wrong (`beanpole.core.errors`); only this module knows HTTP. An
error nobody raised on purpose is logged with its traceback and answered without a Python
repr (`core.errors.unexpected`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from beanpole.api.views import ErrorBody
from beanpole.core.errors import (
    BeanpoleError,
    BuildError,
    BundleError,
    ComponentError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Throttled,
    TooLarge,
    Unauthorized,
    unexpected,
)

log = logging.getLogger("beanpole.server.rest")

STATUS: dict[str, int] = {
    InvalidInput.code: 400,
    BundleError.code: 400,
    TooLarge.code: 413,
    Unauthorized.code: 401,
    Forbidden.code: 403,
    Throttled.code: 429,
    NotFound.code: 404,
    Conflict.code: 409,
    BuildError.code: 422,
    BeanpoleError.code: 500,
    ComponentError.code: 503,
}

DESCRIPTION = {
    400: "Invalid input: a name, a setting, a body or a query that is not valid",
    401: "Missing or wrong bearer token",
    403: "Forbidden: the token's role or application does not allow this route, or a "
    "change from a console session came without its X-CSRF-Token header",
    404: "Not found: the environment, application, version or operation does not exist",
    405: "Method not allowed: the `Allow` header lists the methods the path takes",
    409: "Conflict: the name is taken, or another operation is in progress",
    413: "The request body (or the upload) is larger than its limit",
    422: "The application's build failed",
    429: "Too many failed sign-ins or wrong tokens from this address: wait a minute",
    503: "HAProxy, supervisord or a tool the server runs did not answer as it should",
}


def responses(*statuses: int, ok: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries of the error statuses a route can answer, each with the error shape,
    and ``ok``, the 200 entry of a route that answers something other than JSON. A route
    that needs a token (401) may also refuse its role (403) or its client (429)."""
    if 401 in statuses:
        statuses = tuple(sorted({*statuses, 403, 429}))
    entries: dict[int | str, dict[str, Any]] = {
        s: {"model": ErrorBody, "description": DESCRIPTION[s]} for s in statuses
    }
    if ok is not None:
        entries[200] = ok
    return entries


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody.model_validate({"error": {"code": code, "message": message}})
    return JSONResponse(
        body.model_dump(), status_code=status, headers=dict(headers) if headers else None
    )


def install(app: FastAPI) -> None:
    """Answer every error, whoever raised it, in the one shape."""

    @app.exception_handler(BeanpoleError)
    async def _beanpole_error(request: Request, exc: BeanpoleError) -> JSONResponse:
        if type(exc) is BeanpoleError or exc.code not in STATUS:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        return error_response(STATUS.get(exc.code, 500), exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return error_response(400, InvalidInput.code, f"The request is not valid: {problems}.")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            code, message = NotFound.code, f"No such path: {request.url.path}. See /api/v1/docs."
        elif exc.status_code == 405:
            methods = allowed_methods(app, request.url.path)
            allowed = ", ".join(methods) or (exc.headers or {}).get("Allow", "")
            code = "method_not_allowed"
            message = f"{request.url.path} does not take {request.method}; it takes {allowed}."
            return error_response(405, code, message, headers={"Allow": allowed})
        else:
            code, message = "http_error", str(exc.detail)
        return error_response(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, BeanpoleError.code, unexpected(exc))


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods ``path`` takes, over every route declared for it: Starlette's own
    ``Allow`` names only the first route that matched the path, not its siblings (GET and
    DELETE of one path are two routes)."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "path_methods", None)
    if table is None:
        table = []
        for template, operations in app.openapi()["paths"].items():
            regex = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
            table.append((re.compile(regex), sorted(m.upper() for m in operations)))
        app.state.path_methods = table
    for compiled, methods in table:
        if compiled.fullmatch(path):
            return methods
    return []
