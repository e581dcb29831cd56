"""One snapshot of the runtime and the load balancer per tick, shared by every reader."""

from __future__ import annotations

import asyncio
from pathlib import Path

from beanpole.core.lb.config import Backend, HealthCheck, LoadBalancerSpec, Server
from beanpole.core.runtime import InstanceSpec, ProcessStatus
from beanpole.services.observer import Observer
from beanpole.testing import FakeLoadBalancer, FakeRuntime


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def world() -> tuple[FakeRuntime, FakeLoadBalancer]:
    runtime = FakeRuntime()
    endpoint = runtime.start(InstanceSpec("i-1", {"web": "serve"}, Path("/app"), {}, Path("/logs")))
    lb = FakeLoadBalancer()
    check = HealthCheck("/", 15, 5, 3, 5, "200")
    server = Server("i-1", endpoint.host, endpoint.port, 100)
    lb.start(LoadBalancerSpec("127.0.0.1", 8080, (Backend("shop", ("shop.x",), check, (server,)),)))
    return runtime, lb


def test_a_snapshot_holds_both_sides_in_neutral_terms():
    runtime, lb = world()
    snapshot = asyncio.run(Observer(runtime, lb).refresh())
    assert snapshot.runtime_ok and snapshot.lb_ok
    assert snapshot.instances["i-1"].web.status is ProcessStatus.RUNNING
    assert snapshot.servers[("shop", "i-1")].passing


def test_concurrent_askers_share_one_poll():
    runtime, lb = world()
    observer = Observer(runtime, lb)

    async def many() -> None:
        snapshots = await asyncio.gather(*(observer.refresh() for _ in range(5)))
        assert len({id(s) for s in snapshots}) == 1

    asyncio.run(many())
    assert observer.polls == 1 and lb.asked == 1


def test_fresh_reuses_a_recent_snapshot_and_polls_when_it_is_older():
    runtime, lb = world()
    clock = Clock()
    observer = Observer(runtime, lb, clock=clock)
    first = asyncio.run(observer.fresh(1.0))
    clock.now += 0.5
    assert asyncio.run(observer.fresh(1.0)) is first
    clock.now += 1.0
    assert asyncio.run(observer.fresh(1.0)) is not first
    assert observer.polls == 2


def test_a_component_down_is_a_fact_of_the_snapshot_not_an_error():
    runtime, lb = world()
    lb.fail()
    runtime.fail()
    snapshot = asyncio.run(Observer(runtime, lb).refresh())
    assert not snapshot.runtime_ok and "not running" in snapshot.runtime_error
    assert not snapshot.lb_ok and snapshot.servers == {}


def test_an_idle_reader_may_reuse_the_load_balancers_view_but_never_the_runtimes():
    runtime, lb = world()
    clock = Clock()
    observer = Observer(runtime, lb, clock=clock)
    first = asyncio.run(observer.refresh())
    clock.now += 2.0
    runtime.crash("i-1")  # a process that dies is seen at once
    second = asyncio.run(observer.refresh(lb_max_age_s=3.0))
    assert lb.asked == 1 and second.servers is first.servers and second.lb_at == first.lb_at
    assert second.instances["i-1"].web.dead
    clock.now += 2.0  # now 4 s old: read again
    asyncio.run(observer.refresh(lb_max_age_s=3.0))
    assert lb.asked == 2
    lb.fail()
    asyncio.run(observer.refresh())
    asyncio.run(observer.refresh(lb_max_age_s=3.0))  # a failed read is never reused
    assert lb.asked == 4
