"""One S3 request as the handlers see it: the bucket and key it names, its query, and what
the dispatcher's signature check established about its body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response

from beanpole.services.buckets import Buckets, InvalidArgument


@dataclass
class Call:
    request: Request
    buckets: Buckets
    bucket: str
    key: str
    query: QueryParams
    content_sha256: str
    request_id: str
    body_read: bool = False  # the request body was read to its end

    @property
    def headers(self) -> Headers:
        return self.request.headers


Handler = Callable[[Call], Awaitable[Response]]


def int_param(value: str, name: str) -> int:
    if not value.isdigit():
        raise InvalidArgument(f"{name} must be a non-negative integer, not {value[:40]!r}.")
    return int(value)
