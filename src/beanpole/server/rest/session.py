"""Console sessions: sign in (token or user and password), who is signed in, sign out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from beanpole.api.users import SessionView, SignedOut, SignIn
from beanpole.core.errors import Unauthorized
from beanpole.server.context import Context
from beanpole.server.rest.auth import API, SESSION_COOKIE, check_csrf, session_of
from beanpole.server.rest.errors import responses
from beanpole.services.users import SESSION_S


def _not_signed_in() -> Unauthorized:
    return Unauthorized("Not signed in to the console: POST /api/v1/session first.")


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=f"{API}/session", tags=["session"])
    users = ctx.users

    @api.post("", responses=responses(400, 401, 405, 429))
    async def sign_in(body: SignIn, request: Request, response: Response) -> SessionView:
        """Start a console session: with the API token, or a user's name and password. The
        answer sets the session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) and
        carries the CSRF token every change must send as X-CSRF-Token."""
        client = request.client.host if request.client else "unknown"
        session_id, view = await users.sign_in(body, client)
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(SESSION_S),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.headers["Cache-Control"] = "no-store"
        return view

    @api.get("", responses=responses(401, 405))
    def current(request: Request, response: Response) -> SessionView:
        """The session the cookie names (401 when there is none or it ended)."""
        session = session_of(request, users)
        if session is None:
            raise _not_signed_in()
        response.headers["Cache-Control"] = "no-store"
        return session

    @api.delete("", responses=responses(401, 403, 405))
    async def sign_out(request: Request, response: Response) -> SignedOut:
        """End the session (its CSRF token required) and clear the cookie."""
        session = session_of(request, users)
        if session is None:
            raise _not_signed_in()
        check_csrf(request, session)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return await users.sign_out(request.cookies.get(SESSION_COOKIE, ""))

    return api
