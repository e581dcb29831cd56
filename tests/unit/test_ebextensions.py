""".ebextensions option settings: both forms, EB's string values, later files winning, and
every way a file is ignored (with a warning naming the file, the problem and the fix)."""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path

import pytest

from beanpole.adapters.bundles import read_files
from beanpole.core.errors import BundleError, InvalidInput
from beanpole.core.settings import ENV_NAMESPACE, resolve
from beanpole.core.settings.ebextensions import (
    FOLDER,
    MAX_OPTIONS,
    SUFFIX,
    ConfigFile,
    layer,
    parse,
)

PY = "aws:elasticbeanstalk:container:python"
WSGI = f"{PY}:WSGIPath"
PROC = "aws:elasticbeanstalk:environment:process:default"


def files(**contents: str) -> list[ConfigFile]:
    """Config files in the order given: name -> text."""
    return [ConfigFile(f".ebextensions/{name}", text.encode()) for name, text in contents.items()]


# --- the two forms ----------------------------------------------------------------------


def test_short_form_as_in_the_django_tutorial():
    text = b"""
option_settings:
  aws:elasticbeanstalk:container:python:
    WSGIPath: mysite.wsgi:application
"""
    assert parse(text) == ({WSGI: "mysite.wsgi:application"}, [])


def test_long_form_with_the_namespace_defaulting_to_environment_properties():
    text = b"""
option_settings:
  - namespace: aws:elasticbeanstalk:container:python
    option_name: WSGIPath
    value: mysite/wsgi.py
  - option_name: GREETING
    value: hi there
"""
    settings, ignored = parse(text)
    assert settings == {WSGI: "mysite/wsgi.py", f"{ENV_NAMESPACE}:GREETING": "hi there"}
    assert ignored == []


def test_json_is_read_too():
    text = b"""{"option_settings": [
        {"namespace": "aws:autoscaling:asg", "option_name": "MinSize", "value": 2},
        {"option_name": "DEBUG", "value": false}]}"""
    assert parse(text)[0] == {"aws:autoscaling:asg:MinSize": "2", f"{ENV_NAMESPACE}:DEBUG": "false"}


def test_values_become_eb_strings():
    text = b"""
option_settings:
  aws:elasticbeanstalk:application:environment:
    ON: yes
    OFF: False
    PYTHON: 3.10
    COUNT: 010
    DAY: 2024-01-01
    EMPTY:
    QUOTED: "true"
  aws:elasticbeanstalk:command:
    IgnoreHealthCheck: True
    Timeout: 900
"""
    settings, _ = parse(text)
    env = {k.rpartition(":")[2]: v for k, v in settings.items() if k.startswith(ENV_NAMESPACE)}
    # as written, not as YAML 1.1 would read them: 3.10 is not 3.1, 010 is not 8
    assert env == {
        "ON": "true",
        "OFF": "false",
        "PYTHON": "3.10",
        "COUNT": "010",
        "DAY": "2024-01-01",
        "EMPTY": "",
        "QUOTED": "true",
    }
    assert settings["aws:elasticbeanstalk:command:IgnoreHealthCheck"] == "true"
    assert settings["aws:elasticbeanstalk:command:Timeout"] == "900"


def test_an_empty_file_or_one_without_option_settings_sets_nothing():
    assert parse(b"") == ({}, [])
    assert parse(b"# only a comment\n") == ({}, [])
    assert parse(b"option_settings:\n") == ({}, [])


# --- layering --------------------------------------------------------------------------


def test_later_files_win_and_the_layer_resolves_under_direct_settings():
    found = layer(
        files(
            **{
                "01-base.config": "option_settings:\n  - option_name: GREETING\n    value: one\n"
                "  - option_name: KEPT\n    value: k\n",
                "02-override.config": "option_settings:\n"
                "  aws:elasticbeanstalk:application:environment:\n    GREETING: two\n",
            }
        )
    )
    assert found.warnings == ()
    assert found.settings == {f"{ENV_NAMESPACE}:GREETING": "two", f"{ENV_NAMESPACE}:KEPT": "k"}
    # defaults < .ebextensions < direct
    direct = {f"{ENV_NAMESPACE}:GREETING": "direct"}
    assert resolve(found.settings, direct).env == {"GREETING": "direct", "KEPT": "k"}
    assert resolve(found.settings, {}).env == {"GREETING": "two", "KEPT": "k"}


def test_values_are_normalised_by_the_same_validation_as_direct_settings():
    found = layer(files(a="option_settings:\n  aws:autoscaling:asg:\n    MinSize: '007'\n"))
    assert found.settings == {"aws:autoscaling:asg:MinSize": "7"}


# --- what is ignored, and said so ------------------------------------------------------


def test_unsupported_keys_are_named_in_one_warning_and_the_rest_applies():
    text = """
commands:
  01: {command: "echo hi"}
container_commands:
  01_migrate: {command: "python manage.py migrate"}
packages:
  yum: {git: [], libpq-devel: []}
Resources:
  MyQueue: {Type: "AWS::SQS::Queue"}
option_settings:
  aws:elasticbeanstalk:application:environment: {GREETING: hi}
"""
    found = layer(files(**{"django.config": text}))
    assert found.settings == {f"{ENV_NAMESPACE}:GREETING": "hi"}
    assert [c.name for c in found.steps.commands] == ["01"]
    assert [c.name for c in found.steps.container_commands] == ["01_migrate"]
    (warning,) = found.warnings
    assert warning == (
        ".ebextensions/django.config: packages (yum: git, libpq-devel) ignored: Beanpole does "
        "not install system packages; install them on the host; .ebextensions/django.config: "
        "Resources (MyQueue) ignored: AWS resources (CloudFormation) have no counterpart on "
        "Beanpole."
    )


def test_a_misspelt_key_is_named_with_a_suggestion():
    found = layer(files(a="option_setting:\n  aws:autoscaling:asg: {MinSize: 2}\n"))
    assert found.settings == {}
    (warning,) = found.warnings
    assert "'option_setting' is not an .ebextensions key" in warning
    assert "did you mean option_settings?" in warning


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("option_settings: [\n", "not valid YAML or JSON (line 2"),
        ("option_settings:\n  x: y: z\n", "not valid YAML or JSON"),
        ("- option_settings\n", "top level is a list, not a mapping"),
        ("just text\n", "top level is the text 'just text'"),
        ("option_settings: 3\n", "option_settings is the text '3'. Use a list"),
        ("option_settings:\n  - GREETING=hi\n", "entry 1 is the text 'GREETING=hi', not a mapping"),
        ("option_settings:\n  - {option_name: A}\n", "entry 1 has no value"),
        ("option_settings:\n  - {value: A}\n", "entry 1 has no option_name"),
        (
            "option_settings:\n  - {option_name: A, value: 1, condition: X}\n",
            "key 'condition', which Beanpole does not support",
        ),
        ("option_settings:\n  - {option_name: [A], value: 1}\n", "option_name of option_settings"),
        (
            "option_settings:\n  aws:elasticbeanstalk:application:environment: [A, B]\n",
            "holds a list, not a mapping",
        ),
        (
            "option_settings:\n  aws:elasticbeanstalk:application:environment:\n    A: [1, 2]\n",
            "value of aws:elasticbeanstalk:application:environment:A is a list",
        ),
        (
            f"option_settings:\n  {ENV_NAMESPACE}: {{A: !!binary Zm9v}}\n",
            "a bytes value",
        ),
        ("option_settings:\n  aws:nope:thing: {X: 1}\n", "Unknown option namespace"),
        (
            "option_settings:\n  aws:elasticbeanstalk:container:python: {Threads: 2}\n",
            "Known options:",
        ),
        ("option_settings:\n  aws:autoscaling:asg: {MinSize: lots}\n", "not a whole number"),
        (
            "option_settings:\n  aws:elasticbeanstalk:application:environment: {PORT: 80}\n",
            "set by Beanpole",
        ),
        ("option_settings: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("a: &a {x: 1}\nb: {<<: *a}\n", "merge keys (<<) are not supported"),
        ("option_settings: " + "[" * 5000 + "]" * 5000 + "\n", "nests too deeply"),
    ],
)
def test_a_file_that_fails_validation_is_refused_with_the_problem(text, fragment):
    with pytest.raises(InvalidInput, match=re.escape(fragment)):
        parse(text.encode())


def test_a_bad_file_is_ignored_entirely_and_the_others_apply():
    found = layer(
        files(
            **{
                "01-good.config": "option_settings:\n  aws:autoscaling:asg: {MinSize: 2}\n",
                "02-bad.config": "option_settings:\n"
                "  aws:elasticbeanstalk:application:environment: {GREETING: from-bad}\n"
                "  aws:elasticbeanstalk:container:python: {NumThreads: 0}\n",
                "03-good.config": "option_settings:\n  - option_name: OTHER\n    value: x\n",
            }
        )
    )
    # nothing of 02 applies, not even its valid GREETING
    assert found.settings == {"aws:autoscaling:asg:MinSize": "2", f"{ENV_NAMESPACE}:OTHER": "x"}
    (warning,) = found.warnings
    assert warning.startswith(".ebextensions/02-bad.config is ignored: ")
    assert "NumThreads has value 0; it must be between 1 and 256" in warning


def test_files_that_were_not_read_are_reported():
    found = layer([ConfigFile(".ebextensions/big.config", None, "it is 9 bytes; the limit is 1.")])
    assert found == type(found)(
        {}, (".ebextensions/big.config is ignored: it is 9 bytes; the limit is 1.",)
    )


def test_undecodable_bytes_are_a_syntax_problem():
    with pytest.raises(InvalidInput, match="not valid YAML or JSON"):
        parse(b"option_settings:\n  \xff\xfe\xfa: 1\n")


def test_too_many_options_in_one_file_are_refused():
    long_form = "option_settings:\n" + "".join(
        f"  - {{option_name: K{i}, value: v}}\n" for i in range(MAX_OPTIONS + 1)
    )
    with pytest.raises(InvalidInput, match=f"more than {MAX_OPTIONS} option settings"):
        parse(long_form.encode())
    short_form = "option_settings:\n  aws:elasticbeanstalk:application:environment:\n" + "".join(
        f"    K{i}: v\n" for i in range(MAX_OPTIONS + 1)
    )
    with pytest.raises(InvalidInput, match=f"more than {MAX_OPTIONS} option settings"):
        parse(short_form.encode())


def test_aliases_are_shared_not_copied():
    """A 'billion laughs' of aliases builds shared lists; nothing walks them."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    lines.append("option_settings:\n  aws:elasticbeanstalk:application:environment:\n    A: *a11")
    with pytest.raises(InvalidInput, match=r"value of .*:A is a list"):
        parse("\n".join(lines).encode())


# --- reading them from a bundle ---------------------------------------------------------


def make_zip(path: Path, entries: dict[str, bytes | str]) -> Path:
    """A str value makes a symbolic link to that target."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            kind = stat.S_IFLNK | 0o777 if isinstance(content, str) else stat.S_IFREG | 0o644
            info.external_attr = kind << 16
            archive.writestr(info, content)
    return path


def read(zip_path: Path, **kwargs: int):
    limits = {"max_files": 64, "max_bytes": 1024, **kwargs}
    return read_files(zip_path, FOLDER, SUFFIX, **limits)


def test_only_config_files_directly_in_ebextensions_at_the_root_are_read_by_name(tmp_path):
    bundle = make_zip(
        tmp_path / "b.zip",
        {
            "Procfile": b"web: x\n",
            ".ebextensions/b.config": b"B",
            ".ebextensions/a.config": b"A",
            ".ebextensions/readme.txt": b"no",
            ".ebextensions/sub/c.config": b"no",
            "app/.ebextensions/d.config": b"no",
        },
    )
    got = read(bundle)
    assert [(f.path, f.data) for f in got] == [
        (".ebextensions/a.config", b"A"),
        (".ebextensions/b.config", b"B"),
    ]


def test_a_bundle_zipped_with_its_top_folder_is_read_like_the_folder(tmp_path):
    bundle = make_zip(
        tmp_path / "b.zip", {"myapp/Procfile": b"web: x\n", "myapp/.ebextensions/a.config": b"A"}
    )
    assert [(f.path, f.data) for f in read(bundle)] == [(".ebextensions/a.config", b"A")]


def test_large_files_links_and_files_past_the_count_are_not_read(tmp_path):
    entries: dict[str, bytes | str] = {
        "Procfile": b"web: x\n",
        ".ebextensions/00-big.config": b"x" * 2000,
        ".ebextensions/01-link.config": "../shared.config",
        "shared.config": b"A",
    }
    entries.update({f".ebextensions/{n:02d}.config": b"ok" for n in range(2, 8)})
    got = read(make_zip(tmp_path / "b.zip", entries), max_files=4)
    assert [f.path for f in got] == [
        ".ebextensions/00-big.config",
        ".ebextensions/01-link.config",
        ".ebextensions/02.config",
        ".ebextensions/03.config",
        ".ebextensions/04.config",  # stands for itself and the 3 after it
    ]
    big, link, two, three, rest = got
    assert big.data is None and "it is 2000 bytes; the limit is 1024" in big.problem
    assert link.data is None and "symbolic link (to ../shared.config)" in link.problem
    assert two.data == three.data == b"ok"
    assert rest.data is None and "this one and the 3 after it are ignored" in rest.problem


def test_a_hostile_bundle_is_refused_before_anything_is_read(tmp_path):
    bundle = make_zip(tmp_path / "b.zip", {"../evil": b"x", ".ebextensions/a.config": b"A"})
    with pytest.raises(BundleError, match="climbs out"):
        read(bundle)


def test_a_scheduled_action_in_the_long_form_takes_its_resource_name():
    """EB's documented form for scheduled actions: resource_name names the action."""
    text = """option_settings:
  - namespace: aws:autoscaling:scheduledaction
    resource_name: ScaleUpMornings
    option_name: MinSize
    value: '3'
  - namespace: aws:autoscaling:scheduledaction
    resource_name: ScaleUpMornings
    option_name: Recurrence
    value: 0 9 * * MON-FRI
"""
    layer, _ = parse(text.encode())
    assert layer == {
        "aws:autoscaling:scheduledaction:ScaleUpMornings:MinSize": "3",
        "aws:autoscaling:scheduledaction:ScaleUpMornings:Recurrence": "0 9 * * MON-FRI",
    }
