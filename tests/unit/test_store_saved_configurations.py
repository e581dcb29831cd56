"""Saved configurations in the SQLite store (issue 8, part 8): unique per application, an
environment created from one keeps a copy of its settings, a version the file of each
.ebextensions option."""

import time

import pytest

from beanpole.adapters.store.db import Store
from beanpole.core.errors import Conflict, NotFound
from beanpole.core.model import SavedConfiguration

THREADS = "aws:elasticbeanstalk:container:python:NumThreads"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    s.ensure_application("app")
    yield s
    s.close()


def saved(name="baseline", application="app", **settings):
    return SavedConfiguration(application, name, settings or {THREADS: "6"}, time.time())


def test_a_saved_configuration_round_trips_and_names_the_environment_it_came_from(store):
    env = store.create_environment("shop", "app", "shop", {})
    config = SavedConfiguration("app", "baseline", {THREADS: "6"}, 10.0, "for prod", "python", None)
    stored = store.add_saved_configuration(config, env.id)
    assert stored == SavedConfiguration(
        "app", "baseline", {THREADS: "6"}, 10.0, "for prod", "python", "shop"
    )
    assert store.saved_configuration("app", "baseline") == stored


def test_a_name_is_unique_within_its_application_only(store):
    store.ensure_application("other")
    store.add_saved_configuration(saved())
    store.add_saved_configuration(saved(application="other"))
    with pytest.raises(Conflict, match=r"already has a saved configuration baseline.*delete"):
        store.add_saved_configuration(saved())
    assert [c.application for c in store.saved_configurations()] == ["app", "other"]
    assert [c.name for c in store.saved_configurations("other")] == ["baseline"]


def test_unknown_names_say_how_to_list_them(store):
    message = "No saved configuration nope in application app. `beanpole config list app`"
    with pytest.raises(NotFound, match=message):
        store.saved_configuration("app", "nope")
    with pytest.raises(NotFound, match=message):
        store.delete_saved_configuration("app", "nope")
    with pytest.raises(NotFound, match="No application named 'ghost'"):
        store.add_saved_configuration(saved(application="ghost"))


def test_an_environment_keeps_its_copy_after_the_saved_configuration_is_deleted(store):
    config = store.add_saved_configuration(saved(**{THREADS: "6"}))
    store.create_environment("shop", "app", "shop", {THREADS: "8"}, saved=config)
    store.delete_saved_configuration("app", "baseline")
    env = store.environment("shop")
    assert (env.saved_configuration, env.saved_settings) == ("baseline", {THREADS: "6"})
    assert env.layers() == ({}, {THREADS: "6"}, {THREADS: "8"})
    assert store.saved_configurations("app") == []


def test_an_environment_without_one_has_an_empty_saved_layer(store):
    env = store.create_environment("shop", "app", "shop", {})
    assert (env.saved_configuration, env.saved_settings) == (None, {})


def test_a_version_keeps_which_file_set_each_option_and_the_environment_carries_it(store):
    origins = {THREADS: ".ebextensions/02-threads.config"}
    store.add_version("app", "v1", "aaa", "", {THREADS: "4"}, [], ebextensions_origins=origins)
    assert store.version("app", "v1").ebextensions_origins == origins
    store.create_environment("shop", "app", "shop", {})
    store.update_environment("shop", version_label="v1")
    assert store.environment("shop").version_origins == origins
