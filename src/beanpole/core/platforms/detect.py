"""Decide how to build and run an application (pure: reads files, runs nothing)."""

from __future__ import annotations

import sys
from pathlib import Path

from beanpole.core.errors import BundleError
from beanpole.core.platforms import node, python, static
from beanpole.core.platforms.plan import BuildPlan
from beanpole.core.platforms.ports import bind_to_port
from beanpole.core.procfile import parse_buildfile, parse_procfile
from beanpole.core.settings import ResolvedSettings


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return None


def detect(app_dir: Path, settings: ResolvedSettings, node_version: str = "") -> BuildPlan:
    """Choose the platform the way Elastic Beanstalk does, Procfile first.

    A Procfile decides the processes; the language files still decide which
    dependencies to install. Without a Procfile, the platform's default command runs.
    """
    procfile_text = _read(app_dir / "Procfile")
    buildfile_text = _read(app_dir / "Buildfile")
    procfile = parse_procfile(procfile_text) if procfile_text is not None else None
    buildfile = parse_buildfile(buildfile_text) if buildfile_text is not None else {}
    if procfile is not None and "web" not in procfile:
        raise BundleError(
            "The Procfile has no 'web' process, so nothing would receive traffic. "
            "Add a line such as 'web: gunicorn app:app --bind 127.0.0.1:$PORT'."
        )
    notes: tuple[str, ...] = ()
    if procfile is not None:
        rewrite = bind_to_port(procfile["web"])
        if rewrite.note:
            procfile = {**procfile, "web": rewrite.command}
            notes = (rewrite.note,)

    py_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python.is_python(app_dir):
        py_deps = python.dependency_step(app_dir, py_version, needs_gunicorn=procfile is None)
        processes = procfile or {"web": python.default_command(settings)}
        return BuildPlan("python", processes, py_deps, buildfile, 8000, notes)
    if node.is_node(app_dir):
        deps = node.dependency_step(app_dir, settings, node_version)
        processes = procfile or {"web": node.default_command(app_dir)}
        return BuildPlan("nodejs", processes, deps, buildfile, 8080, notes)
    if procfile is not None:
        return BuildPlan("procfile", procfile, None, buildfile, notes=notes)
    if static.is_static(app_dir):
        return BuildPlan("static", {"web": static.default_command()}, None, buildfile)
    raise BundleError(
        "Beanpole cannot tell which platform this application is: it found no Procfile, "
        "requirements.txt, pyproject.toml, application.py, package.json or index.html at the "
        "bundle's root. Add a Procfile with a 'web: <command>' line that listens on $PORT."
    )
