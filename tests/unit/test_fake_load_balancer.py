"""The fake load balancer answers as the HAProxy adapter does (tests/integration/test_haproxy.py
pins the real answers these copy: UP/L7OK when a check passes, DOWN/L4CON when refused, DRAIN
after a drain, weight 0 still UP)."""

from __future__ import annotations

import pytest

from beanpole.core.errors import ComponentError, InvalidInput, NotFound
from beanpole.core.lb.config import Backend, HealthCheck, LoadBalancerSpec, Server
from beanpole.testing.load_balancer import FakeLoadBalancer

CHECK = HealthCheck()


def spec(
    *servers: tuple[str, int], env: str = "shop", check: HealthCheck = CHECK
) -> LoadBalancerSpec:
    backend = Backend(
        env,
        (f"{env}.localhost",),
        check,
        tuple(
            Server(name, "127.0.0.1", 20000 + i, weight) for i, (name, weight) in enumerate(servers)
        ),
    )
    return LoadBalancerSpec("127.0.0.1", 8080, (backend,))


def status(lb: FakeLoadBalancer, server: str, env: str = "shop") -> tuple[str, str, int]:
    state = lb.server_states()[(env, server)]
    return state.status, state.check_status, state.weight


@pytest.fixture
def lb() -> FakeLoadBalancer:
    fake = FakeLoadBalancer()
    fake.start(spec(("i-1", 1), ("i-2", 0)))
    return fake


def test_a_specs_servers_are_up_with_passing_checks_and_their_weights(lb: FakeLoadBalancer) -> None:
    assert lb.is_running()
    assert status(lb, "i-1") == ("UP", "L7OK", 1)
    assert status(lb, "i-2") == ("UP", "L7OK", 0)  # weight 0 is still UP, as in HAProxy
    assert all(state.healthy for state in lb.server_states().values())


def test_a_server_marked_down_fails_its_check_until_marked_up(lb: FakeLoadBalancer) -> None:
    lb.mark_down("shop", "i-1")
    assert status(lb, "i-1") == ("DOWN", "L7STS", 1)
    assert not lb.server_states()[("shop", "i-1")].healthy
    lb.apply(spec(("i-1", 1), ("i-2", 1)))  # a health mark is observed, not configured
    assert status(lb, "i-1")[0] == "DOWN"
    lb.mark_up("shop", "i-1")
    assert lb.server_states()[("shop", "i-1")].healthy
    lb.mark_down("shop", "i-2", check_status="L4CON")
    assert status(lb, "i-2") == ("DOWN", "L4CON", 1)


def test_runtime_weights_and_drains_last_until_the_next_spec(lb: FakeLoadBalancer) -> None:
    lb.set_weight("shop", "i-2", 7)
    lb.drain("shop", "i-1")
    assert status(lb, "i-2") == ("UP", "L7OK", 7)
    assert status(lb, "i-1") == ("DRAIN", "L7OK", 1)
    assert lb.server_states()[("shop", "i-1")].healthy  # draining is alive, not failing
    lb.apply(spec(("i-1", 1), ("i-2", 0)))
    assert status(lb, "i-1") == ("UP", "L7OK", 1)
    assert status(lb, "i-2") == ("UP", "L7OK", 0)


def test_servers_come_and_go_with_the_spec_and_a_returning_one_starts_afresh(
    lb: FakeLoadBalancer,
) -> None:
    lb.mark_down("shop", "i-2")
    lb.record("shop", "i-2", 10, 3)
    lb.apply(spec(("i-1", 1), ("i-3", 1)))
    assert set(lb.server_states()) == {("shop", "i-1"), ("shop", "i-3")}
    lb.apply(spec(("i-1", 1), ("i-2", 1)))
    state = lb.server_states()[("shop", "i-2")]
    assert (state.status, state.responses, state.responses_5xx) == ("UP", 0, 0)


def test_responses_and_sessions_are_what_the_test_recorded(lb: FakeLoadBalancer) -> None:
    lb.record("shop", "i-1", 20, 5)
    lb.record("shop", "i-1", 10)
    lb.set_sessions("shop", "i-1", 3)
    state = lb.server_states()[("shop", "i-1")]
    assert (state.responses, state.responses_5xx, state.sessions) == (30, 5, 3)
    with pytest.raises(ValueError, match="impossible"):
        lb.record("shop", "i-1", 1, 2)


def test_only_a_structural_change_counts_as_a_reload(lb: FakeLoadBalancer) -> None:
    lb.apply(spec(("i-1", 1), ("i-2", 1), ("i-3", 1)))  # servers and weights: runtime API
    assert lb.reloads == 0
    lb.apply(spec(("i-1", 1), check=HealthCheck(interval_s=5)))  # check settings: a reload
    assert lb.reloads == 1
    assert lb.spec is not None and lb.spec.backends[0].check.interval_s == 5


def test_unknown_servers_and_bad_values_are_refused_as_haproxy_refuses_them(
    lb: FakeLoadBalancer,
) -> None:
    with pytest.raises(NotFound, match="no server 'i-9'"):
        lb.set_weight("shop", "i-9", 1)
    with pytest.raises(NotFound):
        lb.mark_down("blog", "i-1")
    with pytest.raises(InvalidInput, match="use 0 to 256"):
        lb.set_weight("shop", "i-1", 257)
    with pytest.raises(InvalidInput, match="use 1 or more"):
        lb.set_sampling({"shop": 0})
    lb.set_sampling({"shop": 4})
    assert lb.sampling == {"shop": 4}


def test_a_stopped_load_balancer_answers_nothing_until_started_again(
    lb: FakeLoadBalancer,
) -> None:
    lb.stop()
    assert not lb.is_running()
    with pytest.raises(ComponentError, match="not running"):
        lb.server_states()
    with pytest.raises(ComponentError, match="not running"):
        lb.apply(spec(("i-1", 1)))
    lb.start(spec(("i-4", 1)))
    assert set(lb.server_states()) == {("shop", "i-4")}


def test_start_on_a_running_one_adopts_it_like_haproxy(lb: FakeLoadBalancer) -> None:
    lb.mark_down("shop", "i-1")
    lb.start(spec(("i-1", 1)))
    assert status(lb, "i-1")[0] == "DOWN"  # applied, not restarted
