"""TLS certificates the load balancer serves by SNI (pure: PEM text in, facts out).

A certificate is stored under a name (``beanpole certs add shop --cert … --key …``) and an
environment's HTTPS listener refers to it by that name in ``aws:elbv2:listener:443``
``SSLCertificateArns``, where Elastic Beanstalk takes an ACM or IAM ARN: an ARN's last
path segment is read as the name, so ``arn:aws:acm:us-east-1:123:certificate/shop`` names
``shop``. HAProxy picks the certificate whose names match the client's SNI; a client that
sends no name, or one no certificate covers, gets a self-signed one for
``beanpole.invalid`` (`self_signed`), so nobody's certificate is shown for a host it does
not cover.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from beanpole.core.errors import InvalidInput

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")
EXPIRY_WARNING_DAYS = 30
MAX_PEM_BYTES = 12_000  # HAProxy's CLI takes a certificate in one 16 KiB buffer
DEFAULT_NAME = "beanpole.invalid"
MIN_RSA_BITS = 2048  # OpenSSL's default security level refuses shorter keys

#: Elastic Beanstalk's (ALB's) security policies and the oldest TLS version each accepts.
#: TLS 1.0 and 1.1 are never offered, whatever the policy: Debian's OpenSSL refuses them at
#: its default security level, so policies that allow them start at TLS 1.2 here.
SSL_POLICIES: dict[str, str] = {
    "ELBSecurityPolicy-2016-08": "TLSv1.2",
    "ELBSecurityPolicy-TLS-1-0-2015-04": "TLSv1.2",
    "ELBSecurityPolicy-TLS-1-1-2017-01": "TLSv1.2",
    "ELBSecurityPolicy-TLS-1-2-2017-01": "TLSv1.2",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06": "TLSv1.2",
    "ELBSecurityPolicy-FS-2018-06": "TLSv1.2",
    "ELBSecurityPolicy-FS-1-1-2019-08": "TLSv1.2",
    "ELBSecurityPolicy-FS-1-2-2019-08": "TLSv1.2",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08": "TLSv1.2",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10": "TLSv1.2",
    "ELBSecurityPolicy-TLS13-1-2-2021-06": "TLSv1.2",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06": "TLSv1.2",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06": "TLSv1.2",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06": "TLSv1.2",
    "ELBSecurityPolicy-TLS13-1-3-2021-06": "TLSv1.3",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04": "TLSv1.3",
}
DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class CertificateFacts:
    """What a stored certificate is: its names, validity and fingerprint."""

    domains: tuple[str, ...]  # subject alternative names (DNS), or the common name
    not_before: dt.datetime  # UTC
    not_after: dt.datetime  # UTC
    fingerprint: str  # SHA-1 of the leaf's DER, upper-case hex: what HAProxy shows
    serial: str  # upper-case hex
    pem: str  # leaf, then chain, then key: the file HAProxy loads

    def days_left(self, now: dt.datetime) -> int:
        return (self.not_after - now).days

    def expiring(self, now: dt.datetime) -> bool:
        return self.days_left(now) < EXPIRY_WARNING_DAYS


@dataclass(frozen=True)
class CertificateRecord:
    """A stored certificate as the store keeps it (its PEM is `Home.certificate_file`)."""

    name: str
    domains: tuple[str, ...]
    not_before: float  # epoch seconds, UTC
    not_after: float
    fingerprint: str  # SHA-1 of the leaf, upper-case hex
    serial: str
    created_at: float
    updated_at: float

    def days_left(self, now: float) -> int:
        return int((self.not_after - now) // 86400)

    def expiring(self, now: float) -> bool:
        return self.days_left(now) < EXPIRY_WARNING_DAYS


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise InvalidInput(
            f"Certificate name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or "
            "'-', starting and ending with a letter or digit (such as shop-example-com)."
        )
    return name


def referenced_names(value: str) -> tuple[str, ...]:
    """The certificate names an ``SSLCertificateArns`` value refers to, in order.

    EB takes a comma-separated list of ARNs; each may be a stored certificate's name or an
    ARN whose last path segment is one (``arn:aws:acm:…:certificate/shop``).
    """
    names: list[str] = []
    for raw in value.split(","):
        part = raw.strip()
        if not part:
            continue
        name = part.rsplit("/", 1)[-1] if part.startswith("arn:") else part
        check_name(name)
        if name not in names:
            names.append(name)
    return tuple(names)


def parse(
    certificate: str, private_key: str, chain: str = "", *, now: dt.datetime | None = None
) -> CertificateFacts:
    """Check a certificate, its key and its chain, and give their facts and one PEM.

    Refused, each saying what to change: text that is not PEM, a key that does not match the
    certificate, an encrypted key, a certificate already expired, one with no DNS name.
    """
    now = now or dt.datetime.now(dt.UTC)
    certs = _certificates(certificate, "--cert")
    extra = _certificates(chain, "--chain") if chain.strip() else []
    leaf = certs[0]
    try:
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except TypeError:
        raise InvalidInput(
            "The private key is encrypted: give it without a passphrase "
            "(openssl pkey -in key.pem -out plain.pem)."
        ) from None
    except ValueError:
        raise InvalidInput(
            "The private key (--key) is not a PEM private key: it should start with "
            "'-----BEGIN PRIVATE KEY-----' (or RSA/EC PRIVATE KEY)."
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise InvalidInput("The private key must be RSA or ECDSA: HAProxy serves those.")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidInput(
            f"The key is RSA of {key.key_size} bits; OpenSSL refuses fewer than "
            f"{MIN_RSA_BITS}: issue the certificate for a 2048-bit (or ECDSA) key."
        )
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        raise InvalidInput(
            "The private key (--key) does not belong to the certificate (--cert): give the "
            "key the certificate was issued for."
        )
    not_after = leaf.not_valid_after_utc
    if not_after <= now:
        raise InvalidInput(f"The certificate expired on {not_after:%Y-%m-%d}: give a renewed one.")
    domains = _domains(leaf)
    if not domains:
        raise InvalidInput(
            "The certificate names no host (no DNS subject alternative name or common name): "
            "clients could not match it to a host."
        )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in [*certs, *extra])
    pem += key_pem
    if len(pem.encode()) > MAX_PEM_BYTES:
        raise InvalidInput(
            f"The certificate, chain and key come to {len(pem.encode())} bytes; at most "
            f"{MAX_PEM_BYTES} fit: leave the root certificate out of the chain."
        )
    return CertificateFacts(
        domains=domains,
        not_before=leaf.not_valid_before_utc,
        not_after=not_after,
        fingerprint=hashlib.sha1(  # noqa: S324 - an identifier HAProxy shows, not security
            leaf.public_bytes(serialization.Encoding.DER)
        )
        .hexdigest()
        .upper(),
        serial=f"{leaf.serial_number:X}",
        pem=pem,
    )


def covers(domains: tuple[str, ...], host: str) -> bool:
    """Whether a certificate for ``domains`` is valid for ``host`` (one-label wildcards)."""
    host = host.lower()
    for domain in domains:
        if domain == host:
            return True
        if domain.startswith("*.") and host.partition(".")[2] == domain[2:] and "." in host:
            return True
    return False


def self_signed(common_name: str = DEFAULT_NAME, *, days: int = 3650) -> str:
    """A self-signed ECDSA certificate and its key, as one PEM: the listener's default."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM).decode()
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )


def _certificates(text: str, flag: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        certs = []
    if not certs:
        raise InvalidInput(
            f"The certificate ({flag}) is not PEM: it should hold one or more "
            "'-----BEGIN CERTIFICATE-----' blocks."
        )
    return certs


def _public_der(key: object) -> bytes:
    assert isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    )
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _domains(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [
            str(a.value).lower()
            for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if "." in str(a.value)
        ]
    return tuple(dict.fromkeys(names))
