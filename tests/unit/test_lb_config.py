"""Rendering of HAProxy's config and map, validation of the spec, and the reload/runtime split."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from beanpole.adapters.lb.haproxy import server_healthy
from beanpole.core.errors import InvalidInput
from beanpole.core.lb.config import (
    LOG_FORMAT,
    NO_ROUTE_BODY,
    Backend,
    HAProxyPaths,
    HealthCheck,
    LoadBalancerSpec,
    Server,
    backend_id,
    parse_matcher,
    render_config,
    render_hosts_map,
    sample_var,
    server_line,
    status_regex,
    structural_key,
)

PATHS = HAProxyPaths.under(Path("/var/lib/beanpole/haproxy"))


def shop(
    *servers: Server, hosts: tuple[str, ...] = ("shop.localhost",), sample_ratio: int = 1
) -> Backend:
    check = HealthCheck(path="/health", matcher="200,302")
    return Backend("shop", hosts, check, servers, sample_ratio=sample_ratio)


def blog() -> Backend:
    return Backend(
        "blog", ("blog.localhost",), HealthCheck(), (Server("i-b1", "127.0.0.1", 9100, 1),)
    )


SPEC = LoadBalancerSpec(
    "127.0.0.1",
    8080,
    (shop(Server("i-1a2b", "127.0.0.1", 9001, 1), Server("i-3c4d", "127.0.0.1", 9002, 0)), blog()),
)


def section(cfg: str, header: str) -> list[str]:
    """The stripped lines of one section (from its header to the next blank line)."""
    lines = cfg.splitlines()
    start = lines.index(header)
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return [line.strip() for line in lines[start + 1 : end]]


def test_global_and_defaults_carry_the_measured_settings() -> None:
    cfg = render_config(SPEC, PATHS)
    glob = section(cfg, "global")
    assert "master-worker" in glob
    assert "hard-stop-after 30s" in glob
    assert (
        "stats socket /var/lib/beanpole/haproxy/admin.sock mode 600 level admin "
        "expose-fd listeners" in glob
    )
    assert f"description beanpole-{structural_key(SPEC)}" in glob
    defaults = section(cfg, "defaults")
    for line in (
        "mode http",
        "timeout connect 5s",
        "timeout client 60s",
        "timeout server 60s",
        "option redispatch 1",
        "retries 3",
        "retry-on conn-failure empty-response",
        "option idle-close-on-response",
        "option forwardfor",
    ):
        assert line in defaults


def test_a_cluster_s_shorter_connect_timeout_is_rendered_and_needs_a_reload() -> None:
    quick = replace(SPEC, connect_timeout_ms=1000)
    assert "timeout connect 1s" in section(render_config(quick, PATHS), "defaults")
    assert structural_key(quick) != structural_key(SPEC)
    odd = replace(SPEC, connect_timeout_ms=1500)
    assert "timeout connect 1500ms" in section(render_config(odd, PATHS), "defaults")
    with pytest.raises(InvalidInput, match="Connect timeout 0 ms"):
        replace(SPEC, connect_timeout_ms=0)


def test_frontend_routes_by_host_through_the_map_and_404s_the_rest() -> None:
    cfg = render_config(SPEC, PATHS)
    frontend = section(cfg, "frontend fe-http")
    assert "bind 127.0.0.1:8080" in frontend
    assert (
        "use_backend %[req.hdr(host),lower,field(1,:),"
        "map_str(/var/lib/beanpole/haproxy/hosts.map)]" in frontend
    )
    assert "http-request disable-l7-retry unless METH_GET || METH_OPTIONS" in frontend
    assert "default_backend no-environment" in frontend
    assert section(cfg, "backend no-environment") == [
        "http-request set-log-level silent",  # unknown hosts are no environment's health
        f'http-request return status 404 content-type text/plain string "{NO_ROUTE_BODY}"',
    ]


def test_one_backend_per_environment_with_check_and_full_server_lines() -> None:
    cfg = render_config(SPEC, PATHS)
    shop_lines = section(cfg, "backend env-shop")
    assert shop_lines == [
        "balance roundrobin",
        "option httpchk",
        "http-check send meth GET uri /health ver HTTP/1.1 hdr Host shop.localhost",
        "http-check expect rstatus ^(200|302)$",
        "timeout check 5s",
        "http-request set-var(txn.bp_w) var(proc.bp_w_shop) "
        "if { rand,mod(proc.bp_w_shop) -m int eq 0 }",
        "http-request set-log-level silent unless { var(txn.bp_w) -m found }",
        "server i-1a2b 127.0.0.1:9001 check inter 15s fastinter 1s downinter 2s "
        "fall 5 rise 3 weight 1 pool-max-conn -1 pool-purge-delay 5s",
        "server i-3c4d 127.0.0.1:9002 check inter 15s fastinter 1s downinter 2s "
        "fall 5 rise 3 weight 0 pool-max-conn -1 pool-purge-delay 5s",
    ]
    assert "http-check expect status 200" in section(cfg, "backend env-blog")
    assert cfg.index("backend env-blog") < cfg.index("backend env-shop")  # stable order


def test_server_line_is_the_same_for_the_config_and_add_server() -> None:
    check = HealthCheck(interval_s=1, timeout_s=1, healthy_threshold=2, unhealthy_threshold=2)
    server = Server("i-1", "127.0.0.1", 9001, 7)
    line = server_line(server, check)
    assert (
        line == "i-1 127.0.0.1:9001 check inter 1s fastinter 1s downinter 1s fall 2 rise 2 weight 7"
        " pool-max-conn -1 pool-purge-delay 5s"  # idle connections kept for dynamic servers too
    )
    cfg = render_config(
        LoadBalancerSpec("0.0.0.0", 80, (Backend("a", (), check, (server,)),)), PATHS
    )
    assert f"    server {line}" in cfg.splitlines()


def test_ipv6_addresses_get_brackets() -> None:
    server = Server("i-1", "::1", 9001, 1)
    assert server.endpoint == "[::1]:9001"
    assert LoadBalancerSpec("::", 8080, ()).bind_endpoint == "[::]:8080"


def test_hosts_map_lists_every_host_sorted() -> None:
    assert render_hosts_map(SPEC) == "blog.localhost env-blog\nshop.localhost env-shop\n"
    two = LoadBalancerSpec("127.0.0.1", 80, (shop(hosts=("www.shop.test", "shop.test")),))
    assert render_hosts_map(two) == "shop.test env-shop\nwww.shop.test env-shop\n"
    assert render_hosts_map(LoadBalancerSpec("127.0.0.1", 80, ())) == ""


def test_backend_id_is_prefixed() -> None:
    assert backend_id("shop") == "env-shop"


@pytest.mark.parametrize(
    ("matcher", "expect"),
    [
        ("200", "http-check expect status 200"),
        ("200,302", "http-check expect rstatus ^(200|302)$"),
        ("200-299", "http-check expect rstatus ^(2[0-9][0-9])$"),
        ("200-204, 302", "http-check expect rstatus ^(20[0-4]|302)$"),
        ("200-399", "http-check expect rstatus ^(2[0-9][0-9]|3[0-9][0-9])$"),
        ("200,201,202,205", "http-check expect rstatus ^(20[0-25])$"),
        ("200-200", "http-check expect status 200"),
    ],
)
def test_matcher_becomes_http_check_expect(matcher: str, expect: str) -> None:
    assert HealthCheck(matcher=matcher).expect_line() == expect


@pytest.mark.parametrize("matcher", ["200", "200,302", "200-299", "150-451,500", "199-201,404"])
def test_status_regex_matches_exactly_the_codes(matcher: str) -> None:
    codes = set(parse_matcher(matcher))
    regex = re.compile(status_regex(tuple(sorted(codes))))
    assert {c for c in range(100, 600) if regex.search(str(c))} == codes


@pytest.mark.parametrize(
    "matcher", ["", "ok", "20", "2000", "99", "600", "300-200", "200-", "200,,302"]
)
def test_bad_matchers_are_refused_clearly(matcher: str) -> None:
    with pytest.raises(InvalidInput, match="matcher"):
        HealthCheck(matcher=matcher)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: HealthCheck(path="health"), "path"),
        (lambda: HealthCheck(path="/a b"), "path"),
        (lambda: HealthCheck(path='/a"b'), "path"),
        (lambda: HealthCheck(interval_s=0), "interval"),
        (lambda: HealthCheck(healthy_threshold=0), "healthy threshold"),
        (lambda: Server("i 1", "127.0.0.1", 1, 1), "Server name"),
        (lambda: Server("-i1", "127.0.0.1", 1, 1), "Server name"),
        (lambda: Server("i-1", "localhost", 1, 1), "IP address"),
        (lambda: Server("i-1", "127.0.0.1", 0, 1), "port"),
        (lambda: Server("i-1", "127.0.0.1", 65536, 1), "port"),
        (lambda: Server("i-1", "127.0.0.1", 1, 257), "weight"),
        (lambda: Server("i-1", "127.0.0.1", 1, -1), "weight"),
        (lambda: Backend("sh op", (), HealthCheck(), ()), "Environment name"),
        (lambda: Backend("shop", ("Shop.localhost",), HealthCheck(), ()), "lower-case"),
        (lambda: Backend("shop", ("a b",), HealthCheck(), ()), "lower-case"),
        (lambda: Backend("shop", ("a.test", "a.test"), HealthCheck(), ()), "twice"),
        (lambda: shop(Server("i-1", "127.0.0.1", 1, 1), Server("i-1", "127.0.0.1", 2, 1)), "twice"),
        (lambda: LoadBalancerSpec("127.0.0.1", 80, (shop(), shop())), "same name"),
        (
            lambda: LoadBalancerSpec(
                "127.0.0.1",
                80,
                (shop(), Backend("other", ("shop.localhost",), HealthCheck(), ())),
            ),
            "routed to both",
        ),
        (lambda: LoadBalancerSpec("localhost", 80, ()), "IP address"),
        (lambda: LoadBalancerSpec("127.0.0.1", 0, ()), "port"),
        (lambda: HAProxyPaths.under(Path("/tmp/with space")), "characters"),
        (lambda: HAProxyPaths.under(Path("/tmp/with,comma")), "characters"),
        (lambda: HAProxyPaths.under(Path("/tmp/" + "x" * 100)), "too long"),
    ],
)
def test_invalid_values_are_refused(make: object, message: str) -> None:
    assert callable(make)
    with pytest.raises(InvalidInput, match=message):
        make()


def test_structural_key_ignores_what_the_runtime_api_changes() -> None:
    key = structural_key(SPEC)
    servers_changed = LoadBalancerSpec(
        "127.0.0.1",
        8080,
        (shop(Server("i-new", "127.0.0.1", 9009, 200)), replace(blog(), servers=())),
    )
    more_hosts = LoadBalancerSpec(
        "127.0.0.1",
        8080,
        (shop(hosts=("shop.localhost", "www.shop.localhost")), blog()),
    )
    reordered = LoadBalancerSpec("127.0.0.1", 8080, tuple(reversed(SPEC.backends)))
    assert structural_key(servers_changed) == key
    assert structural_key(more_hosts) == key
    assert structural_key(reordered) == key


def test_structural_key_changes_with_what_needs_a_reload() -> None:
    key = structural_key(SPEC)
    changed = [
        replace(SPEC, port=8081),
        replace(SPEC, bind_host="0.0.0.0"),
        replace(SPEC, backends=SPEC.backends[:1]),
        replace(SPEC, backends=(*SPEC.backends, replace(blog(), name="wiki", hosts=()))),
        replace(SPEC, backends=(replace(SPEC.backends[0], check=HealthCheck(path="/x")), blog())),
        replace(
            SPEC, backends=(replace(SPEC.backends[0], check=HealthCheck(interval_s=5)), blog())
        ),
        # The first host is the health check's Host header, which lives in the config.
        replace(SPEC, backends=(replace(SPEC.backends[0], hosts=("shop.example.com",)), blog())),
    ]
    keys = {structural_key(spec) for spec in changed}
    assert key not in keys
    assert len(keys) == len(changed)


def test_equivalent_matchers_give_the_same_key() -> None:
    a = replace(SPEC, backends=(replace(SPEC.backends[0], check=HealthCheck(matcher="200-201")),))
    b = replace(SPEC, backends=(replace(SPEC.backends[0], check=HealthCheck(matcher="201,200")),))
    assert structural_key(a) == structural_key(b)


def test_paths_under_a_directory() -> None:
    paths = HAProxyPaths.under(Path("/srv/lb"))
    assert paths.cfg == Path("/srv/lb/haproxy.cfg")
    assert paths.hosts_map == Path("/srv/lb/hosts.map")
    assert paths.admin_socket == Path("/srv/lb/admin.sock")
    assert paths.master_socket == Path("/srv/lb/master.sock")
    assert paths.pid_file == Path("/srv/lb/haproxy.pid")


@pytest.mark.parametrize(
    ("status", "check", "healthy"),
    [
        ("UP", "L7OK", True),
        ("UP 1/5", "L7STS", False),  # in rotation until `fall`, but its last check failed
        ("UP 1/2", "INI", False),  # just added: assumed up, never checked
        ("DOWN", "L4CON", False),
        ("DOWN 1/3", "L7OK", False),  # recovering, not back yet
        ("DRAIN", "L7OK", True),
        ("NOLB", "L7OK", True),
        ("MAINT", "", False),
        ("no check", "", True),
    ],
)
def test_server_state_healthy(status: str, check: str, healthy: bool) -> None:
    assert server_healthy(status, check) is healthy


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="the haproxy binary is not installed")
@pytest.mark.parametrize(
    "spec",
    [
        SPEC,
        LoadBalancerSpec("0.0.0.0", 80, ()),
        LoadBalancerSpec("::", 8080, (Backend("empty", (), HealthCheck(matcher="200-499"), ()),)),
        LoadBalancerSpec(
            "127.0.0.1",
            8080,
            (
                Backend(
                    "v6",
                    ("v6.localhost",),
                    HealthCheck(path="/health?full=1&x=%20", matcher="200,204,301-302"),
                    (Server("i-6", "::1", 9001, 256),),
                ),
            ),
        ),
    ],
)
def test_haproxy_accepts_the_rendered_config(tmp_path: Path, spec: LoadBalancerSpec) -> None:
    paths = HAProxyPaths.under(tmp_path)
    paths.cfg.write_text(render_config(spec, paths))
    paths.hosts_map.write_text(render_hosts_map(spec))
    result = subprocess.run(
        ["haproxy", "-c", "-f", str(paths.cfg)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "ALERT" not in result.stderr, result.stderr


def test_each_backend_has_its_sampling_ratio_in_a_process_variable() -> None:
    spec = LoadBalancerSpec(
        "127.0.0.1", 80, (shop(sample_ratio=8), Backend("my-blog", (), HealthCheck(), ()))
    )
    glob = section(render_config(spec, PATHS), "global")
    assert "set-var proc.bp_w_shop int(8)" in glob
    assert "set-var proc.bp_w_my_blog int(1)" in glob
    assert sample_var("my-blog") == "proc.bp_w_my_blog"
    # changed at run time: not a reason to reload
    assert structural_key(spec) == structural_key(
        LoadBalancerSpec("127.0.0.1", 80, (shop(), Backend("my-blog", (), HealthCheck(), ())))
    )
    with pytest.raises(InvalidInput, match="Sampling ratio"):
        shop(sample_ratio=0)


def test_log_format_leads_with_the_end_time_and_carries_the_sampling_weight() -> None:
    fields = LOG_FORMAT.split()
    assert fields[:6] == ["%[date(0,ms)]", "%b", "%s", "%ST", "%Ta", "%[var(txn.bp_w)]"]


def test_request_lines_go_to_the_servers_udp_port_on_loopback() -> None:
    with_log = LoadBalancerSpec("127.0.0.1", 8080, SPEC.backends, log_port=51234)
    assert "log 127.0.0.1:51234 len 2048 format raw local0 info" in section(
        render_config(with_log, PATHS), "global"
    )
    glob = section(render_config(SPEC, PATHS), "global")
    assert not [ln for ln in glob if ln.startswith("log ")]
    assert structural_key(with_log) != structural_key(SPEC)  # moving the port reloads


def test_with_a_token_every_request_line_starts_with_it_and_a_new_token_reloads() -> None:
    with_log = LoadBalancerSpec("127.0.0.1", 8080, SPEC.backends, log_port=51234)
    signed = replace(with_log, log_token="a1b2c3d4e5f6a7b8c9d0")
    assert f'log-format "a1b2c3d4e5f6a7b8c9d0 {LOG_FORMAT}"' in section(
        render_config(signed, PATHS), "defaults"
    )
    assert f'log-format "{LOG_FORMAT}"' in section(render_config(with_log, PATHS), "defaults")
    assert structural_key(signed) != structural_key(with_log)
    assert "a1b2c3d4e5f6a7b8c9d0" not in structural_key(signed)  # only its hash
    for bad in ("short", 'quote"in" it and more', "x" * 200):
        with pytest.raises(InvalidInput, match="request log token"):
            replace(with_log, log_token=bad)


def test_https_listener_renders_only_with_a_port_and_certificate_changes_need_no_reload():
    from beanpole.core.lb.config import Certificate, render_crt_list

    paths = HAProxyPaths.under(Path("/tmp/bp-lb"))
    check = HealthCheck()
    plain = LoadBalancerSpec("127.0.0.1", 8080, (Backend("shop", ("shop.localhost",), check, ()),))
    assert " ssl " not in render_config(plain, paths)

    shop = Backend("shop", ("shop.localhost",), check, (), https=True, redirect_https=True)
    cert = Certificate("shop", "/certs/shop.pem", "AB" * 20)
    spec = LoadBalancerSpec("127.0.0.1", 8080, (shop,), https_port=8443, certificates=(cert,))
    text = render_config(spec, paths)
    assert f"bind 127.0.0.1:8443 ssl crt {paths.default_cert} crt-list {paths.crt_list}" in text
    assert "alpn h2,http/1.1" in text
    assert "redirect location https://%[req.hdr(host),field(1,:)]:8443%[capture.req.uri]" in text
    assert render_crt_list(spec) == "/certs/shop.pem\n"

    # adding or renewing a certificate goes through the runtime API, a policy is a reload
    renewed = Certificate("shop", "/certs/shop.pem", "CD" * 20)
    other = Certificate("blog", "/certs/blog.pem", "EF" * 20)
    same = LoadBalancerSpec(
        "127.0.0.1", 8080, (shop,), https_port=8443, certificates=(renewed, other)
    )
    assert structural_key(same) == structural_key(spec)
    strict = Certificate("shop", "/certs/shop.pem", "AB" * 20, "TLSv1.3")
    tls13 = LoadBalancerSpec("127.0.0.1", 8080, (shop,), https_port=8443, certificates=(strict,))
    assert structural_key(tls13) != structural_key(spec)
    assert render_crt_list(tls13) == "/certs/shop.pem [ssl-min-ver TLSv1.3]\n"

    with pytest.raises(InvalidInput, match="share port"):
        LoadBalancerSpec("127.0.0.1", 8080, (), https_port=8080)
    with pytest.raises(InvalidInput, match="no HTTPS listener"):
        Backend("shop", (), check, (), redirect_https=True)


def test_a_removed_server_s_requests_outlast_a_short_connect_timeout_only() -> None:
    from beanpole.adapters.lb.haproxy import DELETE_GRACE_S, _delete_grace

    # a swarm's 1 s: a request still connecting to a dead node is redispatched, not cut
    assert _delete_grace(replace(SPEC, connect_timeout_ms=1000)) == 1.5
    assert _delete_grace(replace(SPEC, connect_timeout_ms=200)) == DELETE_GRACE_S
    assert _delete_grace(SPEC) == DELETE_GRACE_S  # one host's 5 s is not waited out
