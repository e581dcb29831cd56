"""Bundles written for EB's Docker platform: what runs them, read from their files (pure).

A ``Dockerfile`` is built once per version into an image; a ``Dockerrun.aws.json``
(version 1) names an image to run and its port, or, beside a Dockerfile, only the port. The
container port comes from the files (``Ports``, then ``EXPOSE``), else 8080, and ``PORT``
is set to it. A ``docker-compose.yml`` runs the service EB routes to (the one publishing
port 80) and its companions, all in the instance's network, each reachable from the others
by its service name. They run under Docker wherever its engine answers, whatever the server's
default runtime; where it does not, a bundle with other platform files runs on that platform
with a warning, and one with only Docker's files is refused with what to do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

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
    "this server does not run containers: Docker's engine does not answer here. Install and "
    "start it with `scripts/bootstrap.sh --docker` (docs/docker.md), then restart the server "
    "(beanpole server stop, beanpole server start)"
)
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Volume:
    """A host folder in a container, as the bundle names it: ``source`` is EB's host path
    (``/var/app/current/…`` is the bundle's own files), a path of the bundle (compose's
    ``./data``), a compose volume's name, or "" (an anonymous volume); `volume_folder` says
    which folder of this host it is."""

    source: str
    target: str
    read_only: bool = False

    @property
    def in_bundle(self) -> PurePosixPath | None:
        """Its path in the bundle's files when it is one of their folders (EB's
        ``/var/app/current/…``, or compose's ``./…``), else None."""
        pure = PurePosixPath(self.source)
        if self.source and not pure.is_absolute():
            in_bundle = self.source.startswith(".") or "/" in self.source
            return PurePosixPath(*[p for p in pure.parts if p != "."]) if in_bundle else None
        for base in _APP_FOLDERS:
            if pure == base or base in pure.parents:
                return pure.relative_to(base)
        return None


@dataclass(frozen=True)
class ComposeService:
    """One service of a docker-compose.yml: built from ``context`` or run from ``image``."""

    name: str
    context: str = ""  # relative to the bundle's root; "" when it runs ``image``
    dockerfile: str = "Dockerfile"
    image: str = ""
    command: tuple[str, ...] = ()  # () : the image's own
    env: tuple[tuple[str, str], ...] = ()
    depends_on: tuple[str, ...] = ()
    volumes: tuple[Volume, ...] = ()


@dataclass(frozen=True)
class DockerSource:
    """Where a Docker version's image comes from, and the port its container listens on."""

    build: bool  # True: build the bundle's Dockerfile; False: run ``image`` as it is
    image: str  # the image to run when not built (Dockerrun's Image.Name), else ""
    port: int  # 0: the files name none; the image's own EXPOSE decides, else `DEFAULT_PORT`
    notes: tuple[str, ...] = ()  # what was ignored, for WARN events
    # docker-compose.yml: every service in start order (dependencies first), and the one
    # that gets the traffic; empty otherwise
    services: tuple[ComposeService, ...] = ()
    web: str = ""
    volumes: tuple[Volume, ...] = ()  # Dockerrun.aws.json's Volumes (compose: per service)
    logging: str = ""  # Dockerrun.aws.json's Logging: the container folder of its log files

    def writes_its_bundle(self) -> bool:
        """Whether a container may write into the bundle's files (a writable volume of it)."""
        every = (*self.volumes, *(v for s in self.services for v in s.volumes))
        return any(v.in_bundle is not None and not v.read_only for v in every)

    def volumes_of(self, service: str) -> tuple[Volume, ...]:
        """The volumes of the routed container ("web") or of a compose service."""
        if not self.services:
            return self.volumes
        name = self.web if service == "web" else service
        return next((s.volumes for s in self.services if s.name == name), ())


def markers(app_dir: Path) -> list[str]:
    """The Docker platform's files at the bundle's root."""
    return [name for name in MARKERS if (app_dir / name).is_file()]


def unavailable(found: list[str]) -> BundleError:
    """The error for a bundle only Docker could run, on a server that runs no containers."""
    return BundleError(
        f"This bundle is for the Docker platform ({', '.join(found)} found), and {NO_RUNTIME}. "
        f"Or add {RUNNABLE}, and deploy again."
    )


def ignored(found: list[str], platform: str, because: str, containers: bool = False) -> str:
    """The warning for a bundle that has Docker's files and runs on another platform
    (``containers``: the engine is there, and the bundle's other files won)."""
    if containers:
        return (
            f"{' and '.join(found)} ignored: the app runs on the {platform} platform "
            f"({because}). To build and run it from its Docker files instead, create the "
            "environment with --platform docker (or start the server with --runtime docker)."
        )
    return (
        f"{' and '.join(found)} ignored: {NO_RUNTIME}; the app runs on the {platform} "
        f"platform ({because})."
    )


def source(app_dir: Path) -> DockerSource:
    """How to run a bundle of the Docker platform, or a `BundleError` naming the file and
    what to change."""
    found = markers(app_dir)
    dockerfile = app_dir / "Dockerfile"
    if "docker-compose.yml" in found:
        # EB's Docker platform runs the compose file when the bundle has one
        return compose(app_dir / "docker-compose.yml")
    notes: list[str] = []
    run = _dockerrun(app_dir / "Dockerrun.aws.json") if "Dockerrun.aws.json" in found else {}
    port = _ports(run) or (_exposed(dockerfile) if dockerfile.is_file() else None)
    for key in ("Authentication", "Entrypoint", "Command"):
        if run.get(key):
            notes.append(f"Dockerrun.aws.json's {key} is not supported yet and was ignored.")
    volumes, logging = _dockerrun_volumes(run), _dockerrun_logging(run)
    if dockerfile.is_file():
        return DockerSource(True, "", port or 0, tuple(notes), volumes=volumes, logging=logging)
    image = run.get("Image")
    name = image.get("Name") if isinstance(image, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise BundleError(
            'Dockerrun.aws.json names no image: add "Image": {"Name": "repository:tag"}, or '
            "a Dockerfile beside it."
        )
    return DockerSource(
        False, name.strip(), port or 0, tuple(notes), volumes=volumes, logging=logging
    )


def _dockerrun_volumes(run: dict[str, object]) -> tuple[Volume, ...]:
    raw = run.get("Volumes") or []
    if not isinstance(raw, list):
        raise BundleError(
            "Dockerrun.aws.json's Volumes must be a list of "
            '{"HostDirectory": "/var/app/mydb", "ContainerDirectory": "/etc/mysql"}.'
        )
    out = []
    for index, entry in enumerate(raw):
        host = entry.get("HostDirectory") if isinstance(entry, dict) else None
        container = entry.get("ContainerDirectory") if isinstance(entry, dict) else None
        if not (isinstance(host, str) and host.startswith("/")) or not isinstance(container, str):
            raise BundleError(
                f"Dockerrun.aws.json's Volumes[{index}] needs HostDirectory and "
                "ContainerDirectory, both absolute paths "
                '({"HostDirectory": "/var/app/mydb", "ContainerDirectory": "/etc/mysql"}).'
            )
        out.append(
            Volume(_host_path(host, f"Volumes[{index}]"), _target(container, f"Volumes[{index}]"))
        )
    return tuple(out)


def _dockerrun_logging(run: dict[str, object]) -> str:
    logging = run.get("Logging")
    if logging in (None, ""):
        return ""
    if not isinstance(logging, str):
        raise BundleError(
            "Dockerrun.aws.json's Logging must be the container folder of its log files, "
            'such as "/var/log/nginx".'
        )
    return _target(logging, "Logging")


def _target(path: str, where: str) -> str:
    """A container path: absolute, no ``..``, not the root."""
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts or str(pure) == "/":
        raise BundleError(
            f"{where}: the container path {path!r} must be an absolute folder other than / "
            "without '..'."
        )
    return str(pure)


def _host_path(path: str, where: str) -> str:
    """A host path as the bundle gives it: absolute (EB's instance), or of the bundle
    (``./data``), without ``..`` leaving it."""
    pure = PurePosixPath(path)
    if ".." in pure.parts:
        raise BundleError(f"{where}: the host path {path!r} must not contain '..'.")
    return path if pure.is_absolute() else f"./{pure}"


#: EB's folders of the deployed bundle on an instance: here, the deployment's app folder.
_APP_FOLDERS = (PurePosixPath("/var/app/current"), PurePosixPath("/var/app/staging"))


def volume_folder(volume: Volume, app_dir: Path, environment_dir: Path, instance_dir: Path) -> Path:
    """Which folder of this host a volume is. EB's host is one instance; here:

    * ``/var/app/current/x`` (and ``staging``), or a path of the bundle (``./x``): that
      folder of the deployment's app folder (the bundle's files, as EB has them there);
    * another absolute path (``/var/app/mydb``): a folder of the environment's, kept
      across deployments and shared by its instances (``environment_dir/host/…``);
    * a compose volume's name: the environment's too (``environment_dir/named/<name>``);
    * an anonymous volume: a folder of the instance, gone with it.
    """
    source = volume.source
    if not source:
        return instance_dir / volume.target.strip("/").replace("/", "_")
    in_bundle = volume.in_bundle
    if in_bundle is not None:
        return app_dir.joinpath(*in_bundle.parts)
    pure = PurePosixPath(source)
    if pure.is_absolute():
        return environment_dir / "host" / PurePosixPath(*pure.parts[1:])
    return environment_dir / "named" / source


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


#: Keys of a compose service Beanpole carries out; the others are named as ignored.
_SERVICE_KEYS = frozenset(
    {
        "build",
        "image",
        "command",
        "environment",
        "ports",
        "depends_on",
        "expose",
        "restart",
        "volumes",
    }
)


def compose(path: Path) -> DockerSource:
    """A docker-compose.yml's services: the one publishing port 80 gets the traffic (as on
    EB, whose proxy sends to host port 80), its target port is the container port."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"docker-compose.yml cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BundleError(f"docker-compose.yml is not valid YAML{where}: {exc}") from exc
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict) or not services:
        raise BundleError("docker-compose.yml has no services: add a services: section.")
    notes: list[str] = []
    parsed: dict[str, ComposeService] = {}
    web, port = "", 0
    for name, raw in services.items():
        if not isinstance(raw, dict) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", str(name)):
            raise BundleError(
                f"docker-compose.yml's service {name!r} must be a mapping named with lowercase "
                "letters, digits, '_' and '-'."
            )
        parsed[name] = _service(str(name), raw)
        ignored = sorted(set(raw) - _SERVICE_KEYS)
        if ignored:
            notes.append(
                f"docker-compose.yml: service {name}'s {', '.join(ignored)} "
                f"{'is' if len(ignored) == 1 else 'are'} not supported yet and ignored."
            )
        target = _published_80(str(name), raw.get("ports"))
        if target:
            if web:
                raise BundleError(
                    f"docker-compose.yml: services {web} and {name} both publish port 80; "
                    "only one can get the traffic."
                )
            web, port = str(name), target
    if not web:
        raise BundleError(
            "docker-compose.yml: no service publishes port 80, so none would get the traffic "
            '(Elastic Beanstalk routes to the one that does). Add ports: ["80:<its port>"] '
            "to the web service."
        )
    if "web" in parsed and web != "web":
        raise BundleError(
            f"docker-compose.yml: the service called web does not publish port 80 ({web} "
            "does); rename one of them."
        )
    return DockerSource(False, "", port, tuple(notes), _ordered(parsed), web)


def _service(name: str, raw: dict[str, object]) -> ComposeService:
    build, image = raw.get("build"), raw.get("image")
    context, dockerfile = "", "Dockerfile"
    if isinstance(build, str):
        context = build
    elif isinstance(build, dict):
        context = str(build.get("context") or ".")
        dockerfile = str(build.get("dockerfile") or "Dockerfile")
    elif build is not None:
        raise BundleError(
            f"docker-compose.yml: service {name}'s build must be a path or a mapping."
        )
    if not context and not isinstance(image, str):
        raise BundleError(
            f"docker-compose.yml: service {name} has neither build nor image: add one."
        )
    if context and (Path(context).is_absolute() or ".." in Path(context).parts):
        raise BundleError(
            f"docker-compose.yml: service {name}'s build context {context!r} must be a folder "
            "inside the bundle."
        )
    command = raw.get("command")
    if isinstance(command, str):
        argv: tuple[str, ...] = ("/bin/sh", "-c", command)
    elif isinstance(command, list):
        argv = tuple(str(a) for a in command)
    else:
        argv = ()
    environment = raw.get("environment") or {}
    if isinstance(environment, list):
        pairs = [str(item).partition("=") for item in environment]
        env = tuple((k, v) for k, _, v in pairs)
    elif isinstance(environment, dict):
        env = tuple((str(k), "" if v is None else str(v)) for k, v in environment.items())
    else:
        raise BundleError(
            f"docker-compose.yml: service {name}'s environment must be a list or a mapping."
        )
    depends = raw.get("depends_on") or ()
    depends_on = tuple(str(d) for d in (depends if isinstance(depends, list | dict) else ()))
    return ComposeService(
        name,
        context,
        dockerfile,
        str(image) if context == "" else "",
        argv,
        env,
        depends_on,
        _compose_volumes(name, raw.get("volumes")),
    )


def _compose_volumes(name: str, raw: object) -> tuple[Volume, ...]:
    """A service's ``volumes``: ``source:target[:ro]``, ``target`` (anonymous), or the long
    form (``type``, ``source``, ``target``, ``read_only``)."""
    where = f"docker-compose.yml: service {name}'s volumes"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BundleError(f"{where} must be a list.")
    out = []
    for entry in raw:
        if isinstance(entry, dict):
            source = str(entry.get("source") or "")
            target = str(entry.get("target") or "")
            read_only = bool(entry.get("read_only", False))
            if entry.get("type", "volume") not in ("volume", "bind"):
                raise BundleError(
                    f"{where}: type {entry.get('type')!r} is not supported; use volume or bind."
                )
        else:
            parts = str(entry).split(":")
            if len(parts) == 1:
                source, target, mode = "", parts[0], ""
            elif len(parts) in (2, 3):
                source, target, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
            else:
                raise BundleError(f"{where}: {entry!r} is not source:target[:ro].")
            read_only = "ro" in mode.split(",")
        if not target:
            raise BundleError(f"{where}: an entry has no target (the path in the container).")
        if source and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", source):
            source = _host_path(source, where)
        out.append(Volume(source, _target(target, where), read_only))
    return tuple(out)


def _published_80(name: str, ports: object) -> int:
    """The target port of the service's mapping of host port 80, or 0."""
    for entry in ports if isinstance(ports, list) else ():
        if isinstance(entry, dict):
            published, target = str(entry.get("published", "")), str(entry.get("target", ""))
        else:
            parts = str(entry).split("/")[0].split(":")
            if len(parts) < 2:
                continue
            published, target = parts[-2], parts[-1]
        if published == "80":
            return _port(target, f"docker-compose.yml: service {name}'s port 80 target")
    return 0


def _ordered(services: dict[str, ComposeService]) -> tuple[ComposeService, ...]:
    """Dependencies first (depends_on); a cycle or an unknown name is an error."""
    done: dict[str, ComposeService] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise BundleError(
                f"docker-compose.yml: depends_on forms a cycle: {' -> '.join((*path, name))}."
            )
        if name not in services:
            raise BundleError(
                f"docker-compose.yml: {path[-1]} depends on {name}, which is not a service."
            )
        for dep in services[name].depends_on:
            visit(dep, (*path, name))
        done[name] = services[name]

    for name in services:
        visit(name, ())
    return tuple(done.values())
