"""Option settings in Elastic Beanstalk's namespaces: the schema, validation and resolution."""

from beanpole.core.settings.options import OPTIONS, Option, option_key
from beanpole.core.settings.resolve import (
    ENV_NAMESPACE,
    ResolvedSettings,
    merge_changes,
    parse_assignment,
    resolve,
    validate,
)

__all__ = [
    "ENV_NAMESPACE",
    "OPTIONS",
    "Option",
    "ResolvedSettings",
    "merge_changes",
    "option_key",
    "parse_assignment",
    "resolve",
    "validate",
]
