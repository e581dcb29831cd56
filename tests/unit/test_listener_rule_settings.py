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


def inst(id_, host, ports=None):
    return Instance(
        id_, "shop", "v1", "k", 1, 8000, InstanceState.IN_SERVICE, time.time(), host=host,
        process_ports={"api": 5100} if ports is None else ports,
    )  # fmt: skip


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
        ({f"{PROC}:web:Port": "8000"}, "web line is the default process"),
        ({f"{PROC}:api:HealthCheckPath": "/h#x"}, "no spaces, quotes or '#'"),
        ({f"{RULE}:api:PathPatterns": "/*a*b*c*d*e"}, "at most 4"),
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
    with pytest.raises(InvalidInput, match="both have Port 5100"):
        listener_rules.check({**API, f"{PROC}:jobs:Port": "5100"})
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
    # a listener Beanpole does not have keeps its Rules as given (Terraform reads them back)
    assert validate({"aws:elbv2:listener:8443:Rules": "a"}) == {
        "aws:elbv2:listener:8443:Rules": "a"
    }


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
        "http-request set-var(txn.bp_rule) str(env-shop.api) if "
        "{ var(txn.bp_be) -m str env-shop } "
        "{ req.hdr(host),lower,field(1,:) -m reg ^(admin[.]example[.]com)$ } "
        "!{ var(txn.bp_rule) -m found }"
    )
    api_line = lines.index(
        "http-request set-var(txn.bp_rule) str(env-shop.api) if "
        "{ var(txn.bp_be) -m str env-shop } { path -m reg ^(/api/.*|/v2/.*)$ } "
        "!{ var(txn.bp_rule) -m found }"
    )
    chosen = lines.index(
        "use_backend %[var(txn.bp_rule)] if { var(txn.bp_rule) -m found } "
        "!{ var(txn.bp_rule) -m str default }"
    )
    by_host = next(i for i, line in enumerate(lines) if line.startswith("use_backend %[req."))
    assert admin < api_line < chosen < by_host
    assert "backend env-shop.api" in lines
    # a process's request lines are sampled as its environment's
    assert "set-var proc.bp_w_shop int(1)" in lines
    assert not any("bp_w_shop.api" in line for line in lines)


def test_only_instances_started_with_the_process_serve_it_at_their_port():
    base = dict(bind_host="127.0.0.1", port=8080, domain="localhost")
    shared = desired_spec(
        **base,
        environments=[env(validate(API))],
        instances=[
            inst("i-a", "127.0.0.1", {}),  # on the host's network, or started before the rule
            inst("i-b", "10.213.0.2", {"api": 5200}),  # started when the port was 5200
        ],
    )
    assert [(s.name, s.port) for s in shared.backends[1].servers] == [("i-b", 5200)]
    plain = desired_spec(**base, environments=[env({})], instances=[inst("i-a", "127.0.0.1")])
    assert structural_key(shared) != structural_key(plain)
    moved = desired_spec(
        **base,
        environments=[env(validate({**API, f"{RULE}:api:PathPatterns": "/other/*"}))],
        instances=[inst("i-a", "127.0.0.1")],
    )
    assert structural_key(moved) != structural_key(shared)


def test_stored_settings_from_before_rules_had_a_meaning_cannot_break_the_balancer():
    stored = {  # kept verbatim when these namespaces were inert
        f"{RULE}:quote:PathPatterns": '/a"b',
        f"{RULE}:empty:Priority": "4",
        f"{PROC}:my.api:Port": "5100",
        f"{RULE}:caps:HostHeaders": "API.Example.com",
        f"{RULE}:caps:Process": "default",
    }
    (rule,) = listener_rules.rules(stored)  # the invalid ones are left out
    assert (rule.name, rule.hosts) == ("caps", ("api.example.com",))
    assert listener_rules.processes(stored) == {}
    spec = desired_spec(
        bind_host="127.0.0.1", port=8080, domain="localhost",
        environments=[env(stored)], instances=[inst("i-a", "10.213.0.2")],
    )  # fmt: skip
    assert [b.name for b in spec.backends] == ["shop"]


def test_a_rule_to_the_default_process_leaves_its_requests_to_static_files_and_the_app():
    settings = validate(
        {
            **API,
            f"{RULE}:assets:PathPatterns": "/api/static/*",
            f"{RULE}:assets:Priority": "1",  # before api's /api/*
            f"{RULE}:admin:Priority": "3",
        }
    )
    spec = desired_spec(
        bind_host="127.0.0.1", port=8080, domain="localhost",
        environments=[env(settings)], instances=[inst("i-a", "10.213.0.2")],
    )  # fmt: skip
    cfg = render_config(spec, HAProxyPaths.under(Path("/tmp/bp-rules")))
    assert (
        "str(default) if { var(txn.bp_be) -m str env-shop } { path -m reg ^(/api/static/.*)$ }"
    ) in cfg


def test_the_release_key_follows_the_ports_not_the_spelling():
    from beanpole.core.settings.resolve import resolve

    plain = resolve({}).release_key("d")
    assert resolve({f"{PROC}:default:Port": "80"}).release_key("d") == plain  # inert
    declared = resolve(validate({f"{PROC}:api:HealthCheckPath": "/h"})).release_key("d")
    assert declared != plain  # a process declared without Port listens on 80
    moved = resolve(validate({f"{PROC}:api:Port": "5100"})).release_key("d")
    assert moved not in (plain, declared)
    checked = resolve(
        validate({f"{PROC}:api:Port": "5100", f"{PROC}:api:HealthCheckPath": "/x"})
    ).release_key("d")
    assert checked == moved  # a health check updates the load balancer only
