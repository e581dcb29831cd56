"""The Python platform: a virtualenv made with uv, gunicorn on WSGIPath by default."""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from beanpole.core.errors import BundleError
from beanpole.core.platforms import pipfile
from beanpole.core.platforms.plan import DependencyStep

if TYPE_CHECKING:
    from beanpole.core.settings import ResolvedSettings

NAMESPACE = "aws:elasticbeanstalk:container:python"
# EB's order (it uses the first one found), then pyproject.toml, which EB does not read.
MANIFESTS = ("requirements.txt", "Pipfile.lock", "Pipfile", "pyproject.toml")
_GUNICORN = re.compile(r"^\s*gunicorn\b", re.IGNORECASE | re.MULTILINE)
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def is_python(app_dir: Path) -> bool:
    """A manifest or EB's default module at the root: the Python platform without a Procfile."""
    return any((app_dir / name).is_file() for name in (*MANIFESTS, "application.py"))


def manifest(app_dir: Path) -> str:
    """The dependency file EB would install from: the first of `MANIFESTS` present."""
    return next((m for m in MANIFESTS if (app_dir / m).is_file()), "")


def has_python_files(app_dir: Path) -> bool:
    """``*.py`` at the root: with a Procfile, the app gets a virtualenv (its ``python``)."""
    return any(path.is_file() for path in app_dir.glob("*.py"))


def dependency_step(app_dir: Path, py_version: str, *, needs_gunicorn: bool) -> DependencyStep:
    """What to install: the first manifest of `MANIFESTS` (Pipenv's files converted to
    requirements, see `pipfile`), plus gunicorn when Beanpole's default command needs it."""
    used = manifest(app_dir)
    text = (app_dir / used).read_text(errors="replace") if used else ""
    requirements = ""
    if used == "Pipfile.lock":
        requirements = pipfile.lock_requirements(text, app_dir)
    elif used == "Pipfile":
        requirements = pipfile.pipfile_requirements(text, app_dir)
    extra: tuple[str, ...] = ()
    if needs_gunicorn and not _GUNICORN.search(requirements or text):
        extra = ("gunicorn",)
    digest = hashlib.sha256()
    for part in ("python", py_version, used, text, requirements, *extra):
        digest.update(part.encode() + b"\0")
    return DependencyStep("python", digest.hexdigest()[:24], used, extra, requirements=requirements)


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
