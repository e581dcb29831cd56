"""Which host names can be an environment's domains (`core.domains`)."""

from __future__ import annotations

import time

import pytest

from beanpole.core.domains import check_domain
from beanpole.core.errors import InvalidInput
from beanpole.core.lb.desired import desired_spec
from beanpole.core.model import Environment, EnvStatus, Health


@pytest.mark.parametrize(
    ("given", "domain"),
    [
        ("shop.example.com", "shop.example.com"),
        ("Shop.Example.COM.", "shop.example.com"),
        (" xn--bcher-kva.example ", "xn--bcher-kva.example"),
        ("a-b.c-d.example.org", "a-b.c-d.example.org"),
    ],
)
def test_a_host_name_is_kept_in_lower_case_without_its_trailing_dot(given, domain):
    assert check_domain(given, ("localhost",)) == domain


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("https://shop.example.com", "is not a host name"),
        ("shop.example.com:8080", "is not a host name"),
        ("shop", "is not a host name"),
        ("-shop.example.com", "is not a host name"),
        ("shop..example.com", "is not a host name"),
        ("a" * 64 + ".example.com", "is not a host name"),
        ("*.example.com", "is a wildcard"),
        ("10.0.0.1", "is an IP address"),
        ("shop.localhost", "is under the server's own domain localhost"),
        ("localhost.localhost", "is under the server's own domain localhost"),
        ("shop.us-east-1.elasticbeanstalk.com", "own domain us-east-1.elasticbeanstalk.com"),
    ],
)
def test_what_cannot_be_a_domain_is_refused_naming_why(given, message):
    with pytest.raises(InvalidInput) as refused:
        check_domain(given, ("localhost", "us-east-1.elasticbeanstalk.com"))
    assert message in refused.value.message


def test_an_environments_domains_route_to_its_backend_after_its_cname():
    shop = Environment(
        "shop", "app", "shop", EnvStatus.READY, Health.GREEN, "v1", {}, 1, time.time(), 0.0,
        id="e-shop",
    )  # fmt: skip
    spec = desired_spec(
        bind_host="127.0.0.1",
        port=80,
        domain="localhost",
        environments=[shop],
        instances=[],
        domains={"e-shop": ["shop.example.com", "www.shop.example"], "e-gone": ["x.example"]},
    )
    assert spec.backends[0].hosts == ("shop.localhost", "shop.example.com", "www.shop.example")
