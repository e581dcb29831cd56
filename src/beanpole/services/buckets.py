"""Buckets and objects: the bundle store behind the S3 face (`server/eb/s3.py`).

Not a general object store: it keeps what Terraform, boto3 and the `eb` CLI upload as
application bundles (docs/s3.md), in the server's store and under ``BEANPOLE_HOME/bundles``.
A body streams into a temporary file off the event loop (one thread hop per megabyte), is
hashed on the way, checked against what the client declared (its ``x-amz-content-sha256``,
its ``x-amz-checksum-*``) and only then placed; a refused body leaves nothing behind.

Errors are typed (each names the offending bucket, key or upload and what to do), one class
per S3 error code the face answers; the classes also inherit the core's tree, so another
face (EB's CreateApplicationVersion reading a bundle) sees a plain ``NotFound``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import itertools
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from beanpole.adapters.store.objects import (
    UPLOAD_ID,
    Bodies,
    BucketRecord,
    ObjectIndex,
    ObjectRecord,
    PartRecord,
    UploadRecord,
)
from beanpole.core.errors import BeanpoleError, Conflict, InvalidInput, NotFound

MiB = 1 << 20
MAX_OBJECT_BYTES = 512 * MiB
"""The largest body kept (a source bundle's limit in EB; the eb CLI refuses more itself)."""
MIN_PART_BYTES = 5 * MiB  # every part but the last, as S3
MAX_PARTS = 10_000
WRITE_BATCH = MiB
"""Bytes gathered from the network before one write (and hash) in a worker thread."""
CHECKSUMS = ("crc32", "sha1", "sha256")
"""The ``x-amz-checksum-*`` algorithms verified; the face refuses the others (crc32c,
crc64nvme need libraries the server does not carry)."""
DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 records when none is sent
MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


# errors ---------------------------------------------------------------------------------


class NoSuchBucket(NotFound):
    def __init__(self, bucket: str) -> None:
        super().__init__(
            f"S3 bucket {bucket} does not exist. Create it first (aws s3 mb s3://{bucket})."
        )
        self.bucket = bucket


class NoSuchKey(NotFound):
    def __init__(self, bucket: str, key: str) -> None:
        super().__init__(
            f"S3 object s3://{bucket}/{key} does not exist. Upload it first "
            f"(aws s3 cp FILE s3://{bucket}/{key})."
        )
        self.bucket = bucket
        self.key = key


class NoSuchUpload(NotFound):
    def __init__(self, upload_id: str) -> None:
        super().__init__(
            f"Multipart upload {upload_id} is not open here: it was completed, aborted, or "
            "never started. Start the upload again."
        )
        self.upload_id = upload_id


class NoSuchTagSet(NotFound):
    def __init__(self, bucket: str) -> None:
        super().__init__(f"S3 bucket {bucket} has no tags. Put some with PutBucketTagging.")
        self.bucket = bucket


class BucketNotEmpty(Conflict):
    def __init__(self, bucket: str) -> None:
        super().__init__(
            f"S3 bucket {bucket} still holds objects. Delete them first "
            f"(aws s3 rm --recursive s3://{bucket})."
        )
        self.bucket = bucket


class InvalidBucketName(InvalidInput):
    def __init__(self, bucket: str) -> None:
        super().__init__(
            f"{bucket!r} is not a valid bucket name: use 3 to 63 lower-case letters, digits, "
            "dots and hyphens, starting and ending with a letter or digit, no '..', not an IP "
            "address."
        )
        self.bucket = bucket


class InvalidKey(InvalidInput):
    """An empty key, or one longer than S3's 1024 bytes (S3 answers KeyTooLongError)."""


class InvalidArgument(InvalidInput):
    """A parameter S3 would refuse (a part number out of range, a malformed tag header)."""


class InvalidTag(InvalidInput):
    pass


class InvalidRequest(InvalidInput):
    pass


class EntityTooLarge(InvalidInput):
    pass


class EntityTooSmall(InvalidInput):
    pass


class InvalidPart(InvalidInput):
    pass


class InvalidPartOrder(InvalidInput):
    pass


class BadDigest(InvalidInput):
    """A body whose ``x-amz-checksum-*`` does not match it: nothing was stored."""


class ContentSHA256Mismatch(InvalidInput):
    """The body is not the one the signature covered (``x-amz-content-sha256``)."""

    def __init__(self, declared: str, computed: str) -> None:
        super().__init__(
            "The body's sha256 does not match its x-amz-content-sha256 header: it was changed "
            "or cut short on the way. Nothing was stored; send it again."
        )
        self.declared = declared
        self.computed = computed


class Unsupported(BeanpoleError):
    """A request the bundle store does not implement (S3 answers ``NotImplemented``)."""


# records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One page of a bucket's keys: objects, and the common prefixes a delimiter rolled
    up, together at most ``max_keys``."""

    objects: list[ObjectRecord]
    prefixes: list[str]
    truncated: bool
    last: str  # the last key or common prefix on the page: where the next page starts


@dataclass(frozen=True)
class NewObject:
    """What describes an object besides its body."""

    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: dict[str, str] = field(default_factory=dict)  # x-amz-meta-*, names lower-case
    headers: dict[str, str] = field(default_factory=dict)  # cache-control, content-disposition…
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class _Hashes:
    size: int = 0
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)
    md5: hashlib._Hash = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    sha1: hashlib._Hash = field(default_factory=lambda: hashlib.sha1(usedforsecurity=False))
    crc32: int = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self.sha256.update(data)
        self.md5.update(data)
        self.sha1.update(data)
        self.crc32 = zlib.crc32(data, self.crc32)

    def checksum(self, algorithm: str) -> str:
        """The base64 value S3 sends in ``x-amz-checksum-<algorithm>``."""
        raw = {
            "crc32": lambda: self.crc32.to_bytes(4, "big"),
            "sha1": self.sha1.digest,
            "sha256": self.sha256.digest,
            "md5": self.md5.digest,  # Content-MD5: checked, not kept (the ETag is the md5)
        }[algorithm]()
        return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class _Received:
    path: Path
    hashes: _Hashes


# the service ----------------------------------------------------------------------------


class Buckets:
    """The use cases of the S3 face. ``root`` is BEANPOLE_HOME: bodies live under
    ``root/bundles/objects``, multipart parts under ``root/bundles/uploads``."""

    def __init__(
        self, index: ObjectIndex, root: Path, *, max_object_bytes: int = MAX_OBJECT_BYTES
    ) -> None:
        self.index = index
        self.bodies = Bodies(root / "bundles")
        self.max_object_bytes = max_object_bytes

    def sweep(self) -> None:
        """Remove what a crash left behind (temporary files, parts of closed uploads).
        Call once at start, before serving."""
        self.bodies.sweep(self.index.upload_ids())

    # buckets ------------------------------------------------------------------------------

    async def create_bucket(self, name: str, location: str = "") -> bool:
        """Create a bucket; creating one that exists succeeds and changes nothing (as in
        us-east-1). True if it was created."""
        check_bucket_name(name)
        return await asyncio.to_thread(self.index.create_bucket, name, location)

    async def ensure_bucket(self, name: str) -> None:
        """Make sure a bucket exists (EB's CreateStorageLocation)."""
        await self.create_bucket(name)

    async def head_bucket(self, name: str) -> BucketRecord:
        found = await asyncio.to_thread(self.index.bucket, name)
        if found is None:
            raise NoSuchBucket(name)
        return found

    async def list_buckets(self) -> list[BucketRecord]:
        return await asyncio.to_thread(self.index.buckets)

    async def delete_bucket(self, name: str) -> None:
        result, uploads = await asyncio.to_thread(self.index.delete_bucket, name)
        if result == "missing":
            raise NoSuchBucket(name)
        if result == "not_empty":
            raise BucketNotEmpty(name)
        for upload_id in uploads:
            await asyncio.to_thread(self.bodies.drop_upload, upload_id)

    async def bucket_tags(self, name: str) -> dict[str, str]:
        tags = (await self.head_bucket(name)).tags
        if tags is None:
            raise NoSuchTagSet(name)
        return tags

    async def set_bucket_tags(self, name: str, tags: dict[str, str] | None) -> None:
        """Replace a bucket's tags; None removes the tag set."""
        if tags is not None:
            check_tags(tags, MAX_BUCKET_TAGS)
        if not await asyncio.to_thread(self.index.set_bucket_tags, name, tags):
            raise NoSuchBucket(name)

    # objects ------------------------------------------------------------------------------

    async def put_object(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        declared_sha256: str | None = None,
        *,
        new: NewObject | None = None,
        checksums: Mapping[str, str] | None = None,
    ) -> ObjectRecord:
        """Store a body under ``bucket``/``key``, replacing what was there.

        ``declared_sha256``: the hex sha256 the request's signature covered, or None when
        the payload was unsigned. ``checksums``: ``x-amz-checksum-*`` values by algorithm
        (and ``md5``, a Content-MD5, checked but not kept),
        read once the body is consumed (an aws-chunked trailer fills them last).
        """
        new = new or NewObject()
        check_key(key)
        check_tags(new.tags, MAX_OBJECT_TAGS)
        await self.head_bucket(bucket)  # refuse before reading a body nobody can keep
        got = await self._receive(chunks, self.bodies.new_object_file)
        try:
            _verify(got.hashes, declared_sha256, checksums or {})
            obj = _record(bucket, key, got.hashes, new, _kept(checksums))
            placed = await asyncio.to_thread(
                self.index.put_object,
                obj,
                lambda: self.bodies.place(got.path, obj.digest),
                self.bodies.drop,
            )
        finally:
            await asyncio.to_thread(got.path.unlink, missing_ok=True)  # gone once placed
        if not placed:
            raise NoSuchBucket(bucket)
        return obj

    async def copy_object(
        self, source_bucket: str, source_key: str, bucket: str, key: str, new: NewObject
    ) -> ObjectRecord:
        """Another key for a stored body, described by ``new`` (no bytes move: bodies are
        shared by digest)."""
        check_key(key)
        check_tags(new.tags, MAX_OBJECT_TAGS)
        source = await self.head_object(source_bucket, source_key)
        obj = replace(
            source,
            bucket=bucket,
            key=key,
            created_at=time.time(),
            content_type=new.content_type,
            metadata=new.metadata,
            headers=new.headers,
            tags=new.tags,
        )

        def still_there() -> None:  # inside the index's transaction: no drop can interleave
            if not self.bodies.path(obj.digest).is_file():
                raise NoSuchKey(source_bucket, source_key)

        if not await asyncio.to_thread(self.index.put_object, obj, still_there, self.bodies.drop):
            raise NoSuchBucket(bucket)
        return obj

    async def head_object(self, bucket: str, key: str) -> ObjectRecord:
        found = await asyncio.to_thread(self.index.object, bucket, key)
        if found is None:
            if await asyncio.to_thread(self.index.bucket, bucket) is None:
                raise NoSuchBucket(bucket)
            raise NoSuchKey(bucket, key)
        return found

    async def get_object(self, bucket: str, key: str) -> tuple[ObjectRecord, Path]:
        """An object and the file holding its body."""
        obj = await self.head_object(bucket, key)
        return obj, self.bodies.path(obj.digest)

    async def object_path(self, bucket: str, key: str) -> Path:
        """The file holding an object's body, for reading (``NotFound`` if there is none)."""
        return (await self.get_object(bucket, key))[1]

    async def delete_object(self, bucket: str, key: str) -> None:
        """Delete a key; a missing key is no error (as S3)."""
        await self.delete_objects(bucket, [key])

    async def delete_objects(self, bucket: str, keys: Sequence[str]) -> None:
        if not await asyncio.to_thread(self.index.delete_objects, bucket, keys, self.bodies.drop):
            raise NoSuchBucket(bucket)

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 1000,
    ) -> Listing:
        """Keys under ``prefix`` sorting after ``after`` (a key or a common prefix a
        previous page ended with), keys sharing a part up to ``delimiter`` rolled up."""
        await self.head_bucket(bucket)
        return await asyncio.to_thread(self._list, bucket, prefix, delimiter, after, max_keys)

    def _list(self, bucket: str, prefix: str, delimiter: str, after: str, max_keys: int) -> Listing:
        objects: list[ObjectRecord] = []
        prefixes: list[str] = []
        rolled = _rolled_up(after, prefix, delimiter)  # a page that ended on a prefix
        cursor, last = after, after
        batch = min(max_keys, 1000) + 1
        while True:
            rows = self.index.objects(bucket, prefix, cursor, batch)
            for obj in rows:
                cursor = obj.key
                common = _rolled_up(obj.key, prefix, delimiter, whole_key=True)
                if common is not None and common == rolled:
                    continue
                if len(objects) + len(prefixes) == max_keys:
                    return Listing(objects, prefixes, truncated=True, last=last)
                if common is None:
                    objects.append(obj)
                    last = obj.key
                else:
                    prefixes.append(common)
                    rolled = last = common
            if len(rows) < batch:
                return Listing(objects, prefixes, truncated=False, last=last)

    # tagging ------------------------------------------------------------------------------

    async def object_tags(self, bucket: str, key: str) -> dict[str, str]:
        return (await self.head_object(bucket, key)).tags

    async def set_object_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        check_tags(tags, MAX_OBJECT_TAGS)
        if not await asyncio.to_thread(self.index.set_object_tags, bucket, key, tags):
            await self.head_object(bucket, key)  # NoSuchBucket or NoSuchKey
            raise NoSuchKey(bucket, key)

    # multipart uploads ----------------------------------------------------------------------

    async def create_upload(self, bucket: str, key: str, new: NewObject | None = None) -> str:
        """Open a multipart upload; its id."""
        new = new or NewObject()
        check_key(key)
        check_tags(new.tags, MAX_OBJECT_TAGS)
        upload = UploadRecord(
            id=secrets.token_urlsafe(32),
            bucket=bucket,
            key=key,
            content_type=new.content_type,
            metadata=new.metadata,
            headers=new.headers,
            tags=new.tags,
            created_at=time.time(),
        )
        if not await asyncio.to_thread(self.index.create_upload, upload):
            raise NoSuchBucket(bucket)
        return upload.id

    async def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        chunks: AsyncIterator[bytes],
        declared_sha256: str | None = None,
        *,
        checksums: Mapping[str, str] | None = None,
    ) -> PartRecord:
        """Store part ``number`` (1 to 10000) of an open upload, replacing an earlier one."""
        if not 1 <= number <= MAX_PARTS:
            raise InvalidArgument(
                f"Part number must be an integer between 1 and {MAX_PARTS}, not {number}."
            )
        await self._open_upload(bucket, key, upload_id)
        got = await self._receive(chunks, lambda: self.bodies.new_part_file(upload_id))
        try:
            _verify(got.hashes, declared_sha256, checksums or {})
            part = PartRecord(number, got.hashes.size, got.hashes.md5.hexdigest(), _kept(checksums))
            placed = await asyncio.to_thread(
                self.index.put_part,
                upload_id,
                part,
                lambda: self.bodies.place_part(got.path, upload_id, number),
            )
        finally:
            await asyncio.to_thread(got.path.unlink, missing_ok=True)
        if not placed:
            raise NoSuchUpload(upload_id)
        return part

    async def complete_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> ObjectRecord:
        """Join the listed parts (number, ETag), in order, into the object; its ETag is the
        md5 of the parts' md5 digests, then ``-<count>``, as S3's."""
        upload = await self._open_upload(bucket, key, upload_id)
        stored = {p.number: p for p in await asyncio.to_thread(self.index.parts, upload_id)}
        chosen = _chosen_parts(parts, stored, upload_id)
        total = sum(p.size for p in chosen)
        if total > self.max_object_bytes:
            raise EntityTooLarge(_too_large(self.max_object_bytes))
        hashes, path = await asyncio.to_thread(self._assemble, upload_id, chosen)
        try:
            joined = hashlib.md5(
                b"".join(bytes.fromhex(p.md5) for p in chosen), usedforsecurity=False
            )
            obj = ObjectRecord(
                bucket=bucket,
                key=key,
                digest=hashes.sha256.hexdigest(),
                size=hashes.size,
                etag=f"{joined.hexdigest()}-{len(chosen)}",
                content_type=upload.content_type,
                metadata=upload.metadata,
                headers=upload.headers,
                tags=upload.tags,
                created_at=time.time(),
            )
            placed = await asyncio.to_thread(
                self.index.complete_upload,
                upload_id,
                obj,
                lambda: self.bodies.place(path, obj.digest),
                self.bodies.drop,
            )
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        if not placed:
            raise NoSuchUpload(upload_id)
        await asyncio.to_thread(self.bodies.drop_upload, upload_id)
        return obj

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        await self._open_upload(bucket, key, upload_id)
        if not await asyncio.to_thread(self.index.abort_upload, upload_id):
            raise NoSuchUpload(upload_id)
        await asyncio.to_thread(self.bodies.drop_upload, upload_id)

    async def _open_upload(self, bucket: str, key: str, upload_id: str) -> UploadRecord:
        upload = None
        if UPLOAD_ID.fullmatch(upload_id):
            upload = await asyncio.to_thread(self.index.upload, upload_id)
        if upload is None or upload.bucket != bucket or upload.key != key:
            raise NoSuchUpload(upload_id)
        return upload

    def _assemble(self, upload_id: str, parts: Sequence[PartRecord]) -> tuple[_Hashes, Path]:
        """The parts joined into a temporary file beside the bodies (a worker thread)."""
        out, path = self.bodies.new_object_file()
        hashes = _Hashes()
        try:
            with out:
                for part in parts:
                    with self.bodies.part_path(upload_id, part.number).open("rb") as f:
                        while data := f.read(WRITE_BATCH):
                            out.write(data)
                            hashes.update(data)
        except FileNotFoundError as exc:
            path.unlink(missing_ok=True)
            raise NoSuchUpload(upload_id) from exc  # aborted while we read
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return hashes, path

    # bodies -------------------------------------------------------------------------------

    async def _receive(
        self, chunks: AsyncIterator[bytes], new_file: Callable[[], tuple[BinaryIO, Path]]
    ) -> _Received:
        """The body in a temporary file, hashed on the way, refused as soon as it passes the
        size limit."""
        out, path = await asyncio.to_thread(new_file)
        hashes = _Hashes()
        try:
            batch = bytearray()
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_object_bytes:
                    raise EntityTooLarge(_too_large(self.max_object_bytes))
                batch += chunk
                if len(batch) >= WRITE_BATCH:
                    await asyncio.to_thread(_write, out, hashes, bytes(batch))
                    batch.clear()
            await asyncio.to_thread(_write, out, hashes, bytes(batch))
            await asyncio.to_thread(out.close)
        except BaseException:
            await asyncio.to_thread(_discard, out, path)
            raise
        return _Received(path, hashes)


# checks ---------------------------------------------------------------------------------


def check_bucket_name(name: str) -> None:
    if not _BUCKET_NAME.fullmatch(name) or ".." in name or _is_ip(name):
        raise InvalidBucketName(name)


def check_key(key: str) -> None:
    if not key or len(key.encode()) > 1024:
        raise InvalidKey(
            f"Object keys must be 1 to 1024 bytes of UTF-8; {key[:64]!r}… is "
            f"{len(key.encode())} bytes."
        )


def check_tags(tags: Mapping[str, str], most: int) -> None:
    if len(tags) > most:
        raise InvalidTag(f"At most {most} tags are allowed here; {len(tags)} were sent.")
    for name, value in tags.items():
        if not 1 <= len(name) <= 128 or len(value) > 256:
            raise InvalidTag(
                f"Tag {name[:128]!r}: keys are 1 to 128 characters, values at most 256."
            )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def _too_large(limit: int) -> str:
    return (
        f"The body is larger than {limit // MiB} MiB, the most this bundle store keeps. "
        "Leave build outputs and dependencies out of the bundle (.ebignore)."
    )


def _rolled_up(key: str, prefix: str, delimiter: str, *, whole_key: bool = False) -> str | None:
    """The common prefix ``key`` rolls up to under ``delimiter``, or None. A cursor (not a
    whole key) names a common prefix only if it is one: it ends at its first delimiter."""
    if not delimiter or not key.startswith(prefix):
        return None
    rest = key[len(prefix) :]
    at = rest.find(delimiter)
    if at < 0:
        return None
    common = prefix + rest[: at + len(delimiter)]
    return common if whole_key or common == key else None


def _chosen_parts(
    listed: Sequence[tuple[int, str]], stored: Mapping[int, PartRecord], upload_id: str
) -> list[PartRecord]:
    if not listed:
        raise InvalidRequest("CompleteMultipartUpload must list at least one part.")
    numbers = [n for n, _ in listed]
    if any(b <= a for a, b in itertools.pairwise(numbers)):
        raise InvalidPartOrder(
            "The parts must be listed in ascending order of part number, each once."
        )
    chosen = []
    for number, etag in listed:
        part = stored.get(number)
        if part is None or etag.strip().strip('"').lower() != part.md5:
            raise InvalidPart(
                f"Part {number} of upload {upload_id} was not uploaded, or its ETag is not "
                f"{etag}. Upload it again, or list the ETag UploadPart returned."
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_BYTES:
            raise EntityTooSmall(
                f"Part {part.number} is {part.size} bytes; every part but the last must be at "
                f"least {MIN_PART_BYTES // MiB} MiB."
            )
    return chosen


def _verify(hashes: _Hashes, declared_sha256: str | None, checksums: Mapping[str, str]) -> None:
    if declared_sha256 is not None:
        computed = hashes.sha256.hexdigest()
        if declared_sha256.lower() != computed:
            raise ContentSHA256Mismatch(declared_sha256, computed)
    for algorithm, value in checksums.items():
        if algorithm not in (*CHECKSUMS, "md5"):
            raise Unsupported(
                f"Checksum algorithm {algorithm.upper()} is not supported by this bundle "
                "store; send CRC32, SHA1 or SHA256 (boto3's default is CRC32)."
            )
        if hashes.checksum(algorithm) != value.strip():
            raise BadDigest(
                f"The body's {algorithm.upper()} is {hashes.checksum(algorithm)}, not the "
                f"{value} the request declared: it was changed on the way. Nothing was stored; "
                "send it again."
            )


def _kept(checksums: Mapping[str, str] | None) -> dict[str, str]:
    """The checksums stored with a body and sent back with it."""
    return {k: v for k, v in (checksums or {}).items() if k != "md5"}


def _record(
    bucket: str, key: str, hashes: _Hashes, new: NewObject, checksums: dict[str, str]
) -> ObjectRecord:
    return ObjectRecord(
        bucket=bucket,
        key=key,
        digest=hashes.sha256.hexdigest(),
        size=hashes.size,
        etag=hashes.md5.hexdigest(),
        content_type=new.content_type,
        metadata=new.metadata,
        headers=new.headers,
        checksums=checksums,
        tags=new.tags,
        created_at=time.time(),
    )


def _write(out: BinaryIO, hashes: _Hashes, data: bytes) -> None:
    out.write(data)
    hashes.update(data)


def _discard(out: BinaryIO, path: Path) -> None:
    out.close()
    path.unlink(missing_ok=True)
