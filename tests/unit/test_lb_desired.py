"""The load balancer's desired shape follows the store: weights by state, hosts by CNAME."""

import time
from dataclasses import replace

from beanpole.core.lb.desired import desired_spec
from beanpole.core.model import Environment, EnvStatus, Health, Instance, InstanceState


def env(name, status=EnvStatus.READY, settings=None):
    return Environment(
        name, "app", name, status, Health.GREEN, "v1", settings or {}, 1, time.time(), time.time()
    )


def inst(id_, env_name, state, port):
    return Instance(id_, env_name, "v1", "k", 1, port, state, time.time())


def test_weights_follow_instance_state_and_only_serving_or_draining_ones_are_in():
    spec = desired_spec(
        bind_host="127.0.0.1",
        port=8080,
        domain="localhost",
        environments=[env("shop"), env("gone", EnvStatus.TERMINATED)],
        instances=[
            inst("i-a", "shop", InstanceState.IN_SERVICE, 1),
            inst("i-b", "shop", InstanceState.PENDING, 2),
            inst("i-c", "shop", InstanceState.DRAINING, 3),
            inst("i-d", "shop", InstanceState.STOPPED, 4),
        ],
    )
    (backend,) = spec.backends
    assert backend.name == "shop" and backend.hosts == ("shop.localhost",)
    # pending instances are probed by Beanpole and join only once they pass
    assert {s.name: s.weight for s in backend.servers} == {"i-a": 100, "i-c": 0}


def test_health_check_comes_from_the_process_namespace():
    ns = "aws:elasticbeanstalk:environment:process:default"
    spec = desired_spec(
        bind_host="0.0.0.0",
        port=80,
        domain="example.org",
        environments=[
            env(
                "shop",
                settings={f"{ns}:HealthCheckPath": "/health", f"{ns}:MatcherHTTPCode": "200-299"},
            )
        ],
        instances=[],
    )
    check = spec.backends[0].check
    assert (check.path, check.matcher, check.interval_s) == ("/health", "200-299", 15)
    assert spec.backends[0].hosts == ("shop.example.org",)


def test_health_check_from_the_running_versions_ebextensions_under_direct_settings():
    ns = "aws:elasticbeanstalk:environment:process:default"
    shop = replace(
        env("shop", settings={f"{ns}:HealthCheckInterval": "5"}),
        version_settings={f"{ns}:HealthCheckPath": "/health", f"{ns}:HealthCheckInterval": "30"},
    )
    spec = desired_spec(
        bind_host="0.0.0.0", port=80, domain="localhost", environments=[shop], instances=[]
    )
    check = spec.backends[0].check
    assert (check.path, check.interval_s) == ("/health", 5)


def test_servers_answer_at_the_address_the_runtime_chose_not_an_assumed_loopback():
    there = replace(inst("i-a", "shop", InstanceState.IN_SERVICE, 31000), host="10.1.2.3")
    spec = desired_spec(
        bind_host="0.0.0.0",
        port=80,
        domain="localhost",
        environments=[env("shop")],
        instances=[there, inst("i-b", "shop", InstanceState.IN_SERVICE, 20001)],
    )
    servers = {s.name: (s.address, s.port) for s in spec.backends[0].servers}
    assert servers == {"i-a": ("10.1.2.3", 31000), "i-b": ("127.0.0.1", 20001)}


def test_static_files_come_from_the_serving_deployments_own_folder_where_it_has_one():
    """A deployment whose steps ran in a folder of its own (collectstatic there) serves its
    files from it; one without, from the version's build. Newest in service first."""
    from beanpole.core.model import BuildStatus, Version

    ns = "aws:elasticbeanstalk:environment:proxy:staticfiles"
    shop = replace(env("shop", settings={f"{ns}:/static": "static"}), id="e-shop", deployment_id=1)
    versions = {
        ("app", label): Version("app", label, digest, 0.0, BuildStatus.BUILT)
        for label, digest in (("v1", "d1"), ("v2", "d2"))
    }
    new = replace(inst("i-new", "shop", InstanceState.IN_SERVICE, 2), version_label="v2")
    spec = desired_spec(
        bind_host="127.0.0.1",
        port=80,
        domain="localhost",
        environments=[shop],
        instances=[
            inst("i-old", "shop", InstanceState.IN_SERVICE, 1),
            replace(new, deployment_id=2),
        ],
        versions=versions,
        version_dirs={("app", "v1"): "/b/a-app/d1", ("app", "v2"): "/b/a-app/d2"},
        stages={("e-shop", 2): "/b/a-app/d2/stages/e-shop-2", ("e-other", 1): "/b/x"},
    )
    static = spec.backends[0].static
    assert static is not None
    assert static.roots == ("/b/a-app/d2/stages/e-shop-2", "/b/a-app/d1/app")


def _https_spec(settings, stored=("shop",)):
    from beanpole.core.lb.desired import StoredCertificate

    return desired_spec(
        bind_host="127.0.0.1",
        port=8080,
        domain="localhost",
        environments=[env("shop", settings=settings)],
        instances=[],
        https_port=8443,
        stored_certificates=[
            StoredCertificate(name, f"/certs/{name}.pem", "AB" * 20) for name in stored
        ],
    )


def test_https_listener_needs_a_stored_certificate_and_the_strictest_policy_wins():
    https = "aws:elbv2:listener:443"
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/shop"
    (backend,) = _https_spec({}).backends
    assert (backend.http, backend.https, backend.redirect_https) == (True, False, False)

    spec = _https_spec(
        {
            f"{https}:SSLCertificateArns": arn,
            "beanpole:proxy:RedirectHTTPToHTTPS": "true",
            f"{https}:SSLPolicy": "ELBSecurityPolicy-TLS13-1-3-2021-06",
        }
    )
    (backend,) = spec.backends
    assert (backend.https, backend.redirect_https) == (True, True)
    assert [(c.name, c.min_tls) for c in spec.certificates] == [("shop", "TLSv1.3")]

    # a certificate that is not stored turns the listener off (and the redirect with it)
    (backend,) = _https_spec(
        {f"{https}:SSLCertificateArns": "shop,gone", "beanpole:proxy:RedirectHTTPToHTTPS": "true"}
    ).backends
    assert (backend.https, backend.redirect_https) == (False, False)
    # the HTTP listener can be turned off
    (backend,) = _https_spec({"aws:elbv2:listener:default:ListenerEnabled": "false"}).backends
    assert backend.http is False
