"""Configuration: the settings of an environment or a template (EB's configuration
template is Beanpole's saved configuration), the options catalogue, validation."""

from __future__ import annotations

from typing import Any

from beanpole.api import inputs
from beanpole.core.errors import InvalidInput, NotFound
from beanpole.core.model import SavedConfiguration
from beanpole.core.platforms import stacks
from beanpole.core.settings import resolve, validate
from beanpole.core.settings.options import OPTIONS, Option
from beanpole.server.eb.actions import options
from beanpole.server.eb.actions.base import Action, Result, solution_stack
from beanpole.server.eb.context import EB
from beanpole.server.eb.protocol import EBError, Params, Timestamp, invalid

_VALUE_TYPE = {"bool": "Boolean", "int": "Scalar", "number": "Scalar", "enum": "Scalar"}


async def describe_configuration_settings(eb: EB, p: Params) -> Result:
    app = p.required("ApplicationName")
    template, env_name = p.get("TemplateName"), p.get("EnvironmentName")
    if template:
        return {"ConfigurationSettings": [_template_settings(eb, app, template)]}
    if not env_name:
        raise EBError("MissingParameter", "Give TemplateName or EnvironmentName.")
    try:
        env = eb.ctx.store.environment(env_name)
    except NotFound:
        raise invalid(f"No Environment found for EnvironmentName = '{env_name}'.") from None
    if env.application != app:
        raise invalid(f"No Environment named '{env_name}' in application '{app}'.")
    meta = eb.meta.get("environment", env.id)
    resolved = resolve(*env.layers())
    stack, arn = solution_stack(eb, env)
    description = {
        "SolutionStackName": stack,
        "PlatformArn": arn,
        "ApplicationName": env.application,
        "Description": meta.description,
        "EnvironmentName": env.name,
        "DeploymentStatus": "deployed",
        "DateCreated": Timestamp(env.created_at),
        "DateUpdated": Timestamp(env.updated_at),
        "OptionSettings": options.echo(resolved.values, env.settings, meta.extra.get("given", {})),
        # not in botocore's model, but in the eb CLI's own: `eb health` reads it
        "Tier": {"Name": "WebServer", "Type": "Standard", "Version": "1.0"},
    }
    return {"ConfigurationSettings": [description]}


async def create_configuration_template(eb: EB, p: Params) -> Result:
    app, name = p.required("ApplicationName"), p.required("TemplateName")
    env_id = p.get("EnvironmentId")
    source = p.struct("SourceConfiguration")
    base: dict[str, str] = {}
    if source.get("TemplateName"):
        base = _saved(eb, source.get("ApplicationName") or app, source["TemplateName"]).settings
    given = options.given_settings(p)
    environment = eb.ctx.store.environment_by_id(env_id).name if env_id else None
    stack_name, arn = p.get("SolutionStackName"), p.get("PlatformArn")
    if stack_name or arn:
        stacks.platform_of(stack_name or arn or "")  # refused if Beanpole has no such one
    saved = await eb.ctx.configurations.save(
        app,
        inputs.SaveConfiguration(
            name=name,
            environment=environment,
            settings={**base, **options.checked(given)},
            description=p.get("Description") or "",
        ),
    )
    eb.meta.update(
        "template",
        f"{app}/{name}",
        extra={"solution_stack": stack_name, "platform_arn": arn, "given": given},
    )
    return _template_settings(eb, app, saved.name)


async def update_configuration_template(eb: EB, p: Params) -> Result:
    app, name = p.required("ApplicationName"), p.required("TemplateName")
    old = _saved(eb, app, name)
    given = options.given_settings(p)
    removed = options.removals(p)
    settings = {k: v for k, v in old.settings.items() if k not in removed}
    settings.update(options.checked(given))
    description = p.get("Description")
    key = f"{app}/{name}"
    meta = eb.meta.get("template", key)
    await eb.ctx.configurations.delete(app, name)
    await eb.ctx.configurations.save(
        app,
        inputs.SaveConfiguration(
            name=name,
            settings=settings,
            description=old.description if description is None else description,
        ),
    )
    kept = {k: v for k, v in meta.extra.get("given", {}).items() if k not in removed}
    eb.meta.update("template", key, extra={"given": {**kept, **given}})
    return _template_settings(eb, app, name)


async def delete_configuration_template(eb: EB, p: Params) -> Result:
    app, name = p.required("ApplicationName"), p.required("TemplateName")
    _saved(eb, app, name)
    await eb.ctx.configurations.delete(app, name)
    eb.meta.delete("template", f"{app}/{name}")
    return None


async def describe_configuration_options(eb: EB, p: Params) -> Result:
    stack_name = p.get("SolutionStackName")
    platform: str | None = None
    if p.get("EnvironmentName"):
        platform = eb.ctx.store.environment(p.required("EnvironmentName")).platform
    elif stack_name or p.get("PlatformArn"):
        platform = stacks.platform_of(stack_name or p.get("PlatformArn") or "")
    stack = stacks.stack_for(platform)
    wanted = {(o["Namespace"], o.get("OptionName")) for o in p.structs("Options")}
    found = [
        _option(o)
        for o in OPTIONS.values()
        if not wanted or (o.namespace, o.name) in wanted or (o.namespace, None) in wanted
    ]
    return {
        "SolutionStackName": stack_name or stack.solution_stack,
        "PlatformArn": stack.arn(eb.region),
        "Options": found,
    }


async def validate_configuration_settings(eb: EB, p: Params) -> Result:
    p.required("ApplicationName")
    messages = []
    for key, value in options.given_settings(p).items():
        try:
            validate({key: value})
        except InvalidInput as exc:
            messages.append({**options.split_key(key), "Message": exc.message, "Severity": "error"})
    return {"Messages": messages}


def _saved(eb: EB, app: str, name: str) -> SavedConfiguration:
    if not any(a.name == app for a in eb.ctx.store.applications()):
        raise invalid(f"No Application named '{app}' found.")
    try:
        return eb.ctx.store.saved_configuration(app, name)
    except NotFound:
        raise invalid(f"No Configuration Template named '{app}/{name}' found.") from None


def _template_settings(eb: EB, app: str, name: str) -> dict[str, Any]:
    saved = _saved(eb, app, name)
    meta = eb.meta.get("template", f"{app}/{name}")
    stack = stacks.stack_for(saved.platform)
    resolved = resolve(saved.settings)
    return {
        "SolutionStackName": meta.extra.get("solution_stack") or stack.solution_stack,
        "PlatformArn": meta.extra.get("platform_arn") or stack.arn(eb.region),
        "ApplicationName": app,
        "TemplateName": name,
        "Description": saved.description,
        "DateCreated": Timestamp(saved.created_at),
        "DateUpdated": Timestamp(saved.created_at),
        "OptionSettings": options.echo(
            resolved.values, saved.settings, meta.extra.get("given", {})
        ),
        "Tier": {"Name": "WebServer", "Type": "Standard", "Version": "1.0"},
    }


def _option(o: Option) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Namespace": o.namespace,
        "Name": o.name,
        "DefaultValue": o.default,
        "ChangeSeverity": "RestartEnvironment" if o.effect.name == "REPLACE" else "NoInterruption",
        "UserDefined": False,
        "ValueType": _VALUE_TYPE.get(o.kind, "Scalar"),
    }
    if o.choices:
        out["ValueOptions"] = list(o.choices)
    if o.kind == "bool":
        out["ValueOptions"] = ["true", "false"]
    if o.minimum is not None:
        out["MinValue"] = o.minimum
    if o.maximum is not None:
        out["MaxValue"] = o.maximum
    return out


ACTIONS: dict[str, Action] = {
    "DescribeConfigurationSettings": describe_configuration_settings,
    "CreateConfigurationTemplate": create_configuration_template,
    "UpdateConfigurationTemplate": update_configuration_template,
    "DeleteConfigurationTemplate": delete_configuration_template,
    "DescribeConfigurationOptions": describe_configuration_options,
    "ValidateConfigurationSettings": validate_configuration_settings,
}
