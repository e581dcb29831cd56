"""`.ebextensions` files, commands and container_commands (issue 8): every key, the shapes
refused with the entry named, and the order EB runs them in (`phase_plan`)."""

from __future__ import annotations

import re

import pytest

from beanpole.core.bundle_steps import (
    Command,
    Hook,
    Kind,
    Phase,
    RunCommand,
    RunHook,
    Steps,
    WriteFile,
    hooks_folder,
    phase_plan,
)
from beanpole.core.errors import InvalidInput
from beanpole.core.settings.ebextensions import ConfigFile, Unreadable, layer


def one(text: str, name: str = "01.config") -> tuple[Steps, tuple[str, ...]]:
    found = layer([ConfigFile(f".ebextensions/{name}", text.encode())])
    return found.steps, found.warnings


# --- files -----------------------------------------------------------------------------


def test_files_with_content_mode_owner_and_both_encodings():
    steps, warnings = one(
        """
files:
  "/var/app/staging/conf/app.ini":
    mode: "000640"
    owner: webapp
    group: webapp
    content: |
      [app]
      name = shop
  "secret.bin":
    encoding: base64
    content: aGVsbG8=
  "/tmp/beanpole-test/settings.json":
    content: {debug: false}
"""
    )
    assert warnings == ()
    ini, secret, absolute = steps.files
    assert (ini.path, ini.in_app, ini.mode) == ("conf/app.ini", True, 0o640)
    assert ini.content == b"[app]\nname = shop\n"
    assert (secret.path, secret.content, secret.mode) == ("secret.bin", b"hello", None)
    assert (absolute.path, absolute.in_app) == ("/tmp/beanpole-test/settings.json", False)
    assert absolute.content == b'{\n  "debug": false\n}'  # inline YAML is written as JSON
    assert all(f.source == ".ebextensions/01.config" for f in steps.files)


def test_set_uid_bits_are_dropped_from_a_mode():
    steps, _ = one('files:\n  x.sh: {mode: "004755", content: "echo"}\n')
    assert steps.files[0].mode == 0o755


def test_nginx_and_eb_machinery_paths_are_skipped_with_a_warning():
    steps, warnings = one(
        'files:\n  "/etc/nginx/conf.d/proxy.conf": {content: "client_max_body_size 20M;"}\n'
    )
    assert steps.files == ()
    (warning,) = warnings
    assert warning.startswith(".ebextensions/01.config: files entry /etc/nginx/conf.d/proxy.conf")
    assert "skipped" in warning


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (
            '"/opt/app.zip": {source: "https://example.com/app.zip"}',
            "files entry '/opt/app.zip' has source: https://example.com/app.zip: Beanpole does "
            "not download files while deploying. Put the file in the bundle, or write it with "
            "content: instead.",
        ),
        ('"x": {mode: "0644"}', "files entry 'x' has no content"),
        ('"x": {content: a, mode: "rw-r--r--"}', "has mode 'rw-r--r--', not an octal number"),
        ('"x": {content: a, mode: "0177777"}', "beyond 007777"),
        ('"x": {content: a, encoding: gzip}', "has encoding 'gzip'; use plain or base64"),
        ('"x": {content: "not base64!", encoding: base64}', "its content is not base64"),
        ('"x": {content: a, permissions: 1}', "has the key 'permissions'"),
        ('"../outside": {content: a}', "points outside the application folder"),
        ('"/var/app/staging/../../etc/x": {content: a}', "points outside the application"),
        ('"x": "just text"', "files entry 'x' is the text 'just text', not a mapping"),
    ],
)
def test_a_bad_files_entry_refuses_the_file_naming_the_entry(entry, fragment):
    with pytest.raises(Unreadable) as caught:
        one(f"files:\n  {entry}\n")
    assert caught.value.message.startswith(
        "The configuration file .ebextensions/01.config in the bundle is refused: "
    )
    assert fragment in caught.value.message


def test_files_must_be_a_mapping():
    with pytest.raises(Unreadable, match="files is a list, not a mapping of path"):
        one("files:\n  - /tmp/x\n")


# --- commands and container_commands ---------------------------------------------------


def test_commands_take_every_key_and_run_in_name_order():
    steps, _ = one(
        """
commands:
  02_second:
    command: ["touch", "b"]
  01_first:
    command: "echo $GREETING > a"
    cwd: /var/app/staging/sub
    env: {GREETING: hi, COUNT: 3}
    test: "test ! -f a"
    ignoreErrors: "true"
container_commands:
  10_collectstatic:
    command: python manage.py collectstatic --noinput
  01_migrate:
    command: python manage.py migrate
    leader_only: true
    ignoreErrors: false
"""
    )
    first, second = steps.commands
    assert first == Command(
        "01_first",
        "echo $GREETING > a",
        ".ebextensions/01.config",
        "commands",
        cwd="/var/app/staging/sub",
        env={"GREETING": "hi", "COUNT": "3"},
        test="test ! -f a",
        ignore_errors=True,
    )
    assert second.command == ("touch", "b")
    assert [c.name for c in steps.container_commands] == ["01_migrate", "10_collectstatic"]
    assert steps.container_commands[0].leader_only is True
    assert steps.container_commands[0].title == (
        "container_commands 01_migrate (.ebextensions/01.config)"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("commands:\n  - echo hi\n", "commands is a list, not a mapping of name"),
        ("commands:\n  01: {cwd: /tmp}\n", "commands entry '01' has no command"),
        ("commands:\n  01: {command: [echo, [x]]}\n", "has a command that is a list"),
        ("commands:\n  01: {command: {a: b}}\n", "has a command that is a mapping"),
        ("commands:\n  01: {command: x, leader_only: true}\n", "has the key 'leader_only'"),
        ("container_commands:\n  01: {command: x, leaderOnly: true}\n", "key 'leaderOnly'"),
        ("container_commands:\n  01: {command: x, ignoreErrors: maybe}\n", "write true or false"),
        ("container_commands:\n  01: {command: x, env: [A=1]}\n", "env of container_commands"),
        ("container_commands:\n  01: {command: x, env: {A: [1]}}\n", "env variable A"),
        ("container_commands:\n  01: [x]\n", "container_commands entry '01' is a list"),
    ],
)
def test_a_bad_command_refuses_the_file_naming_the_entry(text, fragment):
    with pytest.raises(Unreadable, match=re.escape(fragment)):
        one(text)


def test_a_plain_string_is_taken_as_the_command():
    steps, _ = one('container_commands:\n  01_hi: "echo hi"\n')
    assert steps.container_commands[0].command == "echo hi"


# --- files that do not parse -----------------------------------------------------------


def test_a_file_that_is_not_yaml_refuses_the_version_with_the_file_and_line():
    good = ConfigFile(".ebextensions/01-good.config", b"option_settings: {}\n")
    bad = ConfigFile(
        ".ebextensions/02-bad.config",
        b"container_commands:\n  01_migrate:\n    command: python manage.py migrate\n"
        b"   leader_only: true\n",
    )
    with pytest.raises(Unreadable) as caught:
        layer([good, bad])
    assert caught.value.message == (
        "The configuration file .ebextensions/02-bad.config in the bundle cannot be read: it "
        "is not valid YAML or JSON (line 4, column 4: expected <block end>, but found "
        "'<block mapping start>'). Fix its syntax."
    )
    assert isinstance(caught.value, InvalidInput)  # refused as bad input (400)


def test_a_top_level_that_is_not_a_mapping_refuses_the_version():
    with pytest.raises(Unreadable, match="its top level is a list"):
        one("- commands\n")


def test_steps_of_several_files_keep_the_files_order_and_survive_storage():
    found = layer(
        [
            ConfigFile(".ebextensions/01.config", b"container_commands:\n  z: {command: a}\n"),
            ConfigFile(".ebextensions/02.config", b"container_commands:\n  a: {command: b}\n"),
            ConfigFile(
                ".ebextensions/03.config",
                b'files:\n  f: {content: "\\xff", mode: "000600"}\n'
                b"commands:\n  c: {command: [x]}\n",
            ),
        ]
    )
    assert [c.name for c in found.steps.container_commands] == ["z", "a"]
    assert Steps.from_json(found.steps.to_json()) == found.steps
    assert Steps.from_json("{}") == Steps()  # versions from before migration 0012


def test_a_file_whose_option_settings_fail_is_ignored_with_its_commands():
    found = layer(
        [
            ConfigFile(
                ".ebextensions/01.config",
                b"option_settings:\n  aws:autoscaling:asg: {MinSize: lots}\n"
                b"container_commands:\n  01: {command: migrate}\n",
            )
        ]
    )
    assert found.steps == Steps()
    assert found.warnings[0].startswith(".ebextensions/01.config is ignored: ")


# --- the order of the steps ------------------------------------------------------------

STEPS = Steps(
    files=(),
    commands=(Command("01", "echo c", "x.config", "commands"),),
    container_commands=(Command("01", "echo cc", "x.config", "container_commands"),),
)


def test_prebuild_runs_files_then_commands_then_hooks_by_name():
    steps, _ = one('files:\n  a.txt: {content: a}\ncommands:\n  01: {command: "echo c"}\n')
    hooks = [
        Hook(".platform/hooks/prebuild/02_b.sh", True),
        Hook(".platform/hooks/prebuild/01_a.sh", True),
    ]
    plan, warnings = phase_plan(Phase.PREBUILD, Kind.APPLICATION, steps, hooks)
    assert [type(s) for s in plan] == [WriteFile, RunCommand, RunHook, RunHook]
    assert [s.hook.path for s in plan if isinstance(s, RunHook)] == [
        ".platform/hooks/prebuild/01_a.sh",
        ".platform/hooks/prebuild/02_b.sh",
    ]
    assert warnings == []


def test_predeploy_runs_container_commands_then_hooks_and_warns_of_non_executables():
    hooks = [Hook(".platform/hooks/predeploy/01.sh", True), Hook("…/README", False)]
    plan, warnings = phase_plan(Phase.PREDEPLOY, Kind.APPLICATION, STEPS, hooks)
    assert plan == [RunCommand(STEPS.container_commands[0]), RunHook(hooks[0])]
    assert warnings == [
        "Hook …/README is not executable and was skipped, as on Elastic Beanstalk. Make it "
        "executable (chmod +x …/README, then zip again)."
    ]


def test_a_configuration_deployment_runs_confighooks_and_container_commands_only():
    assert hooks_folder(Kind.CONFIGURATION, Phase.PREBUILD) == ".platform/confighooks/prebuild"
    assert hooks_folder(Kind.APPLICATION, Phase.POSTDEPLOY) == ".platform/hooks/postdeploy"
    plan, _ = phase_plan(Phase.PREBUILD, Kind.CONFIGURATION, STEPS, [])
    assert plan == []  # files and commands belong to the version's build
    plan, _ = phase_plan(Phase.PREDEPLOY, Kind.CONFIGURATION, STEPS, [])
    assert plan == [RunCommand(STEPS.container_commands[0])]
    plan, _ = phase_plan(Phase.POSTDEPLOY, Kind.APPLICATION, STEPS, [])
    assert plan == []


def test_commands_written_for_an_eb_instance_name_the_apps_folders():
    from beanpole.core.bundle_steps import eb_command

    assert (
        eb_command("source /var/app/venv/*/bin/activate && python3 manage.py migrate", "/a", "/v")
        == "source /v/bin/activate && python3 manage.py migrate"
    )
    assert eb_command(". /var/app/venv/staging-LQM1lest/bin/activate", "/a", "/v") == (
        ". /v/bin/activate"
    )
    assert eb_command("cd /var/app/current; cat /var/app/staging/x.txt", "/a", "") == (
        "cd /a; cat /a/x.txt"
    )
    # only EB's folders themselves: other paths and words are left as they are
    untouched = "ls /var/app/currently /srv/var/app/current /var/app/venv/*/bin/activate"
    assert eb_command(untouched, "/a", "") == untouched  # no virtualenv: nothing to name
