"""HTTPS (issue 14, part 1): certificates Beanpole stores, served by the real HAProxy by SNI
on the server's HTTPS port, for an environment's CNAME and its domains; renewed under load
with no failed request; HTTP redirected when asked to."""

from __future__ import annotations

import http.client
import json
import ssl

import pytest

from tlskit import HTTPSLoad, TestCA, client_context, get, served_serial

from harness import Beanpole

pytestmark = pytest.mark.slow

HTTPS = "aws:elbv2:listener:443"
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/shop"


def test_an_environment_answers_over_tls_on_its_cname_and_domain_and_renewal_fails_nothing(
    beanpole: Beanpole, pid_app, tmp_path
) -> None:
    bp = beanpole
    status = json.loads(bp.cli("server", "status", "--json").stdout)
    assert status["https_port"] == bp.https_port
    port = bp.https_port
    ca = TestCA()
    first = ca.issue("shop.localhost", "shop.example.com")
    cert, key = first.write(tmp_path, "shop")

    # a listener naming a certificate that is not stored is refused, as is a bad one
    refused = bp.cli(
        "create", "shop", "--app", "shop", "--source", str(pid_app),
        "--setting", f"{HTTPS}:SSLCertificateArns={ARN}", check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "Certificate 'shop'" in refused.stderr and "beanpole certs add shop" in refused.stderr
    wrong = ca.issue("other.localhost")
    wrong_cert, _ = wrong.write(tmp_path, "wrong")
    mismatch = bp.cli(
        "certs", "add", "shop", "--cert", str(wrong_cert), "--key", str(key), check=False
    )
    assert mismatch.returncode != 0 and "does not belong to the certificate" in mismatch.stderr

    bp.cli("certs", "add", "shop", "--cert", str(cert), "--key", str(key))
    bp.cli(
        "create", "shop", "--app", "shop", "--source", str(pid_app),
        "--setting", f"{HTTPS}:SSLCertificateArns={ARN}",
    )  # fmt: skip
    bp.cli("domains", "add", "shop", "shop.example.com")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_context(ca, version=version)  # checks the name against the test CA
        for host in ("shop.localhost", "shop.example.com"):
            code, body, _ = get(host, port, ctx)
            assert code == 200, (host, version, body)
            assert json.loads(body)["proto"] == "https"
    code, body = _http_get(bp, "shop.localhost")
    assert code == 200 and json.loads(body)["proto"] == "http"

    # certs list: what each covers, who uses it, and a warning for one about to expire
    soon = ca.issue("soon.example.com", days=10)
    soon_cert, soon_key = soon.write(tmp_path, "soon")
    bp.cli("certs", "add", "soon", "--cert", str(soon_cert), "--key", str(soon_key))
    listed = bp.cli("certs", "list")
    assert "shop.example.com" in listed.stdout and "shop" in listed.stdout
    assert "soon" in listed.stdout + listed.stderr and "expires in" in listed.stdout + listed.stderr
    rows = {
        c["name"]: c for c in json.loads(bp.cli("certs", "list", "--json").stdout)["certificates"]
    }
    assert rows["shop"]["environments"] == ["shop"] and rows["soon"]["expiring"] is True
    assert "PRIVATE KEY" not in bp.cli("certs", "list", "--json").stdout
    in_use = bp.cli("certs", "remove", "shop", check=False)
    assert in_use.returncode != 0 and "shop" in in_use.stderr
    bp.cli("certs", "remove", "soon")

    # renewal under a keep-alive load (and new connections): nothing fails
    with HTTPSLoad("shop.localhost", port, client_context(ca), kept=2, new=1) as load:
        for _ in range(2):
            renewed = ca.issue("shop.localhost", "shop.example.com")
            cert, key = renewed.write(tmp_path, "shop")
            added = bp.cli("certs", "add", "shop", "--cert", str(cert), "--key", str(key))
            assert "renewed" in added.stdout.lower()
            assert served_serial(port, "shop.example.com") == renewed.serial
    assert load.done > 0 and load.failures == [], load.failures[:5]

    # HTTP to HTTPS, when asked
    bp.cli("config", "shop", "beanpole:proxy:RedirectHTTPToHTTPS=true")
    conn = http.client.HTTPConnection("127.0.0.1", bp.lb_port, timeout=10)
    conn.request("GET", "/a?b=1", headers={"Host": f"shop.localhost:{bp.lb_port}"})
    response = conn.getresponse()
    conn.close()
    assert response.status == 301
    assert response.getheader("Location") == f"https://shop.localhost:{port}/a?b=1"


def _http_get(bp: Beanpole, host: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", bp.lb_port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": f"{host}:{bp.lb_port}"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()
