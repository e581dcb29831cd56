"""The REST API (FastAPI): the one surface the CLI, the console and scripts all use.

Every error answers ``{"error": {"code": "...", "message": "..."}}`` with a matching
status; `tests/integration/test_api.py` walks the routes to check it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from beanpole import __version__
from beanpole.adapters.bundles import Limits, read_files
from beanpole.adapters.runtime.usage import load_average
from beanpole.core.capacity import bounds, desired_count, plan_scale
from beanpole.core.errors import BeanpoleError, InvalidInput, Unauthorized
from beanpole.core.lifecycle import versions_to_delete
from beanpole.core.model import (
    Environment,
    Instance,
    InstanceState,
    check_app_name,
    check_cname,
    check_env_name,
    check_label,
)
from beanpole.core.settings import (
    ENV_NAMESPACE,
    ResolvedSettings,
    ebextensions,
    merge_changes,
    resolve,
    validate,
)
from beanpole.server.context import Context
from beanpole.server.prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from beanpole.server.prometheus import prometheus_text

API = "/api/v1"


class CreateEnvironment(BaseModel):
    name: str
    application: str
    version_label: str | None = None
    cname: str | None = None
    settings: dict[str, str] = Field(default_factory=dict)
    # how many instances to start with (clamped to MinSize..MaxSize); default MinSize, as EB
    desired_capacity: int | None = Field(default=None, ge=0, le=100)


class Deploy(BaseModel):
    version_label: str
    policy: (
        Literal[
            "AllAtOnce", "Rolling", "RollingWithAdditionalBatch", "Immutable", "TrafficSplitting"
        ]
        | None
    ) = None


class Lifecycle(BaseModel):
    max_versions: int = Field(ge=0, le=10000)


class Swap(BaseModel):
    other: str


class Scale(BaseModel):
    count: int = Field(ge=0, le=100)


class SettingsChange(BaseModel):
    set: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


def create_app(ctx: Context) -> FastAPI:
    app = FastAPI(
        title="Beanpole",
        version=__version__,
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )

    @app.exception_handler(BeanpoleError)
    async def _beanpole_error(request: Request, exc: BeanpoleError) -> JSONResponse:
        return _error(exc.http_status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _error(400, "invalid_input", f"The request is not valid: {problems}.")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "http_error"
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal", f"Internal error: {exc!r}. The server log has details.")

    def authorised(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), ctx.token):
            raise Unauthorized(
                "Missing or wrong bearer token. Set BEANPOLE_TOKEN (or BEANPOLE_HOME for a "
                "local server, whose token file the CLI reads)."
            )

    auth = [Depends(authorised)]

    @app.get(f"{API}/ping")
    async def ping() -> dict[str, Any]:
        return {"ok": True, "version": __version__, "pid": os.getpid()}

    # applications and versions ------------------------------------------------------

    @app.get(f"{API}/applications", dependencies=auth)
    async def list_applications() -> list[dict[str, Any]]:
        return [
            {"id": a.id, "name": a.name, "created_at": a.created_at}
            for a in ctx.store.applications()
        ]

    @app.get(f"{API}/applications/{{application}}/versions", dependencies=auth)
    async def list_versions(application: str) -> list[dict[str, Any]]:
        ctx.store.application(application)
        return [_version(v) for v in ctx.store.versions(application)]

    @app.post(f"{API}/applications/{{application}}/versions", dependencies=auth, status_code=201)
    async def upload_version(
        application: str,
        request: Request,
        label: Annotated[str | None, Query()] = None,
        description: Annotated[str, Query()] = "",
    ) -> dict[str, Any]:
        check_app_name(application)
        if label is not None:
            check_label(label)
        limits = Limits()
        tmp_dir = ctx.home.root / "bundles" / "incoming"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".zip")
        path = Path(name)
        try:
            size = 0
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limits.max_bundle_bytes:
                        raise InvalidInput(
                            f"The bundle is larger than {limits.max_bundle_bytes // 2**20} MB. "
                            "Leave build outputs and dependencies out (.ebignore)."
                        )
                    out.write(chunk)
            digest = ctx.bundles.put(path, limits)
        finally:
            path.unlink(missing_ok=True)
        layer = await asyncio.to_thread(_read_ebextensions, ctx.bundles.path(digest), limits)
        ctx.store.ensure_application(application)
        version = ctx.store.add_version(
            application,
            label or f"v-{digest[:12]}",
            digest,
            description,
            layer.settings,
            layer.warnings,
        )
        await asyncio.to_thread(_apply_lifecycle, ctx, application)
        return _version(version)

    @app.put(f"{API}/applications/{{application}}/lifecycle", dependencies=auth)
    async def set_lifecycle(application: str, body: Lifecycle) -> dict[str, Any]:
        ctx.store.set_max_versions(application, body.max_versions)
        deleted = await asyncio.to_thread(_apply_lifecycle, ctx, application)
        return {"max_versions": body.max_versions, "deleted": deleted}

    # environments ---------------------------------------------------------------------

    @app.get(f"{API}/environments", dependencies=auth)
    async def list_environments() -> list[dict[str, Any]]:
        return [_environment(ctx, e, with_instances=False) for e in ctx.store.environments()]

    @app.post(f"{API}/environments", dependencies=auth, status_code=202)
    async def create_environment(
        body: CreateEnvironment, dry_run: Annotated[bool, Query()] = False
    ) -> dict[str, Any]:
        name = check_env_name(body.name)
        check_app_name(body.application)
        cname = check_cname(body.cname or name)
        settings = validate(body.settings)
        # Checked over the version's .ebextensions once there is a version (not in a dry run).
        version = None
        if body.version_label is not None and not dry_run:
            version = ctx.store.version(body.application, body.version_label)  # NotFound
        _check_sizes(resolve(version.ebextensions if version else {}, settings))
        existing = {e.name: e for e in ctx.store.environments()}
        if name in existing:
            from beanpole.core.errors import Conflict

            raise Conflict(
                f"Environment {name} already exists. Deploy to it with "
                f"'beanpole deploy {name}', or choose another name."
            )
        if dry_run:
            return {"ok": True}
        if version is None:
            raise InvalidInput("version_label is required: upload a version first.")
        env = ctx.store.create_environment(
            name, body.application, cname, settings, body.desired_capacity
        )
        op = ctx.ops.create(env, version.label)
        return {"operation": op.id, "environment": _environment(ctx, env)}

    @app.get(f"{API}/environments/{{name}}", dependencies=auth)
    async def get_environment(name: str) -> dict[str, Any]:
        return _environment(ctx, ctx.store.environment(name))

    @app.post(f"{API}/environments/{{name}}/deploy", dependencies=auth, status_code=202)
    async def deploy(name: str, body: Deploy) -> dict[str, Any]:
        env = ctx.store.environment(name)
        version = ctx.store.version(env.application, body.version_label)
        _check_sizes(resolve(*env.layers(version.ebextensions)))
        op = ctx.ops.deploy(env, body.version_label, policy=body.policy)
        return {"operation": op.id}

    @app.post(f"{API}/environments/{{name}}/abort", dependencies=auth, status_code=202)
    async def abort(name: str) -> dict[str, Any]:
        env = ctx.store.environment(name)
        ctx.ops.abort(env)
        running = [op for op in ctx.store.running_operations() if op.environment_id == env.id]
        return {"operation": running[0].id if running else None}

    @app.post(f"{API}/environments/{{name}}/rollback", dependencies=auth, status_code=202)
    async def rollback(name: str) -> dict[str, Any]:
        env = ctx.store.environment(name)
        releases = ctx.store.releases(name, limit=2)
        if len(releases) < 2:
            raise InvalidInput(f"Environment {name} has no previous release to roll back to.")
        previous = releases[1]
        op = ctx.ops.deploy(env, previous.version_label, settings=previous.settings)
        return {"operation": op.id, "version": previous.version_label}

    @app.get(f"{API}/environments/{{name}}/releases", dependencies=auth)
    async def releases(name: str) -> list[dict[str, Any]]:
        ctx.store.environment(name)
        return [
            {
                "deployment_id": r.deployment_id,
                "version": r.version_label,
                "settings": r.settings,
                "created_at": r.created_at,
            }
            for r in ctx.store.releases(name)
        ]

    @app.post(f"{API}/environments/{{name}}/swap", dependencies=auth)
    async def swap(name: str, body: Swap) -> dict[str, Any]:
        env, other = ctx.store.environment(name), ctx.store.environment(body.other)
        await ctx.ops.swap(env, other)
        return {
            "environments": [
                _environment(ctx, ctx.store.environment(n), False) for n in (name, body.other)
            ]
        }

    @app.post(f"{API}/environments/{{name}}/scale", dependencies=auth, status_code=202)
    async def scale(name: str, body: Scale) -> dict[str, Any]:
        """Set the desired capacity; MinSize or MaxSize move only if ``count`` is outside
        them, and ``notes`` say so (events too)."""
        env = ctx.store.environment(name)
        change = plan_scale(bounds(resolve(*env.layers())), body.count)
        settings = validate({**env.settings, **change.settings})
        op = ctx.ops.configure(env, settings, desired=change.desired, notes=change.notes)
        return {"operation": op.id, "desired_capacity": change.desired, "notes": list(change.notes)}

    @app.patch(f"{API}/environments/{{name}}/settings", dependencies=auth, status_code=202)
    async def change_settings(name: str, body: SettingsChange) -> dict[str, Any]:
        env = ctx.store.environment(name)
        merged = merge_changes(env.settings, body.set, body.remove)
        _check_sizes(resolve(*env.layers(direct=merged)))
        op = ctx.ops.configure(env, merged)
        return {"operation": op.id}

    @app.get(f"{API}/environments/{{name}}/settings", dependencies=auth)
    async def get_settings(name: str) -> dict[str, Any]:
        """Each layer and the result: ``direct`` (given with the CLI or API), ``ebextensions``
        (of the version the environment runs), ``resolved`` over the defaults and, for each
        resolved option, the layer it comes from (``sources``)."""
        env = ctx.store.environment(name)
        resolved = resolve(*env.layers())
        sources = {
            key: "direct"
            if key in env.settings
            else "ebextensions"
            if key in env.version_settings
            else "default"
            for key in resolved.values
        }
        return {
            "version": env.version_label,
            "direct": env.settings,
            "ebextensions": env.version_settings,
            "resolved": resolved.values,
            "sources": sources,
            "environment": resolved.env,
        }

    @app.delete(f"{API}/environments/{{name}}", dependencies=auth, status_code=202)
    async def terminate(name: str) -> dict[str, Any]:
        env = ctx.store.environment(name)
        op = ctx.ops.terminate(env)
        return {"operation": op.id}

    @app.get(f"{API}/environments/{{name}}/events", dependencies=auth)
    async def events(
        name: str,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        found = ctx.store.events(name, after=after, limit=limit)
        if not found and not any(
            e.name == name for e in ctx.store.environments(include_terminated=True)
        ):
            ctx.store.environment(name)  # NotFound, with its advice
        return [
            {
                "id": e.id,
                "time": e.time,
                "severity": e.severity,
                "environment": e.environment,
                "environment_id": e.environment_id,
                "version": e.version_label,
                "message": e.message,
            }
            for e in found
        ]

    @app.get(f"{API}/environments/{{name}}/logs", dependencies=auth)
    async def logs(
        name: str,
        instance: Annotated[str | None, Query()] = None,
        lines: Annotated[int, Query(ge=1, le=10000)] = 100,
    ) -> dict[str, Any]:
        """The last lines of each instance's logs, the access log and the latest deploy log."""
        ctx.store.environment(name)
        return await asyncio.to_thread(ctx.log_tail, name, instance, lines)

    @app.get(f"{API}/environments/{{name}}/logs/follow", dependencies=auth)
    async def follow_logs(
        name: str,
        cursor: Annotated[
            str | None,
            Query(max_length=65536, description="From the last answer; none: start at the end"),
        ] = None,
        instance: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        """Every line written since ``cursor`` and the cursor to ask with next (at once when
        ``more``). Files that appear later are read from their start; rotation loses nothing."""
        ctx.store.environment(name)
        return await asyncio.to_thread(ctx.log_follow, name, instance, cursor)

    @app.get(
        f"{API}/environments/{{name}}/logs/bundle",
        dependencies=auth,
        response_class=FileResponse,
    )
    async def log_bundle(
        name: str, instance: Annotated[str | None, Query()] = None
    ) -> FileResponse:
        """A zip of every log: ``<instance id>/<file>`` (rotated parts too), ``access/…``,
        ``deploy/<operation id>.log``."""
        ctx.store.environment(name)
        path = await asyncio.to_thread(ctx.log_bundle, name, instance)
        return FileResponse(
            path,
            media_type="application/zip",
            filename=f"{name}-logs-{time.strftime('%Y%m%d-%H%M%S')}.zip",
            background=BackgroundTask(path.unlink, missing_ok=True),
        )

    @app.get(f"{API}/environments/{{name}}/health", dependencies=auth)
    async def health(name: str) -> dict[str, Any]:
        env = ctx.store.environment(name)
        if name not in ctx.monitor.snapshot.environments:  # created since the last verdict
            with contextlib.suppress(BeanpoleError):  # then the stored statuses below
                await ctx.monitor.refresh()
        snapshot = ctx.monitor.snapshot
        data = snapshot.environments.get(name)
        at = snapshot.at
        if data is None:  # no verdict could be made (supervisord not answering)
            at = 0.0
            data = {
                "status": env.health_status,
                "colour": env.health,
                "causes": list(env.causes),
                "requests": None,
                "sampling": 1,
                "host": None,
                "instances": [
                    {
                        **_instance(i),
                        "status": i.health_status,
                        "colour": "Grey",
                        "requests": None,
                        "cpu_percent": None,
                        "rss_bytes": None,
                        "processes": None,
                    }
                    for i in ctx.store.instances(name)
                ],
            }
        return {
            "name": name,
            "environment_status": env.status,
            "version": env.version_label,
            "deployment_id": env.deployment_id,
            "at": at,
            "load_average": list(load_average()),
            **data,
        }

    @app.get(f"{API}/environments/{{name}}/metrics", dependencies=auth)
    async def metrics_history(
        name: str,
        instance: Annotated[str, Query(description="An instance id; empty: the environment")] = "",
        since: Annotated[float, Query(description="Epoch seconds; default an hour ago")] = 0.0,
        until: Annotated[float, Query(description="Epoch seconds; default now")] = 0.0,
        resolution: Annotated[Literal["auto", "10", "300"], Query()] = "auto",
    ) -> dict[str, Any]:
        """A time series of request windows: 10 s points for the last day, 5 min beyond."""
        ctx.store.environment(name)
        now = time.time()
        start = since or now - 3600
        end = until or now + 1
        if end <= start:
            raise InvalidInput("'until' must be after 'since'.")
        step = resolution if resolution != "auto" else "10" if start >= now - 86400 else "300"
        rows = ctx.store.metrics(name, instance, start, end, rollup=step == "300")
        return {
            "environment": name,
            "instance": instance or None,
            "resolution_s": int(step),
            "points": [data for _, data in rows],
        }

    @app.get("/metrics", dependencies=auth, response_class=PlainTextResponse)
    async def prometheus() -> Response:
        """Every environment's and instance's figures in the Prometheus text format."""
        # In the event loop, not a thread: it reads the monitor's live dictionaries.
        body = prometheus_text(ctx.store, ctx.monitor)
        return Response(body, media_type=PROMETHEUS_CONTENT_TYPE)

    @app.get(f"{API}/operations/{{op_id}}", dependencies=auth)
    async def operation(op_id: int) -> dict[str, Any]:
        op = ctx.store.operation(op_id)
        return {
            "id": op.id,
            "environment": op.environment,
            "environment_id": op.environment_id,
            "kind": op.kind,
            "status": op.status,
            "message": op.message,
            "started_at": op.started_at,
            "finished_at": op.finished_at,
        }

    return app


def _apply_lifecycle(ctx: Context, application: str) -> list[str]:
    """Delete versions beyond the application's limit; never one that is deployed."""
    doomed = versions_to_delete(
        ctx.store.versions(application),
        ctx.store.max_versions(application),
        ctx.store.deployed_labels(application),
    )
    for version in doomed:
        ctx.store.delete_version(application, version.label)
        if not ctx.store.digest_in_use(version.digest):
            ctx.bundles.path(version.digest).unlink(missing_ok=True)
            shutil.rmtree(ctx.home.root / "builds" / version.digest, ignore_errors=True)
        ctx.store.add_event(
            f"Deleted application version {version.label} (lifecycle: keep "
            f"{ctx.store.max_versions(application)}).",
            application=application,
            version_label=version.label,
        )
    return [v.label for v in doomed]


def _read_ebextensions(bundle_path: Path, limits: Limits) -> ebextensions.Layer:
    """A stored bundle's .ebextensions layer: read once per version, at upload."""
    files = read_files(
        bundle_path,
        ebextensions.FOLDER,
        ebextensions.SUFFIX,
        max_files=ebextensions.MAX_FILES,
        max_bytes=ebextensions.MAX_FILE_BYTES,
        limits=limits,
    )
    return ebextensions.layer(ebextensions.ConfigFile(f.path, f.data, f.problem) for f in files)


def _check_sizes(resolved: ResolvedSettings) -> None:
    low = resolved.int("aws:autoscaling:asg", "MinSize")
    high = resolved.int("aws:autoscaling:asg", "MaxSize")
    if low > high:
        raise InvalidInput(
            f"aws:autoscaling:asg MinSize ({low}) is above MaxSize ({high}). "
            "Raise MaxSize too, or lower MinSize."
        )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _version(v: Any) -> dict[str, Any]:
    return {
        "id": v.id,
        "application": v.application,
        "label": v.label,
        "digest": v.digest,
        "created_at": v.created_at,
        "build_status": v.build_status,
        "build_error": v.build_error,
        "description": v.description,
        "ebextensions": v.ebextensions,
        "ebextensions_warnings": list(v.ebextensions_warnings),
    }


def _instance(i: Instance) -> dict[str, Any]:
    health = "Grey" if i.state is InstanceState.PENDING else "Green" if i.healthy else "Red"
    return {
        "id": i.id,
        "state": i.state,
        "health": health,
        "port": i.port,
        "pid": i.pid,
        "version": i.version_label,
        "deployment_id": i.deployment_id,
        "causes": list(i.causes),
        "launched_at": i.created_at,
        "uptime_s": round(time.time() - i.created_at, 1),
    }


def _environment(ctx: Context, env: Environment, with_instances: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": env.id,
        "name": env.name,
        "application": env.application,
        "cname": env.cname,
        "status": env.status,
        "health": env.health,
        "version": env.version_label,
        "deployment_id": env.deployment_id,
        "url": ctx.url(env.cname),
        "causes": list(env.causes),
        "created_at": env.created_at,
        "updated_at": env.updated_at,
        "environment_variables": sorted(resolve(*env.layers()).env),
        "desired_capacity": desired_count(resolve(*env.layers()), env.desired_capacity),
    }
    if with_instances:
        data["instances"] = [_instance(i) for i in ctx.store.instances(env.name)]
    return data


__all__ = ["ENV_NAMESPACE", "create_app"]
