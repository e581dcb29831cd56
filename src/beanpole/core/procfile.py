"""Procfile and Buildfile parsing, in Elastic Beanstalk's syntax.

Both files are lists of ``name: command`` lines. EB's ``Procfile`` names the long-running
processes (``web`` gets the traffic) and ``Buildfile`` names the build steps; apps move
between EB and Beanpole unchanged, so the syntax is EB's and mistakes are refused with the
line number rather than guessed at.
"""

from __future__ import annotations

import re

from beanpole.core.errors import BundleError

_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+):\s*(?P<command>\S.*)$")
_EXPECTED = (
    "Write each entry on its own line as `name: command` (e.g. `web: gunicorn app:app`), "
    "with a name made of letters, digits, '_' and '-'; lines starting with '#' are comments."
)


def parse_procfile(text: str, *, source: str = "Procfile") -> dict[str, str]:
    """Return ``{name: command}`` in file order. ``source`` names the file in errors."""
    processes: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise BundleError(f"{source} line {number} is not understood: {line!r}. {_EXPECTED}")
        name, command = match["name"], match["command"].strip()
        if name in processes:
            raise BundleError(
                f"{source} line {number} defines {name!r} again (first on line "
                f"{first_seen[name]}). Give each entry a unique name, or merge the two."
            )
        processes[name] = command
        first_seen[name] = number
    return processes


def parse_buildfile(text: str) -> dict[str, str]:
    """Buildfile shares the Procfile syntax; only the name in error messages differs."""
    return parse_procfile(text, source="Buildfile")
