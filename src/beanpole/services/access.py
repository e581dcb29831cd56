"""Who is calling (`core.access`): API tokens with roles, the server's own token, and the
audit log of every change.

Wrong bearer tokens are counted per client address, like failed console sign-ins
(`services.users.SignInThrottle`): after 20 in a minute, that address gets 429 until the
oldest is a minute old, whatever it sends.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from beanpole.adapters.store.access import AccessStore, AuditRecord, TokenRecord
from beanpole.api.access import AuditEntry, AuditView, TokenCreated, TokenRevoked, TokenView
from beanpole.core.access import (
    Principal,
    Role,
    check_token_name,
    matches,
    new_token,
    parse_token,
)
from beanpole.core.errors import NotFound, Unauthorized
from beanpole.core.model import check_app_name
from beanpole.services.users import SignInThrottle

SERVER_TOKEN = "server token"  # noqa: S105 - how the audit log names its holder
TOUCH_EVERY_S = 60.0
# Wrong bearer tokens a client address may send a minute: more than a person's sign-ins
# (a script with a stale token retries), far too few to guess 256 random bits.
BEARER_FAILURES_ALLOWED = 20


class Access:
    def __init__(self, store: AccessStore, server_token: str) -> None:
        self.store = store
        self.server_token = server_token
        self.throttle = SignInThrottle(BEARER_FAILURES_ALLOWED)

    # who is calling ---------------------------------------------------------------------

    def authenticate(self, given: str, client: str) -> Principal:
        """The principal a bearer token stands for; `Unauthorized` (counted against the
        client) for any other text, `Throttled` once the client failed too often."""
        now = time.time()
        self.throttle.check(client, now)
        principal = self._principal(given.strip(), now)
        if principal is None:
            self.throttle.attempt(client, now)
            raise Unauthorized(
                "Missing or wrong bearer token. Set BEANPOLE_TOKEN (or BEANPOLE_HOME for a "
                "local server, whose token file the CLI reads); an admin makes tokens with "
                "beanpole tokens create."
            )
        return principal

    def still_valid(self, given: str) -> bool:
        """Whether a token that was let in still is (a stream asks again as it runs: a
        revoked token's streams end). Not counted against anyone: no guess comes this way."""
        return self._principal(given.strip(), time.time()) is not None

    def _principal(self, given: str, now: float) -> Principal | None:
        if given and hmac.compare_digest(given.encode(), self.server_token.encode()):
            return Principal(SERVER_TOKEN, Role.ADMIN)
        parsed = parse_token(given)
        if parsed is None:
            return None
        token_id, secret = parsed
        record = self.store.token(token_id)
        if record is None or not record.active or not matches(secret, record.secret_hash):
            return None
        if record.last_used_at is None or now - record.last_used_at > TOUCH_EVERY_S:
            self.store.touch_token(token_id, now)
        label = f"token {record.id}" + (f" ({record.name})" if record.name else "")
        return Principal(label, record.role, record.application, record.id)

    # tokens -----------------------------------------------------------------------------

    async def create(self, role: str, application: str | None, name: str) -> TokenCreated:
        if name:
            check_token_name(name)
        if application is not None:
            check_app_name(application)
        token_id, token, secret_hash = new_token()
        record = TokenRecord(
            id=token_id,
            name=name,
            role=Role(role),
            application=application,
            secret_hash=secret_hash,
            created_at=time.time(),
            last_used_at=None,
            revoked_at=None,
        )
        await asyncio.to_thread(self.store.add_token, record)
        return TokenCreated(
            id=token_id, token=token, name=name, role=record.role.value, application=application
        )

    async def list_all(self) -> list[TokenView]:
        records = await asyncio.to_thread(self.store.tokens)
        return [
            TokenView(
                id=r.id,
                name=r.name,
                role=r.role.value,
                application=r.application,
                created_at=r.created_at,
                last_used_at=r.last_used_at,
                revoked=not r.active,
            )
            for r in records
        ]

    async def revoke(self, token_id: str) -> TokenRevoked:
        record = await asyncio.to_thread(self.store.revoke_token, token_id, time.time())
        if record is None or record.revoked_at is None:
            raise NotFound(f"There is no token {token_id!r}. See them with: beanpole tokens list")
        return TokenRevoked(id=record.id, revoked_at=record.revoked_at)

    # the audit log ----------------------------------------------------------------------

    def record(self, entry: AuditRecord) -> None:
        self.store.record(entry)

    async def audit(self, application: str | None, limit: int) -> AuditView:
        rows = await asyncio.to_thread(self.store.entries, application, limit)
        return AuditView(
            entries=[
                AuditEntry(
                    time=r.time,
                    actor=r.actor,
                    role=r.role,
                    application=r.application,
                    environment=r.environment,
                    action=r.action,
                    status=r.status,
                    source=r.source,
                    request_id=r.request_id,
                )
                for r in rows
            ]
        )
