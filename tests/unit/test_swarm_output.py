"""The swarm runtime's pure parts around a version's image: which host folders its task
sees, how the output of several processes in one task is told apart and copied into each
process's file. (tests/integration/test_swarm_version_image.py runs the real thing.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from beanpole.adapters.build import Artifact
from beanpole.adapters.runtime import docker as docker_runtime
from beanpole.adapters.runtime import swarm
from beanpole.core.platforms import BuildPlan
from beanpole.core.runtime import InstanceSpec


def _tree(root: Path) -> None:
    for folder in ("usr", "etc", "srv/home/builds", "srv/home/db", "srv/other", "proc"):
        (root / folder).mkdir(parents=True)
    (root / "srv" / "notes.txt").write_text("n")
    (root / "srv" / "home-link").symlink_to("other")
    (root / "srv" / "gone").symlink_to("nowhere")
    (root / "bin").symlink_to("usr/bin")


def test_folders_beside_a_hidden_one_are_mounted_and_it_is_not(tmp_path):
    _tree(tmp_path)
    mounts = docker_runtime.host_mounts_beside([tmp_path / "srv" / "home"], tmp_path)
    assert mounts == sorted(
        str(tmp_path / p) for p in ("etc", "srv/home-link", "srv/notes.txt", "srv/other", "usr")
    )
    # nothing hidden: the top-level folders, as the Docker runtime mounts them
    assert docker_runtime.host_mounts_beside([], tmp_path) == docker_runtime.host_mounts(tmp_path)
    # a hidden folder inside another hidden one changes nothing more
    both = [tmp_path / "srv" / "home", tmp_path / "srv" / "home" / "builds"]
    assert docker_runtime.host_mounts_beside(both, tmp_path) == mounts


def test_a_version_s_build_folders_are_its_dependencies_then_its_app(tmp_path):
    plan = BuildPlan("python", {"web": "gunicorn app:app"})
    app, deps = tmp_path / "app", tmp_path / "deps"
    assert Artifact(app, plan, (), {}, deps_dir=deps).build_dirs == (deps, app)
    assert Artifact(app, plan, (), {}).build_dirs == (app,)
    assert Artifact(app, plan, (), {}, image="beanpole/version:1").build_dirs == ()
    tools = tmp_path / ".tools"  # the static platform's file server, for an app user
    assert Artifact(app, plan, (), {}, tools_dir=tools).build_dirs == (tools, app)


def _spec(tmp_path: Path, processes: dict[str, str]) -> InstanceSpec:
    return InstanceSpec("i-1", processes, tmp_path, {}, tmp_path / "logs", listen_port=8000)


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"]}
    return subprocess.run(
        ["/usr/bin/bash", "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=30,
        check=False,
    )


def test_several_processes_write_to_the_task_s_output_each_line_marked(tmp_path):
    script = swarm._supervise(
        _spec(
            tmp_path,
            {
                "web": "echo web on $PORT; touch up; exec sleep 30",
                # once web has written its line
                "worker": "until [ -e up ]; do sleep 0.01; done; echo one; echo two >&2; exit 4",
            },
        ),
        to_files=False,
    )
    done = _run(script, tmp_path)
    # the first process to end ends the task with its status; the other got TERM
    assert done.returncode == 4
    mark = swarm.PROCESS_MARK.decode()
    lines = done.stdout.splitlines()
    assert sorted(lines) == sorted(
        [f"web{mark}web on 8000", f"worker{mark}one", f"worker{mark}two"]
    )
    assert not (tmp_path / "logs").exists()


def test_one_process_writes_its_lines_unmarked(tmp_path):
    script = swarm._supervise(_spec(tmp_path, {"web": "echo hello; exit 3"}), to_files=False)
    done = _run(script, tmp_path)
    assert (done.returncode, done.stdout) == (3, "hello\n")


def test_with_files_each_process_appends_to_its_own(tmp_path):
    (tmp_path / "logs").mkdir()
    script = swarm._supervise(
        _spec(
            tmp_path,
            {
                "web": "echo a; exec sleep 30",
                # once web has written its line
                "worker": "until [ -s logs/web.stdout.log ]; do sleep 0.01; done; echo b",
            },
        )
    )
    assert _run(script, tmp_path).returncode == 0
    assert (tmp_path / "logs" / "web.stdout.log").read_text() == "a\n"
    assert (tmp_path / "logs" / "worker.stdout.log").read_text() == "b\n"


def test_the_engine_s_copy_puts_each_marked_line_in_its_process_s_file(tmp_path):
    files = {b"web": tmp_path / "web.stdout.log", b"worker": tmp_path / "worker.stdout.log"}
    mark = swarm.PROCESS_MARK
    stamp = b"2026-12-04T03:00:0%dZ "
    chunks = [
        stamp % 1 + b"web" + mark + b"GET / 200\n" + stamp % 2 + b"wor",
        b"ker" + mark + b"job done\n",
        stamp % 3 + b"not marked\n" + stamp % 4 + b"other" + mark + b"unknown name\n",
    ]
    docker_runtime.copy_logs(
        lambda since: iter(chunks),
        files[b"web"],
        "i-1",
        lambda text: swarm._route(text, files, files[b"web"]),
    )
    assert files[b"web"].read_text().splitlines() == [
        "GET / 200",
        "not marked",
        "other\x1funknown name",
    ]
    assert files[b"worker"].read_text() == "job done\n"
    # the next copy starts after the last line copied
    since = float((tmp_path / ".web.stdout.log.since").read_text())
    seen: list[float | None] = []
    docker_runtime.copy_logs(lambda s: seen.append(s) or iter(()), files[b"web"], "i-1")
    assert seen == [since] and since > 0


@pytest.mark.parametrize("processes", [{"web": "x"}, {"web": "x", "worker": "y"}])
def test_a_version_image_s_task_sees_no_log_folder_of_the_host(tmp_path, processes):
    script = swarm._supervise(_spec(tmp_path, processes), to_files=False)
    assert str(tmp_path / "logs") not in script
