"""Domains (issue 14, part 2): host names an environment answers on besides its CNAME,
routed by the real HAProxy; they stay with their environment through a swap."""

from __future__ import annotations

import http.client
import json

import pytest

from harness import Beanpole

pytestmark = pytest.mark.slow


def get_host(bp: Beanpole, host: str) -> tuple[int, str]:
    """A GET through the load balancer naming ``host`` (as a browser would, port and all)."""
    conn = http.client.HTTPConnection("127.0.0.1", bp.lb_port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": f"{host}:{bp.lb_port}"})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def greeting(bp: Beanpole, host: str) -> str:
    status, body = get_host(bp, host)
    assert status == 200, (host, status, body)
    return str(json.loads(body)["greeting"])


def test_domains_route_stay_through_a_swap_and_are_claimed_once(beanpole, pid_app):
    bp = beanpole
    bp.cli("create", "blue", "--app", "shop", "--source", str(pid_app), "--env", "GREETING=blue")
    bp.cli("create", "green", "--app", "shop", "--source", str(pid_app), "--env", "GREETING=green")
    assert get_host(bp, "shop.example.com")[0] == 404  # no environment has it yet

    added = bp.cli("domains", "add", "blue", "Shop.Example.com.")
    assert "blue answers on: shop.example.com" in added.stdout
    assert greeting(bp, "shop.example.com") == "blue"
    assert greeting(bp, "blue.localhost") == "blue"  # the CNAME still answers
    assert bp.status("blue")["domains"] == ["shop.example.com"]
    events = bp.cli("events", "blue").stdout
    assert "shop.example.com now routes to environment blue." in events

    taken = bp.cli("domains", "add", "green", "shop.example.com", check=False)
    assert taken.returncode != 0
    assert (
        "shop.example.com already routes to environment blue. Remove it there first: "
        "beanpole domains remove blue shop.example.com"
    ) in taken.stderr
    for bad, why in (
        ("https://shop.example.com/", "is not a host name"),
        ("*.example.com", "is a wildcard"),
        ("green.localhost", "is under the server's own domain localhost"),
    ):
        refused = bp.cli("domains", "add", "green", bad, check=False)
        assert refused.returncode != 0 and why in refused.stderr, refused.stderr

    # a swap exchanges the CNAMEs; the domain stays with its environment
    bp.cli("swap", "blue", "green")
    assert greeting(bp, "blue.localhost") == "green"
    assert greeting(bp, "shop.example.com") == "blue"
    listed = bp.cli("domains", "list", "blue").stdout
    assert "shop.example.com" in listed and "green.localhost" in listed  # its CNAME now

    bp.cli("domains", "remove", "blue", "shop.example.com")
    assert get_host(bp, "shop.example.com")[0] == 404
    bp.cli("domains", "add", "blue", "www.example.com")
    bp.cli("terminate", "blue")  # its domains are released with it
    bp.cli("domains", "add", "green", "www.example.com")
    assert greeting(bp, "www.example.com") == "green"
