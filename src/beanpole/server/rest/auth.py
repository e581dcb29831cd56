"""Who may call the REST API: a bearer token (the CLI, scripts) or a console session.

The bearer token is declared as the OpenAPI security scheme (``HTTPBearer``) so clients
generated from the document send it. A browser signed in to the console sends its session
cookie instead (``APIKeyCookie`` in the document); since a browser sends cookies on its own,
every change it makes must also carry the session's CSRF token in ``X-CSRF-Token``, which
only the console's own script can read (`services.users`).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from beanpole.api.users import SessionView
from beanpole.core.errors import Forbidden, Unauthorized
from beanpole.services.users import Users

API = "/api/v1"
SESSION_COOKIE = "beanpole_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_scheme = HTTPBearer(
    auto_error=False,  # a missing token answers our error shape, not FastAPI's
    description="The token in the server's BEANPOLE_HOME/token file.",
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="A web console session (POST /api/v1/session); changes also need the "
    "session's CSRF token in the X-CSRF-Token header.",
)


def bearer_matches(credentials: HTTPAuthorizationCredentials | None, token: str) -> bool:
    given = credentials.credentials.strip() if credentials is not None else ""
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


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


def auth_dependency(token: str, users: Users) -> Any:
    """A dependency that refuses a request with neither ``token`` as its bearer token nor
    a live console session (and, for a change, the session's CSRF token)."""

    def authorised(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_scheme)],
        cookie: Annotated[str | None, Security(_cookie)],
    ) -> None:
        if bearer_matches(credentials, token):
            return
        if credentials is None and cookie:
            session = session_of(request, users)
            if session is None:
                raise Unauthorized("Your console session has ended: sign in again.")
            check_csrf(request, session)
            return
        raise Unauthorized(
            "Missing or wrong bearer token. Set BEANPOLE_TOKEN (or BEANPOLE_HOME for a "
            "local server, whose token file the CLI reads)."
        )

    return Depends(authorised)
