"""EB's enhanced health rules: facts about an environment in, statuses and causes out.

Pure functions over plain records (the monitor gathers the facts and passes ``now``), so
every rule can be tested at and around its threshold. Statuses, colours and cause sentences
are EB's own, because users search for them and tools match on them. EB does not publish its
thresholds; Beanpole's are the defaults of `Thresholds`, documented there.

A verdict is the worst status any rule reached, with every cause found, worst first. Causes
below the verdict's status stay listed (e.g. a deployment in progress while 5xx errors make the
environment Degraded) because EB lists them too and they explain what is going on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from beanpole.core.metrics import WindowStats


class Status(StrEnum):
    OK = "Ok"
    INFO = "Info"
    UNKNOWN = "Unknown"
    PENDING = "Pending"
    WARNING = "Warning"
    DEGRADED = "Degraded"
    SEVERE = "Severe"
    SUSPENDED = "Suspended"


COLOUR: dict[Status, str] = {
    Status.OK: "Green",
    Status.INFO: "Green",
    Status.WARNING: "Yellow",
    Status.DEGRADED: "Red",
    Status.SEVERE: "Red",
    Status.PENDING: "Grey",
    Status.UNKNOWN: "Grey",
    Status.SUSPENDED: "Grey",
}

_ORDER = (
    Status.OK,
    Status.INFO,
    Status.PENDING,
    Status.UNKNOWN,
    Status.SUSPENDED,
    Status.WARNING,
    Status.DEGRADED,
    Status.SEVERE,
)


def rank(status: Status) -> int:
    """How bad ``status`` is, so the worst finding wins.

    Ok < Info < Pending < Unknown < Suspended < Warning < Degraded < Severe: any real problem
    outranks "no data" (Grey), and "no data" outranks "an operation is in progress" (Info).
    Unknown is above Pending because launching is expected and silence is not.
    """
    return _ORDER.index(status)


@dataclass(frozen=True)
class Thresholds:
    """The numbers behind the rules; a share is a fraction of the window's requests.

    - 5xx share: Warning from 1 %, Degraded from 10 %, Severe from 25 %.
    - 4xx share (``rule_4xx``; off for apps where 4xx is normal): Warning from 10 %, Degraded
      from 50 %.
    - p99 latency: Warning from 3 s, Degraded from 10 s.
    - CPU of the instance's processes: Warning from 90 %, Degraded from 95 %.
    - Request rules (5xx, 4xx, latency) need ``min_requests`` (10) requests in the window,
      counted in request lines when the stream is sampled: one failed request out of three
      is noise, not a 33 % error rate.
    - A window that ended ``stale_after_s`` (20 s) or more before now is ignored: no request
      since then means no data, not the last known error rate forever. Two windows' worth,
      so a window closed a little late still counts.
    - Info "Application deployment completed …" is shown for ``recent_deployment_s`` (60 s)
      after a deployment finishes.

    Every threshold is inclusive: at exactly 10 % 5xx the environment is Degraded.
    """

    warning_5xx: float = 0.01
    degraded_5xx: float = 0.10
    severe_5xx: float = 0.25
    warning_4xx: float = 0.10
    degraded_4xx: float = 0.50
    rule_4xx: bool = True
    warning_p99_ms: float = 3000
    degraded_p99_ms: float = 10000
    warning_cpu: float = 90.0
    degraded_cpu: float = 95.0
    min_requests: int = 10
    stale_after_s: float = 20.0
    recent_deployment_s: float = 60.0


@dataclass(frozen=True)
class InstanceInput:
    id: str
    state: str  # "pending" | "in-service" | "draining" | "standby" | "stopping"
    check_passing: bool | None  # load balancer check; None = not in the load balancer yet
    process_failure: str | None  # e.g. "web exited with status 1: ..." (crash loop), else None
    window: WindowStats | None  # latest 10 s window, None = no requests seen
    cpu_percent: float | None  # of the instance's process tree, None = unknown
    version: str
    deployment_id: int
    launched_at: float


@dataclass(frozen=True)
class EnvInput:
    name: str
    expected_version: str
    expected_deployment_id: int
    min_size: int
    deployment: tuple[float, float | None] | None  # (started_at, finished_at or None), or None
    window: WindowStats | None  # environment-level latest window
    instances: tuple[InstanceInput, ...]
    now: float
    lb_answering: bool = True  # False: HAProxy did not answer, no check state is known
    # how many should run (`beanpole.core.capacity.desired_count`); None: min_size
    desired_capacity: int | None = None
    # instances lost lately (``Instance i-… lost: node n3 is down``): said while below capacity
    lost: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    status: Status
    causes: tuple[str, ...]

    @property
    def colour(self) -> str:
        return COLOUR[self.status]


_Finding = tuple[Status, str]


def _verdict(findings: Sequence[_Finding]) -> Verdict:
    """Worst status wins (Ok when nothing was found); causes worst first, else in rule order."""
    ordered = sorted(findings, key=lambda f: -rank(f[0]))
    status = ordered[0][0] if ordered else Status.OK
    return Verdict(status, tuple(cause for _, cause in ordered))


def _percent(share: float) -> int:
    """A share as EB prints it: whole percent, rounded down so the number shown never
    exceeds the threshold that fired (9.9 % reads 9 %, not a Degraded-looking 10 %); at
    least 1 for any non-zero share. The epsilon undoes float noise (0.29 * 100 = 28.99…)."""
    if share <= 0:
        return 0
    return max(1, math.floor(share * 100 + 1e-9))


def _duration(seconds: float) -> str:
    """EB's durations: "3 seconds", "2 minutes", "1 hour" (whole units, rounded down)."""
    whole = max(0, int(seconds))
    for unit, size in (("hour", 3600), ("minute", 60)):
        if whole >= size:
            count = whole // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{whole} second{'' if whole == 1 else 's'}"


def recent(
    window: WindowStats | None, now: float, t: Thresholds | None = None
) -> WindowStats | None:
    """The window if it ended less than ``stale_after_s`` ago, else None: an idle
    environment's last window (minutes old) is history, not its current figures."""
    t = t or Thresholds()
    if window is None or now - (window.start + window.duration_s) >= t.stale_after_s:
        return None
    return window


def _current(window: WindowStats | None, now: float, t: Thresholds) -> WindowStats | None:
    """The window if it is recent and holds enough requests to judge, else None.

    Enough is counted in lines, not in weighted requests: under 1:N sampling one line
    stands for N requests but is still one observation, and one failed request is noise.
    """
    if window is None or min(window.requests, window.lines or window.requests) < t.min_requests:
        return None
    return recent(window, now, t)


def _request_findings(window: WindowStats | None, now: float, t: Thresholds) -> list[_Finding]:
    """The rules on a window's requests, shared by instances and the environment."""
    current = _current(window, now, t)
    if current is None:
        return []
    findings: list[_Finding] = []
    share_5xx = current.share(5)
    level = _level(share_5xx, t.warning_5xx, t.degraded_5xx, t.severe_5xx)
    if level is not None:
        findings.append(
            (level, f"{_percent(share_5xx)}% of the requests are failing with HTTP 5xx")
        )
    if t.rule_4xx:
        share_4xx = current.share(4)
        level = _level(share_4xx, t.warning_4xx, t.degraded_4xx)
        if level is not None:
            findings.append(
                (level, f"{_percent(share_4xx)}% of requests are erroring with HTTP 4xx")
            )
    p99 = current.latency_ms.get(99.0)
    if p99 is not None:
        level = _level(p99, t.warning_p99_ms, t.degraded_p99_ms)
        if level is not None:
            findings.append(
                (
                    level,
                    "Application requests are taking longer than expected: "
                    f"p99 is {p99 / 1000:.1f} s",
                )
            )
    return findings


def _level(
    value: float, warning: float, degraded: float, severe: float = math.inf
) -> Status | None:
    """Which threshold ``value`` reached (inclusive), if any."""
    if value >= severe:
        return Status.SEVERE
    if value >= degraded:
        return Status.DEGRADED
    if value >= warning:
        return Status.WARNING
    return None


def instance_health(i: InstanceInput, t: Thresholds, now: float, deploying: bool) -> Verdict:
    """One instance's status and causes.

    A launching instance is Pending and a draining one Info: neither is judged on requests,
    since the first isn't serving yet and the second is leaving. A crashed process is Severe
    in any state but draining, because it explains a stuck launch. An in-service instance is
    Severe when its load balancer check fails (it gets no traffic at all), Unknown while the
    check has no result, and otherwise judged on its requests and CPU; during a deployment an
    instance with nothing wrong is Info.
    """
    return _verdict(_instance_findings(i, t, now, deploying))


def _instance_findings(
    i: InstanceInput, t: Thresholds, now: float, deploying: bool
) -> list[_Finding]:
    if i.state == "draining":
        return [(Status.INFO, "Instance is being drained")]
    if i.state == "stopping":
        return [(Status.INFO, "Instance is stopping")]
    if i.state == "standby":
        return [(Status.INFO, "Instance is on standby until the deployment's bake window closes")]
    findings: list[_Finding] = []
    if i.process_failure:
        findings.append((Status.SEVERE, i.process_failure))
    if i.state == "pending":
        running = _duration(now - i.launched_at)
        findings.append((Status.PENDING, f"Initialization in progress (running for {running})"))
        return findings
    if i.check_passing is False:
        findings.append((Status.SEVERE, "Failing health checks"))
    elif i.check_passing is None:
        findings.append((Status.UNKNOWN, "No data from the load balancer yet"))
    findings += _request_findings(i.window, now, t)
    if i.cpu_percent is not None:
        level = _level(i.cpu_percent, t.warning_cpu, t.degraded_cpu)
        if level is not None:
            findings.append((level, f"{math.floor(i.cpu_percent + 1e-9)}% of CPU is in use"))
    if deploying and not findings:
        findings.append((Status.INFO, "Application deployment in progress"))
    return findings


def _out_of(count: int, total: int) -> str:
    return "all instances" if count == total else f"{count} out of {total} instances"


def environment_health(e: EnvInput, t: Thresholds) -> tuple[Verdict, dict[str, Verdict]]:
    """The environment's verdict and each instance's (keyed by instance id).

    The environment's status is the worst of:

    - its deployment: Info while one runs, and for ``recent_deployment_s`` after it ends;
    - its own request window (all instances' requests merged, plus those no server took);
    - its in-service instances: all Severe -> Severe, any Severe or Degraded -> Degraded,
      any Warning -> Warning (pending and draining instances never count against it);
    - capacity: fewer in-service instances than ``min_size`` (EB's sentence), or than the
      desired capacity above it, is Severe with none, Warning with some, and only Info
      during a deployment, which takes instances out on purpose; instances lost lately
      (their node died) are named beside it;
    - consistency: in-service instances on another version or deployment -> Warning (not
      judged during a deployment, when a mix is expected); each such instance says so too;
    - no data: Unknown when every in-service instance is Unknown and the environment's window
      has nothing to judge;
    - the load balancer itself not answering: Severe (nothing reaches any instance).
    """
    now = e.now
    deploying = e.deployment is not None and e.deployment[1] is None
    own = {i.id: _instance_findings(i, t, now, deploying) for i in e.instances}
    verdicts = {key: _verdict(found) for key, found in own.items()}
    serving = [i for i in e.instances if i.state == "in-service"]
    statuses = [verdicts[i.id].status for i in serving]

    findings = _deployment_findings(e.deployment, now, t)
    if not e.lb_answering:
        findings.append((Status.SEVERE, "The load balancer is not answering"))
    findings += _request_findings(e.window, now, t)
    findings += _fleet_findings(serving, verdicts)
    desired = e.min_size if e.desired_capacity is None else e.desired_capacity
    if len(serving) < max(e.min_size, desired):
        level = Status.INFO if deploying else Status.WARNING if serving else Status.SEVERE
        below = (
            f"Auto Scaling group minimum size {e.min_size}"
            if len(serving) < e.min_size
            else f"the desired capacity {desired}"
        )
        findings.append((level, f"{len(serving)} active instances is below {below}"))
        findings += [(level, cause) for cause in e.lost]
    expected = f'Expected version "{e.expected_version}" (deployment {e.expected_deployment_id}).'
    wrong = [
        i
        for i in serving
        if (i.version, i.deployment_id) != (e.expected_version, e.expected_deployment_id)
    ]
    if wrong and not deploying:
        findings.append(
            (
                Status.WARNING,
                f"Incorrect application version found on {len(wrong)} out of {len(serving)} "
                f"instances. {expected}",
            )
        )
        for i in wrong:
            cause = f'Incorrect application version "{i.version}" (deployment {i.deployment_id}). '
            verdicts[i.id] = _verdict([*own[i.id], (Status.WARNING, cause + expected)])
    no_data = all(s is Status.UNKNOWN for s in statuses)
    if serving and no_data and _current(e.window, now, t) is None:
        findings.append((Status.UNKNOWN, "None of the instances are sending data"))
    return _verdict(findings), verdicts


def _deployment_findings(
    deployment: tuple[float, float | None] | None, now: float, t: Thresholds
) -> list[_Finding]:
    """Info while a deployment runs and for a while after, so users see why things moved."""
    if deployment is None:
        return []
    started, finished = deployment
    if finished is None:
        running = _duration(now - started)
        return [(Status.INFO, f"Performing application deployment (running for {running})")]
    if now - finished < t.recent_deployment_s:
        ago, took = _duration(now - finished), _duration(finished - started)
        return [(Status.INFO, f"Application deployment completed {ago} ago and took {took}")]
    return []


def _fleet_findings(
    serving: Sequence[InstanceInput], verdicts: dict[str, Verdict]
) -> list[_Finding]:
    """In-service instances' troubles, summed up: all Severe -> Severe, any Severe or Degraded
    -> Degraded, any Warning -> Warning; failing checks and other troubles counted apart."""
    statuses = [verdicts[i.id].status for i in serving]
    if all(s is Status.SEVERE for s in statuses):
        fleet = Status.SEVERE
    elif any(s in (Status.SEVERE, Status.DEGRADED) for s in statuses):
        fleet = Status.DEGRADED
    else:
        fleet = Status.WARNING
    failing = sum(1 for i in serving if i.check_passing is False)
    impaired = sum(
        1
        for i in serving
        if i.check_passing is not False and rank(verdicts[i.id].status) >= rank(Status.WARNING)
    )
    findings: list[_Finding] = []
    if failing:
        where = _out_of(failing, len(serving))
        findings.append((fleet, f"ELB health is failing or not available for {where}"))
    if impaired:
        findings.append((fleet, f"Impaired services on {_out_of(impaired, len(serving))}"))
    return findings


def transition_event(env: str, old: Status, new: Status, causes: Sequence[str]) -> str:
    """The event EB records when an environment's status changes, causes after the sentence.

    ``env`` is not part of EB's sentence (the event names its environment separately); it is
    taken so callers pass one record's worth of facts.
    """
    sentences = [f"Environment health has transitioned from {old} to {new}."]
    sentences += [c if c.endswith(".") else f"{c}." for c in causes]
    return " ".join(sentences)
