"""Validate option settings and resolve them over the defaults (pure)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from beanpole.core import certificates, listener_rules, placement, staticfiles
from beanpole.core.autoscaling import schedule
from beanpole.core.autoscaling.measures import UNITS
from beanpole.core.errors import InvalidInput
from beanpole.core.settings import inert
from beanpole.core.settings.options import NAMESPACES, OPTIONS, Effect, Option, option_key

ENV_NAMESPACE = "aws:elasticbeanstalk:application:environment"
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_RESERVED_ENV = frozenset({"PORT", "BEANPOLE_INSTANCE_ID"})
_PROC = listener_rules.PROCESS_PREFIX + listener_rules.DEFAULT_PROCESS
_LISTENERS = frozenset(
    {listener_rules.HTTP_LISTENER, listener_rules.HTTP_LISTENER_80, listener_rules.HTTPS_LISTENER}
)


def parse_assignment(text: str) -> tuple[str, str]:
    """Parse ``NAMESPACE:OPTION=VALUE`` (the CLI's --setting) into (key, value)."""
    key, sep, value = text.partition("=")
    if not sep or ":" not in key:
        raise InvalidInput(
            f"Setting {text!r} is not of the form NAMESPACE:OPTION=VALUE "
            "(for example aws:autoscaling:asg:MinSize=2)."
        )
    return key.strip(), value


def _check_value(option: Option, value: str) -> str:
    if option.kind == "int":
        try:
            number = int(value)
        except ValueError:
            raise InvalidInput(
                f"Option {option.key} has value {value!r}, which is not a whole number."
            ) from None
        low, high = option.minimum, option.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            raise InvalidInput(
                f"Option {option.key} has value {number}; it must be between {low} and {high}."
            )
        return str(number)
    if option.kind == "number":
        return _check_number(option.key, value)
    if option.kind == "bool":
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise InvalidInput(f"Option {option.key} has value {value!r}; use true or false.")
        return lowered
    if option.kind == "enum" and value not in option.choices:
        raise InvalidInput(
            f"Option {option.key} has value {value!r}; choose one of {', '.join(option.choices)}."
        )
    if option.key.endswith(":MatcherHTTPCode"):
        _check_matcher(value)
    if option.key.endswith(":SSLCertificateArns"):
        certificates.referenced_names(value)  # kept as given: Terraform reads it back
    if option.key == "aws:autoscaling:trigger:Unit":
        _check_unit(option.key, value)
    if option.key == "beanpole:proxy:GzipTypes":
        return " ".join(_check_content_types(option.key, value))
    _check_text(option, value)
    return value


def _check_text(option: Option, value: str) -> None:
    """The checks of free-text options whose value has a form of its own."""
    if option.key.endswith(":HealthCheckPath"):
        listener_rules.check_health_check_path(option.key, value)
    if option.key == "beanpole:instance:Constraints":
        try:
            placement.parse_constraints(value)
        except ValueError as exc:
            raise InvalidInput(f"Option {option.key}: {exc}.") from None


_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")


def _check_content_types(key: str, value: str) -> list[str]:
    types = value.lower().replace(",", " ").split()
    for kind in types:
        if not _CONTENT_TYPE.fullmatch(kind):
            raise InvalidInput(
                f"Option {key} has the content type {kind!r}; list types such as "
                "'text/html text/css application/json', separated by spaces."
            )
    return list(dict.fromkeys(types))


def _check_number(key: str, value: str) -> str:
    try:
        decimal = float(value)
    except ValueError:
        decimal = math.nan
    if not math.isfinite(decimal) or decimal < 0:
        raise InvalidInput(
            f"Option {key} has value {value!r}; it must be a number of 0 or more "
            "(for example 70 or 0.5)."
        )
    return value.strip()


def _check_unit(key: str, value: str) -> None:
    if value and value not in UNITS:
        raise InvalidInput(
            f"Option {key} has value {value!r}; choose one of {', '.join(UNITS)} "
            "(or leave it empty for the measure's own unit)."
        )


def _check_matcher(value: str) -> None:
    for part in value.split(","):
        bounds = part.strip().split("-")
        if not all(b.isdigit() and 100 <= int(b) <= 599 for b in bounds) or len(bounds) > 2:
            raise InvalidInput(
                f"MatcherHTTPCode {value!r} is not valid; use codes like '200', "
                "'200,302' or a range '200-399'."
            )


def _routing_option(namespace: str, name: str, value: str) -> str | None:
    """A named process's, a listener rule's or a listener's ``Rules`` option, normalised
    (`core.listener_rules`); None for any other option."""
    if namespace.startswith(listener_rules.PROCESS_PREFIX) and namespace != _PROC:
        process = namespace.removeprefix(listener_rules.PROCESS_PREFIX)
        checked = listener_rules.check_process_option(process, name, value)
        if name == "MatcherHTTPCode":
            _check_matcher(value)
        return checked
    if namespace.startswith(listener_rules.RULE_PREFIX):
        rule = namespace.removeprefix(listener_rules.RULE_PREFIX)
        return listener_rules.check_rule_option(rule, name, value)
    if name == "Rules" and namespace in _LISTENERS:
        return listener_rules.check_rules_list(f"{namespace}:{name}", value)
    return None


def validate(settings: Mapping[str, str]) -> dict[str, str]:
    """Check every ``namespace:Option`` key and value; return them normalised.

    An empty value for an environment property is kept (EB allows ``K=``).
    """
    out: dict[str, str] = {}
    for key, value in settings.items():
        namespace, _, name = key.rpartition(":")
        if namespace == ENV_NAMESPACE:
            if not _ENV_KEY.match(name):
                raise InvalidInput(
                    f"Environment property name {name!r} is not valid; use letters, digits "
                    "and underscores, not starting with a digit."
                )
            if name in _RESERVED_ENV:
                raise InvalidInput(
                    f"Environment property {name} is set by Beanpole for each instance; "
                    "choose another name."
                )
            out[key] = str(value)
            continue
        if namespace == staticfiles.NAMESPACE:
            # Free-form like the environment properties: the option name is a URL path.
            path, folder = staticfiles.check_mapping(name, str(value))
            out[f"{namespace}:{path}"] = folder
            continue
        if namespace.startswith(schedule.NAMESPACE + ":"):
            # A scheduled action: NAMESPACE:RESOURCE:Option, EB's ResourceName in the key.
            resource = namespace.removeprefix(schedule.NAMESPACE + ":")
            out[key] = schedule.check_option(resource, name, str(value))
            continue
        routing = _routing_option(namespace, name, str(value))
        if routing is not None:
            out[key] = routing
            continue
        option = OPTIONS.get(key)
        if option is None and inert.is_inert(key):
            out[key] = str(value)  # EB's, meaningless here: kept verbatim (`inert`)
            continue
        if option is None:
            if namespace == schedule.NAMESPACE:
                raise InvalidInput(
                    f"Scheduled action option {key!r} names no action. Write "
                    f"{schedule.NAMESPACE}:NAME:{name}, NAME being the action's resource name "
                    "(for example ScaleUpMornings)."
                )
            if namespace in NAMESPACES:
                known = sorted(o.name for o in OPTIONS.values() if o.namespace == namespace)
                raise InvalidInput(
                    f"Unknown option {name!r} in namespace {namespace}. "
                    f"Known options: {', '.join(known)}."
                )
            raise InvalidInput(
                f"Unknown option namespace {namespace!r} (in {key!r}). Known namespaces: "
                f"{ENV_NAMESPACE}, {staticfiles.NAMESPACE}, {schedule.NAMESPACE}:NAME, "
                f"{', '.join(sorted(NAMESPACES))}."
            )
        out[key] = _check_value(option, str(value))
    return out


def merge_changes(
    current: Mapping[str, str], set_: Mapping[str, str], remove: Iterable[str]
) -> dict[str, str]:
    """Apply direct changes: set values win, removed keys fall back to lower precedence."""
    merged = dict(current)
    for key in remove:
        merged.pop(key, None)
    merged.update(validate(set_))
    return merged


@dataclass(frozen=True)
class ResolvedSettings:
    """Direct settings laid over the defaults, with typed accessors."""

    values: dict[str, str]

    def get(self, namespace: str, name: str) -> str:
        return self.values[option_key(namespace, name)]

    def int(self, namespace: str, name: str) -> int:
        return int(self.get(namespace, name))

    @property
    def env(self) -> dict[str, str]:
        prefix = ENV_NAMESPACE + ":"
        return {k[len(prefix) :]: v for k, v in self.values.items() if k.startswith(prefix)}

    def release_key(self, version_digest: str) -> str:
        """Identifies what an instance runs: the version and every option that replaces it."""
        relevant = {
            k: v
            for k, v in sorted(self.values.items())
            if k.startswith(ENV_NAMESPACE + ":")
            or (k in OPTIONS and OPTIONS[k].effect is Effect.REPLACE)
        }
        # a named process's port is its Procfile line's PORT and its instances' DNAT
        ports = listener_rules.ports(self.values)
        blob = json.dumps(
            {
                "version": version_digest,
                "settings": relevant,
                **({"ports": ports} if ports else {}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resolve(*layers: Mapping[str, str]) -> ResolvedSettings:
    """Resolve settings; later layers win (defaults < .ebextensions < saved < direct)."""
    values = {key: option.default for key, option in OPTIONS.items()}
    for layer in layers:
        values.update(layer)
    return ResolvedSettings(values)
