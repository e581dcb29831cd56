"""What a build produces, as data: the plan `detect` returns and `adapters.build` carries out.

Its own module so that each platform (python, node, static) can return part of a plan
without importing `detect`, which imports them: the plan is the vocabulary they share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from beanpole.core.platforms.docker import ComposeService, DockerSource, Volume

# What `beanpole create --platform` accepts (EB environments name theirs), and what a plan's
# platform is called there.
PLATFORMS = ("python", "node", "static", "docker", "procfile")
PLATFORM_NAMES = {
    "python": "python",
    "nodejs": "node",
    "static": "static",
    "procfile": "procfile",
    "docker": "docker",
}


@dataclass(frozen=True)
class DependencyStep:
    """Install dependencies into a cache directory keyed by the lock file's hash."""

    kind: str  # "python" | "node"
    cache_key: str  # hash of what determines the result (lock file, tool versions, flags)
    manifest: str  # the file it installs from, relative to the app (requirements.txt …)
    extra: tuple[str, ...] = ()  # packages Beanpole supplies (gunicorn)
    # Python: the requirements to install when they are not the manifest itself (Pipfile.lock
    # converted by `pipfile`); Node.js: the package manager and the version to fetch when the
    # host has none ("npm", "yarn@1", "pnpm@9"); empty otherwise
    requirements: str = ""
    manager: str = ""


@dataclass(frozen=True)
class BuildPlan:
    platform: str  # "python" | "nodejs" | "static" | "procfile" | "docker"
    processes: dict[str, str]  # Procfile name -> shell command; "web" receives traffic
    dependencies: DependencyStep | None = None
    buildfile: dict[str, str] = field(default_factory=dict)
    default_port: int = 5000  # EB's PORT default; instances get their own PORT anyway
    notes: tuple[str, ...] = ()  # what Beanpole changed or assumed, for the deploy's events
    warnings: tuple[str, ...] = ()  # what it ignored (a Dockerfile), for WARN events
    docker: DockerSource | None = None  # the Docker platform: the image and its port

    def to_json(self) -> str:
        return json.dumps(
            {
                "platform": self.platform,
                "processes": self.processes,
                "dependencies": None
                if self.dependencies is None
                else {
                    "kind": self.dependencies.kind,
                    "cache_key": self.dependencies.cache_key,
                    "manifest": self.dependencies.manifest,
                    "extra": list(self.dependencies.extra),
                    "requirements": self.dependencies.requirements,
                    "manager": self.dependencies.manager,
                },
                "buildfile": self.buildfile,
                "default_port": self.default_port,
                "notes": list(self.notes),
                "warnings": list(self.warnings),
                "docker": None
                if self.docker is None
                else {
                    "build": self.docker.build,
                    "image": self.docker.image,
                    "port": self.docker.port,
                    "notes": list(self.docker.notes),
                    "services": [
                        {
                            "name": c.name,
                            "context": c.context,
                            "dockerfile": c.dockerfile,
                            "image": c.image,
                            "command": list(c.command),
                            "env": [list(pair) for pair in c.env],
                            "depends_on": list(c.depends_on),
                            "volumes": [_volume_json(v) for v in c.volumes],
                        }
                        for c in self.docker.services
                    ],
                    "web": self.docker.web,
                    "volumes": [_volume_json(v) for v in self.docker.volumes],
                    "logging": self.docker.logging,
                },
            }
        )

    @classmethod
    def from_json(cls, text: str) -> BuildPlan:
        data = json.loads(text)
        deps = data["dependencies"]
        return cls(
            platform=data["platform"],
            processes=data["processes"],
            dependencies=None
            if deps is None
            else DependencyStep(
                deps["kind"],
                deps["cache_key"],
                deps["manifest"],
                tuple(deps["extra"]),
                deps.get("requirements", ""),
                deps.get("manager", ""),
            ),
            buildfile=data["buildfile"],
            default_port=data["default_port"],
            notes=tuple(data.get("notes", ())),
            warnings=tuple(data.get("warnings", ())),
            docker=None
            if not data.get("docker")
            else DockerSource(
                bool(data["docker"]["build"]),
                str(data["docker"]["image"]),
                int(data["docker"]["port"]),
                tuple(data["docker"].get("notes", ())),
                tuple(
                    ComposeService(
                        c["name"],
                        c["context"],
                        c["dockerfile"],
                        c["image"],
                        tuple(c["command"]),
                        tuple((k, v) for k, v in c["env"]),
                        tuple(c["depends_on"]),
                        tuple(Volume(*v) for v in c.get("volumes", ())),
                    )
                    for c in data["docker"].get("services", ())
                ),
                str(data["docker"].get("web", "")),
                tuple(Volume(*v) for v in data["docker"].get("volumes", ())),
                str(data["docker"].get("logging", "")),
            ),
        )


def _volume_json(volume: Volume) -> list[object]:
    return [volume.source, volume.target, volume.read_only]
