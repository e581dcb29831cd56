"""The Node.js platform: `npm ci` (or `npm install`) into a cache keyed by the lock file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from beanpole.core.errors import BundleError
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


def dependency_step(
    app_dir: Path, settings: ResolvedSettings, node_version: str
) -> DependencyStep | None:

    if (app_dir / "node_modules").is_dir():
        return None  # shipped with the bundle: EB installs nothing then
    _package(app_dir)
    production = settings.get(NAMESPACE, "NPM_USE_PRODUCTION") == "true"
    manifest = "package-lock.json" if (app_dir / "package-lock.json").is_file() else ""
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        path = app_dir / name
        digest.update(path.read_bytes() if path.is_file() else b"")
        digest.update(b"\0")
    digest.update(f"node {node_version} production={production}".encode())
    return DependencyStep(
        "node",
        digest.hexdigest()[:24],
        manifest or "package.json",
        ("production",) if production else (),
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
