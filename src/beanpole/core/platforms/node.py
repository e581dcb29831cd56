"""The Node.js platform: npm, yarn or pnpm (whichever wrote the lock file) into a cache keyed
by that lock file; ``engines.node`` checked against the host's Node.js."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from beanpole.core.errors import BuildError, BundleError
from beanpole.core.platforms import semver
from beanpole.core.platforms.plan import DependencyStep

if TYPE_CHECKING:
    from beanpole.core.settings import ResolvedSettings

NAMESPACE = "aws:elasticbeanstalk:container:nodejs"


def is_node(app_dir: Path) -> bool:
    return (app_dir / "package.json").is_file()


def _package(app_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((app_dir / "package.json").read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(
            f"package.json is not valid JSON ({exc}). Fix it and deploy again."
        ) from None
    if not isinstance(data, dict):
        raise BundleError("package.json must hold a JSON object.")
    return data


# lock file -> the package manager that wrote it, in the order they are looked for (npm's
# own first: it is what EB runs)
LOCKS = (
    ("npm-shrinkwrap.json", "npm"),
    ("package-lock.json", "npm"),
    ("yarn.lock", "yarn"),
    ("pnpm-lock.yaml", "pnpm"),
)
_PNPM_LOCK_VERSION = re.compile(r"^lockfileVersion:\s*['\"]?(\d+)", re.MULTILINE)
# pnpm-lock.yaml's lockfileVersion -> the pnpm that writes it (9.0: pnpm 9 and 10)
_PNPM_FOR_LOCK = {5: "pnpm@7", 6: "pnpm@8"}


def check_engines(app_dir: Path, node_version: str) -> None:
    """Fail unless the host's Node.js satisfies ``engines.node`` (when package.json has one)."""
    engines = _package(app_dir).get("engines")
    wanted = engines.get("node") if isinstance(engines, dict) else None
    if not isinstance(wanted, str) or not wanted.strip():
        return
    if not node_version:
        raise BundleError(
            f"package.json requires Node.js {wanted} (engines.node) but this host has no "
            "Node.js: install a Node.js that satisfies it (apt-get install nodejs)."
        )
    try:
        ok = semver.satisfies(node_version, wanted)
    except ValueError as exc:
        raise BundleError(
            f"package.json's engines.node {wanted!r} is not a version range Beanpole can read "
            f"({exc}): write a range such as '>=18', '^20.1' or '18.x'."
        ) from None
    if not ok:
        raise BundleError(
            f"package.json requires Node.js {wanted} (engines.node) but this host has "
            f"{node_version}: install a Node.js that satisfies it, or change engines.node"
        )


def package_manager(app_dir: Path) -> tuple[str, str]:
    """The package manager to install with, and the lock file it reads ('' if none).

    ``packageManager`` in package.json (Corepack's field: ``yarn@1.22.19``) decides if set;
    otherwise the lock file found (`LOCKS`); otherwise npm. The manager is given with the
    version to fetch when the host has none (``yarn@1``, ``pnpm@9``)."""
    field_ = _package(app_dir).get("packageManager")
    named = field_.split("+", 1)[0].strip() if isinstance(field_, str) else ""
    name = named.partition("@")[0]
    for lock, manager in LOCKS:
        if (app_dir / lock).is_file() and (not name or manager == name):
            return (named or _version_of(manager, app_dir / lock)), lock
    if name in ("yarn", "pnpm"):
        return named, ""
    return "npm", ""


def _version_of(manager: str, lock: Path) -> str:
    if manager == "yarn":
        if "__metadata:" in lock.read_text(errors="replace"):
            raise BundleError(
                "yarn.lock was written by Yarn 2 or later, which Beanpole does not run yet: "
                "ship a yarn.lock of Yarn 1 (classic), a package-lock.json (npm install), or "
                "the node_modules folder."
            )
        return "yarn@1"
    if manager == "pnpm":
        m = _PNPM_LOCK_VERSION.search(lock.read_text(errors="replace"))
        return _PNPM_FOR_LOCK.get(int(m[1]), "pnpm@9") if m else "pnpm@9"
    return "npm"


def dependency_step(
    app_dir: Path, settings: ResolvedSettings, node_version: str
) -> DependencyStep | None:
    """Install with the manager that wrote the lock file, into a cache keyed by
    package.json, that lock file, the manager, Node.js's version and production mode."""
    check_engines(app_dir, node_version)
    shipped = app_dir / "node_modules"
    if shipped.is_dir() and not shipped.is_symlink():
        return None  # shipped with the bundle: EB installs nothing then (a link is Beanpole's
        # own to the installed dependencies, made by an earlier look at this version)
    production = settings.get(NAMESPACE, "NPM_USE_PRODUCTION") == "true"
    manager, lock = package_manager(app_dir)
    digest = hashlib.sha256()
    for name in ("package.json", lock):
        path = app_dir / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if name and path.is_file() else b"")
        digest.update(b"\0")
    digest.update(f"node {node_version} production={production} {manager}".encode())
    return DependencyStep(
        "node",
        digest.hexdigest()[:24],
        lock or "package.json",
        ("production",) if production else (),
        manager=manager,
    )


def install_command(
    step: DependencyStep, which: Callable[[str], str | None], *, has_lock: bool
) -> list[str]:
    """The command that installs ``step`` with the tools this host has (``which`` finds a
    program). yarn and pnpm: the host's own, else fetched by ``npx`` or Corepack."""
    production = "production" in step.extra
    name = step.manager.partition("@")[0] or "npm"
    if name == "npm":
        npm = which("npm")
        if npm is None:
            raise BuildError(
                "This is a Node.js application but npm is not installed on the "
                "host. Install Node.js and npm (apt-get install nodejs npm)."
            )
        verb = "ci" if has_lock else "install"
        return [npm, verb, *(["--omit=dev"] if production else []), "--no-progress"]
    program = _program(name, step, which)
    if name == "yarn":
        frozen = ["--frozen-lockfile"] if has_lock else []
        flags = ["--production"] if production else []
        return [*program, "install", *frozen, *flags, "--non-interactive", "--no-progress"]
    frozen = ["--frozen-lockfile"] if has_lock else []
    return [*program, "install", *frozen, *(["--prod"] if production else [])]


def _program(name: str, step: DependencyStep, which: Callable[[str], str | None]) -> list[str]:
    spec = step.manager if "@" in step.manager else f"{name}@latest"
    for candidate in (name, "yarnpkg") if name == "yarn" else (name,):
        found = which(candidate)
        if found is not None:
            return [found]
    npx = which("npx")
    if npx is not None:
        return [npx, "--yes", spec]
    corepack = which("corepack")
    if corepack is not None:
        return [corepack, spec]
    install = (
        "apt-get install yarnpkg, or npm install -g yarn"
        if name == "yarn"
        else ("npm install -g pnpm")
    )
    raise BuildError(
        f"This application's dependencies are locked with {name} ({step.manifest}) but this "
        f"host has neither {name} nor npx nor corepack to run it: install {name} ({install}), "
        "or ship a package-lock.json (npm install) instead."
    )


def default_command(app_dir: Path) -> str:
    scripts = _package(app_dir).get("scripts")
    if isinstance(scripts, dict) and scripts.get("start"):
        return "npm start"
    for entry in ("app.js", "server.js"):
        if (app_dir / entry).is_file():
            return f"node {entry}"
    raise BundleError(
        "package.json has no 'start' script and there is no app.js or server.js. "
        'Add "scripts": {"start": "node <file>"} to package.json, or a Procfile.'
    )
