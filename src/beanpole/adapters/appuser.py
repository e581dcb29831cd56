"""The unprivileged users applications run as: their commands, hooks and processes.

Elastic Beanstalk runs an application as ``webapp``, never as root. When Beanpole runs as
root it goes further: each application gets a user of its own, ``bp-<its id>`` (`user_name`),
created on first need with a uid from Beanpole's own range (`UID_RANGE`), never given twice
(`UID_MARK`), and a comment that names the application and Beanpole's home (so an operator,
or a test harness, finds the users of one home; another home's user is refused). Its
builds, hooks and instances run as that user, which owns its staged app; another
application's user cannot read its files, logs or environment (``/proc/<pid>/environ`` is
its owner's alone), nor Beanpole's home; nothing it runs gains privileges
(`no_new_privileges`). Deleting the application removes its user.

``$BEANPOLE_APP_USER`` opts out: every application then runs as that one named user (created
if missing). When Beanpole is not root there is nobody to drop to: applications run as
Beanpole's own user.

The users must be able to reach the staged folders under ``BEANPOLE_HOME``: every folder above
them must let others traverse (``o+x``). `check_reachable` says which one does not, and how to
fix it, before anything is deployed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import grp
import hashlib
import logging
import os
import pwd
import shutil
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from beanpole.core.errors import ComponentError
from beanpole.core.ids import APPLICATION_PREFIX
from beanpole.core.model import Application
from beanpole.core.runtime import RunAs

log = logging.getLogger(__name__)

APP_USER_ENV = "BEANPOLE_APP_USER"
USER_PREFIX = "bp-"
COMMENT_PREFIX = "beanpole app "
# Beanpole's own uids, far above the distribution's (login.defs: system below 1000, people up
# to 60000) and below the 2^31 where some tools misbehave; each is given once (`UID_MARK`).
UID_RANGE = range(2_000_000, 3_000_000)
_CREATE_TRIES = 5  # another process (another Beanpole home) may take the uid chosen meanwhile


def application_key(app: Application) -> str:
    """What names an application's user and folders: its id (an application from before ids
    were minted has none: a stable hash of its name, in the same form)."""
    if app.id:
        return app.id
    return APPLICATION_PREFIX + hashlib.sha256(app.name.encode()).hexdigest()[:10]


def user_name(app: Application) -> str:
    """``bp-`` and the application's id without its ``a-``: 13 characters, a valid login."""
    return USER_PREFIX + application_key(app).removeprefix(APPLICATION_PREFIX)


def comment(app_name: str, home: Path) -> str:
    """The user's comment (GECOS): the application and Beanpole's home (no ``:``, which
    separates the fields of /etc/passwd)."""
    return f"{COMMENT_PREFIX}{app_name} {_home_text(home)}".replace(":", "_").replace("\n", " ")


def _home_text(home: Path) -> str:
    return str(home).replace(":", "_").replace("\n", " ")


def _of_home(entry: pwd.struct_passwd, home: str) -> bool:
    """Whether a user Beanpole made belongs to the home whose text is ``home``."""
    return entry.pw_gecos.endswith(" " + home)


class AppUsers:
    """The user each application runs as (None: Beanpole is not root, apps run as it)."""

    def __init__(self, home: Path, *, enabled: bool | None = None) -> None:
        self.home = home
        self.enabled = os.geteuid() == 0 if enabled is None else enabled
        self.shared = os.environ.get(APP_USER_ENV, "")  # the operator's one user for all
        self._known: dict[str, RunAs] = {}
        self._lock = threading.Lock()  # builds ask from worker threads

    def of(self, app: Application) -> RunAs | None:
        """The application's user, created on first need (blocking: ``useradd``)."""
        if not self.enabled:
            return None
        name = self.shared or user_name(app)
        with self._lock:
            known = self._known.get(name)
            if known is None:
                owner = None if self.shared else _home_text(self.home)
                known = self._known[name] = _ensure(name, comment(app.name, self.home), owner)
        return known

    @property
    def per_application(self) -> bool:
        """Each application runs as a user of its own (Beanpole is root, no shared user)."""
        return self.enabled and not self.shared

    def own_name(self, app: Application) -> str | None:
        """The name of the application's own user when each application has one (None: one
        shared user, or Beanpole is not root); creates nothing, unlike `of`."""
        return user_name(app) if self.per_application else None

    def traverser(self) -> RunAs | None:
        """Whom `check_reachable` checks the home for: the shared user, or (one user per
        application) any user that is neither the owner nor in the group of the home's
        folders, as every application's user is."""
        if not self.enabled:
            return None
        if self.shared:
            return self.of(Application(self.shared, 0.0))
        return RunAs(f"{USER_PREFIX}<application>", -1, -1)

    def remove(self, app: Application) -> None:
        """Remove the application's user (its files first: the caller's), best effort: a
        user Beanpole did not create, or the shared one, is left alone; a failure is logged."""
        if not self.enabled or self.shared:
            return
        name = user_name(app)
        with self._lock:
            self._known.pop(name, None)
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                return
            if not entry.pw_gecos.startswith(COMMENT_PREFIX):
                log.warning("user %s was not made by Beanpole: left in place", name)
                return
            if not _of_home(entry, _home_text(self.home)):
                log.warning("user %s belongs to another Beanpole home: left in place", name)
                return
            userdel = shutil.which("userdel") or "/usr/sbin/userdel"
            try:
                result = subprocess.run(
                    [userdel, name], capture_output=True, text=True, check=False, timeout=60
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.warning("could not remove user %s of application %s: %s", name, app.name, exc)
                return
            if result.returncode != 0:
                log.warning(
                    "could not remove user %s of application %s (userdel exited %d: %s); "
                    "remove it with: userdel %s",
                    name,
                    app.name,
                    result.returncode,
                    result.stderr.strip(),
                    name,
                )


def _ensure(name: str, gecos: str, home: str | None) -> RunAs:
    """The user ``name``, created when missing. ``home``: the text of the Beanpole home the
    user must belong to (a user of one application of one home), or None (the operator's
    shared user)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create(name, gecos)
    if home is not None and not entry.pw_gecos.startswith(COMMENT_PREFIX):
        raise ComponentError(
            f"A user named {name!r} exists that Beanpole did not make (its comment is "
            f"{entry.pw_gecos!r}): an application's user must be Beanpole's own. Rename or "
            f"remove that user, or set {APP_USER_ENV} to run every application as one user."
        )
    if home is not None and not _of_home(entry, home):
        raise ComponentError(
            f"The application user {name!r} already exists for another Beanpole home "
            f"({entry.pw_gecos!r}); two homes never share an application's user. Remove the "
            f"other home's application, or its user if that home is gone (userdel {name})."
        )
    if entry.pw_uid == 0:
        raise ComponentError(
            f"The application user {name!r} is root. Applications never run as root: set "
            f"{APP_USER_ENV} to an unprivileged user, or unset it (each application then "
            "runs as a user of its own)."
        )
    return RunAs(name, entry.pw_uid, entry.pw_gid)


#: The highest uid Beanpole has given an application's user on this host, across homes.
#: Never given twice: a deleted application's leftovers (files in /tmp, instance folders
#: kept for their logs) must not become a new application's.
UID_MARK = Path("/var/lib/misc/beanpole-uid-mark")


@contextlib.contextmanager
def _uid_mark() -> Iterator[tuple[int, Callable[[int], None]]]:
    """The mark (the range's start - 1 if none), and how to raise it, under a lock that
    every Beanpole process of this host takes to create a user."""
    UID_MARK.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(UID_MARK, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        text = f.read().strip()
        # unreadable: the range's start (`_next_uid` still goes above every uid in use)
        mark = int(text) if text.isascii() and text.isdigit() else UID_RANGE.start - 1

        def save(uid: int) -> None:
            f.seek(0)
            f.truncate()
            f.write(f"{uid}\n")
            f.flush()
            os.fsync(f.fileno())

        yield mark, save


def _next_uid(mark: int) -> int:
    """The first uid of Beanpole's range above ``mark`` and above every uid (and gid) of
    the range already taken: a uid is never reused while the range lasts."""
    taken = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    start = max([mark, *(t for t in taken if t in UID_RANGE)]) + 1
    for uid in range(max(start, UID_RANGE.start), UID_RANGE.stop):
        if uid not in taken:
            return uid
    raise ComponentError(
        f"Every uid of Beanpole's range ({UID_RANGE.start}-{UID_RANGE.stop - 1}) has been "
        "given once, and uids are never given twice (a deleted application's leftover files "
        f"would become a new one's). Once no file belongs to a uid of the range, remove "
        f"{UID_MARK} to start again; or set {APP_USER_ENV} to run every application as one user."
    )


def _create(name: str, gecos: str) -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    error = ""
    for _ in range(_CREATE_TRIES):
        with _uid_mark() as (mark, save):
            uid = _next_uid(mark)
            save(uid)  # first: a uid given out and then failed is not given again either
            result = subprocess.run(
                [
                    useradd,
                    "--uid",
                    str(uid),
                    "--user-group",
                    # its group's gid: the uid (free as a gid too), not one of the people's
                    "--key",
                    f"GID_MIN={uid}",
                    "--key",
                    f"GID_MAX={UID_RANGE.stop - 1}",
                    "--no-create-home",
                    "--no-log-init",  # lastlog is indexed by uid: a huge sparse file otherwise
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--comment",
                    gecos,
                    # no subordinate ids: nothing nests containers as an application's user
                    "--key",
                    "SUB_UID_COUNT=0",
                    "--key",
                    "SUB_GID_COUNT=0",
                    name,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        try:
            return pwd.getpwnam(name)  # made, or made by another process meanwhile
        except KeyError:
            error = result.stderr.strip()  # the uid was taken meanwhile: try the next
    raise ComponentError(
        f"Could not create the application user {name!r} ({error}). Create it "
        f"(useradd --user-group {name}) or name an existing unprivileged user for every "
        f"application in {APP_USER_ENV}."
    )


#: What an application's processes create is its own and its group's, never everyone's
#: (/tmp is shared by every application on the host).
APP_UMASK = 0o027


_PR_SET_NO_NEW_PRIVS = 38
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl  # looked up once: the child of a fork only calls it


def no_new_privileges() -> None:
    """Make this process, and whatever it executes, unable to gain privileges: set-user-id
    and set-group-id bits and file capabilities are ignored by ``execve`` (the kernel's
    ``no_new_privs``). An application's process runs as an unprivileged user, but what it
    may execute includes files another party planted where it can reach them: a set-uid-root
    copy of a shell that root in one of its containers wrote into a bind-mounted folder."""
    if _prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(errno)}")


def subprocess_kwargs(run_as: RunAs | None) -> dict[str, Any]:
    """Arguments that make `subprocess`/`asyncio.create_subprocess_exec` run as ``run_as``,
    unable to gain privileges again (`no_new_privileges`, in the child before it executes:
    a preexec function that touches no lock and imports nothing)."""
    if run_as is None:
        return {}
    return {
        "user": run_as.uid,
        "group": run_as.gid,
        "extra_groups": [],
        "umask": APP_UMASK,
        "preexec_fn": no_new_privileges,
    }


def hand_over(path: Path, run_as: RunAs | None) -> None:
    """Make ``path`` and everything under it the app user's (symbolic links themselves,
    never what they point to).

    The app user's processes may be running (other instances of the application) and may
    write into a folder as soon as it is theirs, swapping a subfolder for a link to
    elsewhere: so the walk goes by folder descriptors and never follows a link (`os.fwalk`,
    ``fchownat`` without following), bottom-up, each folder handed over after what it
    holds and ``path`` itself last."""
    if run_as is None:
        return
    uid, gid = run_as.uid, run_as.gid
    if path.is_symlink():
        os.chown(path, uid, gid, follow_symlinks=False)
        return
    for _, dirs, files, folder in os.fwalk(path, topdown=False, follow_symlinks=False):
        for name in (*dirs, *files):
            os.chown(name, uid, gid, dir_fd=folder, follow_symlinks=False)
    os.chown(path, uid, gid, follow_symlinks=False)


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
            f"Applications run as the unprivileged user {run_as.name}, which cannot reach "
            f"{path}: {folder} is mode {mode:04o}. Use a "
            "BEANPOLE_HOME under /var/lib or /srv (root's default is /var/lib/beanpole), "
            f"or let others traverse it: chmod o+x {folder}"
        )
