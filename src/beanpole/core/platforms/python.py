"""The Python platform: a virtualenv made with uv, gunicorn on WSGIPath by default."""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from beanpole.core.errors import BundleError
from beanpole.core.platforms.plan import DependencyStep

if TYPE_CHECKING:
    from beanpole.core.settings import ResolvedSettings

NAMESPACE = "aws:elasticbeanstalk:container:python"
MANIFESTS = ("requirements.txt", "pyproject.toml")
_GUNICORN = re.compile(r"^\s*gunicorn\b", re.IGNORECASE | re.MULTILINE)
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def is_python(app_dir: Path) -> bool:
    return any((app_dir / name).is_file() for name in (*MANIFESTS, "application.py"))


def dependency_step(app_dir: Path, py_version: str, *, needs_gunicorn: bool) -> DependencyStep:

    manifest = next((m for m in MANIFESTS if (app_dir / m).is_file()), "")
    text = (app_dir / manifest).read_text(errors="replace") if manifest else ""
    extra: tuple[str, ...] = ()
    if needs_gunicorn and not _GUNICORN.search(text):
        extra = ("gunicorn",)
    digest = hashlib.sha256()
    for part in ("python", py_version, manifest, text, *extra):
        digest.update(part.encode() + b"\0")
    return DependencyStep("python", digest.hexdigest()[:24], manifest, extra)


def wsgi_target(wsgi_path: str) -> str:
    """EB's WSGIPath ('application', 'app.py', 'mysite/wsgi.py', 'app:server') as
    gunicorn's 'module:callable'."""
    module, _, callable_ = wsgi_path.strip().partition(":")
    module = module.removesuffix(".py").replace("/", ".").strip(".")
    callable_ = callable_ or "application"
    if not _MODULE.match(module) or not callable_.isidentifier():
        raise BundleError(
            f"WSGIPath {wsgi_path!r} does not name a module. Set "
            f"{NAMESPACE}:WSGIPath to a module such as 'application' or 'mysite.wsgi:application'."
        )
    return f"{module}:{callable_}"


def default_command(settings: ResolvedSettings) -> str:
    target = wsgi_target(settings.get(NAMESPACE, "WSGIPath"))
    workers = settings.int(NAMESPACE, "NumProcesses")
    threads = settings.int(NAMESPACE, "NumThreads")
    # gthread keeps client connections alive (the sync worker closes each one, which costs
    # the load balancer four times the CPU per request).
    return (
        f"gunicorn --bind 127.0.0.1:$PORT --workers {workers} --threads {threads}"
        f" --worker-class gthread --graceful-timeout 20 {shlex.quote(target)}"
    )
