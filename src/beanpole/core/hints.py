"""Why instances failed to start, said once per cause, with the fix for causes we know (pure).

The fleet gathers one `StartFailure` per instance (how its process ended, or its probe's
verdict, and the last lines it wrote, stdout and stderr in the order written) and what the
hints may cite about the application (`AppFacts`: the ``wsgi.py`` and ``requirements.txt``
files in the bundle, the WSGI module Beanpole's default command imports). `describe` turns
them into the one message the operation fails with and its event shows:

    Instances i-1, i-2 of version v3 failed: web exited with status 3: "ModuleNotFoundError:
    No module named 'application'". Beanpole runs gunicorn on the WSGIPath setting …
    Last output of i-1: … | …

Known causes (the table `CAUSES`, first match wins):

- a Python module that is not found: the WSGI module (→ ``WSGIPath`` and the ready-to-paste
  value for each ``wsgi.py`` found), or a dependency (→ ``requirements.txt``);
- gunicorn's ``Failed to find attribute`` (→ ``WSGIPath``'s ``module:callable`` form);
- an address already in use (``EADDRINUSE``, ``Address already in use``, gunicorn's
  ``Connection in use``): the port the app tried against the ``PORT`` it was given;
- a command that is not found (exit 127): the command, and for Python servers (gunicorn …)
  the ``requirements.txt`` that was, or was not, at the bundle's root.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PYTHON_NAMESPACE = "aws:elasticbeanstalk:container:python"
OUTPUT_SHOWN = 10  # lines of output a message quotes per cause
PYTHON_SERVERS = frozenset(
    {"gunicorn", "uvicorn", "daphne", "hypercorn", "waitress-serve", "flask", "celery", "uwsgi"}
)
NODE_TOOLS = frozenset({"node", "npm", "npx", "yarn", "pnpm"})


@dataclass(frozen=True)
class AppFacts:
    """What a hint may cite about the application (found in its folder by the caller)."""

    platform: str = ""  # "python", "nodejs", "procfile", "static"
    wsgi_module: str | None = None  # the module Beanpole's default command imports (no Procfile)
    wsgi_files: tuple[str, ...] = ()  # every wsgi.py, relative to the app, shallowest first
    requirements: tuple[str, ...] = ()  # every requirements.txt, relative, shallowest first


@dataclass(frozen=True)
class StartFailure:
    """One instance that did not start."""

    instance_id: str
    reason: str  # in words: "web exited with status 3", "GET / answered 404 … 5 times …"
    output: tuple[str, ...] = ()  # its last lines, oldest first (stdout and stderr as written)
    port: int = 0  # the PORT it was given


@dataclass(frozen=True)
class Cause:
    """A known cause: its kind, what the output named (a module, a command, a port) and the
    line that said so."""

    kind: str
    detail: str
    line: str


# (kind, pattern over one output line; its first non-empty group is the detail)
CAUSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("attribute", re.compile(r"Failed to find attribute '(?P<detail>[^']+)' in '[^']+'")),
    ("module", re.compile(r"No module named '(?P<detail>[^']+)'")),
    (
        "port",
        re.compile(
            r"EADDRINUSE\S*(?: address already in use)? (?:\S*:)?(?P<detail>\d+)"
            r"|Connection in use: \(?'?[^,']*'?,\s*(?P<detail2>\d+)"
            r"|(?P<detail3>)Address already in use"
        ),
    ),
    ("command", re.compile(r"(?:^|: )(?:exec: )?(?P<detail>[^\s:]+): (?:command )?not found\s*$")),
)


def classify(failure: StartFailure) -> Cause | None:
    """The known cause this failure's output shows: of the earliest kind in `CAUSES` that
    matches, the last line that names its detail (a port, a module), else its last line."""
    lines = [line.strip() for line in failure.output if line.strip()]
    for kind, pattern in CAUSES:
        found = []
        for line in reversed(lines):
            match = pattern.search(line)
            if match is not None:
                found.append(Cause(kind, next((g for g in match.groups() if g), ""), line))
        if found:
            return next((c for c in found if c.detail), found[0])
    return None


def _wsgi_target(path: str) -> str:
    """``myvoting/wsgi.py`` → ``myvoting.wsgi:application`` (WSGIPath's ready-to-paste value)."""
    return path.removesuffix(".py").replace("/", ".") + ":application"


def _wsgi_choices(facts: AppFacts) -> str:
    if not facts.wsgi_files:
        return (
            f"set {PYTHON_NAMESPACE} WSGIPath to the module that defines your WSGI callable "
            "(for example app:app for an app.py that defines app)"
        )
    choices = [f"{_wsgi_target(p)} (for {p})" for p in facts.wsgi_files[:5]]
    return f"set {PYTHON_NAMESPACE} WSGIPath to " + " or ".join(choices)


def _module_hint(cause: Cause, facts: AppFacts) -> str:
    module = cause.detail
    wsgi = facts.wsgi_module
    if wsgi is not None and (wsgi == module or wsgi.startswith(module + ".")):
        return (
            f"Beanpole runs gunicorn on the WSGIPath setting, which names module {wsgi!r}, "
            f"and the app has no such module: {_wsgi_choices(facts)}."
        )
    if wsgi is None and facts.wsgi_files and module.split(".")[-1] in ("wsgi", "application"):
        return (
            f"The web command imports {module!r}, which the app does not have; its WSGI "
            f"modules are: {', '.join(_wsgi_target(p) for p in facts.wsgi_files[:5])}."
        )
    top = module.split(".")[0]
    where = (
        "requirements.txt"
        if "requirements.txt" in facts.requirements
        else "a requirements.txt at the bundle's root"
    )
    return (
        f"The app imports {top!r}, which is not installed: add the package that provides it "
        f"to {where}."
    )


def _attribute_hint(cause: Cause, facts: AppFacts) -> str:
    return (
        f"The WSGI module has no {cause.detail!r}: name the callable after a colon in "
        f"{PYTHON_NAMESPACE} WSGIPath (for example app:app, or mysite.wsgi:application), or "
        "in the Procfile's gunicorn command."
    )


def _port_hint(cause: Cause, facts: AppFacts, ports: Sequence[int]) -> str:
    listen = {"nodejs": "process.env.PORT", "python": "$PORT (os.environ['PORT'])"}.get(
        facts.platform, "$PORT"
    )
    given = " and ".join(str(p) for p in ports if p) or "another port"
    if cause.detail and ports and all(str(p) == cause.detail for p in ports):
        return (
            f"PORT {cause.detail} is held by another program on this host (not one of "
            "Beanpole's instances): stop it, or give Beanpole another port_range."
        )
    tried = cause.detail or "a fixed port, already taken,"
    return f"The app listens on {tried} but PORT is {given}: listen on {listen}."


def _requirements_hint(facts: AppFacts) -> str:
    nested = [p for p in facts.requirements if p != "requirements.txt"]
    if "requirements.txt" in facts.requirements:
        return (
            "requirements.txt at the bundle's root does not install it: add it there "
            "(Beanpole installs that file into the app's virtualenv)."
        )
    found = ""
    if nested:
        found = (
            f" It found {', '.join(nested[:5])}: move it to the root, or install it from an "
            f".ebextensions container_commands entry (pip install -r {nested[0]})."
        )
    return (
        "Beanpole installs Python packages from a requirements.txt at the bundle's root, and "
        "found none." + found
    )


def _command_hint(cause: Cause, facts: AppFacts) -> str:
    command = cause.detail.rsplit("/", 1)[-1]
    if command in PYTHON_SERVERS:
        return f"The web command runs {command}, which is not installed. " + _requirements_hint(
            facts
        )
    if command in NODE_TOOLS:
        return (
            f"The web command runs {command}, which is not installed on this host: install "
            "Node.js, or change the Procfile's web command."
        )
    return (
        f"The command {cause.detail!r} was not found: install it on this host or ship it in "
        "the bundle, or change the Procfile's web command."
    )


def hint(cause: Cause | None, facts: AppFacts, ports: Sequence[int] = ()) -> str:
    """The fix for a known cause; empty for an unknown one."""
    if cause is None:
        return ""
    if cause.kind == "module":
        return _module_hint(cause, facts)
    if cause.kind == "attribute":
        return _attribute_hint(cause, facts)
    if cause.kind == "port":
        return _port_hint(cause, facts, ports)
    return _command_hint(cause, facts)


def describe(failures: Sequence[StartFailure], version: str, facts: AppFacts) -> str:
    """Every failed instance, grouped by cause (said once, with the ids): the reason in
    words, the line that names the cause, the fix, then the last lines of output."""
    groups: dict[tuple[str, str, str], list[tuple[StartFailure, Cause | None]]] = {}
    for failure in failures:
        cause = classify(failure)
        # A known cause is one cause whatever words the runtime found for the exit (a crash
        # seen dead has its status, one seen only restarted has none).
        key = ("", cause.kind, cause.detail) if cause else (failure.reason, "", "")
        groups.setdefault(key, []).append((failure, cause))
    parts = []
    for members in groups.values():
        # the member whose runtime saw the exit status, when one did
        first, cause = next((m for m in members if "status" in m[0].reason), members[0])
        ids = [f.instance_id for f, _ in members]
        who = f"Instance {ids[0]}" if len(ids) == 1 else f"Instances {', '.join(ids)}"
        text = f"{who} of version {version} failed: {first.reason}"
        if cause is not None:
            text += f': "{cause.line}"'
        text += "" if text.endswith(".") else "."
        fix = hint(cause, facts, [f.port for f, _ in members])
        if fix:
            text += f" {fix}"
        shown = [line for line in first.output if line.strip()][-OUTPUT_SHOWN:]
        if shown:
            of = "" if len(ids) == 1 else f" of {first.instance_id}"
            text += f" Last output{of}: " + " | ".join(shown)
        parts.append(text)
    if len(parts) == 1:
        return parts[0]
    return f"{len(parts)} different causes: " + " ".join(
        f"({n}) {part}" for n, part in enumerate(parts, 1)
    )
