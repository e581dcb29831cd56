"""Applications: create, describe, update, delete, and their version lifecycle."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from beanpole.core.model import Application, EnvStatus
from beanpole.server.eb.actions.base import Action, Result, tags_from
from beanpole.server.eb.context import EB
from beanpole.server.eb.protocol import Params, Timestamp, invalid

_RULES = ("MaxCountRule", "MaxAgeRule")
FORCE_TIMEOUT_S = 120.0


async def create_application(eb: EB, p: Params) -> Result:
    name = p.required("ApplicationName")
    app = await eb.ctx.applications.create(name)
    eb.meta.update("application", app.id, description=p.get("Description") or "", tags=tags_from(p))
    lifecycle = _lifecycle_from(p)
    if lifecycle:
        await _apply_lifecycle(eb, name, app.id, lifecycle)
    return {"Application": _describe(eb, eb.ctx.store.application(name))}


async def describe_applications(eb: EB, p: Params) -> Result:
    names = set(p.strings("ApplicationNames"))
    apps = await asyncio.to_thread(eb.ctx.store.applications)
    return {"Applications": [_describe(eb, a) for a in apps if not names or a.name in names]}


async def update_application(eb: EB, p: Params) -> Result:
    app = _application(eb, p.required("ApplicationName"))
    description = p.get("Description")
    if description is not None:
        eb.meta.update("application", app.id, description=description)
    return {"Application": _describe(eb, app)}


async def update_application_resource_lifecycle(eb: EB, p: Params) -> Result:
    name = p.required("ApplicationName")
    app = _application(eb, name)
    lifecycle = _lifecycle_from(p)
    await _apply_lifecycle(eb, name, app.id, lifecycle)
    return {"ApplicationName": name, "ResourceLifecycleConfig": _lifecycle_view(lifecycle)}


async def delete_application(eb: EB, p: Params) -> Result:
    name = p.required("ApplicationName")
    app = _application(eb, name)
    if p.flag("TerminateEnvByForce"):
        await _terminate_all(eb, name)
    labels = [v.id for v in eb.ctx.store.versions(name)]
    await eb.ctx.applications.delete(name)
    eb.meta.delete("application", app.id)
    for version_id in labels:
        eb.meta.delete("version", version_id)
    return None


async def _terminate_all(eb: EB, name: str) -> None:
    """Terminate the application's environments and wait until they are (EB's force)."""
    live = [e for e in eb.ctx.store.environments() if e.application == name]
    for env in live:
        if env.status is not EnvStatus.TERMINATING:
            await eb.ctx.environments.terminate(env.name)
    deadline = time.monotonic() + FORCE_TIMEOUT_S
    while any(e.application == name for e in eb.ctx.store.environments()):
        if time.monotonic() > deadline:
            raise invalid(
                f"The environments of application {name} are still terminating; delete it "
                "again once they are Terminated."
            )
        await asyncio.sleep(0.5)


def _application(eb: EB, name: str) -> Application:
    for app in eb.ctx.store.applications():
        if app.name == name:
            return app
    raise invalid(f"No Application named '{name}' found.")


def _describe(eb: EB, app: Application) -> dict[str, Any]:
    meta = eb.meta.get("application", app.id)
    store = eb.ctx.store
    return {
        "ApplicationArn": eb.arn(f"application/{app.name}"),
        "ApplicationName": app.name,
        "Description": meta.description,
        "DateCreated": Timestamp(app.created_at),
        "DateUpdated": Timestamp(app.created_at),
        "Versions": [v.label for v in store.versions(app.name)],
        "ConfigurationTemplates": [c.name for c in store.saved_configurations(app.name)],
        "ResourceLifecycleConfig": _lifecycle_view(meta.extra.get("lifecycle") or {}),
    }


def _lifecycle_from(p: Params) -> dict[str, Any]:
    """ResourceLifecycleConfig as given: ServiceRole and the two rules."""
    given = p.struct("ResourceLifecycleConfig")
    if not given:
        return {}
    out: dict[str, Any] = {"ServiceRole": given.get("ServiceRole")}
    for rule in _RULES:
        prefix = f"VersionLifecycleConfig.{rule}."
        fields = {k[len(prefix) :]: v for k, v in given.items() if k.startswith(prefix)}
        if fields:
            out[rule] = fields
    return out


def _lifecycle_view(lifecycle: dict[str, Any]) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for rule, amount in (("MaxCountRule", "MaxCount"), ("MaxAgeRule", "MaxAgeInDays")):
        given = lifecycle.get(rule) or {}
        rules[rule] = {
            "Enabled": str(given.get("Enabled", "false")).lower() == "true",
            amount: int(given.get(amount) or (200 if amount == "MaxCount" else 180)),
            "DeleteSourceFromS3": str(given.get("DeleteSourceFromS3", "false")).lower() == "true",
        }
    view: dict[str, Any] = {"VersionLifecycleConfig": rules}
    if lifecycle.get("ServiceRole"):
        view = {"ServiceRole": lifecycle["ServiceRole"], **view}
    return view


async def _apply_lifecycle(eb: EB, name: str, app_id: str, lifecycle: dict[str, Any]) -> None:
    """Both rules are Beanpole's version lifecycle (deployed versions always stay); the
    bundles in S3 are the client's (DeleteSourceFromS3 is kept and echoed)."""
    rules = _lifecycle_view(lifecycle)["VersionLifecycleConfig"]
    count, age = rules["MaxCountRule"], rules["MaxAgeRule"]
    keep = int(count["MaxCount"]) if count["Enabled"] else 0
    days = int(age["MaxAgeInDays"]) if age["Enabled"] else 0
    if keep < 0 or days < 0:
        raise invalid("MaxCount and MaxAgeInDays must be 0 or more.")
    await eb.ctx.applications.set_lifecycle(name, keep, days)
    eb.meta.update("application", app_id, extra={"lifecycle": lifecycle})


ACTIONS: dict[str, Action] = {
    "CreateApplication": create_application,
    "DescribeApplications": describe_applications,
    "UpdateApplication": update_application,
    "UpdateApplicationResourceLifecycle": update_application_resource_lifecycle,
    "DeleteApplication": delete_application,
}
