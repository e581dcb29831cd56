"""When the swarm runtime collects version images (`Swarm.collect_images`, which
tests/integration/test_swarm_version_image.py runs against a real registry and engine): in
the background, every `IMAGE_COLLECT_S` of its looks; and alone, while the registry's pushes
run side by side (`_PushGate`): a layer the collection removes while a push is between
uploading it and sending its manifest would be lost."""

from __future__ import annotations

import threading
import time

from beanpole.adapters.registry import ExternalRegistry
from beanpole.adapters.runtime import swarm
from beanpole.adapters.runtime.swarm import _PushGate

WAIT_S = 10.0


def test_pushes_share_the_gate_and_a_collection_waits_for_them_to_end():
    gate = _PushGate()
    events: list[str] = []
    pushing, second_in = threading.Event(), threading.Event()
    release = threading.Event()

    def push(name: str, entered: threading.Event) -> None:
        with gate.push():
            events.append(f"{name} in")
            entered.set()
            assert release.wait(WAIT_S)
            events.append(f"{name} out")

    def collect() -> None:
        with gate.collect():
            events.append("collect")

    first = threading.Thread(target=push, args=("p1", pushing))
    second = threading.Thread(target=push, args=("p2", second_in))
    first.start()
    assert pushing.wait(WAIT_S)
    second.start()
    assert second_in.wait(WAIT_S)  # a second push did not wait for the first
    collector = threading.Thread(target=collect)
    collector.start()
    collector.join(0.2)
    assert collector.is_alive() and "collect" not in events  # held back by the pushes
    release.set()
    for thread in (first, second, collector):
        thread.join(WAIT_S)
    assert events[-1] == "collect" and events.count("p1 out") == events.count("p2 out") == 1


def test_a_push_waits_for_a_collection_to_end():
    gate = _PushGate()
    events: list[str] = []
    collecting, release = threading.Event(), threading.Event()

    def collect() -> None:
        with gate.collect():
            collecting.set()
            assert release.wait(WAIT_S)
            events.append("collect done")

    def push() -> None:
        with gate.push():
            events.append("push")

    collector = threading.Thread(target=collect)
    collector.start()
    assert collecting.wait(WAIT_S)
    pusher = threading.Thread(target=push)
    pusher.start()
    pusher.join(0.2)
    assert pusher.is_alive() and events == []
    release.set()
    for thread in (collector, pusher):
        thread.join(WAIT_S)
    assert events == ["collect done", "push"]


def test_a_collection_starts_in_the_background_once_per_period():
    runtime = swarm.Swarm("unit:collect", registry=ExternalRegistry("127.0.0.1:5000"))
    calls: list[float] = []
    release = threading.Event()

    def collect() -> int:
        calls.append(time.monotonic())
        assert release.wait(WAIT_S)
        return 0

    runtime.collect_images = collect  # type: ignore[method-assign]
    runtime._collect_when_due()
    assert calls == []  # not before a period has passed since the runtime was made

    runtime._collected -= swarm.IMAGE_COLLECT_S
    runtime._collect_when_due()
    assert runtime._collector is not None
    deadline = time.monotonic() + WAIT_S
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 1  # started, and the caller did not wait for it
    runtime._collected -= swarm.IMAGE_COLLECT_S
    runtime._collect_when_due()  # still running: no second one beside it
    release.set()
    runtime._collector.join(WAIT_S)
    assert len(calls) == 1
