"""A bundle's ``.platform/nginx`` configuration, translated for HAProxy (pure).

Elastic Beanstalk's proxy is nginx, and bundles extend it with ``.platform/nginx/nginx.conf``
(which replaces EB's whole file) and ``.platform/nginx/conf.d/*.conf`` (and
``conf.d/elasticbeanstalk/*.conf``, included in its ``http`` and ``server`` blocks). Beanpole's
proxy is HAProxy, so what has a counterpart becomes an option setting of the version:

- ``client_max_body_size 10m`` -> ``beanpole:proxy:ClientMaxBodySize`` (bytes; ``0`` = none),
- ``gzip on`` with ``gzip_types`` -> ``beanpole:proxy:GzipTypes`` (``text/html`` always, as
  nginx does; ``gzip off`` leaves it empty),

and every other directive is named, with its file and line, in one warning: nothing is
dropped silently. A directive inside a ``location`` block applies to that location only in
nginx; Beanpole has no per-location setting, so it is named as ignored too. A file that
cannot be read or parsed is a warning of its own, and the others still apply.

The caller reads the files (`beanpole.adapters.bundles.read_files`); the limits below bound
what a hostile file can make the parser build.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from beanpole.core.errors import InvalidInput
from beanpole.core.settings import validate

FOLDER = ".platform/nginx"
#: (folder, suffix) pairs EB reads, in its order: the main file, then the includes.
SOURCES = (
    (FOLDER, "nginx.conf"),
    (f"{FOLDER}/conf.d", ".conf"),
    (f"{FOLDER}/conf.d/elasticbeanstalk", ".conf"),
)
MAX_FILES = 32
MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 16
MAX_SHOWN = 20  # ignored directive names in the warning; the rest are counted

BODY_SIZE_KEY = "beanpole:proxy:ClientMaxBodySize"
GZIP_KEY = "beanpole:proxy:GzipTypes"
_SIZE = re.compile(r"(\d+)([kKmMgG]?)")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Block directives whose contents apply to the whole site (EB includes conf.d inside http).
_CONTAINERS = frozenset({"http", "server"})
_TRANSLATED = frozenset({"client_max_body_size", "gzip", "gzip_types"})


class NginxSyntaxError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    line: int
    block: tuple[Directive, ...] | None = None  # None: a simple directive ending with ';'


@dataclass(frozen=True)
class NginxFile:
    path: str  # ".platform/nginx/conf.d/x.conf"
    data: bytes | None
    problem: str = ""  # why data is None


@dataclass(frozen=True)
class Translation:
    """Option settings for the version's layer, and the warnings about what was not used."""

    settings: dict[str, str]
    warnings: tuple[str, ...] = ()


def tokenize(text: str) -> list[tuple[str, int, bool]]:  # noqa: PLR0912 (a lexer's cases)
    """Words with their line and whether they were quoted; ``{``, ``}``, ``;`` are words."""
    tokens: list[tuple[str, int, bool]] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            tokens.append((c, line, False))
            i += 1
        elif c in "\"'":
            start_line, word = line, []
            i += 1
            while True:
                if i >= n:
                    raise NginxSyntaxError(start_line, f"the quote {c} is never closed")
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    word.append(text[i + 1])
                    line += text[i + 1] == "\n"
                    i += 2
                    continue
                if ch == c:
                    i += 1
                    break
                line += ch == "\n"
                word.append(ch)
                i += 1
            tokens.append(("".join(word), start_line, True))
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in "{};\"'":
                i += 2 if text[i] == "\\" else 1
            tokens.append((text[start:i], line, False))
    return tokens


def parse(text: str) -> tuple[Directive, ...]:
    """The directives of one file, blocks nested; NginxSyntaxError says the line and why."""
    tokens = tokenize(text)
    pos = 0

    def block(depth: int, opened_at: int | None) -> tuple[Directive, ...]:
        nonlocal pos
        if depth > MAX_DEPTH:
            raise NginxSyntaxError(opened_at or 1, f"blocks nest more than {MAX_DEPTH} deep")
        out: list[Directive] = []
        while pos < len(tokens):
            word, line, quoted = tokens[pos]
            if word == "}" and not quoted:
                if opened_at is None:
                    raise NginxSyntaxError(line, "'}' closes no block")
                pos += 1
                return tuple(out)
            if word in ("{", ";") and not quoted:
                raise NginxSyntaxError(line, f"unexpected '{word}' where a directive name goes")
            name, name_line = word, line
            pos += 1
            args: list[str] = []
            while True:
                if pos >= len(tokens):
                    raise NginxSyntaxError(name_line, f"'{name}' does not end with ';'")
                word, line, quoted = tokens[pos]
                pos += 1
                if quoted or word not in ("{", "}", ";"):
                    args.append(word)
                elif word == ";":
                    out.append(Directive(name, tuple(args), name_line))
                    break
                elif word == "{":
                    out.append(Directive(name, tuple(args), name_line, block(depth + 1, line)))
                    break
                else:
                    raise NginxSyntaxError(line, f"'{name}' ends with '}}' instead of ';'")
        if opened_at is not None:
            raise NginxSyntaxError(opened_at, "a block opened here is never closed with '}'")
        return tuple(out)

    return block(0, None)


def parse_size(value: str) -> int | None:
    """nginx's size syntax (``1024``, ``8k``, ``10M``, ``1g``) in bytes, or None."""
    m = _SIZE.fullmatch(value)
    if m is None:
        return None
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


@dataclass
class _State:
    body_size: int | None = None
    gzip: bool | None = None
    gzip_types: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)  # name -> first place
    problems: list[str] = field(default_factory=list)

    def ignore(self, directive: Directive, where: str, why: str = "") -> None:
        self.ignored.setdefault(directive.name, f"{where} line {directive.line}{why}")


def translate(files: Iterable[NginxFile]) -> Translation:
    """The files in EB's order (nginx.conf, conf.d, conf.d/elasticbeanstalk); later wins."""
    state = _State()
    warnings: list[str] = []
    for file in files:
        where = file.path.removeprefix(FOLDER + "/")
        if file.data is None:
            warnings.append(f"{file.path} is ignored: {file.problem}")
            continue
        try:
            directives = parse(file.data.decode("utf-8"))
        except UnicodeDecodeError:
            warnings.append(f"{file.path} is ignored: it is not UTF-8 text.")
            continue
        except NginxSyntaxError as exc:
            warnings.append(
                f"{file.path} is ignored: {exc} (nginx would refuse it too). Fix its syntax."
            )
            continue
        _walk(directives, where, state, in_block=False)
    settings: dict[str, str] = {}
    if state.body_size is not None:
        settings[BODY_SIZE_KEY] = str(state.body_size)
    if state.gzip is not None:
        types = ["text/html", *state.gzip_types] if state.gzip else []
        settings[GZIP_KEY] = " ".join(dict.fromkeys(t.lower() for t in types))
    for key in list(settings):
        try:
            settings.update(validate({key: settings[key]}))
        except InvalidInput as exc:
            state.problems.append(f"{FOLDER}: {exc.message} It is ignored.")
            del settings[key]
    warnings.extend(state.problems)
    if state.ignored:
        shown = [f"{name} ({place})" for name, place in list(state.ignored.items())[:MAX_SHOWN]]
        more = len(state.ignored) - len(shown)
        warnings.append(
            f"{FOLDER}: ignored: {', '.join(shown)}"
            + (f" and {more} more directive name(s)" if more > 0 else "")
            + ". Beanpole's proxy is HAProxy: it applies client_max_body_size and gzip "
            "(with gzip_types) outside location blocks, and serves static files from "
            "aws:elasticbeanstalk:environment:proxy:staticfiles."
        )
    return Translation(settings, tuple(warnings))


def _walk(directives: tuple[Directive, ...], where: str, state: _State, *, in_block: bool) -> None:
    for d in directives:
        if d.block is not None:
            if d.name in _CONTAINERS and not in_block:
                _walk(d.block, where, state, in_block=False)
                if d.name != "http":
                    state.ignore(d, where)  # its listen, server_name ... are HAProxy's
                continue
            state.ignore(d, where)
            _walk(d.block, where, state, in_block=True)
            continue
        if in_block and d.name in _TRANSLATED:
            state.ignore(d, where, ", in a block: only site-wide ones apply")
            continue
        place = f"{FOLDER}/{where} line {d.line}"
        if d.name == "client_max_body_size":
            size = parse_size(d.args[0]) if len(d.args) == 1 else None
            if size is None:
                state.problems.append(
                    f"{place}: client_max_body_size {' '.join(d.args)!r} is not a size; "
                    "write it as nginx does (1024, 8k, 10m, 1g). It is ignored."
                )
                continue
            state.body_size = size
        elif d.name == "gzip":
            if d.args not in (("on",), ("off",)):
                state.problems.append(
                    f"{place}: gzip takes on or off, not {' '.join(d.args)!r}. It is ignored."
                )
                continue
            state.gzip = d.args[0] == "on"
        elif d.name == "gzip_types":
            if "*" in d.args:
                state.ignore(d, where, ", '*': list the types instead")
                continue
            state.gzip_types.extend(a for a in d.args if a.lower() != "text/html")
        else:
            state.ignore(d, where)
