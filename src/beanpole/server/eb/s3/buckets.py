"""Bucket calls: create, look up, list and delete buckets, their tags, and the bucket
sub-resources (location, ACL, versioning…) that clients read before they upload."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

from starlette.responses import Response

from beanpole.adapters.store.objects import BucketRecord
from beanpole.server.eb.s3.bodies import read_small
from beanpole.server.eb.s3.call import Call, Handler
from beanpole.server.eb.s3.errors import Fault
from beanpole.server.eb.s3.xml import (
    OWNER_ID,
    OWNER_NAME,
    el,
    iso,
    owner,
    parse,
    parse_tags,
    tagging,
    text,
    xml_response,
)
from beanpole.services.buckets import Unsupported

_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")


async def list_buckets(call: Call) -> Response:
    found = await call.buckets.list_buckets()
    return xml_response(
        el(
            "ListAllMyBucketsResult",
            owner(),
            el(
                "Buckets",
                *(
                    el("Bucket", el("Name", b.name), el("CreationDate", iso(b.created_at)))
                    for b in found
                ),
            ),
        )
    )


async def create_bucket(call: Call) -> Response:
    if call.headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true":
        raise Unsupported("Object Lock is not implemented by Beanpole's bundle store.")
    location = ""
    body = await read_small(call)
    if body.strip():
        doc = parse(body)
        location = text(doc, "LocationConstraint")
    # x-amz-acl is accepted and not kept: every bucket is private to the server's key.
    await call.buckets.create_bucket(call.bucket, location)
    return Response(status_code=200, headers={"location": f"/{call.bucket}"})


async def head_bucket(call: Call) -> Response:
    bucket = await call.buckets.head_bucket(call.bucket)
    return Response(
        status_code=200,
        headers={"x-amz-bucket-region": _region(call, bucket), "content-length": "0"},
    )


async def delete_bucket(call: Call) -> Response:
    await call.buckets.delete_bucket(call.bucket)
    return Response(status_code=204)


async def location(call: Call) -> Response:
    bucket = await call.buckets.head_bucket(call.bucket)
    return xml_response(el("LocationConstraint", bucket.location or None))


async def bucket_acl(call: Call) -> Response:
    await call.buckets.head_bucket(call.bucket)
    grantee = el("Grantee", el("ID", OWNER_ID), el("DisplayName", OWNER_NAME))
    grantee.set("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
    grantee.set("xsi:type", "CanonicalUser")
    return xml_response(
        el(
            "AccessControlPolicy",
            owner(),
            el("AccessControlList", el("Grant", grantee, el("Permission", "FULL_CONTROL"))),
        )
    )


def fixed(build: Callable[[], ET.Element]) -> Handler:
    """A bucket read whose answer never changes here (no versioning, no logging…)."""

    async def answer(call: Call) -> Response:
        await call.buckets.head_bucket(call.bucket)
        return xml_response(build())

    return answer


def absent(code: str, what: str) -> Handler:
    """A bucket configuration this store never holds: S3's "there is none" error."""

    async def answer(call: Call) -> Response:
        await call.buckets.head_bucket(call.bucket)
        raise Fault(404, code, f"Bucket {call.bucket} has no {what}.")

    return answer


async def delete_absent(call: Call) -> Response:
    """Deleting a configuration that cannot exist here succeeds, as in S3."""
    await call.buckets.head_bucket(call.bucket)
    return Response(status_code=204)


async def get_bucket_tags(call: Call) -> Response:
    return xml_response(tagging(await call.buckets.bucket_tags(call.bucket)))


async def put_bucket_tags(call: Call) -> Response:
    await call.buckets.set_bucket_tags(call.bucket, parse_tags(await read_small(call)))
    return Response(status_code=204)


async def delete_bucket_tags(call: Call) -> Response:
    await call.buckets.set_bucket_tags(call.bucket, None)
    return Response(status_code=204)


def _region(call: Call, bucket: BucketRecord) -> str:
    """A bucket's region: its LocationConstraint, else the region the request was signed for
    (a bucket created without one answers to every region), else us-east-1."""
    if bucket.location:
        return bucket.location
    found = _REGION.search(call.headers.get("authorization", "")) or _REGION.search(
        "Credential=" + call.query.get("X-Amz-Credential", "")
    )
    return found.group(1) if found else "us-east-1"
