"""The HTTPS listener against the real HAProxy: certificates by SNI, TLS 1.2 and 1.3,
HTTP/2, redirects, and certificates added, renewed and removed through the runtime API
with no reload and no failed request."""

from __future__ import annotations

import hashlib
import shutil
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from beanpole.adapters.lb.haproxy import HAProxy
from beanpole.core.lb.config import (
    NO_ROUTE_BODY,
    Backend,
    Certificate,
    HealthCheck,
    LoadBalancerSpec,
)
from tlskit import (
    HTTPSConnection,
    HTTPSLoad,
    Issued,
    TestCA,
    client_context,
    common_name,
    get,
    handshake,
    served_serial,
)

from lbkit import App, free_port

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None,
    reason="the haproxy binary is not installed (apt install haproxy)",
)

CHECK = HealthCheck(interval_s=1, timeout_s=1, healthy_threshold=1, unhealthy_threshold=2)


def worker_pid(haproxy: HAProxy) -> str:
    for line in haproxy.runtime("show info").splitlines():
        if line.startswith("Pid:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("show info has no Pid")


def stored(folder: Path, name: str, issued: Issued, min_tls: str = "TLSv1.2") -> Certificate:
    """Write the PEM where the store would, and describe it as `desired_spec` does."""
    path = folder / f"{name}.pem"
    path.write_text(issued.pem)
    leaf = x509.load_pem_x509_certificate(issued.cert.encode())
    fingerprint = hashlib.sha1(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    return Certificate(name, str(path), fingerprint.upper(), min_tls)


def test_https_serves_each_host_its_certificate_over_tls_1_2_and_1_3_and_http2(
    lb: HAProxy, apps: Callable[[str], App], tmp_path: Path
) -> None:
    ca = TestCA()
    shop, blog, plain = apps("shop-1"), apps("blog-1"), apps("plain-1")
    http_port, https_port = free_port(), free_port()
    spec = LoadBalancerSpec(
        "127.0.0.1",
        http_port,
        (
            Backend("shop", ("shop.test", "www.shop.test"), CHECK, (shop.server(),), https=True),
            Backend("blog", ("blog.test",), CHECK, (blog.server(),), https=True, http=False),
            Backend("plain", ("plain.test",), CHECK, (plain.server(),)),
        ),
        https_port=https_port,
        certificates=(
            stored(tmp_path, "shop", ca.issue("shop.test", "www.shop.test")),
            stored(tmp_path, "blog", ca.issue("blog.test")),
        ),
    )
    lb.start(spec)

    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_context(ca, version=version)  # verifies the name against the CA
        for host, body in (
            ("shop.test", "shop-1"),
            ("www.shop.test", "shop-1"),
            ("blog.test", "blog-1"),
        ):
            status, text, _ = get(host, https_port, ctx)
            assert (status, text) == (200, body), (version, host)

    # HTTP/2 when the client offers it, HTTP/1.1 otherwise
    _, tls = handshake(https_port, "shop.test", client_context(ca, alpn=("h2", "http/1.1")))
    assert tls.selected_alpn_protocol() == "h2"
    tls.close()
    _, tls = handshake(https_port, "shop.test", client_context(ca, alpn=("http/1.1",)))
    assert tls.selected_alpn_protocol() == "http/1.1"
    tls.close()

    # a name no certificate covers gets the default one, never another host's
    cert, tls = handshake(https_port, "plain.test", client_context(None))
    tls.close()
    assert common_name(cert) == "beanpole.invalid"
    # an environment without an HTTPS listener does not answer on it...
    status, text, _ = get("plain.test", https_port, client_context(None))
    assert (status, text.strip()) == (404, NO_ROUTE_BODY)
    # ...and one whose HTTP listener is off does not answer on HTTP
    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}") as client:
        assert client.get("/", headers={"Host": "blog.test"}).status_code == 404
        assert client.get("/", headers={"Host": "plain.test"}).text == "plain-1"
        assert client.get("/", headers={"Host": "shop.test"}).text == "shop-1"


def test_certificates_are_added_renewed_and_removed_without_a_reload_or_a_failed_request(
    lb: HAProxy, apps: Callable[[str], App], tmp_path: Path
) -> None:
    ca = TestCA()
    shop = apps("shop-1")
    http_port, https_port = free_port(), free_port()
    first = ca.issue("shop.test")

    def spec(*certificates: Certificate) -> LoadBalancerSpec:
        return LoadBalancerSpec(
            "127.0.0.1",
            http_port,
            (Backend("shop", ("shop.test", "new.test"), CHECK, (shop.server(),), https=True),),
            https_port=https_port,
            certificates=certificates,
        )

    lb.start(spec(stored(tmp_path, "shop", first)))
    pid = worker_pid(lb)
    assert served_serial(https_port, "shop.test") == first.serial

    with HTTPSLoad("shop.test", https_port, client_context(None), kept=2, new=1) as load:
        # a second certificate, for another name: added at run time
        other = ca.issue("new.test")
        lb.apply(spec(stored(tmp_path, "shop", first), stored(tmp_path, "new", other)))
        assert served_serial(https_port, "new.test") == other.serial
        status, text, _ = get("new.test", https_port, client_context(ca))
        assert (status, text) == (200, "shop-1")
        # renewal: the same name and file, a new certificate
        for _ in range(3):
            renewed = ca.issue("shop.test")
            lb.apply(spec(stored(tmp_path, "shop", renewed), stored(tmp_path, "new", other)))
            assert served_serial(https_port, "shop.test") == renewed.serial
        # removal: the name falls back to the default certificate
        lb.apply(spec(stored(tmp_path, "shop", renewed)))
        cert, tls = handshake(https_port, "new.test", client_context(None))
        tls.close()
        assert common_name(cert) == "beanpole.invalid"
    assert worker_pid(lb) == pid, "a certificate change reloaded HAProxy"
    assert load.done > 0
    assert load.failures == []
    # the files on disk say the same, so a reload (or a restart) keeps the truth
    assert lb.paths.crt_list.read_text() == f"{tmp_path / 'shop.pem'}\n"


def test_redirect_to_https_and_a_tls13_only_policy(
    lb: HAProxy, apps: Callable[[str], App], tmp_path: Path
) -> None:
    ca = TestCA()
    shop = apps("shop-1")
    http_port, https_port = free_port(), free_port()
    lb.start(
        LoadBalancerSpec(
            "127.0.0.1",
            http_port,
            (
                Backend(
                    "shop",
                    ("shop.test",),
                    CHECK,
                    (shop.server(),),
                    https=True,
                    redirect_https=True,
                    min_tls="TLSv1.3",
                ),
                Backend("blog", ("blog.test",), CHECK, (apps("blog-1").server(),), https=True),
            ),
            https_port=https_port,
            certificates=(
                stored(tmp_path, "shop", ca.issue("shop.test"), "TLSv1.3"),
                stored(tmp_path, "blog", ca.issue("blog.test")),
            ),
        )
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}") as client:
        answer = client.get("/a/b?c=1", headers={"Host": f"shop.test:{http_port}"})
    assert answer.status_code == 301
    assert answer.headers["location"] == f"https://shop.test:{https_port}/a/b?c=1"
    status, text, _ = get(
        "shop.test", https_port, client_context(ca, version=ssl.TLSVersion.TLSv1_3)
    )
    assert (status, text) == (200, "shop-1")
    with pytest.raises(ssl.SSLError):
        get("shop.test", https_port, client_context(ca, version=ssl.TLSVersion.TLSv1_2))
    # TLS 1.2 for another name's certificate, then shop's Host: refused all the same
    tls12 = client_context(None, version=ssl.TLSVersion.TLSv1_2)
    conn = HTTPSConnection("blog.test", https_port, tls12)
    conn.request("GET", "/", headers={"Host": "shop.test"})
    assert conn.getresponse().status == 421
    conn.close()
    assert get("blog.test", https_port, tls12)[:2] == (200, "blog-1")
