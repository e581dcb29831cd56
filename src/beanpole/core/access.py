"""Who may call which REST route: roles, tokens limited to one application (pure).

Three roles, each allowing what the one before allows:

- ``read``: every ``GET`` of an application's resources (environments, versions, health,
  logs, events, settings, certificates);
- ``deploy``: also every change to applications and environments (upload, create,
  deploy, configure, scale, swap, roll back, terminate, domains, saved configurations);
- ``admin``: also the server's own resources: tokens, the audit log, certificates
  (changes), Elastic Beanstalk access keys and console users, and the metrics of every
  environment.

A token may be limited to one application (``--app``): then only routes about that
application's resources are open to it, and the lists it reads (applications,
environments, saved configurations) hold that application's only. The server's own token
(``<home>/token``) and console users are ``admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from beanpole.core.errors import Forbidden, InvalidInput

API = "/api/v1"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(StrEnum):
    READ = "read"
    DEPLOY = "deploy"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.READ: 0, Role.DEPLOY: 1, Role.ADMIN: 2}

# Routes about the server itself, not an application: admin only, whatever the method.
_ADMIN_ONLY = ("/tokens", "/audit", "/keys", "/users")
_SERVER_WIDE_READS = (
    "/certificates",
    "/metrics",
    "/console/overview",
    "/console/stream",
    "/nodes",
)
# Lists a token limited to one application may read: filtered to it by their handlers.
SCOPED_LISTS = frozenset({f"{API}/applications", f"{API}/environments", f"{API}/configurations"})


@dataclass(frozen=True)
class Principal:
    """Who a request comes from, as the audit log names it."""

    name: str  # "token tok-1a2b3c4d (ci)", "server token", "user alice"
    role: Role
    application: str | None = None  # limited to this application's resources
    token_id: str | None = None

    def can(self, role: Role) -> bool:
        return self.role.rank >= role.rank


def required_role(method: str, route: str) -> Role:
    """The least role that may call ``method`` on the route template ``route``
    (``/api/v1/environments/{name}``, as FastAPI names it)."""
    path = route.removeprefix(API)
    if path.startswith(_ADMIN_ONLY):
        return Role.ADMIN
    if method in SAFE_METHODS:
        return Role.READ
    if path.startswith(("/certificates", "/nodes")):  # the whole server's, or the cluster's
        return Role.ADMIN
    return Role.DEPLOY


@dataclass(frozen=True)
class Target:
    """What a request is about, for the application check and the audit log."""

    application: str | None = None
    environments: tuple[str, ...] = ()  # names, resolved to their application by the caller
    operation: int | None = None
    listing: bool = False  # one of `SCOPED_LISTS`
    server_wide: bool = False  # about no application: closed to limited tokens


def target_of(  # noqa: PLR0911 - one return per kind of route
    method: str, route: str, params: dict[str, str], body: dict[str, object] | None
) -> Target:
    """Which application's resources the request touches, from its route template, path
    parameters and (for the few routes that name them there) its JSON body."""
    path = route.removeprefix(API)
    if method in SAFE_METHODS and route in SCOPED_LISTS:
        return Target(listing=True)
    if path.startswith((*_ADMIN_ONLY, *_SERVER_WIDE_READS)) or route == "/metrics":
        return Target(server_wide=True)
    if "application" in params:
        return Target(application=params["application"])
    body = body or {}
    if path == "/environments" and method == "POST":
        app = body.get("application")
        return Target(application=app if isinstance(app, str) else "")
    if "op_id" in params:
        try:
            return Target(operation=int(params["op_id"]))
        except ValueError:
            return Target(server_wide=True)
    if "name" in params and path.startswith(("/environments/", "/console/")):
        names = [params["name"]]
        other = body.get("other")
        if path.endswith("/swap") and isinstance(other, str):
            names.append(other)
        return Target(environments=tuple(names))
    return Target(server_wide=True)


def check_application(principal: Principal, target: Target, applications: list[str]) -> None:
    """Refuse a limited token a route about another application (``applications``: those
    of the target's environments or operation, resolved by the caller)."""
    mine = principal.application
    if mine is None or target.listing:
        return
    named = [target.application] if target.application is not None else applications
    if target.server_wide or not named or any(app != mine for app in named):
        raise Forbidden(
            f"This token is limited to application {mine}: it cannot reach this resource. "
            "Use a token of the resource's application, or an unlimited one "
            "(beanpole tokens create --role ROLE)."
        )


def check_role(principal: Principal, role: Role) -> None:
    if not principal.can(role):
        raise Forbidden(
            f"This token's role is {principal.role}; this request needs {role}. "
            f"Ask an admin for a {role} token: beanpole tokens create --role {role}."
        )


# -- tokens ------------------------------------------------------------------------------

TOKEN_PREFIX = "bpt_"  # noqa: S105 - the tokens' prefix, not a token
_TOKEN = re.compile(r"bpt_([0-9a-f]{8})_([A-Za-z0-9_-]{32,64})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,63}")


def new_token() -> tuple[str, str, str]:
    """A new token: (id, the token to hand out, the hash to store). Only the hash is kept;
    the token itself is shown once."""
    token_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}", digest(secret)


def parse_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a token of ours, or None for any other text."""
    m = _TOKEN.fullmatch(text.strip())
    return (m.group(1), m.group(2)) if m else None


def digest(secret: str) -> str:
    """Tokens are 256 random bits: one SHA-256 is enough to store them (a slow hash
    guards guessable passwords, which these are not)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored: str) -> bool:
    return hmac.compare_digest(digest(secret), stored)


def check_token_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"Token name {name!r} is not valid: 1-64 letters, digits, spaces, '.', '_' or "
            "'-', starting with a letter or digit (such as 'ci deploys')."
        )
    return name
