"""How a failure is named in S3's terms: the protocol's own faults, and the table that gives
each of Beanpole's errors its S3 code and status."""

from __future__ import annotations

from beanpole.core.errors import BeanpoleError, Conflict, InvalidInput, NotFound
from beanpole.services.buckets import (
    BadDigest,
    BucketNotEmpty,
    ContentSHA256Mismatch,
    EntityTooLarge,
    EntityTooSmall,
    InvalidArgument,
    InvalidBucketName,
    InvalidKey,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
    InvalidTag,
    NoSuchBucket,
    NoSuchKey,
    NoSuchTagSet,
    NoSuchUpload,
    Unsupported,
)

# (error class, S3 code, status), the first that matches wins: specific ones first.
CODES: tuple[tuple[type[BeanpoleError], str, int], ...] = (
    (NoSuchBucket, "NoSuchBucket", 404),
    (NoSuchKey, "NoSuchKey", 404),
    (NoSuchUpload, "NoSuchUpload", 404),
    (NoSuchTagSet, "NoSuchTagSet", 404),
    (BucketNotEmpty, "BucketNotEmpty", 409),
    (InvalidBucketName, "InvalidBucketName", 400),
    (InvalidKey, "KeyTooLongError", 400),
    (InvalidTag, "InvalidTag", 400),
    (InvalidRequest, "InvalidRequest", 400),
    (EntityTooLarge, "EntityTooLarge", 400),
    (EntityTooSmall, "EntityTooSmall", 400),
    (InvalidPart, "InvalidPart", 400),
    (InvalidPartOrder, "InvalidPartOrder", 400),
    (BadDigest, "BadDigest", 400),
    (ContentSHA256Mismatch, "XAmzContentSHA256Mismatch", 400),
    (Unsupported, "NotImplemented", 501),
    (InvalidArgument, "InvalidArgument", 400),
    (InvalidInput, "InvalidArgument", 400),
    (NotFound, "NoSuchKey", 404),
    (Conflict, "OperationAborted", 409),
)


class Fault(Exception):
    """An error of the protocol itself (a malformed body, a bad header), in S3's terms."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def details(exc: BeanpoleError) -> dict[str, str]:
    """The elements S3 adds to an error about a bucket, a key or an upload."""
    found = {}
    for attr, name in (("bucket", "BucketName"), ("key", "Key"), ("upload_id", "UploadId")):
        if isinstance(value := getattr(exc, attr, None), str):
            found[name] = value
    if isinstance(exc, ContentSHA256Mismatch):
        found["ClientComputedContentSHA256"] = exc.declared
        found["S3ComputedContentSHA256"] = exc.computed
    return found
