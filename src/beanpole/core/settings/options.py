"""Every option Beanpole understands: name, type, default, range, and what a change does.

`docs/settings.md` is generated from this table (see `tests/unit/test_docs.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from beanpole.core.certificates import DEFAULT_SSL_POLICY, SSL_POLICIES


class Effect(StrEnum):
    """What changing an option does to a running environment."""

    REPLACE = "replaces instances"  # a new release rolls out
    SCALE = "changes the instance count"
    LOAD_BALANCER = "updates the load balancer (no restart)"
    NEXT_DEPLOY = "applies to the next deployment"
    AT_ONCE = "applies at once (no restart)"


@dataclass(frozen=True)
class Option:
    namespace: str
    name: str
    kind: str  # "int", "number" (a decimal), "bool", "str", "enum"
    default: str
    help: str
    effect: Effect
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return option_key(self.namespace, self.name)


def option_key(namespace: str, name: str) -> str:
    return f"{namespace}:{name}"


_PY = "aws:elasticbeanstalk:container:python"
_PROC = "aws:elasticbeanstalk:environment:process:default"
_CMD = "aws:elasticbeanstalk:command"
_ASG = "aws:autoscaling:asg"
_TRIGGER = "aws:autoscaling:trigger"
_NODE = "aws:elasticbeanstalk:container:nodejs"
_LISTENER_HTTP = "aws:elbv2:listener:default"
_LISTENER_HTTPS = "aws:elbv2:listener:443"

_TABLE: tuple[Option, ...] = (
    Option(
        _PY,
        "WSGIPath",
        "str",
        "application",
        "Module (or file) holding the WSGI callable: 'application', 'app:server', "
        "'mysite/wsgi.py'. Without ':', the callable is named 'application'.",
        Effect.REPLACE,
    ),
    Option(
        _PY,
        "NumProcesses",
        "int",
        "1",
        "gunicorn worker processes per instance.",
        Effect.REPLACE,
        1,
        64,
    ),
    Option(
        _PY,
        "NumThreads",
        "int",
        "15",
        "Threads per gunicorn worker (gthread).",
        Effect.REPLACE,
        1,
        256,
    ),
    Option(
        _NODE,
        "NPM_USE_PRODUCTION",
        "bool",
        "true",
        "Install only production dependencies.",
        Effect.NEXT_DEPLOY,
    ),
    Option(
        _PROC, "HealthCheckPath", "str", "/", "Path the load balancer checks.", Effect.LOAD_BALANCER
    ),
    Option(
        _PROC,
        "HealthCheckInterval",
        "int",
        "15",
        "Seconds between checks.",
        Effect.LOAD_BALANCER,
        1,
        300,
    ),
    Option(
        _PROC,
        "HealthCheckTimeout",
        "int",
        "5",
        "Seconds a check may take.",
        Effect.LOAD_BALANCER,
        1,
        60,
    ),
    Option(
        _PROC,
        "HealthyThresholdCount",
        "int",
        "3",
        "Consecutive passing checks before an instance is healthy.",
        Effect.LOAD_BALANCER,
        1,
        10,
    ),
    Option(
        _PROC,
        "UnhealthyThresholdCount",
        "int",
        "5",
        "Consecutive failing checks before an instance is unhealthy; a starting instance "
        "whose answers do not match MatcherHTTPCode this many times in a row fails its start "
        "at once.",
        Effect.LOAD_BALANCER,
        1,
        10,
    ),
    Option(
        _PROC,
        "MatcherHTTPCode",
        "str",
        "200",
        "Status codes that pass the check: '200', '200,302' or '200-399'.",
        Effect.LOAD_BALANCER,
    ),
    Option(
        _PROC,
        "DeregistrationDelay",
        "int",
        "20",
        "Seconds a draining instance may finish in-flight requests.",
        Effect.NEXT_DEPLOY,
        0,
        3600,
    ),
    Option(
        _CMD,
        "Timeout",
        "int",
        "600",
        "Seconds a deployment may take before it fails and rolls back.",
        Effect.NEXT_DEPLOY,
        1,
        3600,
    ),
    Option(
        _CMD,
        "DeploymentPolicy",
        "enum",
        "Immutable",
        "How new versions roll out. Beanpole's default is Immutable (EB's is AllAtOnce, "
        "which stops every instance first): a failed deploy never touches the running version.",
        Effect.NEXT_DEPLOY,
        choices=(
            "AllAtOnce",
            "Rolling",
            "RollingWithAdditionalBatch",
            "Immutable",
            "TrafficSplitting",
        ),
    ),
    Option(
        "beanpole:instance",
        "StartTimeout",
        "int",
        "60",
        "Seconds a new instance may take to listen on PORT and pass its health check "
        "before it counts as failed.",
        Effect.NEXT_DEPLOY,
        1,
        3600,
    ),
    Option(
        "beanpole:instance",
        "NetworkIsolation",
        "enum",
        "auto",
        "auto: each instance gets a network namespace of its own when Beanpole runs as root "
        "with ip and nft, so apps that listen on a fixed port (8080, 8000) do not collide; "
        "PORT is then the platform's port and only root on the host (HAProxy, Beanpole's probes) "
        "can connect to the instance. none: "
        "instances share the host's network and get a PORT leased from port_range.",
        Effect.REPLACE,
        choices=("auto", "none"),
    ),
    Option(
        "beanpole:instance",
        "Runtime",
        "enum",
        "default",
        "What runs the environment's instances: default (the server's runtime, "
        "`beanpole server start --runtime`), supervisord (processes on the host), docker "
        "(a container per instance; needs the Docker engine, set up by `scripts/bootstrap.sh "
        "--docker`) or swarm (a service per instance on a Docker Swarm's nodes, docs/swarm.md; "
        "only on a server started with --runtime swarm). Versions of the Docker platform run "
        "under Docker, or under the swarm when it is the server's runtime.",
        Effect.REPLACE,
        choices=("default", "supervisord", "docker", "swarm"),
    ),
    Option(
        "beanpole:instance",
        "Constraints",
        "str",
        "",
        "Node labels an instance's node must carry under the swarm runtime, as key=value "
        "pairs separated by commas (tier=web,disk=ssd): Beanpole's counterpart of an "
        "environment's subnets. Instances spread over the matching nodes (and over their "
        "zones, the node label beanpole.az). Other runtimes ignore it.",
        Effect.REPLACE,
    ),
    Option(
        "beanpole:instance",
        "MemoryLimit",
        "int",
        "0",
        "MiB of memory each instance may use, enforced by the Docker engine (the Docker "
        "runtime only; supervisord does not limit it). An instance that exceeds it is "
        "killed and restarted, with an event naming the limit. 0: no limit.",
        Effect.REPLACE,
        0,
        1048576,
    ),
    Option(
        "beanpole:instance",
        "CPULimit",
        "int",
        "0",
        "CPU each instance may use, in % of one core (50: half a core, 200: two cores), "
        "enforced by the Docker engine (the Docker runtime only). 0: no limit.",
        Effect.REPLACE,
        0,
        12800,
    ),
    Option(
        _CMD,
        "BatchSizeType",
        "enum",
        "Percentage",
        "Whether BatchSize is a percentage of the fleet or a number of instances.",
        Effect.NEXT_DEPLOY,
        choices=("Percentage", "Fixed"),
    ),
    Option(
        _CMD,
        "BatchSize",
        "int",
        "100",
        "Instances per batch for Rolling and RollingWithAdditionalBatch.",
        Effect.NEXT_DEPLOY,
        1,
        100,
    ),
    Option(
        _CMD,
        "IgnoreHealthCheck",
        "bool",
        "false",
        "Do not fail a deployment on health: instances only need to listen on PORT.",
        Effect.NEXT_DEPLOY,
    ),
    Option(
        "aws:elasticbeanstalk:trafficsplitting",
        "NewVersionPercent",
        "int",
        "10",
        "Share of requests the new version gets while it is evaluated.",
        Effect.NEXT_DEPLOY,
        1,
        100,
    ),
    Option(
        "aws:elasticbeanstalk:trafficsplitting",
        "EvaluationTime",
        "int",
        "5",
        "Minutes the new version is evaluated before all traffic moves to it.",
        Effect.NEXT_DEPLOY,
        1,
        600,
    ),
    Option(
        "aws:elasticbeanstalk:healthreporting:system",
        "HealthCheckSuccessThreshold",
        "enum",
        "Ok",
        "Accepted for EB compatibility. Beanpole's deployment gate is explicit instead: "
        "passing load-balancer checks, 5xx under MaxErrorPercent and p99 under "
        "MaxLatencyP99 (beanpole:deploy).",
        Effect.NEXT_DEPLOY,
        choices=("Ok", "Warning", "Degraded", "Severe"),
    ),
    Option(
        "aws:elasticbeanstalk:environment",
        "EnvironmentType",
        "enum",
        "LoadBalanced",
        "Accepted for EB compatibility: every Beanpole environment is behind the load "
        "balancer, even with one instance (the `eb` CLI reads this option).",
        Effect.AT_ONCE,
        choices=("LoadBalanced", "SingleInstance"),
    ),
    Option(
        "aws:elasticbeanstalk:healthreporting:system",
        "SystemType",
        "enum",
        "enhanced",
        "Accepted for EB compatibility: Beanpole always reports enhanced health (statuses, "
        "causes, request and latency figures); 'basic' changes nothing.",
        Effect.AT_ONCE,
        choices=("basic", "enhanced"),
    ),
    Option(
        "beanpole:deploy",
        "BakeTime",
        "int",
        "10",
        "Seconds after cut-over during which a 5xx share above MaxErrorPercent, a p99 "
        "above MaxLatencyP99 or a failing check rolls the deployment back.",
        Effect.NEXT_DEPLOY,
        0,
        3600,
    ),
    Option(
        "beanpole:deploy",
        "MaxErrorPercent",
        "int",
        "5",
        "5xx share (of at least 20 requests) that fails a deployment's health gate.",
        Effect.NEXT_DEPLOY,
        0,
        100,
    ),
    Option(
        "beanpole:deploy",
        "MaxLatencyP99",
        "int",
        "3000",
        "p99 latency in milliseconds (of at least 100 requests) of the new version that "
        "fails a deployment's health gate, when it is also more than twice the previous "
        "version's p99 during the deployment. 0 turns the latency gate off.",
        Effect.NEXT_DEPLOY,
        0,
        600000,
    ),
    Option(
        "beanpole:deploy",
        "EvaluationSeconds",
        "int",
        "0",
        "When above 0, the traffic-splitting evaluation lasts this many seconds instead of "
        "EvaluationTime minutes.",
        Effect.NEXT_DEPLOY,
        0,
        36000,
    ),
    Option(
        "beanpole:health",
        "ReplaceUnhealthy",
        "bool",
        "true",
        "Replace an in-service instance whose load-balancer check has been failing (or whose "
        "process keeps crashing) for ReplaceAfter seconds.",
        Effect.AT_ONCE,
    ),
    Option(
        "beanpole:health",
        "ReplaceAfter",
        "int",
        "60",
        "Seconds an instance may fail before it is replaced.",
        Effect.AT_ONCE,
        1,
        86400,
    ),
    Option(
        "beanpole:health",
        "Rule4xx",
        "bool",
        "true",
        "Whether a high share of 4xx answers makes an instance Warning or Degraded.",
        Effect.AT_ONCE,
    ),
    Option(
        "aws:autoscaling:updatepolicy:rollingupdate",
        "RollingUpdateEnabled",
        "bool",
        "false",
        "Roll settings changes that replace instances out in batches. When "
        "false, Beanpole replaces them Immutable-style (EB would replace all at once).",
        Effect.NEXT_DEPLOY,
    ),
    Option(
        "aws:autoscaling:updatepolicy:rollingupdate",
        "RollingUpdateType",
        "enum",
        "Time",
        "Time and Health roll in batches of MaxBatchSize; Immutable starts a full new set.",
        Effect.NEXT_DEPLOY,
        choices=("Time", "Health", "Immutable"),
    ),
    Option(
        "aws:autoscaling:updatepolicy:rollingupdate",
        "MaxBatchSize",
        "int",
        "1",
        "Instances replaced per batch in a rolling settings change.",
        Effect.NEXT_DEPLOY,
        1,
        100,
    ),
    Option(
        "aws:autoscaling:updatepolicy:rollingupdate",
        "MinInstancesInService",
        "int",
        "1",
        "At least 1: each new batch serves before an old one leaves "
        "(RollingWithAdditionalBatch); 0: old batches leave first (Rolling).",
        Effect.NEXT_DEPLOY,
        0,
        100,
    ),
    Option(
        "beanpole:proxy",
        "ClientMaxBodySize",
        "int",
        "0",
        "Largest request body in bytes (by its Content-Length) the load balancer passes to "
        "the app; larger ones get 413. 0: no limit. Set from `client_max_body_size` in "
        ".platform/nginx.",
        Effect.LOAD_BALANCER,
        0,
        2**40,
    ),
    Option(
        "beanpole:proxy",
        "GzipTypes",
        "str",
        "",
        "Space-separated content types the load balancer compresses with gzip for clients "
        "that accept it ('text/html text/css'); empty: no compression. Set from `gzip on` "
        "and `gzip_types` in .platform/nginx.",
        Effect.LOAD_BALANCER,
    ),
    Option(
        "beanpole:proxy",
        "RedirectHTTPToHTTPS",
        "bool",
        "false",
        "Answer HTTP requests with a 301 to the same URL over HTTPS. Needs the HTTPS "
        "listener (aws:elbv2:listener:443 with a certificate).",
        Effect.LOAD_BALANCER,
    ),
    Option(
        _LISTENER_HTTP,
        "ListenerEnabled",
        "bool",
        "true",
        "Whether the environment answers on the load balancer's HTTP port.",
        Effect.LOAD_BALANCER,
    ),
    Option(
        _LISTENER_HTTPS,
        "ListenerEnabled",
        "bool",
        "true",
        "Whether the environment answers on the load balancer's HTTPS port, once "
        "SSLCertificateArns names a certificate.",
        Effect.LOAD_BALANCER,
    ),
    Option(
        _LISTENER_HTTPS,
        "Protocol",
        "enum",
        "HTTPS",
        "The HTTPS listener speaks TLS only.",
        Effect.LOAD_BALANCER,
        choices=("HTTPS",),
    ),
    Option(
        _LISTENER_HTTPS,
        "SSLCertificateArns",
        "str",
        "",
        "Comma-separated certificates (beanpole certs add NAME ...) the HTTPS listener offers "
        "for this environment: names, or ARNs whose last segment is a name "
        "(arn:aws:acm:REGION:ACCOUNT:certificate/NAME). Empty: no HTTPS listener.",
        Effect.LOAD_BALANCER,
    ),
    Option(
        _LISTENER_HTTPS,
        "SSLPolicy",
        "enum",
        DEFAULT_SSL_POLICY,
        "Elastic Beanstalk's security policy: the ...TLS13-1-3... policies accept TLS 1.3 "
        "only; every other accepts TLS 1.2 and 1.3 (1.0 and 1.1 are never offered).",
        Effect.LOAD_BALANCER,
        choices=tuple(SSL_POLICIES),
    ),
    Option(
        _ASG,
        "MinSize",
        "int",
        "1",
        "Fewest instances: the desired capacity (`beanpole scale`) never goes below it; a "
        "new environment starts with this many.",
        Effect.SCALE,
        0,
        100,
    ),
    Option(
        _ASG,
        "MaxSize",
        "int",
        "4",
        "Most instances: the desired capacity never goes above it.",
        Effect.SCALE,
        1,
        100,
    ),
    Option(
        _ASG,
        "Cooldown",
        "int",
        "360",
        "Seconds after a scaling activity before a trigger may scale again. Beanpole's "
        "default policy (no aws:autoscaling:trigger option set) uses it only when set.",
        Effect.AT_ONCE,
        0,
        86400,
    ),
    Option(
        "beanpole:autoscaling",
        "TargetCPU",
        "int",
        "50",
        "Beanpole's default policy: the average CPUUtilization (% of one core per instance) "
        "it sizes the environment for, scaling out and in.",
        Effect.AT_ONCE,
        1,
        1000,
    ),
    Option(
        "beanpole:autoscaling",
        "ScaleOutCPU",
        "int",
        "70",
        "Beanpole's default policy: a 10 s window whose average CPUUtilization is above this "
        "scales out. Must be above TargetCPU (the gap keeps it from flapping).",
        Effect.AT_ONCE,
        1,
        1000,
    ),
    Option(
        "beanpole:autoscaling",
        "ScaleInAfter",
        "int",
        "120",
        "Beanpole's default policy: seconds of low enough CPU before it scales in.",
        Effect.AT_ONCE,
        10,
        86400,
    ),
    Option(
        _TRIGGER,
        "MeasureName",
        "enum",
        "NetworkOut",
        "The measure the trigger watches. Setting any aws:autoscaling:trigger option "
        "replaces Beanpole's default policy (CPU, in seconds) with EB's trigger.",
        Effect.AT_ONCE,
        choices=(
            "CPUUtilization",
            "NetworkIn",
            "NetworkOut",
            "RequestCount",
            "Latency",
            "TargetResponseTime",
            "HealthyHostCount",
            "UnhealthyHostCount",
        ),
    ),
    Option(
        _TRIGGER,
        "Statistic",
        "enum",
        "Average",
        "How the measure's data points of a period combine: across instances, or across "
        "the period's 10 s windows for the host counts.",
        Effect.AT_ONCE,
        choices=("Minimum", "Maximum", "Sum", "Average"),
    ),
    Option(
        _TRIGGER,
        "Unit",
        "str",
        "",
        "Unit of the thresholds: Percent, Count, Seconds, Milliseconds, Microseconds, Bytes, "
        "Kilobytes, Megabytes, Gigabytes, Bits, Kilobits, Megabits, Gigabits. Empty: the "
        "measure's own (Bytes for NetworkIn/Out, as EB's default).",
        Effect.AT_ONCE,
    ),
    Option(
        _TRIGGER,
        "Period",
        "int",
        "5",
        "Minutes in one evaluation period.",
        Effect.AT_ONCE,
        1,
        1440,
    ),
    Option(
        _TRIGGER,
        "EvaluationPeriods",
        "int",
        "1",
        "Consecutive periods that must breach a threshold.",
        Effect.AT_ONCE,
        1,
        600,
    ),
    Option(
        _TRIGGER,
        "BreachDuration",
        "int",
        "5",
        "Minutes the measure must stay past a threshold before the trigger fires.",
        Effect.AT_ONCE,
        1,
        1440,
    ),
    Option(
        _TRIGGER,
        "UpperThreshold",
        "number",
        "6000000",
        "Above this (in Unit), the trigger scales out.",
        Effect.AT_ONCE,
    ),
    Option(
        _TRIGGER,
        "LowerThreshold",
        "number",
        "2000000",
        "Below this (in Unit), the trigger scales in.",
        Effect.AT_ONCE,
    ),
    Option(
        _TRIGGER,
        "UpperBreachScaleIncrement",
        "int",
        "1",
        "Instances to add when the upper threshold is breached.",
        Effect.AT_ONCE,
        1,
        100,
    ),
    Option(
        _TRIGGER,
        "LowerBreachScaleIncrement",
        "int",
        "-1",
        "Instances to add (a negative number removes) when the lower threshold is breached.",
        Effect.AT_ONCE,
        -100,
        -1,
    ),
)

OPTIONS: dict[str, Option] = {o.key: o for o in _TABLE}
NAMESPACES: frozenset[str] = frozenset(o.namespace for o in _TABLE)
