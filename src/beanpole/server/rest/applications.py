"""Applications and versions: list, upload (the body is the zip, streamed), lifecycle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from beanpole.adapters.bundles import Limits
from beanpole.api import inputs
from beanpole.api.views import ApplicationView, LifecycleResult, VersionView
from beanpole.core.errors import TooLarge
from beanpole.server.context import Context
from beanpole.server.rest.auth import API, scoped_application
from beanpole.server.rest.errors import responses

ZIP_BODY = {
    "requestBody": {
        "required": True,
        "description": "The source bundle: a zip of the application (at most 512 MB).",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=f"{API}/applications", tags=["applications"])
    apps = ctx.applications

    @api.get("", responses=responses(401, 405))
    async def list_applications(request: Request) -> list[ApplicationView]:
        mine = scoped_application(request)
        return [a for a in await apps.list_all() if mine is None or a.name == mine]

    @api.get("/{application}/versions", responses=responses(401, 404, 405))
    async def list_versions(application: str) -> list[VersionView]:
        return await apps.versions(application)

    @api.post(
        "/{application}/versions",
        status_code=201,
        responses=responses(400, 401, 405, 409, 413),
        openapi_extra=ZIP_BODY,
    )
    async def upload_version(
        application: str,
        request: Request,
        label: Annotated[str | None, Query(description="Default: from the digest")] = None,
        description: Annotated[str, Query(max_length=2000)] = "",
    ) -> VersionView:
        """Store the request body (a zip) as a new version of the application (413 past
        the bundle limit, refused before a byte is read when the length says so)."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > Limits().max_bundle_bytes:
            raise TooLarge(
                f"The bundle is larger than {Limits().max_bundle_bytes // 2**20} MB. "
                "Leave build outputs and dependencies out (.ebignore)."
            )
        return await apps.upload(application, request.stream(), label, description)

    @api.put("/{application}/lifecycle", responses=responses(400, 401, 404, 405))
    async def set_lifecycle(application: str, body: inputs.Lifecycle) -> LifecycleResult:
        """Keep only the newest ``max_versions`` versions (0: all); deployed ones stay."""
        return await apps.set_lifecycle(application, body.max_versions)

    return api
