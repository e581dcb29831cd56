"""What a version runs besides its processes, and when (pure).

A bundle asks for work on the host in three ways, all run by
`beanpole.adapters.lifecycle` in Elastic Beanstalk's order:

* ``.ebextensions`` ``files`` (written first), ``commands`` (after them) and
  ``container_commands``: parsed here from each config file, kept with the version;
* ``.platform/hooks/{prebuild,predeploy,postdeploy}`` (an application deployment) and
  ``.platform/confighooks/…`` (a configuration deployment): executable files found in the
  extracted app;
* the ``Buildfile`` (run by the build itself).

EB builds on every instance; Beanpole builds a version once per host, so the steps fall in
two groups (:func:`phase_plan`): the *build* of a version (files, commands, prebuild hooks,
then dependencies and the Buildfile) runs once, and each *deployment* that starts
instances of it runs ``container_commands`` and the predeploy hooks in the staged app
before the new instances start, and the postdeploy hooks once they are in service.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from beanpole.core.errors import InvalidInput

MAX_STEPS = 200  # commands (or files) per config file
# Where EB stages and runs the app; a path under one of them is a path in Beanpole's app
# folder (which is both).
APP_ROOTS = ("/var/app/staging", "/var/app/current")
# Absolute paths that belong to EB's own machinery or to nginx, which Beanpole does not run:
# a `files` entry there is skipped with a warning (`.platform/nginx` is translated instead).
SKIPPED_ROOTS = ("/etc/nginx", "/opt/elasticbeanstalk")
# EB's folders as a command names them: the app (staged or current), and the virtualenv
# EB's Python platform makes (/var/app/venv/staging-LQM1lest, written with a glob in AWS's
# tutorials: `source /var/app/venv/*/bin/activate && python manage.py migrate`).
_APP_ROOT_IN_COMMAND = re.compile(r"(?<![\w./-])/var/app/(?:staging|current)(?![\w.-])")
_VENV_IN_COMMAND = re.compile(r"(?<![\w./-])/var/app/venv/[^/\s'\";&|]+(?=/)")
_COMMAND_KEYS = frozenset({"command", "cwd", "env", "test", "ignoreErrors"})
_CONTAINER_KEYS = _COMMAND_KEYS | {"leader_only"}
_FILE_KEYS = frozenset(
    {"content", "source", "mode", "owner", "group", "encoding", "authentication"}
)


class Kind(StrEnum):
    """Which deployment runs the steps: a new version, or new settings of the same one."""

    APPLICATION = "application"
    CONFIGURATION = "configuration"


class Phase(StrEnum):
    PREBUILD = "prebuild"  # once per version, in its build
    PREDEPLOY = "predeploy"  # each deployment, before the new instances start
    POSTDEPLOY = "postdeploy"  # each deployment, once they are in service


@dataclass(frozen=True)
class FileSpec:
    """A ``files`` entry: what to write where. ``path`` is relative to the app folder when
    ``in_app``, else the absolute path on the host."""

    path: str
    content: bytes
    mode: int | None  # None: the default (0644)
    in_app: bool
    source: str  # the config file it came from


@dataclass(frozen=True)
class Command:
    """A ``commands`` or ``container_commands`` entry."""

    name: str
    command: str | tuple[str, ...]  # a shell line, or argv run without a shell
    source: str  # the config file it came from
    section: str  # "commands" | "container_commands"
    cwd: str = ""  # "" runs in the app folder; relative paths are the app folder's
    env: dict[str, str] = field(default_factory=dict)
    test: str = ""  # a shell line; the command is skipped when it exits non-zero
    ignore_errors: bool = False
    leader_only: bool = False

    @property
    def title(self) -> str:
        return f"{self.section} {self.name} ({self.source})"


@dataclass(frozen=True)
class Steps:
    """A version's ``files``, ``commands`` and ``container_commands``, in run order."""

    files: tuple[FileSpec, ...] = ()
    commands: tuple[Command, ...] = ()
    container_commands: tuple[Command, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.files or self.commands or self.container_commands)

    def to_json(self) -> str:
        return json.dumps(
            {
                "files": [
                    {
                        "path": f.path,
                        "content": base64.b64encode(f.content).decode(),
                        "mode": f.mode,
                        "in_app": f.in_app,
                        "source": f.source,
                    }
                    for f in self.files
                ],
                "commands": [_command_json(c) for c in self.commands],
                "container_commands": [_command_json(c) for c in self.container_commands],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Steps:
        data = json.loads(text or "{}")
        return cls(
            tuple(
                FileSpec(
                    f["path"],
                    base64.b64decode(f["content"]),
                    f["mode"],
                    f["in_app"],
                    f["source"],
                )
                for f in data.get("files", ())
            ),
            tuple(_command_from_json(c) for c in data.get("commands", ())),
            tuple(_command_from_json(c) for c in data.get("container_commands", ())),
        )


def _command_json(c: Command) -> dict[str, Any]:
    return {
        "name": c.name,
        "command": c.command if isinstance(c.command, str) else list(c.command),
        "source": c.source,
        "section": c.section,
        "cwd": c.cwd,
        "env": c.env,
        "test": c.test,
        "ignore_errors": c.ignore_errors,
        "leader_only": c.leader_only,
    }


def _command_from_json(d: dict[str, Any]) -> Command:
    command = d["command"]
    return Command(
        d["name"],
        command if isinstance(command, str) else tuple(command),
        d["source"],
        d["section"],
        d["cwd"],
        dict(d["env"]),
        d["test"],
        d["ignore_errors"],
        d["leader_only"],
    )


def merge(parts: list[Steps]) -> Steps:
    """The files' steps in the order of the files (each file's already in name order)."""
    return Steps(
        tuple(f for p in parts for f in p.files),
        tuple(c for p in parts for c in p.commands),
        tuple(c for p in parts for c in p.container_commands),
    )


# --- parsing one config file's sections ---------------------------------------------------


def parse_steps(document: dict[str, Any], source: str) -> tuple[Steps, list[str]]:
    """The ``files``, ``commands`` and ``container_commands`` of one parsed config file,
    and warnings (file paths Beanpole skips). Raises InvalidInput naming the entry and
    the fix when one has the wrong shape."""
    warnings: list[str] = []
    files = _files(document.get("files"), source, warnings)
    commands = _commands(document.get("commands"), source, "commands")
    container = _commands(document.get("container_commands"), source, "container_commands")
    return Steps(tuple(files), tuple(commands), tuple(container)), warnings


def _files(value: Any, source: str, warnings: list[str]) -> list[FileSpec]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise InvalidInput(
            f"files is {kind_of(value)}, not a mapping of path to {{content, mode}}. "
            'Write \'"/path/to/file": {content: ..., mode: "000644"}\' entries under it.'
        )
    if len(value) > MAX_STEPS:
        raise InvalidInput(f"files has more than {MAX_STEPS} entries. Split the file.")
    out: list[FileSpec] = []
    for raw_path, spec in value.items():
        where = f"files entry {str(raw_path)[:80]!r}"
        if not isinstance(spec, dict):
            raise InvalidInput(f"{where} is {kind_of(spec)}, not a mapping with content and mode.")
        unknown = sorted(str(k) for k in spec if k not in _FILE_KEYS)
        if unknown:
            raise InvalidInput(
                f"{where} has the key {unknown[0]!r}; a files entry takes content, mode, "
                "owner, group and encoding."
            )
        if "source" in spec:
            raise InvalidInput(
                f"{where} has source: {str(spec['source'])[:80]}: Beanpole does not download "
                "files while deploying. Put the file in the bundle, or write it with "
                "content: instead."
            )
        if "content" not in spec:
            raise InvalidInput(f"{where} has no content. Give the file's text under content:.")
        path = str(raw_path).strip()
        if path.startswith(SKIPPED_ROOTS):
            warnings.append(
                f"{source}: files entry {path} skipped: it belongs to nginx or to EB's own "
                "machinery, which Beanpole does not run (use .platform/hooks for hooks)."
            )
            continue
        relative, in_app = _app_path(path, where)
        out.append(
            FileSpec(
                relative,
                _content(spec["content"], spec.get("encoding", "plain"), where),
                _mode(spec.get("mode"), where),
                in_app,
                source,
            )
        )
    return out


def eb_command(command: str, app_dir: str, venv: str = "") -> str:
    """A command written for an EB instance, made to run here: EB's app folders are the
    app's folder, EB's virtualenv is the version's (``venv``; "" for other platforms)."""
    command = _APP_ROOT_IN_COMMAND.sub(lambda _: app_dir, command)
    if venv:
        command = _VENV_IN_COMMAND.sub(lambda _: venv, command)
    return command


def _app_path(path: str, where: str) -> tuple[str, bool]:
    """(the path relative to the app, True) or (the absolute host path, False)."""
    if not path:
        raise InvalidInput(f"{where} has an empty path. Give the file's path.")
    if "\0" in path:
        raise InvalidInput(f"{where} has a path with a NUL byte.")
    for root in APP_ROOTS:
        if path == root or path.startswith(root + "/"):
            path = path[len(root) :].lstrip("/")
            break
    if path.startswith("/"):
        normal = posixpath.normpath(path)
        if normal == "/":
            raise InvalidInput(f"{where} names the root folder. Give a file's path.")
        return normal, False
    normal = posixpath.normpath(path)
    if normal in ("", ".") or normal == ".." or normal.startswith("../"):
        raise InvalidInput(
            f"{where} points outside the application folder. Give a path inside it "
            "(relative, or under /var/app/staging/)."
        )
    return normal, True


def _content(value: Any, encoding: Any, where: str) -> bytes:
    if isinstance(value, dict | list):
        # EB writes inline YAML/JSON structures as JSON.
        text = json.dumps(value, indent=2)
    elif isinstance(value, str):
        text = value
    elif value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        raise InvalidInput(f"{where} has content that is {kind_of(value)}. Quote it.")
    if encoding in (None, "plain"):
        return text.encode()
    if encoding == "base64":
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(
                f"{where} says encoding: base64 but its content is not base64. "
                "Encode it with `base64 -w0 FILE`, or use encoding: plain."
            ) from None
    raise InvalidInput(f"{where} has encoding {encoding!r}; use plain or base64.")


def _mode(value: Any, where: str) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        mode = int(text, 8)
    except ValueError:
        raise InvalidInput(
            f"{where} has mode {text[:20]!r}, not an octal number. Write it as EB does: "
            '"000644" (quoted).'
        ) from None
    if mode < 0 or mode > 0o7777:
        raise InvalidInput(f'{where} has mode {text!r}, beyond 007777. Write e.g. "000644".')
    return mode & 0o777  # set-uid, set-gid and sticky bits are dropped


def _commands(value: Any, source: str, section: str) -> list[Command]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise InvalidInput(
            f"{section} is {kind_of(value)}, not a mapping of name to {{command: ...}}. "
            f"Write '01_name: {{command: \"...\"}}' entries under {section}:."
        )
    if len(value) > MAX_STEPS:
        raise InvalidInput(f"{section} has more than {MAX_STEPS} entries. Split the file.")
    keys = _CONTAINER_KEYS if section == "container_commands" else _COMMAND_KEYS
    out = []
    for raw_name, raw_spec in value.items():
        name = str(raw_name)
        where = f"{section} entry {name[:80]!r}"
        # a plain string is tolerated as the command itself: `01_x: "echo hi"`
        spec = {"command": raw_spec} if isinstance(raw_spec, str) else raw_spec
        if not isinstance(spec, dict):
            raise InvalidInput(f"{where} is {kind_of(spec)}, not a mapping with a command.")
        unknown = sorted(str(k) for k in spec if k not in keys)
        if unknown:
            raise InvalidInput(
                f"{where} has the key {unknown[0]!r}; it takes {', '.join(sorted(keys))}."
            )
        out.append(
            Command(
                name,
                _command(spec.get("command"), where),
                source,
                section,
                _text(spec.get("cwd"), f"the cwd of {where}"),
                _env(spec.get("env"), where),
                _text(spec.get("test"), f"the test of {where}"),
                _flag(spec.get("ignoreErrors"), f"ignoreErrors of {where}"),
                _flag(spec.get("leader_only"), f"leader_only of {where}"),
            )
        )
    return sorted(out, key=lambda c: c.name)  # EB: alphabetical order by name


def _command(value: Any, where: str) -> str | tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    if value is None:
        raise InvalidInput(f'{where} has no command. Give it as command: "...".')
    raise InvalidInput(
        f"{where} has a command that is {kind_of(value)}; give a string (run by /bin/sh) or a "
        "list of strings (run without a shell)."
    )


def _env(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"the env of {where} is {kind_of(value)}, not a mapping of NAME: value.")
    out = {}
    for key, raw in value.items():
        if isinstance(raw, dict | list):
            raise InvalidInput(f"the env variable {key} of {where} is {kind_of(raw)}; quote it.")
        out[str(key)] = "" if raw is None else _text(raw, f"the env variable {key} of {where}")
    return out


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise InvalidInput(f"{what} is {kind_of(value)}; give a string.")


def _flag(value: Any, what: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInput(f"{what} is {kind_of(value)}; write true or false.")


def kind_of(value: Any) -> str:
    """What a YAML value is, in words, without printing it (it may be huge)."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the text {value[:40]!r}" if len(value) <= 40 else "a long text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__} value"


# --- what Beanpole ignores, said once -------------------------------------------------------

_IGNORED_WHY = {
    "packages": "Beanpole does not install system packages; install them on the host",
    "groups": "Beanpole does not create system groups; apps run as the app user",
    "users": "Beanpole does not create system users; apps run as the app user",
    "sources": "Beanpole does not download archives while deploying; put the files in the bundle",
    "services": "Beanpole does not manage system services; run long-lived processes from a "
    "Procfile",
}
_AWS_WHY = "AWS resources (CloudFormation) have no counterpart on Beanpole"


def ignored_section(key: str, value: Any) -> str:
    """``packages (yum: git) ignored: Beanpole does not install…`` for one ignored key."""
    # packages and services hold names by manager (yum: {git: []}); the others, names.
    summary = _summary(value, deep=key in ("packages", "services"))
    shown = f"{key} ({summary})" if summary else key
    return f"{shown} ignored: {_IGNORED_WHY.get(key, _AWS_WHY)}"


def _summary(value: Any, *, deep: bool, limit: int = 80) -> str:
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            inner = ", ".join(str(x) for x in v) if deep and isinstance(v, dict) else ""
            parts.append(f"{k}: {inner}" if inner else str(k))
        text = "; ".join(parts)
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value if not isinstance(v, dict | list))
    else:
        text = ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- hooks and the order of the steps ----------------------------------------------------


@dataclass(frozen=True)
class Hook:
    """A file in a hooks folder: ``path`` relative to the app folder."""

    path: str
    executable: bool


def hooks_folder(kind: Kind, phase: Phase) -> str:
    """``.platform/hooks/predeploy`` or ``.platform/confighooks/predeploy``."""
    root = "hooks" if kind is Kind.APPLICATION else "confighooks"
    return f".platform/{root}/{phase}"


@dataclass(frozen=True)
class RunHook:
    hook: Hook

    @property
    def title(self) -> str:
        return f"hook {self.hook.path}"


@dataclass(frozen=True)
class RunCommand:
    command: Command

    @property
    def title(self) -> str:
        return self.command.title


@dataclass(frozen=True)
class WriteFile:
    file: FileSpec

    @property
    def title(self) -> str:
        where = self.file.path if not self.file.in_app else f"{self.file.path} (in the app)"
        return f"files {where} ({self.file.source})"


Step = RunHook | RunCommand | WriteFile


def phase_plan(
    phase: Phase, kind: Kind, steps: Steps, hooks: list[Hook]
) -> tuple[list[Step], list[str]]:
    """The steps of one phase, in EB's order, and a warning per non-executable hook.

    ``hooks`` are the files of that phase's hooks folder (`hooks_folder`), any order: they
    run in lexical order of their names, as on EB.

    * prebuild (the build of a version, application kind only): files, commands, hooks;
    * predeploy (each deployment): container_commands, then hooks;
    * postdeploy: hooks.
    """
    out: list[Step] = []
    if phase is Phase.PREBUILD and kind is Kind.APPLICATION:
        out += [WriteFile(f) for f in steps.files]
        out += [RunCommand(c) for c in steps.commands]
    if phase is Phase.PREDEPLOY:
        out += [RunCommand(c) for c in steps.container_commands]
    warnings = []
    for hook in sorted(hooks, key=lambda h: h.path):
        if hook.executable:
            out.append(RunHook(hook))
        else:
            warnings.append(
                f"Hook {hook.path} is not executable and was skipped, as on Elastic "
                f"Beanstalk. Make it executable (chmod +x {hook.path}, then zip again)."
            )
    return out, warnings
