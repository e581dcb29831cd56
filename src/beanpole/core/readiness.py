"""Whether a starting instance is ready, judged from its probe answers (pure).

Beanpole probes a new instance directly (it is not in the load balancer yet) with the request
the load balancer's check will send: ``GET <HealthCheckPath>`` with the environment's own
``Host``. Each answer moves a small state along:

- a matching status (``MatcherHTTPCode``) counts towards ``HealthyThresholdCount`` passes in
  a row: the instance is ready;
- no answer at all (the connection was refused, reset or timed out) means "not listening
  yet": the instance keeps its chance until ``StartTimeout``;
- a definite wrong answer (a redirect or a client error: 404, 400 from a host-name check)
  repeated ``UnhealthyThresholdCount`` times in a row fails the start at once, with the path,
  the answer, the ``Host`` sent and the setting to change: the app will not change its mind;
- a server error (503 while the app warms up) or a transient client error (408, 425, 429)
  is not definite: it is remembered for the message, and the instance waits for
  ``StartTimeout`` as when nothing answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from beanpole.core.lb.config import HealthCheck, parse_matcher

PROCESS_NAMESPACE = "aws:elasticbeanstalk:environment:process:default"
_TRANSIENT = frozenset({408, 425, 429})  # timeout, too early, too many requests


@dataclass(frozen=True)
class Answer:
    """What one probe got: an HTTP status, or none (``problem`` says what happened instead)."""

    status: int | None
    reason: str = ""  # the HTTP reason phrase ("Bad Request")
    location: str = ""  # a redirect's Location
    problem: str = ""  # without a status: "did not listen on PORT 20001", "timed out after 5 s"
    listening: bool = True  # False: the connection was refused (nothing listens yet)

    @property
    def answered(self) -> bool:
        return self.status is not None


class Verdict(StrEnum):
    WAITING = "waiting"
    READY = "ready"
    FAILED = "failed"  # a definite wrong answer, UnhealthyThresholdCount times in a row


@dataclass(frozen=True)
class Probing:
    """One instance's probes so far."""

    passes: int = 0  # matching answers in a row
    wrong: int = 0  # definite wrong answers in a row
    last: Answer | None = None  # the latest answer that did not pass
    verdict: Verdict = Verdict.WAITING


def matches(matcher: str, status: int) -> bool:
    """Whether ``status`` is one ``MatcherHTTPCode`` accepts ("200", "200,302", "200-299")."""
    return status in parse_matcher(matcher)


def observe(state: Probing, answer: Answer, check: HealthCheck, *, listen_only: bool) -> Probing:
    """The state after one more answer. ``listen_only`` (``IgnoreHealthCheck``): any HTTP
    answer, or a connection that was accepted and then timed out, counts as a pass."""
    if state.verdict is not Verdict.WAITING:
        return state
    passed = (
        answer.listening
        if listen_only
        else answer.status is not None and matches(check.matcher, answer.status)
    )
    if passed:
        passes = state.passes + 1
        return replace(
            state,
            passes=passes,
            wrong=0,
            verdict=Verdict.READY if passes >= check.healthy_threshold else Verdict.WAITING,
        )
    wrong = state.wrong + 1 if definite(answer) else 0
    return Probing(
        passes=0,
        wrong=wrong,
        last=answer,
        verdict=Verdict.FAILED if wrong >= check.unhealthy_threshold else Verdict.WAITING,
    )


def definite(answer: Answer) -> bool:
    """A wrong answer the app will give again: a redirect or a lasting client error."""
    status = answer.status
    return status is not None and 300 <= status < 500 and status not in _TRANSIENT


def wrong_answer(
    check: HealthCheck,
    host: str,
    answer: Answer,
    times: int,
    namespace: str = PROCESS_NAMESPACE,
) -> str:
    """Why a definite wrong answer fails the start, and which setting changes what is asked
    (``namespace``: the process's, a listener rule's process has its own)."""
    got = f"{answer.status} {answer.reason}".strip()
    if answer.location:
        got += f" (Location: {answer.location})"
    expected = check.matcher
    return (
        f"GET {check.path} answered {got} {times} times (Host: {host}): the health check "
        f"expects {expected}. Make the app answer {expected} on that path, or set "
        f"{namespace} HealthCheckPath (or MatcherHTTPCode)."
    )


def wrong_port(listening: Iterable[int], port: int, platform: str) -> str:
    """Why an app that listens, but not on ``PORT``, cannot be reached."""
    where = " and ".join(str(p) for p in sorted(listening))
    listen = {"nodejs": "process.env.PORT", "python": "$PORT (os.environ['PORT'])"}.get(
        platform, "$PORT"
    )
    return (
        f"the app listens on {where} but PORT is {port}: listen on {listen} (Elastic "
        "Beanstalk's proxy sends requests to PORT too)"
    )


def not_ready(answer: Answer | None, port: int) -> str:
    """Why an instance has not passed yet, from its latest failing answer."""
    if answer is None:
        return f"did not listen on PORT {port}"
    if answer.answered:
        return f"health check answered {answer.status} {answer.reason}".rstrip()
    return answer.problem
