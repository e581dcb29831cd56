"""Tags of applications, versions and environments, addressed by their ARNs (Terraform
reads them on every refresh of those three resources)."""

from __future__ import annotations

from beanpole.core.errors import NotFound
from beanpole.core.model import EnvStatus
from beanpole.server.eb.actions.base import Action, Result, tags_from
from beanpole.server.eb.context import EB
from beanpole.server.eb.protocol import EBError, Params, invalid

MAX_TAGS = 50


def resource(eb: EB, arn: str) -> tuple[str, str]:
    """(kind, id) of the resource an ARN names; ResourceNotFoundException otherwise."""
    prefix = eb.arn("")
    path = arn.removeprefix(prefix) if arn.startswith(prefix) else ""
    kind, _, rest = path.partition("/")
    store = eb.ctx.store
    try:
        if kind == "application" and rest:
            app = next((a for a in store.applications() if a.name == rest), None)
            if app is not None:
                return kind, app.id
        elif kind == "applicationversion" and "/" in rest:
            app_name, _, label = rest.partition("/")
            return "version", store.version(app_name, label).id
        elif kind == "environment" and "/" in rest:
            app_name, _, env_name = rest.partition("/")
            env = store.environment(env_name)
            if env.application == app_name and env.status is not EnvStatus.TERMINATED:
                return kind, env.id
    except NotFound:
        pass
    raise EBError(
        "ResourceNotFoundException",
        f"Resource {arn} not found. Tags belong to an application, an application version "
        f"or an environment ARN of this server ({prefix}...).",
    )


async def list_tags_for_resource(eb: EB, p: Params) -> Result:
    arn = p.required("ResourceArn")
    kind, key = resource(eb, arn)
    tags = eb.meta.get(kind, key).tags
    return {
        "ResourceArn": arn,
        "ResourceTags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }


async def update_tags_for_resource(eb: EB, p: Params) -> Result:
    kind, key = resource(eb, p.required("ResourceArn"))
    tags = dict(eb.meta.get(kind, key).tags)
    for name in p.strings("TagsToRemove"):
        tags.pop(name, None)
    added = tags_from(p, "TagsToAdd")
    if any(k.startswith(("aws:", "elasticbeanstalk:")) for k in added):
        raise invalid("Tag keys starting with 'aws:' or 'elasticbeanstalk:' are reserved.")
    tags.update(added)
    if len(tags) > MAX_TAGS:
        raise EBError("TooManyTagsException", f"A resource has at most {MAX_TAGS} tags.")
    eb.meta.update(kind, key, tags=tags)
    if kind == "environment":
        env = eb.ctx.store.environment_by_id(key)
        eb.ctx.store.add_event(
            "Environment tag update completed successfully.",
            environment_id=env.id,
            application=env.application,
        )
    return None


ACTIONS: dict[str, Action] = {
    "ListTagsForResource": list_tags_for_resource,
    "UpdateTagsForResource": update_tags_for_resource,
}
