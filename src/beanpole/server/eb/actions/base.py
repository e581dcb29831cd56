"""What the action modules share: the handler type, and EB's descriptions of Beanpole's
records (an environment, a version), which several actions answer with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from beanpole.core.errors import NotFound
from beanpole.core.model import Environment, EnvStatus, Version
from beanpole.core.platforms import stacks
from beanpole.server.eb.context import EB
from beanpole.server.eb.protocol import EBError, Params, Timestamp, invalid

Result = dict[str, Any] | None
Action = Callable[[EB, Params], Awaitable[Result]]

_BUILD_STATUS = {
    "pending": "Unprocessed",
    "building": "Processing",
    "built": "Processed",
    "failed": "Failed",
}


def find_environment(eb: EB, p: Params, *, live: bool = True) -> Environment:
    """The environment an action names, by EnvironmentId or EnvironmentName."""
    env_id, name = p.get("EnvironmentId"), p.get("EnvironmentName")
    store = eb.ctx.store
    try:
        if env_id:
            env = store.environment_by_id(env_id)
            if live and env.status is EnvStatus.TERMINATED:
                raise NotFound("terminated")
            return env
        if name:
            return store.environment(name)
    except NotFound:
        raise invalid(
            f"No Environment found for EnvironmentId = '{env_id}'."
            if env_id
            else f"No Environment found for EnvironmentName = '{name}'."
        ) from None
    raise EBError("MissingParameter", "Give EnvironmentId or EnvironmentName.")


def solution_stack(eb: EB, env: Environment) -> tuple[str, str]:
    """The environment's solution stack and platform ARN, as it was named (echoed
    verbatim: Terraform compares them), else the ones of its platform."""
    extra = eb.meta.get("environment", env.id).extra
    platform = env.platform
    if platform is None and env.version_label:  # detected: the running version's
        try:
            platform = eb.ctx.store.version(env.application, env.version_label).platform or None
        except NotFound:
            platform = None
    stack = stacks.stack_for(platform)
    return (
        str(extra.get("solution_stack") or stack.solution_stack),
        str(extra.get("platform_arn") or stack.arn(eb.region)),
    )


def environment_description(eb: EB, env: Environment) -> dict[str, Any]:
    meta = eb.meta.get("environment", env.id)
    stack, arn = solution_stack(eb, env)
    return {
        "EnvironmentName": env.name,
        "EnvironmentId": env.id,
        "ApplicationName": env.application,
        "VersionLabel": env.version_label,
        "SolutionStackName": stack,
        "PlatformArn": arn,
        "TemplateName": env.saved_configuration,
        "Description": meta.description,
        "EndpointURL": eb.ctx.url(env.cname),
        "CNAME": eb.eb_cname(env.cname),
        "DateCreated": Timestamp(env.created_at),
        "DateUpdated": Timestamp(env.updated_at),
        "Status": str(env.status),
        "AbortableOperationInProgress": env.status is EnvStatus.UPDATING,
        "Health": str(env.health),
        "HealthStatus": env.health_status,
        "Tier": {"Name": "WebServer", "Type": "Standard", "Version": "1.0"},
        "EnvironmentLinks": [],
        "EnvironmentArn": eb.arn(f"environment/{env.application}/{env.name}"),
    }


def version_description(eb: EB, version: Version) -> dict[str, Any]:
    meta = eb.meta.get("version", version.id)
    source = meta.extra.get("source") or {}
    return {
        "ApplicationVersionArn": eb.arn(
            f"applicationversion/{version.application}/{version.label}"
        ),
        "ApplicationName": version.application,
        "Description": version.description,
        "VersionLabel": version.label,
        "SourceBundle": (
            {"S3Bucket": source["bucket"], "S3Key": source["key"]} if source else None
        ),
        "DateCreated": Timestamp(version.created_at),
        "DateUpdated": Timestamp(version.created_at),
        "Status": _BUILD_STATUS.get(str(version.build_status), "Unprocessed"),
    }


def tags_from(p: Params, name: str = "Tags") -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in p.structs(name) if "Key" in t}
