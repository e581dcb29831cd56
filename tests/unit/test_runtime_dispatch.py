"""One server, two runtimes (`adapters.runtime.dispatch`): each instance runs under the one
its spec asks for, observations merge, and every call about an instance reaches its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from beanpole.adapters.runtime.dispatch import DispatchingRuntime
from beanpole.core.errors import InvalidInput
from beanpole.core.runtime import InstanceSpec
from beanpole.testing import FakeRuntime


def spec(instance_id: str, runtime: str = "", image: str = "") -> InstanceSpec:
    return InstanceSpec(
        instance_id=instance_id,
        processes={"web": "" if image else "python3 app.py"},
        cwd=Path("/srv"),
        env={},
        log_dir=Path("/tmp/logs"),
        image=image,
        runtime=runtime,
    )


def test_each_instance_runs_under_the_runtime_it_asks_for_and_calls_follow_it():
    processes, containers = FakeRuntime(), FakeRuntime()
    runtime = DispatchingRuntime("supervisord", {"supervisord": processes, "docker": containers})
    runtime.start(spec("i-default"))
    runtime.start(spec("i-boxed", runtime="docker"))
    runtime.start(spec("i-image", image="nginx:1"))  # the Docker platform: always Docker
    runtime.start(spec("i-named", runtime="supervisord"))
    assert processes.started == ["i-default", "i-named"]
    assert containers.started == ["i-boxed", "i-image"]
    assert set(runtime.observe()) == {"i-default", "i-boxed", "i-image", "i-named"}

    containers.write_log("i-boxed", "from the container")
    assert runtime.log_tail("i-boxed", 10) == ["from the container"]
    runtime.stop("i-boxed")
    assert set(containers.observe()) == {"i-image"}
    assert set(processes.observe()) == {"i-default", "i-named"}


def test_a_runtime_with_instances_at_start_up_is_adopted_and_one_without_is_never_asked():
    processes, containers = FakeRuntime(), FakeRuntime()
    containers.start(spec("i-left-running"))  # under the engine before the server started
    runtime = DispatchingRuntime("supervisord", {"supervisord": processes, "docker": containers})
    runtime.ensure_running()
    assert set(runtime.observe()) == {"i-left-running"}
    runtime.stop("i-left-running")
    assert containers.observe() == {}

    idle = FakeRuntime()
    quiet = DispatchingRuntime("supervisord", {"supervisord": FakeRuntime(), "docker": idle})
    quiet.ensure_running()
    idle.fail()  # the engine goes away: nothing of this server runs there
    idle.running = False
    assert quiet.is_running()  # not in use: not a reason to restart anything
    assert quiet.observe() == {}


def test_an_instance_that_asks_for_a_missing_runtime_is_refused_with_what_to_do():
    runtime = DispatchingRuntime(
        "supervisord",
        {"supervisord": FakeRuntime()},
        {"docker": "the Docker engine does not answer (no socket)"},
    )
    with pytest.raises(InvalidInput) as refused:
        runtime.start(spec("i-boxed", runtime="docker"))
    assert refused.value.message == (
        "This instance runs under Docker (the Docker platform, or beanpole:instance:Runtime "
        "= docker), and the Docker engine does not answer (no socket). Install and start it "
        "with `scripts/bootstrap.sh --docker` (Debian's docker.io), or set "
        "beanpole:instance:Runtime to supervisord."
    )
    assert runtime.observe() == {}
