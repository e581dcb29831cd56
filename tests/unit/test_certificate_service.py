"""The certificates service (real SQLite store and home, a load balancer that can refuse):
the PEM file and the row change together, a refused change leaves both as they were, and a
certificate an environment's HTTPS listener names cannot be removed."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from beanpole.adapters.store.db import Store
from beanpole.core.errors import ComponentError, Conflict, InvalidInput, NotFound
from beanpole.core.model import EnvStatus
from beanpole.home import Home
from beanpole.services.certificates import Certificates

ARNS = "aws:elbv2:listener:443:SSLCertificateArns"


class LoadBalancer:
    """`Fleet.sync_lb` as the service sees it; ``refuse`` makes the next syncs fail."""

    def __init__(self) -> None:
        self.syncs = 0
        self.refuse = False

    async def sync_lb(self) -> None:
        self.syncs += 1
        if self.refuse:
            raise ComponentError("HAProxy refused certificate 'shop': bad")


@pytest.fixture
def world(tmp_path: Path):
    home = Home(tmp_path / "home")
    home.prepare()
    store = Store(home.db)
    lb = LoadBalancer()
    ops = SimpleNamespace(store=store, fleet=lb)
    yield SimpleNamespace(
        home=home,
        store=store,
        lb=lb,
        certs=Certificates(ops, home),  # type: ignore[arg-type]
    )
    store.close()


def certificate(names: tuple[str, ...] = ("shop.example.com",), days: int = 90) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days, hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    key_text = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_text


def test_adding_writes_an_owner_only_file_and_a_row_then_syncs(world):
    cert, key = certificate(("shop.example.com", "www.example.com"))
    view = asyncio.run(world.certs.add("shop", cert, key))
    assert (view.name, view.renewed, view.environments) == ("shop", False, [])
    assert view.domains == ["shop.example.com", "www.example.com"]
    assert (view.days_left, view.expiring) == (90, False)
    assert view.not_after.endswith("Z") and view.not_after[:4].isdigit()
    assert "PRIVATE" not in view.model_dump_json()  # no key material in any view
    path = world.home.certificate_file("shop")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == cert + key
    assert [p.name for p in path.parent.iterdir()] == ["shop.pem"]  # no temporary left
    assert world.store.certificate("shop").fingerprint == view.fingerprint
    assert world.lb.syncs == 1


def test_adding_a_name_again_renews_it(world):
    first = asyncio.run(world.certs.add("shop", *certificate()))
    created = world.store.certificate("shop").created_at
    cert, key = certificate(("shop.example.com",), days=20)
    second = asyncio.run(world.certs.add("shop", cert, key))
    assert second.renewed and second.fingerprint != first.fingerprint
    assert (second.days_left, second.expiring) == (20, True)
    assert world.store.certificate("shop").created_at == created
    assert world.home.certificate_file("shop").read_text() == cert + key
    listed = asyncio.run(world.certs.list()).certificates
    assert [(c.name, c.fingerprint, c.renewed) for c in listed] == [
        ("shop", second.fingerprint, False)
    ]


def test_a_refused_new_certificate_leaves_nothing_behind(world):
    world.lb.refuse = True
    with pytest.raises(ComponentError, match="HAProxy refused"):
        asyncio.run(world.certs.add("shop", *certificate()))
    assert world.store.certificates() == []
    assert list(world.home.certificate_file("shop").parent.iterdir()) == []
    assert world.lb.syncs == 2  # the change, then putting HAProxy back


def test_a_refused_renewal_keeps_the_previous_certificate(world):
    cert, key = certificate()
    asyncio.run(world.certs.add("shop", cert, key))
    before = world.store.certificate("shop")
    world.lb.refuse = True
    with pytest.raises(ComponentError):
        asyncio.run(world.certs.add("shop", *certificate(("other.example.com",))))
    assert world.store.certificate("shop") == before
    assert world.home.certificate_file("shop").read_text() == cert + key


def test_an_invalid_certificate_or_name_touches_nothing(world):
    cert, _ = certificate()
    with pytest.raises(InvalidInput, match="does not belong"):
        asyncio.run(world.certs.add("shop", cert, certificate()[1]))
    with pytest.raises(InvalidInput, match="is not valid"):
        asyncio.run(world.certs.add("../shop", *certificate()))
    assert world.store.certificates() == [] and world.lb.syncs == 0


def test_environments_naming_a_certificate_are_listed_and_block_its_removal(world):
    asyncio.run(world.certs.add("shop", *certificate()))
    asyncio.run(world.certs.add("blog", *certificate(("blog.example.com",))))
    world.store.ensure_application("app")
    world.store.create_environment("web", "app", "web", {ARNS: "shop"})
    world.store.create_environment(
        "api", "app", "api", {ARNS: "arn:aws:acm:us-east-1:123456789012:certificate/shop"}
    )
    world.store.create_environment("old", "app", "old", {ARNS: "blog"})
    world.store.update_environment("old", status=EnvStatus.TERMINATED)
    listed = {c.name: c.environments for c in asyncio.run(world.certs.list()).certificates}
    assert listed == {"blog": [], "shop": ["api", "web"]}

    with pytest.raises(Conflict) as refused:
        asyncio.run(world.certs.remove("shop"))
    assert str(refused.value.message) == (
        "Certificate shop is used by environment(s) api, web. Change their "
        "aws:elbv2:listener:443 SSLCertificateArns first: beanpole config ENV "
        "aws:elbv2:listener:443:SSLCertificateArns=OTHER-CERTIFICATE"
    )
    assert world.home.certificate_file("shop").exists()

    syncs = world.lb.syncs
    removed = asyncio.run(world.certs.remove("blog"))  # only a terminated environment named it
    assert removed.name == "blog"
    assert [c.name for c in world.store.certificates()] == ["shop"]
    assert not world.home.certificate_file("blog").exists()
    assert world.lb.syncs == syncs + 1
    with pytest.raises(NotFound, match="beanpole certs list"):
        asyncio.run(world.certs.remove("blog"))


def test_a_refused_removal_keeps_the_certificate(world):
    asyncio.run(world.certs.add("shop", *certificate()))
    before = world.store.certificate("shop")
    world.lb.refuse = True
    with pytest.raises(ComponentError):
        asyncio.run(world.certs.remove("shop"))
    assert world.store.certificate("shop") == before
    assert world.home.certificate_file("shop").exists()
