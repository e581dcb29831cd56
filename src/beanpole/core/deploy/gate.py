"""The deploy gate: counters in, verdict out.

While a deployment watches its new instances (traffic-splitting evaluation, the bake window
after cut-over) the runner reads HAProxy's per-server counters and the request stream's
latencies every half second and asks `judge` whether the new version may go on. Keeping the
rules here, pure, lets every threshold be tested with plain numbers, and keeps the runner to
what it is: reading the counters, sleeping, and rolling back when told to.

The rules, in the order they are judged (the first that fails is the reason given):

1. an instance that left the load balancer fails the gate (something removed it);
2. an instance whose HAProxy check is DOWN fails it;
3. the new instances' 5xx share over the watch, once ``MIN_RESPONSES_FOR_ERROR_RATE``
   responses were counted, must not pass ``MaxErrorPercent``;
4. the new instances' p99 latency, once ``MIN_LINES_FOR_LATENCY`` request lines were seen,
   must stay under ``MaxLatencyP99`` *or* under ``LATENCY_BASELINE_FACTOR`` times the previous
   version's p99 over the same deployment (when that one answered enough lines to tell): a
   version slow like the one it replaces is not rolled back for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Under 20 answers, one error is 5 %: too few to tell a bad version from bad luck.
MIN_RESPONSES_FOR_ERROR_RATE = 20
# p99 by nearest rank over fewer than 100 values is simply the slowest request, and one
# slow first request (a cold cache) must not roll a deployment back.
MIN_LINES_FOR_LATENCY = 100
LATENCY_BASELINE_FACTOR = 2.0


@dataclass(frozen=True)
class ServerCounters:
    """One new instance as HAProxy sees it, counted since the watch began.

    ``present`` is False when HAProxy no longer has the server at all.
    """

    instance_id: str
    present: bool = True
    status: str = "UP"  # HAProxy's status column: "UP", "DOWN", "UP 1/3", "MAINT"...
    check_status: str = "L7OK"  # the last check's result ("L7OK", "L7STS", "L4CON"...)
    responses: int = 0
    responses_5xx: int = 0


@dataclass(frozen=True)
class Latency:
    """Request lines seen and their p99 (None when there were none)."""

    lines: int
    p99_ms: float | None


@dataclass(frozen=True)
class Limits:
    """``beanpole:deploy`` thresholds; a latency limit of 0 turns the latency rule off."""

    max_error_percent: int
    max_latency_p99_ms: int


@dataclass(frozen=True)
class Verdict:
    """``ok``, or the reason (a sentence for the user) and the instance at fault if one is."""

    ok: bool
    reason: str = ""
    instance_id: str | None = None


PASS = Verdict(True)


def judge(
    servers: Iterable[ServerCounters],
    limits: Limits,
    *,
    version: str,
    when: str,
    latency: Latency | None = None,
    baseline: Latency | None = None,
) -> Verdict:
    """Whether the new instances of ``version`` still pass; ``when`` ends each reason
    ("during traffic splitting", "after cut-over")."""
    total = errors = 0
    for server in servers:
        if not server.present:
            return Verdict(
                False, f"Instance {server.instance_id} left the load balancer {when}.", None
            )
        if server.status.startswith("DOWN"):
            return Verdict(
                False,
                f"Instance {server.instance_id} of version {version} failed its load balancer "
                f"health check {when} ({server.check_status}).",
                server.instance_id,
            )
        total += server.responses
        errors += server.responses_5xx
    if total >= MIN_RESPONSES_FOR_ERROR_RATE and errors * 100 > limits.max_error_percent * total:
        return Verdict(
            False,
            f"{errors * 100 // total}% of the requests to version {version} are failing with "
            f"HTTP 5xx {when} (threshold {limits.max_error_percent}%).",
        )
    return _judge_latency(limits, version, when, latency, baseline)


def _judge_latency(
    limits: Limits, version: str, when: str, latency: Latency | None, baseline: Latency | None
) -> Verdict:
    limit_ms = limits.max_latency_p99_ms
    if latency is None or limit_ms <= 0 or latency.lines < MIN_LINES_FOR_LATENCY:
        return PASS
    p99 = latency.p99_ms or 0.0
    before = None
    if baseline is not None and baseline.lines >= MIN_LINES_FOR_LATENCY:
        before = baseline.p99_ms
    if p99 <= limit_ms or (before is not None and p99 <= LATENCY_BASELINE_FACTOR * before):
        return PASS
    compared = "" if before is None else f", {before / 1000:.2f} s before the deployment"
    return Verdict(
        False,
        f"Requests to version {version} are too slow {when}: p99 is {p99 / 1000:.2f} s "
        f"(threshold {limit_ms / 1000:g} s{compared}).",
    )
