"""Listener rules (`core.listener_rules`): settings checked, rules and processes read, and the
load balancer's backends and ``use_backend`` lines made from them (pure)."""

import time
from pathlib import Path

import pytest

from beanpole.core import listener_rules
from beanpole.core.errors import InvalidInput
from beanpole.core.lb.config import HAProxyPaths, render_config, structural_key
from beanpole.core.lb.desired import desired_spec
from beanpole.core.model import Environment, EnvStatus, Health, Instance, InstanceState
from beanpole.core.settings import inert
from beanpole.core.settings.resolve import validate

PROC = "aws:elasticbeanstalk:environment:process"
RULE = "aws:elbv2:listenerrule"
API = {
    f"{PROC}:api:Port": "5100",
    f"{PROC}:api:HealthCheckPath": "/api/health",
    f"{RULE}:api:PathPatterns": "/api/*, /v2/*",
    f"{RULE}:api:Process": "api",
    f"{RULE}:api:Priority": "2",
    f"{RULE}:admin:HostHeaders": "Admin.Example.com",
    f"{RULE}:admin:Process": "api",
    f"{RULE}:admin:Priority": "1",
}


def env(settings):
    return Environment(
        "shop", "app", "shop", EnvStatus.READY, Health.GREEN, "v1", settings, 1, 0.0, time.time()
    )


def inst(id_, host):
    return Instance(
        id_, "shop", "v1", "k", 1, 8000, InstanceState.IN_SERVICE, time.time(), host=host
    )


def test_options_are_checked_and_normalised():
    values = validate(API)
    assert values[f"{RULE}:api:PathPatterns"] == "/api/*,/v2/*"
    assert values[f"{RULE}:admin:HostHeaders"] == "admin.example.com"
    listener_rules.check(values)
    for bad, named in (
        ({f"{RULE}:api:Priority": "0"}, "between 1 and 1000"),
        ({f"{RULE}:api:PathPatterns": "api/*"}, "start it with '/'"),
        ({f"{RULE}:api:PathPatterns": "/a b"}, "path pattern"),
        ({f"{RULE}:api:HostHeaders": "a,b,c,d,e,f"}, "at most 5"),
        ({f"{RULE}:api:Colour": "red"}, "Known options"),
        ({f"{PROC}:api:Port": "70000"}, "between 1 and 65535"),
        ({f"{PROC}:api:MatcherHTTPCode": "2000"}, "MatcherHTTPCode"),
        ({f"{PROC}:a.b:Port": "1"}, "Process name"),
    ):
        with pytest.raises(InvalidInput, match=named):
            validate(bad)


def test_what_only_the_whole_shows_is_refused_with_the_fix():
    with pytest.raises(InvalidInput, match=f"set {PROC}:worker Port"):
        listener_rules.check({f"{RULE}:w:PathPatterns": "/w/*", f"{RULE}:w:Process": "worker"})
    with pytest.raises(InvalidInput, match="no condition"):
        listener_rules.check({f"{RULE}:w:Priority": "3"})
    with pytest.raises(InvalidInput, match="both have Priority 1"):
        listener_rules.check(
            {**API, f"{RULE}:api:Priority": "1"}  # admin has 1 too, on both listeners
        )
    # on different listeners the same priority is fine
    listener_rules.check(
        {
            **API,
            f"{RULE}:api:Priority": "1",
            "aws:elbv2:listener:default:Rules": "admin",
            "aws:elbv2:listener:443:Rules": "api",
        }
    )
    with pytest.raises(InvalidInput, match="names the rule 'nope'"):
        listener_rules.check({**API, "aws:elbv2:listener:443:Rules": "nope"})


def test_rules_attach_to_the_listeners_that_name_them_and_unnamed_ones_to_both():
    found = listener_rules.rules(validate({**API, "aws:elbv2:listener:443:Rules": "api"}))
    assert [(r.name, r.http, r.https) for r in found] == [
        ("admin", True, True),
        ("api", False, True),
    ]


def test_named_process_options_have_meaning_and_the_others_are_kept_as_inert():
    keys = [*API, f"{PROC}:api:Protocol", "aws:elbv2:listener:default:Rules"]
    assert [k for k in keys if inert.is_inert(k)] == [f"{PROC}:api:Protocol"]


def test_a_process_gets_a_backend_of_each_isolated_instances_address_and_its_port():
    spec = desired_spec(
        bind_host="127.0.0.1",
        port=8080,
        domain="localhost",
        environments=[env(validate(API))],
        instances=[inst("i-a", "10.213.0.2"), inst("i-b", "10.213.0.6")],
    )
    shop, api = spec.backends
    assert api.name == "shop.api" and api.hosts == ()
    assert [(s.address, s.port) for s in api.servers] == [
        ("10.213.0.2", 5100),
        ("10.213.0.6", 5100),
    ]
    assert api.check.path == "/api/health" and api.check_host == "shop.localhost"
    assert [r.name for r in shop.rules] == ["admin", "api"]  # by priority
    cfg = render_config(spec, HAProxyPaths.under(Path("/tmp/bp-rules")))
    lines = [line.strip() for line in cfg.splitlines()]
    admin = lines.index(
        "use_backend env-shop.api if { var(txn.bp_be) -m str env-shop } "
        "{ req.hdr(host),lower,field(1,:) -m reg ^(admin[.]example[.]com)$ }"
    )
    api_line = lines.index(
        "use_backend env-shop.api if { var(txn.bp_be) -m str env-shop } "
        "{ path -m reg ^(/api/.*|/v2/.*)$ }"
    )
    default = next(i for i, line in enumerate(lines) if line.startswith("use_backend %["))
    assert admin < api_line < default
    assert "backend env-shop.api" in lines
    # a process's request lines are sampled as its environment's
    assert "set-var proc.bp_w_shop int(1)" in lines
    assert not any("bp_w_shop.api" in line for line in lines)


def test_instances_on_the_hosts_network_have_no_process_server_and_rules_change_the_key():
    base = dict(bind_host="127.0.0.1", port=8080, domain="localhost")
    shared = desired_spec(
        **base, environments=[env(validate(API))], instances=[inst("i-a", "127.0.0.1")]
    )
    assert shared.backends[1].servers == ()
    plain = desired_spec(**base, environments=[env({})], instances=[inst("i-a", "127.0.0.1")])
    assert structural_key(shared) != structural_key(plain)
    moved = desired_spec(
        **base,
        environments=[env(validate({**API, f"{RULE}:api:PathPatterns": "/other/*"}))],
        instances=[inst("i-a", "127.0.0.1")],
    )
    assert structural_key(moved) != structural_key(shared)
