"""Instances: launch, probe, put in service, drain and stop.

The fleet is the only place that changes the runtime and the load balancer on behalf of an
environment; operations and the reconciler decide *what* to do, the fleet does it and
records every change in the store first, so a crash leaves a record to resume from. It
reads the data plane through the observer's snapshots (`services.observer`), never by
polling it on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from beanpole.adapters.appuser import hand_over
from beanpole.adapters.build import Artifact, existing_version_dir, staged_deployments
from beanpole.adapters.runtime.usage import listening_ports
from beanpole.adapters.secrets import SecretBox
from beanpole.adapters.store.db import Store
from beanpole.core import listener_rules, placement
from beanpole.core.errors import BeanpoleError, InvalidInput, NotFound
from beanpole.core.hints import AppFacts, StartFailure, describe
from beanpole.core.lb.config import HealthCheck, LoadBalancerSpec
from beanpole.core.lb.desired import (
    IN_SERVICE_WEIGHT,
    StoredCertificate,
    desired_spec,
    health_check,
    process_checks,
    serving_labels,
)
from beanpole.core.model import Environment, Instance, InstanceState, Version, new_instance_id
from beanpole.core.platforms.docker import volume_folder
from beanpole.core.platforms.python import NAMESPACE as PYTHON
from beanpole.core.platforms.python import wsgi_target
from beanpole.core.readiness import (
    Answer,
    Probing,
    Verdict,
    not_ready,
    observe,
    wrong_answer,
    wrong_port,
)
from beanpole.core.runtime import (
    Endpoint,
    InstanceObservation,
    InstanceSpec,
    Mount,
    RunAs,
    describe_failure,
)
from beanpole.core.settings import ResolvedSettings
from beanpole.home import Home, ServerConfig
from beanpole.ports import LoadBalancer, Runtime
from beanpole.services.observer import Observer, Snapshot
from beanpole.services.secrets import Secrets

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.25  # HealthyThresholdCount 3 passes take 0.5 s after the first
# A live app that has refused connections on PORT this long while it listens on another
# port will not change its mind: the start fails, naming both ports (not after StartTimeout).
WRONG_PORT_AFTER_S = 5.0
DRAIN_POLL_S = 0.1
LOG_TAIL_LINES = 10
HINT_LINES = 60  # of a crashed instance's output searched for a known cause
# Once an instance of a batch has failed, how long the others may take to show their own
# cause before the batch is given up (they are launched together and tend to fail alike):
# as long again as the first one took to fail, at least FAILURE_GRACE_S, at most
# FAILURE_GRACE_MAX_S (a slow start under load is slow for all of them).
FAILURE_GRACE_S = 3.0
FAILURE_GRACE_MAX_S = 15.0
_APP_SCAN_DEPTH = 3
_APP_SCAN_ENTRIES = 5000
_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "env"})


@dataclass(frozen=True)
class StartFailures:
    """The instances of a batch that did not start (empty: all ready), and what the hints
    may cite about their application."""

    failures: tuple[StartFailure, ...] = ()
    facts: AppFacts = field(default_factory=AppFacts)

    def __bool__(self) -> bool:
        return bool(self.failures)

    def message(self, version: str) -> str:
        """Every failed instance, one sentence per cause with its fix (`core.hints`)."""
        return describe(self.failures, version, self.facts)


def app_facts(artifact: Artifact, settings: ResolvedSettings) -> AppFacts:
    """What a hint may cite about the app: its wsgi.py and requirements.txt files (a shallow
    walk of its folder, bounded), and the WSGI module Beanpole's default command imports."""
    root = artifact.app_dir
    wsgi: list[str] = []
    requirements: list[str] = []
    seen = 0
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        depth = len(rel.parts)
        dirs[:] = sorted(
            d
            for d in dirs
            if depth < _APP_SCAN_DEPTH
            and not d.startswith(".")
            and d not in _SKIPPED_DIRS
            and not (Path(folder) / d / "pyvenv.cfg").exists()
        )
        seen += len(files) + len(dirs)
        for name, found in (("wsgi.py", wsgi), ("requirements.txt", requirements)):
            if name in files:
                found.append((rel / name).as_posix())
        if seen > _APP_SCAN_ENTRIES:
            break
    module = None
    if artifact.plan.platform == "python" and not (root / "Procfile").is_file():
        with contextlib.suppress(BeanpoleError):
            module = wsgi_target(settings.get(PYTHON, "WSGIPath")).partition(":")[0]
    return AppFacts(
        platform=artifact.plan.platform,
        wsgi_module=module,
        wsgi_files=tuple(sorted(wsgi, key=_by_depth)),
        requirements=tuple(sorted(requirements, key=_by_depth)),
    )


#: HAProxy's connect timeout for instances on a cluster's nodes: a LAN connects in well under
#: a millisecond; one that takes a second is retried on another instance.
CLUSTER_CONNECT_TIMEOUT_MS = 1000


def _restarted(
    starts: dict[tuple[str, str], float], observed: InstanceObservation | None
) -> str | None:
    """The process of ``observed`` that runs under another start than first seen (it died and
    the runtime started it again between two looks, too fast to be seen dead), if any;
    records the first start of each process in ``starts``."""
    if observed is None:
        return None
    found = None
    for process in observed.processes:
        if not process.started_at:
            continue
        first = starts.setdefault((observed.instance_id, process.name), process.started_at)
        if process.started_at != first and found is None:
            found = process.name
    return found


@dataclass
class _ProcessGate:
    """The listener rule processes of starting instances, each with its own check: an
    instance is ready once its default process and each of these have passed."""

    checks: Mapping[str, HealthCheck]  # process name -> its check
    states: dict[tuple[str, str], Probing]  # (instance id, process name) -> its probes

    @classmethod
    def of(cls, instances: Iterable[Instance], checks: Mapping[str, HealthCheck]) -> _ProcessGate:
        # an instance started without a process (on the host's network) has none to pass
        states = {(i.id, n): Probing() for i in instances for n in i.process_ports if n in checks}
        return cls(checks, states)

    def behind(self) -> set[str]:
        """The instances with a process that has not passed yet."""
        return {i for (i, _), s in self.states.items() if s.verdict is not Verdict.READY}

    def due(self, instances: Iterable[Instance]) -> list[tuple[Instance, str]]:
        """The processes of ``instances`` (their default process ready) yet to pass."""
        return [
            (i, n)
            for i in instances
            for n in i.process_ports
            if (i.id, n) in self.states and self.states[i.id, n].verdict is not Verdict.READY
        ]


def _refuse_nested(mounts: Iterable[Mount]) -> None:
    """A writable volume must not hold another volume's folder: root in the container could
    swap that folder for a link to anywhere on the host, which the engine would follow when
    it mounts it next (another instance, or a restart)."""
    for outer in mounts:
        if outer.read_only:
            continue
        for inner in mounts:
            if inner is not outer and outer.source in inner.source.parents:
                raise InvalidInput(
                    f"The volume for {inner.target} ({inner.source.name}) lies inside the "
                    f"writable volume for {outer.target}: Beanpole refuses nested volumes, "
                    "since what a container writes in one must not decide what the host "
                    f"mounts for another. Mount {outer.target} read-only, or give "
                    f"{inner.target} a folder of its own."
                )


def _pin_bundle_folder(app_dir: Path, mount: Mount) -> None:
    """A volume of the bundle's own folder (``./data``, ``/var/app/current/data``): the folders
    from the app folder down to it become root's (0750, the app's group), so that no process
    of the app user (a hook) can swap one for a link between this check and the engine's
    mount, or before a restart; each must be a real folder, else the volume is refused. The
    volume's folder itself stays as the bundle had it (the container writes there)."""
    try:
        relative = mount.source.relative_to(app_dir)
    except ValueError:  # pragma: no cover (the caller checked)
        return
    folder = app_dir
    for part in ("", *relative.parts):
        folder = folder / part if part else folder
        if folder != mount.source:
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=0o750)
        elif not os.path.lexists(folder):
            folder.mkdir(mode=0o750)
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode):
            raise InvalidInput(
                f"The volume for {mount.target} names {relative} in the bundle, where "
                f"{folder.relative_to(app_dir) if folder != app_dir else '.'} is not a folder "
                "(a symbolic link, or a file): a volume of the bundle must be a folder inside it."
            )
        if folder != mount.source and os.geteuid() == 0 and info.st_uid != 0:
            # root's, the app's group keeps reading it; a real folder (checked) whose parent
            # is root's now: nothing can swap it for a link before the chmod
            os.chown(folder, 0, info.st_gid, follow_symlinks=False)
            os.chmod(folder, 0o750)  # noqa: S103 (the app's group: its hooks read the bundle)


def _grace(first_failed_after_s: float) -> float:
    return min(FAILURE_GRACE_MAX_S, max(FAILURE_GRACE_S, first_failed_after_s))


def _make_instance_dir(folder: Path, run_as: RunAs | None) -> None:
    """The instance's folder (its logs, its runtime folder): Beanpole's, entered by the
    instance's application user through its group (0710), by no other application's."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if run_as is None:
        folder.chmod(0o700)
        return
    os.chown(folder, os.geteuid(), run_as.gid)
    folder.chmod(0o710)


def _make_private_dir(path: Path, run_as: RunAs | None) -> None:
    """The instance's runtime folder, the app user's alone (it writes its sockets there)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    hand_over(path, run_as)


def _by_depth(path: str) -> tuple[int, str]:
    return path.count("/"), path


class Fleet:
    def __init__(
        self,
        home: Home,
        config: ServerConfig,
        store: Store,
        runtime: Runtime,
        lb: LoadBalancer,
        observer: Observer | None = None,
    ) -> None:
        self.home = home
        self._token: str | None = None  # the request token, read at the first load-balancer spec
        self.config = config
        self.store = store
        self.runtime = runtime
        self.lb = lb
        self.observer = observer or Observer(runtime, lb)
        self._lb_lock = asyncio.Lock()
        # env -> 1:N request-log sampling, the monitor's choice; rendered into the config so a
        # reload keeps it (the monitor also sets it at run time)
        self.sampling: dict[str, int] = {}
        self._http = httpx.AsyncClient(timeout=5.0, trust_env=False)
        # instance id -> what it runs, while it starts: the hints of a failure cite its files
        self._apps: dict[str, Artifact] = {}
        # environment -> why its instances were lost lately (a node's death): health says so
        # while the environment is below its capacity
        self.lost: dict[str, list[str]] = {}
        self.secrets = Secrets(store, SecretBox(home.secret_key_file))
        self._missing_certificates: set[str] = set()  # said once each (`_stored_certificates`)

    async def close(self) -> None:
        await self._http.aclose()

    # load balancer ---------------------------------------------------------------

    def lb_spec(self) -> LoadBalancerSpec:
        environments = self.store.environments()
        instances = self.store.instances()
        versions = self._serving_versions(environments, instances)
        stages = staged_deployments(self.home.root / "builds")
        return desired_spec(
            bind_host=self.config.lb_host,
            port=self.config.lb_port,
            domain=self.config.domain,
            environments=environments,
            instances=instances,
            log_port=self.config.log_port,
            log_token=self._request_token(),
            sampling=self.sampling,
            versions=versions,
            version_dirs=self._version_dirs(versions),
            stages={key: str(folder) for key, folder in stages.items()},
            domains=self.store.domains(),
            eb_domain=self.config.eb_domain,
            https_port=self.config.https_port,
            stored_certificates=self._stored_certificates(),
            # a cluster's instances are a network hop away: a dead node is retried sooner
            connect_timeout_ms=CLUSTER_CONNECT_TIMEOUT_MS
            if self.config.runtime == "swarm"
            else 5000,
        )

    def _version_dirs(
        self, versions: Mapping[tuple[str, str], Version]
    ) -> dict[tuple[str, str], str]:
        """Where each version's build is (its static files): the application's folder, or
        the shared one of a home from before per-application folders."""
        builds = self.home.root / "builds"
        apps = {a.name: a for a in self.store.applications()}
        return {
            (name, label): str(existing_version_dir(builds, apps[name], v.digest))
            for (name, label), v in versions.items()
            if name in apps
        }

    def _stored_certificates(self) -> list[StoredCertificate]:
        """The certificates whose PEM is there to load: one that is missing (a database
        restored without its home's `certs` folder) would fail HAProxy's every check of its
        config, so it is left out, and said once."""
        out = []
        for c in self.store.certificates():
            path = self.home.certificate_file(c.name)
            if os.access(path, os.R_OK):
                out.append(StoredCertificate(c.name, str(path), c.fingerprint))
            elif c.name not in self._missing_certificates:
                self._missing_certificates.add(c.name)
                log.error(
                    "certificate %s: %s cannot be read, so HTTPS does not offer it; add it "
                    "again with beanpole certs add %s --cert FILE --key FILE",
                    c.name,
                    path,
                    c.name,
                )
        return out

    def _serving_versions(
        self, environments: list[Environment], instances: list[Instance]
    ) -> dict[tuple[str, str], Version]:
        """The versions environments serve files of (`desired.serving_labels`)."""
        by_env: dict[str, list[Instance]] = {}
        for instance in instances:
            by_env.setdefault(instance.environment, []).append(instance)
        out: dict[tuple[str, str], Version] = {}
        for env in environments:
            for label in serving_labels(env, by_env.get(env.name, [])):
                with contextlib.suppress(NotFound):  # deleted by lifecycle: no files
                    out[(env.application, label)] = self.store.version(env.application, label)
        return out

    async def sync_lb(self) -> None:
        """Make HAProxy match the store (runtime API; a reload only for new backends)."""
        async with self._lb_lock:
            spec = self.lb_spec()
            await asyncio.to_thread(self.lb.apply, spec)

    # launching -------------------------------------------------------------------

    def instance_spec(
        self, instance: Instance, artifact: Artifact, settings: ResolvedSettings
    ) -> InstanceSpec:
        properties = self.secrets.reveal(settings.env)  # secrets opened for the app
        if artifact.image:
            # an image brings its own PATH, HOME and user: only the properties are added
            # (over what docker-compose.yml gives the service)
            env = {**artifact.image_env, **properties, "BEANPOLE_INSTANCE_ID": instance.id}
        else:
            env = artifact.process_env(properties)
            env["BEANPOLE_INSTANCE_ID"] = instance.id  # PORT is the runtime's to set
            # Per-user runtime files (gunicorn 25+'s control socket, gunicorn.ctl) go under
            # the instance's folder rather than $HOME, where every instance would share one.
            # Always this folder: it is made the app user's, so never a path from settings.
            run = str(self.home.instance_dir(instance.id) / "run")
            env["XDG_RUNTIME_DIR"] = run
            # Temporary files too: the host's /tmp is every application's (a property may
            # still name another folder; the app user's rights apply there, not root's).
            env.setdefault("TMPDIR", run)
        runtime = settings.get("beanpole:instance", "Runtime")
        mounts = self._mounts(instance, artifact, "web")
        return InstanceSpec(
            instance_id=instance.id,
            processes=dict(artifact.plan.processes),
            cwd=artifact.app_dir,
            env=env,
            log_dir=self.home.instance_dir(instance.id) / "logs",
            isolate=settings.get("beanpole:instance", "NetworkIsolation") != "none",
            listen_port=artifact.plan.default_port,
            # a listener rule's process (not web: its port is the platform's)
            process_ports={
                name: process.port
                for name, process in listener_rules.processes(settings.values).items()
                if name != "web"
            },
            run_as=artifact.run_as,
            image=artifact.image,
            command=artifact.command,
            companions=tuple(
                replace(
                    c,
                    env={**c.env, **properties, "BEANPOLE_INSTANCE_ID": instance.id},
                    mounts=self._mounts(instance, artifact, c.name),
                )
                for c in artifact.companions
            ),
            mounts=mounts,
            memory_limit_mib=settings.int("beanpole:instance", "MemoryLimit"),
            cpu_limit_percent=settings.int("beanpole:instance", "CPULimit"),
            runtime=runtime if runtime != "default" else "",
            node_labels=placement.parse_constraints(
                settings.get("beanpole:instance", "Constraints")
            ),
            environment=instance.environment_id or instance.environment,
            build_dirs=artifact.build_dirs,
        )

    def _request_token(self) -> str:
        """The home's request token (`Home.request_token`), read once: it never changes."""
        if self._token is None:
            self._token = self.home.request_token()
        return self._token

    def _mounts(self, instance: Instance, artifact: Artifact, container: str) -> tuple[Mount, ...]:
        """The host folders of an image's container (`core.platforms.docker.volume_folder`),
        made when missing; the routed container's ``Logging`` folder is the instance's
        ``logs/app``, so `beanpole logs` has its files."""
        source = artifact.plan.docker
        if not artifact.image or source is None:
            return ()
        instance_dir = self.home.instance_dir(instance.id)
        environment_dir = (
            self.home.root / "volumes" / (instance.environment_id or instance.environment)
        )
        mounts = [
            Mount(
                volume_folder(v, artifact.app_dir, environment_dir, instance_dir / "volumes"),
                v.target,
                v.read_only,
            )
            for v in source.volumes_of(container)
        ]
        if container == "web" and source.logging:
            mounts.append(Mount(instance_dir / "logs" / "app", source.logging))
        _refuse_nested(mounts)
        app_dir = artifact.app_dir
        for mount in mounts:
            if mount.source == app_dir or app_dir in mount.source.parents:
                _pin_bundle_folder(app_dir, mount)
            else:
                mount.source.mkdir(parents=True, exist_ok=True)
        return tuple(mounts)

    async def launch(
        self,
        env: Environment,
        artifact: Artifact,
        settings: ResolvedSettings,
        *,
        version_label: str,
        release_key: str,
        deployment_id: int,
    ) -> Instance:
        """Start one instance; it joins the load balancer only once it passes its checks.

        Recorded before it starts (a crash in between leaves a record adoption resolves),
        with the endpoint the runtime chose once it has.
        """
        instance = Instance(
            id=new_instance_id(),
            environment=env.name,
            environment_id=env.id,
            version_label=version_label,
            release_key=release_key,
            deployment_id=deployment_id,
            port=0,
            state=InstanceState.PENDING,
            created_at=time.time(),
            # whom it runs as, so that a home from before each application had a user of
            # its own has its instances replaced at start (`services.user_upgrade`)
            run_as=artifact.run_as.name if artifact.run_as is not None else None,
        )
        self.store.add_instance(instance)
        spec = self.instance_spec(instance, artifact, settings)
        try:
            await asyncio.to_thread(
                _make_instance_dir, self.home.instance_dir(instance.id), artifact.run_as
            )
            if not artifact.image:  # its XDG_RUNTIME_DIR (`instance_spec`)
                run_dir = self.home.instance_dir(instance.id) / "run"
                await asyncio.to_thread(_make_private_dir, run_dir, artifact.run_as)
            endpoint = await asyncio.to_thread(self.runtime.start, spec)
        except BaseException:
            self.store.update_instance(instance.id, state=InstanceState.STOPPED)
            raise
        # a listener rule's processes are reached at the instance's own address only
        ports = dict(spec.process_ports) if endpoint.isolated else {}
        self.store.update_instance(
            instance.id, host=endpoint.host, port=endpoint.port, process_ports=ports
        )
        self._apps[instance.id] = artifact
        return replace(instance, host=endpoint.host, port=endpoint.port, process_ports=ports)

    # probing ---------------------------------------------------------------------

    def check_host(self, instance: Instance) -> str:
        """The ``Host`` the load balancer's check and clients send: the environment's CNAME
        host name (`desired_spec`'s first host), so an app that checks host names (Django's
        ALLOWED_HOSTS) is judged by the probe as clients will see it."""
        try:
            env = self.store.environment_by_id(instance.environment_id)
        except NotFound:
            return "localhost"
        return f"{env.cname}.{self.config.domain}".lower()

    async def probe(
        self, instance: Instance, check: HealthCheck, host: str, port: int | None = None
    ) -> Answer:
        """One ``GET <HealthCheckPath>`` straight to the instance, as the load balancer sends
        it (``port``: a listener rule's process's, else the instance's)."""
        port = instance.port if port is None else port
        url = Endpoint(instance.host, port).url(check.path)
        try:
            response = await self._http.get(url, timeout=check.timeout_s, headers={"Host": host})
        except httpx.ConnectError:
            return Answer(None, problem=f"did not listen on PORT {port}", listening=False)
        except httpx.TimeoutException:
            return Answer(
                None, problem=f"health check GET {check.path} timed out after {check.timeout_s} s"
            )
        except httpx.HTTPError as exc:
            return Answer(None, problem=f"health check GET {check.path} failed: {exc}")
        return Answer(
            response.status_code,
            response.reason_phrase,
            response.headers.get("location", "") if response.is_redirect else "",
        )

    def process_failure(self, observed: InstanceObservation | None) -> str | None:
        """A cause when a process of the instance has died: how it ended and its last lines."""
        if observed is None or not observed.dead:
            return None
        dead = observed.dead[0]
        return describe_failure(dead, self.tail_logs(observed.instance_id, dead.name))

    def tail_logs(
        self, instance_id: str, process: str | None = None, lines: int = LOG_TAIL_LINES
    ) -> list[str]:
        """The last lines a process wrote, for a failure's cause or hint: shown by health,
        events and operations, so the environment's secrets are hidden in them."""
        tail = self.runtime.log_tail(instance_id, lines, process)
        env = next(
            (i.environment for i in self.store.instances() if i.id == instance_id),
            None,
        )
        if env is None or not tail:
            return tail
        return self.secrets.redact_by_name(env, "\n".join(tail)).split("\n")

    def _crash(
        self, instance: Instance, observed: InstanceObservation | None, restarted: str | None
    ) -> StartFailure | None:
        """A process of the instance died (``restarted``: one was seen running again under a
        new start, the runtime having restarted it between two looks): how it ended, and the
        last lines it wrote."""
        if observed is not None and observed.dead:
            dead = observed.dead[0]
            name = dead.name
            reason = f"{name} {dead.reason or f'exited with status {dead.exit_status}'}"
        elif restarted is not None:
            name = restarted
            reason = f"{name} exited, and was started again"
        else:
            return None
        output = self.tail_logs(instance.id, name, HINT_LINES)
        return StartFailure(instance.id, reason, tuple(output), instance.port)

    async def wait_ready(
        self,
        instances: list[Instance],
        settings: ResolvedSettings,
        *,
        deadline: float,
        start_timeout_s: float,
        listen_only: bool = False,
        abort: asyncio.Event | None = None,
    ) -> StartFailures:
        """Probe until each instance passes HealthyThresholdCount checks in a row.

        Returns the failures (empty when all are ready). An instance fails at once when a
        process dies, or when it gives a definite wrong answer UnhealthyThresholdCount times
        in a row (`core.readiness`); one that does not answer fails after
        ``start_timeout_s``. Once one has failed the batch cannot succeed: the others get as
        long again as it took (`_grace`) to show their own cause (instances of one version
        tend to fail alike, at about the same time), then those still not ready are reported
        as such.
        """
        check = health_check(settings.values)
        hosts = {i.id: self.check_host(i) for i in instances}
        probing = {i.id: Probing() for i in instances}
        # A listener rule's process passes its own check too, once the default one has.
        gate = _ProcessGate.of(instances, process_checks(settings.values))
        failures: dict[str, StartFailure] = {}
        started = time.monotonic()
        first_failure: float | None = None
        starts: dict[tuple[str, str], float] = {}  # (instance, process) -> its first start seen
        refused_since: dict[str, float] = {}  # instance -> since when nothing listens on PORT
        ports_looked: dict[str, float] = {}  # instance -> when its listening ports were read
        while True:
            behind = gate.behind()
            pending = [
                i
                for i in instances
                if i.id not in failures
                and (probing[i.id].verdict is not Verdict.READY or i.id in behind)
            ]
            if not pending:
                return self._report(instances, failures, settings)
            now = time.monotonic()
            if abort is not None and abort.is_set():
                for i in pending:
                    failures[i.id] = StartFailure(i.id, "the deployment was aborted", port=i.port)
                return self._report(instances, failures, settings)
            if first_failure is not None and now - first_failure >= _grace(first_failure - started):
                for i in pending:
                    why = not_ready(probing[i.id].last, i.port)
                    failures[i.id] = StartFailure(
                        i.id,
                        f"stopped before it was ready, when another instance failed "
                        f"({why} after {now - started:.0f} s)",
                        port=i.port,
                    )
                return self._report(instances, failures, settings)
            snapshot = await self.observer.fresh(PROBE_INTERVAL_S)
            due = gate.due([i for i in pending if probing[i.id].verdict is Verdict.READY])
            pending = [i for i in pending if probing[i.id].verdict is not Verdict.READY]
            timed_out = time.monotonic() - started > start_timeout_s or time.time() > deadline
            answers, failed = await asyncio.gather(
                asyncio.gather(*(self.probe(i, check, hosts[i.id]) for i in pending)),
                self._probe_processes(
                    gate, due, hosts, snapshot, listen_only=listen_only, timed_out=timed_out,
                    elapsed=time.monotonic() - started,
                ),
            )  # fmt: skip
            now = time.monotonic()
            failures.update(failed)
            first_failure = now if failed and first_failure is None else first_failure
            for instance, answer in zip(pending, answers, strict=True):
                state = observe(probing[instance.id], answer, check, listen_only=listen_only)
                probing[instance.id] = state
                if state.verdict is Verdict.READY:
                    continue
                observed = snapshot.instances.get(instance.id)
                restarted = _restarted(starts, observed)
                failure = (
                    await asyncio.to_thread(self._crash, instance, observed, restarted)
                    if restarted is not None or (observed is not None and observed.dead)
                    else None
                )
                if failure is None and state.verdict is Verdict.FAILED:
                    reason = wrong_answer(check, hosts[instance.id], answer, state.wrong)
                    failure = StartFailure(instance.id, reason, port=instance.port)
                if failure is None:
                    failure = await self._listening_elsewhere(
                        instance, observed, answer, refused_since, ports_looked
                    )
                if failure is None and (now - started > start_timeout_s or time.time() > deadline):
                    why = not_ready(state.last, instance.port)
                    failure = StartFailure(
                        instance.id, f"{why} within {int(now - started)} s", port=instance.port
                    )
                if failure is not None:
                    failures[instance.id] = failure
                    first_failure = now if first_failure is None else first_failure
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def _probe_processes(
        self,
        gate: _ProcessGate,
        due: list[tuple[Instance, str]],
        hosts: Mapping[str, str],
        snapshot: Snapshot,
        *,
        listen_only: bool,
        timed_out: bool,
        elapsed: float,
    ) -> dict[str, StartFailure]:
        """One probe of each listener rule process ``due``; the instances that fail by it: a
        process died, its own check answered wrong, or it did not pass in time."""
        answers = await asyncio.gather(
            *(self.probe(i, gate.checks[n], hosts[i.id], i.process_ports[n]) for i, n in due)
        )
        failed: dict[str, StartFailure] = {}
        for (instance, name), answer in zip(due, answers, strict=True):
            check, port = gate.checks[name], instance.process_ports[name]
            state = gate.states[instance.id, name] = observe(
                gate.states[instance.id, name], answer, check, listen_only=listen_only
            )
            if state.verdict is Verdict.READY:
                continue
            observed = snapshot.instances.get(instance.id)
            failure = None
            if observed is not None and observed.dead:
                failure = await asyncio.to_thread(self._crash, instance, observed, None)
            elif state.verdict is Verdict.FAILED:
                namespace = f"{listener_rules.PROCESS_PREFIX}{name}"
                reason = wrong_answer(check, hosts[instance.id], answer, state.wrong, namespace)
                failure = StartFailure(instance.id, f"process {name}: {reason}", port=port)
            elif timed_out:
                why = not_ready(state.last, port)
                failure = StartFailure(
                    instance.id, f"process {name}: {why} within {int(elapsed)} s", port=port
                )
            if failure is not None:
                failed.setdefault(instance.id, failure)
        return failed

    async def _listening_elsewhere(
        self,
        instance: Instance,
        observed: InstanceObservation | None,
        answer: Answer,
        refused_since: dict[str, float],
        looked: dict[str, float],
    ) -> StartFailure | None:
        """A live app that has refused connections on PORT for `WRONG_PORT_AFTER_S` while
        it listens on another port (AWS's Express sample hard-codes 8080) fails now, naming
        both, rather than after StartTimeout. Its sockets are read at most once a second."""
        now = time.monotonic()
        if answer.listening:
            refused_since.pop(instance.id, None)
            return None
        since = refused_since.setdefault(instance.id, now)
        if (
            observed is None
            or now - since < WRONG_PORT_AFTER_S
            or now - looked.get(instance.id, 0.0) < 1.0
        ):
            return None
        looked[instance.id] = now
        ports = await asyncio.to_thread(listening_ports, observed.pids)
        if not ports or instance.port in ports:
            return None
        app = self._apps.get(instance.id)
        reason = wrong_port(ports, instance.port, "" if app is None else app.plan.platform)
        return StartFailure(instance.id, reason, port=instance.port)

    def _report(
        self,
        instances: list[Instance],
        failures: dict[str, StartFailure],
        settings: ResolvedSettings,
    ) -> StartFailures:
        if not failures:
            return StartFailures()
        artifact = next((self._apps[i.id] for i in instances if i.id in self._apps), None)
        ordered = [failures[i.id] for i in instances if i.id in failures]
        # The instances that failed with a cause come before those stopped because of them.
        ordered.sort(key=lambda f: f.reason.startswith("stopped before"))
        facts = AppFacts() if artifact is None else app_facts(artifact, settings)
        return StartFailures(tuple(ordered), facts)

    # traffic ---------------------------------------------------------------------

    async def put_in_service(self, instances: Iterable[Instance]) -> None:
        for instance in instances:
            self._apps.pop(instance.id, None)
            self.store.update_instance(
                instance.id, state=InstanceState.IN_SERVICE, healthy=True, weight=IN_SERVICE_WEIGHT
            )
        await self.sync_lb()

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        """Per-instance load-balancer weights (traffic splitting), recorded then applied."""
        for instance_id, weight in weights.items():
            self.store.update_instance(instance_id, weight=weight)
        await self.sync_lb()

    async def retire(self, instances: list[Instance], drain_s: float) -> None:
        """Drain, let in-flight requests finish (at most ``drain_s``), then stop."""
        if not instances:
            return
        await self._drain(instances, drain_s)
        await self.stop(instances)

    async def standby(self, instances: list[Instance], drain_s: float) -> None:
        """Drain like `retire`, then keep them running at weight 0 (HAProxy still checks
        them): a deployment's rollback can put them back in service without a start."""
        if not instances:
            return
        await self._drain(instances, drain_s)
        for instance in instances:
            self.store.update_instance(instance.id, state=InstanceState.STANDBY)
        await self.sync_lb()

    async def _drain(self, instances: list[Instance], drain_s: float) -> None:
        """Weight 0, then wait until HAProxy has no session on them or ``drain_s`` passed."""
        for instance in instances:
            self.store.update_instance(instance.id, state=InstanceState.DRAINING)
        await self.sync_lb()
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            states = (await self.observer.fresh(DRAIN_POLL_S)).servers
            # in the environment's backend or one of its processes' (`env.process`)
            in_flight = {
                (backend.partition(".")[0], server)
                for (backend, server), s in states.items()
                if s.sessions > 0
            }
            busy = [i for i in instances if (i.environment, i.id) in in_flight]
            if not busy:
                break
            await asyncio.sleep(DRAIN_POLL_S)

    async def checked_healthy(self, instances: list[Instance]) -> list[Instance]:
        """Those whose load-balancer check passes now (standby ones are checked at weight 0);
        none when the load balancer does not answer."""
        if not instances:
            return []
        snapshot = await self.observer.fresh(DRAIN_POLL_S)
        servers = snapshot.servers

        def passing(i: Instance) -> bool:
            # and the check of each listener rule's process it is a server for
            backends = (i.environment, *(f"{i.environment}.{p}" for p in i.process_ports))
            found = [s for b in backends if (s := servers.get((b, i.id))) is not None]
            return (
                bool(found) and (i.environment, i.id) in servers and all(s.passing for s in found)
            )

        return [i for i in instances if passing(i)]

    async def stop(self, instances: list[Instance]) -> None:
        """Stop at once (for instances that never took traffic, or after draining).

        An instance with no request in flight leaves HAProxy first, which closes HAProxy's
        idle connections to it: a server that waits for its kept-alive connections before
        exiting (gunicorn waits out its keep-alive, 2 s) then stops at once. One still
        answering stays in HAProxy at weight 0 while its processes stop, so the app's own
        graceful shutdown (TERM, then supervisord's wait) lets those requests finish rather
        than HAProxy cutting them.
        """
        if not instances:
            return
        for instance in instances:
            self._apps.pop(instance.id, None)
        # HAProxy down: its part of the snapshot is empty, and nothing is in flight through it.
        states = (await self.observer.refresh()).servers
        for instance in instances:
            state = states.get((instance.environment, instance.id))
            busy = state is not None and state.sessions > 0
            self.store.update_instance(
                instance.id, state=InstanceState.DRAINING if busy else InstanceState.STOPPING
            )
        await self.sync_lb()
        await asyncio.gather(*(asyncio.to_thread(self.runtime.stop, i.id) for i in instances))
        for instance in instances:
            self.store.update_instance(
                instance.id, state=InstanceState.STOPPED, pid=0, healthy=False
            )
        await self.sync_lb()
