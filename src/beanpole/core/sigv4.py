"""AWS Signature Version 4, the server's side: read a request's signature, check it.

Elastic Beanstalk's query API and the S3 subset are called by clients that sign every
request (Terraform's AWS provider, boto3, the `eb` CLI). `parse` reads who signed and how,
from the ``Authorization`` header or a presigned URL's ``X-Amz-*`` query parameters;
`verify` rebuilds the canonical request from what arrived, signs it with the key's secret
and compares. The caller looks the secret up between the two (`server/eb/auth.py`): the
core reads no store and no clock, ``now`` is handed in.

The recipe (docs.aws.amazon.com, "Create a signed AWS API request"):

    canonical request = METHOD, URI, QUERY, HEADERS + newline, SIGNED-HEADER-NAMES, PAYLOAD-HASH
    string to sign    = AWS4-HMAC-SHA256, X-Amz-Date, date/region/service/aws4_request,
                        sha256(canonical request)
    (each on a line of its own)
    signing key       = HMAC chain "AWS4"+secret -> date -> region -> service -> aws4_request

The URI is the path as the client encoded it for S3, and that path encoded once more (after
removing dot segments) for every other service: that is what botocore and the Go SDK sign.
Errors carry AWS's codes, so a face can answer them as AWS would.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
"""The payload hash of a request without a body."""
MAX_SKEW = 900
"""Seconds a request's X-Amz-Date may be from the server's clock, either way (AWS's 15 min)."""
MAX_PRESIGNED_EXPIRES = 604800
"""The longest a presigned URL may be valid: 7 days, as AWS allows."""

_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_SCOPE_DATE = re.compile(r"\d{8}")
_QUERY_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method."
)

_STATUS = {
    "MissingAuthenticationToken": 403,
    "IncompleteSignature": 400,
    "InvalidClientTokenId": 403,
    "SignatureDoesNotMatch": 403,
    "RequestExpired": 400,
    "XAmzContentSHA256Mismatch": 400,
}


class SigV4Error(Exception):
    """A request whose signature is missing, malformed, wrong or out of date.

    ``code`` is AWS's error code (``SignatureDoesNotMatch``, …), ``status`` the HTTP
    status AWS answers it with. A mismatch carries the canonical request and string to
    sign the server computed, for a log line: comparing them with the client's (botocore
    logs both at DEBUG) shows what differs.
    """

    def __init__(
        self,
        code: str,
        message: str,
        canonical_request: str | None = None,
        string_to_sign: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 403)


@dataclass(frozen=True)
class Scope:
    """Who signed, and for what: the credential scope of a signature."""

    access_key_id: str
    date: str  # YYYYMMDD
    region: str
    service: str

    def __str__(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class Authorization:
    """A request's signature as the client stated it (nothing checked yet but its form)."""

    scope: Scope
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # YYYYMMDDTHHMMSSZ
    expires: int | None = None  # a presigned URL's X-Amz-Expires; None: header auth

    @property
    def presigned(self) -> bool:
        return self.expires is not None


def parse(headers: Mapping[str, str], query: str) -> Authorization:
    """The signature of a request with ``headers`` (any case) and raw query string ``query``.

    Raises `SigV4Error`: ``MissingAuthenticationToken`` when the request is not signed at
    all, ``IncompleteSignature`` when it is but not in a form this can read.
    """
    lower = _lower(headers)
    header = lower.get("authorization", [None])[0]
    params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    presigned = "X-Amz-Algorithm" in params or "X-Amz-Credential" in params
    if header is not None and presigned:
        raise SigV4Error(
            "IncompleteSignature",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or "
            "the Authorization header should be specified.",
        )
    if header is not None:
        return _parse_header(header.strip(), lower)
    if presigned:
        return _parse_query(params)
    raise SigV4Error(
        "MissingAuthenticationToken",
        "Request is missing Authentication Token. Sign it with AWS Signature Version 4 "
        "using an access key from `beanpole keys create`.",
    )


def verify(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    payload_hash: str,
    auth: Authorization,
    secret: str,
    now: float,
    max_skew: int = MAX_SKEW,
) -> None:
    """Check ``auth`` against the request as it arrived, signed with ``secret``, at ``now``
    (seconds since the epoch); raise `SigV4Error` if it does not hold.

    ``raw_path`` and ``raw_query`` are as the client sent them (percent-encoded, without
    the ``?``); ``payload_hash`` is the sha256 hex digest of the body. A request that states
    its body's hash in ``x-amz-content-sha256`` is signed over that value (which may be
    ``UNSIGNED-PAYLOAD``); when the value is a digest it must also be the body's.
    """
    lower = _lower(headers)
    _check_time(auth, now, max_skew)
    if auth.amz_date[:8] != auth.scope.date:
        raise SigV4Error(
            "SignatureDoesNotMatch",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{auth.scope.date}' != '{auth.amz_date[:8]}', from "
            f"'{auth.amz_date}'.",
        )
    stated = lower.get("x-amz-content-sha256", [None])[0]
    if stated is not None:
        stated = stated.strip()
        if _HEX_SHA256.fullmatch(stated) and not hmac.compare_digest(stated, payload_hash):
            raise SigV4Error(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        body_hash = stated
    elif auth.presigned and auth.scope.service == "s3":
        body_hash = UNSIGNED_PAYLOAD  # S3 presigned URLs never sign a body
    else:
        body_hash = payload_hash
    canonical = canonical_request(
        method,
        canonical_uri(raw_path, auth.scope.service),
        canonical_query(raw_query, drop_signature=auth.presigned),
        _canonical_headers(auth.signed_headers, lower),
        auth.signed_headers,
        body_hash,
    )
    to_sign = string_to_sign(auth.amz_date, auth.scope, canonical)
    expected = signature(secret, auth.scope, to_sign)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise SigV4Error("SignatureDoesNotMatch", MISMATCH, canonical, to_sign)


# the recipe --------------------------------------------------------------------------------


def canonical_uri(raw_path: str, service: str) -> str:
    """The path as signed: as sent for S3; otherwise without dot segments or repeated
    slashes, and encoded once more (AWS encodes the path of every other service twice)."""
    if service == "s3":
        return raw_path or "/"
    return quote(_remove_dot_segments(raw_path) or "/", safe="/~")


def canonical_query(raw_query: str, drop_signature: bool = False) -> str:
    """Every parameter decoded and encoded again the AWS way (RFC 3986 unreserved
    characters kept, everything else %XX, a space as %20), sorted by name, then value."""
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key, value = _reencode(key), _reencode(value)
        if drop_signature and key == "X-Amz-Signature":
            continue
        pairs.append((key, value))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(
    method: str,
    uri: str,
    query: str,
    headers: str,
    signed_headers: tuple[str, ...],
    payload_hash: str,
) -> str:
    return "\n".join(
        (method.upper(), uri, query, headers + "\n", ";".join(signed_headers), payload_hash)
    )


def string_to_sign(amz_date: str, scope: Scope, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signature(secret: str, scope: Scope, to_sign: str) -> str:
    key = _hmac(f"AWS4{secret}".encode(), scope.date)
    for part in (scope.region, scope.service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


# parsing -----------------------------------------------------------------------------------


def _parse_header(header: str, lower: Mapping[str, list[str]]) -> Authorization:
    scheme, _, rest = header.partition(" ")
    if scheme != ALGORITHM:
        raise SigV4Error(
            "IncompleteSignature",
            f"Unsupported authorization type {scheme!r}. Sign requests with AWS Signature "
            f"Version 4 ({ALGORITHM}).",
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value.strip()
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise SigV4Error(
                "IncompleteSignature",
                f"Authorization header requires '{name}' parameter. Authorization={header}",
            )
    amz_date = _request_date(lower)
    return Authorization(
        scope=_scope(fields["Credential"]),
        signed_headers=_signed_headers(fields["SignedHeaders"]),
        signature=fields["Signature"],
        amz_date=amz_date,
    )


def _parse_query(params: Mapping[str, str]) -> Authorization:
    missing = [p for p in _QUERY_PARAMS if not params.get(p)]
    if missing:
        raise SigV4Error(
            "IncompleteSignature",
            "Query-string authentication version 4 requires the "
            f"{', '.join(_QUERY_PARAMS)} parameters; missing: {', '.join(missing)}.",
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise SigV4Error(
            "IncompleteSignature",
            f"X-Amz-Algorithm {params['X-Amz-Algorithm']!r} is not supported: sign with "
            f"{ALGORITHM}.",
        )
    expires = params["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGNED_EXPIRES:
        raise SigV4Error(
            "IncompleteSignature",
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRES}; "
            f"got {expires!r}.",
        )
    return Authorization(
        scope=_scope(params["X-Amz-Credential"]),
        signed_headers=_signed_headers(params["X-Amz-SignedHeaders"]),
        signature=params["X-Amz-Signature"],
        amz_date=_amz_date(params["X-Amz-Date"]),
        expires=int(expires),
    )


def _scope(credential: str) -> Scope:
    parts = credential.split("/")
    if (
        len(parts) != 5
        or not all(parts)
        or parts[4] != "aws4_request"
        or not _SCOPE_DATE.fullmatch(parts[1])
    ):
        raise SigV4Error(
            "IncompleteSignature",
            f"Credential {credential!r} is malformed: expected "
            "ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request.",
        )
    return Scope(access_key_id=parts[0], date=parts[1], region=parts[2], service=parts[3])


def _signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in value.split(";"))
    if not all(names) or "host" not in names:
        raise SigV4Error(
            "IncompleteSignature",
            f"SignedHeaders {value!r} is malformed: a ';'-separated list that includes host.",
        )
    return names


def _request_date(lower: Mapping[str, list[str]]) -> str:
    """X-Amz-Date, else the Date header in the same basic ISO-8601 form (both are allowed;
    botocore sends Date when the caller set one)."""
    if "x-amz-date" in lower:
        return _amz_date(lower["x-amz-date"][0].strip())
    if "date" in lower:
        try:
            when = parsedate_to_datetime(lower["date"][0])
        except (TypeError, ValueError):
            raise SigV4Error(
                "IncompleteSignature", f"Date header {lower['date'][0]!r} is not an HTTP date."
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC).strftime(_AMZ_DATE)
    raise SigV4Error(
        "IncompleteSignature",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    )


def _amz_date(value: str) -> str:
    try:
        datetime.strptime(value, _AMZ_DATE)
    except ValueError:
        raise SigV4Error(
            "IncompleteSignature",
            f"Date must be in ISO-8601 'basic format' (YYYYMMDD'T'HHMMSS'Z'). Got {value!r}.",
        ) from None
    return value


# checking ----------------------------------------------------------------------------------


def _check_time(auth: Authorization, now: float, max_skew: int) -> None:
    signed = datetime.strptime(auth.amz_date, _AMZ_DATE).replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now, UTC)
    skew = timedelta(seconds=max_skew)
    minutes = f"{max_skew // 60} min."
    if auth.expires is not None:
        if current > signed + timedelta(seconds=auth.expires):
            raise SigV4Error(
                "RequestExpired",
                f"Request has expired: the URL was signed at {auth.amz_date} to be valid "
                f"for {auth.expires} seconds; it is now {_fmt(current)}. Presign it again.",
            )
        if current < signed - skew:
            raise SigV4Error(
                "RequestExpired",
                f"Request is not yet valid: signed at {auth.amz_date}, it is now "
                f"{_fmt(current)}. Check the client's clock.",
            )
        return
    if signed < current - skew:
        raise SigV4Error(
            "RequestExpired",
            f"Signature expired: {auth.amz_date} is now earlier than {_fmt(current - skew)} "
            f"({_fmt(current)} - {minutes}) Check the client's clock.",
        )
    if signed > current + skew:
        raise SigV4Error(
            "RequestExpired",
            f"Signature not yet current: {auth.amz_date} is still later than "
            f"{_fmt(current + skew)} ({_fmt(current)} + {minutes}) Check the client's clock.",
        )


def _canonical_headers(names: tuple[str, ...], lower: Mapping[str, list[str]]) -> str:
    """``name:value`` lines of the signed headers; several values of one name are joined
    with commas, each trimmed and with its inner runs of whitespace made one space. A signed
    header the request lacks signs as empty (and so fails to match)."""
    return "\n".join(
        f"{name}:{','.join(' '.join(v.split()) for v in lower.get(name, []))}" for name in names
    )


# helpers -----------------------------------------------------------------------------------


def _lower(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Every value of every header, by lower-case name. ``items()`` of Starlette's headers
    lists a repeated header once per value, which the canonical form joins."""
    lower: dict[str, list[str]] = {}
    for name, value in headers.items():
        lower.setdefault(name.lower(), []).append(value)
    return lower


def _reencode(component: str) -> str:
    # '+' is a space in a query (Go's url.ParseQuery, as the Go SDK's signer reads it);
    # botocore and the Go SDK both send a real '+' as %2B. Bytes, so invalid UTF-8 survives.
    return quote(unquote_to_bytes(component.replace("+", " ")), safe="-_.~")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, and repeated slashes made one, as AWS does (botocore's
    ``remove_dot_segments``)."""
    if not path:
        return ""
    out: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
        else:
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _fmt(when: datetime) -> str:
    return when.strftime(_AMZ_DATE)
