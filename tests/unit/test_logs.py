"""An environment's log files (issue #4, logs): tails, follow cursors, retention, the bundle."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from beanpole.adapters.lb.requests import AccessLogs
from beanpole.adapters.logs import (
    DAY_S,
    MAX_LINE_BYTES,
    STOPPED_MARKER,
    Logs,
    Retention,
    Stream,
    expired_deploy_logs,
    expired_instances,
    follow,
    tail,
    tail_stream,
    write_bundle,
)
from beanpole.adapters.store.db import Store
from beanpole.core.errors import InvalidInput, NotFound
from beanpole.core.model import (
    Environment,
    EnvStatus,
    Event,
    Health,
    Instance,
    InstanceState,
    OperationKind,
    OperationStatus,
    Severity,
)
from beanpole.home import Home

NOW = 1_800_000_000.0  # the fake clock


def rotate(path: Path, backups: int = 5) -> None:
    """What supervisord and AccessLogs do: name.N-1 → name.N … name → name.1."""
    for index in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{index + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


class Follower:
    """Polls `follow` like the CLI does, keeping the cursor."""

    def __init__(self, streams: list[Stream]) -> None:
        self.streams = streams
        page = follow("shop", streams, None)
        assert page.lines == []
        self.cursor = page.cursor

    def poll(self) -> list[str]:
        lines = []
        while True:
            page = follow("shop", self.streams, self.cursor)
            self.cursor = page.cursor
            lines += [line.line for line in page.lines]
            if not page.more:
                return lines


def instance(id_: str, state: InstanceState, env: str = "shop", created: float = NOW) -> Instance:
    return Instance(id_, env, "v1", "key", 1, 20000, state, created)


def environment(name: str, status: EnvStatus) -> Environment:
    return Environment(name, "app", name, status, Health.GREEN, "v1", {}, 1, NOW, NOW)


def write_log(folder: Path, name: str, text: str, mtime: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


# tails ------------------------------------------------------------------------------------


def test_tail_returns_the_last_lines_with_a_partial_last_line(tmp_path):
    log = tmp_path / "web.stdout.log"
    log.write_text("".join(f"line {i}\n" for i in range(50_000)) + "partial")
    assert tail(log, 3) == ["line 49998", "line 49999", "partial"]
    assert tail(log, 0) == []
    assert tail(tmp_path / "missing.log", 10) == []


def test_tail_of_a_stream_reaches_into_the_rotated_part_after_a_rotation(tmp_path):
    log = tmp_path / "web.stdout.log"
    log.write_text("a\nb\nc\n")
    rotate(log)
    log.write_text("d\n")
    stream = Stream("i-1", log)
    assert tail_stream(stream, 3) == ["b", "c", "d"]
    assert tail_stream(stream, 1) == ["d"]
    assert [p.name for p in stream.parts()] == ["web.stdout.log.1", "web.stdout.log"]


# following --------------------------------------------------------------------------------


def test_follow_starts_at_the_end_then_returns_each_new_whole_line_once(tmp_path):
    log = tmp_path / "web.stdout.log"
    log.write_text("old 1\nold 2\nhalf")
    follower = Follower([Stream("i-1", log)])
    assert follower.poll() == []
    append(log, " a line\nnew 1\nnew 2 is still being wri")
    assert follower.poll() == ["half a line", "new 1"]  # the line being written waits
    append(log, "tten\n")
    assert follower.poll() == ["new 2 is still being written"]
    assert follower.poll() == []


def test_follow_loses_and_repeats_nothing_across_size_rotations(tmp_path):
    log = tmp_path / "web.stdout.log"
    log.write_text("")
    follower = Follower([Stream("i-1", log)])
    append(log, "1\n2\n")
    assert follower.poll() == ["1", "2"]
    append(log, "3\n4\n")  # written after the last poll, then renamed away
    rotate(log)
    log.write_text("5\n")
    assert follower.poll() == ["3", "4", "5"]
    append(log, "6\n")
    rotate(log)  # twice between two polls
    log.write_text("7\n")
    rotate(log)
    log.write_text("8\n")
    assert follower.poll() == ["6", "7", "8"]


def test_follow_joins_a_line_that_a_rotation_split_in_two(tmp_path):
    """supervisord rotates after a write of whatever it read from the pipe: mid-line."""
    log = tmp_path / "web.stdout.log"
    log.write_text("")
    follower = Follower([Stream("i-1", log)])
    append(log, "whole\nthe first half")
    rotate(log)
    log.write_text("")
    assert follower.poll() == ["whole"]
    append(log, " and the second\n")
    assert follower.poll() == ["the first half and the second"]


def test_follow_reads_files_that_appear_later_from_their_start(tmp_path):
    first = Stream("i-1", tmp_path / "i-1" / "web.stdout.log")
    write_log(first.path.parent, first.name, "before\n", NOW)
    follower = Follower([first])
    later = Stream("i-2", tmp_path / "i-2" / "web.stdout.log")
    write_log(later.path.parent, later.name, "listening on 20001\n", NOW)
    follower.streams = [first, later]
    page = follow("shop", follower.streams, follower.cursor)
    assert [(x.source, x.file, x.line) for x in page.lines] == [
        ("i-2", "web.stdout.log", "listening on 20001")
    ]


def test_follow_starts_again_after_a_truncation(tmp_path):
    log = tmp_path / "web.stdout.log"
    log.write_text("one\ntwo\n")
    follower = Follower([Stream("i-1", log)])
    log.write_text("new\n")  # truncated in place, shorter than the cursor's offset
    assert follower.poll() == ["new"]


def test_follow_pages_a_backlog_larger_than_its_budget(tmp_path):
    log = tmp_path / "web.stdout.log"
    log.write_text("")
    follower = Follower([Stream("i-1", log)])
    lines = [f"{i:07} {'x' * 200}" for i in range(20_000)]  # about 4 MB
    append(log, "".join(line + "\n" for line in lines))
    page = follow("shop", follower.streams, follower.cursor)
    assert page.more and 0 < len(page.lines) < len(lines)
    follower.cursor = page.cursor
    assert [x.line for x in page.lines] + follower.poll() == lines


def test_follow_returns_an_endless_line_in_pieces(tmp_path):
    log = tmp_path / "web.stdout.log"
    log.write_text("")
    follower = Follower([Stream("i-1", log)])
    append(log, "y" * (MAX_LINE_BYTES * 2 + 10))
    assert "".join(follower.poll()) == "y" * (MAX_LINE_BYTES * 2 + 10)


def test_follow_of_a_real_access_log_rotating_every_few_lines(tmp_path):
    """AccessLogs (lb.requests) rotating at 300 bytes with 2 backups, polled in between."""
    access = AccessLogs(tmp_path, max_bytes=300, backups=2)
    stream = Stream("access", access.path("shop"))
    access.write("shop", [b"start\n"])
    follower = Follower([stream])
    seen: list[str] = []
    expected = []
    for batch in range(200):
        lines = [f"batch {batch:03} line {i} {'z' * 20}" for i in range(batch % 7)]
        expected += lines
        access.write("shop", [line.encode() + b"\n" for line in lines])
        seen += follower.poll()
    assert seen == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "shop.access.log",
        "shop.access.log.1",
        "shop.access.log.2",
    ]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "", "eJyrVipTslIyMjQwMzNRqgUAGEIDeQ"],  # the last: valid zlib, not ours
)
def test_follow_refuses_a_cursor_it_did_not_give(tmp_path, cursor):
    streams = [Stream("i-1", tmp_path / "web.stdout.log")]
    if cursor == "":
        assert follow("shop", streams, cursor).lines == []  # no cursor: start at the end
        return
    with pytest.raises(InvalidInput, match="cursor"):
        follow("shop", streams, cursor)


def test_a_cursor_of_another_environment_is_refused(tmp_path):
    streams = [Stream("i-1", tmp_path / "web.stdout.log")]
    cursor = follow("shop", streams, None).cursor
    with pytest.raises(InvalidInput, match="environment blog"):
        follow("blog", streams, cursor)


# which files ------------------------------------------------------------------------------


def test_sources_are_instances_live_and_retained_then_access_and_deploy_logs(tmp_path):
    logs = Logs(Home(tmp_path))
    write_log(logs.instance_dir("i-live"), "web.stdout.log", "a\n", NOW)
    write_log(logs.instance_dir("i-live"), "web.stdout.log.1", "older\n", NOW)
    write_log(logs.instance_dir("i-live"), "web.stderr.log", "", NOW)
    write_log(logs.instance_dir("i-kept"), "web.stdout.log", "b\n", NOW)
    write_log(logs.access_log("shop").parent, "shop.access.log", "GET /\n", NOW)
    logs.append_event("shop", 7, Event(1, NOW, Severity.INFO, "shop", "app", None, "hello"))
    instances = [
        instance("i-live", InstanceState.IN_SERVICE),
        instance("i-kept", InstanceState.STOPPED),
        instance("i-gone", InstanceState.STOPPED),  # retention removed its folder
        instance("i-new", InstanceState.PENDING),  # no logs yet
    ]
    sources = logs.sources("shop", instances)
    assert [(s.id, s.state, [x.name for x in s.streams]) for s in sources] == [
        ("i-live", "in-service", ["web.stderr.log", "web.stdout.log"]),
        ("i-kept", "stopped", ["web.stdout.log"]),
        ("i-new", "pending", []),
        ("access", "", ["shop.access.log"]),
        ("deploy", "", ["7.log"]),
    ]
    assert [s.id for s in logs.sources("shop", instances, "i-kept")] == ["i-kept"]
    with pytest.raises(NotFound, match="retention has removed its logs"):
        logs.sources("shop", instances, "i-gone")
    with pytest.raises(NotFound, match="has no instance 'i-nope'"):
        logs.sources("shop", instances, "i-nope")


def test_a_deploy_log_holds_events_and_framed_command_output(tmp_path):
    logs = Logs(Home(tmp_path))
    build = tmp_path / "build.log"
    build.write_text("an earlier build\n")
    offset = build.stat().st_size
    append(build, "$ uv venv\nResolved 3 packages")
    logs.append_event("shop", 3, Event(1, NOW, Severity.WARN, "shop", "app", None, "Careful."))
    logs.append_output("shop", 3, "build output of v1", build, offset)
    logs.append_output("shop", 3, "nothing new", build, build.stat().st_size)
    text = logs.deploy_log("shop", 3).read_text().splitlines()
    assert text[0].endswith("  WARN  Careful.")
    assert text[1:] == [
        "----- build output of v1 -----",
        "$ uv venv",
        "Resolved 3 packages",
        "----- end of build output of v1 -----",
    ]


# retention --------------------------------------------------------------------------------


def test_retention_keeps_the_most_recently_stopped_instances_within_the_days():
    retention = Retention(stopped_days=7, stopped_per_env=2)
    stopped = {"a": NOW - 60, "b": NOW - 3600, "c": NOW - 7200, "d": NOW - 8 * DAY_S}
    assert expired_instances(stopped, NOW, retention) == ["c", "d"]
    assert expired_instances(stopped, NOW + 7 * DAY_S - 120, retention) == ["b", "c", "d"]
    assert expired_instances({}, NOW, retention) == []


def test_retention_keeps_the_newest_deploy_logs():
    retention = Retention(deploy_logs_per_env=2, stopped_days=1)
    written = {1: NOW - 2 * DAY_S, 5: NOW - 2 * DAY_S, 9: NOW}
    assert expired_deploy_logs(written, NOW, retention) == [1]
    assert expired_deploy_logs(written, NOW, retention, terminated=True) == [5, 1]


def test_retention_refuses_nonsense():
    with pytest.raises(InvalidInput):
        Retention(deploy_logs_per_env=0)


def stopped_at(logs: Logs, instance_id: str, when: float) -> None:
    marker = logs.home.instance_dir(instance_id) / STOPPED_MARKER
    marker.touch()
    os.utime(marker, (when, when))


def test_apply_retention_ages_stopped_instances_from_their_stop_never_a_live_ones(tmp_path):
    logs = Logs(Home(tmp_path), Retention(stopped_days=7, stopped_per_env=2, deploy_logs_per_env=1))
    for id_ in ("i-live", "i-quiet", "i-a", "i-b", "i-old"):
        write_log(logs.instance_dir(id_), "web.stdout.log", "x\n", NOW - 30 * DAY_S)
    stopped_at(logs, "i-a", NOW - 60)
    stopped_at(logs, "i-b", NOW - 120)  # the third most recently stopped
    stopped_at(logs, "i-old", NOW - 8 * DAY_S)
    for op in (1, 2):
        logs.append_event("shop", op, Event(op, NOW, Severity.INFO, "shop", None, None, "m"))
    instances = [
        instance("i-live", InstanceState.IN_SERVICE),  # logs a month old, but live
        instance("i-quiet", InstanceState.STOPPED),  # quiet for a month, stopped just now
        instance("i-a", InstanceState.STOPPED),
        instance("i-b", InstanceState.STOPPED),
        instance("i-old", InstanceState.STOPPED),
    ]
    envs = [environment("shop", EnvStatus.READY)]
    removed = logs.apply_retention(envs, instances, NOW)
    assert sorted(p.name for p in removed) == ["1.log", "i-b", "i-old"]
    assert all(logs.instance_dir(i).is_dir() for i in ("i-live", "i-quiet", "i-a"))
    assert (logs.home.instance_dir("i-quiet") / STOPPED_MARKER).stat().st_mtime == NOW
    assert logs.apply_retention(envs, instances, NOW) == []
    later = logs.apply_retention(envs, instances, NOW + 7 * DAY_S)
    assert sorted(p.name for p in later) == ["i-a"]  # i-quiet stopped 7 days ago: kept
    assert logs.instance_dir("i-live").is_dir()


def test_a_terminated_environment_keeps_its_logs_for_the_days_unless_forgotten(tmp_path):
    logs = Logs(Home(tmp_path), Retention(stopped_days=7))
    write_log(logs.instance_dir("i-1"), "web.stdout.log", "crash\n", NOW - DAY_S)
    write_log(logs.access_log("shop").parent, "shop.access.log", "GET /\n", NOW - DAY_S)
    logs.append_event("shop", 1, Event(1, NOW, Severity.ERROR, "shop", None, None, "failed"))
    os.utime(logs.deploy_log("shop", 1), (NOW - DAY_S, NOW - DAY_S))
    envs = [environment("shop", EnvStatus.TERMINATED)]  # a create that failed
    stopped = [instance("i-1", InstanceState.STOPPED)]
    assert logs.apply_retention(envs, stopped, NOW) == []
    gone = logs.apply_retention(envs, stopped, NOW + 8 * DAY_S)
    assert sorted(p.name for p in gone) == ["1.log", "i-1", "shop.access.log"]

    write_log(logs.instance_dir("i-2"), "web.stdout.log", "bye\n", NOW)
    write_log(logs.access_log("shop").parent, "shop.access.log", "GET /\n", NOW)
    logs.append_event("shop", 2, Event(2, NOW, Severity.INFO, "shop", None, None, "done"))
    logs.forget("shop", [instance("i-2", InstanceState.STOPPED)])  # beanpole terminate
    assert not logs.instance_dir("i-2").exists()
    assert not logs.access_log("shop").exists()
    assert not logs.deploy_dir("shop").exists()


def test_a_reused_name_keeps_the_live_environments_rules(tmp_path):
    logs = Logs(Home(tmp_path), Retention(stopped_days=7))
    write_log(logs.access_log("shop").parent, "shop.access.log", "GET /\n", NOW - 30 * DAY_S)
    envs = [environment("shop", EnvStatus.TERMINATED), environment("shop", EnvStatus.READY)]
    assert logs.apply_retention(envs, [], NOW) == []
    assert logs.access_log("shop").exists()


# the bundle -------------------------------------------------------------------------------


def test_the_bundle_holds_every_part_of_every_log_by_source(tmp_path):
    logs = Logs(Home(tmp_path))
    write_log(logs.instance_dir("i-1"), "web.stdout.log", "now\n", NOW)
    write_log(logs.instance_dir("i-1"), "web.stdout.log.1", "before\n", NOW)
    write_log(logs.instance_dir("i-2"), "worker.stderr.log", "oops\n", NOW)
    write_log(logs.access_log("shop").parent, "shop.access.log", "GET /\n", NOW)
    logs.append_event("shop", 4, Event(1, NOW, Severity.INFO, "shop", None, None, "deployed"))
    sources = logs.sources(
        "shop", [instance("i-1", InstanceState.IN_SERVICE), instance("i-2", InstanceState.STOPPED)]
    )
    dest = tmp_path / "bundle.zip"
    assert write_bundle(sources, dest) == 5
    with zipfile.ZipFile(dest) as bundle:
        assert sorted(bundle.namelist()) == [
            "access/shop.access.log",
            "deploy/4.log",
            "i-1/web.stdout.log",
            "i-1/web.stdout.log.1",
            "i-2/worker.stderr.log",
        ]
        assert bundle.read("i-1/web.stdout.log.1") == b"before\n"
        assert b"deployed" in bundle.read("deploy/4.log")


# the deploy log's single writer -----------------------------------------------------------


def test_every_event_recorded_while_an_operation_runs_goes_to_its_deploy_log(tmp_path):
    """Whoever records it (operations, the deployment runner, the reconciler), through the
    store; and nothing after the operation ends."""
    from beanpole.adapters.lb.haproxy import HAProxy
    from beanpole.adapters.runtime.supervisord import Supervisor
    from beanpole.home import ServerConfig
    from beanpole.services.fleet import Fleet
    from beanpole.services.operations import Operations

    home = Home(tmp_path / "home")
    home.prepare()
    store = Store(home.db)
    try:
        fleet = Fleet(
            home, ServerConfig(), store, Supervisor(home.root / "sv"), HAProxy(home.root / "hp")
        )
        ops = Operations(store, fleet, builder=None, bundles=None)  # type: ignore[arg-type]
        store.ensure_application("app")
        store.create_environment("shop", "app", "shop", {})
        op = store.start_operation(
            "shop", OperationKind.DEPLOY, target_version="v2", previous_version="v1"
        )
        store.add_event("Deploying.", environment="shop")
        store.add_event("Another environment's.", environment="blog")
        store.add_event("Rolling back.", severity=Severity.WARN, environment="shop")
        store.finish_operation(op.id, OperationStatus.FAILED, "bad")
        store.add_event("Later.", environment="shop")
        lines = ops.logs.deploy_log("shop", op.id).read_text().splitlines()
        assert [line[21:] for line in lines] == ["INFO  Deploying.", "WARN  Rolling back."]
    finally:
        store.close()


def test_an_images_own_log_folder_is_read_and_bundled_with_the_instance(tmp_path):
    """Dockerrun.aws.json's Logging folder is the instance's logs/app: its files (and their
    rotated parts) are the instance's streams too, named with the folder."""
    logs = Logs(Home(tmp_path))
    write_log(logs.instance_dir("i-1"), "web.stdout.log", "started\n", NOW)
    write_log(logs.instance_dir("i-1") / "app", "access.log", "GET / 200\n", NOW)
    write_log(logs.instance_dir("i-1") / "app", "access.log.1", "GET /old 200\n", NOW)
    write_log(logs.instance_dir("i-1") / "app" / "deeper", "ignored.log", "no\n", NOW)
    # a container's root could point a "log" at any file Beanpole may read: links are not logs
    (logs.instance_dir("i-1") / "app" / "token.log").symlink_to(tmp_path / "token")
    (logs.instance_dir("i-1") / "app" / "access.log.2").symlink_to(tmp_path / "token")
    (tmp_path / "token").write_text("secret\n")
    sources = logs.sources("shop", [instance("i-1", InstanceState.IN_SERVICE)])
    (mine,) = [s for s in sources if s.id == "i-1"]
    assert [x.name for x in mine.streams] == ["web.stdout.log", "app/access.log"]
    assert [p.name for p in mine.streams[1].parts()] == ["access.log.1", "access.log"]
    assert tail_stream(mine.streams[1], 5) == ["GET /old 200", "GET / 200"]
    dest = tmp_path / "bundle.zip"
    write_bundle(sources, dest)
    with zipfile.ZipFile(dest) as bundle:
        assert {"i-1/app/access.log", "i-1/app/access.log.1"} <= set(bundle.namelist())
