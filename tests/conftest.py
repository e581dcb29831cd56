import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Beanpole

APPS = Path(__file__).parent / "apps"
EXAMPLES = Path(__file__).parent.parent / "examples"


def _public_root() -> Path:
    """Where folders the apps must read live: as root, Beanpole runs applications as an
    unprivileged user, which cannot traverse pytest's temp folders (pytest makes them 0700,
    and resets its root to 0700 whenever a session starts)."""
    root = Path(tempfile.gettempdir()) / f"beanpole-tests-{os.getuid()}"
    root.mkdir(mode=0o711, exist_ok=True)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RuntimeError(f"{root} is not a folder of this user's: remove it")
    root.chmod(0o711)
    return root


@pytest.fixture
def public_tmp():
    """A fresh folder the applications' user can traverse (files in it: as the test makes
    them); removed afterwards."""
    folder = Path(tempfile.mkdtemp(dir=_public_root()))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _running(runtime: str | None = None, docker_host: str | None = None, *, before_start=None):
    """A running Beanpole server in a fresh BEANPOLE_HOME; everything it started is stopped.
    ``before_start(home)`` may prepare the home and return more ``server start`` options."""
    if shutil.which("haproxy") is None:
        pytest.skip("HAProxy is not installed (scripts/bootstrap.sh installs it)")
    home = Path(tempfile.mkdtemp(dir=_public_root(), prefix="home"))
    bp = Beanpole(home, runtime=runtime, docker_host=docker_host)
    try:
        if before_start is not None:
            bp.start_args = tuple(before_start(home))
        bp.start()
        yield bp
    finally:
        bp.stop_all()
        bp.remove_app_users()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def beanpole():
    """A running Beanpole server (supervisord, the default runtime)."""
    yield from _running()


@pytest.fixture(scope="module")
def beanpole_module():
    """A running Beanpole server shared by the tests of one module (supervisord)."""
    yield from _running()


@pytest.fixture
def beanpole_without_docker(tmp_path):
    """A running Beanpole server (supervisord) on a host where Docker's engine does not
    answer: DOCKER_HOST names a socket nothing listens on."""
    yield from _running(docker_host=f"unix://{tmp_path}/no-engine.sock")


@pytest.fixture
def beanpole_with_engine():
    """A running Beanpole server with the default runtime (supervisord) on a host where
    Docker's engine answers (skipped where none does)."""
    from beanpole.adapters.runtime import docker

    if (why_not := docker.unavailable()) is not None:
        pytest.skip(f"no Docker engine here ({why_not}): scripts/bootstrap.sh --docker")
    yield from _running()


@pytest.fixture
def beanpole_docker():
    """A running Beanpole server with the Docker runtime (skipped where no engine answers)."""
    from beanpole.adapters.runtime import docker

    if (why_not := docker.unavailable()) is not None:
        pytest.skip(f"no Docker engine here ({why_not}): scripts/bootstrap.sh --docker")
    yield from _running("docker")


@pytest.fixture(scope="module")
def beanpole_swarm():
    """A running Beanpole server with the swarm runtime, on the session's 3-node test swarm
    (`swarmkit`), shared by the tests of one module; skipped where the bed cannot run."""
    import swarmkit
    from beanpole.adapters.registry import Registry
    from beanpole.adapters.runtime import docker

    if (why_not := swarmkit.unavailable()) is not None:
        pytest.skip(f"no swarm test bed here: {why_not}")
    if (why_not := docker.unavailable()) is not None:
        pytest.skip(f"no Docker engine here ({why_not}): scripts/bootstrap.sh --docker")
    bed = swarmkit.shared_bed()
    port = swarmkit.free_port()

    def prepare(home: Path) -> list[str]:
        # the nodes trust the registry's CA before the server first pushes to it
        ca = Registry(home / "registry", address=bed.host_address, port=port).ensure_ca()
        bed.trust(ca, f"{bed.host_address}:{port}")
        return [
            "--docker-host", bed.manager_url,
            "--manager-address", bed.manager_address,
            "--registry-address", bed.host_address,
            "--registry-port", str(port),
        ]  # fmt: skip

    for bp in _running("swarm", before_start=prepare):
        bp.swarm = bed  # type: ignore[attr-defined]
        try:
            yield bp
        finally:  # the versions' images the server built on this host's engine
            swarmkit.remove_images(str(bp.home))


@pytest.fixture
def pid_app(tmp_path):
    """A copy of the dependency-free test app, free to be edited by the test."""
    dest = tmp_path / "pid-app"
    shutil.copytree(APPS / "pid", dest)
    return dest
