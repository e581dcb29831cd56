"""A Procfile ``web`` command that binds a fixed port, moved onto the instance's ``$PORT``.

Elastic Beanstalk runs one instance per machine behind a proxy that expects the app on a
fixed port (8000 for Python, 8080 for Node.js, 5000 otherwise), so Procfiles written for EB
say so: ``web: gunicorn --bind :8000 --workers 3 mysite.wsgi:application`` is the example in
EB's own guide. Beanpole runs several instances on one host, each on its own port in
``$PORT``; those commands would collide. For the servers whose flags are known, the literal
port is replaced by ``$PORT`` (the address is kept), and the caller reports the change.
Commands Beanpole does not recognise are left alone: an app that binds a fixed port itself
fails with "did not listen on PORT …", which names the fix.

Pure: a command in, a command and a note out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# server program -> flags that take an address (host:port, :port) or a bare port
_ADDRESS_FLAGS = {
    "gunicorn": ("--bind", "-b"),
    "hypercorn": ("--bind", "-b"),
    "uwsgi": ("--http", "--http-socket", "--socket"),
    "daphne": ("--bind", "-b", "--port", "-p"),
    "uvicorn": ("--port",),
    "waitress-serve": ("--listen", "--port"),
    "flask": ("--port", "-p"),
    "granian": ("--port",),
}
_PORT = re.compile(r"^(?P<host>.*?:)?(?P<port>\d{2,5})$")


@dataclass(frozen=True)
class PortRewrite:
    command: str
    note: str = ""  # what changed, for an event; empty when nothing did


def _program(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _server(words: list[str]) -> tuple[str, int] | None:
    """The server the command runs and the index of its first argument, if known.

    Looks through ``exec``, environment assignments and ``python -m <server>``.
    """
    i = 0
    while i < len(words) and (words[i] == "exec" or re.match(r"^\w+=", words[i])):
        i += 1
    if i >= len(words):
        return None
    program = _program(words[i])
    if program in _ADDRESS_FLAGS:
        return program, i + 1
    if re.fullmatch(r"python[0-9.]*", program) and words[i + 1 : i + 2] == ["-m"]:
        module = words[i + 2] if i + 2 < len(words) else ""
        if module in _ADDRESS_FLAGS:
            return module, i + 3
    return None


# The command runs under `sh -c`: only a plain list of words (variables allowed) is
# rewritten, so that putting it back together cannot change what the shell does with it.
_SHELL_SYNTAX = re.compile(r"""[`'"\\<>;&|()*?~#!{}\[\]]|\$(?![A-Za-z_])""")


def bind_to_port(command: str) -> PortRewrite:
    """``command`` with a fixed port of a known server replaced by ``$PORT``.

    Only for plain commands: words separated by spaces, ``$VARIABLES`` allowed; quotes,
    redirections, operators, globs and substitutions leave the command as written.
    """
    if _SHELL_SYNTAX.search(command) or "$PORT" in command:
        return PortRewrite(command)
    words = command.split()
    found = _server(words)
    if found is None:
        return PortRewrite(command)
    program, start = found
    flags = _ADDRESS_FLAGS[program]
    changed: list[tuple[str, str]] = []
    out = list(words)
    i = start
    while i < len(out):
        word = out[i]
        flag, sep, inline = word.partition("=")
        if flag in flags:
            index, value = (i, inline) if sep else (i + 1, out[i + 1] if i + 1 < len(out) else "")
            m = _PORT.match(value)
            if m is not None:
                new = f"{m['host'] or ''}$PORT"
                out[index] = f"{flag}={new}" if sep else new
                changed.append((value, new))
            i = index + 1
            continue
        i += 1
    if not changed:
        return PortRewrite(command)
    rewritten = " ".join(out)
    ports = ", ".join(sorted({v for v, _ in changed}))
    return PortRewrite(
        rewritten,
        f"The Procfile's web process binds {ports}; Beanpole gives every instance its own port "
        f"in $PORT and runs it as: {rewritten}",
    )
