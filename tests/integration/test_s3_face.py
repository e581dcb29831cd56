"""The S3 face of the bundle store (issue 10, part 4), driven by boto3 over real HTTP.

A real uvicorn server on a port the kernel picked serves the face over a real SQLite store;
the clients are the ones users run (boto3 and its transfer manager, which the eb CLI uses),
and httpx where a test needs a request no SDK would send (a lying x-amz-content-sha256, an
aws-chunked body). No signature is checked here: the dispatcher (`server/eb/app.py`) does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import httpx
import pytest
import uvicorn
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from beanpole.adapters.store.db import Store
from beanpole.adapters.store.objects import ObjectIndex
from beanpole.core.errors import NotFound
from beanpole.server.eb.s3 import AwsChunked, handle
from beanpole.services.buckets import Buckets

MiB = 1024 * 1024


@dataclass
class Served:
    url: str
    buckets: Buckets
    home: Path

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=botocore.config.Config(
                s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}
            ),
        )

    def bodies(self) -> list[str]:
        """Every file under bundles/objects (stored bodies and any temporary file)."""
        folder = self.home / "bundles" / "objects"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    def parts(self) -> list[Path]:
        folder = self.home / "bundles" / "uploads"
        return list(folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start S3 faces (a Buckets over a Store in their own home); all stopped at the end."""
    started: list[tuple[uvicorn.Server, threading.Thread, socket.socket, Store]] = []

    def start(**options: Any) -> Served:
        home = tmp_path / f"home{len(started)}"
        home.mkdir()
        store = Store(home / "state.db")
        buckets = Buckets(ObjectIndex(store), home, **options)

        async def endpoint(request: Request) -> Response:
            sha = request.headers.get("x-amz-content-sha256", "")
            return await handle(request, buckets, sha, uuid.uuid4().hex.upper())

        app = Starlette(
            routes=[
                Route("/{path:path}", endpoint, methods=["GET", "HEAD", "PUT", "POST", "DELETE"])
            ]
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # clients may connect before uvicorn accepts: no wait for start-up
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        started.append((server, thread, sock, store))
        return Served(f"http://127.0.0.1:{sock.getsockname()[1]}", buckets, home)

    yield start
    for server, thread, sock, store in started:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive()
        sock.close()
        store.close()


@pytest.fixture
def s3(serve: Callable[..., Served]) -> Served:
    return serve()


def code_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# buckets ------------------------------------------------------------------------------------


def test_bucket_lifecycle_as_terraform_and_boto3_drive_it(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    c.create_bucket(Bucket="bundles")  # us-east-1: re-creating your own bucket succeeds
    head = c.head_bucket(Bucket="bundles")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == ["bundles"]
    assert c.get_bucket_location(Bucket="bundles").get("LocationConstraint") is None

    c.create_bucket(
        Bucket="eu.bundles", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    assert c.get_bucket_location(Bucket="eu.bundles")["LocationConstraint"] == "eu-west-1"
    assert c.head_bucket(Bucket="eu.bundles")["BucketRegion"] == "eu-west-1"

    for name in ("ab", "Upper-case", "a..b", "192.168.0.1", "-dash", "x" * 64):
        with pytest.raises(ClientError) as raised:
            c.create_bucket(Bucket=name)
        assert code_of(raised) == ("InvalidBucketName", 400), name

    assert c.delete_bucket(Bucket="bundles")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as raised:
        c.head_bucket(Bucket="bundles")
    assert code_of(raised) == ("404", 404)
    with pytest.raises(ClientError) as raised:
        c.delete_bucket(Bucket="bundles")
    assert code_of(raised) == ("NoSuchBucket", 404)
    assert raised.value.response["Error"]["BucketName"] == "bundles"


def test_delete_bucket_that_holds_objects_is_refused(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="full")
    c.put_object(Bucket="full", Key="app/v1.zip", Body=b"zip")
    with pytest.raises(ClientError) as raised:
        c.delete_bucket(Bucket="full")
    assert code_of(raised) == ("BucketNotEmpty", 409)
    assert c.get_object(Bucket="full", Key="app/v1.zip")["Body"].read() == b"zip"


# What aws_s3_bucket reads on every refresh (docs/s3.md): each with S3's own answer.
TERRAFORM_READS: list[tuple[str, str | None, int]] = [
    ("get_bucket_policy", "NoSuchBucketPolicy", 404),
    ("get_bucket_acl", None, 200),
    ("get_bucket_cors", "NoSuchCORSConfiguration", 404),
    ("get_bucket_website", "NoSuchWebsiteConfiguration", 404),
    ("get_bucket_versioning", None, 200),
    ("get_bucket_accelerate_configuration", None, 200),
    ("get_bucket_request_payment", None, 200),
    ("get_bucket_logging", None, 200),
    ("get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration", 404),
    ("get_bucket_replication", "ReplicationConfigurationNotFoundError", 404),
    ("get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError", 404),
    ("get_object_lock_configuration", "ObjectLockConfigurationNotFoundError", 404),
    ("get_bucket_tagging", "NoSuchTagSet", 404),
    ("get_bucket_ownership_controls", "NotImplemented", 501),
]


@pytest.mark.parametrize(("call", "code", "status"), TERRAFORM_READS)
def test_terraform_bucket_reads_get_s3s_answers(
    s3: Served, call: str, code: str | None, status: int
) -> None:
    c = s3.client()
    c.create_bucket(Bucket="tf-bucket")
    if code is None:
        answer = getattr(c, call)(Bucket="tf-bucket")
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == status
    else:
        with pytest.raises(ClientError) as raised:
            getattr(c, call)(Bucket="tf-bucket")
        assert code_of(raised) == (code, status)
        assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    with pytest.raises(ClientError) as raised:  # and a missing bucket is said so first
        getattr(c, call)(Bucket="no-such-bucket")
    assert code_of(raised) == (("NotImplemented", 501) if status == 501 else ("NoSuchBucket", 404))


def test_bucket_read_answers_carry_what_terraform_reads(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="tf-bucket")
    acl = c.get_bucket_acl(Bucket="tf-bucket")
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"]
    assert "Status" not in c.get_bucket_versioning(Bucket="tf-bucket")
    assert c.get_bucket_request_payment(Bucket="tf-bucket")["Payer"] == "BucketOwner"
    assert "LoggingEnabled" not in c.get_bucket_logging(Bucket="tf-bucket")


def test_bucket_tags_are_kept_until_deleted(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="tagged")
    tags = [{"Key": "team", "Value": "web"}, {"Key": "cost centre", "Value": "4+2"}]
    c.put_bucket_tagging(Bucket="tagged", Tagging={"TagSet": tags})
    assert c.get_bucket_tagging(Bucket="tagged")["TagSet"] == tags
    c.delete_bucket_tagging(Bucket="tagged")
    with pytest.raises(ClientError) as raised:
        c.get_bucket_tagging(Bucket="tagged")
    assert code_of(raised) == ("NoSuchTagSet", 404)


# objects ------------------------------------------------------------------------------------

AWKWARD_KEY = "app dir/ünï cødé+plus%41 ~(1).zip"


def test_object_roundtrip_with_spaces_unicode_and_plus_in_its_key(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    body = os.urandom(100_000)
    put = c.put_object(
        Bucket="bundles",
        Key=AWKWARD_KEY,
        Body=body,
        ContentType="application/zip",
        Metadata={"label": "v1"},
        CacheControl="no-cache",
        Tagging="env=prod&owner=web%20team",
    )
    assert put["ETag"] == f'"{md5(body)}"'

    head = c.head_object(Bucket="bundles", Key=AWKWARD_KEY)
    assert head["ETag"] == f'"{md5(body)}"'  # what aws_s3_object compares with filemd5()
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "application/zip"
    assert head["Metadata"] == {"label": "v1"}
    assert head["CacheControl"] == "no-cache"
    assert head["LastModified"].year >= 2024
    assert head["ResponseMetadata"]["HTTPHeaders"]["last-modified"].endswith(" GMT")

    got = c.get_object(Bucket="bundles", Key=AWKWARD_KEY)
    assert got["Body"].read() == body
    assert c.get_object_tagging(Bucket="bundles", Key=AWKWARD_KEY)["TagSet"] == [
        {"Key": "env", "Value": "prod"},
        {"Key": "owner", "Value": "web team"},
    ]
    part = c.get_object(Bucket="bundles", Key=AWKWARD_KEY, Range="bytes=10-19")
    assert part["Body"].read() == body[10:20]
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206

    # the stored key is exactly the one sent: the near misses do not exist
    for other in ("app dir/ünï cødé plus%41 ~(1).zip", "app dir/ünï cødé+plusA ~(1).zip"):
        with pytest.raises(ClientError) as raised:
            c.head_object(Bucket="bundles", Key=other)
        assert code_of(raised) == ("404", 404)

    assert (
        c.delete_object(Bucket="bundles", Key=AWKWARD_KEY)["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    with pytest.raises(ClientError) as raised:
        c.head_object(Bucket="bundles", Key=AWKWARD_KEY)
    assert code_of(raised) == ("404", 404)
    with pytest.raises(ClientError) as raised:
        c.get_object(Bucket="bundles", Key=AWKWARD_KEY)
    assert code_of(raised) == ("NoSuchKey", 404)
    c.delete_object(Bucket="bundles", Key=AWKWARD_KEY)  # deleting a missing key: still 204
    assert s3.bodies() == []


def test_a_body_shared_by_two_keys_is_stored_once_and_removed_with_the_last(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    body = b"the same zip"
    c.put_object(Bucket="bundles", Key="a.zip", Body=body)
    c.copy_object(Bucket="bundles", Key="b.zip", CopySource={"Bucket": "bundles", "Key": "a.zip"})
    c.put_object(Bucket="bundles", Key="c.zip", Body=body)
    assert s3.bodies() == [hashlib.sha256(body).hexdigest()]
    c.delete_object(Bucket="bundles", Key="a.zip")
    c.put_object(Bucket="bundles", Key="b.zip", Body=b"other contents")
    assert c.get_object(Bucket="bundles", Key="c.zip")["Body"].read() == body
    c.delete_objects(Bucket="bundles", Delete={"Objects": [{"Key": "c.zip"}, {"Key": "b.zip"}]})
    assert s3.bodies() == []


def test_crc32_checksum_is_verified_stored_and_echoed(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    body = b"checked bundle"
    expected = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    put = c.put_object(Bucket="bundles", Key="v.zip", Body=body, ChecksumAlgorithm="CRC32")
    assert put["ChecksumCRC32"] == expected
    got = c.get_object(Bucket="bundles", Key="v.zip", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == expected
    assert got["Body"].read() == body

    lying = base64.b64encode(zlib.crc32(b"something else").to_bytes(4, "big")).decode()
    answer = httpx.put(
        f"{s3.url}/bundles/w.zip",
        content=body,
        headers={"x-amz-checksum-crc32": lying, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    assert answer.status_code == 400
    assert "<Code>BadDigest</Code>" in answer.text
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(ClientError) as raised:
        c.put_object(Bucket="bundles", Key="w.zip", Body=body, ContentMD5=wrong_md5)
    assert code_of(raised) == ("BadDigest", 400)
    assert httpx.head(f"{s3.url}/bundles/w.zip").status_code == 404


def test_a_body_that_does_not_match_its_signed_sha256_is_refused_and_not_stored(
    s3: Served,
) -> None:
    s3.client().create_bucket(Bucket="bundles")
    answer = httpx.put(
        f"{s3.url}/bundles/app/v1.zip",
        content=b"the body that arrived",
        headers={"x-amz-content-sha256": hashlib.sha256(b"the body that was signed").hexdigest()},
    )
    assert answer.status_code == 400
    assert "<Code>XAmzContentSHA256Mismatch</Code>" in answer.text
    assert answer.headers["x-amz-request-id"]
    assert httpx.head(f"{s3.url}/bundles/app/v1.zip").status_code == 404
    assert s3.bodies() == []  # no body, no temporary file


def aws_chunked(body: bytes, *, signed: bool, trailer: str = "") -> bytes:
    """A body framed as the SDKs frame it over TLS (chunks of 64 KiB)."""
    out = b""
    for at in range(0, len(body), 65536):
        chunk = body[at : at + 65536]
        extension = ";chunk-signature=" + "0" * 64 if signed else ""
        out += f"{len(chunk):x}{extension}\r\n".encode() + chunk + b"\r\n"
    out += ("0;chunk-signature=" + "0" * 64 if signed else "0").encode() + b"\r\n"
    return out + trailer.encode() + b"\r\n"


@pytest.mark.parametrize("signed", [True, False])
def test_aws_chunked_bodies_are_decoded_and_their_trailer_checksum_verified(
    s3: Served, signed: bool
) -> None:
    s3.client().create_bucket(Bucket="bundles")
    body = os.urandom(200_000)
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" if signed else "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    trailer = "" if signed else f"x-amz-checksum-crc32:{crc}\r\n"
    headers = {
        "x-amz-content-sha256": mode,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(body)),
        **({} if signed else {"x-amz-trailer": "x-amz-checksum-crc32"}),
    }
    framed = aws_chunked(body, signed=signed, trailer=trailer)
    answer = httpx.put(f"{s3.url}/bundles/chunked.zip", content=framed, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["etag"] == f'"{md5(body)}"'
    got = s3.client().get_object(Bucket="bundles", Key="chunked.zip")
    assert got["Body"].read() == body
    assert "ContentEncoding" not in got  # aws-chunked is framing, not the object's encoding

    if not signed:
        wrong = aws_chunked(body, signed=False, trailer="x-amz-checksum-crc32:AAAAAA==\r\n")
        answer = httpx.put(f"{s3.url}/bundles/bad.zip", content=wrong, headers=headers)
        assert (answer.status_code, "<Code>BadDigest</Code>" in answer.text) == (400, True)
    cut = framed[: len(framed) // 2]
    answer = httpx.put(f"{s3.url}/bundles/cut.zip", content=cut, headers=headers)
    assert answer.status_code == 400
    assert len(s3.bodies()) == 1  # only the good body


def test_aws_chunked_framing_decodes_the_same_wherever_the_network_splits_it() -> None:
    body = os.urandom(150_000)
    framed = aws_chunked(body, signed=False, trailer="x-amz-checksum-sha1:abc=\r\n")
    for size in (1, 7, 4096, len(framed)):
        decoder = AwsChunked()
        out = b"".join(decoder.feed(framed[i : i + size]) for i in range(0, len(framed), size))
        decoder.finish()
        assert out == body
        assert decoder.trailers == {"x-amz-checksum-sha1": "abc="}


def test_object_tagging_is_read_set_and_cleared(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    c.put_object(Bucket="bundles", Key="v.zip", Body=b"x")
    assert c.get_object_tagging(Bucket="bundles", Key="v.zip")["TagSet"] == []
    c.put_object_tagging(
        Bucket="bundles", Key="v.zip", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
    )
    assert c.get_object_tagging(Bucket="bundles", Key="v.zip")["TagSet"] == [
        {"Key": "k", "Value": "v"}
    ]
    c.delete_object_tagging(Bucket="bundles", Key="v.zip")
    assert c.get_object_tagging(Bucket="bundles", Key="v.zip")["TagSet"] == []
    with pytest.raises(ClientError) as raised:
        c.get_object_tagging(Bucket="bundles", Key="missing.zip")
    assert code_of(raised) == ("NoSuchKey", 404)


# listing ------------------------------------------------------------------------------------

KEYS = ["app/label.zip", "app/label.zip.old", "app/other.zip", "app/sub dir/x+y.zip", "z.zip"]


def test_list_objects_v1_as_the_eb_cli_calls_it(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    for key in KEYS:
        c.put_object(Bucket="bundles", Key=key, Body=key.encode())

    found = c.list_objects(Bucket="bundles", Prefix="app/label.zip", EncodingType="url")
    assert [o["Key"] for o in found["Contents"]] == ["app/label.zip", "app/label.zip.old"]
    assert found["Contents"][0]["ETag"] == f'"{md5(b"app/label.zip")}"'
    assert found["Contents"][0]["Size"] == len("app/label.zip")
    assert "Contents" not in c.list_objects(Bucket="bundles", Prefix="app/none")

    # asked for explicitly, url encoding reaches the caller; set by botocore itself, it is undone
    rolled = c.list_objects(Bucket="bundles", Prefix="app/", Delimiter="/", EncodingType="url")
    assert [o["Key"] for o in rolled["Contents"]] == KEYS[:3]
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["app/sub%20dir/"]
    found = c.list_objects(Bucket="bundles", Prefix="app/sub dir/")
    assert [o["Key"] for o in found["Contents"]] == ["app/sub dir/x+y.zip"]

    pages = c.get_paginator("list_objects").paginate(
        Bucket="bundles", PaginationConfig={"PageSize": 2}
    )
    assert [o["Key"] for page in pages for o in page["Contents"]] == KEYS


def test_list_objects_v2_pages_with_continuation_tokens(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    for key in KEYS:
        c.put_object(Bucket="bundles", Key=key, Body=b".")

    pages = list(
        c.get_paginator("list_objects_v2").paginate(
            Bucket="bundles", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p.get("Contents", [])) for p in pages] == [2, 2, 1]
    assert [o["Key"] for p in pages for o in p["Contents"]] == KEYS
    assert pages[0]["KeyCount"] == 2 and pages[0]["IsTruncated"]

    # a page may end on a common prefix; the next one does not repeat it
    pages = list(
        c.get_paginator("list_objects_v2").paginate(
            Bucket="bundles", Delimiter="/", PaginationConfig={"PageSize": 1}
        )
    )
    assert [
        (
            [p["Prefix"] for p in page.get("CommonPrefixes", [])],
            [o["Key"] for o in page.get("Contents", [])],
        )
        for page in pages
    ] == [(["app/"], []), ([], ["z.zip"])]
    assert c.list_objects_v2(Bucket="bundles", StartAfter="app/sub")["Contents"][0]["Key"] == (
        "app/sub dir/x+y.zip"
    )


# multipart ----------------------------------------------------------------------------------


def test_multipart_upload_as_the_eb_cli_sends_a_large_bundle(s3: Served, tmp_path: Path) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    source = tmp_path / "big.zip"
    data = os.urandom(12 * MiB)
    source.write_bytes(data)
    transfer = TransferConfig(
        multipart_threshold=7 * MiB, multipart_chunksize=5 * MiB, max_concurrency=8
    )
    c.upload_file(str(source), "bundles", "app/big.zip", Config=transfer)

    pieces = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    joined = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in pieces)).hexdigest()
    assert c.head_object(Bucket="bundles", Key="app/big.zip")["ETag"] == f'"{joined}-3"'
    back = tmp_path / "back.zip"
    c.download_file("bundles", "app/big.zip", str(back), Config=transfer)
    assert back.read_bytes() == data
    assert s3.parts() == []  # the parts went with the upload
    assert s3.bodies() == [hashlib.sha256(data).hexdigest()]


def test_multipart_errors_name_the_part_or_upload(s3: Served) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    upload = c.create_multipart_upload(Bucket="bundles", Key="v.zip")["UploadId"]
    big, small = os.urandom(5 * MiB), b"tail"
    e1 = c.upload_part(Bucket="bundles", Key="v.zip", UploadId=upload, PartNumber=1, Body=small)
    e2 = c.upload_part(Bucket="bundles", Key="v.zip", UploadId=upload, PartNumber=2, Body=big)
    assert e1["ETag"] == f'"{md5(small)}"'

    def complete(parts: list[tuple[int, str]], upload_id: str = upload) -> Any:
        return c.complete_multipart_upload(
            Bucket="bundles",
            Key="v.zip",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
        )

    cases = [
        ([(1, '"' + "0" * 32 + '"')], "InvalidPart"),
        ([(3, e2["ETag"])], "InvalidPart"),
        ([(2, e2["ETag"]), (1, e1["ETag"])], "InvalidPartOrder"),
        ([(1, e1["ETag"]), (2, e2["ETag"])], "EntityTooSmall"),  # a small part not last
    ]
    for parts, code in cases:
        with pytest.raises(ClientError) as raised:
            complete(parts)
        assert code_of(raised) == (code, 400), parts
    with pytest.raises(ClientError) as raised:
        complete([(1, e1["ETag"])], upload_id="unknownuploadid0000")
    assert code_of(raised) == ("NoSuchUpload", 404)

    c.upload_part(Bucket="bundles", Key="v.zip", UploadId=upload, PartNumber=1, Body=big)
    done = complete([(1, f'"{md5(big)}"'), (2, e2["ETag"])])
    assert done["ETag"].endswith('-2"')
    assert c.get_object(Bucket="bundles", Key="v.zip")["Body"].read() == big + big

    other = c.create_multipart_upload(Bucket="bundles", Key="w.zip")["UploadId"]
    c.upload_part(Bucket="bundles", Key="w.zip", UploadId=other, PartNumber=1, Body=small)
    c.abort_multipart_upload(Bucket="bundles", Key="w.zip", UploadId=other)
    with pytest.raises(ClientError) as raised:
        c.upload_part(Bucket="bundles", Key="w.zip", UploadId=other, PartNumber=2, Body=small)
    assert code_of(raised) == ("NoSuchUpload", 404)
    assert s3.parts() == []


def test_bodies_over_the_limit_are_refused(serve: Callable[..., Served]) -> None:
    s3 = serve(max_object_bytes=6 * MiB)
    c = s3.client()
    c.create_bucket(Bucket="bundles")
    with pytest.raises(ClientError) as raised:
        c.put_object(Bucket="bundles", Key="huge.zip", Body=os.urandom(6 * MiB + 1))
    assert code_of(raised) == ("EntityTooLarge", 400)

    upload = c.create_multipart_upload(Bucket="bundles", Key="huge.zip")["UploadId"]
    etags = [
        c.upload_part(
            Bucket="bundles",
            Key="huge.zip",
            UploadId=upload,
            PartNumber=n,
            Body=os.urandom(5 * MiB),
        )["ETag"]
        for n in (1, 2)
    ]
    with pytest.raises(ClientError) as raised:
        c.complete_multipart_upload(
            Bucket="bundles",
            Key="huge.zip",
            UploadId=upload,
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]
            },
        )
    assert code_of(raised) == ("EntityTooLarge", 400)
    assert s3.bodies() == []


# the service's own callers ------------------------------------------------------------------


def test_object_path_gives_the_body_or_says_how_to_upload_it(s3: Served) -> None:
    c = s3.client()
    asyncio.run(s3.buckets.ensure_bucket("elasticbeanstalk-us-east-1-000000000000"))
    asyncio.run(s3.buckets.ensure_bucket("elasticbeanstalk-us-east-1-000000000000"))
    c.put_object(Bucket="elasticbeanstalk-us-east-1-000000000000", Key="app/v1.zip", Body=b"PK")
    path = asyncio.run(
        s3.buckets.object_path("elasticbeanstalk-us-east-1-000000000000", "app/v1.zip")
    )
    assert path.read_bytes() == b"PK"
    with pytest.raises(NotFound, match=r"s3://elasticbeanstalk-us-east-1-000000000000/app/v2"):
        asyncio.run(s3.buckets.object_path("elasticbeanstalk-us-east-1-000000000000", "app/v2.zip"))
    with pytest.raises(NotFound, match="Create it first"):
        asyncio.run(s3.buckets.object_path("no-bucket", "app/v1.zip"))


def test_every_answer_carries_a_request_id_and_unknown_calls_are_not_implemented(
    s3: Served,
) -> None:
    s3.client().create_bucket(Bucket="bundles")
    answers = [
        httpx.get(f"{s3.url}/"),
        httpx.head(f"{s3.url}/bundles/missing"),
        httpx.get(f"{s3.url}/bundles?ownershipControls"),
        httpx.put(f"{s3.url}/bundles?acl", content=b""),
        httpx.get(f"{s3.url}/bundles/key?torrent"),
    ]
    assert all(a.headers.get("x-amz-request-id") for a in answers)
    assert answers[1].status_code == 404 and answers[1].content == b""
    for answer in answers[2:5]:
        assert answer.status_code == 501
        assert "<Code>NotImplemented</Code>" in answer.text
    assert "?ownershipControls" in answers[2].text
