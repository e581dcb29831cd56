"""Bundles written for EB's Docker platform: what runs them, read from their files (pure).

A ``Dockerfile`` is built once per version into an image; a ``Dockerrun.aws.json``
(version 1) names an image to run and its port, or, beside a Dockerfile, only the port. The
container port comes from the files (``Ports``, then ``EXPOSE``), else 8080, and ``PORT``
is set to it. They run only where the server runs containers (``--runtime docker``); where
it does not, a bundle with other platform files runs on that platform with a warning, and
one with only Docker's files is refused with what to do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from beanpole.core.errors import BundleError

MARKERS = ("Dockerfile", "Dockerrun.aws.json", "docker-compose.yml")
#: EB's Docker platform proxies to the container's port 8080 when the files name none.
DEFAULT_PORT = 8080

RUNNABLE = (
    "a Procfile whose web line starts the app on $PORT, or the files of a platform Beanpole "
    "runs at the bundle's root (requirements.txt, Pipfile or pyproject.toml for Python; "
    "package.json for Node.js; index.html for a static site)"
)
NO_RUNTIME = (
    "this server does not run containers: start it with `beanpole server start --runtime "
    "docker` (scripts/bootstrap.sh --docker installs Docker's engine; docs/docker.md)"
)
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class DockerSource:
    """Where a Docker version's image comes from, and the port its container listens on."""

    build: bool  # True: build the bundle's Dockerfile; False: run ``image`` as it is
    image: str  # the image to run when not built (Dockerrun's Image.Name), else ""
    port: int  # 0: the files name none; the image's own EXPOSE decides, else `DEFAULT_PORT`
    notes: tuple[str, ...] = ()  # what was ignored, for WARN events


def markers(app_dir: Path) -> list[str]:
    """The Docker platform's files at the bundle's root."""
    return [name for name in MARKERS if (app_dir / name).is_file()]


def unavailable(found: list[str]) -> BundleError:
    """The error for a bundle only Docker could run, on a server that runs no containers."""
    return BundleError(
        f"This bundle is for the Docker platform ({', '.join(found)} found), and {NO_RUNTIME}. "
        f"Or add {RUNNABLE}, and deploy again."
    )


def ignored(found: list[str], platform: str, because: str) -> str:
    """The warning for a bundle that has Docker's files and runs on another platform."""
    return (
        f"{' and '.join(found)} ignored: {NO_RUNTIME}; the app runs on the {platform} "
        f"platform ({because})."
    )


def source(app_dir: Path) -> DockerSource:
    """How to run a bundle of the Docker platform, or a `BundleError` naming the file and
    what to change."""
    found = markers(app_dir)
    dockerfile = app_dir / "Dockerfile"
    if found == ["docker-compose.yml"] or (
        "docker-compose.yml" in found and not dockerfile.is_file()
    ):
        raise BundleError(
            "docker-compose.yml bundles are not supported yet: deploy a Dockerfile, or a "
            "Dockerrun.aws.json (version 1) naming an image, instead."
        )
    notes: list[str] = []
    if "docker-compose.yml" in found:
        notes.append("docker-compose.yml ignored: the Dockerfile is built and run.")
    run = _dockerrun(app_dir / "Dockerrun.aws.json") if "Dockerrun.aws.json" in found else {}
    port = _ports(run) or (_exposed(dockerfile) if dockerfile.is_file() else None)
    for key in ("Volumes", "Logging", "Authentication", "Entrypoint", "Command"):
        if run.get(key):
            notes.append(f"Dockerrun.aws.json's {key} is not supported yet and was ignored.")
    if dockerfile.is_file():
        return DockerSource(True, "", port or 0, tuple(notes))
    image = run.get("Image")
    name = image.get("Name") if isinstance(image, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise BundleError(
            'Dockerrun.aws.json names no image: add "Image": {"Name": "repository:tag"}, or '
            "a Dockerfile beside it."
        )
    return DockerSource(False, name.strip(), port or 0, tuple(notes))


def _dockerrun(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"Dockerrun.aws.json cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(
            f"Dockerrun.aws.json is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}."
        ) from exc
    if not isinstance(data, dict):
        raise BundleError("Dockerrun.aws.json must be a JSON object.")
    version = str(data.get("AWSEBDockerrunVersion", "1"))
    if version != "1":
        raise BundleError(
            f"Dockerrun.aws.json version {version} (several containers, ECS) is not "
            'supported: use version 1 ("AWSEBDockerrunVersion": "1") with one image.'
        )
    return data


def _ports(run: dict[str, object]) -> int | None:
    ports = run.get("Ports")
    if not ports:
        return None
    first = ports[0] if isinstance(ports, list) else None
    value = first.get("ContainerPort") if isinstance(first, dict) else None
    return _port(str(value), 'Dockerrun.aws.json\'s "Ports"[0].ContainerPort')


def _exposed(dockerfile: Path) -> int | None:
    """The first port the Dockerfile's ``EXPOSE`` names (EB proxies to that one)."""
    try:
        text = dockerfile.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = _EXPOSE.search(text)
    if match is None or "$" in match[1]:
        return None
    return _port(match[1].split("/")[0], "the Dockerfile's EXPOSE")


def _port(value: str, where: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise BundleError(f"{where} is {value!r}: give a port number from 1 to 65535.")
    return port
