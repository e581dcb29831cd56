"""Build once per version on this host: extract the bundle, install dependencies into caches.

Layout under ``<home>/builds``: each application's builds in a folder of its own, which
only Beanpole and that application's user can enter (`app_folder`), since an application
writes into its build at run time and two applications may upload the same bundle::

    <app id>/                   root, group: the application's user, 0710
    <app id>/<digest>/app/      the extracted bundle, the app user's (every instance of it)
    <app id>/<digest>/stages/<env>-<n>/  deployment n's own copy of it, for a version whose
                                container_commands or hooks change it (`Builder.stage`)
    <app id>/<digest>/build.log every build command's output (and hooks.log, the hooks')
    <app id>/<digest>/.done     written last: the artifact is complete
    <app id>/deps/<kind>/<key>/ its dependencies, installed by its user (when it has one)
    <app id>/cache/             the installs' caches (uv, npm, yarn, pnpm) and HOME
    deps/python/<key>/          without users of their own: a virtualenv, keyed by
                                requirements hash + Python version, shared by manifest
    deps/node/<key>/            node_modules, keyed by the lock file's hash + Node version
    .tools/                     Beanpole's own tools an app user runs (the static platform's
                                file server), when it cannot run Beanpole's Python

An install runs the bundle's code (npm's scripts, a local package's build), so with users of
their own each application installs as its user into its own folder. A code-only deploy
finds its dependency key already built and installs nothing. A home from before
per-application folders keeps its ``<digest>/`` folders while instances run from them
(`legacy_version_dir`); a new build is made under the new layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import stat
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from beanpole.adapters import bundles as bundle
from beanpole.adapters.appuser import (
    AppUsers,
    application_key,
    can_run,
    hand_over,
    reachable,
    subprocess_kwargs,
)
from beanpole.adapters.lifecycle import SHELL, StepRunner, find_hooks
from beanpole.adapters.runtime import static_server
from beanpole.core.bundle_steps import Kind, Phase, Steps, eb_command, phase_plan
from beanpole.core.errors import BeanpoleError, BuildError
from beanpole.core.model import Application
from beanpole.core.platforms import BuildPlan, DependencyStep, detect, node, python
from beanpole.core.runtime import Companion, RunAs
from beanpole.core.settings import ResolvedSettings
from beanpole.ports import Images

#: Under ``<home>/builds``: copies of Beanpole's own tools for app users (`Builder._runnable`).
TOOLS = ".tools"

TAIL_LINES = 50
_BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Artifact:
    """What an instance starts from."""

    app_dir: Path
    plan: BuildPlan
    path_prefix: tuple[str, ...]  # folders put before PATH (the venv's bin, node_modules/.bin)
    env: dict[str, str]  # extra variables (VIRTUAL_ENV …)
    run_as: RunAs | None = None  # the app user its commands and processes run as
    image: str = ""  # the Docker platform: the image its instances run
    # docker-compose: the routed service's command and environment, and the other services
    command: tuple[str, ...] = ()
    image_env: Mapping[str, str] = field(default_factory=dict)
    companions: tuple[Companion, ...] = ()
    deps_dir: Path | None = None  # the dependencies' folder (a virtualenv's, node_modules')
    tools_dir: Path | None = None  # Beanpole's tools its commands run (`Builder._runnable`)

    @property
    def build_dirs(self) -> tuple[Path, ...]:
        """The folders its processes run from (`InstanceSpec.build_dirs`): the tools', the
        dependencies', then the app's; none for an image."""
        if self.image:
            return ()
        return tuple(p for p in (self.tools_dir, self.deps_dir, self.app_dir) if p is not None)

    def process_env(self, properties: Mapping[str, str]) -> dict[str, str]:
        """The environment every process of an instance gets (before PORT and the id)."""
        base = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "HOME")}
        if self.run_as is not None:  # root's HOME is not the app user's to use
            base.update(HOME=str(self.app_dir), USER=self.run_as.name, LOGNAME=self.run_as.name)
        base.setdefault("HOME", str(self.app_dir))
        path = ":".join((*self.path_prefix, _tool_path(self.run_as)))
        return {**base, "PATH": path, "PYTHONUNBUFFERED": "1", **self.env, **properties}


def _tool_path(run_as: RunAs | None = None) -> str:
    """The server's PATH keeps node/npm/uv findable; our own interpreter's folder comes first.
    For the app user, only the folders it can reach (root's own tools may live under /root)."""
    folders = dict.fromkeys(
        [str(Path(sys.executable).parent), *os.environ.get("PATH", _BASE_PATH).split(":")]
    )
    return ":".join(f for f in folders if f and reachable(Path(f), run_as))


def app_python(run_as: RunAs | None) -> str:
    """The interpreter applications' virtualenvs are made from: Beanpole's own, unless the
    app user cannot run it (a Python installed under /root); then the system's of the same
    version (Debian's python3), which every user can run."""
    ours = Path(sys.executable)
    if can_run(ours, run_as):
        return str(ours)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if can_run(Path(candidate), run_as):
            return candidate
    raise BuildError(
        f"The application user cannot run Beanpole's Python ({ours.resolve()}) and there is "
        f"no {version} it can run in /usr/bin or /usr/local/bin. Install one from the "
        f"distribution (apt-get install {version}) or run Beanpole from a Python outside "
        "root's home."
    )


def version_dir(builds: Path, app: Application, digest: str) -> Path:
    """The folder of an application's build of a bundle (see the layout above)."""
    return builds / application_key(app) / digest


def legacy_version_dir(builds: Path, digest: str) -> Path:
    """Where a home from before per-application folders built a bundle (every application
    of that bundle shared it)."""
    return builds / digest


def existing_version_dir(builds: Path, app: Application, digest: str) -> Path:
    """The version's build folder: the new one, or a legacy one instances of it may still
    run from (after an upgrade, until the next deploy builds it anew)."""
    new = version_dir(builds, app, digest)
    legacy = legacy_version_dir(builds, digest)
    # the new one once its build is whole: until then instances run from the legacy one
    return legacy if not (new / ".done").exists() and legacy.exists() else new


def staged_deployments(builds: Path) -> dict[tuple[str, int], Path]:
    """The (environment id, deployment id) that have a folder of their own under ``builds``
    (`Builder.stage`), and that folder (in either layout)."""
    out = {}
    for stage in (*builds.glob("*/stages/*"), *builds.glob("*/*/stages/*")):
        env_id, _, number = stage.name.rpartition("-")
        if number.isdigit() and not stage.name.startswith(".") and _made_by_us(stage):
            out[(env_id, int(number))] = stage
    return out


def _made_by_us(stage: Path) -> bool:
    """Whether ``stage`` is a folder `Builder.stage` made: a real folder in a ``stages``
    folder of Beanpole's own. The glob above also reaches folders the app user owns (its
    caches), where its processes could plant a ``stages/<env>-<n>`` link to anywhere, which
    the static file server (root) would then serve."""
    try:
        parent, own = stage.parent.lstat(), stage.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(parent.st_mode) and parent.st_uid == os.geteuid() and stat.S_ISDIR(own.st_mode)
    )


def app_folder(builds: Path, app: Application, run_as: RunAs | None) -> Path:
    """The application's folder under ``builds``, made when missing: Beanpole's, entered by
    the application's user through its group (0710), by nobody else. Not the app user's own:
    Beanpole (root) writes logs and markers in it, which the app must not be able to turn
    into links to elsewhere."""
    folder = builds / application_key(app)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if run_as is None:
        folder.chmod(0o700)
        return folder
    info = folder.stat()
    if info.st_gid != run_as.gid or info.st_uid != os.geteuid():
        os.chown(folder, os.geteuid(), run_as.gid)
    folder.chmod(0o710)
    return folder


class Builder:
    def __init__(
        self,
        home: Path,
        users: AppUsers | None = None,
        images: Images | None = None,
        *,
        prefer_containers: bool = False,
        reveal: Callable[[Mapping[str, str]], dict[str, str]] = dict,
    ) -> None:
        self.root = home / "builds"
        # environment properties -> what a process gets: secrets opened (`services.secrets`)
        self.reveal = reveal
        # each application's user: owns its staged app, runs its bundle's commands
        self.users = users or AppUsers(home, enabled=False)
        # where versions of the Docker platform get their image (None: no containers here)
        self.images = images
        # the server's default runtime is Docker: a Dockerfile beside other platforms' files
        # chooses the Docker platform (`core.platforms.detect`)
        self.prefer_containers = prefer_containers
        self.cache = home / "cache"
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._node_version: str | None = None

    async def node_version(self) -> str:
        if self._node_version is None:
            node = shutil.which("node")
            if node is None:
                self._node_version = ""
            else:
                proc = await asyncio.create_subprocess_exec(
                    node, "--version", stdout=asyncio.subprocess.PIPE
                )
                out, _ = await proc.communicate()
                self._node_version = out.decode().strip()
        return self._node_version

    async def run_as(self, app: Application) -> RunAs | None:
        """The user the application's commands and processes run as (None: as Beanpole)."""
        return await asyncio.to_thread(self.users.of, app)

    def version_dir(self, app: Application, digest: str) -> Path:
        return version_dir(self.root, app, digest)

    async def build(
        self,
        app: Application,
        digest: str,
        bundle_path: Path,
        settings: ResolvedSettings,
        platform: str | None = None,
        steps: Steps | None = None,
        *,
        containers: bool = True,
        report: Callable[[str, bool], None] = lambda message, warn: None,
    ) -> Artifact:
        """Return the artifact for this version, building whatever is missing; ``platform``
        is the one the environment names (None: detected from the bundle).

        EB's order: extract, ``.ebextensions`` files and commands, prebuild hooks (once per
        version: `_prebuild`), then dependencies and the Buildfile. ``report`` names each
        step in an event (message, is a warning). ``containers``: Docker's files may choose
        the Docker platform (False for a version an earlier build ran on another platform).
        """
        run_as = await self.run_as(app)
        await asyncio.to_thread(app_folder, self.root, app, run_as)
        workdir = self.version_dir(app, digest)
        app_dir = workdir / "app"
        steps = steps or Steps()
        async with self._locks[str(workdir)]:
            if not (workdir / ".extracted").exists():
                if app_dir.exists():
                    shutil.rmtree(app_dir)
                for marker in (".prebuild-done", ".buildfile-done", ".done"):
                    (workdir / marker).unlink(missing_ok=True)
                workdir.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(bundle.extract, bundle_path, app_dir)
                # The app's own commands write into it (collectstatic, a SQLite database).
                await asyncio.to_thread(hand_over, app_dir, run_as)
                (workdir / ".extracted").touch()
            elif run_as is not None and app_dir.stat().st_uid != run_as.uid:
                # extracted for another user ($BEANPOLE_APP_USER changed)
                await asyncio.to_thread(hand_over, app_dir, run_as)
            log = workdir / "build.log"
            if not (workdir / ".prebuild-done").exists():
                try:
                    await self._prebuild(app_dir, log, steps, settings, platform, report, run_as)
                except BaseException:
                    # Half-written files and half-run commands: the next try starts afresh.
                    (workdir / ".extracted").unlink(missing_ok=True)
                    raise
                (workdir / ".prebuild-done").touch()
            plan = await self._plan(app_dir, settings, platform, steps, containers, run_as)
            private = plan.dependencies is not None and _changes_its_runtime(app_dir, steps)
            # With users of their own, an application's installs run as its user (they run
            # the bundle's code: npm's scripts, a local package's build), into folders of its
            # own; without, they share one cache by manifest.
            deps_root = self.root / "deps" if run_as is None else workdir.parent / "deps"
            if plan.dependencies is not None and private:
                # container_commands and hooks may install into the virtualenv (pip install
                # -r backend/requirements.txt): a version of its own, never shared with the
                # running instances of another version, in the application's own folder.
                deps = plan.dependencies
                plan = replace(
                    plan, dependencies=replace(deps, cache_key=f"{deps.cache_key}-{digest[:16]}")
                )
                deps_root = workdir.parent / "deps"
            path_prefix: tuple[str, ...] = ()
            env: dict[str, str] = {}
            deps_dir: Path | None = None
            if plan.dependencies is not None:
                path_prefix, env = await self._dependencies(
                    plan.dependencies, app_dir, log, deps_root, run_as
                )
                target = deps_root / plan.dependencies.kind / plan.dependencies.cache_key
                deps_dir = target
                if private and run_as is not None and target.stat().st_uid != run_as.uid:
                    # the app user's container_commands install into it
                    await asyncio.to_thread(hand_over, target, run_as)
            if plan.buildfile and not (workdir / ".buildfile-done").exists():
                artifact_env = Artifact(app_dir, plan, path_prefix, env, run_as).process_env({})
                for name, command in plan.buildfile.items():
                    line = eb_command(command, str(app_dir), env.get("VIRTUAL_ENV", ""))
                    await _run(
                        [SHELL, "-c", line],
                        app_dir,
                        log,
                        artifact_env,
                        what=f"Buildfile command {name!r}",
                        run_as=run_as,
                    )
                (workdir / ".buildfile-done").touch()
            images = await self._docker(plan, digest, app_dir, log, report)
            (workdir / ".done").touch()
        if images is not None:
            return replace(images, path_prefix=path_prefix, env=env, run_as=run_as)
        return Artifact(
            app_dir, plan, path_prefix, env, run_as, deps_dir=deps_dir, tools_dir=self._tools(plan)
        )

    async def _docker(
        self,
        plan: BuildPlan,
        digest: str,
        app_dir: Path,
        log: Path,
        report: Callable[[str, bool], None],
    ) -> Artifact | None:
        """The Docker platform's images (None for the other platforms)."""
        if plan.docker is None:
            return None
        if plan.docker.services:
            return await self._compose(plan, digest, app_dir, log, report)
        plan, image = await self._image(plan, digest, app_dir, log, report)
        return Artifact(app_dir, plan, (), {}, image=image)

    async def _compose(
        self,
        plan: BuildPlan,
        digest: str,
        app_dir: Path,
        log: Path,
        report: Callable[[str, bool], None],
    ) -> Artifact:
        """Every service's image (built ones once per version, named by the digest and the
        service), the routed one's command and environment, the others as companions."""
        source = plan.docker
        assert source is not None and self.images is not None
        made: dict[str, str] = {}
        for service in source.services:
            if service.context:
                tag = f"beanpole/version:{digest[:32]}-{service.name}"
                marker = app_dir.parent / f".image-built-{service.name}"
                if not marker.exists():
                    report(f"Building the Docker image of service {service.name}.", False)
                context = await asyncio.to_thread(_folder_inside, app_dir, service.context)
                if context is None:
                    raise BuildError(
                        f"docker-compose.yml: service {service.name}'s build context "
                        f"{service.context!r} is not a folder of the bundle."
                    )
                made[service.name], _ = await asyncio.to_thread(
                    self.images.build_image, context, tag, log, service.dockerfile
                )
                marker.touch()
            else:
                made[service.name], _ = await asyncio.to_thread(
                    self.images.ensure_image, service.image, log
                )
        web = next(s for s in source.services if s.name == source.web)
        companions = tuple(
            Companion(s.name, made[s.name], s.command, dict(s.env))
            for s in source.services
            if s.name != source.web
        )
        return Artifact(
            app_dir,
            plan,
            (),
            {},
            image=made[web.name],
            command=web.command,
            image_env=dict(web.env),
            companions=companions,
        )

    async def _image(
        self,
        plan: BuildPlan,
        digest: str,
        app_dir: Path,
        log: Path,
        report: Callable[[str, bool], None],
    ) -> tuple[BuildPlan, str]:
        """The version's image: its Dockerfile built once (the image is kept by the engine,
        named by the bundle's digest), or the image its Dockerrun.aws.json names. The port
        the files named, else the image's first EXPOSE, else 8080."""
        source = plan.docker
        assert source is not None and self.images is not None
        if source.build:
            tag = f"beanpole/version:{digest[:32]}"
            if not (app_dir.parent / ".image-built").exists():
                report("Building the Docker image (docker build).", False)
            image, exposed = await asyncio.to_thread(self.images.build_image, app_dir, tag, log)
            (app_dir.parent / ".image-built").touch()
        else:
            image, exposed = await asyncio.to_thread(self.images.ensure_image, source.image, log)
        port = source.port or exposed or plan.default_port
        return replace(plan, default_port=port), image

    async def _plan(
        self,
        app_dir: Path,
        settings: ResolvedSettings,
        platform: str | None,
        steps: Steps,
        containers: bool = True,
        run_as: RunAs | None = None,
    ) -> BuildPlan:
        plan = detect(
            app_dir,
            settings,
            await self.node_version(),
            platform,
            self.images is not None and (containers or platform == "docker"),
            self.prefer_containers,
        )
        if plan.dependencies is None and plan.platform == "procfile":
            plan = _with_python_runtime(plan, app_dir, steps)
        return self._runnable(plan, run_as)

    # a deployment's own folder ----------------------------------------------------------

    def stage_dir(self, app: Application, digest: str, env_id: str, deployment_id: int) -> Path:
        return self.version_dir(app, digest) / "stages" / f"{env_id}-{deployment_id}"

    def existing_stage(
        self, app: Application, digest: str, env_id: str, deployment_id: int
    ) -> Path | None:
        """The deployment's own folder if it has one: in the application's folder, or in the
        shared one of a home from before per-application folders (handed over to the
        application's user, whose instances start from it now)."""
        stage = self.stage_dir(app, digest, env_id, deployment_id)
        if stage.is_dir():
            return stage
        legacy = legacy_version_dir(self.root, digest) / "stages" / stage.name
        if not legacy.is_dir():
            return None
        run_as = self.users.of(app)
        if run_as is not None and legacy.stat().st_uid != run_as.uid:
            hand_over(legacy, run_as)
        return legacy

    def changed_by_deployments(self, app_dir: Path, steps: Steps) -> bool:
        """Whether deploying this version runs anything in its folder: container_commands,
        or an executable hook of a deployment's phases (of either kind)."""
        if steps.container_commands:
            return True
        return any(
            hook.executable
            for kind in Kind
            for phase in Phase
            if (kind, phase) != (Kind.APPLICATION, Phase.PREBUILD)  # the build's own
            for hook in find_hooks(app_dir, kind, phase)
        )

    async def stage(
        self, source: Path, app: Application, digest: str, env_id: str, deployment_id: int
    ) -> Path:
        """A copy of ``source`` for one deployment of an environment, where its steps run and
        its instances start: steps never change a folder that running instances (of this
        environment or another) use, and a failed deployment leaves nothing behind in them.

        An application deployment copies the version's build; a configuration deployment
        the folder of the deployment it follows (what its container_commands left, as EB's
        configuration deployments run in the app's current folder). Copied with
        ``cp -a``: modes and symlinks kept, reflinks where the filesystem has them; as the
        app user when it has one (its running instances may change the folder while it is
        copied: a folder swapped for a link must lead only where that user may read), root
        otherwise (owners kept).
        """
        run_as = await self.run_as(app)
        target = self.stage_dir(app, digest, env_id, deployment_id)
        tmp = target.with_name(f".tmp-{target.name}")
        for stale in (tmp, target):  # an interrupted or failed try of this deployment
            if stale.exists():
                await asyncio.to_thread(shutil.rmtree, stale)
        target.parent.mkdir(parents=True, exist_ok=True)
        argv = ["cp", "-a", "--reflink=auto", str(source), str(tmp)]
        if run_as is not None:
            tmp.mkdir(mode=0o700)
            os.chown(tmp, run_as.uid, run_as.gid)
            argv[-2:] = [f"{source}/.", f"{tmp}/"]  # into the folder made for it
        proc = await asyncio.create_subprocess_exec(
            *argv, stderr=asyncio.subprocess.PIPE, **subprocess_kwargs(run_as)
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
            raise BuildError(
                f"Could not copy the application's folder for the deployment: "
                f"{err.decode(errors='replace').strip()} (is the disk of {self.root} full?)"
            )
        tmp.rename(target)
        return target

    def prune_stages(self, env_id: str, keep: Collection[int]) -> None:
        """Remove an environment's deployment folders but those of ``keep`` (in either
        layout)."""
        pattern = f"stages/*{env_id}-*"
        for stage in (*self.root.glob(f"*/{pattern}"), *self.root.glob(f"*/*/{pattern}")):
            owner, _, number = stage.name.rpartition("-")
            if owner.removeprefix(".tmp-") == env_id and not (
                number.isdigit() and int(number) in keep and owner == env_id
            ):
                shutil.rmtree(stage, ignore_errors=True)

    def step_spawn(self, run_as: RunAs | None) -> dict[str, Any]:
        """The `subprocess` arguments that run a step as the app user."""
        return subprocess_kwargs(run_as)

    async def _prebuild(
        self,
        app_dir: Path,
        log: Path,
        steps: Steps,
        settings: ResolvedSettings,
        platform: str | None,
        report: Callable[[str, bool], None],
        run_as: RunAs | None,
    ) -> None:
        """``.ebextensions`` files and commands, then ``.platform/hooks/prebuild``."""
        hooks = find_hooks(app_dir, Kind.APPLICATION, Phase.PREBUILD)
        todo, warnings = phase_plan(Phase.PREBUILD, Kind.APPLICATION, steps, hooks)
        for warning in warnings:
            report(warning, True)
        if not todo:
            return
        try:  # PORT is the platform's default; the bundle may not tell yet (commands may)
            port = (
                await self._plan(app_dir, settings, platform, steps, run_as=run_as)
            ).default_port
        except BeanpoleError:
            port = BuildPlan("", {}).default_port
        env = Artifact(app_dir, BuildPlan("", {}), (), {}, run_as).process_env(
            self.reveal(settings.env)
        )
        timeout = settings.int("aws:elasticbeanstalk:command", "Timeout")
        runner = StepRunner(
            app_dir,
            {**env, "PORT": str(port)},
            log,
            time.monotonic() + timeout,
            timeout,
            self.step_spawn(run_as),
            report,
        )
        await runner.run(todo)

    def _tools(self, plan: BuildPlan) -> Path | None:
        """The folder of Beanpole's tools when ``plan``'s processes run one of them."""
        tools = self.root / TOOLS
        return tools if any(str(tools) in c for c in plan.processes.values()) else None

    def _runnable(self, plan: BuildPlan, run_as: RunAs | None) -> BuildPlan:
        """The plan with commands the app user can run: the static platform's file server is
        Beanpole's own module, run by Beanpole's Python, which may be out of its reach; then
        the system's Python runs a copy of the (standard-library only) module."""
        ours = f"{shlex.quote(sys.executable)} -m {static_server.__name__} "
        web = plan.processes.get("web", "")
        if not web.startswith(ours) or can_run(Path(sys.executable), run_as):
            return plan
        tool = self.root / TOOLS / "static_server.py"
        tool.parent.mkdir(exist_ok=True)
        tool.parent.chmod(0o755)
        code = Path(static_server.__file__).read_bytes()
        if not tool.is_file() or tool.read_bytes() != code:
            # replaced whole, never rewritten in place: a running instance may be reading it
            new = tool.with_name(f".{tool.name}.{os.getpid()}.tmp")
            new.unlink(missing_ok=True)
            _write_new(new, code)
            new.replace(tool)
        command = f"{shlex.quote(app_python(run_as))} {shlex.quote(str(tool))} "
        return replace(plan, processes={**plan.processes, "web": command + web[len(ours) :]})

    async def _dependencies(
        self, step: DependencyStep, app_dir: Path, log: Path, root: Path, run_as: RunAs | None
    ) -> tuple[tuple[str, ...], dict[str, str]]:
        """Install into ``root/<kind>/<cache key>`` unless it is there already."""
        target = root / step.kind / step.cache_key
        async with self._locks[str(target)]:
            if not _installed(target):
                if target.exists():
                    shutil.rmtree(target)  # a build that died half-way
                target.mkdir(parents=True)
                for folder in (root, root / step.kind):  # traversable, not listable: the
                    folder.chmod(0o711)  # caches of other applications' manifests stay unseen
                try:
                    if step.kind == "python":
                        await self._python(step, app_dir, target, log, run_as)
                    else:
                        await self._node(step, app_dir, target, log, run_as)
                except BaseException:
                    shutil.rmtree(target, ignore_errors=True)
                    raise
                # beside it, in Beanpole's folder: the install (the app user's) owns target
                _write_new(_install_marker(target), b"")
        if step.kind == "python":
            venv = target / "venv"
            return (str(venv / "bin"),), {"VIRTUAL_ENV": str(venv)}
        link = app_dir / "node_modules"
        modules = target / "node_modules"
        if not (link.is_symlink() and link.resolve() == modules.resolve()):
            tmp = app_dir / ".node_modules.tmp"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(modules)
            tmp.replace(link)
        return (str(modules / ".bin"),), {}

    async def _python(
        self, step: DependencyStep, app_dir: Path, target: Path, log: Path, run_as: RunAs | None
    ) -> None:
        uv = self._tool(shutil.which("uv") or str(Path(sys.executable).parent / "uv"), run_as)
        venv = target / "venv"
        env = {**os.environ, **self._install_env(target, run_as, "uv", UV_CACHE_DIR="uv")}
        # The venv is built where it will live: its scripts' shebangs hold absolute paths.
        # --seed: with pip, so that `pip install` in a container_command is the app's.
        await _run(
            [uv, "venv", "--quiet", "--seed", "--python", app_python(run_as), str(venv)],
            app_dir,
            log,
            env,
            what="Creating the virtualenv",
            run_as=run_as,
        )
        install = [uv, "pip", "install", "--python", str(venv / "bin" / "python")]
        if step.requirements:  # Pipenv's files, converted (`core.platforms.pipfile`)
            converted = target / f"requirements-from-{step.manifest}.txt"
            _write_new(converted, step.requirements.encode())
            install += ["-r", str(converted)]
        elif step.manifest:
            install += ["-r", step.manifest]
        install += list(step.extra)
        if step.manifest or step.extra:
            await _run(
                install, app_dir, log, env, what="Installing Python dependencies", run_as=run_as
            )

    def _install_env(
        self, target: Path, run_as: RunAs | None, *caches: str, **named: str
    ) -> dict[str, str]:
        """Where an install keeps its caches: Beanpole's (``cache``), or, for an application
        with a user of its own, folders of that application's (``builds/<app>/cache``, the
        user's, also its HOME: npm's and corepack's files), so no install reads another's.
        ``named``: variable -> cache name."""
        if run_as is None:
            return {k: str(self.cache / v) for k, v in named.items()}
        cache = target.parent.parent.parent / "cache"  # builds/<app>/deps/<kind>/<key>
        for folder in (cache, *(cache / c for c in (*caches, *named.values()))):
            _own_folder(folder, run_as)
        hand_over(target, run_as)
        return {"HOME": str(cache), **{k: str(cache / v) for k, v in named.items()}}

    def _tool(self, program: str, run_as: RunAs | None) -> str:
        """``program``, or a copy the app user can run (Beanpole's own tools may live in a
        folder only root enters, such as a virtualenv under /root)."""
        if can_run(Path(program), run_as):
            return program
        copy = self.root / ".tools" / Path(program).name
        copy.parent.mkdir(exist_ok=True)
        copy.parent.chmod(0o755)
        if not copy.exists() or copy.stat().st_size != Path(program).stat().st_size:
            tmp = copy.with_suffix(".tmp")
            shutil.copyfile(program, tmp)
            tmp.chmod(0o755)
            tmp.replace(copy)
        return str(copy)

    async def _node(
        self, step: DependencyStep, app_dir: Path, target: Path, log: Path, run_as: RunAs | None
    ) -> None:
        lock = step.manifest if step.manifest != "package.json" else ""
        for name in ("package.json", lock, ".npmrc", ".yarnrc"):
            if name and (app_dir / name).is_file():
                # may hold a private registry's token: 0600
                _copy_in(app_dir / name, target / name, 0o600 if name.startswith(".") else 0o644)
        env = {
            **os.environ,
            **self._install_env(
                target, run_as, npm_config_cache="npm", YARN_CACHE_FOLDER="yarn", pnpm="pnpm"
            ),
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
        }
        store = env.pop("pnpm")
        argv = node.install_command(step, shutil.which, has_lock=bool(lock))
        if step.manager.startswith("pnpm"):
            argv += ["--store-dir", store]
        tool = (step.manager or "npm").partition("@")[0]
        verb = argv[1] if tool == "npm" else "install"  # npm ci or npm install
        await _run(argv, target, log, env, what=f"{tool} {verb}", run_as=run_as)
        (target / "node_modules").mkdir(exist_ok=True)


async def _run(
    argv: Sequence[str],
    cwd: Path,
    log: Path,
    env: Mapping[str, str],
    *,
    what: str,
    run_as: RunAs | None = None,
) -> None:
    """Run one build command, appending its output to the build log; fail with its tail.

    ``run_as``: the app user, for the bundle's own commands and its dependencies' installs
    (None: as Beanpole)."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            **subprocess_kwargs(run_as),
        )
        try:
            code = await proc.wait()
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
    if code != 0:
        # A build's whole output can be large: read it off the event loop.
        text = await asyncio.to_thread(log.read_text, errors="replace")
        tail = text.splitlines()[-TAIL_LINES:]
        raise BuildError(
            f"{what} failed with exit status {code}. Last {len(tail)} lines of the build "
            "output:\n" + "\n".join(tail)
        )


def _installed(target: Path) -> bool:
    """Whether the dependencies in ``target`` were installed whole: its marker, or (a home
    from before the marker moved) a ``.done`` inside it that Beanpole, not the app user,
    made."""
    if _install_marker(target).exists():
        return True
    try:
        old = (target / ".done").lstat()
    except OSError:
        return False
    return stat.S_ISREG(old.st_mode) and old.st_uid == os.geteuid()


def _install_marker(target: Path) -> Path:
    return target.with_name(f"{target.name}.done")


def _write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create ``path`` with ``data``, never through a link and never over an existing file:
    Beanpole (root) writes it into a folder the app user's processes may write to."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)  # not the umask's
        f.write(data)


def _copy_in(source: Path, target: Path, mode: int) -> None:
    """Copy a file of the bundle, refusing a link: root would read what it points to (its
    own secrets) into a folder the app user reads."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise BuildError(
            f"{source.name} in the bundle cannot be read ({exc.strerror}): it must be a file, "
            "not a symbolic link."
        ) from exc
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise BuildError(f"{source.name} in the bundle must be a regular file.")
        data = f.read()
    _write_new(target, data, mode)


def _own_folder(folder: Path, run_as: RunAs) -> None:
    """``folder`` (in a folder of Beanpole's) as the app user's own, 0700. What its
    processes may have put there instead (a link to a folder of root's) is removed first,
    and the owner changes without following a link."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode):
        folder.unlink()
        folder.mkdir(mode=0o700)
    os.chown(folder, run_as.uid, run_as.gid, follow_symlinks=False)


def _folder_inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` when it is a folder inside ``root`` (links followed), else None."""
    folder = (root / relative).resolve()
    return folder if folder.is_relative_to(root.resolve()) and folder.is_dir() else None


def _changes_its_runtime(app_dir: Path, steps: Steps) -> bool:
    """Whether a deployment's steps may change the version's dependencies after its build."""
    return bool(steps.container_commands) or any(
        (app_dir / ".platform" / folder).is_dir() for folder in ("hooks", "confighooks")
    )


def _with_python_runtime(plan: BuildPlan, app_dir: Path, steps: Steps) -> BuildPlan:
    """A Procfile app whose Python code sits in a subfolder (``backend/app.py``) and whose
    container_commands or hooks install into it (``pip install -r
    backend/requirements.txt``) gets a virtualenv, so that ``pip`` and ``python`` are the
    app's, as on EB's Python platform."""
    if not _changes_its_runtime(app_dir, steps):
        return plan
    if not any(p.is_file() for pattern in ("*.py", "*/*.py") for p in app_dir.glob(pattern)):
        return plan
    py_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    deps = python.dependency_step(app_dir, py_version, needs_gunicorn=False)
    return replace(plan, platform="python", dependencies=deps, default_port=8000)
