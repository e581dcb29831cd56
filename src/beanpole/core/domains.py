"""Domains: host names an environment answers on besides its CNAME (pure).

An environment's CNAME is a name under the server's own domain (``shop.localhost``, or
``shop.us-east-1.elasticbeanstalk.com`` on Elastic Beanstalk's API). A domain is any other
host name the load balancer routes to it (``shop.example.com``): the operator points that
name's DNS at the load balancer. It stays with its environment when CNAMEs are swapped,
and is released when the environment is terminated.
"""

from __future__ import annotations

import re

from beanpole.core.errors import InvalidInput

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_DOMAINS = 100  # per environment: each is a line of the load balancer's host map


def normal(text: str) -> str:
    """A host name as routes and records hold it: lower case, no trailing dot."""
    return text.strip().lower().removesuffix(".")


def check_domain(text: str, own_domains: tuple[str, ...] = ()) -> str:
    """``text`` as a domain the load balancer can route (lower case, no trailing dot), or
    an `InvalidInput` naming what to change. ``own_domains`` are the server's domains,
    under which names are CNAMEs, not domains."""
    domain = normal(text)
    labels = domain.split(".")
    if domain.startswith("*."):
        raise InvalidInput(
            f"{text!r} is a wildcard: give each host name it should answer on "
            "(beanpole domains add ENV shop.example.com)."
        )
    if len(domain) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise InvalidInput(
            f"{text!r} is not a host name: use labels of letters, digits and hyphens "
            "separated by dots, such as shop.example.com (no scheme, port or path)."
        )
    if labels[-1].isdigit():
        raise InvalidInput(
            f"{text!r} is an IP address: an environment answers on host names; clients "
            "reach an address through its CNAME or a domain."
        )
    for own in own_domains:
        if own and (domain == own or domain.endswith(f".{own}")):
            raise InvalidInput(
                f"{domain} is under the server's own domain {own}, where names are "
                "environments' CNAMEs: choose the CNAME with --cname (or beanpole swap), "
                "or a domain outside it."
            )
    return domain
