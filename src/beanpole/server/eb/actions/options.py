"""EB's OptionSettings ↔ Beanpole's ``namespace:Option`` keys, and the verbatim echo.

A scheduled action's options carry EB's ResourceName; Beanpole keys them
``aws:autoscaling:scheduledaction:NAME:Option``. Values are echoed exactly as the client
gave them (Terraform compares strings: ``True`` against a stored ``true`` is a change on
every plan) for as long as the setting they gave is the one in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from beanpole.core.autoscaling import schedule
from beanpole.core.errors import InvalidInput
from beanpole.core.settings import validate
from beanpole.server.eb.protocol import Params, invalid


def key_of(namespace: str, name: str, resource: str | None = None) -> str:
    if namespace == schedule.NAMESPACE and resource:
        return f"{namespace}:{resource}:{name}"
    return f"{namespace}:{name}"


def split_key(key: str) -> dict[str, str]:
    namespace, _, name = key.rpartition(":")
    prefix = schedule.NAMESPACE + ":"
    if namespace.startswith(prefix):
        return {
            "ResourceName": namespace.removeprefix(prefix),
            "Namespace": schedule.NAMESPACE,
            "OptionName": name,
        }
    return {"Namespace": namespace, "OptionName": name}


def given_settings(p: Params, name: str = "OptionSettings") -> dict[str, str]:
    """The options a request sets, raw values as sent."""
    out: dict[str, str] = {}
    for item in p.structs(name):
        namespace, option = item.get("Namespace"), item.get("OptionName")
        if not namespace or not option:
            raise invalid(f"Each of {name} needs a Namespace and an OptionName.")
        out[key_of(namespace, option, item.get("ResourceName"))] = item.get("Value", "")
    return out


def removals(p: Params) -> list[str]:
    return [
        key_of(item.get("Namespace", ""), item.get("OptionName", ""), item.get("ResourceName"))
        for item in p.structs("OptionsToRemove")
    ]


def checked(settings: Mapping[str, str]) -> dict[str, str]:
    """Validated (normalised) settings; a bad one is EB's InvalidParameterValue."""
    try:
        return validate(settings)
    except InvalidInput as exc:
        raise invalid(f"Invalid option specification: {exc.message}") from None


def echo(
    resolved: Mapping[str, str], direct: Mapping[str, str], given: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every option in force as EB's ConfigurationOptionSetting, the given spelling of
    each direct one that is still what it set."""
    out = []
    for key in sorted(resolved):
        value = resolved[key]
        raw = given.get(key)
        if raw is not None and key in direct and _same(key, raw, direct[key]):
            value = raw
        out.append({**split_key(key), "Value": value})
    return out


def _same(key: str, raw: str, current: str) -> bool:
    try:
        return validate({key: raw}).get(key) == current
    except InvalidInput:
        return False
