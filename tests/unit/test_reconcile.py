"""The reconcile decisions (`core.reconcile.decide`): facts and a clock value in, actions out.

No process, no store, no sleep: each test states a tick (or a few) as data.
"""

from __future__ import annotations

import time
from dataclasses import replace

from beanpole.core.model import Environment, EnvStatus, Health, Instance, InstanceState
from beanpole.core.reconcile import (
    RESTART_BACKOFF_S,
    Backoff,
    EnvFacts,
    InstanceFacts,
    Lost,
    Memory,
    Moved,
    Record,
    Recovered,
    Repair,
    Replace,
    Restart,
    Restarted,
    Vanished,
    decide,
)
from beanpole.core.runtime import (
    Endpoint,
    InstanceObservation,
    ProcessObservation,
    ProcessStatus,
    ServerState,
)

KEY = "release-1"


def environment(status: EnvStatus = EnvStatus.READY) -> Environment:
    return Environment("shop", "app", "shop", status, Health.GREEN, "v1", {}, 1, 0.0, 0.0)


def record(
    id_: str = "i-1",
    state: InstanceState = InstanceState.IN_SERVICE,
    *,
    pid: int = 100,
    healthy: bool = True,
    key: str = KEY,
) -> Instance:
    return Instance(id_, "shop", "v1", key, 1, 20000, state, time.time(), pid=pid, healthy=healthy)


def running(id_: str = "i-1", pid: int = 100) -> InstanceObservation:
    return InstanceObservation(id_, (ProcessObservation("web", ProcessStatus.RUNNING, pid),))


def given_up(id_: str = "i-1") -> InstanceObservation:
    return InstanceObservation(
        id_,
        (
            ProcessObservation("web", ProcessStatus.FAILED, 0, 3, "exited with status 3"),
            ProcessObservation("worker", ProcessStatus.RUNNING, 101),
        ),
    )


def server(id_: str = "i-1", status: str = "UP", check: str = "L7OK") -> ServerState:
    return ServerState("shop", id_, status, check, 100, 0, healthy=status == "UP")


def facts(*instances: InstanceFacts, desired: int = 1, **env: object) -> EnvFacts:
    base = EnvFacts(
        env=environment(),
        instances=instances,
        busy=False,
        release_key=KEY,
        desired=desired,
        replace_after_s=60.0,
    )
    return replace(base, **env)  # type: ignore[arg-type]


def test_a_converged_environment_with_current_records_needs_nothing():
    decision = decide([facts(InstanceFacts(record(), running(), server()))], Memory(), 0.0)
    assert decision.actions == ()


def test_a_new_pid_and_a_failing_check_are_recorded_with_the_cause():
    one = InstanceFacts(record(), running(pid=200), server(status="UP 1/5", check="L7STS"))
    (action,) = decide([facts(one)], Memory(), 0.0).actions
    assert action == Record(
        "i-1", 200, False, ("Load balancer health check: UP 1/5, last check L7STS.",)
    )


def test_a_server_whose_first_check_has_not_run_counts_as_healthy():
    one = InstanceFacts(record(healthy=False), running(), server(status="UP", check="INI"))
    (action,) = decide([facts(one)], Memory(), 0.0).actions
    assert action == Record("i-1", 100, True, ())


def test_a_process_the_runtime_gave_up_on_is_restarted_with_backoff():
    crashed = InstanceFacts(record(), given_up(), server(), "web exited with status 3: boom")
    memory, restarts = Memory(), []
    # Tick every half second for 4 s: restarts at 0, then 1 s later, then 2 s after that.
    for tick in range(9):
        decision = decide([facts(crashed)], memory, tick * 0.5)
        memory = decision.memory
        restarts += [tick * 0.5 for a in decision.actions if isinstance(a, Restart)]
    assert restarts == [0.0, RESTART_BACKOFF_S[0], RESTART_BACKOFF_S[0] + RESTART_BACKOFF_S[1]]
    # Only what the runtime gave up on: the worker still runs.
    first = decide([facts(crashed)], Memory(), 0.0).actions
    assert Restart("i-1", ("web",)) in first
    assert Record("i-1", 0, True, ("web exited with status 3: boom",)) in first


def test_backoff_is_forgotten_once_the_instance_is_well_again():
    crashed = InstanceFacts(record(), given_up(), server(), "web exited with status 3")
    memory = decide([facts(crashed)], Memory(), 0.0).memory
    assert memory.backoff["i-1"].failures == 1
    well = InstanceFacts(record(pid=0), running(), server())
    assert "i-1" not in decide([facts(well)], memory, 1.0).memory.backoff


def test_a_leaving_instance_is_not_restarted():
    crashed = InstanceFacts(
        record(state=InstanceState.DRAINING), given_up(), server(), "web exited with status 3"
    )
    assert not [
        a for a in decide([facts(crashed)], Memory(), 0.0).actions if isinstance(a, Restart)
    ]


def test_an_instance_down_for_replace_after_is_replaced_and_no_sooner():
    down = InstanceFacts(record(healthy=False), running(), server(status="DOWN", check="L7STS"))
    env = facts(down, replace_after_s=30.0)
    memory = decide([env], Memory(), 100.0).memory
    assert not [a for a in decide([env], memory, 129.0).actions if isinstance(a, Replace)]
    decision = decide([env], memory, 130.0)
    replaced = [a for a in decision.actions if isinstance(a, Replace)]
    assert replaced == [
        Replace(
            "i-1", "shop", "Load balancer health check: DOWN, last check L7STS.", failing_s=30.0
        )
    ]
    assert "i-1" not in decision.memory.failing_since
    # The repair comes on the next tick, once the replaced instance's record says stopped.
    assert not [a for a in decision.actions if isinstance(a, Repair)]


def test_no_replacement_when_the_setting_is_off_or_an_operation_runs():
    down = InstanceFacts(record(healthy=False), running(), server(status="DOWN", check="L4CON"))
    for env in (facts(down, replace_unhealthy=False), facts(down, busy=True)):
        memory = decide([env], Memory(), 0.0).memory
        assert not [a for a in decide([env], memory, 1000.0).actions if isinstance(a, Replace)]


def test_recovering_resets_the_failing_clock():
    down = InstanceFacts(record(healthy=False), running(), server(status="DOWN", check="L4CON"))
    up = InstanceFacts(record(), running(), server())
    memory = decide([facts(down)], Memory(), 0.0).memory
    memory = decide([facts(up)], memory, 50.0).memory
    memory = decide([facts(down)], memory, 55.0).memory
    assert not [a for a in decide([facts(down)], memory, 70.0).actions if isinstance(a, Replace)]


def test_an_in_service_instance_the_runtime_no_longer_runs_has_vanished():
    gone = InstanceFacts(record(), None, server())
    pending = InstanceFacts(record("i-2", InstanceState.PENDING), None, None)
    actions = decide([facts(gone, pending, desired=2)], Memory(), 0.0).actions
    assert actions == (Vanished("i-1", "shop"),)


def test_a_repair_starts_when_the_count_or_the_release_differs():
    serving = InstanceFacts(record(), running(), server())
    old = InstanceFacts(record("i-2", key="release-0"), running("i-2"), server("i-2"))
    assert decide([facts(serving, desired=2)], Memory(), 0.0).actions == (Repair("shop"),)
    # an instance of another release: the repair replaces versions, so the environment is
    # Updating (not Ready) until it converged
    assert decide([facts(serving, old, desired=2)], Memory(), 0.0).actions == (
        Repair("shop", updating=True),
    )
    assert decide([facts(serving, desired=1)], Memory(), 0.0).actions == ()


def test_no_repair_while_busy_launching_or_without_a_version():
    serving = InstanceFacts(record(), running(), server())
    for env in (
        facts(serving, desired=3, busy=True),
        facts(serving, desired=3, env=environment(EnvStatus.LAUNCHING)),
        facts(serving, desired=3, release_key=None),
    ):
        assert decide([env], Memory(), 0.0).actions == ()


def test_an_updating_environment_no_operation_holds_is_repaired_then_ready():
    """Issue 7: after a restart cut a deploy short the environment is Updating; the repair
    converges it, and only then is it Ready again (Ready means one version, all in service)."""
    serving = InstanceFacts(record(), running(), server())
    old = InstanceFacts(record("i-2", key="release-0"), running("i-2"), server("i-2"))
    updating = environment(EnvStatus.UPDATING)
    assert decide([facts(serving, old, desired=1, env=updating)], Memory(), 0.0).actions == (
        Repair("shop", updating=False),
    )
    assert decide([facts(serving, desired=1, env=updating)], Memory(), 0.0).actions == (
        Recovered("shop", 1, updating.version_label or ""),
    )
    # an operation still holds it: neither
    assert decide([facts(serving, desired=1, env=updating, busy=True)], Memory(), 0.0).actions == ()


def test_memory_of_instances_that_left_is_dropped():
    memory = Memory(backoff={"i-gone": Backoff(2, 5.0)}, failing_since={"i-gone": 1.0})
    serving = InstanceFacts(record(), running(), server())
    assert decide([facts(serving)], memory, 2.0).memory == Memory(restarts={("i-1", "web"): 0})


def test_a_restart_the_runtime_made_between_two_looks_is_told_with_how_it_died():
    def with_restarts(count: int, how: str = "") -> InstanceFacts:
        (web,) = running().processes
        observed = InstanceObservation("i-1", (replace(web, restarts=count, last_exit=how),))
        return InstanceFacts(record(), observed, server())

    # the first look only learns the count: restarts before it were told already
    first = decide([facts(with_restarts(2))], Memory(), 0.0)
    assert first.actions == () and first.memory.restarts == {("i-1", "web"): 2}
    oom = "OOM: exceeded 64 MiB (killed, exit status 137)"
    second = decide([facts(with_restarts(3, oom))], first.memory, 1.0)
    assert second.actions == (Restarted("i-1", "shop", "web", oom, 3),)
    assert decide([facts(with_restarts(3, oom))], second.memory, 2.0).actions == ()
    # an instance that left leaves nothing behind
    assert decide([facts()], second.memory, 3.0).memory.restarts == {}


def test_an_instance_on_a_lost_node_is_replaced_at_once_not_restarted():
    lost = replace(given_up(), lost="node n3 is down")
    decision = decide([facts(InstanceFacts(record(), lost, server(status="DOWN")))], Memory(), 0.0)
    assert decision.actions == (Lost("i-1", "shop", "node n3 is down"),)


def test_a_lost_instance_that_is_not_in_service_is_left_to_its_operation():
    lost = replace(running(), lost="node n3 is down")
    pending = record(state=InstanceState.PENDING)
    actions = decide([facts(InstanceFacts(pending, lost, None))], Memory(), 0.0).actions
    assert not any(isinstance(a, Lost | Restart | Replace) for a in actions)


def test_an_instance_the_runtime_moved_is_pointed_at_its_new_address():
    moved = replace(running(), endpoint=Endpoint("10.216.0.9", 8000, isolated=True))
    at = replace(record(), host="10.216.0.4", port=8000)
    decision = decide([facts(InstanceFacts(at, moved, server()))], Memory(), 0.0)
    assert Moved("i-1", "10.216.0.9", 8000) in decision.actions
    same = replace(moved, endpoint=Endpoint("10.216.0.4", 8000, isolated=True))
    assert not any(
        isinstance(a, Moved)
        for a in decide([facts(InstanceFacts(at, same, server()))], Memory(), 0.0).actions
    )
