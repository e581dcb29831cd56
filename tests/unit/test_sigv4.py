"""SigV4 verification against requests botocore really signs and really sends.

A loopback HTTP server (port 0) records each request as it came off the socket: the raw
request target, every header, the body. Those are what the Elastic Beanstalk and S3 faces
hand to `verify`, so a test passes only if the server side rebuilds exactly the canonical
request botocore signed: its query encoding, its S3 path encoding (spaces, '+', non-ASCII),
its headers (Host with the port, x-amz-content-sha256, checksums).
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import botocore.session
import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from starlette.datastructures import Headers

from beanpole.core import sigv4
from beanpole.core.sigv4 import MISMATCH, SigV4Error

KEY_ID = "AKIAEXAMPLE000000001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY = "dir/my file+ü €.txt"  # spaces, '+', non-ASCII: botocore percent-encodes each


@dataclass(frozen=True)
class Sent:
    """A request as the server received it."""

    method: str
    path: str  # raw, percent-encoded as sent
    query: str
    headers: tuple[tuple[str, str], ...]  # every header, in the case the client wrote
    body: bytes

    @property
    def payload_hash(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def now(self) -> float:
        """The moment the client signed it (so no test depends on this machine's clock)."""
        return _epoch(self.header("x-amz-date"))

    def header(self, name: str) -> str:
        return next(v for k, v in self.headers if k.lower() == name)

    def with_header(self, name: str, value: str | None) -> Sent:
        kept = tuple((k, v) for k, v in self.headers if k.lower() != name.lower())
        return replace(self, headers=kept if value is None else (*kept, (name, value)))

    def verify(self, secret: str = SECRET, now: float | None = None, **changes: str) -> None:
        sent = replace(self, **changes) if changes else self
        headers = dict(sent.headers)
        auth = sigv4.parse(headers, sent.query)
        sigv4.verify(
            sent.method,
            sent.path,
            sent.query,
            headers,
            sent.payload_hash,
            auth,
            secret,
            now=self.now if now is None else now,
        )


class _Recorder(http.server.BaseHTTPRequestHandler):
    sent: list[Sent]

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        self.sent.append(Sent(self.command, path, query, tuple(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _record

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[Sent]]]:
    sent: list[Sent] = []
    handler = type("Recorder", (_Recorder,), {"sent": sent})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", sent
    finally:
        httpd.shutdown()
        httpd.server_close()


def _client(url: str, service: str, **config: object):  # type: ignore[no-untyped-def]
    return botocore.session.get_session().create_client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}, **config),
    )


def _send(server: tuple[str, list[Sent]], service: str, call: str, **kwargs: object) -> Sent:
    url, sent = server
    before = len(sent)
    client = _client(url, service, **kwargs.pop("config", {}))  # type: ignore[arg-type]
    try:
        getattr(client, call)(**kwargs)
    except Exception:  # an empty 200 is not every operation's answer; the request is sent
        pass
    finally:
        client.close()
    assert len(sent) == before + 1
    return sent[-1]


def _epoch(amz_date: str) -> float:
    return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def eb_post(server) -> Sent:
    """What Terraform's provider and boto3 send: a query-protocol POST to /."""
    return _send(
        server,
        "elasticbeanstalk",
        "describe_environments",
        ApplicationName="my app",
        EnvironmentNames=["shop", "shop-2"],
    )


@pytest.fixture(scope="module")
def s3_put(server) -> Sent:
    return _send(server, "s3", "put_object", Bucket="bundles", Key=KEY, Body=b"zip bytes")


# requests botocore signed pass ---------------------------------------------------------------


def test_a_query_protocol_post_verifies(eb_post):
    assert (eb_post.method, eb_post.path, eb_post.query) == ("POST", "/", "")
    assert b"Action=DescribeEnvironments" in eb_post.body
    assert "x-amz-content-sha256" not in {k.lower() for k, _ in eb_post.headers}
    eb_post.verify()
    auth = sigv4.parse(dict(eb_post.headers), "")
    date = eb_post.header("x-amz-date")[:8]
    assert auth.scope == sigv4.Scope(KEY_ID, date, "us-east-1", "elasticbeanstalk")


def test_the_eb_cli_signing_eb_requests_as_s3v4_verifies(server):
    """The eb CLI forces signature_version='s3v4' even for EB: x-amz-content-sha256 signed."""
    sent = _send(
        server,
        "elasticbeanstalk",
        "describe_applications",
        config={"signature_version": "s3v4"},
    )
    assert sent.header("x-amz-content-sha256") == sent.payload_hash
    sent.verify()


def test_an_s3_put_of_a_key_with_spaces_plus_and_unicode_verifies(s3_put):
    assert s3_put.path == "/bundles/dir/my%20file%2B%C3%BC%20%E2%82%AC.txt"
    assert s3_put.header("x-amz-content-sha256") == s3_put.payload_hash
    s3_put.verify()


@pytest.mark.parametrize(
    ("call", "kwargs", "query"),
    [
        ("get_object_tagging", {"Bucket": "b", "Key": KEY}, "tagging"),
        (
            "list_objects",
            {"Bucket": "b", "Prefix": "a/b c+d.zip", "EncodingType": "url"},
            "prefix=a%2Fb%20c%2Bd.zip&encoding-type=url",
        ),
        ("get_bucket_policy", {"Bucket": "b"}, "policy"),
    ],
)
def test_s3_gets_with_a_query_string_verify(server, call, kwargs, query):
    sent = _send(server, "s3", call, **kwargs)
    assert sorted(sent.query.split("&")) == sorted(query.split("&"))
    sent.verify()


def test_a_presigned_s3_get_verifies_until_it_expires():
    """S3 clients presign GETs: the signature is in the query, the payload unsigned."""
    request = AWSRequest(method="GET", url=f"http://localhost:9000/bundles/{_quoted(KEY)}")
    S3SigV4QueryAuth(Credentials(KEY_ID, SECRET), "s3", "us-east-1", expires=300).add_auth(request)
    url = urlsplit(request.prepare().url)
    headers = {"Host": url.netloc}
    auth = sigv4.parse(headers, url.query)
    assert auth.presigned
    signed_at = _epoch(auth.amz_date)

    def verify(now: float, query: str = url.query) -> None:
        sigv4.verify("GET", url.path, query, headers, sigv4.EMPTY_SHA256, auth, SECRET, now)

    verify(signed_at + 299)
    with pytest.raises(SigV4Error) as exc:
        verify(signed_at + 301)
    assert exc.value.code == "RequestExpired"
    with pytest.raises(SigV4Error) as exc:
        verify(signed_at, query=url.query + "&versionId=2")
    assert exc.value.code == "SignatureDoesNotMatch"


def test_a_non_s3_path_is_normalised_and_encoded_twice_as_botocore_signs_it():
    """EB's clients send '/', but the rule for every service but S3 is checked too."""
    request = AWSRequest(method="GET", url="http://h:1/a%20b/./c/../d?x=1")
    SigV4Auth(Credentials(KEY_ID, SECRET), "elasticbeanstalk", "us-east-1").add_auth(request)
    prepared = request.prepare()
    headers = {**dict(prepared.headers.items()), "Host": "h:1"}
    auth = sigv4.parse(headers, "x=1")
    now = _epoch(auth.amz_date)
    sigv4.verify("GET", "/a%20b/./c/../d", "x=1", headers, sigv4.EMPTY_SHA256, auth, SECRET, now)


def test_headers_are_read_in_any_case_and_repeated_values_joined():
    """Starlette's headers (what the faces pass) list a repeated header once per value;
    the signature covers them comma-joined, each trimmed, inner whitespace collapsed."""
    request = AWSRequest(
        method="POST",
        url="http://h:1/",
        data=b"Action=ListPlatformVersions",
        headers={"X-Custom": "a,b   c"},
    )
    SigV4Auth(Credentials(KEY_ID, SECRET), "elasticbeanstalk", "us-east-1").add_auth(request)
    prepared = request.prepare()
    raw = [(k.lower().encode(), v.encode()) for k, v in prepared.headers.items() if k != "X-Custom"]
    raw += [(b"host", b"h:1"), (b"x-custom", b"  a"), (b"x-custom", b"b    c ")]
    headers = Headers(raw=raw)
    auth = sigv4.parse(headers, "")
    payload = hashlib.sha256(b"Action=ListPlatformVersions").hexdigest()
    sigv4.verify("POST", "/", "", headers, payload, auth, SECRET, _epoch(auth.amz_date))


# and each failure --------------------------------------------------------------------------


def test_a_wrong_secret_does_not_match(eb_post):
    with pytest.raises(SigV4Error) as exc:
        eb_post.verify(secret=SECRET[:-1] + "x")
    assert exc.value.code == "SignatureDoesNotMatch"
    assert exc.value.message == MISMATCH
    assert exc.value.status == 403
    assert exc.value.canonical_request is not None
    assert exc.value.canonical_request.startswith("POST\n/\n\n")


def test_a_tampered_body_does_not_match(eb_post):
    with pytest.raises(SigV4Error) as exc:
        eb_post.verify(body=eb_post.body.replace(b"shop-2", b"shop-3"))
    assert exc.value.code == "SignatureDoesNotMatch"


def test_a_body_unlike_its_stated_hash_is_refused(s3_put):
    """The S3 PUT states its body's sha256; a different body fails even though the
    header itself is signed."""
    with pytest.raises(SigV4Error) as exc:
        s3_put.verify(body=b"other bytes")
    assert exc.value.code == "XAmzContentSHA256Mismatch"


def test_a_tampered_signed_header_does_not_match(eb_post, s3_put):
    host = eb_post.header("host")
    with pytest.raises(SigV4Error) as exc:
        eb_post.with_header("Host", host.replace("127.0.0.1", "localhost")).verify()
    assert exc.value.code == "SignatureDoesNotMatch"
    signed = sigv4.parse(dict(s3_put.headers), "").signed_headers
    assert "x-amz-checksum-crc32" in signed
    with pytest.raises(SigV4Error) as exc:
        s3_put.with_header("x-amz-checksum-crc32", "AAAAAA==").verify()
    assert exc.value.code == "SignatureDoesNotMatch"
    # A header the client did not sign is not covered, as with AWS.
    assert "content-type" not in signed
    s3_put.with_header("Content-Type", "text/html").verify()


def test_a_tampered_path_or_query_does_not_match(s3_put, server):
    with pytest.raises(SigV4Error):
        s3_put.verify(path=s3_put.path.replace("my%20file", "my+file"))
    listed = _send(server, "s3", "list_objects", Bucket="b", Prefix="a/b")
    with pytest.raises(SigV4Error):
        listed.verify(query=listed.query.replace("a%2Fb", "a%2Fc"))


def test_an_unsigned_request_is_missing_its_token(eb_post):
    with pytest.raises(SigV4Error) as exc:
        eb_post.with_header("Authorization", None).verify()
    assert exc.value.code == "MissingAuthenticationToken"
    assert exc.value.status == 403


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;x-amz-date",
        "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1, SignedHeaders=host, Signature=ab",
        "AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=content-type, Signature=abc",
        "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
        "Bearer some-token",
    ],
)
def test_a_malformed_authorization_is_an_incomplete_signature(eb_post, authorization):
    cred = f"{KEY_ID}/{eb_post.header('x-amz-date')[:8]}/us-east-1/elasticbeanstalk/aws4_request"
    with pytest.raises(SigV4Error) as exc:
        eb_post.with_header("Authorization", authorization.format(cred=cred)).verify()
    assert exc.value.code == "IncompleteSignature"
    assert exc.value.status == 400


def test_a_signature_without_its_date_is_an_incomplete_signature(eb_post):
    with pytest.raises(SigV4Error) as exc:
        eb_post.with_header("X-Amz-Date", None).verify()
    assert exc.value.code == "IncompleteSignature"
    assert "X-Amz-Date" in exc.value.message


def test_a_presigned_url_missing_a_parameter_is_an_incomplete_signature():
    query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261202%2Fus-east-1%2Fs3"
    with pytest.raises(SigV4Error) as exc:
        sigv4.parse({"Host": "h"}, query)
    assert exc.value.code == "IncompleteSignature"
    assert "X-Amz-Signature" in exc.value.message


@pytest.mark.parametrize(("minutes", "word"), [(16, "earlier"), (-16, "later")])
def test_a_clock_16_minutes_off_is_refused_either_way(eb_post, minutes, word):
    with pytest.raises(SigV4Error) as exc:
        eb_post.verify(now=eb_post.now + minutes * 60)
    assert exc.value.code == "RequestExpired"
    assert exc.value.message.startswith("Signature ")
    assert f"is now {word} than" in exc.value.message or f"is still {word} than" in (
        exc.value.message
    )


def test_a_clock_14_minutes_off_is_allowed(eb_post):
    eb_post.verify(now=eb_post.now + 14 * 60)
    eb_post.verify(now=eb_post.now - 14 * 60)


def _quoted(key: str) -> str:
    return quote(key, safe="/~")
