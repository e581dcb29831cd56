"""The Docker runtime's pure parts: the engine's words read, the image's layout, the specs
refused before anything is created. (The contract suite runs the real thing.)"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from beanpole.adapters.runtime import docker as rt
from beanpole.core.errors import InvalidInput
from beanpole.core.runtime import InstanceSpec, ProcessStatus


@pytest.mark.parametrize(
    ("status", "bounds"),
    [
        ("Up Less than a second", (0.0, 1.0)),
        ("Up 5 seconds", (4.0, 7.0)),
        ("Up About a minute", (30.0, 120.0)),
        ("Up 3 minutes", (179.0, 241.0)),
        ("Up About an hour", (1800.0, 7200.0)),
        ("Up 2 hours (healthy)", (7199.0, 10801.0)),
        ("Exited (3) 2 seconds ago", None),
        ("Restarting (1) 1 second ago", None),
    ],
)
def test_uptime_bounds_read_the_engine_s_words(status, bounds):
    assert rt.uptime_bounds(status) == bounds


def _container(state: str, status: str) -> rt._Container:
    return rt._Container("c1", "i-1", "web", state, status, {})


def _seen(state: str, started_at: float, at: float) -> rt._Inspected:
    return rt._Inspected(state, 42, 0, started_at, False, "", 0, at)


def test_a_container_is_inspected_again_only_when_its_row_says_it_changed():
    now = 1_000.0
    seen = _seen("running", started_at=now - 10, at=now - 1)
    assert not rt._changed(_container("running", "Up 10 seconds"), seen, now)
    # restarted between two looks: its uptime is shorter than the start we know of allows
    assert rt._changed(_container("running", "Up 2 seconds"), seen, now)
    assert rt._changed(_container("restarting", "Restarting (1) 1 second ago"), seen, now)
    # and every OBSERVE_REFRESH_S whatever it says
    stale = _seen("running", started_at=now - 100, at=now - rt.OBSERVE_REFRESH_S - 1)
    assert rt._changed(_container("running", "Up About a minute"), stale, now)


def test_the_engine_s_states_in_the_runtime_s_words():
    def status(state: str, **kw: object) -> rt.ProcessObservation:
        seen = rt._Inspected(state, 7, 3, 5.0, False, "", 0, 6.0)
        for k, v in kw.items():
            setattr(seen, k, v)
        return rt._observation("web", seen)

    assert status("running").status is ProcessStatus.RUNNING
    assert status("running").pid == 7
    assert status("created").status is ProcessStatus.STARTING
    restarting = status("restarting")
    assert restarting.status is ProcessStatus.EXITED and restarting.exit_status == 3
    failed = status("exited")
    assert failed.status is ProcessStatus.FAILED and failed.reason == "exited with status 3"
    assert status("exited", oom_killed=True).reason == "OOM: out of memory (killed, exit status 3)"
    seen = rt._Inspected("restarting", 0, 137, 5.0, True, "", 1, 6.0)
    assert rt._observation("web", seen, 256).reason == (
        "OOM: exceeded 256 MiB (killed, exit status 137); restarting"
    )
    assert status("exited", error="exec: app: not found").reason == (
        "could not start: exec: app: not found"
    )


def test_engine_times_are_read_to_the_microsecond():
    assert rt._timestamp("0001-01-01T00:00:00Z") == 0.0
    assert rt._timestamp("2026-12-03T03:30:27.032185144Z") == pytest.approx(1796268627.032185)
    assert rt._timestamp(None) == 0.0


def test_the_image_has_a_mount_point_for_each_host_folder_and_the_host_s_links(tmp_path):
    for name in ("usr", "etc", "opt", "proc", "tmp", "sbin"):
        (tmp_path / name).mkdir()
    (tmp_path / "bin").symlink_to("usr/bin")
    assert rt.host_mounts(tmp_path) == [
        str(tmp_path / "etc"),
        str(tmp_path / "opt"),
        str(tmp_path / "usr"),
    ]
    with tarfile.open(fileobj=io.BytesIO(rt.host_root_layout(tmp_path))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    assert {"etc", "opt", "usr", "proc", "sys", "dev", "sbin"} <= set(members)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"instance_id": "../x"}, "instance id"),
        ({"processes": {"_net": "sleep 1"}}, "process name"),
        ({"processes": {"web worker": "x"}}, "process name"),
        ({"listen_port": 0}, "listen_port"),
    ],
)
def test_specs_docker_would_refuse_are_refused_first(change, words):
    base = {
        "instance_id": "i-1",
        "processes": {"web": "serve"},
        "cwd": Path("/srv/app"),
        "env": {},
        "log_dir": Path("/srv/logs"),
        "listen_port": 8080,
    }
    with pytest.raises(InvalidInput, match=words):
        rt._validate(InstanceSpec(**{**base, **change}))
