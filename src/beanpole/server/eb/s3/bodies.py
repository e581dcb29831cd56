"""Request bodies and what comes with them: the signed sha256, aws-chunked streams, the
checksums announced, and the headers and tags kept with a new object."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, MutableMapping
from urllib.parse import parse_qsl

from beanpole.server.eb.s3.call import Call
from beanpole.server.eb.s3.chunked import AwsChunked
from beanpole.server.eb.s3.errors import Fault
from beanpole.services.buckets import (
    CHECKSUMS,
    DEFAULT_CONTENT_TYPE,
    ContentSHA256Mismatch,
    EntityTooLarge,
    InvalidArgument,
    NewObject,
    Unsupported,
)

MAX_XML_BYTES = 2 << 20  # a CompleteMultipartUpload of 10,000 parts is about 1 MB
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# Request headers kept with an object and sent back with it.
_KEPT = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-storage-class",
    "x-amz-website-redirect-location",
)


def declared_sha256(call: Call) -> str | None:
    """The sha256 the signature covered, or None when the payload was not signed as a whole
    (UNSIGNED-PAYLOAD, aws-chunked, or no header)."""
    value = call.content_sha256.strip()
    if _HEX_SHA256.fullmatch(value):
        return value.lower()
    if value in ("", "UNSIGNED-PAYLOAD") or value.startswith("STREAMING-"):
        return None
    raise InvalidArgument(
        f"x-amz-content-sha256 {value[:80]!r} is neither a hex sha256, UNSIGNED-PAYLOAD nor a "
        "STREAMING-* value."
    )


def stream(call: Call, checksums: MutableMapping[str, str]) -> AsyncIterator[bytes]:
    """The request body's bytes, aws-chunked framing removed (its trailer's checksums go into
    ``checksums`` once the body has been read)."""
    if call.content_sha256.strip().startswith("STREAMING-"):
        return _aws_chunked(call, checksums)
    return _raw(call)


async def _raw(call: Call) -> AsyncIterator[bytes]:
    async for data in call.request.stream():
        yield data
    call.body_read = True


async def _aws_chunked(call: Call, checksums: MutableMapping[str, str]) -> AsyncIterator[bytes]:
    # The chunk signatures (and a trailer signature) are not verified: the dispatcher checked
    # the seed signature of the headers, and TCP (or TLS in front) carries the chunks. The
    # trailer checksum, when sent, is verified like a header one.
    decoder = AwsChunked()
    size = 0
    async for data in _raw(call):
        out = decoder.feed(data)
        size += len(out)
        if out:
            yield out
    decoder.finish()
    declared = call.headers.get("x-amz-decoded-content-length")
    if declared is not None and declared.isdigit() and int(declared) != size:
        raise Fault(
            400,
            "IncompleteBody",
            f"The body decoded to {size} bytes, not the {declared} x-amz-decoded-content-length "
            "announced. Send it again.",
        )
    for name, value in decoder.trailers.items():
        if name.startswith("x-amz-checksum-"):
            checksums[name.removeprefix("x-amz-checksum-")] = value


async def read_small(call: Call) -> bytes:
    """A small (XML) body, checked against the signed sha256 like any other."""
    data = bytearray()
    async for chunk in stream(call, {}):
        data += chunk
        if len(data) > MAX_XML_BYTES:
            raise Fault(400, "MaxMessageLengthExceeded", "The XML body is too large.")
    declared = declared_sha256(call)
    if declared is not None:
        computed = hashlib.sha256(data).hexdigest()
        if computed != declared:
            raise ContentSHA256Mismatch(declared, computed)
    return bytes(data)


def refuse_early(call: Call) -> None:
    """Refuse a body announced too large before reading it."""
    length = call.headers.get("x-amz-decoded-content-length") or call.headers.get("content-length")
    limit = call.buckets.max_object_bytes
    if length is not None and length.isdigit() and int(length) > limit:
        raise EntityTooLarge(
            f"The body is {int(length)} bytes; this bundle store keeps at most {limit} per "
            "object. Leave build outputs and dependencies out of the bundle (.ebignore)."
        )


def given_checksums(call: Call) -> dict[str, str]:
    """The ``x-amz-checksum-*`` headers by algorithm, and a Content-MD5 as ``md5``; an
    algorithm announced (as a header, a trailer or the SDK's choice) that this store cannot
    verify is refused before the body."""
    found = {
        name.removeprefix("x-amz-checksum-"): value
        for name, value in call.headers.items()
        if name.startswith("x-amz-checksum-") and name != "x-amz-checksum-mode"
    }
    announced = [
        *found,
        *(
            t.strip().lower().removeprefix("x-amz-checksum-")
            for t in call.headers.get("x-amz-trailer", "").split(",")
            if t.strip().lower().startswith("x-amz-checksum-")
        ),
        call.headers.get("x-amz-sdk-checksum-algorithm", "").lower(),
    ]
    for algorithm in announced:
        if algorithm and algorithm not in CHECKSUMS:
            raise unsupported_checksum(algorithm)
    if "content-md5" in call.headers:
        found["md5"] = call.headers["content-md5"]
    return found


def unsupported_checksum(algorithm: str) -> Unsupported:
    return Unsupported(
        f"Checksum algorithm {algorithm.upper()} is not implemented by Beanpole's bundle store; "
        "use CRC32 (boto3's default), SHA1 or SHA256."
    )


def checksum_headers(checksums: dict[str, str]) -> dict[str, str]:
    return {f"x-amz-checksum-{name}": value for name, value in checksums.items()}


def new_object(call: Call) -> NewObject:
    h = call.headers
    kept = {name: h[name] for name in _KEPT if name in h}
    encoding = ",".join(
        e.strip() for e in kept.pop("content-encoding", "").split(",") if e.strip() != "aws-chunked"
    )
    if encoding:
        kept["content-encoding"] = encoding
    tags: dict[str, str] = {}
    if "x-amz-tagging" in h:
        try:
            tags = dict(parse_qsl(h["x-amz-tagging"], keep_blank_values=True, strict_parsing=True))
        except ValueError:
            raise InvalidArgument("x-amz-tagging must be URL-encoded key=value pairs.") from None
    return NewObject(
        content_type=h.get("content-type") or DEFAULT_CONTENT_TYPE,
        metadata={
            name.removeprefix("x-amz-meta-"): value
            for name, value in h.items()
            if name.startswith("x-amz-meta-")
        },
        headers=kept,
        tags=tags,
    )
