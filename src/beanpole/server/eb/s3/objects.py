"""Object calls: put (or copy), head, get and delete an object, delete many at once, and an
object's tags."""

from __future__ import annotations

from email.utils import formatdate
from urllib.parse import unquote

from starlette.responses import FileResponse, Response

from beanpole.adapters.store.objects import ObjectRecord
from beanpole.server.eb.s3.bodies import (
    checksum_headers,
    declared_sha256,
    given_checksums,
    new_object,
    read_small,
    refuse_early,
    stream,
)
from beanpole.server.eb.s3.call import Call
from beanpole.server.eb.s3.errors import Fault
from beanpole.server.eb.s3.xml import (
    el,
    iso,
    local,
    parse,
    parse_tags,
    tagging,
    text,
    xml_response,
)
from beanpole.services.buckets import InvalidArgument, NewObject, Unsupported


async def put_object(call: Call) -> Response:
    if "x-amz-copy-source" in call.headers:
        return await _copy_object(call)
    if "partNumber" in call.query:
        raise InvalidArgument("partNumber needs an uploadId (UploadPart).")
    refuse_early(call)
    checksums = given_checksums(call)
    obj = await call.buckets.put_object(
        call.bucket,
        call.key,
        stream(call, checksums),
        declared_sha256(call),
        new=new_object(call),
        checksums=checksums,
    )
    headers = {"etag": f'"{obj.etag}"'} | checksum_headers(obj.checksums)
    return Response(status_code=200, headers=headers)


async def _copy_object(call: Call) -> Response:
    source = unquote(call.headers["x-amz-copy-source"]).split("?", 1)[0].lstrip("/")
    source_bucket, _, source_key = source.partition("/")
    if not source_key:
        raise InvalidArgument("x-amz-copy-source must name bucket/key.")
    original = await call.buckets.head_object(source_bucket, source_key)
    given = new_object(call)
    replace_meta = call.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
    replace_tags = call.headers.get("x-amz-tagging-directive", "COPY").upper() == "REPLACE"
    new = NewObject(
        content_type=given.content_type if replace_meta else original.content_type,
        metadata=given.metadata if replace_meta else original.metadata,
        headers=given.headers if replace_meta else original.headers,
        tags=given.tags if replace_tags else original.tags,
    )
    obj = await call.buckets.copy_object(source_bucket, source_key, call.bucket, call.key, new)
    return xml_response(
        el(
            "CopyObjectResult",
            el("LastModified", iso(obj.created_at)),
            el("ETag", f'"{obj.etag}"'),
        )
    )


async def head_object(call: Call) -> Response:
    obj = await call.buckets.head_object(call.bucket, call.key)
    _check_version(call)
    status = _preconditions(call, obj)
    headers = _object_headers(call, obj) | {"content-length": str(obj.size)}
    return Response(status_code=status, headers=headers)


async def get_object(call: Call) -> Response:
    if "partNumber" in call.query:
        raise Unsupported("GetObject of one part (partNumber) is not implemented.")
    _check_version(call)
    obj, path = await call.buckets.get_object(call.bucket, call.key)
    status = _preconditions(call, obj)
    headers = _object_headers(call, obj)
    if status != 200:
        return Response(status_code=status, headers=headers)
    for name, value in call.query.items():
        if name.startswith("response-"):
            headers[name.removeprefix("response-")] = value
    # FileResponse answers a Range with 206 and Content-Range itself.
    return FileResponse(path, headers=headers)


async def delete_object(call: Call) -> Response:
    _check_version(call)
    await call.buckets.delete_object(call.bucket, call.key)
    return Response(status_code=204)


async def delete_objects(call: Call) -> Response:
    doc = parse(await read_small(call))
    quiet = text(doc, "Quiet").lower() == "true"
    keys = [text(o, "Key", strip=False) for o in doc if local(o.tag) == "Object"]
    if not keys or len(keys) > 1000:
        raise Fault(400, "MalformedXML", "Delete lists 1 to 1000 objects.")
    await call.buckets.delete_objects(call.bucket, keys)
    deleted = [] if quiet else [el("Deleted", el("Key", k)) for k in keys]
    return xml_response(el("DeleteResult", *deleted))


async def get_object_tags(call: Call) -> Response:
    return xml_response(tagging(await call.buckets.object_tags(call.bucket, call.key)))


async def put_object_tags(call: Call) -> Response:
    await call.buckets.set_object_tags(call.bucket, call.key, parse_tags(await read_small(call)))
    return Response(status_code=200)


async def delete_object_tags(call: Call) -> Response:
    await call.buckets.set_object_tags(call.bucket, call.key, {})
    return Response(status_code=204)


def _object_headers(call: Call, obj: ObjectRecord) -> dict[str, str]:
    headers = {
        "content-type": obj.content_type,
        "etag": f'"{obj.etag}"',
        "last-modified": formatdate(obj.created_at, usegmt=True),
        "accept-ranges": "bytes",
        **obj.headers,
        **{f"x-amz-meta-{name}": value for name, value in obj.metadata.items()},
    }
    if obj.tags:
        headers["x-amz-tagging-count"] = str(len(obj.tags))
    asked = call.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    if asked and "range" not in call.headers:  # a checksum is of the whole body
        headers |= checksum_headers(obj.checksums)
    return headers


def _preconditions(call: Call, obj: ObjectRecord) -> int:
    """If-Match and If-None-Match, as S3 (412, or 304), else 200."""
    etags = [e.strip().strip('"') for e in call.headers.get("if-match", "").split(",") if e.strip()]
    if etags and "*" not in etags and obj.etag not in etags:
        raise Fault(
            412, "PreconditionFailed", "At least one of the preconditions failed: If-Match."
        )
    nones = [
        e.strip().strip('"') for e in call.headers.get("if-none-match", "").split(",") if e.strip()
    ]
    if nones and ("*" in nones or obj.etag in nones):
        return 304
    return 200


def _check_version(call: Call) -> None:
    version = call.query.get("versionId")
    if version not in (None, "null"):
        raise Unsupported("Object versions are not implemented by Beanpole's bundle store.")
