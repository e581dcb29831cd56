"""npm's version ranges (`package.json` `engines.node`), checked against one version.

The subset of node-semver that `engines` fields use: `*`, `x`, `18`, `18.x`, `18.2.x`,
`>=18`, `>18.1`, `<=20`, `=20.1.0`, `^20.1`, `~16.2.0`, `1.2 - 2.3`, comparators joined by
spaces (all must hold) and sets joined by `||` (one must hold). Pre-release tags are
ignored on both sides (`v22.0.0-rc.1` counts as 22.0.0): a host runs a released Node.js.

Pure: strings in, a bool out; a range it cannot read raises `ValueError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Version = tuple[int, int, int]
Partial = tuple[int | None, int | None, int | None]  # None: missing or a wildcard
Comparator = tuple[str, Version]  # (">=" | ">" | "<" | "<=" | "=", version)

_PARTIAL = re.compile(
    r"^v?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)
_COMPARATOR = re.compile(r"^(?P<op><=|>=|<|>|=|~>|~|\^)?\s*(?P<version>\S+)$")
_OPERATOR_SPACE = re.compile(r"(<=|>=|<|>|=|~>|~|\^)\s+")
_HYPHEN = re.compile(r"^(?P<low>\S+)\s+-\s+(?P<high>\S+)$")


def parse_version(text: str) -> Version:
    """``v18.19.0`` (what ``node --version`` prints) or ``18.19.0`` as numbers."""
    partial = _partial(text.strip())
    if any(part is None for part in partial):
        raise ValueError(f"{text!r} is not a full version such as 18.19.0")
    major, minor, patch = partial
    assert major is not None and minor is not None and patch is not None
    return major, minor, patch


def satisfies(version: str, range_: str) -> bool:
    """Whether ``version`` lies in npm range ``range_``."""
    v = parse_version(version)
    return any(all(_holds(v, c) for c in group) for group in parse_range(range_))


def parse_range(range_: str) -> list[list[Comparator]]:
    """The range as sets of comparators (one set must hold entirely)."""
    groups = []
    for alternative in range_.split("||"):
        text = _OPERATOR_SPACE.sub(r"\1", alternative.strip())
        hyphen = _HYPHEN.match(text)
        if hyphen:
            groups.append(_hyphen(hyphen["low"], hyphen["high"]))
            continue
        group: list[Comparator] = []
        for word in text.split():
            group.extend(_comparator(word))
        groups.append(group)  # an empty set (`""`, `*`) holds for every version
    return groups


def _partial(text: str) -> Partial:
    m = _PARTIAL.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a version")
    parts: list[int | None] = []
    wildcard = False
    for name in ("major", "minor", "patch"):
        value = m[name]
        if value is None or value in "xX*" or wildcard:
            wildcard = True  # everything after a wildcard is one too: 1.x.3 means 1.x
            parts.append(None)
        else:
            parts.append(int(value))
    return parts[0], parts[1], parts[2]


def _low(p: Partial) -> Version:
    """The lowest version a partial one covers: 1.2 -> 1.2.0."""
    assert p[0] is not None
    return p[0], p[1] or 0, p[2] or 0


def _above(p: Partial) -> Version | None:
    """The first version after those a partial one covers (1.2 -> 1.3.0); None if full."""
    major, minor, patch = p
    assert major is not None
    if minor is None:
        return major + 1, 0, 0
    if patch is None:
        return major, minor + 1, 0
    return None


def _between(p: Partial, upper: Version | None) -> list[Comparator]:
    return [(">=", _low(p)), ("<", upper)] if upper is not None else [("=", _low(p))]


def _caret(p: Partial) -> list[Comparator]:
    """^1.2.3: below 2.0.0; ^0.2.3: below 0.3.0; ^0.0.3: below 0.0.4 (the first non-zero)."""
    major, minor, patch = p
    if major or minor is None:
        return _between(p, _above((major, None, None)))
    if minor or patch is None:
        return _between(p, _above((major, minor, None)))
    return _between(p, _above(p) or (0, 0, (patch or 0) + 1))


def _greater(p: Partial) -> list[Comparator]:
    upper = _above(p)  # >1.2 means 1.3.0 and up
    return [(">=", upper)] if upper is not None else [(">", _low(p))]


def _at_most(p: Partial) -> list[Comparator]:
    upper = _above(p)  # <=1.2 means below 1.3.0
    return [("<", upper)] if upper is not None else [("<=", _low(p))]


_OPERATORS: dict[str, Callable[[Partial], list[Comparator]]] = {
    "": lambda p: _between(p, _above(p)),
    "=": lambda p: _between(p, _above(p)),
    "~": lambda p: _between(p, _above((p[0], p[1], None) if p[1] is not None else p)),
    "~>": lambda p: _between(p, _above((p[0], p[1], None) if p[1] is not None else p)),
    "^": _caret,
    ">": _greater,
    "<=": _at_most,
    ">=": lambda p: [(">=", _low(p))],
    "<": lambda p: [("<", _low(p))],
}


def _comparator(word: str) -> list[Comparator]:
    m = _COMPARATOR.match(word)
    if m is None:
        raise ValueError(f"{word!r} is not a comparator")
    partial = _partial(m["version"])
    if partial[0] is None:  # *, x: any version (`<*` matches none, which no one writes)
        return []
    return _OPERATORS[m["op"] or ""](partial)


def _hyphen(low: str, high: str) -> list[Comparator]:
    lo = _partial(low)
    hi = _partial(high)
    out: list[Comparator] = []
    if lo[0] is not None:
        out.append((">=", (lo[0], lo[1] or 0, lo[2] or 0)))
    if hi[0] is None:
        return out
    if hi[1] is None:
        out.append(("<", (hi[0] + 1, 0, 0)))
    elif hi[2] is None:
        out.append(("<", (hi[0], hi[1] + 1, 0)))
    else:
        out.append(("<=", (hi[0], hi[1], hi[2])))
    return out


def _holds(v: Version, comparator: Comparator) -> bool:
    op, bound = comparator
    if op == ">=":
        return v >= bound
    if op == ">":
        return v > bound
    if op == "<":
        return v < bound
    if op == "<=":
        return v <= bound
    return v == bound
