"""What the load balancer should look like, derived from the store (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from beanpole.core import certificates, listener_rules, staticfiles
from beanpole.core.lb.config import (
    MIN_TLS,
    Backend,
    Certificate,
    HealthCheck,
    LoadBalancerSpec,
    RoutingRule,
    Server,
    StaticFiles,
)
from beanpole.core.model import Environment, EnvStatus, Instance, InstanceState, Version
from beanpole.core.settings import resolve

PROCESS = "aws:elasticbeanstalk:environment:process:default"
HTTPS_LISTENER = "aws:elbv2:listener:443"
HTTP_LISTENER = "aws:elbv2:listener:default"


@dataclass(frozen=True)
class StoredCertificate:
    """A certificate as the store knows it: where its PEM is and what it is."""

    name: str
    path: str
    fingerprint: str


IN_SERVICE_WEIGHT = 100


def health_check(settings: Mapping[str, str]) -> HealthCheck:
    resolved = resolve(settings)
    return _check(
        {n: resolved.get(PROCESS, n) for n in listener_rules.PROCESS_OPTIONS if n != "Port"}
    )


def process_checks(settings: Mapping[str, str]) -> dict[str, HealthCheck]:
    """The health check of each process a listener rule sends requests to (those the load
    balancer checks: `_routing` gives each a backend), by process name."""
    values = resolve(settings).values
    reached = {rule.process for rule in listener_rules.rules(values) if rule.http or rule.https}
    return {
        name: _check(process.options)
        for name, process in listener_rules.processes(values).items()
        if name in reached
    }


def _check(options: Mapping[str, str]) -> HealthCheck:
    """A process's health check from its options (EB's names, every one given)."""
    return HealthCheck(
        path=options["HealthCheckPath"],
        interval_s=int(options["HealthCheckInterval"]),
        timeout_s=int(options["HealthCheckTimeout"]),
        healthy_threshold=int(options["HealthyThresholdCount"]),
        unhealthy_threshold=int(options["UnhealthyThresholdCount"]),
        matcher=options["MatcherHTTPCode"],
    )


def server_weight(instance: Instance) -> int:
    """Only instances in service take new requests; draining and standby ones sit at 0."""
    return instance.weight if instance.state is InstanceState.IN_SERVICE else 0


# A starting instance is not in the load balancer at all: HAProxy would check it before it
# listens, mark it DOWN, and then need HealthyThresholdCount more checks at its slow
# interval before serving. Beanpole probes it directly instead and adds it once it passes;
# HAProxy then starts it UP and its own checks take over.
_IN_LOAD_BALANCER = frozenset(
    {InstanceState.IN_SERVICE, InstanceState.DRAINING, InstanceState.STANDBY}
)


def desired_spec(
    *,
    bind_host: str,
    port: int,
    domain: str,
    environments: Iterable[Environment],
    instances: Iterable[Instance],
    log_port: int = 0,
    log_token: str = "",
    sampling: Mapping[str, int] | None = None,
    versions: Mapping[tuple[str, str], Version] | None = None,
    version_dirs: Mapping[tuple[str, str], str] | None = None,
    eb_domain: str = "",
    stages: Mapping[tuple[str, int], str] | None = None,
    domains: Mapping[str, Sequence[str]] | None = None,
    https_port: int = 0,
    stored_certificates: Iterable[StoredCertificate] = (),
    connect_timeout_ms: int = 5000,
) -> LoadBalancerSpec:
    """``versions`` (application, label) -> version, for the versions the environments run
    or serve, and ``version_dirs``, the same keys -> the folder of their build: where static
    files are found in its ``app`` (``stages``: (environment id, deployment id) -> the folder
    of its own a deployment has, as `adapters.build.Builder.stage` makes them).
    ``domains``: environment id -> the host names it answers on besides its CNAME
    (`core.domains`). ``stored_certificates``: every certificate the HTTPS listener (on
    ``https_port``, 0: none) offers by SNI.
    With ``eb_domain``, an environment also answers on its CNAME in Elastic Beanstalk's
    form, ``<prefix>.<region>.elasticbeanstalk.com`` (what EB's API reports)."""
    by_env: dict[str, list[Instance]] = {}
    for instance in instances:
        if instance.state in _IN_LOAD_BALANCER:
            by_env.setdefault(instance.environment, []).append(instance)
    backends = []
    stored = {c.name: c for c in stored_certificates}
    min_tls: dict[str, str] = {}  # certificate -> the strictest policy of those naming it
    for env in sorted(environments, key=lambda e: e.name):
        if env.status is EnvStatus.TERMINATED:
            continue
        proxy = proxy_settings(
            env, by_env.get(env.name, []), versions or {}, version_dirs or {}, stages or {}
        )
        names = proxy.pop("certificates")
        routing = proxy.pop("routing")
        policy_tls = proxy["min_tls"]
        proxy["https"] = proxy["https"] and bool(names) and all(n in stored for n in names)
        proxy["redirect_https"] = proxy["redirect_https"] and proxy["https"]
        if proxy["https"]:
            for name in names:
                min_tls[name] = max(min_tls.get(name, MIN_TLS), policy_tls)
        in_lb = sorted(by_env.get(env.name, []), key=lambda i: i.id)
        servers = tuple(Server(i.id, i.host, i.port, server_weight(i)) for i in in_lb)
        hosts = (
            *(f"{env.cname}.{d}".lower() for d in (domain, eb_domain) if d),
            *(domains or {}).get(env.id, ()),
        )
        processes, rules = _routing(env.name, routing, in_lb)
        backends.append(
            Backend(
                name=env.name,
                hosts=hosts,
                check=health_check(resolve(*env.layers()).values),
                servers=servers,
                sample_ratio=(sampling or {}).get(env.name, 1),
                rules=rules,
                **proxy,
            )
        )
        backends += [
            Backend(
                name=name,
                hosts=(),
                check=check,
                servers=process_servers,
                sample_ratio=(sampling or {}).get(env.name, 1),
                check_hostname=hosts[0] if hosts else "",
                **{**proxy, "static": None},
            )
            for name, check, process_servers in processes
        ]
    return LoadBalancerSpec(
        bind_host=bind_host,
        port=port,
        backends=tuple(backends),
        log_port=log_port,
        log_token=log_token,
        https_port=https_port,
        connect_timeout_ms=connect_timeout_ms,
        certificates=tuple(
            Certificate(c.name, c.path, c.fingerprint, min_tls.get(c.name, MIN_TLS))
            for c in sorted(stored.values(), key=lambda c: c.name)
        ),
    )


def _routing(
    env_name: str, values: Mapping[str, str], instances: Sequence[Instance]
) -> tuple[list[tuple[str, HealthCheck, tuple[Server, ...]]], tuple[RoutingRule, ...]]:
    """An environment's listener rules, and a backend for each process they reach.

    A process is reached at each instance's own address on the port it was started with
    (`Instance.process_ports`): an instance that does not run it (started before the rule,
    or on the host's network, where instances share ports) has no server in its backend."""
    declared = listener_rules.processes(values)
    processes = []
    rules = []
    for rule in listener_rules.rules(values):
        if not rule.http and not rule.https:
            continue
        if rule.process == listener_rules.DEFAULT_PROCESS:
            target = env_name
        elif rule.process in declared:
            target = f"{env_name}.{rule.process}"
        else:
            continue  # refused when set (`listener_rules.check`); an old release's layer
        rules.append(
            RoutingRule(
                name=rule.name,
                target=target,
                host_regex=rule.host_regex() if rule.hosts else "",
                path_regex=rule.path_regex() if rule.paths else "",
                http=rule.http,
                https=rule.https,
            )
        )
    reached = {r.target for r in rules}
    for name, process in declared.items():
        backend = f"{env_name}.{name}"
        if backend not in reached:
            continue
        # each instance at the port it was started with, if it runs the process at all
        servers = tuple(
            Server(i.id, i.host, i.process_ports[name], server_weight(i))
            for i in instances
            if name in i.process_ports
        )
        processes.append((backend, _check(process.options), servers))
    # a rule to the default process stays: it keeps what it matches from later rules
    return processes, tuple(rules)


def serving_releases(env: Environment, instances: Iterable[Instance]) -> list[tuple[str, int]]:
    """The (version, deployment) whose files an environment serves, the newest in service
    first, then the environment's recorded one (until a deployment completes, the previous
    one)."""
    serving = sorted(
        (i for i in instances if i.state is InstanceState.IN_SERVICE and i.weight > 0),
        key=lambda i: -i.deployment_id,
    )
    releases = [(i.version_label, i.deployment_id) for i in serving]
    if env.version_label:
        releases.append((env.version_label, env.deployment_id))
    return list(dict.fromkeys(releases))


def serving_labels(env: Environment, instances: Iterable[Instance]) -> list[str]:
    """The versions whose files an environment serves, newest first (`serving_releases`)."""
    return list(dict.fromkeys(label for label, _ in serving_releases(env, instances)))


def proxy_settings(
    env: Environment,
    instances: Iterable[Instance],
    versions: Mapping[tuple[str, str], Version],
    version_dirs: Mapping[tuple[str, str], str],
    stages: Mapping[tuple[str, int], str] | None = None,
) -> dict[str, Any]:
    """Static files, the body limit, compression and listeners of an environment's backend
    (and, for `desired_spec` to check and remove, its certificates and TLS floor).

    They follow the newest version in service (its .ebextensions and .platform/nginx), with
    the environment's direct settings over it: a deployment's new files, limits and mappings
    take effect as its first new instance goes in service, not when the whole deployment
    completes.
    """
    known = [
        (versions[(env.application, label)], deployment)
        for label, deployment in serving_releases(env, instances)
        if (env.application, label) in versions
    ]
    stages = stages or {}
    newest = known[0][0] if known else None
    resolved = resolve(*env.layers(newest.ebextensions if newest else None))
    pairs = staticfiles.mappings(resolved.values, newest.platform if newest else "")
    roots = tuple(
        dict.fromkeys(
            stages.get((env.id, deployment)) or f"{version_dirs[(env.application, v.label)]}/app"
            for v, deployment in known
            if (env.id, deployment) in stages or (env.application, v.label) in version_dirs
        )
    )
    return {
        "static": StaticFiles(pairs, roots) if pairs and roots else None,
        "max_body_bytes": resolved.int("beanpole:proxy", "ClientMaxBodySize"),
        "gzip_types": tuple(resolved.get("beanpole:proxy", "GzipTypes").split()),
        "http": resolved.get(HTTP_LISTENER, "ListenerEnabled") == "true",
        "https": resolved.get(HTTPS_LISTENER, "ListenerEnabled") == "true",
        "redirect_https": resolved.get("beanpole:proxy", "RedirectHTTPToHTTPS") == "true",
        "certificates": certificates.referenced_names(
            resolved.get(HTTPS_LISTENER, "SSLCertificateArns")
        ),
        "min_tls": certificates.SSL_POLICIES[resolved.get(HTTPS_LISTENER, "SSLPolicy")],
        "routing": resolved.values,
    }
