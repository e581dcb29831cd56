"""The image registry Swarm nodes pull versions' images from (adapters/registry.py).

Real ``docker-registry`` (Debian's, the reference registry 2.8) and the real Docker engine, on
loopback and free ports. The pushed image is a one-file image imported here (no registry is
reached, nothing is pulled from the network), removed with every reference to it afterwards.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import ssl
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import httpx
import psutil
import pytest
from cryptography import x509

from beanpole.adapters import registry as registry_module
from beanpole.adapters.registry import ExternalRegistry, Registry
from beanpole.adapters.runtime import docker as docker_runtime
from beanpole.core.errors import BuildError, ComponentError, InvalidInput

pytestmark = pytest.mark.skipif(
    registry_module.unavailable() is not None,
    reason=f"the registry cannot run here: {registry_module.unavailable()}",
)

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
REPOSITORY = "beanpole-test/web"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def https(reg: Registry) -> httpx.Client:
    """A client that trusts only the registry's CA (what a node is given)."""
    context = ssl.create_default_context(cafile=str(reg.ca_file))
    return httpx.Client(base_url=f"https://127.0.0.1:{reg.port}", verify=context, timeout=10)


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    """Registries on free loopback ports, each stopped at the end whatever happened."""
    made: list[Registry] = []

    def make(port: int | None = None, directory: Path | None = None) -> Registry:
        reg = Registry(
            directory or tmp_path / "registry",
            address="127.0.0.1",
            port=port or free_port(),
            bind="127.0.0.1",
        )
        made.append(reg)
        return reg

    try:
        yield make
    finally:
        for reg in made:
            reg.stop()


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    why = docker_runtime.unavailable()
    if why is not None:
        pytest.skip(f"no Docker engine: {why}")
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=120)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def image(engine: docker.DockerClient) -> Iterator[str]:
    """A one-file image made here (its own content, so its own id); removed at the end with
    every tag and digest reference it got."""
    payload = f"beanpole registry test {uuid.uuid4()}\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(payload)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(payload))
    name = f"beanpole-test/registry-src:{uuid.uuid4().hex[:12]}"
    repository, tag = name.split(":")
    engine.api.import_image_from_data(buf.getvalue(), repository=repository, tag=tag)
    image_id = engine.api.inspect_image(name)["Id"]
    try:
        yield name
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_image(image_id, force=True)


def test_starts_over_tls_adopts_and_stops(make_registry: Callable[..., Registry]) -> None:
    reg = make_registry()
    reg.ensure_running()

    with https(reg) as http:
        assert http.get("/v2/").status_code == 200
    assert reg.is_running()
    assert reg.host == f"127.0.0.1:{reg.port}"
    for key in (reg.directory / "ca.key", reg.directory / "key.pem"):
        assert os.stat(key).st_mode & 0o777 == 0o600, key
    cert = x509.load_pem_x509_certificate((reg.directory / "cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1"}
    pid = int(reg.pid_file.read_text())
    ca = reg.ca_file.read_bytes()

    # Again, and from a new object (a restarted control plane): the same process is adopted.
    reg.ensure_running()
    again = Registry(reg.directory, address="127.0.0.1", port=reg.port, bind="127.0.0.1")
    again.ensure_running()
    assert int(reg.pid_file.read_text()) == pid
    assert reg.ca_file.read_bytes() == ca

    reg.stop()
    assert wait_until(lambda: not alive(pid)), f"registry pid {pid} still runs after stop()"
    assert not reg.pid_file.exists()
    assert not reg.is_running()
    with pytest.raises(httpx.ConnectError), https(reg) as http:
        http.get("/v2/")
    reg.stop()  # stopping a stopped registry is fine


def test_another_port_restarts_it_with_the_same_ca(
    make_registry: Callable[..., Registry],
) -> None:
    first = make_registry()
    first.ensure_running()
    pid = int(first.pid_file.read_text())
    ca = first.ca_file.read_bytes()

    moved = make_registry(directory=first.directory)  # same files, another port
    moved.ensure_running()

    assert wait_until(lambda: not alive(pid)), "the registry on the old port still runs"
    assert int(moved.pid_file.read_text()) != pid
    assert moved.is_running()
    assert moved.ca_file.read_bytes() == ca  # nodes keep trusting it


def test_start_failure_names_the_log(make_registry: Callable[..., Registry]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        reg = make_registry(port=taken.getsockname()[1])
        with pytest.raises(ComponentError) as failure:
            reg.ensure_running()
    assert str(reg.log_file) in failure.value.message
    assert "address already in use" in failure.value.message
    assert not reg.pid_file.exists()


def test_push_gives_a_digest_nodes_pull_and_delete_removes_it(
    make_registry: Callable[..., Registry], engine: docker.DockerClient, image: str
) -> None:
    reg = make_registry()
    reg.ensure_running()
    image_id = engine.api.inspect_image(image)["Id"]

    reference = reg.push(engine.api, image, REPOSITORY)

    prefix = f"{reg.host}/{REPOSITORY}@sha256:"
    assert reference.startswith(prefix), reference
    digest = reference.split("@")[1]
    manifest = f"/v2/{REPOSITORY}/manifests/{digest}"
    with https(reg) as http:
        answer = http.get(manifest, headers={"Accept": MANIFEST_V2})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Docker-Content-Digest"] == digest
    assert answer.headers["Content-Type"] == MANIFEST_V2
    # The temporary 127.0.0.1 tag is gone; the image keeps its own name.
    tags = engine.api.inspect_image(image_id)["RepoTags"]
    assert tags == [image], tags

    # A node without the image pulls it by digest.
    engine.api.remove_image(image_id, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.api.inspect_image(image_id)
    engine.api.pull(f"127.0.0.1:{reg.port}/{REPOSITORY}@{digest}")
    assert engine.api.inspect_image(f"127.0.0.1:{reg.port}/{REPOSITORY}@{digest}")["Id"] == (
        image_id
    )

    reg.delete(reference)
    with https(reg) as http:
        assert http.get(manifest, headers={"Accept": MANIFEST_V2}).status_code == 404
    reg.delete(reference)  # already gone: fine
    engine.api.remove_image(image_id, force=True)


def test_push_of_a_missing_image_says_so(
    make_registry: Callable[..., Registry], engine: docker.DockerClient
) -> None:
    reg = make_registry()
    reg.ensure_running()
    with pytest.raises(BuildError) as failure:
        reg.push(engine.api, f"beanpole-test/absent:{uuid.uuid4().hex[:12]}", REPOSITORY)
    assert "is not on this host" in failure.value.message
    assert "build it" in failure.value.message


def test_push_to_a_stopped_registry_gives_the_engine_message(
    make_registry: Callable[..., Registry], engine: docker.DockerClient, image: str
) -> None:
    reg = make_registry()  # never started: nothing listens on its port
    reg.directory.mkdir(parents=True, exist_ok=True)
    with pytest.raises(BuildError) as failure:
        reg.push(engine.api, image, REPOSITORY)
    message = failure.value.message
    assert f"127.0.0.1:{reg.port}" in message
    assert "connection refused" in message.lower(), message
    assert str(reg.log_file) in message
    assert engine.api.inspect_image(image)["RepoTags"] == [image]  # temporary tag removed


def test_an_operator_s_registry_gets_the_push_and_names_the_pull(
    make_registry: Callable[..., Registry], engine: docker.DockerClient, image: str
) -> None:
    """``--registry HOST:PORT``: Beanpole runs nothing, pushes there, nodes pull from there
    (here a registry started by the test stands for the operator's)."""
    theirs = make_registry()
    theirs.ensure_running()
    external = ExternalRegistry(f"127.0.0.1:{theirs.port}")
    external.ensure_running()  # nothing to start
    reference = external.push(engine.api, image, REPOSITORY)
    assert reference.startswith(f"127.0.0.1:{theirs.port}/{REPOSITORY}@sha256:"), reference
    with https(theirs) as http:
        manifest = f"/v2/{REPOSITORY}/manifests/{reference.split('@')[1]}"
        assert http.get(manifest, headers={"Accept": MANIFEST_V2}).status_code == 200
    theirs.stop()
    with pytest.raises(BuildError) as failure:
        external.push(engine.api, image, REPOSITORY)
    assert f"Check that 127.0.0.1:{theirs.port} answers" in failure.value.message
    with pytest.raises(InvalidInput, match="is not HOST or HOST:PORT"):
        ExternalRegistry("https://registry.lan/")
