"""`beanpole certs`: what it reads and prints (the server is a stand-in answering views;
tests/e2e covers the whole path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from beanpole.api.views import CertificatesView, CertificateView
from beanpole.cli import main


def view(name: str, days_left: int, environments: tuple[str, ...] = (), **more) -> CertificateView:
    return CertificateView(
        name=name,
        domains=[f"{name}.example.com", f"www.{name}.example.com"],
        not_before="2025-01-01T00:00:00Z",
        not_after="2025-06-01T12:00:00Z",
        days_left=days_left,
        expiring=days_left < 30,
        fingerprint="AB" * 20,
        serial="1F",
        environments=list(environments),
        **more,
    )


class Client:
    def __init__(self) -> None:
        self.added: list[tuple[str, str, str, str]] = []

    def certificates(self) -> CertificatesView:
        return CertificatesView(
            certificates=[view("blog", 12), view("old", -3), view("shop", 200, ("api", "web"))]
        )

    def add_certificate(self, name: str, cert: str, key: str, chain: str = "") -> CertificateView:
        self.added.append((name, cert, key, chain))
        return view(name, 20, renewed=True)

    def remove_certificate(self, name: str) -> CertificateView:
        return view(name, 20)


@pytest.fixture
def client(monkeypatch) -> Client:
    stand_in = Client()
    monkeypatch.setattr(main, "_client", lambda: stand_in)
    return stand_in


def run(*args: str):
    return CliRunner().invoke(main.cli, ["certs", *args], terminal_width=200)


def test_list_shows_a_table_and_warns_of_each_expiring_certificate(client):
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line for line in lines if "days left" in line)
    for column in ("name", "domains", "expires", "days left", "used by"):
        assert column in header
    shop = next(line for line in lines if "shop.example.com" in line)
    for cell in ("shop", "2025-06-01", "200", "api, web"):
        assert cell in shop
    assert lines[-2:] == [
        "Warning: certificate blog expires in 12 days (2025-06-01): renew it with "
        "beanpole certs add blog --cert ... --key ...",
        "Warning: certificate old expired on 2025-06-01: renew it with "
        "beanpole certs add old --cert ... --key ...",
    ]


def test_list_json_is_the_views_without_warnings(client):
    result = run("list", "--json")
    assert result.exit_code == 0 and "Warning" not in result.output
    rows = {c["name"]: c for c in json.loads(result.output)["certificates"]}  # the API's shape
    assert rows["shop"]["environments"] == ["api", "web"] and rows["blog"]["expiring"] is True


def test_add_reads_the_files_and_says_what_it_stored(client, tmp_path: Path):
    (tmp_path / "c.pem").write_text("CERT")
    (tmp_path / "k.pem").write_text("KEY")
    (tmp_path / "ch.pem").write_text("CHAIN")
    result = run(
        "add", "shop", "--cert", str(tmp_path / "c.pem"), "--key", str(tmp_path / "k.pem"),
        "--chain", str(tmp_path / "ch.pem"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert client.added == [("shop", "CERT", "KEY", "CHAIN")]
    assert result.output.splitlines() == [
        "Renewed certificate shop for shop.example.com, www.shop.example.com, valid until "
        "2025-06-01 (20 days left).",
        "Serve it with: beanpole config ENV aws:elbv2:listener:443:SSLCertificateArns=shop",
        "Warning: certificate shop expires in 20 days (2025-06-01): renew it with "
        "beanpole certs add shop --cert ... --key ...",
    ]


def test_add_refuses_a_missing_or_binary_file_before_asking_the_server(client, tmp_path):
    (tmp_path / "k.pem").write_text("KEY")
    missing = run(
        "add", "shop", "--cert", str(tmp_path / "nope.pem"), "--key", str(tmp_path / "k.pem")
    )
    assert missing.exit_code == 2 and "'--cert'" in missing.output
    assert "does not exist" in missing.output
    (tmp_path / "c.der").write_bytes(b"\x30\x82\x01\xff")
    binary = run("add", "shop", "--cert", str(tmp_path / "c.der"), "--key", str(tmp_path / "k.pem"))
    assert binary.exit_code == 2 and "is not PEM text" in binary.output
    assert client.added == []


def test_remove_says_what_it_removed(client):
    result = run("remove", "shop")
    assert result.exit_code == 0 and result.output == "Removed certificate shop.\n"
