"""ListObjects and ListObjectsV2: one page of a bucket's keys, with S3's markers,
continuation tokens, delimiters and URL encoding."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from starlette.responses import Response

from beanpole.server.eb.s3.call import Call, int_param
from beanpole.server.eb.s3.xml import el, iso, owner, xml_response
from beanpole.services.buckets import InvalidArgument


async def list_objects(call: Call) -> Response:
    q = call.query
    v2 = q.get("list-type") == "2"
    url = q.get("encoding-type") == "url"
    if q.get("encoding-type") not in (None, "url"):
        raise InvalidArgument("encoding-type must be 'url'.")
    max_keys = int_param(q.get("max-keys", "1000"), "max-keys")
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    token = q.get("continuation-token")
    after = (
        _untoken(token)
        if v2 and token is not None
        else q.get("start-after" if v2 else "marker", "")
    )
    page = await call.buckets.list_objects(
        call.bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=min(max_keys, 1000)
    )

    def enc(value: str) -> str:
        return quote(value, safe="/~") if url else value

    with_owner = not v2 or q.get("fetch-owner") == "true"
    root = el(
        "ListBucketResult",
        el("Name", call.bucket),
        el("Prefix", enc(prefix)),
        *(
            (
                el("KeyCount", str(len(page.objects) + len(page.prefixes))),
                el("ContinuationToken", token) if token is not None else None,
                el("NextContinuationToken", _token(page.last)) if page.truncated else None,
                el("StartAfter", enc(q["start-after"])) if "start-after" in q else None,
            )
            if v2
            else (
                el("Marker", enc(q.get("marker", ""))),
                el("NextMarker", enc(page.last)) if page.truncated else None,
            )
        ),
        el("MaxKeys", str(max_keys)),
        el("Delimiter", enc(delimiter)) if delimiter else None,
        el("EncodingType", "url") if url else None,
        el("IsTruncated", "true" if page.truncated else "false"),
        *(
            el(
                "Contents",
                el("Key", enc(o.key)),
                el("LastModified", iso(o.created_at)),
                el("ETag", f'"{o.etag}"'),
                el("Size", str(o.size)),
                owner() if with_owner else None,
                el("StorageClass", "STANDARD"),
            )
            for o in page.objects
        ),
        *(el("CommonPrefixes", el("Prefix", enc(p))) for p in page.prefixes),
    )
    return xml_response(root)


def _token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            "The continuation token is not one this store gave; start the listing again."
        ) from None
