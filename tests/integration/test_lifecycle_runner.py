"""The step runner with real child processes: environment, cwd, test, ignoreErrors, files
with their mode, hooks, failures with their last lines, and the deployment's timeout."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest

from beanpole.adapters.lifecycle import StepRunner, find_hooks
from beanpole.core.bundle_steps import (
    Command,
    FileSpec,
    Hook,
    Kind,
    Phase,
    RunCommand,
    RunHook,
    WriteFile,
)
from beanpole.core.errors import BuildError


def runner(app: Path, events: list[tuple[str, bool]], timeout: float = 60) -> StepRunner:
    return StepRunner(
        app,
        {"PATH": os.environ["PATH"], "PORT": "8000", "GREETING": "hi"},
        app.parent / "hooks.log",
        time.monotonic() + timeout,
        int(timeout),
        report=lambda message, warn: events.append((message, warn)),
    )


def command(name: str, line: str | tuple[str, ...], **kw: object) -> RunCommand:
    return RunCommand(Command(name, line, ".ebextensions/x.config", "container_commands", **kw))  # type: ignore[arg-type]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    (folder / "sub").mkdir(parents=True)
    return folder


def test_commands_see_the_properties_port_their_env_and_cwd(app):
    events: list[tuple[str, bool]] = []
    asyncio.run(
        runner(app, events).run(
            [
                command("01", 'echo "$GREETING $PORT $EXTRA $(pwd)" > out', env={"EXTRA": "x"}),
                command("02", ("touch", "made-by-argv"), cwd="/var/app/staging/sub"),
            ]
        )
    )
    assert (app / "out").read_text() == f"hi 8000 x {app}\n"
    assert (app / "sub" / "made-by-argv").exists()
    assert events == [
        ("Running container_commands 01 (.ebextensions/x.config).", False),
        ("Running container_commands 02 (.ebextensions/x.config).", False),
    ]


def test_a_failing_test_skips_the_command(app):
    events: list[tuple[str, bool]] = []
    asyncio.run(runner(app, events).run([command("01", "touch ran", test="exit 1")]))
    assert not (app / "ran").exists()
    assert events == [
        (
            "Skipped container_commands 01 (.ebextensions/x.config): its test exited 1 (exit 1).",
            False,
        )
    ]


def test_a_failure_names_the_step_status_and_last_lines(app):
    events: list[tuple[str, bool]] = []
    with pytest.raises(BuildError) as caught:
        asyncio.run(
            runner(app, events).run(
                [command("01", "echo one; echo two >&2; exit 3"), command("02", "touch never")]
            )
        )
    assert caught.value.message == (
        "container_commands 01 (.ebextensions/x.config) failed with exit status 3. "
        "Last 2 lines of its output:\none\ntwo"
    )
    assert not (app / "never").exists()


def test_ignore_errors_turns_a_failure_into_a_warning(app):
    events: list[tuple[str, bool]] = []
    asyncio.run(
        runner(app, events).run(
            [command("01", "echo oops; exit 2", ignore_errors=True), command("02", "touch next")]
        )
    )
    assert (app / "next").exists()
    assert (
        "container_commands 01 (.ebextensions/x.config) failed with exit status 2; continuing "
        "(ignoreErrors: true). Last line of its output:\noops",
        True,
    ) in events


def test_files_are_written_with_their_mode_as_the_runner_user(app):
    steps = [
        WriteFile(FileSpec("conf/app.ini", b"[app]\n", 0o600, True, "x.config")),
        WriteFile(FileSpec(str(app.parent / "outside.txt"), b"x", None, False, "x.config")),
    ]
    asyncio.run(runner(app, []).run(steps))
    written = app / "conf" / "app.ini"
    assert written.read_bytes() == b"[app]\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE((app.parent / "outside.txt").stat().st_mode) == 0o644


def test_hooks_are_found_in_name_order_and_run_with_the_environment(app):
    folder = app / ".platform" / "hooks" / "predeploy"
    folder.mkdir(parents=True)
    for name in ("02_second.sh", "01_first.sh"):
        (folder / name).write_text(f'#!/bin/sh\necho "{name} $PORT" >> "$PWD/order"\n')
        (folder / name).chmod(0o755)
    (folder / "notes.txt").write_text("not a hook\n")
    hooks = find_hooks(app, Kind.APPLICATION, Phase.PREDEPLOY)
    assert hooks == [
        Hook(".platform/hooks/predeploy/01_first.sh", True),
        Hook(".platform/hooks/predeploy/02_second.sh", True),
        Hook(".platform/hooks/predeploy/notes.txt", False),
    ]
    asyncio.run(runner(app, []).run([RunHook(h) for h in hooks if h.executable]))
    assert (app / "order").read_text() == "01_first.sh 8000\n02_second.sh 8000\n"
    assert find_hooks(app, Kind.CONFIGURATION, Phase.PREDEPLOY) == []


def test_a_hook_without_a_shebang_says_so(app):
    folder = app / ".platform" / "hooks" / "predeploy"
    folder.mkdir(parents=True)
    (folder / "01.sh").write_text("echo no shebang\n")
    (folder / "01.sh").chmod(0o755)
    with pytest.raises(BuildError, match=r"could not start: it is not a program .* #! line"):
        asyncio.run(runner(app, []).run([RunHook(Hook(".platform/hooks/predeploy/01.sh", True))]))


def test_a_step_past_the_deadline_is_stopped_with_the_setting_to_raise(app):
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        asyncio.run(runner(app, [], timeout=1).run([command("01", "sleep 30")]))
    assert time.monotonic() - started < 10
    assert caught.value.message == (
        "container_commands 01 (.ebextensions/x.config) did not finish within the deployment's "
        "Timeout (1 s) and was stopped. Make it faster, or raise "
        "aws:elasticbeanstalk:command:Timeout."
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="steps run as another user only as root")
def test_steps_as_the_app_user_cannot_gain_privileges_and_get_a_private_tmpdir(public_tmp):
    """A set-uid-root file in the app folder (root in one of its Docker containers could
    write one into a bind-mounted folder) gives the app user nothing: its steps run with
    no_new_privs. Their TMPDIR is a folder of the phase's own, gone after it."""
    from beanpole.adapters.appuser import subprocess_kwargs
    from beanpole.core.runtime import RunAs

    nobody = RunAs("nobody", 65534, 65534)
    app = public_tmp / "app"
    app.mkdir()
    os.chown(app, nobody.uid, nobody.gid)
    planted = app / "planted-id"
    planted.write_bytes(Path("/usr/bin/id").read_bytes())
    planted.chmod(0o4755)  # root's, set-uid
    assert planted.stat().st_uid == 0 and planted.stat().st_mode & stat.S_ISUID
    script = (
        "./planted-id -u > euid.txt; grep NoNewPrivs /proc/self/status > nnp.txt; "
        'echo "$TMPDIR" > tmpdir.txt; stat -c "%u %a" "$TMPDIR" > tmpdir-stat.txt'
    )
    steps = StepRunner(
        app,
        {"PATH": os.environ["PATH"]},
        public_tmp / "hooks.log",
        time.monotonic() + 60,
        60,
        subprocess_kwargs(nobody),
    )
    asyncio.run(steps.run([command("01_probe", script)]))
    assert (app / "euid.txt").read_text().strip() == str(nobody.uid)
    assert (app / "nnp.txt").read_text().split() == ["NoNewPrivs:", "1"]
    tmpdir = Path((app / "tmpdir.txt").read_text().strip())
    assert tmpdir.is_absolute() and tmpdir != Path("/tmp")
    assert (app / "tmpdir-stat.txt").read_text().split() == [str(nobody.uid), "700"]
    assert not tmpdir.exists()
    assert "TMPDIR" not in steps.env  # the runner can run another phase
