"""A bundle's ``.platform/nginx`` configuration, translated for HAProxy (pure).

On Elastic Beanstalk, ``.platform/nginx/nginx.conf`` replaces the proxy's whole configuration
and ``.platform/nginx/conf.d/*.conf`` (``http`` context) and
``conf.d/elasticbeanstalk/*.conf`` (the ``server`` context) extend it. Beanpole's proxy is
HAProxy, so only what has a counterpart is translated:

- ``client_max_body_size SIZE``: a request whose ``Content-Length`` is larger gets 413 from
  HAProxy (0 means no limit, as in nginx);
- ``gzip on`` with ``gzip_types``: HAProxy compresses those types (``text/html`` always, as
  nginx does) for the environment.

Every other directive is named in a warning, never silently dropped. The parser follows
nginx's lexer: ``#`` comments, single and double quotes with backslash escapes, blocks in
braces, directives ended by ``;``. A file that does not parse is a warning that names the
file, the line and the reason; the rest of the bundle still applies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

FOLDER = ".platform/nginx"
MAX_FILES = 64
MAX_FILE_BYTES = 256 * 1024
MAX_NAMED = 20  # ignored directives named in the warning, then "and N more"
#: nginx compresses text/html whatever gzip_types says.
ALWAYS_COMPRESSED = "text/html"

# Blocks whose directives apply to the whole server: their contents are read, the block
# itself needs no counterpart.
_CONTAINERS = frozenset({"http", "server"})
_SIZE = re.compile(r"(\d+)([kKmMgG]?)")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_MIME = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+*-]+|\*")


class NginxSyntaxError(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    line: int
    block: tuple[Directive, ...] | None = None  # None: a simple directive ended by ';'


@dataclass(frozen=True)
class ProxyConfig:
    """What a version's ``.platform/nginx`` asks of the proxy, and what was ignored."""

    max_body_bytes: int | None = None  # None: no limit
    gzip_types: tuple[str, ...] = ()  # empty: no compression
    applied: tuple[str, ...] = ()  # what was translated, in words, for an event
    ignored: tuple[str, ...] = ()  # "worker_connections (conf.d/x.conf:1)"
    warnings: tuple[str, ...] = ()  # files that could not be read or parsed

    def to_json(self) -> str:
        return json.dumps(
            {
                "max_body_bytes": self.max_body_bytes,
                "gzip_types": list(self.gzip_types),
                "applied": list(self.applied),
                "ignored": list(self.ignored),
                "warnings": list(self.warnings),
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> ProxyConfig:
        data = json.loads(text or "{}")
        return cls(
            max_body_bytes=data.get("max_body_bytes"),
            gzip_types=tuple(data.get("gzip_types", ())),
            applied=tuple(data.get("applied", ())),
            ignored=tuple(data.get("ignored", ())),
            warnings=tuple(data.get("warnings", ())),
        )

    def ignored_message(self) -> str:
        """The one warning of a deploy: every directive Beanpole did not translate."""
        shown = ", ".join(self.ignored[:MAX_NAMED])
        more = len(self.ignored) - MAX_NAMED
        return (
            f".platform/nginx: HAProxy has no counterpart for these directives, ignored: {shown}"
            + (f" and {more} more" if more > 0 else "")
            + ". Beanpole translates only client_max_body_size, gzip and gzip_types."
        )


@dataclass(frozen=True)
class NginxFile:
    path: str  # relative to the bundle root: ".platform/nginx/conf.d/x.conf"
    data: bytes | None
    problem: str = ""  # why it was not read, when data is None


def wanted(path: str) -> bool:
    """Whether a bundle path is an nginx file EB reads."""
    if path == f"{FOLDER}/nginx.conf":
        return True
    for folder in (f"{FOLDER}/conf.d/", f"{FOLDER}/conf.d/elasticbeanstalk/"):
        rest = path.removeprefix(folder)
        if rest != path and "/" not in rest and rest.endswith(".conf"):
            return True
    return False


def _tokens(text: str) -> Iterator[tuple[str, int, bool]]:
    """``(token, line, quoted)``; ``{``, ``}`` and ``;`` are tokens of their own."""
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
            yield c, line, False
            i += 1
        elif c in "\"'":
            start_line, out, i = line, [], i + 1
            while True:
                if i >= n:
                    raise NginxSyntaxError(start_line, f"unterminated {c}quoted string{c}")
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    out.append(text[i + 1])
                    i += 2
                    continue
                if ch == c:
                    i += 1
                    break
                if ch == "\n":
                    line += 1
                out.append(ch)
                i += 1
            yield "".join(out), start_line, True
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in "{};\"'#":
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                i += 1
            yield text[start:i], line, False


def parse(text: str) -> tuple[Directive, ...]:
    """nginx configuration text into directives; NginxSyntaxError with the line if it is
    not valid (an unclosed block, a directive without ';', a stray '}')."""
    stack: list[list[Directive]] = [[]]
    heads: list[tuple[str, tuple[str, ...], int]] = []
    words: list[str] = []
    word_line = 0
    for token, line, quoted in _tokens(text):
        if quoted or token not in "{};":
            if not words:
                word_line = line
            words.append(token)
        elif token == ";":
            if not words:
                raise NginxSyntaxError(line, "unexpected ';'")
            stack[-1].append(Directive(words[0], tuple(words[1:]), word_line))
            words = []
        elif token == "{":
            if not words:
                raise NginxSyntaxError(line, "unexpected '{'")
            heads.append((words[0], tuple(words[1:]), word_line))
            stack.append([])
            words = []
        else:  # "}"
            if words:
                raise NginxSyntaxError(line, f"directive {words[0]!r} is not ended by ';'")
            if not heads:
                raise NginxSyntaxError(line, "unexpected '}'")
            name, args, at = heads.pop()
            block = tuple(stack.pop())
            stack[-1].append(Directive(name, args, at, block))
    if words:
        raise NginxSyntaxError(word_line, f"directive {words[0]!r} is not ended by ';'")
    if heads:
        raise NginxSyntaxError(heads[-1][2], f"block {heads[-1][0]!r} is not closed by '}}'")
    return tuple(stack[0])


def parse_size(value: str) -> int | None:
    """nginx's size syntax (``1k``, ``10M``, ``512``) in bytes; None if not one."""
    m = _SIZE.fullmatch(value)
    if m is None:
        return None
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def translate(files: Iterable[NginxFile]) -> ProxyConfig:
    """Every file's directives, in EB's order (nginx.conf, then conf.d, then
    conf.d/elasticbeanstalk), into one ProxyConfig. Later values win, as the included files
    come after the main file's own settings in nginx."""
    state = _State()
    for f in sorted(files, key=lambda f: (f.path.count("/"), f.path)):
        short = f.path.removeprefix(FOLDER + "/")
        if f.data is None:
            state.warnings.append(f"{f.path} was not read: {f.problem}")
            continue
        try:
            directives = parse(f.data.decode("utf-8"))
        except UnicodeDecodeError:
            state.warnings.append(f"{f.path} was not read: it is not UTF-8 text.")
            continue
        except NginxSyntaxError as exc:
            state.warnings.append(
                f"{f.path} was ignored: {exc}. Fix the file (nginx -t checks it) and deploy "
                "a new version."
            )
            continue
        state.walk(directives, short, location=False)
    return state.result()


@dataclass
class _State:
    max_body: int | None = None
    gzip: bool = False
    types: list[str] = field(default_factory=list)
    applied: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def walk(self, directives: tuple[Directive, ...], file: str, *, location: bool) -> None:
        for d in directives:
            where = f"{file}:{d.line}"
            if d.block is not None:
                if d.name in _CONTAINERS and not location:
                    self.walk(d.block, file, location=False)
                else:
                    args = " ".join(d.args)
                    self.ignored.append(f"{d.name}{' ' + args if args else ''} {{…}} ({where})")
                continue
            if d.name == "client_max_body_size" and len(d.args) == 1 and not location:
                size = parse_size(d.args[0])
                if size is None:
                    self.warnings.append(
                        f"client_max_body_size {d.args[0]!r} ({where}) is not a size: use "
                        "bytes with an optional k, m or g (10m). Ignored."
                    )
                    continue
                self.max_body = size or None
                self.applied["client_max_body_size"] = (
                    f"requests with a body over {d.args[0]} get 413 ({where})"
                    if size
                    else f"no request body limit ({where})"
                )
            elif d.name == "gzip" and len(d.args) == 1 and d.args[0] in ("on", "off"):
                self.gzip = d.args[0] == "on"
                self.applied["gzip"] = f"gzip {d.args[0]} ({where})"
            elif d.name == "gzip_types" and d.args:
                bad = [t for t in d.args if not _MIME.fullmatch(t)]
                if bad:
                    self.warnings.append(
                        f"gzip_types {' '.join(bad)} ({where}): not MIME types; ignored."
                    )
                self.types = [t for t in d.args if _MIME.fullmatch(t)]
            else:
                self.ignored.append(f"{d.name} ({where})")

    def result(self) -> ProxyConfig:
        types: tuple[str, ...] = ()
        applied = dict(self.applied)
        if self.gzip:
            # HAProxy has no wildcard type: '*' compresses what nginx's common list would.
            listed = [t for t in self.types if t != "*"] or []
            if "*" in self.types:
                listed += [
                    "text/css",
                    "text/plain",
                    "text/javascript",
                    "application/javascript",
                    "application/json",
                    "application/xml",
                    "image/svg+xml",
                ]
            types = tuple(dict.fromkeys([ALWAYS_COMPRESSED, *listed]))
            applied["gzip"] = applied["gzip"] + f": HAProxy compresses {', '.join(types)}"
        return ProxyConfig(
            max_body_bytes=self.max_body,
            gzip_types=types,
            applied=tuple(applied.values()),
            ignored=tuple(self.ignored),
            warnings=tuple(self.warnings),
        )
