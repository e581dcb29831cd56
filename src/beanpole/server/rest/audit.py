"""The audit log's recorder: an ASGI middleware around the REST API.

Every request that asks for a change (any method but GET, HEAD and OPTIONS) is recorded
once answered, whatever the answer, and so is every request refused for its credentials
or its role (401, 403, and a throttled client's first 429 of each minute), reads
included: who (`core.access.Principal`, or "anonymous"), what (method and path), when,
from where (address and user agent), the status, and the application and environment it
was about. A pure ASGI middleware, not
Starlette's ``BaseHTTPMiddleware``: streamed answers (``logs -f``) pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beanpole.adapters.store.access import AuditRecord
from beanpole.core.access import SAFE_METHODS, Principal
from beanpole.core.requests import current_request
from beanpole.server.rest.auth import AUDIT_SCOPE_KEY
from beanpole.services.access import Access

log = logging.getLogger(__name__)
REFUSALS = frozenset({401, 403, 429})


THROTTLED_EVERY_S = 60.0  # a throttled client's 429s: one entry a minute


class AuditLog:
    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access
        self._throttled: dict[str, float] = {}  # client -> when its last 429 was recorded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts: dict[str, Any] = {}
        scope[AUDIT_SCOPE_KEY] = facts
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            if scope["method"] not in SAFE_METHODS or status in REFUSALS:
                await self._record(scope, facts, status)

    async def _record(self, scope: Scope, facts: dict[str, Any], status: int) -> None:
        principal = facts.get("principal")
        client = scope.get("client")
        if status == 429 and not self._first_429(client[0] if client else "unknown"):
            return
        agent = next((v for k, v in scope.get("headers", []) if k == b"user-agent"), b"")
        source = f"{client[0] if client else 'unknown'} {agent.decode(errors='replace')[:100]}"
        entry = AuditRecord(
            time=time.time(),
            actor=principal.name if isinstance(principal, Principal) else "anonymous",
            role=str(principal.role) if isinstance(principal, Principal) else None,
            application=facts.get("application"),
            environment=facts.get("environment"),
            action=f"{scope['method']} {scope['path']}",
            status=status,
            source=source.strip(),
            request_id=current_request.get(),
        )
        try:
            await asyncio.to_thread(self.access.record, entry)
        except Exception:  # the answer is sent: a failed record is logged, not raised
            log.exception("could not record %s in the audit log", entry.action)

    def _first_429(self, client: str) -> bool:
        """Whether a 429 to ``client`` is the first this minute (the rest are not recorded:
        a flood of them would say nothing more)."""
        now = time.monotonic()
        last = self._throttled.get(client)
        if last is not None and now - last < THROTTLED_EVERY_S:
            return False
        if len(self._throttled) > 10_000:
            self._throttled.clear()
        self._throttled[client] = now
        return True
