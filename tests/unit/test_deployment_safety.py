"""What keeps one deployment's files apart from another's and from the host: a new attempt
never reuses the id (and folder) of instances still running, and a Docker volume of the
bundle cannot leave it through a symbolic link."""

from __future__ import annotations

import time

import pytest

from beanpole.adapters.build import Artifact
from beanpole.adapters.store.db import Store
from beanpole.core.errors import InvalidInput
from beanpole.core.model import Instance, InstanceState
from beanpole.core.platforms import BuildPlan
from beanpole.core.platforms.docker import DockerSource, Volume
from beanpole.home import Home, ServerConfig
from beanpole.services.fleet import Fleet
from beanpole.services.operations import Operations
from beanpole.testing import FakeRuntime
from beanpole.testing.load_balancer import FakeLoadBalancer


@pytest.fixture
def parts(tmp_path):
    home = Home(tmp_path / "home")
    home.prepare()
    store = Store(home.db)
    fleet = Fleet(home, ServerConfig(), store, FakeRuntime(), FakeLoadBalancer())
    yield home, store, fleet
    store.close()


def test_a_new_deployment_never_shares_an_id_with_running_instances(parts):
    _, store, fleet = parts
    ops = Operations(store, fleet, builder=None, bundles=None)  # type: ignore[arg-type]
    store.ensure_application("app")
    env = store.create_environment("shop", "app", "shop", {})
    store.update_environment("shop", deployment_id=4)
    env = store.environment("shop")
    assert ops._next_deployment_id(env) == 5
    # a failed attempt whose rollback could not finish left instances of deployment 5
    left = Instance("i-left", "shop", "v2", "k", 5, 20001, InstanceState.IN_SERVICE, time.time())
    store.add_instance(left)
    assert ops._next_deployment_id(env) == 6
    store.update_instance("i-left", state=InstanceState.STOPPED)
    assert ops._next_deployment_id(env) == 5  # stopped: its id is free again


def test_a_bundle_volume_that_a_symlink_leads_out_of_the_app_folder_is_refused(parts, tmp_path):
    _, _, fleet = parts
    app = tmp_path / "stage"
    (app / "site").mkdir(parents=True)
    (app / "escape").symlink_to("/")
    source = DockerSource(
        False,
        "nginx:1",
        80,
        volumes=(
            Volume("/var/app/current/site", "/srv/site"),
            Volume("/var/app/current/escape/etc", "/host-etc"),
        ),
    )
    artifact = Artifact(app, BuildPlan("docker", {"web": ""}, docker=source), (), {}, image="x")
    instance = Instance("i-1", "shop", "v1", "k", 1, 0, InstanceState.PENDING, time.time())
    with pytest.raises(InvalidInput, match=r"escape is not a folder \(a symbolic link"):
        fleet._mounts(instance, artifact, "web")
    safe = DockerSource(False, "nginx:1", 80, volumes=(Volume("./site", "/srv/site"),))
    artifact = Artifact(app, BuildPlan("docker", {"web": ""}, docker=safe), (), {}, image="x")
    (mount,) = fleet._mounts(instance, artifact, "web")
    assert (mount.source, mount.target) == (app / "site", "/srv/site")
