"""Application versions: created from a bundle in the S3 subset (through the same intake
as every upload), described, updated, deleted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from beanpole.core.errors import NotFound
from beanpole.server.eb.actions.base import Action, Result, tags_from, version_description
from beanpole.server.eb.context import EB
from beanpole.server.eb.protocol import Params, invalid

CHUNK = 1 << 20
PAGE = 1000


async def create_application_version(eb: EB, p: Params) -> Result:
    app, label = p.required("ApplicationName"), p.required("VersionLabel")
    store = eb.ctx.store
    if not any(a.name == app for a in store.applications()) and not p.flag("AutoCreateApplication"):
        raise invalid(f"No Application named '{app}' found.")
    if any(v.label == label for v in store.versions(app)):
        raise invalid(f"Application Version {label} already exists.")
    source = p.struct("SourceBundle")
    bucket, key = source.get("S3Bucket"), source.get("S3Key")
    if not bucket or not key:
        raise invalid(
            "Beanpole needs the version's bundle: give SourceBundle.S3Bucket and "
            "SourceBundle.S3Key of a zip uploaded to Beanpole's S3 endpoint (the same URL)."
        )
    try:
        path = await eb.buckets.object_path(bucket, key)
    except NotFound as exc:
        raise invalid(
            f"Unable to download from S3 location (Bucket: {bucket} Key: {key}). {exc.message}"
        ) from None
    version = await eb.ctx.applications.upload(
        app, _chunks(path), label=label, description=p.get("Description") or ""
    )
    stored = store.version(app, version.label)
    eb.meta.update(
        "version",
        stored.id,
        tags=tags_from(p),
        extra={"source": {"bucket": bucket, "key": key}},
    )
    return {"ApplicationVersion": version_description(eb, stored)}


async def describe_application_versions(eb: EB, p: Params) -> Result:
    app = p.get("ApplicationName")
    labels = set(p.strings("VersionLabels"))
    store = eb.ctx.store
    apps = [app] if app else [a.name for a in store.applications()]
    found = []
    for name in apps:
        if not any(a.name == name for a in store.applications()):
            continue
        for v in store.versions(name):  # newest first, as EB lists them
            if not labels or v.label in labels:
                found.append(v)
    start = int(p.get("NextToken") or 0)
    size = p.number("MaxRecords") or PAGE
    page = found[start : start + size]
    result: dict[str, object] = {"ApplicationVersions": [version_description(eb, v) for v in page]}
    if start + size < len(found):
        result["NextToken"] = str(start + size)
    return result


async def update_application_version(eb: EB, p: Params) -> Result:
    app, label = p.required("ApplicationName"), p.required("VersionLabel")
    version = eb.ctx.store.version(app, label)
    description = p.get("Description")
    if description is not None:
        eb.ctx.store.set_version_description(app, label, description)
        version = eb.ctx.store.version(app, label)
    return {"ApplicationVersion": version_description(eb, version)}


async def delete_application_version(eb: EB, p: Params) -> Result:
    app, label = p.required("ApplicationName"), p.required("VersionLabel")
    try:
        version = eb.ctx.store.version(app, label)
    except NotFound:
        raise invalid(f"Application Version {label} of {app} does not exist.") from None
    await eb.ctx.applications.delete_version(app, label)
    eb.meta.delete("version", version.id)
    return None


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            yield chunk


ACTIONS: dict[str, Action] = {
    "CreateApplicationVersion": create_application_version,
    "DescribeApplicationVersions": describe_application_versions,
    "UpdateApplicationVersion": update_application_version,
    "DeleteApplicationVersion": delete_application_version,
}
