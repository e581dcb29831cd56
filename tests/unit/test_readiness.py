"""The readiness probe's judgement (issue 8, part 5): passes in a row make an instance ready,
a definite wrong answer repeated UnhealthyThresholdCount times fails it at once, and no
answer at all (refused, timed out) only means "not listening yet"."""

import pytest

from beanpole.core.lb.config import HealthCheck
from beanpole.core.readiness import (
    Answer,
    Probing,
    Verdict,
    matches,
    not_ready,
    observe,
    wrong_answer,
)

CHECK = HealthCheck(path="/", healthy_threshold=3, unhealthy_threshold=5, matcher="200")
REFUSED = Answer(None, problem="did not listen on PORT 20001", listening=False)
TIMEOUT = Answer(None, problem="health check GET / timed out after 5 s")


def run(answers: list[Answer], *, listen_only: bool = False, check: HealthCheck = CHECK) -> Probing:
    state = Probing()
    for answer in answers:
        state = observe(state, answer, check, listen_only=listen_only)
    return state


def test_healthy_threshold_passes_in_a_row_make_it_ready() -> None:
    assert run([Answer(200, "OK")] * 2).verdict is Verdict.WAITING
    assert run([Answer(200, "OK")] * 3).verdict is Verdict.READY
    # a failure in between starts the count again
    assert run([Answer(200), Answer(200), REFUSED, Answer(200)]).verdict is Verdict.WAITING


@pytest.mark.parametrize("status", [400, 404, 302, 301, 403])
def test_a_definite_wrong_answer_repeated_unhealthy_threshold_times_fails(status: int) -> None:
    assert run([Answer(status)] * 4).verdict is Verdict.WAITING
    failed = run([Answer(status)] * 5)
    assert failed.verdict is Verdict.FAILED
    assert failed.wrong == 5
    assert failed.last == Answer(status)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_a_server_error_while_warming_up_waits_for_the_start_timeout(status: int) -> None:
    state = run([Answer(status)] * 50)
    assert state.verdict is Verdict.WAITING
    assert state.last == Answer(status)  # named if StartTimeout ends the wait
    assert run([Answer(status)] * 50 + [Answer(200)] * 3).verdict is Verdict.READY


@pytest.mark.parametrize("nothing", [REFUSED, TIMEOUT])
def test_no_answer_never_fails_the_start_by_itself(nothing: Answer) -> None:
    state = run([nothing] * 1000)
    assert state.verdict is Verdict.WAITING
    assert state.wrong == 0
    # and it breaks a run of wrong answers: only answers in a row count
    assert run([Answer(404)] * 4 + [nothing] + [Answer(404)] * 4).verdict is Verdict.WAITING


def test_matcher_ranges_and_lists_decide_what_passes() -> None:
    check = HealthCheck(healthy_threshold=1, matcher="200-299,302")
    assert run([Answer(204)], check=check).verdict is Verdict.READY
    assert run([Answer(302)], check=check).verdict is Verdict.READY
    assert run([Answer(301)] * 5, check=check).verdict is Verdict.FAILED
    assert matches("200,302", 302) and not matches("200", 201)


def test_ignore_health_check_passes_on_any_answer_but_not_on_a_refusal() -> None:
    assert run([Answer(404)] * 3, listen_only=True).verdict is Verdict.READY
    assert run([TIMEOUT] * 3, listen_only=True).verdict is Verdict.READY
    assert run([REFUSED] * 30, listen_only=True).verdict is Verdict.WAITING


def test_a_verdict_is_final() -> None:
    failed = run([Answer(404)] * 5)
    assert observe(failed, Answer(200), CHECK, listen_only=False) == failed


def test_the_wrong_answer_message_names_path_answer_host_and_settings() -> None:
    message = wrong_answer(CHECK, "myapp.localhost", Answer(400, "Bad Request"), 5)
    assert message == (
        "GET / answered 400 Bad Request 5 times (Host: myapp.localhost): the health check "
        "expects 200. Make the app answer 200 on that path, or set "
        "aws:elasticbeanstalk:environment:process:default HealthCheckPath (or MatcherHTTPCode)."
    )
    redirect = wrong_answer(
        HealthCheck(path="/health"), "a.localhost", Answer(302, "Found", "/login/"), 5
    )
    assert "GET /health answered 302 Found (Location: /login/) 5 times" in redirect


def test_not_ready_says_what_the_last_probe_saw() -> None:
    assert not_ready(None, 20001) == "did not listen on PORT 20001"
    assert not_ready(REFUSED, 20001) == "did not listen on PORT 20001"
    assert not_ready(TIMEOUT, 20001) == "health check GET / timed out after 5 s"
    assert not_ready(Answer(404, "Not Found"), 20001) == "health check answered 404 Not Found"
