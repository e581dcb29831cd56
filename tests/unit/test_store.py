"""The SQLite store: migrations, uniqueness of live names, one operation at a time."""

import time

import pytest

from beanpole.errors import Conflict, NotFound
from beanpole.model import EnvStatus, Instance, InstanceState, OperationKind, OperationStatus
from beanpole.store.db import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def test_migrations_run_once(tmp_path):
    Store(tmp_path / "s.db").close()
    s = Store(tmp_path / "s.db")
    assert [r[0] for r in s._query("SELECT name FROM migrations")] == [
        "0001_initial",
        "0002_releases_and_weights",
        "0003_version_lifecycle",
        "0004_enhanced_health",
    ]
    s.close()


def test_versions_are_immutable(store):
    store.ensure_application("app")
    store.add_version("app", "v1", "aaa")
    assert store.add_version("app", "v1", "aaa").digest == "aaa"  # same contents: idempotent
    with pytest.raises(Conflict, match="choose a new label"):
        store.add_version("app", "v1", "bbb")


def test_live_environment_names_and_cnames_are_unique(store):
    store.ensure_application("app")
    store.create_environment("shop", "app", "shop", {})
    with pytest.raises(Conflict, match="already exists"):
        store.create_environment("shop", "app", "other", {})
    with pytest.raises(Conflict, match="already used by environment shop"):
        store.create_environment("shop2", "app", "shop", {})


def test_a_terminated_name_can_be_reused(store):
    store.ensure_application("app")
    store.create_environment("shop", "app", "shop", {})
    store.update_environment("shop", status=EnvStatus.TERMINATED)
    with pytest.raises(NotFound):
        store.environment("shop")
    assert store.create_environment("shop", "app", "shop", {}).status is EnvStatus.LAUNCHING


def test_one_running_operation_per_environment(store):
    store.ensure_application("app")
    store.create_environment("shop", "app", "shop", {})
    op = store.start_operation(
        "shop", OperationKind.DEPLOY, target_version="v2", previous_version="v1"
    )
    with pytest.raises(Conflict, match="busy with a deploy operation"):
        store.start_operation(
            "shop", OperationKind.CONFIGURE, target_version=None, previous_version=None
        )
    store.finish_operation(op.id, OperationStatus.SUCCEEDED, "")
    store.start_operation(
        "shop", OperationKind.CONFIGURE, target_version=None, previous_version=None
    )


def test_instances_and_ports(store):
    inst = Instance("i-1", "shop", "v1", "k", 1, 20001, InstanceState.PENDING, time.time())
    store.add_instance(inst)
    assert store.used_ports() == {20001}
    store.update_instance("i-1", state=InstanceState.IN_SERVICE, pid=42, healthy=True, causes=["x"])
    got = store.instances("shop")[0]
    assert (got.state, got.pid, got.healthy, got.causes) == (
        InstanceState.IN_SERVICE,
        42,
        True,
        ("x",),
    )
    store.update_instance("i-1", state=InstanceState.STOPPED)
    assert store.instances("shop") == [] and store.used_ports() == set()


def test_events_are_read_in_order_after_an_id(store):
    ids = [store.add_event(f"m{i}", environment="shop").id for i in range(5)]
    assert [e.message for e in store.events("shop", after=ids[1])] == ["m2", "m3", "m4"]
    assert [e.message for e in store.events("shop", limit=2)] == ["m3", "m4"]


def test_instance_weight_round_trips(store):
    inst = Instance("i-1", "shop", "v1", "k", 1, 20001, InstanceState.IN_SERVICE, time.time())
    store.add_instance(inst)
    store.update_instance("i-1", weight=37)
    assert store.instances("shop")[0].weight == 37
