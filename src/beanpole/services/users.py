"""Console users and their sessions: who may sign in to the web console, and how a browser
proves it did.

A user signs in with a name and password (`beanpole user add NAME`; Argon2id hashes by
argon2-cffi) or with the API token. Either way the browser gets a random session id in an
HttpOnly cookie, which the store keeps only as its SHA-256, and a CSRF token that every
change must echo in the ``X-CSRF-Token`` header: a cookie is sent by the browser on its own,
the header only by the console's own script. Sessions last `SESSION_S` and survive a server
restart. Failed sign-ins are throttled per client address (`SignInThrottle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from beanpole.adapters.store.users import SessionRecord, UserRecord, UserStore
from beanpole.api.users import SessionView, SignedOut, SignIn, UserRemoved, UserView
from beanpole.core.errors import Conflict, InvalidInput, NotFound, Throttled, Unauthorized

SESSION_S = 12 * 3600.0
"""How long a console session lasts from sign-in (an EB console session's working day)."""
TOKEN_USER = "token"  # noqa: S105  (a user name, not a secret)
MIN_PASSWORD = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FAILURES_ALLOWED = 5
_FAILURE_WINDOW_S = 60.0


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SignInThrottle:
    """At most `_FAILURES_ALLOWED` failed sign-ins per client address a minute; the next
    ones are refused without checking, until the oldest failure is a minute old."""

    def __init__(self, allowed: int = _FAILURES_ALLOWED) -> None:
        self.allowed = allowed
        self._failures: dict[str, list[float]] = {}

    def check(self, client: str, now: float) -> None:
        recent = [t for t in self._failures.get(client, []) if now - t < _FAILURE_WINDOW_S]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        if len(recent) >= self.allowed:
            wait = int(_FAILURE_WINDOW_S - (now - recent[0])) + 1
            raise Throttled(f"Too many failed sign-ins from {client}. Try again in {wait} s.")

    def attempt(self, client: str, now: float) -> None:
        """Count an attempt as failed before it is checked (so parallel attempts cannot all
        pass `check`); `succeeded` takes it back."""
        self._failures.setdefault(client, []).append(now)
        if len(self._failures) > 10_000:  # a bounded table, whatever the clients do
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, client: str, now: float) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._failures[client].remove(now)


class Users:
    def __init__(self, store: UserStore, token: str) -> None:
        self.store = store
        self.token = token
        self.hasher = PasswordHasher()
        self.throttle = SignInThrottle()

    # users ---------------------------------------------------------------------------

    async def add(self, name: str, password: str) -> UserView:
        if not _NAME.match(name):
            raise InvalidInput(
                f"User name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit."
            )
        if name == TOKEN_USER:
            raise InvalidInput(f"{TOKEN_USER!r} names sign-ins with the API token: pick another.")
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(
                f"The password is too short: use at least {MIN_PASSWORD} characters."
            )
        record = UserRecord(
            name=name,
            password_hash=await asyncio.to_thread(self.hasher.hash, password),
            created_at=time.time(),
            last_sign_in_at=None,
        )
        if not await asyncio.to_thread(self.store.add, record):
            raise Conflict(
                f"User {name} exists. Remove it first (beanpole user remove {name}) to set a "
                "new password."
            )
        return _view(record)

    async def list_all(self) -> list[UserView]:
        return [_view(u) for u in await asyncio.to_thread(self.store.all)]

    async def remove(self, name: str) -> UserRemoved:
        if not await asyncio.to_thread(self.store.remove, name):
            raise NotFound(f"No user {name!r}. List the users with: beanpole user list")
        return UserRemoved(name=name)

    # sessions ------------------------------------------------------------------------

    async def sign_in(self, given: SignIn, client: str) -> tuple[str, SessionView]:
        """A new session for valid credentials: its id (for the cookie) and its view."""
        now = time.time()
        self.throttle.check(client, now)
        self.throttle.attempt(client, now)
        if given.token is not None and (given.user is not None or given.password is not None):
            raise InvalidInput("Sign in with the token or with a user and password, not both.")
        if given.token is not None:
            ok = hmac.compare_digest(given.token.strip().encode(), self.token.encode())
            user, method = TOKEN_USER, "token"
        elif given.user is not None and given.password is not None:
            ok = await asyncio.to_thread(self._check_password, given.user, given.password)
            user, method = given.user, "password"
        else:
            raise InvalidInput("Give the API token, or a user and a password.")
        if not ok:
            what = "API token" if method == "token" else "user name or password"
            raise Unauthorized(
                f"Wrong {what}. The token is in the server's BEANPOLE_HOME/token file; an "
                "operator adds users with: beanpole user add NAME"
            )
        self.throttle.succeeded(client, now)
        session_id = secrets.token_urlsafe(32)
        record = SessionRecord(
            id_hash=_digest(session_id),
            user=user,
            method=method,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_S,
        )
        await asyncio.to_thread(self.store.add_session, record)
        if method == "password":
            await asyncio.to_thread(self.store.signed_in, user, now)
        return session_id, _session_view(record)

    def session(self, session_id: str) -> SessionView | None:
        """The live session a cookie names, or None (unknown, expired, or its user removed).
        A blocking read: call it from a thread or a sync dependency."""
        if not session_id or len(session_id) > 128:
            return None
        record = self.store.session(_digest(session_id))
        if record is None or record.expires_at <= time.time():
            return None
        return _session_view(record)

    async def sign_out(self, session_id: str) -> SignedOut:
        await asyncio.to_thread(self.store.end_session, _digest(session_id))
        return SignedOut(signed_out=True)

    def _check_password(self, name: str, password: str) -> bool:
        user = self.store.get(name)
        if user is None:
            # As long as a real check, so a wrong name cannot be told from a wrong password.
            with contextlib.suppress(VerificationError, InvalidHashError):
                self.hasher.verify(_DUMMY_HASH, password)
            return False
        try:
            self.hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if self.hasher.check_needs_rehash(user.password_hash):
            self.store.set_password(name, self.hasher.hash(password))
        return True


_DUMMY_HASH = PasswordHasher().hash(secrets.token_urlsafe(16))


def _view(user: UserRecord) -> UserView:
    return UserView(
        name=user.name, created_at=user.created_at, last_sign_in_at=user.last_sign_in_at
    )


def _session_view(record: SessionRecord) -> SessionView:
    return SessionView(
        user=record.user,
        method="token" if record.method == "token" else "password",
        csrf_token=record.csrf_token,
        expires_at=record.expires_at,
    )
