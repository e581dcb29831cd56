"""The bearer token every route but ping asks for, declared as the OpenAPI security scheme
(``HTTPBearer``) so clients generated from the document send it."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from beanpole.core.errors import Unauthorized

API = "/api/v1"

_scheme = HTTPBearer(
    auto_error=False,  # a missing token answers our error shape, not FastAPI's
    description="The token in the server's BEANPOLE_HOME/token file.",
)


def bearer_dependency(token: str) -> Any:
    """A dependency that refuses a request without ``token`` as its bearer token."""

    def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_scheme)],
    ) -> None:
        given = credentials.credentials.strip() if credentials is not None else ""
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized(
                "Missing or wrong bearer token. Set BEANPOLE_TOKEN (or BEANPOLE_HOME for a "
                "local server, whose token file the CLI reads)."
            )

    return Depends(authorised)
