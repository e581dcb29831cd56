"""Start one Procfile process for supervisord.

Run as ``python -m beanpole.adapters.runtime.launch <spec> <name>``.

supervisord's own ``environment=`` and ``command=`` values go through its %-expansion and
quoting rules, which mangle arbitrary app settings. Instead the adapter writes the instance's
environment, working directory and commands to a JSON file, and supervisord runs this launcher,
which reads it and replaces itself with ``/bin/sh -c "exec <command>"`` (plain
``/bin/sh -c <command>`` for a compound command, see `shell_line`). The shell expands
``$PORT`` and friends, and ``exec`` makes the app itself the process supervisord watches and
signals. When the spec names a user (``run_as``: Beanpole runs as root), the launcher drops
to it right before ``execve``: the application never runs as root. Only the standard
library's lightest modules are imported: this runs on every (re)start of every process.

An instance with a network of its own (``"netns"`` in the spec: ``/run/netns/NAME``) is
entered first, while the launcher is still root (`enter_netns`: ``setns``, which Python
3.11's ``os`` lacks, through ctypes, imported only then).
"""

import json
import os
import re
import sys

_ASSIGNMENT = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*=")

_COMPOUND = (";", "&&", "||", "|", "&", "\n", "(", "`")


def shell_line(command: str) -> str:
    """``exec`` a simple command so the app is the process supervisord signals; leave a
    compound one (``cd app && gunicorn …``) to the shell, which the process group still
    covers when it is stopped."""
    if any(token in command for token in _COMPOUND):
        return command
    if _ASSIGNMENT.match(command):
        # `exec X=1 cmd` is not valid sh; `env` sets X and then becomes cmd (same pid).
        return "exec env " + command
    return "exec " + command


def enter_netns(path: str) -> None:
    """Move this process into the network namespace bound at ``path`` (needs root)."""
    import ctypes  # only namespaced instances pay for it

    clone_newnet = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, clone_newnet) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` for good: no supplementary groups, no way back to root, and no
    way up through a set-uid file or file capabilities either (the kernel's ``no_new_privs``,
    as `appuser.no_new_privileges` sets for commands and hooks)."""
    import ctypes  # only instances with a user of their own pay for it

    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:  # pragma: no cover (the kernel guarantees it)
        raise OSError(f"could not drop to uid {uid}")
    pr_set_no_new_privs = 38
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(errno)}")


def main(argv: list[str]) -> int:
    """Exec the named process; return an exit status only when that is impossible."""
    if len(argv) != 3:
        sys.stderr.write(
            "usage: python -m beanpole.adapters.runtime.launch <spec.json> <process-name>\n"
        )
        return 2
    spec_path, name = argv[1], argv[2]
    try:
        with open(spec_path, encoding="utf-8") as f:
            spec = json.load(f)
        command = spec["processes"][name]
        env = {str(k): str(v) for k, v in spec["env"].items()}
        if name in (spec.get("ports") or {}):  # a listener rule's process: its own port
            env["PORT"] = str(int(spec["ports"][name]))
        os.chdir(spec["cwd"])
        if spec.get("netns"):
            enter_netns(spec["netns"])
        run_as = spec.get("run_as")
        if run_as is not None:
            drop_privileges(int(run_as["uid"]), int(run_as["gid"]))
            os.umask(0o027)  # its files are not everyone's (`appuser.APP_UMASK`)
        # Running the app's own Procfile command through a shell is the point of this module.
        os.execve("/bin/sh", ["/bin/sh", "-c", shell_line(command)], env)  # noqa: S606
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # This lands in the process's stderr log, where the operator will look.
        sys.stderr.write(f"beanpole launch: cannot start {name!r} from {spec_path}: {exc!r}\n")
        return 127
    return 127  # unreachable: execve does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv))
