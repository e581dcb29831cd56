"""Beanpole's error tree.

Every error says what happened and what to do about it. Each surface translates
them at one boundary: the CLI prints ``Error: <message>`` and exits non-zero, the
HTTP API answers ``{"error": {"code": ..., "message": ...}}`` with ``http_status``.

    BeanpoleError
    ├── InvalidInput (ValueError)          400  bad names, settings, arguments
    │   └── BundleError                    400  a source bundle that is refused
    ├── NotFound (LookupError)             404
    ├── Conflict                           409  duplicate names, an operation already running
    ├── BuildError                         422  the app's build failed (carries the output tail)
    ├── Unauthorized                       401
    └── ComponentError (RuntimeError)      503  HAProxy, supervisord or a tool misbehaved
"""

from __future__ import annotations


class BeanpoleError(Exception):
    """Base of every error Beanpole raises on purpose."""

    http_status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(BeanpoleError, ValueError):
    http_status = 400
    code = "invalid_input"


class BundleError(InvalidInput):
    code = "invalid_bundle"


class NotFound(BeanpoleError, LookupError):
    http_status = 404
    code = "not_found"


class Conflict(BeanpoleError):
    http_status = 409
    code = "conflict"


class BuildError(BeanpoleError):
    http_status = 422
    code = "build_failed"


class Unauthorized(BeanpoleError):
    http_status = 401
    code = "unauthorized"


class ComponentError(BeanpoleError, RuntimeError):
    http_status = 503
    code = "component_failed"
