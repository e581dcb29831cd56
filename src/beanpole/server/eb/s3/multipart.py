"""Multipart uploads: start one, upload its parts, complete or abort it."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response

from beanpole.server.eb.s3.bodies import (
    checksum_headers,
    declared_sha256,
    given_checksums,
    new_object,
    read_small,
    refuse_early,
    stream,
    unsupported_checksum,
)
from beanpole.server.eb.s3.call import Call, int_param
from beanpole.server.eb.s3.xml import el, local, parse, text, xml_response
from beanpole.services.buckets import CHECKSUMS, Unsupported


async def create_upload(call: Call) -> Response:
    algorithm = call.headers.get("x-amz-checksum-algorithm", "").lower()
    if algorithm and algorithm not in CHECKSUMS:
        raise unsupported_checksum(algorithm)
    upload_id = await call.buckets.create_upload(call.bucket, call.key, new_object(call))
    headers = {"x-amz-checksum-algorithm": algorithm.upper()} if algorithm else {}
    return xml_response(
        el(
            "InitiateMultipartUploadResult",
            el("Bucket", call.bucket),
            el("Key", call.key),
            el("UploadId", upload_id),
        ),
        headers=headers,
    )


async def upload_part(call: Call) -> Response:
    if "x-amz-copy-source" in call.headers:
        raise Unsupported("UploadPartCopy is not implemented by Beanpole's bundle store.")
    number = int_param(call.query.get("partNumber", ""), "partNumber")
    refuse_early(call)
    checksums = given_checksums(call)
    part = await call.buckets.upload_part(
        call.bucket,
        call.key,
        call.query["uploadId"],
        number,
        stream(call, checksums),
        declared_sha256(call),
        checksums=checksums,
    )
    return Response(
        status_code=200, headers={"etag": f'"{part.md5}"'} | checksum_headers(part.checksums)
    )


async def complete_upload(call: Call) -> Response:
    doc = parse(await read_small(call))
    parts = []
    for part in doc:
        if local(part.tag) != "Part":
            continue
        parts.append((int_param(text(part, "PartNumber"), "PartNumber"), text(part, "ETag")))
    obj = await call.buckets.complete_upload(call.bucket, call.key, call.query["uploadId"], parts)
    return xml_response(
        el(
            "CompleteMultipartUploadResult",
            el("Location", f"{call.request.base_url}{quote(call.bucket)}/{quote(call.key)}"),
            el("Bucket", call.bucket),
            el("Key", call.key),
            el("ETag", f'"{obj.etag}"'),
        )
    )


async def abort_upload(call: Call) -> Response:
    await call.buckets.abort_upload(call.bucket, call.key, call.query["uploadId"])
    return Response(status_code=204)
