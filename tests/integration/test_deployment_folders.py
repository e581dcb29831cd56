"""A deployment's own copy of the app folder (`Builder.stage`): real `cp -a`, real files."""

from __future__ import annotations

import asyncio
import os
import stat

from beanpole.adapters.build import Builder, existing_version_dir, staged_deployments
from beanpole.core.bundle_steps import Command, Steps
from beanpole.core.model import Application

APP = Application("shop", 0.0, "a-shop000000")


def test_a_stage_is_a_faithful_copy_and_a_retry_starts_afresh(tmp_path):
    builder = Builder(tmp_path)
    build = tmp_path / "builds" / "a-shop000000" / "d1" / "app"
    (build / "conf").mkdir(parents=True)
    (build / "run.sh").write_text("#!/bin/sh\n")
    (build / "run.sh").chmod(0o750)
    (build / "node_modules").symlink_to("/nonexistent/deps/node_modules")

    stage = asyncio.run(builder.stage(build, APP, "d1", "e-shop", 2))
    assert stage == tmp_path / "builds" / "a-shop000000" / "d1" / "stages" / "e-shop-2"
    assert stat.S_IMODE((stage / "run.sh").stat().st_mode) == 0o750
    assert os.readlink(stage / "node_modules") == "/nonexistent/deps/node_modules"
    assert (stage / "conf").is_dir()

    (stage / "half-written").write_text("a failed try left this")
    again = asyncio.run(builder.stage(build, APP, "d1", "e-shop", 2))
    assert not (again / "half-written").exists()  # a retry of the deployment starts afresh
    (build / "run.sh").write_text("changed in the build\n")  # a copy, not links
    assert (again / "run.sh").read_text() == "#!/bin/sh\n"


def test_pruning_keeps_only_the_named_deployments_of_that_environment(tmp_path):
    builder = Builder(tmp_path)
    build = tmp_path / "builds" / "a-shop000000" / "d1" / "app"
    build.mkdir(parents=True)
    for env_id, deployment in (("e-shop", 1), ("e-shop", 2), ("e-shop", 3), ("e-shop-eu", 1)):
        asyncio.run(builder.stage(build, APP, "d1", env_id, deployment))
    stages = tmp_path / "builds" / "a-shop000000" / "d1" / "stages"
    (stages / ".tmp-e-shop-4").mkdir()  # an interrupted copy
    # a home from before per-application folders: its deployment folders are pruned too
    legacy = tmp_path / "builds" / "d0" / "stages"
    (legacy / "e-shop-0").mkdir(parents=True)
    assert staged_deployments(tmp_path / "builds").keys() == {
        ("e-shop", 0),
        ("e-shop", 1),
        ("e-shop", 2),
        ("e-shop", 3),
        ("e-shop-eu", 1),
    }
    builder.prune_stages("e-shop", {2})
    assert staged_deployments(tmp_path / "builds") == {
        ("e-shop", 2): stages / "e-shop-2",
        ("e-shop-eu", 1): stages / "e-shop-eu-1",
    }
    assert not (stages / ".tmp-e-shop-4").exists()
    assert not (legacy / "e-shop-0").exists()


def test_a_version_is_staged_when_its_deployments_run_steps_in_its_folder(tmp_path):
    builder = Builder(tmp_path)
    app = tmp_path / "app"
    prebuild = app / ".platform" / "hooks" / "prebuild"
    prebuild.mkdir(parents=True)
    (prebuild / "01.sh").write_text("#!/bin/sh\n")
    (prebuild / "01.sh").chmod(0o755)
    assert not builder.changed_by_deployments(app, Steps())  # a build step only
    confighook = app / ".platform" / "confighooks" / "predeploy" / "01.sh"
    confighook.parent.mkdir(parents=True)
    confighook.write_text("#!/bin/sh\n")
    assert not builder.changed_by_deployments(app, Steps())  # not executable: never runs
    confighook.chmod(0o755)
    assert builder.changed_by_deployments(app, Steps())
    commands = Steps(
        container_commands=(
            Command("01", "migrate", ".ebextensions/x.config", "container_commands"),
        )
    )
    assert builder.changed_by_deployments(tmp_path / "empty", commands)


def test_a_home_from_before_per_application_folders_keeps_serving_from_them(tmp_path):
    """After an upgrade, instances of a deployment staged in the shared ``builds/<digest>``
    start from it again, and its static files are found there, until the next build."""
    builder = Builder(tmp_path)
    builds = tmp_path / "builds"
    legacy = builds / "d1" / "stages" / "e-shop-2"
    legacy.mkdir(parents=True)
    assert builder.existing_stage(APP, "d1", "e-shop", 2) == legacy
    assert existing_version_dir(builds, APP, "d1") == builds / "d1"
    assert staged_deployments(builds) == {("e-shop", 2): legacy}

    (builds / "a-shop000000" / "d1" / "app").mkdir(parents=True)  # being built again, anew
    assert existing_version_dir(builds, APP, "d1") == builds / "d1"  # not whole yet
    (builds / "a-shop000000" / "d1" / ".done").touch()
    assert existing_version_dir(builds, APP, "d1") == builds / "a-shop000000" / "d1"
    new = asyncio.run(builder.stage(builds / "a-shop000000" / "d1" / "app", APP, "d1", "e-shop", 3))
    assert builder.existing_stage(APP, "d1", "e-shop", 3) == new
    assert builder.existing_stage(APP, "d1", "e-shop", 4) is None
