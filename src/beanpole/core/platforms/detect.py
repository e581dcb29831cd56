"""Decide how to build and run an application (pure: reads files, runs nothing)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from beanpole.core.errors import BundleError
from beanpole.core.platforms import docker, node, python, static
from beanpole.core.platforms.plan import PLATFORM_NAMES, PLATFORMS, BuildPlan
from beanpole.core.platforms.ports import bind_to_port
from beanpole.core.procfile import parse_buildfile, parse_procfile
from beanpole.core.settings import ResolvedSettings


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return None


def detect(
    app_dir: Path,
    settings: ResolvedSettings,
    node_version: str = "",
    platform: str | None = None,
    containers: bool = False,
    prefer_containers: bool = False,
) -> BuildPlan:
    """The plan for the environment's ``platform`` (`PLATFORMS`), or, when it names none,
    the platform the bundle's files say, the way Elastic Beanstalk's would run it.

    A Procfile decides the processes; the language files still decide which dependencies
    to install: a Python manifest (requirements.txt, Pipfile.lock, Pipfile, pyproject.toml)
    or application.py, then package.json, then, with a Procfile, ``*.py`` files (a virtualenv
    with nothing installed, so ``python`` is the app's own). Without a Procfile, the
    platform's default command runs.

    Docker's files (Dockerfile, Dockerrun.aws.json, docker-compose.yml) alone choose the
    Docker platform where ``containers`` can run (the engine answers), and an error saying
    what to install elsewhere; so does a Dockerrun.aws.json, which is written for nothing
    else. A Dockerfile or a compose file beside another platform's files (often there for
    local development) chooses it only where the server ``prefer_containers`` (its default
    runtime is Docker, as `eb init` would pick Docker for them); elsewhere the other files
    win, with a warning naming the choice.
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
    found_docker = docker.markers(app_dir)
    if (
        platform is None
        and found_docker
        and containers
        and (
            prefer_containers
            or "Dockerrun.aws.json" in found_docker
            or not _other_platform(app_dir, procfile)
        )
    ):
        platform = "docker"  # as `eb init` picks Docker for these files
    if platform is not None:
        return _named(
            platform, app_dir, settings, node_version, procfile, buildfile, notes, containers
        )

    def warned(plan: BuildPlan, because: str) -> BuildPlan:
        if not found_docker:
            return plan
        warning = docker.ignored(found_docker, PLATFORM_NAMES[plan.platform], because, containers)
        return replace(plan, warnings=(*plan.warnings, warning))

    manifest = python.manifest(app_dir)
    if manifest or python.is_python(app_dir):
        return warned(
            _python(app_dir, settings, py_version, procfile, buildfile, notes),
            f"{manifest or 'application.py'} found",
        )
    if node.is_node(app_dir):
        plan = _node(app_dir, settings, node_version, procfile, buildfile, notes)
        return warned(plan, "package.json found")
    if procfile is not None:
        if python.has_python_files(app_dir):
            plan = _python(app_dir, settings, py_version, procfile, buildfile, notes)
            return warned(plan, "a Procfile and *.py files found")
        plan = BuildPlan("procfile", procfile, None, buildfile, notes=notes)
        return warned(plan, "a Procfile found")
    if static.is_static(app_dir):
        plan = BuildPlan("static", {"web": static.default_command()}, None, buildfile)
        return warned(plan, "index.html found")
    if found_docker:
        raise docker.unavailable(found_docker)
    raise BundleError(
        "Beanpole cannot tell which platform this application is: it found no Procfile, "
        "requirements.txt, Pipfile, pyproject.toml, application.py, package.json or index.html "
        "at the bundle's root. Add a Procfile with a 'web: <command>' line that listens on $PORT."
    )


def _other_platform(app_dir: Path, procfile: dict[str, str] | None) -> bool:
    """Whether the bundle has another platform's files (the checks `detect` makes below)."""
    return bool(
        procfile is not None
        or python.manifest(app_dir)
        or python.is_python(app_dir)
        or node.is_node(app_dir)
        or static.is_static(app_dir)
    )


def _docker(app_dir: Path, buildfile: dict[str, str]) -> BuildPlan:
    """The image's own command is the web process; its port is the files' (or, once the
    image is there, its EXPOSE's, else 8080)."""
    found = docker.source(app_dir)
    return BuildPlan(
        "docker",
        {"web": ""},
        None,
        buildfile,
        default_port=found.port or docker.DEFAULT_PORT,
        warnings=found.notes,
        docker=found,
    )


def _python(
    app_dir: Path,
    settings: ResolvedSettings,
    py_version: str,
    procfile: dict[str, str] | None,
    buildfile: dict[str, str],
    notes: tuple[str, ...],
) -> BuildPlan:
    py_deps = python.dependency_step(app_dir, py_version, needs_gunicorn=procfile is None)
    processes = procfile or {"web": python.default_command(settings)}
    return BuildPlan("python", processes, py_deps, buildfile, 8000, notes)


def _node(
    app_dir: Path,
    settings: ResolvedSettings,
    node_version: str,
    procfile: dict[str, str] | None,
    buildfile: dict[str, str],
    notes: tuple[str, ...],
) -> BuildPlan:
    deps = node.dependency_step(app_dir, settings, node_version)
    processes = procfile or {"web": node.default_command(app_dir)}
    return BuildPlan("nodejs", processes, deps, buildfile, 8080, notes)


def _named(
    platform: str,
    app_dir: Path,
    settings: ResolvedSettings,
    node_version: str,
    procfile: dict[str, str] | None,
    buildfile: dict[str, str],
    notes: tuple[str, ...],
    containers: bool,
) -> BuildPlan:
    """The plan for the platform the environment names; an error naming what is missing
    when the bundle cannot run on it."""
    if platform == "docker":
        found = docker.markers(app_dir)
        if not containers:
            raise docker.unavailable(found or ["--platform docker"])
        if not found:
            raise BundleError(
                "The environment's platform is docker, but the bundle has no Dockerfile or "
                "Dockerrun.aws.json at its root: add one, or create the environment with "
                f"another --platform{_looks_like(app_dir)}."
            )
        return _docker(app_dir, buildfile)
    if platform == "python":
        if python.manifest(app_dir) or python.is_python(app_dir) or procfile is not None:
            py_version = f"{sys.version_info.major}.{sys.version_info.minor}"
            return _python(app_dir, settings, py_version, procfile, buildfile, notes)
        missing = (
            "none of requirements.txt, Pipfile.lock, Pipfile, pyproject.toml or application.py, "
            "nor a Procfile"
        )
        fix = "add one (requirements.txt listing its packages, for example)"
    elif platform == "node":
        if node.is_node(app_dir):
            return _node(app_dir, settings, node_version, procfile, buildfile, notes)
        missing, fix = "no package.json", "add a package.json (npm init)"
    elif platform == "static":
        if static.is_static(app_dir):
            ignored = ("The Procfile is ignored: the environment's platform is static.",)
            return BuildPlan(
                "static",
                {"web": static.default_command()},
                None,
                buildfile,
                warnings=ignored if procfile is not None else (),
            )
        missing, fix = "no index.html", "add the site's index.html"
    elif platform == "procfile":
        if procfile is not None:
            return BuildPlan("procfile", procfile, None, buildfile, notes=notes)
        missing, fix = "no Procfile", "add a Procfile with a 'web: <command>' line"
    else:
        raise BundleError(
            f"Unknown platform {platform!r}: use one of {', '.join(PLATFORMS)}, or none to "
            "detect it from the bundle."
        )
    raise BundleError(
        f"The environment's platform is {platform}, but the bundle has {missing} at its root: "
        f"{fix}, or create the environment with another --platform{_looks_like(app_dir)}."
    )


def _looks_like(app_dir: Path) -> str:
    """A hint: the platform detection would choose, and the file that says so."""
    manifest = python.manifest(app_dir)
    for found, name in (
        (manifest or ("application.py" if python.is_python(app_dir) else ""), "python"),
        ("package.json" if node.is_node(app_dir) else "", "node"),
        ("Procfile" if (app_dir / "Procfile").is_file() else "", "procfile"),
        ("index.html" if static.is_static(app_dir) else "", "static"),
        (", ".join(docker.markers(app_dir)), "docker"),
    ):
        if found:
            return f" (this bundle looks like {name}: {found} found)"
    return ""
