"""Stable identities: what a record refers to, so a name freed by `terminate` can be reused.

An environment's name is free again once it is terminated (EB's rule), so nothing may refer
to an environment by its name: instances, events, releases, operations and metrics carry
its id. Ids are random, never reused, and never change.

    environment   e-  + 10 lowercase letters/digits   (EB's own form, e.g. e-3kq9xw2m7a)
    application   a-  + 10 lowercase letters/digits   (EB shows none; ARNs need one)
    version       av- + 10 lowercase letters/digits   (EB shows none; ARNs need one)

Random rather than counted: ids survive a restore of one home into another without clashing,
and they give nothing away about how many environments a host has run.
"""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
_LENGTH = 10

ENVIRONMENT_PREFIX = "e-"
APPLICATION_PREFIX = "a-"
VERSION_PREFIX = "av-"


def _new(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))


def new_environment_id() -> str:
    return _new(ENVIRONMENT_PREFIX)


def new_application_id() -> str:
    return _new(APPLICATION_PREFIX)


def new_version_id() -> str:
    return _new(VERSION_PREFIX)


_ENVIRONMENT_ID = re.compile(rf"^{ENVIRONMENT_PREFIX}[a-z0-9]{{{_LENGTH}}}$")


def is_environment_id(value: str) -> bool:
    """Whether ``value`` has the form of an environment id (a name can have it too)."""
    return bool(_ENVIRONMENT_ID.match(value))
