"""Certificates and TLS clients for the HTTPS tests: real certificates, real handshakes.

`issue` makes a certificate and key for some host names, signed by a test CA whose PEM a
client trusts (`client_context`), so a test checks what a browser would: that the server
offered a certificate valid for the name asked for.
"""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Issued:
    cert: str  # PEM
    key: str  # PEM
    serial: int

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        cert, key = folder / f"{name}.crt", folder / f"{name}.key"
        cert.write_text(self.cert)
        key.write_text(self.key)
        return cert, key

    @property
    def pem(self) -> str:
        return self.cert + self.key


class TestCA:
    """A certificate authority for one test: trust `pem` and every issued certificate
    verifies."""

    __test__ = False  # not a test class, despite its name

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Beanpole test CA")])
        now = dt.datetime.now(dt.UTC)
        self._name = name
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, *hosts: str, days: int = 90) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        return Issued(
            cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
            serial,
        )


def client_context(
    ca: TestCA | None, *, version: ssl.TLSVersion | None = None, alpn: tuple[str, ...] = ()
) -> ssl.SSLContext:
    """A client that verifies against ``ca`` (None: verifies nothing), optionally pinned to
    one TLS version and offering ALPN protocols."""
    ctx = ssl.create_default_context()
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cadata=ca.pem)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def handshake(port: int, host: str, ctx: ssl.SSLContext) -> tuple[x509.Certificate, ssl.SSLSocket]:
    """Connect to 127.0.0.1:``port`` asking for ``host`` by SNI; the offered certificate."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = ctx.wrap_socket(raw, server_hostname=host)
    der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der), tls


def served_serial(port: int, host: str) -> int:
    cert, tls = handshake(port, host, client_context(None))
    tls.close()
    return cert.serial_number


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


class HTTPSConnection(http.client.HTTPSConnection):
    """Connects to 127.0.0.1 but asks for ``host`` by SNI and in ``Host``, as a client
    resolving ``host`` to the load balancer would."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext, timeout: float = 10) -> None:
        super().__init__(host, port, context=ctx, timeout=timeout)

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def get(
    host: str, port: int, ctx: ssl.SSLContext, path: str = "/"
) -> tuple[int, str, dict[str, str]]:
    conn = HTTPSConnection(host, port, ctx)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        conn.close()


class HTTPSLoad:
    """GETs over HTTPS in threads until stopped, counting requests and failures: some
    threads keep their connection alive, the others open a new one (a full handshake)
    per request. A failure is an error or a status other than 200."""

    def __init__(
        self, host: str, port: int, ctx: ssl.SSLContext, *, kept: int = 1, new: int = 0
    ) -> None:
        self.host, self.port, self.ctx = host, port, ctx
        self.done = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(keep,), daemon=True)
            for keep in [True] * kept + [False] * new
        ]

    def __enter__(self) -> HTTPSLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, keep_alive: bool) -> None:
        conn = HTTPSConnection(self.host, self.port, self.ctx)
        while not self._stop.is_set():
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures.append(f"status {response.status}")
                self.done += 1
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                keep_alive = False
            if not keep_alive:
                conn.close()
                conn = HTTPSConnection(self.host, self.port, self.ctx)
        conn.close()
