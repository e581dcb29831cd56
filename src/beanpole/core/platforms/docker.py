"""Bundles written for EB's Docker platform, which Beanpole cannot run yet (a later issue adds
a Docker runtime): what says so, and the messages that say what to do instead."""

from __future__ import annotations

from pathlib import Path

from beanpole.core.errors import BundleError

MARKERS = ("Dockerfile", "Dockerrun.aws.json", "docker-compose.yml")

RUNNABLE = (
    "a Procfile whose web line starts the app on $PORT, or the files of a platform Beanpole "
    "runs at the bundle's root (requirements.txt, Pipfile or pyproject.toml for Python; "
    "package.json for Node.js; index.html for a static site)"
)


def markers(app_dir: Path) -> list[str]:
    """The Docker platform's files at the bundle's root."""
    return [name for name in MARKERS if (app_dir / name).is_file()]


def unavailable(found: list[str]) -> BundleError:
    """The error for a bundle only Docker could run."""
    return BundleError(
        f"This bundle is for the Docker platform ({', '.join(found)} found). Beanpole's Docker "
        f"runtime is not available yet: add {RUNNABLE}, and deploy again."
    )


def ignored(found: list[str], platform: str, because: str) -> str:
    """The warning for a bundle that has Docker's files and runs on another platform."""
    return (
        f"{' and '.join(found)} ignored: Beanpole's Docker runtime is not available yet, so "
        f"the app runs on the {platform} platform ({because})."
    )
