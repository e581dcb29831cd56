"""The S3 face's bundle store on disk: an index of buckets and objects in SQLite
(:class:`ObjectIndex`) and the bodies as files (:class:`Bodies`).

Bodies are content-addressed: ``<bundles>/objects/<sha256>``, one file however many keys
refer to it, removed when the last key goes. Multipart parts wait under
``<bundles>/uploads/<upload id>/<part number>``. Every file is written to a temporary name in
its final folder and renamed into place, so a reader never sees half a body.

Placing a body and recording the key that refers to it happen in one store transaction
(the index calls the ``place`` callable the service hands it), and so do forgetting the last
key of a body and removing its file (``drop``): a put and a delete of the same contents
cannot interleave so that a recorded key is left without its file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from beanpole.adapters.store.db import Store

_DIGEST = re.compile(r"[0-9a-f]{64}")
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")
"""What an upload id looks like (the service mints them); anything else names no upload."""
_TEMP = ".incoming-"


@dataclass(frozen=True)
class BucketRecord:
    name: str
    created_at: float
    location: str = ""  # the LocationConstraint it was created with; "" is us-east-1
    tags: dict[str, str] | None = None  # None: no tag set was ever put


@dataclass(frozen=True)
class ObjectRecord:
    bucket: str
    key: str
    digest: str  # sha256 hex of the body: its file name
    size: int
    etag: str  # without quotes
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* (names lower-case)
    headers: dict[str, str] = field(default_factory=dict)  # cache-control, content-disposition…
    checksums: dict[str, str] = field(default_factory=dict)  # "crc32" -> base64, as sent
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True)
class UploadRecord:
    id: str
    bucket: str
    key: str
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True)
class PartRecord:
    number: int
    size: int
    md5: str  # hex: the part's ETag without quotes
    checksums: dict[str, str] = field(default_factory=dict)


DeleteBucketResult = Literal["deleted", "missing", "not_empty"]


class ObjectIndex:
    """Buckets, objects, multipart uploads and parts, in the server's store.

    Writes are one transaction each; a method that needs the bucket (or the upload) to
    exist checks it inside that transaction and answers False when it does not, so the
    service can tell "no such bucket" from success without a second, racy read.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # buckets ------------------------------------------------------------------------

    def create_bucket(self, name: str, location: str = "") -> bool:
        """Record a bucket; False if it already exists (it is left as it was)."""
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO s3_buckets (name, created_at, location) VALUES (?, ?, ?)",
                (name, time.time(), location),
            )
            return cur.rowcount > 0

    def bucket(self, name: str) -> BucketRecord | None:
        rows = self.store._query("SELECT * FROM s3_buckets WHERE name = ?", name)
        return _bucket(rows[0]) if rows else None

    def buckets(self) -> list[BucketRecord]:
        return [_bucket(r) for r in self.store._query("SELECT * FROM s3_buckets ORDER BY name")]

    def delete_bucket(self, name: str) -> tuple[DeleteBucketResult, list[str]]:
        """Delete an empty bucket, and the multipart uploads still open in it (S3 does too):
        the result, and the ids of those uploads, whose parts the caller removes."""
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM s3_buckets WHERE name = ?", (name,)).fetchone() is None:
                return "missing", []
            if db.execute("SELECT 1 FROM s3_objects WHERE bucket = ? LIMIT 1", (name,)).fetchone():
                return "not_empty", []
            uploads = [
                r[0] for r in db.execute("SELECT id FROM s3_uploads WHERE bucket = ?", (name,))
            ]
            db.execute("DELETE FROM s3_uploads WHERE bucket = ?", (name,))
            db.execute("DELETE FROM s3_buckets WHERE name = ?", (name,))
        return "deleted", uploads

    def set_bucket_tags(self, name: str, tags: dict[str, str] | None) -> bool:
        """Replace a bucket's tag set (None: remove it); False if there is no such bucket."""
        with self.store.transaction() as db:
            cur = db.execute(
                "UPDATE s3_buckets SET tags = ? WHERE name = ?",
                (None if tags is None else json.dumps(tags), name),
            )
            return cur.rowcount > 0

    # objects ------------------------------------------------------------------------

    def object(self, bucket: str, key: str) -> ObjectRecord | None:
        rows = self.store._query(
            "SELECT * FROM s3_objects WHERE bucket = ? AND key = ?", bucket, key
        )
        return _object(rows[0]) if rows else None

    def objects(self, bucket: str, prefix: str, after: str, limit: int) -> list[ObjectRecord]:
        """Up to ``limit`` objects whose keys start with ``prefix`` and sort after ``after``,
        in key order (UTF-8 bytes, as S3)."""
        rows = self.store._query(
            "SELECT * FROM s3_objects WHERE bucket = ? AND key > ? AND substr(key, 1, ?) = ?"
            " ORDER BY key LIMIT ?",
            bucket,
            after,
            len(prefix),
            prefix,
            limit,
        )
        return [_object(r) for r in rows]

    def put_object(
        self, obj: ObjectRecord, place: Callable[[], None], drop: Callable[[str], None]
    ) -> bool:
        """Record ``obj`` (replacing the key's previous object) once ``place`` has put its body
        in place; ``drop`` removes a body no key refers to any more. False, with nothing
        placed, if the bucket does not exist."""
        with self.store.transaction() as db:
            if not _has_bucket(db, obj.bucket):
                return False
            place()
            _replace_object(db, obj, drop)
        return True

    def delete_objects(self, bucket: str, keys: Sequence[str], drop: Callable[[str], None]) -> bool:
        """Delete keys (missing ones are no error); False if the bucket does not exist."""
        with self.store.transaction() as db:
            if not _has_bucket(db, bucket):
                return False
            for key in keys:
                row = db.execute(
                    "DELETE FROM s3_objects WHERE bucket = ? AND key = ? RETURNING digest",
                    (bucket, key),
                ).fetchone()
                if row is not None:
                    _drop_if_orphan(db, row[0], drop)
        return True

    def set_object_tags(self, bucket: str, key: str, tags: dict[str, str]) -> bool:
        """Replace an object's tags; False if there is no such object."""
        with self.store.transaction() as db:
            cur = db.execute(
                "UPDATE s3_objects SET tags = ? WHERE bucket = ? AND key = ?",
                (json.dumps(tags), bucket, key),
            )
            return cur.rowcount > 0

    # multipart uploads ----------------------------------------------------------------

    def create_upload(self, upload: UploadRecord) -> bool:
        """Record a new multipart upload; False if the bucket does not exist."""
        with self.store.transaction() as db:
            if not _has_bucket(db, upload.bucket):
                return False
            db.execute(
                "INSERT INTO s3_uploads (id, bucket, key, content_type, metadata, headers, tags,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.id,
                    upload.bucket,
                    upload.key,
                    upload.content_type,
                    json.dumps(upload.metadata),
                    json.dumps(upload.headers),
                    json.dumps(upload.tags),
                    upload.created_at,
                ),
            )
        return True

    def upload(self, upload_id: str) -> UploadRecord | None:
        rows = self.store._query("SELECT * FROM s3_uploads WHERE id = ?", upload_id)
        return _upload(rows[0]) if rows else None

    def parts(self, upload_id: str) -> list[PartRecord]:
        rows = self.store._query(
            "SELECT * FROM s3_parts WHERE upload_id = ? ORDER BY number", upload_id
        )
        return [_part(r) for r in rows]

    def put_part(self, upload_id: str, part: PartRecord, place: Callable[[], None]) -> bool:
        """Record a part (replacing one of the same number) once ``place`` has put its file in
        place; False, with nothing placed, if the upload is no longer open."""
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM s3_uploads WHERE id = ?", (upload_id,)).fetchone() is None:
                return False
            place()
            db.execute(
                "INSERT OR REPLACE INTO s3_parts (upload_id, number, size, md5, checksums,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    upload_id,
                    part.number,
                    part.size,
                    part.md5,
                    json.dumps(part.checksums),
                    time.time(),
                ),
            )
        return True

    def complete_upload(
        self,
        upload_id: str,
        obj: ObjectRecord,
        place: Callable[[], None],
        drop: Callable[[str], None],
    ) -> bool:
        """Record the object an upload assembled and close the upload; False, with nothing
        placed, if the upload is no longer open (completed or aborted meanwhile)."""
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM s3_uploads WHERE id = ?", (upload_id,)).fetchone() is None:
                return False
            place()
            _replace_object(db, obj, drop)
            db.execute("DELETE FROM s3_uploads WHERE id = ?", (upload_id,))
        return True

    def abort_upload(self, upload_id: str) -> bool:
        """Forget an upload and its parts; False if it was not open."""
        with self.store.transaction() as db:
            return db.execute("DELETE FROM s3_uploads WHERE id = ?", (upload_id,)).rowcount > 0

    def upload_ids(self) -> set[str]:
        return {r[0] for r in self.store._query("SELECT id FROM s3_uploads")}


class Bodies:
    """Object bodies and multipart parts as files under ``<home>/bundles``."""

    def __init__(self, folder: Path) -> None:
        self.objects = folder / "objects"
        self.uploads = folder / "uploads"

    def path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.objects / digest

    def part_path(self, upload_id: str, number: int) -> Path:
        return self._upload_dir(upload_id) / str(number)

    def new_object_file(self) -> tuple[BinaryIO, Path]:
        """A temporary file beside the bodies, to be placed with :meth:`place`."""
        return _temp_in(self.objects)

    def new_part_file(self, upload_id: str) -> tuple[BinaryIO, Path]:
        return _temp_in(self._upload_dir(upload_id))

    def place(self, temp: Path, digest: str) -> None:
        """Move a written body to its name (the same contents may already be there: the
        rename replaces them atomically, and a reader holding the old file keeps it)."""
        os.replace(temp, self.path(digest))

    def place_part(self, temp: Path, upload_id: str, number: int) -> None:
        os.replace(temp, self.part_path(upload_id, number))

    def drop(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def drop_upload(self, upload_id: str) -> None:
        shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)

    def sweep(self, open_uploads: set[str]) -> None:
        """Remove what a crash left: temporary files, and the parts of uploads no longer
        open. Call it at start, before serving."""
        for temp in self.objects.glob(f"{_TEMP}*"):
            temp.unlink(missing_ok=True)
        if not self.uploads.is_dir():
            return
        for folder in self.uploads.iterdir():
            if folder.name not in open_uploads:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                for temp in folder.glob(f"{_TEMP}*"):
                    temp.unlink(missing_ok=True)

    def _upload_dir(self, upload_id: str) -> Path:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.uploads / upload_id


def _temp_in(folder: Path) -> tuple[BinaryIO, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=_TEMP)
    return os.fdopen(fd, "wb"), Path(name)


def _has_bucket(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM s3_buckets WHERE name = ?", (name,)).fetchone() is not None


def _replace_object(db: sqlite3.Connection, obj: ObjectRecord, drop: Callable[[str], None]) -> None:
    old = db.execute(
        "SELECT digest FROM s3_objects WHERE bucket = ? AND key = ?", (obj.bucket, obj.key)
    ).fetchone()
    db.execute(
        "INSERT OR REPLACE INTO s3_objects (bucket, key, digest, size, etag, content_type,"
        " metadata, headers, checksums, tags, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            obj.bucket,
            obj.key,
            obj.digest,
            obj.size,
            obj.etag,
            obj.content_type,
            json.dumps(obj.metadata),
            json.dumps(obj.headers),
            json.dumps(obj.checksums),
            json.dumps(obj.tags),
            obj.created_at,
        ),
    )
    if old is not None and old[0] != obj.digest:
        _drop_if_orphan(db, old[0], drop)


def _drop_if_orphan(db: sqlite3.Connection, digest: str, drop: Callable[[str], None]) -> None:
    if (
        db.execute("SELECT 1 FROM s3_objects WHERE digest = ? LIMIT 1", (digest,)).fetchone()
        is None
    ):
        drop(digest)


def _bucket(r: sqlite3.Row) -> BucketRecord:
    return BucketRecord(
        r["name"],
        r["created_at"],
        r["location"],
        None if r["tags"] is None else json.loads(r["tags"]),
    )


def _object(r: sqlite3.Row) -> ObjectRecord:
    return ObjectRecord(
        bucket=r["bucket"],
        key=r["key"],
        digest=r["digest"],
        size=r["size"],
        etag=r["etag"],
        content_type=r["content_type"],
        metadata=json.loads(r["metadata"]),
        headers=json.loads(r["headers"]),
        checksums=json.loads(r["checksums"]),
        tags=json.loads(r["tags"]),
        created_at=r["created_at"],
    )


def _upload(r: sqlite3.Row) -> UploadRecord:
    return UploadRecord(
        id=r["id"],
        bucket=r["bucket"],
        key=r["key"],
        content_type=r["content_type"],
        metadata=json.loads(r["metadata"]),
        headers=json.loads(r["headers"]),
        tags=json.loads(r["tags"]),
        created_at=r["created_at"],
    )


def _part(r: sqlite3.Row) -> PartRecord:
    return PartRecord(r["number"], r["size"], r["md5"], json.loads(r["checksums"]))
