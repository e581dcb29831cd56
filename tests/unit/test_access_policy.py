"""Who may call which route (core.access): roles, targets, tokens."""

from __future__ import annotations

import pytest

from beanpole.core.access import (
    Principal,
    Role,
    Target,
    check_application,
    check_role,
    matches,
    new_token,
    parse_token,
    required_role,
    target_of,
)
from beanpole.core.errors import Forbidden


@pytest.mark.parametrize(
    ("method", "route", "role"),
    [
        ("GET", "/api/v1/environments/{name}", Role.READ),
        ("GET", "/api/v1/certificates", Role.READ),
        ("POST", "/api/v1/certificates", Role.ADMIN),
        ("POST", "/api/v1/environments/{name}/deploy", Role.DEPLOY),
        ("DELETE", "/api/v1/environments/{name}/domains/{domain}", Role.DEPLOY),
        ("GET", "/api/v1/tokens", Role.ADMIN),
        ("GET", "/api/v1/audit", Role.ADMIN),
        ("GET", "/api/v1/keys", Role.ADMIN),
        ("DELETE", "/api/v1/users/{name}", Role.ADMIN),
        ("GET", "/metrics", Role.READ),
    ],
)
def test_each_route_needs_the_least_role_that_may_call_it(method, route, role):
    assert required_role(method, route) is role


def test_roles_are_ordered_and_a_refusal_names_the_role_needed():
    reader = Principal("token 1", Role.READ)
    check_role(Principal("server token", Role.ADMIN), Role.DEPLOY)
    with pytest.raises(Forbidden, match=r"needs deploy.*--role deploy"):
        check_role(reader, Role.DEPLOY)


def test_targets_come_from_the_path_and_the_body_where_it_names_them():
    assert target_of("GET", "/api/v1/environments", {}, None).listing
    assert target_of("POST", "/api/v1/environments", {}, {"application": "a"}) == Target(
        application="a"
    )
    swap = target_of("POST", "/api/v1/environments/{name}/swap", {"name": "x"}, {"other": "y"})
    assert swap.environments == ("x", "y")
    assert target_of("GET", "/api/v1/operations/{op_id}", {"op_id": "7"}, None).operation == 7
    assert target_of("GET", "/api/v1/certificates", {}, None).server_wide


def test_a_limited_token_reaches_its_application_only():
    shop = Principal("token 2", Role.DEPLOY, application="shop")
    check_application(shop, Target(application="shop"), [])
    check_application(shop, Target(environments=("web",)), ["shop"])
    check_application(shop, Target(listing=True), [])
    for target, apps in (
        (Target(application="blog"), []),
        (Target(environments=("web", "other")), ["shop", "blog"]),
        (Target(environments=("gone",)), []),  # unknown: not sure it is ours
        (Target(server_wide=True), []),
    ):
        with pytest.raises(Forbidden, match="limited to application shop"):
            check_application(shop, target, apps)
    check_application(Principal("server token", Role.ADMIN), Target(server_wide=True), [])


def test_tokens_parse_and_match_their_hash_only():
    token_id, token, stored = new_token()
    parsed = parse_token(token)
    assert parsed is not None and parsed[0] == token_id
    assert matches(parsed[1], stored) and token not in stored
    assert not matches(parsed[1] + "x", stored)
    assert parse_token("not-a-token") is None and parse_token("bpt_zz_x") is None
