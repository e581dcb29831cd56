"""A version's build reaches every node in an image (issue 13, part 2): its dependencies and
its app folder are layers over the host-root image, pushed to the registry and pulled by
digest; the task sees the node's folders beside the home, never the home itself, and its
processes' output comes back to this host's log files through the engine.

Real 3-node swarm (`swarmkit`), registry and engine; skipped with the reason where the test
bed cannot run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

import swarmkit
from beanpole.adapters.runtime import swarm as swarm_runtime
from beanpole.core.runtime import InstanceSpec, RunAs

from harness import wait_for

NOBODY = RunAs("nobody", 65534, 65534)
# the system's interpreter: the app user cannot run one installed under /root
SERVE = "python3 -m http.server $PORT --bind 127.0.0.1"


@pytest.fixture
def home() -> Iterator[Path]:
    """A home inside a folder the tasks see (/var/tmp), so that hiding it means something."""
    made = Path(tempfile.mkdtemp(prefix="beanpole-version-image-", dir="/var/tmp"))
    try:
        yield made / "home"
    finally:
        shutil.rmtree(made)


@pytest.fixture
def runtime(tmp_path: Path, home: Path) -> Iterator[swarm_runtime.Swarm]:
    with swarmkit.swarm_runtime(
        tmp_path, f"version-image:{home}", shared=(home / "builds",), hidden=(home,)
    ) as made:
        yield made


def _version(home: Path, digest: str, page: str, deps: Path) -> InstanceSpec:
    app = home / "builds" / "app-1" / digest / "app"
    app.mkdir(parents=True)
    (app / "index.html").write_text(page)
    os.chown(app, NOBODY.uid, NOBODY.gid)
    instance = home / "instances" / f"i-{digest}"
    return InstanceSpec(
        instance_id=f"i-{digest}",
        processes={"web": SERVE, "worker": "echo worker started; exec sleep infinity"},
        cwd=app,
        env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(instance / "run")},
        log_dir=instance / "logs",
        stop_wait_s=2,
        listen_port=8000,
        run_as=NOBODY,
        build_dirs=(deps, app),
    )


def _deps(home: Path) -> Path:
    deps = home / "builds" / "app-1" / "deps" / "python" / "key-1"
    (deps / "lib").mkdir(parents=True)
    (deps / "lib" / "greeting.txt").write_text("hello from the dependencies\n")
    # owned as a build's are: the folder Beanpole's, what the install made the app user's
    # alone (the image keeps each file's owner)
    for path, mode in ((deps / "lib", 0o700), (deps / "lib" / "greeting.txt", 0o600)):
        os.chown(path, NOBODY.uid, NOBODY.gid)
        path.chmod(mode)
    return deps


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2.0, trust_env=False)
    except httpx.HTTPError:
        return None


def test_a_version_runs_from_its_image_and_never_sees_the_home(runtime, home):
    (home / "secret").parent.mkdir(parents=True)
    (home / "secret").write_text("the home's keys")
    neighbour = home.parent / "neighbour.txt"  # beside the home: the node's, seen
    neighbour.write_text("n")
    deps = _deps(home)
    spec = _version(home, "d1", "version one", deps)
    checks = (
        f"cat {deps}/lib/greeting.txt; "
        f"test -e {home}/secret && echo home seen || echo home hidden; "
        f"test -e {neighbour} && echo neighbour seen; "
        'touch "$XDG_RUNTIME_DIR/x" && echo run folder writable; '
        "touch written-by-the-app && echo app folder writable; "
    )
    spec = replace(spec, processes={**spec.processes, "web": checks + SERVE})

    endpoint = runtime.start(spec)
    page = wait_for(
        lambda: (r := _get(f"{endpoint.url()}index.html")) is not None and r, 90, "the page"
    )
    assert page.text == "version one"
    (spec.cwd / "index.html").write_text("changed on this host")
    assert _get(f"{endpoint.url()}index.html").text == "version one"  # the image's copy
    assert _get(f"{endpoint.url()}written-by-the-app").status_code == 200
    assert not (spec.cwd / "written-by-the-app").exists()

    inspected = runtime.api.inspect_service(f"{runtime.prefix}-{spec.instance_id}")
    image = inspected["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert f"/{swarm_runtime.BUILD_IMAGE}@sha256:" in image

    web_log = spec.log_dir / "web.stdout.log"
    wait_for(
        # observing starts the copy of an instance's output, as the reconciler's ticks do
        lambda: (
            runtime.observe()
            and web_log.exists()
            and "/written-by-the-app HTTP" in web_log.read_text()
        ),
        30,
        "the web process's request lines in its file",
    )
    web_lines = web_log.read_text().splitlines()
    for line in (
        "hello from the dependencies",
        "home hidden",
        "neighbour seen",
        "run folder writable",
        "app folder writable",
    ):
        assert line in web_lines
    assert (spec.log_dir / "worker.stdout.log").read_text() == "worker started\n"
    assert runtime.log_tail(spec.instance_id, 10, "worker") == ["worker started"]
    assert "home hidden" in runtime.log_tail(spec.instance_id, 50, "web")


def test_versions_share_their_dependencies_layer_and_a_remade_build_is_a_new_image(runtime, home):
    deps = _deps(home)
    one, two = _version(home, "d1", "one", deps), _version(home, "d2", "two", deps)
    first = runtime.version_image(one)
    assert runtime.version_image(one) == first  # made once
    second = runtime.version_image(two)
    assert second != first

    def layers(spec: InstanceSpec) -> list[str]:
        tags = [
            t
            for image in runtime.local.images(
                swarm_runtime.BUILD_IMAGE, filters={"label": [f"beanpole.home={runtime.owner}"]}
            )
            for t in image.get("RepoTags") or []
            if image["Labels"].get("beanpole.build") == str(spec.cwd)
        ]
        assert len(tags) == 1
        return runtime.local.inspect_image(tags[0])["RootFS"]["Layers"]

    assert layers(one)[:-1] == layers(two)[:-1] and layers(one)[-1] != layers(two)[-1]

    shutil.rmtree(one.cwd)  # the build removed and made again: another image
    remade = _version(home, "d1", "one again", deps)
    assert runtime.version_image(remade) not in (first, second)
    assert runtime.remove_images() >= 4  # the dependencies' layer and three versions
    mine = {"label": [f"beanpole.home={runtime.owner}"]}
    assert runtime.local.images(swarm_runtime.BUILD_IMAGE, filters=mine) == []


def test_images_of_deleted_versions_are_collected_unless_a_service_runs_them(runtime, home):
    registry = runtime.registry
    deps = _deps(home)
    kept = _version(home, "d1", "kept", deps)
    deleted = _version(home, "d2", "deleted", deps)
    running = _version(home, "d3", "running", deps)
    for spec in (kept, deleted):
        runtime.version_image(spec)
    endpoint = runtime.start(running)
    wait_for(lambda: _get(f"{endpoint.url()}index.html"), 90, "the running version's page")

    def image_id(folder: Path) -> str:
        mine = {"label": [f"beanpole.home={runtime.owner}", f"beanpole.build={folder}"]}
        found = runtime.local.images(swarm_runtime.BUILD_IMAGE, filters=mine)
        return found[0]["Id"] if found else ""

    def in_registry(image: str) -> bool:
        return registry.manifest_digest(swarm_runtime.BUILD_IMAGE, image.split(":")[1]) is not None

    ids = {spec.cwd: image_id(spec.cwd) for spec in (kept, deleted, running)}
    assert all(ids.values()) and all(in_registry(i) for i in ids.values())
    ids[deps] = image_id(deps)  # made here, only a base: its layer goes in each version's
    assert ids[deps]
    stored = sum(f.stat().st_size for f in registry.storage.rglob("*") if f.is_file())

    assert runtime.collect_images() == 0  # every folder still there
    shutil.rmtree(deleted.cwd)  # its version deleted
    shutil.rmtree(running.cwd)  # deleted too, but a service still runs it
    assert runtime.collect_images() == 1

    assert image_id(deleted.cwd) == "" and not in_registry(ids[deleted.cwd])
    for folder in (kept.cwd, running.cwd):
        assert image_id(folder) == ids[folder] and in_registry(ids[folder])
    assert image_id(deps) == ids[deps]
    left = sum(f.stat().st_size for f in registry.storage.rglob("*") if f.is_file())
    assert left < stored  # the deleted version's own layer is gone from the disk

    # the registry still takes pushes after its collection, and a node pulls what it took
    again = _version(home, "d4", "after the collection", deps)
    endpoint = runtime.start(again)
    page = wait_for(lambda: _get(f"{endpoint.url()}index.html"), 90, "the new version's page")
    assert page.text == "after the collection"
    assert _get(f"{endpoint.url()}index.html") is not None

    runtime.stop(running.instance_id)  # nothing runs it now: it goes at the next collection
    assert runtime.collect_images() == 1
    assert image_id(running.cwd) == "" and not in_registry(ids[running.cwd])
    assert image_id(deps) == ids[deps] and in_registry(ids[kept.cwd])
