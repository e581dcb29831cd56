"""Who may call the REST API: a bearer token (the CLI, scripts) or a console session.

The bearer token is declared as the OpenAPI security scheme (``HTTPBearer``) so clients
generated from the document send it. A browser signed in to the console sends its session
cookie instead (``APIKeyCookie`` in the document); since a browser sends cookies on its own,
every change it makes must also carry the session's CSRF token in ``X-CSRF-Token``, which
only the console's own script can read (`services.users`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from beanpole.adapters.store.db import Store
from beanpole.api.users import SessionView
from beanpole.core.access import API as API  # noqa: PLC0414 - re-exported: the routers' prefix
from beanpole.core.access import (
    SAFE_METHODS,
    TOKEN_PREFIX,
    Principal,
    Role,
    Target,
    check_application,
    check_role,
    required_role,
    target_of,
)
from beanpole.core.errors import BeanpoleError, Forbidden, Unauthorized
from beanpole.services.access import Access
from beanpole.services.users import Users

AUDIT_SCOPE_KEY = "beanpole.audit"  # what the auth dependency learnt, for the audit log
SESSION_COOKIE = "beanpole_session"
CSRF_HEADER = "X-CSRF-Token"

_scheme = HTTPBearer(
    auto_error=False,  # a missing token answers our error shape, not FastAPI's
    description="The server's token (its BEANPOLE_HOME/token file), or one made with "
    "beanpole tokens create (a role: read, deploy or admin; maybe one application).",
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="A web console session (POST /api/v1/session); changes also need the "
    "session's CSRF token in the X-CSRF-Token header.",
)


def session_of(request: Request, users: Users) -> SessionView | None:
    """The live console session the request's cookie names (a blocking store read)."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    return users.session(session_id) if session_id else None


def check_csrf(request: Request, session: SessionView) -> None:
    if request.method in SAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER, "")
    if not given or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        raise Forbidden(
            f"This change came with the console's session cookie but without its "
            f"{CSRF_HEADER} header. Reload the console; scripts use the bearer token instead."
        )


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def auth_dependency(access: Access, users: Users, store: Store) -> Any:
    """A dependency that finds who calls (a bearer token, or a live console session and,
    for a change, its CSRF token), checks the route allows their role and, for a token
    limited to one application, that the route is about that application
    (`core.access`). What it learns goes to the audit log (`AuditLog`)."""

    async def authorised(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_scheme)],
        cookie: Annotated[str | None, Security(_cookie)],
    ) -> Principal:
        facts: dict[str, Any] = request.scope.setdefault(AUDIT_SCOPE_KEY, {})
        if credentials is not None:
            given, client = credentials.credentials, client_of(request)
            # only a made token is looked up in the store: the server's is compared in place
            principal = (
                await asyncio.to_thread(access.authenticate, given, client)
                if given.strip().startswith(TOKEN_PREFIX)
                else access.authenticate(given, client)
            )
        elif cookie:
            session = await asyncio.to_thread(session_of, request, users)
            if session is None:
                raise Unauthorized("Your console session has ended: sign in again.")
            facts["principal"] = principal = Principal(f"user {session.user}", Role.ADMIN)
            check_csrf(request, session)
        else:
            raise Unauthorized(
                "Missing bearer token. Set BEANPOLE_TOKEN (or BEANPOLE_HOME for a local "
                "server, whose token file the CLI reads)."
            )
        facts["principal"] = principal
        route = getattr(request.scope.get("route"), "path", request.url.path)
        body = await _json_body(request) if _NAMES_IN_BODY(request.method, route) else None
        target = target_of(request.method, route, dict(request.path_params), body)
        applications, environment = (
            await asyncio.to_thread(_resolve, store, target)
            if target.environments or target.operation is not None
            else ([], None)
        )
        facts["application"] = target.application or next(iter(applications), None)
        facts["environment"] = environment
        check_role(principal, required_role(request.method, route))
        check_application(principal, target, applications)
        request.state.principal = principal
        return principal

    return Depends(authorised)


def _NAMES_IN_BODY(method: str, route: str) -> bool:
    """The routes whose body names the application or another environment."""
    return method == "POST" and (route == f"{API}/environments" or route.endswith("/swap"))


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()  # FastAPI read it already: this is its cached copy
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _resolve(store: Store, target: Target) -> tuple[list[str], str | None]:
    """The applications of the target's environments (or operation), and the first
    environment's name, for the audit log. A name means its newest environment, a
    terminated one too (its operations and events stay readable); an operation means the
    environment it ran on, by id, never a later namesake. Unknown ones resolve to nothing."""
    environments = []
    if target.operation is not None:
        with contextlib.suppress(BeanpoleError):
            op = store.operation(target.operation)
            environments.append(store.environment_by_id(op.environment_id))
        if not environments:
            return [], None
    for name in target.environments:
        env_id = store.environment_id_of(name)
        if env_id is None:
            return [], name  # one unknown: nothing this token may be sure of
        environments.append(store.environment_by_id(env_id))
    return [e.application for e in environments], (environments[0].name if environments else None)


def scoped_application(request: Request) -> str | None:
    """The application a list must be limited to: the caller's token's, if it has one."""
    principal = getattr(request.state, "principal", None)
    return principal.application if isinstance(principal, Principal) else None
