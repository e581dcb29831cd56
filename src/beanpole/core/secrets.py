"""Secret environment properties: how they are told apart and kept out of every output.

``beanpole setenv --secret K=V`` stores ``V`` encrypted (`beanpole.adapters.secrets`): the
environment's settings hold ``bp-secret:v1:<token>`` in its place, and only the process
environment of the app and of its bundle's commands gets the value itself. Every face
passes what it shows through `mask`: a view, an Elastic Beanstalk API answer, an event, a
deploy log line. Since the settings never hold the value, a face that forgot would still
show only ciphertext; `mask` also hides that, and `scrub` hides the values themselves in
output the app writes (a ``container_commands`` entry that echoes one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "bp-secret:v1:"
MASK = "****"
_SEALED = re.compile(re.escape(PREFIX) + r"[A-Za-z0-9_=-]+")  # the prefix alone: text about it
MIN_SCRUB_LENGTH = 4  # shorter values would mask ordinary words in logs


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def mask(value: Any) -> Any:
    """``value`` with every sealed secret replaced by ``****`` (strings, and the strings in
    dicts, lists and tuples, keys included)."""
    if isinstance(value, str):
        return _SEALED.sub(MASK, value) if PREFIX in value else value
    if isinstance(value, dict):
        return {mask(k): mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, tuple):
        return tuple(mask(v) for v in value)
    return value


def scrub(text: str, values: Iterable[str]) -> str:
    """``text`` with each secret value (at least `MIN_SCRUB_LENGTH` characters) replaced by
    ``****``, longest first so a value containing another is hidden whole."""
    for value in sorted({v for v in values if len(v) >= MIN_SCRUB_LENGTH}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def sealed_keys(env: Mapping[str, str]) -> list[str]:
    """The properties of ``env`` that are secrets, sorted."""
    return sorted(k for k, v in env.items() if is_sealed(v))
