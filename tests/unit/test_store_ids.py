"""Stable identities (issue 7, part 3): records refer to an environment's id, not its name,
and a home made before ids existed is carried over."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from importlib import resources
from pathlib import Path

import pytest

from beanpole.adapters.store.db import Store
from beanpole.core.ids import is_environment_id, new_environment_id
from beanpole.core.model import EnvStatus, Instance, InstanceState, OperationKind

EB_ENV_ID = re.compile(r"^e-[a-z0-9]{10}$")


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    s.ensure_application("app")
    yield s
    s.close()


def test_environment_ids_have_eb_form_and_are_unique():
    ids = {new_environment_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(EB_ENV_ID.match(i) and is_environment_id(i) for i in ids)
    assert not is_environment_id("e-ABCDEFGHIJ") and not is_environment_id("shop")


def test_applications_versions_and_environments_get_ids(store):
    version = store.add_version("app", "v1", "aaa")
    env = store.create_environment("shop", "app", "shop", {})
    assert re.match(r"^a-[a-z0-9]{10}$", store.application("app").id)
    assert re.match(r"^av-[a-z0-9]{10}$", version.id)
    assert EB_ENV_ID.match(env.id)
    # stable: read again, the same
    assert store.environment("shop").id == env.id
    assert store.ensure_application("app").id == store.application("app").id
    assert store.version("app", "v1").id == version.id


def recreate(store: Store, name: str = "shop") -> tuple[str, str]:
    """A first environment of ``name`` with records, terminated; then a second of that name."""
    first = store.create_environment(name, "app", name, {})
    store.add_event("first attempt", environment=name)
    store.add_release(name, 1, "v1", {})
    store.add_instance(Instance("i-1", name, "v1", "k", 1, 20001, InstanceState.STOPPED, 1.0))
    op = store.start_operation(
        name, OperationKind.CREATE, target_version="v1", previous_version=None
    )
    store.finish_operation(op.id, "failed", "no")  # type: ignore[arg-type]
    store.add_metrics([(name, "", time.time() - 60, '{"n": 1}')], keep_s=86400)
    store.update_environment(name, status=EnvStatus.TERMINATED)
    second = store.create_environment(name, "app", name, {})
    return first.id, second.id


def test_a_recreated_name_starts_with_no_records_of_its_namesake(store):
    first, second = recreate(store)
    assert first != second
    assert store.events("shop") == []
    assert store.releases("shop") == []  # so nothing to roll back to
    assert store.instances("shop", live=False) == []
    assert store.last_operation("shop", ("create",)) is None
    assert store.metrics("shop", "", 0) == []
    store.add_event("second attempt", environment="shop")
    assert [e.message for e in store.events("shop")] == ["second attempt"]
    assert store.events("shop")[0].environment_id == second


def test_a_late_event_of_a_terminated_environment_stays_with_it(store):
    """An event recorded by id after its environment's name was reused (a loop that held
    the old environment) does not show among the new one's."""
    first, _ = recreate(store)
    late = store.add_event("late news", environment_id=first)
    assert late.environment == "shop" and late.environment_id == first
    assert store.events("shop") == []
    assert store.environment_by_id(first).status is EnvStatus.TERMINATED


def test_records_read_back_with_the_environment_name_and_id(store):
    env = store.create_environment("shop", "app", "shop", {})
    store.add_instance(Instance("i-1", "shop", "v1", "k", 1, 20001, InstanceState.PENDING, 1.0))
    op = store.start_operation(
        "shop", OperationKind.DEPLOY, target_version="v1", previous_version=None
    )
    store.add_release("shop", 1, "v1", {})
    instance = store.instances("shop")[0]
    assert (instance.environment, instance.environment_id) == ("shop", env.id)
    assert (store.operation(op.id).environment, store.operation(op.id).environment_id) == (
        "shop",
        env.id,
    )
    assert store.running_operations()[0].environment_id == env.id
    assert store.releases("shop")[0].environment_id == env.id


# -- carrying an old home over --------------------------------------------------------------


def old_home(path: Path) -> sqlite3.Connection:
    """A database made with the schema before ids (migrations 0001 to 0006)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, at REAL)")
    folder = resources.files("beanpole.adapters.store") / "migrations"
    for sql in sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql")):
        name = sql.removesuffix(".sql")
        if name > "0006_version_ebextensions":
            continue
        for statement in (folder / sql).read_text().split(";\n"):
            if statement.strip():
                db.execute(statement)
        db.execute("INSERT INTO migrations VALUES (?, ?)", (name, 0.0))
    return db


def fill_old_home(db: sqlite3.Connection) -> None:
    """Two rows named 'shop' (the first failed at t=100..150, the second made at t=200) and
    a 'blog'; records of each, told apart only by time."""
    now = time.time()
    db.execute("INSERT INTO applications (name, created_at) VALUES ('app', 1)")
    db.execute(
        "INSERT INTO versions (application, label, digest, created_at, build_status)"
        " VALUES ('app', 'v1', 'aaa', 1, 'built')"
    )
    envs = [
        ("shop", "shop", "Terminated", None, "{}", 100.0),
        ("shop", "shop", "Ready", "v1", json.dumps({"aws:autoscaling:asg:MinSize": "2"}), 200.0),
        ("blog", "blog", "Ready", "v1", "{}", 120.0),
    ]
    for name, cname, status, label, settings, at in envs:
        db.execute(
            "INSERT INTO environments (name, application, cname, status, health, version_label,"
            " settings, created_at, updated_at) VALUES (?, 'app', ?, ?, 'Green', ?, ?, ?, ?)",
            (name, cname, status, label, settings, at, at),
        )
    for at, env, message in [
        (90.0, "shop", "before any row (clock stepped back)"),
        (101.0, "shop", "createEnvironment is starting."),
        (150.0, "shop", "Failed to launch environment."),
        (201.0, "shop", "createEnvironment is starting."),
        (250.0, "shop", "Successfully launched environment: shop"),
        (121.0, "blog", "Successfully launched environment: blog"),
        (130.0, None, "Deleted application version v0"),
    ]:
        db.execute(
            "INSERT INTO events (time, severity, environment, application, message)"
            " VALUES (?, 'INFO', ?, 'app', ?)",
            (at, env, message),
        )
    db.execute(
        "INSERT INTO instances (id, environment, version_label, release_key, deployment_id,"
        " port, state, created_at) VALUES ('i-old', 'shop', 'v1', 'k', 1, 20001, 'stopped', 110),"
        " ('i-new', 'shop', 'v1', 'k', 1, 20002, 'in-service', 210),"
        " ('i-blog', 'blog', 'v1', 'k', 1, 20003, 'in-service', 125)"
    )
    db.execute(
        "INSERT INTO releases (environment, deployment_id, version_label, settings, created_at)"
        " VALUES ('shop', 1, 'v1', '{}', 140), ('shop', 1, 'v1', '{}', 240)"
    )
    db.execute(
        "INSERT INTO operations (environment, kind, status, started_at) VALUES"
        " ('shop', 'create', 'failed', 100), ('shop', 'create', 'succeeded', 200)"
    )
    # metrics: a window of the second 'shop' (recent) and one of 'blog'
    db.execute("INSERT INTO metrics VALUES ('shop', '', ?, '{\"n\": 2}')", (now - 60,))
    db.execute("INSERT INTO metrics VALUES ('blog', '', ?, '{\"n\": 3}')", (now - 60,))
    db.execute("INSERT INTO metrics_rollup VALUES ('shop', '', ?, '{\"n\": 20}')", (now - 600,))


def test_an_old_home_gets_ids_and_its_records_follow_the_right_environment(tmp_path):
    path = tmp_path / "state.db"
    db = old_home(path)
    fill_old_home(db)
    db.close()

    store = Store(path)
    try:
        rows = store.environments(include_terminated=True)
        assert len({e.id for e in rows}) == 3 and all(EB_ENV_ID.match(e.id) for e in rows)
        assert re.match(r"^a-[a-z0-9]{10}$", store.application("app").id)
        assert re.match(r"^av-[a-z0-9]{10}$", store.version("app", "v1").id)
        old_shop = next(e for e in rows if e.name == "shop" and e.status is EnvStatus.TERMINATED)
        shop, blog = store.environment("shop"), store.environment("blog")

        assert [e.message for e in store.events("shop")] == [
            "createEnvironment is starting.",
            "Successfully launched environment: shop",
        ]
        assert [e.message for e in store.events("blog")] == [
            "Successfully launched environment: blog"
        ]
        old_events = [e for e in store.events() if e.environment_id == old_shop.id]
        assert [e.message for e in old_events] == [
            "before any row (clock stepped back)",
            "createEnvironment is starting.",
            "Failed to launch environment.",
        ]
        unbound = [e for e in store.events() if e.environment_id is None]
        assert [e.message for e in unbound] == ["Deleted application version v0"]

        assert [i.id for i in store.instances("shop", live=False)] == ["i-new"]
        assert [i.id for i in store.instances("blog")] == ["i-blog"]
        assert [r.created_at for r in store.releases("shop")] == [240]
        last = store.last_operation("shop", ("create",))
        assert last is not None and last.started_at == 200 and last.environment_id == shop.id

        assert [d["n"] for _, d in store.metrics("shop", "", 0)] == [2]
        assert [d["n"] for _, d in store.metrics("blog", "", 0)] == [3]
        assert [d["n"] for _, d in store.metrics("shop", "", 0, rollup=True)] == [20]
        assert blog.id != shop.id
        # 0010: each runs on as many as before, its MinSize (given directly, or the default)
        assert (shop.desired_capacity, blog.desired_capacity) == (2, 1)
        # and the migrated home keeps working: new records, by id
        store.add_event("after the upgrade", environment="shop")
        assert store.events("shop")[-1].environment_id == shop.id
    finally:
        store.close()
    again = Store(path)  # the migration ran once; ids do not change on the next start
    try:
        assert again.environment("shop").id == shop.id
    finally:
        again.close()
