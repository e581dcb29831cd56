"""Carry out a version's steps (`beanpole.core.bundle_steps`): write files, run commands
and platform hooks in the app folder, as the app user, within the deployment's time.

Every step's output is appended to one log file (the build log for the build's steps,
``hooks.log`` beside it for a deployment's); a failing step raises `BuildError` with its
name, exit status and last lines. Steps never run as root: the caller passes the app
user's `subprocess` arguments (``user``/``group``), and a `files` entry is written by a
child process running as that user, so it can write only where the app user can.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beanpole.core.bundle_steps import (
    APP_ROOTS,
    Hook,
    Kind,
    Phase,
    RunCommand,
    RunHook,
    Step,
    WriteFile,
    eb_command,
    hooks_folder,
)
from beanpole.core.errors import BuildError

TAIL_LINES = 20
MAX_HOOKS = 100  # files read per hooks folder
_DEFAULT_FILE_MODE = 0o644
# Run by the app user (any user can run the shell): write stdin to $1 with mode $2, through
# a temporary file.
_WRITER = (
    'mkdir -p -- "$(dirname -- "$1")" && cat > "$1.beanpole-tmp" && '
    'chmod "$2" "$1.beanpole-tmp" && mv -f -- "$1.beanpole-tmp" "$1"'
)

#: The shell EB's commands run in: bash, as Amazon Linux's /bin/sh is (Debian's is dash).
SHELL = shutil.which("bash") or "/bin/sh"


def find_hooks(app_dir: Path, kind: Kind, phase: Phase) -> list[Hook]:
    """The files of a hooks folder of the app, and whether each is executable."""
    folder = app_dir / hooks_folder(kind, phase)
    found: list[Hook] = []
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name)[:MAX_HOOKS]:
            if not entry.is_file():  # follows links: the bundle keeps them inside the app
                continue
            mode = entry.stat().st_mode
            relative = f"{hooks_folder(kind, phase)}/{entry.name}"
            found.append(Hook(relative, bool(mode & stat.S_IXUSR)))
    return found


@dataclass
class StepRunner:
    """What every step of one phase shares."""

    app_dir: Path
    env: Mapping[str, str]  # the environment properties, PORT, PATH with the app's runtime
    log: Path  # where output is appended
    deadline: float  # time.monotonic() by which the whole phase must be done
    timeout_s: int  # the deployment's Timeout, for the message
    spawn: Mapping[str, Any] = field(default_factory=dict)  # user=, group= (the app user)
    # (message, is a warning): each step is named in an event
    report: Callable[[str, bool], None] = lambda message, warn: None
    # (title, log, offset before the step): the step's output, for the deploy log
    on_output: Callable[[str, Path, int], None] = lambda title, log, offset: None

    async def run(self, steps: Sequence[Step]) -> None:
        """Each step in turn. As an app user, with a temporary folder of the phase's own
        (``TMPDIR``, removed after it): the host's /tmp is every application's."""
        uid, gid = self.spawn.get("user"), self.spawn.get("group")
        tmp, env = None, self.env
        if isinstance(uid, int) and isinstance(gid, int) and "TMPDIR" not in self.env:
            tmp = await asyncio.to_thread(tempfile.mkdtemp, prefix="beanpole-steps-")
            os.chown(tmp, uid, gid)
            self.env = {**self.env, "TMPDIR": tmp}
        try:
            for step in steps:
                offset = _size(self.log)
                try:
                    if isinstance(step, WriteFile):
                        await self._write(step)
                    elif isinstance(step, RunCommand):
                        await self._command(step)
                    else:
                        await self._hook(step)
                finally:
                    self.on_output(step.title, self.log, offset)
        finally:
            if tmp is not None:
                self.env = env
                await asyncio.to_thread(shutil.rmtree, tmp, True)

    async def _write(self, step: WriteFile) -> None:
        spec = step.file
        target = self.app_dir / spec.path if spec.in_app else Path(spec.path)
        mode = _DEFAULT_FILE_MODE if spec.mode is None else spec.mode
        self.report(f"Writing {step.title}, mode {mode:04o}.", False)
        argv = ["/bin/sh", "-c", _WRITER, "sh", str(target), f"{mode:o}"]
        code, tail = await self._exec(argv, self.app_dir, self.env, step.title, stdin=spec.content)
        if code != 0:
            raise BuildError(
                f"Could not write {step.title}: the writer exited {code}. {tail} Beanpole "
                "writes files as the app user, never as root: write into the app (a relative "
                "path, or under /var/app/staging/), or make the folder writable by the app user."
            )

    def _shell(self, command: str) -> list[str]:
        """EB runs commands with Amazon Linux's /bin/sh, which is bash (`source` and all),
        and they name EB's folders: made this app's (`eb_command`)."""
        line = eb_command(command, str(self.app_dir), self.env.get("VIRTUAL_ENV", ""))
        return [SHELL, "-c", line]

    async def _command(self, step: RunCommand) -> None:
        command = step.command
        cwd = self._cwd(command.cwd, step.title)
        env = {**self.env, **command.env}
        if command.test:
            code, _ = await self._exec(self._shell(command.test), cwd, env, f"test of {step.title}")
            if code != 0:
                self.report(
                    f"Skipped {step.title}: its test exited {code} ({command.test[:80]}).",
                    False,
                )
                return
        self.report(f"Running {step.title}.", False)
        argv = (
            self._shell(command.command)
            if isinstance(command.command, str)
            else list(command.command)
        )
        code, tail = await self._exec(argv, cwd, env, step.title)
        if code == 0:
            return
        if command.ignore_errors:
            self.report(
                f"{step.title} failed with exit status {code}; continuing (ignoreErrors: "
                f"true). {tail}",
                True,
            )
            return
        raise BuildError(f"{step.title} failed with exit status {code}. {tail}")

    async def _hook(self, step: RunHook) -> None:
        self.report(f"Running {step.title}.", False)
        path = self.app_dir / step.hook.path
        code, tail = await self._exec([str(path)], self.app_dir, self.env, step.title)
        if code != 0:
            raise BuildError(f"{step.title} failed with exit status {code}. {tail}")

    def _cwd(self, cwd: str, title: str) -> Path:
        for root in APP_ROOTS:
            if cwd == root or cwd.startswith(root + "/"):
                cwd = cwd[len(root) :].lstrip("/")
        path = self.app_dir / cwd if cwd else self.app_dir  # an absolute cwd stays absolute
        if not path.is_dir():
            raise BuildError(
                f"{title} has cwd {cwd}, which is not a folder. Give a folder of the app "
                "(relative to it) or of the host."
            )
        return path

    async def _exec(
        self,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        what: str,
        *,
        stdin: bytes | None = None,
    ) -> tuple[int, str]:
        """Run one child, its output appended to the log; (exit status, its last lines)."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise BuildError(self._timeout_message(what))
        offset = _size(self.log)
        with self.log.open("ab") as out:
            out.write(f"$ {what}\n".encode())
            out.flush()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=cwd,
                    env=dict(env),
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                    start_new_session=True,
                    **self.spawn,
                )
            except OSError as exc:
                out.write(f"{exc.strerror or exc}\n".encode())
                reason = (
                    "it is not a program the host can run (a script needs a #! line)"
                    if exc.errno == 8  # ENOEXEC
                    else exc.strerror or str(exc)
                )
                raise BuildError(f"{what} could not start: {reason}.") from exc
            try:
                if stdin is not None:
                    await asyncio.wait_for(proc.communicate(stdin), remaining)
                    code = proc.returncode if proc.returncode is not None else -1
                else:
                    code = await asyncio.wait_for(proc.wait(), remaining)
            except TimeoutError:
                _kill(proc)
                await proc.wait()
                raise BuildError(self._timeout_message(what)) from None
            except asyncio.CancelledError:
                _kill(proc)
                await proc.wait()
                raise
            finally:
                # Whatever it left behind in its session goes too.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        return code, self._tail_text(offset)

    def _tail_text(self, offset: int) -> str:
        try:
            with self.log.open("rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines()[1:] if line.strip()][-TAIL_LINES:]
        if not lines:
            return "It printed nothing."
        counted = "line" if len(lines) == 1 else f"{len(lines)} lines"
        return f"Last {counted} of its output:\n" + "\n".join(lines)

    def _timeout_message(self, what: str) -> str:
        return (
            f"{what} did not finish within the deployment's Timeout ({self.timeout_s} s) and "
            "was stopped. Make it faster, or raise aws:elasticbeanstalk:command:Timeout."
        )


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
