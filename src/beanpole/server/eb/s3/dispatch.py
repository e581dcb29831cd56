"""Routing: a request's method, scope (service, bucket or object) and sub-resource name its
handler; every failure is translated here, once, into S3's error shape."""

from __future__ import annotations

import logging
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response

from beanpole.core.errors import BeanpoleError
from beanpole.server.eb.s3.buckets import (
    absent,
    bucket_acl,
    create_bucket,
    delete_absent,
    delete_bucket,
    delete_bucket_tags,
    fixed,
    get_bucket_tags,
    head_bucket,
    list_buckets,
    location,
    put_bucket_tags,
)
from beanpole.server.eb.s3.call import Call, Handler
from beanpole.server.eb.s3.errors import CODES, Fault, details
from beanpole.server.eb.s3.listing import list_objects
from beanpole.server.eb.s3.multipart import (
    abort_upload,
    complete_upload,
    create_upload,
    upload_part,
)
from beanpole.server.eb.s3.objects import (
    delete_object,
    delete_object_tags,
    delete_objects,
    get_object,
    get_object_tags,
    head_object,
    put_object,
    put_object_tags,
)
from beanpole.server.eb.s3.xml import el, error
from beanpole.services.buckets import Buckets, Unsupported

log = logging.getLogger("beanpole.server.eb.s3")

# Query keys that are parameters of an operation, not a sub-resource naming another one.
_PARAMS = {
    "prefix",
    "delimiter",
    "marker",
    "max-keys",
    "encoding-type",
    "list-type",
    "continuation-token",
    "start-after",
    "fetch-owner",
    "x-id",
    "max-buckets",  # ListBuckets: every bucket fits on one page here
    "bucket-region",
    "partNumber",
    "versionId",
    "response-content-type",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-cache-control",
    "response-expires",
}


async def handle(
    request: Request, buckets: Buckets, content_sha256: str, request_id: str
) -> Response:
    """Answer one S3 request (already authenticated by the dispatcher)."""
    head = request.method == "HEAD"
    call = None
    try:
        bucket, key = _target(request)
        call = Call(request, buckets, bucket, key, request.query_params, content_sha256, request_id)
        response = await _route(call)(call)
    except Fault as fault:
        response = error(fault.status, fault.code, fault.message, request_id, {}, head)
    except BeanpoleError as exc:
        code, status = next(
            ((c, s) for cls, c, s in CODES if isinstance(exc, cls)), ("InternalError", 500)
        )
        response = error(status, code, exc.message, request_id, details(exc), head)
    except Exception:
        log.exception("S3 %s %s failed", request.method, request.url.path)
        response = error(
            500,
            "InternalError",
            "The bundle store failed unexpectedly; the server log has the details.",
            request_id,
            {},
            head,
        )
    response.headers["x-amz-request-id"] = request_id
    response.headers["x-amz-id-2"] = request_id
    if (call is None or not call.body_read) and _has_body(request):
        # Refused before its body was read: a client that sent "Expect: 100-continue" (boto3
        # does for bodies over 1 MB) then sends no body, and the server would read its next
        # request as this one's body. Closing the connection ends the exchange cleanly.
        response.headers["connection"] = "close"
    return response


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length", "0")
    return length != "0" or "transfer-encoding" in request.headers


def _target(request: Request) -> tuple[str, str]:
    """Bucket and key from the raw path, percent-decoded exactly once (a ``+`` stays a plus,
    ``%2F`` is a slash inside the key)."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        path = unquote_to_bytes(raw.split(b"?", 1)[0]).decode()
    except UnicodeDecodeError:
        raise Fault(400, "InvalidURI", "The path is not percent-encoded UTF-8.") from None
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _route(call: Call) -> Handler:
    method = call.request.method
    scope = "object" if call.key else "bucket" if call.bucket else "service"
    sub = next(
        (k for k in call.query if k not in _PARAMS and not k.lower().startswith("x-amz-")), ""
    )
    handler = _ROUTES.get((method, scope, sub))
    if handler is None:
        what = f"{method} {'/' if scope == 'service' else '/' + scope}{'?' + sub if sub else ''}"
        raise Unsupported(
            f"S3 call {what} is not implemented by Beanpole's bundle store, which serves the "
            "calls Terraform, boto3 and the eb CLI make for application bundles (docs/s3.md)."
        )
    return handler


_ROUTES: dict[tuple[str, str, str], Handler] = {
    ("GET", "service", ""): list_buckets,
    ("PUT", "bucket", ""): create_bucket,
    ("HEAD", "bucket", ""): head_bucket,
    ("DELETE", "bucket", ""): delete_bucket,
    ("GET", "bucket", ""): list_objects,
    ("GET", "bucket", "location"): location,
    ("GET", "bucket", "acl"): bucket_acl,
    ("GET", "bucket", "versioning"): fixed(lambda: el("VersioningConfiguration")),
    ("GET", "bucket", "accelerate"): fixed(lambda: el("AccelerateConfiguration")),
    ("GET", "bucket", "requestPayment"): fixed(
        lambda: el("RequestPaymentConfiguration", el("Payer", "BucketOwner"))
    ),
    ("GET", "bucket", "logging"): fixed(lambda: el("BucketLoggingStatus")),
    ("GET", "bucket", "policy"): absent("NoSuchBucketPolicy", "bucket policy"),
    ("GET", "bucket", "cors"): absent("NoSuchCORSConfiguration", "CORS configuration"),
    ("GET", "bucket", "website"): absent("NoSuchWebsiteConfiguration", "website configuration"),
    ("GET", "bucket", "lifecycle"): absent(
        "NoSuchLifecycleConfiguration", "lifecycle configuration"
    ),
    ("GET", "bucket", "replication"): absent(
        "ReplicationConfigurationNotFoundError", "replication configuration"
    ),
    ("GET", "bucket", "encryption"): absent(
        "ServerSideEncryptionConfigurationNotFoundError", "server-side encryption configuration"
    ),
    ("GET", "bucket", "object-lock"): absent(
        "ObjectLockConfigurationNotFoundError", "Object Lock configuration"
    ),
    **{
        ("DELETE", "bucket", sub): delete_absent
        for sub in ("policy", "cors", "website", "lifecycle", "replication", "encryption")
    },
    ("GET", "bucket", "tagging"): get_bucket_tags,
    ("PUT", "bucket", "tagging"): put_bucket_tags,
    ("DELETE", "bucket", "tagging"): delete_bucket_tags,
    ("POST", "bucket", "delete"): delete_objects,
    ("PUT", "object", ""): put_object,
    ("HEAD", "object", ""): head_object,
    ("GET", "object", ""): get_object,
    ("DELETE", "object", ""): delete_object,
    ("GET", "object", "tagging"): get_object_tags,
    ("PUT", "object", "tagging"): put_object_tags,
    ("DELETE", "object", "tagging"): delete_object_tags,
    ("POST", "object", "uploads"): create_upload,
    ("PUT", "object", "uploadId"): upload_part,
    ("POST", "object", "uploadId"): complete_upload,
    ("DELETE", "object", "uploadId"): abort_upload,
}
