"""Where each effective setting comes from (issue 8, part 8): EB's precedence, highest first,
direct > saved configuration > .ebextensions (the file that set it) > default."""

import pytest

from beanpole.core.errors import InvalidInput
from beanpole.core.model import Environment, EnvStatus, Health, check_configuration_name
from beanpole.core.settings import ENV_NAMESPACE, resolve
from beanpole.core.settings.ebextensions import ConfigFile, layer
from beanpole.core.settings.sources import (
    SourcedLayer,
    ebextensions_layer,
    explain,
    looks_secret,
    saved_source,
)

PY = "aws:elasticbeanstalk:container:python"
THREADS = f"{PY}:NumThreads"
WSGI = f"{PY}:WSGIPath"
PROCS = f"{PY}:NumProcesses"


def by_key(settings):
    return {f"{s.namespace}:{s.option}": (s.value, s.source) for s in settings}


def layers(direct, saved, ebext, origins=None):
    return (
        ebextensions_layer(ebext, origins or {}),
        SourcedLayer(saved, saved_source("baseline")),
        SourcedLayer(direct, "direct"),
    )


def test_each_value_comes_from_the_highest_layer_that_sets_it():
    found = by_key(
        explain(
            *layers(
                direct={THREADS: "8"},
                saved={THREADS: "6", WSGI: "app:server"},
                ebext={THREADS: "4", WSGI: "x:y", PROCS: "3"},
                origins={THREADS: ".ebextensions/01.config", PROCS: ".ebextensions/02.config"},
            )
        )
    )
    assert found[THREADS] == ("8", "direct")
    assert found[WSGI] == ("app:server", "saved:baseline")
    assert found[PROCS] == ("3", ".ebextensions/02.config")
    assert found["aws:autoscaling:asg:MaxSize"] == ("4", "default")


def test_removing_a_direct_setting_falls_back_to_the_saved_value_then_the_file():
    ebext = {THREADS: "4"}
    origins = {THREADS: ".ebextensions/threads.config"}
    with_saved = by_key(explain(*layers({}, {THREADS: "6"}, ebext, origins)))
    assert with_saved[THREADS] == ("6", "saved:baseline")
    without_saved = by_key(explain(*layers({}, {}, ebext, origins)))
    assert without_saved[THREADS] == ("4", ".ebextensions/threads.config")


def test_explain_agrees_with_resolve_and_lists_every_option_once_sorted():
    direct, saved, ebext = {THREADS: "8", f"{ENV_NAMESPACE}:A": "1"}, {WSGI: "w"}, {PROCS: "2"}
    settings = explain(*layers(direct, saved, ebext))
    assert {f"{s.namespace}:{s.option}": s.value for s in settings} == (
        resolve(ebext, saved, direct).values
    )
    keys = [(s.namespace, s.option) for s in settings]
    assert keys == sorted(set(keys))


def test_a_version_without_recorded_files_shows_the_folder_as_source():
    found = by_key(explain(ebextensions_layer({THREADS: "4"}, {})))
    assert found[THREADS] == ("4", ".ebextensions")


def test_the_ebextensions_layer_records_the_last_file_that_set_each_option():
    result = layer(
        [
            ConfigFile(
                ".ebextensions/01-a.config",
                b"option_settings:\n  "
                + PY.encode()
                + b":\n    NumThreads: 4\n    WSGIPath: a:app\n",
            ),
            ConfigFile(
                ".ebextensions/02-b.config",
                b"option_settings:\n  " + PY.encode() + b":\n    NumThreads: 6\n",
            ),
            ConfigFile(".ebextensions/03-bad.config", b"option_settings: [1, 2"),
        ]
    )
    assert result.origins == {
        THREADS: ".ebextensions/02-b.config",
        WSGI: ".ebextensions/01-a.config",
    }
    assert set(result.origins) == set(result.settings)  # an ignored file sets nothing


def test_an_environment_lays_its_saved_copy_between_the_version_and_direct_settings():
    env = Environment(
        "shop",
        "app",
        "shop",
        EnvStatus.READY,
        Health.GREEN,
        "v1",
        settings={THREADS: "8"},
        deployment_id=1,
        created_at=0.0,
        updated_at=0.0,
        version_settings={THREADS: "4", PROCS: "2"},
        saved_configuration="baseline",
        saved_settings={THREADS: "6", PROCS: "3"},
    )
    assert resolve(*env.layers()).get(PY, "NumThreads") == "8"
    assert resolve(*env.layers()).get(PY, "NumProcesses") == "3"
    assert resolve(*env.layers(direct={})).get(PY, "NumThreads") == "6"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("api_secret", True),
        ("GITHUB_TOKEN", True),
        ("SECRET_KEY", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("GREETING", False),
        ("TOKEN_URL", False),
        ("PASSWORD_MIN_LENGTH", False),
    ],
)
def test_secret_looking_names(name, secret):
    assert looks_secret(name) is secret


def test_only_environment_properties_are_secret():
    settings = explain(SourcedLayer({f"{ENV_NAMESPACE}:DB_PASSWORD": "pw"}, "direct"))
    secret = [s for s in settings if s.secret]
    assert [(s.option, s.value) for s in secret] == [("DB_PASSWORD", "pw")]


@pytest.mark.parametrize("name", ["a", "prod baseline", "x" * 100, "v1.2_final (old)"])
def test_saved_configuration_names_like_eb(name):
    assert check_configuration_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 101, "a/b", "tab\there", " lead", "trail "])
def test_bad_saved_configuration_names_say_the_rule(name):
    with pytest.raises(InvalidInput, match="1 to 100 characters without '/'"):
        check_configuration_name(name)
