"""`core.certificates`: what a certificate, its key and chain must be to be stored, and the
facts read from them (certificates are made here with `cryptography`, never read from disk)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from beanpole.core.certificates import (
    DEFAULT_NAME,
    MAX_PEM_BYTES,
    CertificateRecord,
    check_name,
    covers,
    parse,
    referenced_names,
    self_signed,
)
from beanpole.core.errors import InvalidInput

NOW = dt.datetime.now(dt.UTC)
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_cert(
    key: Key,
    names: tuple[str, ...] = ("shop.example.com", "www.shop.example.com"),
    *,
    common_name: str = "shop.example.com",
    issuer: tuple[x509.Name, Key] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    ca: bool = False,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_name, signer = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(0xBEA9)
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: Key, password: bytes | None = None, *, traditional: bool = False) -> str:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    form = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if traditional
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, form, encryption).decode()


@pytest.mark.parametrize("make_key", [rsa_key, ec_key], ids=["rsa", "ecdsa"])
def test_a_certificate_and_its_key_give_their_facts_and_one_pem(make_key):
    key = make_key()
    cert = make_cert(key)
    # an RSA key in its traditional form ("BEGIN RSA PRIVATE KEY") is taken as well
    facts = parse(cert_pem(cert), key_pem(key, traditional=make_key is rsa_key))
    assert facts.domains == ("shop.example.com", "www.shop.example.com")
    der = cert.public_bytes(serialization.Encoding.DER)
    assert facts.fingerprint == hashlib.sha1(der).hexdigest().upper()
    assert facts.serial == "BEA9"
    assert facts.not_after == cert.not_valid_after_utc
    assert facts.not_before == cert.not_valid_before_utc
    assert facts.not_after.tzinfo is not None
    # leaf first, then the key, as HAProxy loads it; the key always in PKCS#8
    assert facts.pem.startswith(cert_pem(cert))
    assert facts.pem.endswith(key_pem(key))
    assert facts.pem.count("-----BEGIN CERTIFICATE-----") == 1
    assert facts.days_left(NOW) in (89, 90)
    assert not facts.expiring(NOW)


def test_the_chain_follows_the_leaf_and_precedes_the_key():
    ca_key, leaf_key = ec_key(), ec_key()
    ca = make_cert(ca_key, (), common_name="Test CA", ca=True)
    leaf = make_cert(leaf_key, issuer=(ca.subject, ca_key))
    facts = parse(cert_pem(leaf), key_pem(leaf_key), cert_pem(ca))
    assert facts.pem == cert_pem(leaf) + cert_pem(ca) + key_pem(leaf_key)
    # a chain given inside the certificate file lands in the same order
    assert parse(cert_pem(leaf) + cert_pem(ca), key_pem(leaf_key)).pem == facts.pem


def test_a_key_of_another_certificate_is_refused():
    with pytest.raises(InvalidInput, match=r"does not belong to the certificate \(--cert\)"):
        parse(cert_pem(make_cert(ec_key())), key_pem(ec_key()))
    with pytest.raises(InvalidInput, match="does not belong"):
        parse(cert_pem(make_cert(rsa_key())), key_pem(ec_key()))


@pytest.mark.parametrize(
    ("cert", "key", "chain", "message"),
    [
        ("hello", None, "", r"certificate \(--cert\) is not PEM"),
        ("", None, "", r"certificate \(--cert\) is not PEM"),
        (None, "hello", "", r"private key \(--key\) is not a PEM private key"),
        (
            None,
            None,
            "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n",
            r"certificate \(--chain\) is not PEM",
        ),
    ],
    ids=["cert-not-pem", "cert-empty", "key-not-pem", "chain-not-pem"],
)
def test_text_that_is_not_pem_is_refused_naming_its_option(cert, key, chain, message):
    good_key = ec_key()
    cert = cert_pem(make_cert(good_key)) if cert is None else cert
    key = key_pem(good_key) if key is None else key
    with pytest.raises(InvalidInput, match=message):
        parse(cert, key, chain)


def test_a_key_given_for_the_certificate_in_its_place_is_not_pem():
    key = ec_key()
    with pytest.raises(InvalidInput, match=r"--cert\) is not PEM"):
        parse(key_pem(key), key_pem(key))


def test_an_encrypted_key_is_refused_saying_how_to_decrypt_it():
    key = ec_key()
    with pytest.raises(InvalidInput, match=r"encrypted.*openssl pkey"):
        parse(cert_pem(make_cert(key)), key_pem(key, b"secret"))


def test_a_key_haproxy_cannot_serve_is_refused():
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(InvalidInput, match="RSA or ECDSA"):
        parse(cert_pem(make_cert(key)), key_pem(key))


def test_an_expired_certificate_is_refused_with_its_date():
    key = ec_key()
    old = make_cert(
        key,
        not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2020, 5, 1, tzinfo=dt.UTC),
    )
    with pytest.raises(InvalidInput, match="expired on 2020-05-01: give a renewed one"):
        parse(cert_pem(old), key_pem(key))
    # checked against the time given, too
    fresh = make_cert(key)
    with pytest.raises(InvalidInput, match="expired"):
        parse(cert_pem(fresh), key_pem(key), now=NOW + dt.timedelta(days=365))


def test_a_certificate_naming_no_host_is_refused():
    key = ec_key()
    nameless = make_cert(key, (), common_name="localhost")  # no SAN; a CN with no dot
    with pytest.raises(InvalidInput, match="names no host"):
        parse(cert_pem(nameless), key_pem(key))


def test_without_dns_names_the_common_name_is_the_domain():
    key = ec_key()
    old_style = make_cert(key, (), common_name="Legacy.Example.com")
    assert parse(cert_pem(old_style), key_pem(key)).domains == ("legacy.example.com",)


def test_names_are_lower_case_and_given_once():
    key = ec_key()
    cert = make_cert(key, ("Shop.Example.com", "shop.example.com", "*.Example.com"))
    assert parse(cert_pem(cert), key_pem(key)).domains == ("shop.example.com", "*.example.com")


def test_a_pem_too_large_for_haproxy_is_refused():
    ca_key, leaf_key = rsa_key(), rsa_key()
    ca = make_cert(ca_key, (), common_name="Test CA", ca=True)
    leaf = make_cert(leaf_key, issuer=(ca.subject, ca_key))
    chain = cert_pem(ca) * (MAX_PEM_BYTES // len(cert_pem(ca)) + 1)
    with pytest.raises(InvalidInput, match=f"at most {MAX_PEM_BYTES} fit"):
        parse(cert_pem(leaf), key_pem(leaf_key), chain)


def test_a_wildcard_covers_one_label_only():
    domains = ("*.example.com", "example.org")
    assert covers(domains, "shop.example.com")
    assert covers(domains, "SHOP.Example.COM")
    assert covers(domains, "example.org")
    assert not covers(domains, "example.com")  # the wildcard needs a label
    assert not covers(domains, "a.shop.example.com")  # one label deep
    assert not covers(domains, "shop.example.org")
    assert not covers(("shop.example.com",), "www.shop.example.com")


def test_referenced_names_read_names_and_arns():
    assert referenced_names("arn:aws:acm:us-east-1:123456789012:certificate/shop") == ("shop",)
    assert referenced_names("arn:aws:iam::123456789012:server-certificate/web/blog") == ("blog",)
    assert referenced_names(" shop , blog,shop,, arn:aws:acm:r:1:certificate/blog ") == (
        "shop",
        "blog",
    )
    assert referenced_names("") == ()
    with pytest.raises(InvalidInput, match="is not valid"):
        referenced_names("shop, bad name")
    with pytest.raises(InvalidInput, match="is not valid"):
        referenced_names("arn:aws:acm:us-east-1:123456789012:certificate/")


@pytest.mark.parametrize("name", ["shop", "shop-example-com", "a", "x.y_z", "A1" * 32])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-shop", "shop.", "a b", "../etc", "x" * 65, "shop/x"])
def test_bad_names_are_refused_with_the_rule(name):
    with pytest.raises(InvalidInput, match="1-64 letters, digits"):
        check_name(name)


def test_the_default_self_signed_certificate_parses_back():
    pem = self_signed()
    cert, _, key = pem.partition("-----BEGIN PRIVATE KEY-----")
    facts = parse(cert, "-----BEGIN PRIVATE KEY-----" + key)
    assert facts.domains == (DEFAULT_NAME,)
    assert facts.days_left(NOW) >= 3649
    other = self_signed("other.test", days=10)
    cert, _, key = other.partition("-----BEGIN PRIVATE KEY-----")
    facts = parse(cert, "-----BEGIN PRIVATE KEY-----" + key)
    assert (facts.domains, facts.days_left(dt.datetime.now(dt.UTC))) == (("other.test",), 9)


def test_a_record_counts_whole_days_and_warns_within_thirty():
    now = 1_700_000_000.0
    record = CertificateRecord(
        "shop", ("shop.example.com",), now - 10, now + 30 * 86400, "AB", "1", now, now
    )
    assert (record.days_left(now), record.expiring(now)) == (30, False)
    assert (record.days_left(now + 1), record.expiring(now + 1)) == (29, True)
    assert record.days_left(now + 31 * 86400) < 0


def test_an_rsa_key_shorter_than_openssl_takes_is_refused():
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidInput, match="RSA of 1024 bits"):
        parse(cert_pem(make_cert(weak)), key_pem(weak), now=NOW)
