"""Console users and sessions as the API shows them: what `/api/v1/users` and
`/api/v1/session` take and answer. No view carries a password or its hash."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from beanpole.api.inputs import Input
from beanpole.api.views import View


class CreateUser(Input):
    name: str = Field(description="1-64 characters: letters, digits, '.', '_', '-'")
    password: str = Field(description="At least 8 characters", max_length=1024)


class UserView(View):
    name: str
    created_at: float
    last_sign_in_at: float | None


class UserRemoved(View):
    name: str


class SignIn(Input):
    """Either ``token`` (the API token) or ``user`` and ``password``."""

    token: str | None = Field(default=None, max_length=1024)
    user: str | None = Field(default=None, max_length=64)
    password: str | None = Field(default=None, max_length=1024)


class SessionView(View):
    user: str = Field(description="The user's name, or 'token' for the API token")
    method: Literal["password", "token"]
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every change")
    expires_at: float


class SignedOut(View):
    signed_out: bool
