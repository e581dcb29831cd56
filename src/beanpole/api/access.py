"""API tokens and the audit log as the API shows them. The token itself appears once, in
`TokenCreated`; no other view carries it, and the store keeps only its hash."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from beanpole.api.inputs import Input
from beanpole.api.views import View

RoleName = Literal["read", "deploy", "admin"]


class CreateToken(Input):
    role: RoleName
    application: str | None = Field(
        default=None, max_length=100, description="Limit the token to this application"
    )
    name: str = Field(default="", max_length=64, description="What the token is for")


class TokenCreated(View):
    """A new token: the only answer that carries it."""

    id: str
    token: str
    name: str
    role: RoleName
    application: str | None


class TokenView(View):
    id: str
    name: str
    role: RoleName
    application: str | None
    created_at: float
    last_used_at: float | None  # recorded at most once a minute
    revoked: bool


class TokenRevoked(View):
    id: str
    revoked_at: float


class AuditEntry(View):
    time: float
    actor: str  # "token 1a2b3c4d (ci)", "server token", "user alice", "anonymous"
    role: str | None
    application: str | None
    environment: str | None
    action: str  # "POST /api/v1/environments/shop/deploy" or EB's "UpdateEnvironment"
    status: int  # the answer's HTTP status
    source: str  # the client's address and user agent
    request_id: str | None


class AuditView(View):
    entries: list[AuditEntry]  # oldest first
