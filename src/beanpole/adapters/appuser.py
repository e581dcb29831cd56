"""The unprivileged user applications run as: their commands, hooks and processes.

Elastic Beanstalk runs an application as ``webapp``, never as root. When Beanpole runs as
root it does the same: it creates the system user ``webapp`` (or the one named by
``$BEANPOLE_APP_USER``) on first use, hands each version's staged folder over to it, runs the
bundle's commands as it and has the launcher drop to it before the app starts. When Beanpole
is not root there is nobody to drop to: applications run as Beanpole's own user, which is
then the application's user.

The user must be able to reach the staged folders under ``BEANPOLE_HOME``: every folder above
them must let others traverse (``o+x``). `check_reachable` says which one does not, and how to
fix it, before anything is deployed.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from beanpole.core.errors import ComponentError
from beanpole.core.runtime import RunAs

DEFAULT_APP_USER = "webapp"
APP_USER_ENV = "BEANPOLE_APP_USER"


@functools.cache
def app_user() -> RunAs | None:
    """The user applications run as; created when Beanpole is root and it does not exist."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(APP_USER_ENV) or DEFAULT_APP_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create(name)
    if entry.pw_uid == 0:
        raise ComponentError(
            f"The application user {name!r} is root. Applications never run as root: set "
            f"{APP_USER_ENV} to an unprivileged user (the default is {DEFAULT_APP_USER!r})."
        )
    return RunAs(name, entry.pw_uid, entry.pw_gid)


def _create(name: str) -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(name)  # made, or made by another process meanwhile
    except KeyError:
        raise ComponentError(
            f"Could not create the application user {name!r} ({result.stderr.strip()}). "
            f"Create it (useradd --system {name}) or name an existing unprivileged user "
            f"in {APP_USER_ENV}."
        ) from None


def subprocess_kwargs(run_as: RunAs | None) -> dict[str, Any]:
    """Arguments that make `subprocess`/`asyncio.create_subprocess_exec` run as ``run_as``."""
    if run_as is None:
        return {}
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


def hand_over(path: Path, run_as: RunAs | None) -> None:
    """Make ``path`` and everything under it the app user's (symbolic links themselves,
    never what they point to)."""
    if run_as is None:
        return
    os.chown(path, run_as.uid, run_as.gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), run_as.uid, run_as.gid, follow_symlinks=False)


def _blocker(path: Path, run_as: RunAs) -> tuple[Path, int] | None:
    """The first folder (from ``path`` up) the user may not traverse, and its mode."""
    for folder in [path, *path.parents]:
        try:
            info = folder.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == run_as.uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == run_as.gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return folder, stat.S_IMODE(info.st_mode)
    return None


def can_run(program: Path, run_as: RunAs | None) -> bool:
    """Whether the user can execute ``program`` (a file whose folders it must traverse, after
    following symbolic links: a venv's python points at the interpreter it was made from)."""
    if run_as is None:
        return os.access(program, os.X_OK)
    real = program.resolve()
    return real.is_file() and _blocker(real, run_as) is None


def reachable(folder: Path, run_as: RunAs | None) -> bool:
    return run_as is None or _blocker(folder.resolve(), run_as) is None


def check_reachable(path: Path, run_as: RunAs | None) -> None:
    """Refuse a folder the app user cannot traverse to, naming the folder and the fix."""
    if run_as is None:
        return
    blocked = _blocker(path, run_as)
    if blocked is not None:
        folder, mode = blocked
        raise ComponentError(
            f"Applications run as the unprivileged user {run_as.name!r}, which cannot reach "
            f"{path}: {folder} is mode {mode:04o}. Use a "
            "BEANPOLE_HOME under /var/lib or /srv (root's default is /var/lib/beanpole), "
            f"or let others traverse it: chmod o+x {folder}"
        )
