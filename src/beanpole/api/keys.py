"""Access keys as the API shows them: what `POST /api/v1/keys` takes and what the key
routes answer. The secret appears once, in `AccessKeyCreated`; no other view carries it."""

from __future__ import annotations

from pydantic import Field

from beanpole.api.inputs import Input
from beanpole.api.views import View


class CreateAccessKey(Input):
    description: str = Field(default="", max_length=200, description="What the key is for")


class AccessKeyCreated(View):
    """A new key with its secret: the only answer that carries the secret."""

    access_key_id: str
    secret_access_key: str
    created_at: float


class AccessKeyView(View):
    access_key_id: str
    created_at: float
    last_used_at: float | None  # recorded at most once a minute
    revoked: bool
    description: str


class AccessKeyRevoked(View):
    access_key_id: str
    revoked_at: float
