"""Beanpole's error tree.

Every error says what happened and what to do about it, and carries a semantic ``code``
that does not depend on how it reaches the user. Each face translates codes at one
boundary to its own shape: the CLI prints ``Error: <message>`` and exits non-zero, the REST
API answers ``{"error": {"code": ..., "message": ...}}`` with the HTTP status it maps the
code to (`beanpole.server.rest.errors`), Elastic Beanstalk's query API (later) its own
error codes. The core knows no protocol.

    BeanpoleError                          internal
    ├── InvalidInput (ValueError)          invalid_input     bad names, settings, arguments
    │   ├── BundleError                    invalid_bundle    a source bundle that is refused
    │   └── TooLarge                       too_large         a body or upload over its limit
    ├── NotFound (LookupError)             not_found
    ├── Conflict                           conflict          duplicate names, an operation running
    ├── BuildError                         build_failed      the app's build failed (output tail)
    ├── Unauthorized                       unauthorized
    └── ComponentError (RuntimeError)      component_failed  HAProxy, supervisord or a tool failed
"""

from __future__ import annotations


class BeanpoleError(Exception):
    """Base of every error Beanpole raises on purpose."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(BeanpoleError, ValueError):
    code = "invalid_input"


class BundleError(InvalidInput):
    code = "invalid_bundle"


class TooLarge(InvalidInput):
    """A request body or upload over its limit (the REST API answers 413)."""

    code = "too_large"


class NotFound(BeanpoleError, LookupError):
    code = "not_found"


class Conflict(BeanpoleError):
    code = "conflict"


class BuildError(BeanpoleError):
    code = "build_failed"


class Unauthorized(BeanpoleError):
    code = "unauthorized"


class Forbidden(BeanpoleError):
    """Authenticated, but this request may not do that (a change without the CSRF token)."""

    code = "forbidden"


class Throttled(BeanpoleError):
    code = "throttled"


class ComponentError(BeanpoleError, RuntimeError):
    code = "component_failed"


ERRORS: tuple[type[BeanpoleError], ...] = (
    BeanpoleError,
    InvalidInput,
    BundleError,
    TooLarge,
    NotFound,
    Conflict,
    BuildError,
    Unauthorized,
    Forbidden,
    Throttled,
    ComponentError,
)
"""Every class of the tree: a face that receives a code (the client) rebuilds the error."""

_BY_CODE = {cls.code: cls for cls in ERRORS}


def error_for_code(code: str, message: str) -> BeanpoleError:
    """The error a code names (an unknown code, from a newer server: the base class)."""
    return _BY_CODE.get(code, BeanpoleError)(message)


def unexpected(exc: BaseException) -> str:
    """What a user reads about an error nobody raised on purpose: its kind, never a Python
    repr (which can carry internals and reads as a crash); the log has the traceback."""
    if isinstance(exc, BeanpoleError):
        return exc.message
    return (
        f"An unexpected error ({type(exc).__name__}) stopped it. The server log "
        "(BEANPOLE_HOME/logs/server.log) has the details; report it if it happens again."
    )
