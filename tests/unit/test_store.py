"""The SQLite store: migrations, uniqueness of live names, one operation at a time."""

import time

import pytest

from beanpole.adapters.store.db import Store
from beanpole.core.certificates import CertificateRecord
from beanpole.core.errors import Conflict, NotFound
from beanpole.core.model import EnvStatus, Instance, InstanceState, OperationKind, OperationStatus


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


@pytest.fixture
def shop(store):
    """A store with a live environment 'shop' (records refer to an environment row)."""
    store.ensure_application("app")
    store.create_environment("shop", "app", "shop", {})
    return store


def test_migrations_run_once(tmp_path):
    Store(tmp_path / "s.db").close()
    s = Store(tmp_path / "s.db")
    assert [r[0] for r in s._query("SELECT name FROM migrations")] == [
        "0001_initial",
        "0002_releases_and_weights",
        "0003_version_lifecycle",
        "0004_enhanced_health",
        "0005_metrics_rollups",
        "0006_version_ebextensions",
        "0007_instance_host",
        "0008_stable_ids",
        "0009_records_by_id",
        "0010_desired_capacity",
        "0011_environment_platform",
        "0012_saved_configurations",
        "0013_version_platform",
        "0014_version_steps",
        "0015_autoscaling",
        "0016_eb_api",
        "0017_access_keys",
        "0018_s3_objects",
        "0019_console",
        "0020_domains",
        "0021_certificates",
        "0022_tokens_audit",
        "0023_instance_process_ports",
        "0024_instance_run_as",
    ]
    s.close()


def test_versions_are_immutable(store):
    store.ensure_application("app")
    store.add_version("app", "v1", "aaa")
    assert store.add_version("app", "v1", "aaa").digest == "aaa"  # same contents: idempotent
    with pytest.raises(Conflict, match="choose a new label"):
        store.add_version("app", "v1", "bbb")


def test_a_version_keeps_its_ebextensions_layer_and_its_environment_carries_it(store):
    """The layer is part of the (immutable) version; an environment is read with the layer
    of the version it runs, so resolving its settings needs no other lookup."""
    store.ensure_application("app")
    layer = {"aws:elasticbeanstalk:application:environment:GREETING": "hi"}
    v1 = store.add_version("app", "v1", "aaa", "", layer, ["a.config is ignored: x"])
    assert (v1.ebextensions, v1.ebextensions_warnings) == (layer, ("a.config is ignored: x",))
    store.add_version("app", "v2", "bbb")
    assert store.version("app", "v2").ebextensions == {}
    store.create_environment("shop", "app", "shop", {"aws:autoscaling:asg:MinSize": "2"})
    assert store.environment("shop").version_settings == {}  # no version yet
    store.update_environment("shop", version_label="v1")
    env = store.environment("shop")
    assert env.version_settings == layer
    assert env.layers() == (layer, {}, {"aws:autoscaling:asg:MinSize": "2"})
    assert store.environments()[0].version_settings == layer
    assert store.update_environment("shop", version_label="v2").version_settings == {}


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


def test_instances_and_their_addresses(shop):
    store = shop
    inst = Instance("i-1", "shop", "v1", "k", 1, 20001, InstanceState.PENDING, time.time())
    store.add_instance(inst)
    assert [i.port for i in store.instances()] == [20001]
    assert store.instances("shop")[0].host == "127.0.0.1"  # loopback unless the runtime says
    store.update_instance("i-1", host="10.0.0.7", port=31000)
    moved = store.instances("shop")[0]
    assert (moved.host, moved.port) == ("10.0.0.7", 31000)
    store.update_instance("i-1", state=InstanceState.IN_SERVICE, pid=42, healthy=True, causes=["x"])
    got = store.instances("shop")[0]
    assert (got.state, got.pid, got.healthy, got.causes) == (
        InstanceState.IN_SERVICE,
        42,
        True,
        ("x",),
    )
    store.update_instance("i-1", state=InstanceState.STOPPED)
    assert store.instances("shop") == [] and store.instances() == []


def test_events_are_read_in_order_after_an_id(shop):
    store = shop
    ids = [store.add_event(f"m{i}", environment="shop").id for i in range(5)]
    assert [e.message for e in store.events("shop", after=ids[1])] == ["m2", "m3", "m4"]
    assert [e.message for e in store.events("shop", limit=2)] == ["m3", "m4"]


def test_instance_weight_round_trips(shop):
    store = shop
    inst = Instance("i-1", "shop", "v1", "k", 1, 20001, InstanceState.IN_SERVICE, time.time())
    store.add_instance(inst)
    store.update_instance("i-1", weight=37)
    assert store.instances("shop")[0].weight == 37


def test_the_user_an_instance_runs_as_round_trips_and_is_none_when_unrecorded(shop):
    store = shop
    now = time.time()
    store.add_instance(
        Instance("i-1", "shop", "v1", "k", 1, 1, InstanceState.IN_SERVICE, now, run_as="bp-1")
    )
    store.add_instance(Instance("i-2", "shop", "v1", "k", 1, 2, InstanceState.IN_SERVICE, now))
    assert [(i.id, i.run_as) for i in store.instances("shop")] == [("i-1", "bp-1"), ("i-2", None)]


def test_metrics_expire_by_age_and_roll_ups_are_kept_apart(shop):
    store = shop
    now = time.time()
    old, recent = now - 2 * 86400, now - 60
    rows = [("shop", "", old, '{"requests": 1}'), ("shop", "", recent, '{"requests": 2}')]
    store.add_metrics(rows, keep_s=86400)
    assert store.metrics("shop", "", 0) == [(recent, {"requests": 2})]  # a day kept
    store.add_metrics([], 86400, [("shop", "", old, '{"requests": 30}')], rollup_keep_s=14 * 86400)
    assert store.metrics("shop", "", 0, rollup=True) == [(old, {"requests": 30})]
    assert store.metrics("shop", "", 0) == [(recent, {"requests": 2})]
    store.add_metrics([], 86400, [], rollup_keep_s=3600)  # shorter retention drops it
    assert store.metrics("shop", "", 0, rollup=True) == []


def test_metrics_are_read_per_key_between_since_and_until(shop):
    store = shop
    now = time.time()
    rows = [
        ("shop", key, now - 30 + 10 * n, f'{{"n": {n}}}') for key in ("", "i-1") for n in range(3)
    ]
    store.add_metrics(rows, keep_s=86400)
    assert [d["n"] for _, d in store.metrics("shop", "i-1", now - 25, now - 15)] == [1]
    assert [d["n"] for _, d in store.metrics("shop", "", 0)] == [0, 1, 2]
    assert store.metrics("blog", "", 0) == []
    assert len(store.metrics("shop", "", 0, limit=2)) == 2
    # rewriting a window (same key and start) replaces it
    store.add_metrics([("shop", "", now - 30, '{"n": 9}')], keep_s=86400)
    assert [d["n"] for _, d in store.metrics("shop", "", 0)] == [9, 1, 2]


def test_a_read_does_not_wait_for_a_write_in_progress(store):
    """Issue 7: reads use their thread's own connection, so a read (the API's, in a worker
    thread or on the event loop) never waits behind a writer holding the lock."""
    import threading

    store.ensure_application("app")
    store.create_environment("shop", "app", "shop", {})
    inside, release = threading.Event(), threading.Event()

    def write() -> None:
        with store.transaction() as db:
            db.execute("UPDATE environments SET cname = 'moved' WHERE name = 'shop'")
            inside.set()
            release.wait(10)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert inside.wait(10)
        seen: list[str] = []
        reader = threading.Thread(target=lambda: seen.append(store.environment("shop").cname))
        started = time.monotonic()
        reader.start()
        reader.join(5)
        assert seen == ["shop"]  # the last committed state, at once
        assert time.monotonic() - started < 2
    finally:
        release.set()
        writer.join(10)
    assert store.environment("shop").cname == "moved"


def test_the_change_stamp_moves_with_every_write_and_only_then(store):
    before = store.change_stamp()
    store.instances()
    assert store.change_stamp() == before  # reads change nothing
    store.ensure_application("app")
    assert store.change_stamp() != before


def test_a_domain_is_claimed_once_and_freed_when_its_environment_has_ended(shop):
    store = shop
    blog = store.create_environment("blog", "app", "blog", {})
    store.add_domain(store.environment("shop"), "shop.example.com")
    with pytest.raises(Conflict, match="already routes to environment shop"):
        store.add_domain(blog, "shop.example.com")
    with pytest.raises(NotFound, match="does not route to blog"):
        store.remove_domain(blog, "shop.example.com")
    shop_id = store.environment("shop").id
    assert store.domains() == {shop_id: ["shop.example.com"]}
    # an environment that ended otherwise than by terminate (a failed create) holds nothing
    store.update_environment("shop", status=EnvStatus.TERMINATED)
    assert store.domains() == {}
    store.add_domain(blog, "shop.example.com")
    assert store.domains() == {blog.id: ["shop.example.com"]}


def certificate_record(name: str, at: float, **changes: object) -> CertificateRecord:
    fields: dict = {
        "name": name,
        "domains": ("shop.example.com", "*.shop.example.com"),
        "not_before": at - 86400,
        "not_after": at + 90 * 86400,
        "fingerprint": "AB" * 20,
        "serial": "1F",
        "created_at": at,
        "updated_at": at,
    }
    return CertificateRecord(**{**fields, **changes})


def test_certificates_are_stored_listed_by_name_and_removed(store):
    with pytest.raises(NotFound, match="beanpole certs list"):
        store.certificate("shop")
    store.put_certificate(certificate_record("shop", 1000.0))
    store.put_certificate(certificate_record("blog", 2000.0, domains=("blog.example.com",)))
    assert [c.name for c in store.certificates()] == ["blog", "shop"]
    assert store.certificate("shop") == certificate_record("shop", 1000.0)
    assert store.certificate("blog").domains == ("blog.example.com",)
    store.remove_certificate("blog")
    assert [c.name for c in store.certificates()] == ["shop"]
    with pytest.raises(NotFound, match=r"No certificate named 'blog'.*beanpole certs list"):
        store.remove_certificate("blog")


def test_a_renewal_replaces_the_facts_but_keeps_when_it_was_first_added(store):
    store.put_certificate(certificate_record("shop", 1000.0))
    renewed = certificate_record(
        "shop", 5000.0, fingerprint="CD" * 20, serial="2A", domains=("www.example.com",)
    )
    store.put_certificate(renewed)
    stored = store.certificate("shop")
    assert stored.created_at == 1000.0  # first added then
    assert (stored.updated_at, stored.fingerprint, stored.serial) == (5000.0, "CD" * 20, "2A")
    assert (stored.domains, stored.not_after) == (("www.example.com",), renewed.not_after)
    assert len(store.certificates()) == 1


def test_refused_strangers_cannot_push_changes_out_of_the_audit_log(tmp_path, monkeypatch):
    from beanpole.adapters.store import access
    from beanpole.adapters.store.access import AccessStore, AuditRecord

    monkeypatch.setattr(access, "AUDIT_KEPT", 5)
    monkeypatch.setattr(access, "ANONYMOUS_KEPT", 10)
    store = Store(tmp_path / "state.db")
    log = AccessStore(store)

    def entry(actor: str, status: int) -> AuditRecord:
        return AuditRecord(1.0, actor, None, "shop", None, "POST /x", status, "127.0.0.1")

    log.record(entry("token abc", 202))  # one real change
    for _ in range(1100):  # then a flood of refused strangers (pruned every 1000 rows)
        log.record(entry("anonymous", 401))
    rows = log.entries(limit=10_000)
    assert [r.actor for r in rows if r.actor != "anonymous"] == ["token abc"]
    assert sum(r.actor == "anonymous" for r in rows) == 10 + 101  # pruned at the 1000th row
    store.close()
