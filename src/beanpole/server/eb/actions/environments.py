"""Environments: create, describe, update, terminate, abort, swap, resources, DNS."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from beanpole.api import inputs
from beanpole.core.errors import NotFound
from beanpole.core.model import Environment, EnvStatus, check_cname
from beanpole.core.platforms import stacks
from beanpole.server.eb.actions import options
from beanpole.server.eb.actions.base import (
    Action,
    Result,
    environment_description,
    find_environment,
    tags_from,
)
from beanpole.server.eb.context import EB
from beanpole.server.eb.protocol import EBError, Params, invalid

TERMINATED_SHOWN_S = 3600.0  # EB lists a terminated environment for about an hour


async def create_environment(eb: EB, p: Params) -> Result:
    app, name = p.required("ApplicationName"), p.required("EnvironmentName")
    tier = p.struct("Tier")
    if tier.get("Name", "WebServer") != "WebServer":
        raise invalid(
            f"Beanpole runs web server environments; the {tier.get('Name')} tier is not "
            "available. Use Tier.Name=WebServer."
        )
    version = p.get("VersionLabel")
    if not version:
        raise invalid(
            "Beanpole needs a VersionLabel to create an environment (it has no sample "
            "application): create a version first (CreateApplicationVersion)."
        )
    stack_name, arn = p.get("SolutionStackName"), p.get("PlatformArn")
    named = stack_name or arn
    platform = stacks.platform_of(named) if named else None
    given = options.given_settings(p)
    settings = options.checked(given)
    # `eb clone` names the environment to copy: its direct settings (and its platform)
    # under the ones given here, as `beanpole clone` does
    source_name = p.struct("TemplateSpecification").get("TemplateSource.EnvironmentName")
    if source_name:
        source = find_environment(eb, Params({"EnvironmentName": source_name}))
        settings = {**source.settings, **settings}
        platform = platform or source.platform
        given = {**eb.meta.get("environment", source.id).extra.get("given", {}), **given}
    for key in options.removals(p):
        settings.pop(key, None)
    spec = inputs.CreateEnvironment(
        name=name,
        application=app,
        version_label=version,
        cname=p.get("CNAMEPrefix") or None,
        settings=settings,
        platform=cast("inputs.PlatformName | None", platform),
        saved_configuration=p.get("TemplateName") or None,
    )
    created = await eb.ctx.environments.create(spec)
    env = eb.ctx.store.environment_by_id(created.environment.id)
    eb.meta.update(
        "environment",
        env.id,
        description=p.get("Description") or "",
        tags=tags_from(p),
        extra={"solution_stack": stack_name, "platform_arn": arn, "given": given},
    )
    return environment_description(eb, env)


async def describe_environments(eb: EB, p: Params) -> Result:
    ids, names = set(p.strings("EnvironmentIds")), set(p.strings("EnvironmentNames"))
    app, label = p.get("ApplicationName"), p.get("VersionLabel")
    include_deleted = p.flag("IncludeDeleted", default=True)
    back_to = p.moment("IncludedDeletedBackTo")
    envs = await asyncio.to_thread(eb.ctx.store.environments, include_terminated=True)
    # A name reused after a terminate: the live one, and terminated ones only if asked for.
    found = []
    for env in envs:
        if ids and env.id not in ids:
            continue
        if names and env.name not in names:
            continue
        if (app and env.application != app) or (label and env.version_label != label):
            continue
        if env.status is EnvStatus.TERMINATED:
            if not include_deleted or (back_to is not None and env.updated_at < back_to):
                continue
            if not ids and not back_to and env.updated_at < _recent():
                continue
        found.append(env)
    return {"Environments": [environment_description(eb, e) for e in found]}


async def update_environment(eb: EB, p: Params) -> Result:
    env = find_environment(eb, p)
    eb.ctx.ops.require_ready(env)  # as EB: any update waits for Ready, a description's too
    if p.get("TemplateName"):
        raise invalid(
            "Beanpole does not re-apply a configuration template to a running environment: "
            "send its OptionSettings instead."
        )
    if p.struct("Tier").get("Name", "WebServer") != "WebServer":
        raise invalid("Beanpole runs web server environments only; the tier cannot change.")
    meta = eb.meta.get("environment", env.id)
    extra: dict[str, Any] = {}
    stack_name, arn = p.get("SolutionStackName"), p.get("PlatformArn")
    if stack_name or arn:
        wanted = stacks.platform_of(stack_name or arn or "")
        if env.platform is not None and wanted != env.platform:
            raise invalid(
                f"Environment {env.name} runs the {env.platform} platform; Beanpole does not "
                f"change an environment's platform to {wanted}. Create a new environment."
            )
        extra = {"solution_stack": stack_name, "platform_arn": arn}
    given = options.given_settings(p)
    removed = options.removals(p)
    started = await eb.ctx.environments.update(
        env.name,
        version_label=p.get("VersionLabel") or None,
        set_=options.checked(given),
        remove=removed,
    )
    kept = {k: v for k, v in meta.extra.get("given", {}).items() if k not in removed}
    extra["given"] = {**kept, **given}
    description = p.get("Description")
    eb.meta.update("environment", env.id, description=description, extra=extra)
    if started is None and description is not None:
        eb.ctx.store.add_event(
            "Environment update completed successfully.",
            environment_id=env.id,
            application=env.application,
        )
    return environment_description(eb, eb.ctx.store.environment_by_id(env.id))


async def terminate_environment(eb: EB, p: Params) -> Result:
    env = find_environment(eb, p)
    await eb.ctx.environments.terminate(env.name)
    return environment_description(eb, eb.ctx.store.environment_by_id(env.id))


async def abort_environment_update(eb: EB, p: Params) -> Result:
    env = find_environment(eb, p)
    await eb.ctx.environments.abort(env.name)
    return None


async def swap_environment_cnames(eb: EB, p: Params) -> Result:
    source = _named(eb, p.get("SourceEnvironmentId"), p.get("SourceEnvironmentName"))
    target = _named(eb, p.get("DestinationEnvironmentId"), p.get("DestinationEnvironmentName"))
    await eb.ctx.environments.swap(source.name, target.name)
    return None


async def describe_environment_resources(eb: EB, p: Params) -> Result:
    env = find_environment(eb, p)
    instances = await asyncio.to_thread(eb.ctx.store.instances, env.name)
    group = f"awseb-{env.id}-stack-AWSEBAutoScalingGroup"
    return {
        "EnvironmentResources": {
            "EnvironmentName": env.name,
            "AutoScalingGroups": [{"Name": group}],
            "Instances": [{"Id": i.id} for i in instances],
            "LaunchConfigurations": [],
            "LaunchTemplates": [],
            # HAProxy is not an ELB the clients could query (`eb status -v` would).
            "LoadBalancers": [],
            "Triggers": [],
            "Queues": [],
        }
    }


async def check_dns_availability(eb: EB, p: Params) -> Result:
    prefix = p.required("CNAMEPrefix")
    cname = check_cname(prefix)  # an invalid one: InvalidParameterValue (app.translate)
    taken = any(e.cname == cname for e in eb.ctx.store.environments())
    return {"Available": not taken, "FullyQualifiedCNAME": eb.eb_cname(cname)}


async def rebuild_environment(eb: EB, p: Params) -> Result:
    """Fresh instances of the running release, through the deployment policy."""
    await _redeploy(eb, p)
    return None


async def restart_app_server(eb: EB, p: Params) -> Result:
    """Beanpole restarts an app server by replacing its instances with fresh ones of the
    same release, through the deployment policy: no request fails, where EB's in-place
    restart drops those in flight (docs/eb-api.md)."""
    await _redeploy(eb, p)
    return None


async def _redeploy(eb: EB, p: Params) -> None:
    env = find_environment(eb, p)
    if env.version_label is None:
        raise invalid(f"Environment {env.name} runs no version yet.")
    await eb.ctx.environments.deploy(env.name, inputs.Deploy(version_label=env.version_label))


def _named(eb: EB, env_id: str | None, name: str | None) -> Environment:
    try:
        if env_id:
            return eb.ctx.store.environment_by_id(env_id)
        if name:
            return eb.ctx.store.environment(name)
    except NotFound as exc:
        raise invalid(exc.message) from None
    raise EBError("MissingParameter", "Name both environments (their ids or names).")


def _recent() -> float:
    return time.time() - TERMINATED_SHOWN_S


ACTIONS: dict[str, Action] = {
    "CreateEnvironment": create_environment,
    "DescribeEnvironments": describe_environments,
    "UpdateEnvironment": update_environment,
    "TerminateEnvironment": terminate_environment,
    "AbortEnvironmentUpdate": abort_environment_update,
    "SwapEnvironmentCNAMEs": swap_environment_cnames,
    "DescribeEnvironmentResources": describe_environment_resources,
    "CheckDNSAvailability": check_dns_availability,
    "RebuildEnvironment": rebuild_environment,
    "RestartAppServer": restart_app_server,
}
