"""Ignore files (.ebignore, .gitignore) with git's semantics.

Developers already know what their ``.gitignore`` leaves out, and the EB CLI reads
``.ebignore`` with the same syntax, so a bundle must leave out exactly what git would.
Patterns are translated the way git's ``wildmatch`` reads them (with ``WM_PATHNAME``):

* blank lines match nothing; ``#`` starts a comment; ``\\#`` and ``\\!`` are literal;
* trailing spaces are dropped unless escaped (``foo\\ ``);
* ``!`` re-includes what an earlier pattern excluded; the last matching pattern wins;
* a trailing ``/`` matches directories only;
* a ``/`` at the start or in the middle anchors the pattern to the ignore file's folder,
  otherwise it matches a name at any depth;
* ``*`` and ``?`` never cross ``/``; ``[...]`` is a class (``!``/``^`` negate, ranges,
  ``[:alpha:]``); ``**/``, ``/**/`` and ``/**`` span any number of folders.

A path inside an ignored folder is ignored whatever comes later: git never looks inside
an excluded folder, so a ``!`` pattern cannot re-include its contents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# POSIX classes git understands inside brackets, as regex class bodies.
_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


class _Malformed(Exception):
    """A pattern git would abort on (unclosed ``[``, trailing ``\\``): it matches nothing."""


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool
    basename_only: bool
    base: str  # "" for the root ignore file, else "sub/dir/" of a nested one

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if not path.startswith(self.base):
            return False
        path = path[len(self.base) :]
        target = path.rpartition("/")[2] if self.basename_only else path
        return self.regex.fullmatch(target) is not None


@dataclass(frozen=True)
class IgnoreRules:
    """An ordered set of ignore patterns; later ones win, like lines further down a file."""

    rules: tuple[_Rule, ...] = ()

    @classmethod
    def parse(cls, text: str, base: str = "") -> IgnoreRules:
        """Read ignore-file text. ``base`` is the folder holding the file (``""`` for the root),
        since a nested ``.gitignore`` only speaks about paths below it."""
        folders = [part for part in base.split("/") if part not in ("", ".")]
        prefix = "".join(f"{folder}/" for folder in folders)
        rules = (_parse_line(line, prefix) for line in text.splitlines())
        return cls(tuple(rule for rule in rules if rule is not None))

    @classmethod
    def from_file(cls, path: Path, base: str = "") -> IgnoreRules:
        return cls.parse(path.read_text(encoding="utf-8", errors="replace"), base)

    def __add__(self, other: IgnoreRules) -> IgnoreRules:
        """Rules of ``other`` come after ours, so they win: that is how a deeper
        ``.gitignore`` overrides the root one."""
        return IgnoreRules(self.rules + other.rules)

    def matches(self, relpath: str, is_dir: bool) -> bool:
        """Whether ``relpath`` (``/``-separated, relative to the root) is ignored."""
        parts = [part for part in relpath.split("/") if part not in ("", ".")]
        for depth in range(1, len(parts)):
            if self._last_match_ignores("/".join(parts[:depth]), is_dir=True):
                return True
        return self._last_match_ignores("/".join(parts), is_dir)

    def _last_match_ignores(self, path: str, is_dir: bool) -> bool:
        for rule in reversed(self.rules):
            if rule.matches(path, is_dir):
                return not rule.negated
        return False


def _parse_line(line: str, base: str) -> _Rule | None:
    line = _trim_trailing_spaces(line.rstrip("\r"))
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    # Any slash left (leading or middle) anchors the pattern to the file's folder.
    anchored = "/" in line
    line = line.removeprefix("/")
    if not line:
        return None
    try:
        regex = re.compile(_translate(line))
    except _Malformed:
        return None
    return _Rule(regex, negated, dir_only, basename_only=not anchored, base=base)


def _trim_trailing_spaces(line: str) -> str:
    """Drop trailing spaces unless a backslash escapes them, as git does."""
    first_trailing_space: int | None = None
    i = 0
    while i < len(line):
        char = line[i]
        if char == " ":
            if first_trailing_space is None:
                first_trailing_space = i
        else:
            first_trailing_space = None
            if char == "\\":
                i += 1
        i += 1
    return line if first_trailing_space is None else line[:first_trailing_space]


def _translate(pattern: str) -> str:
    """Turn one wildmatch pattern into a regex for ``fullmatch``."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            end = i
            while end < n and pattern[end] == "*":
                end += 1
            starts_segment = i == 0 or pattern[i - 1] == "/"
            ends_segment = end == n or pattern[end] == "/"
            if end - i >= 2 and starts_segment and ends_segment:
                if end == n:
                    out.append(".*")  # "/**" at the end: everything inside
                else:
                    out.append("(?:.*/)?")  # "**/": zero or more folders
                    end += 1
            else:
                out.append("[^/]*")  # "*", and "**" not between slashes, stay in one segment
            i = end
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            fragment, i = _translate_class(pattern, i + 1)
            out.append(fragment)
        elif char == "\\":
            if i + 1 == n:
                raise _Malformed
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _translate_class(pattern: str, i: int) -> tuple[str, int]:
    """Translate a bracket expression starting just after ``[``, following wildmatch's loop
    (``]`` is literal when first, ``-`` after a range is literal). Returns the regex and the
    index after the closing ``]``."""
    negated = pattern.startswith(("!", "^"), i)
    if negated:
        i += 1
    items: list[str] = []
    previous: str | None = None  # the last single character: a range may start there
    first = True
    while True:
        if i >= len(pattern):
            raise _Malformed
        if pattern[i] == "]" and not first:
            break
        first = False
        if pattern[i] == "-" and previous is not None and pattern[i + 1 : i + 2] not in ("", "]"):
            high, i = _class_char(pattern, i + 1)
            items.pop()  # the range replaces its first character
            if previous <= high:
                items.append(f"{re.escape(previous)}-{re.escape(high)}")
            previous = None
        elif pattern.startswith("[:", i) and (posix := _posix_class(pattern, i)) is not None:
            body, i = posix
            items.append(body)
            previous = None
        else:
            previous, i = _class_char(pattern, i)
            items.append(re.escape(previous))
    body = "".join(items)
    if negated:
        return f"[^/{body}]", i + 1
    # A class never matches "/" under WM_PATHNAME; an empty class matches nothing.
    return (f"(?!/)[{body}]" if body else "(?!)"), i + 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """The possibly backslash-escaped character at ``i``, and the index after it."""
    if pattern[i] != "\\":
        return pattern[i], i + 1
    if i + 1 >= len(pattern):
        raise _Malformed
    return pattern[i + 1], i + 2


def _posix_class(pattern: str, i: int) -> tuple[str, int] | None:
    """``[:name:]`` at ``i``; None when no ``:]`` closes it (wildmatch then reads ``[`` as a
    plain character)."""
    close = pattern.find("]", i + 2)
    if close < 0:
        raise _Malformed
    name = pattern[i + 2 : close]
    if not name.endswith(":"):
        return None
    if name[:-1] not in _POSIX_CLASSES:
        raise _Malformed
    return _POSIX_CLASSES[name[:-1]], close + 1
