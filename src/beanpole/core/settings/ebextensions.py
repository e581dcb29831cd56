"""`.ebextensions/*.config`: option settings merged into a layer, and steps (pure).

Elastic Beanstalk reads every ``.ebextensions/*.config`` file at the root of a bundle, in
alphabetical order; each is YAML or JSON (JSON is YAML). Beanpole takes their
``option_settings`` in both forms EB accepts::

    option_settings:                        # long form; namespace defaults to the
      - namespace: aws:elasticbeanstalk:container:python      # environment properties
        option_name: WSGIPath
        value: mysite.wsgi:application

    option_settings:                        # short form
      aws:elasticbeanstalk:application:environment:
        GREETING: hello

Values become strings as EB writes them: ``true`` is ``"true"``, and numbers keep the text
they were written with (``3.10`` stays ``"3.10"``, not ``3.1``). Later files win over earlier
ones. A file that is not YAML or JSON refuses the version (as EB does), naming the file,
the line and the reason; a file whose option settings fail validation is ignored entirely,
with a warning that names the file, the problem and the fix. ``files``, ``commands`` and
``container_commands`` are parsed by `beanpole.core.bundle_steps`; keys Beanpole does not
apply (``packages``, ``Resources`` …) are named in one warning for the bundle.

The caller reads the files (`beanpole.adapters.bundles.read_files`, with `MAX_FILES` and
`MAX_FILE_BYTES`); the limits here bound what a hostile file can make the parser build.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from beanpole.core.bundle_steps import Steps, ignored_section, kind_of, merge, parse_steps
from beanpole.core.errors import InvalidInput
from beanpole.core.settings.resolve import ENV_NAMESPACE, validate

FOLDER = ".ebextensions"
SUFFIX = ".config"
MAX_FILES = 64  # config files read per bundle; later ones are ignored with a warning
MAX_FILE_BYTES = 256 * 1024  # per file: real ones are a few KiB, even with `files:` content
MAX_OPTIONS = 1000  # option settings per file

# The sections of an .ebextensions file Beanpole applies, and those it ignores with a warning.
_APPLIED_KEYS = ("option_settings", "files", "commands", "container_commands")
UNSUPPORTED_KEYS = frozenset(
    {
        "packages",
        "groups",
        "users",
        "sources",
        "services",
        "Resources",
        "Outputs",
        "Parameters",
        "Mappings",
        "Conditions",
        "AWSTemplateFormatVersion",
        "Description",
    }
)
_LONG_FORM_KEYS = ("namespace", "option_name", "value", "resource_name")
_SHAPE_HINT = (
    "Use a list of {namespace, option_name, value} entries or a mapping of namespace "
    "to {option: value}."
)


@dataclass(frozen=True)
class ConfigFile:
    """One file as the bundle holds it: its bytes, or why it was not read."""

    path: str  # relative to the bundle root: ".ebextensions/django.config"
    data: bytes | None
    problem: str = ""  # set when data is None ("it is a symbolic link ...")


@dataclass(frozen=True)
class Layer:
    """A version's settings and steps from .ebextensions, and what was ignored on the way."""

    settings: dict[str, str]
    warnings: tuple[str, ...] = ()
    origins: dict[str, str] = field(default_factory=dict)  # key -> the file that set it
    steps: Steps = field(default_factory=Steps)


class Unreadable(InvalidInput):
    """A config file that does not parse: the version is refused (EB rejects it too)."""


def layer(files: Iterable[ConfigFile]) -> Layer:
    """Merge the files in the order given (the caller sorts them by name); later ones win.

    Raises `Unreadable`, naming the file, the line and the reason, for a file that is not
    YAML or JSON, or whose files/commands/container_commands have the wrong shape. A file
    whose option_settings fail validation is ignored entirely, with a warning. What
    Beanpole ignores (packages, Resources …) is named in one warning for the whole bundle.
    """
    settings: dict[str, str] = {}
    origins: dict[str, str] = {}
    warnings: list[str] = []
    ignored: list[str] = []
    steps: list[Steps] = []
    for file in files:
        if file.data is None:
            warnings.append(f"{file.path} is ignored: {file.problem}")
            continue
        try:
            document = _document(file.data)
        except InvalidInput as exc:
            raise Unreadable(
                f"The configuration file {file.path} in the bundle cannot be read: {exc.message}"
            ) from None
        try:
            found_steps, step_warnings = parse_steps(document, file.path)
        except InvalidInput as exc:
            raise Unreadable(
                f"The configuration file {file.path} in the bundle is refused: {exc.message}"
            ) from None
        try:
            found = _option_settings(document)
        except InvalidInput as exc:
            warnings.append(f"{file.path} is ignored: {exc.message}")
            continue
        ignored += [f"{file.path}: {text}" for text in _ignored_keys(document)]
        warnings += step_warnings
        steps.append(found_steps)
        settings.update(found)
        origins.update(dict.fromkeys(found, file.path))
    if ignored:
        warnings.append("; ".join(ignored) + ".")
    return Layer(settings, tuple(warnings), origins, merge(steps))


def parse(data: bytes) -> tuple[dict[str, str], list[str]]:
    """One file's option settings, validated, and the top-level keys it ignores.

    Raises InvalidInput, saying what is wrong and how to fix it, when the file as a whole
    must be ignored.
    """
    document = _document(data)
    ignored = [str(key) for key in document if key not in _APPLIED_KEYS]
    return _option_settings(document), ignored


def _document(data: bytes) -> dict[Any, Any]:
    try:
        document = yaml.load(data, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise InvalidInput(
            f"it is not valid YAML or JSON ({_yaml_problem(exc)}). Fix its syntax."
        ) from None
    except RecursionError:
        raise InvalidInput(
            "it nests too deeply to read. Write option_settings as a flat list or mapping."
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InvalidInput(
            f"its top level is {kind_of(document)}, not a mapping of keys such as "
            "option_settings. Start the file with 'option_settings:'."
        )
    return document


def _option_settings(document: dict[Any, Any]) -> dict[str, str]:
    options = document.get("option_settings")
    if options is None:
        return {}
    if isinstance(options, list):
        raw = _long_form(options)
    elif isinstance(options, dict):
        raw = _short_form(options)
    else:
        raise InvalidInput(f"option_settings is {kind_of(options)}. {_SHAPE_HINT}")
    return validate(raw)


def _long_form(items: list[Any]) -> dict[str, str]:
    if len(items) > MAX_OPTIONS:
        raise _too_many()
    out: dict[str, str] = {}
    for number, item in enumerate(items, start=1):
        where = f"option_settings entry {number}"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where} is {kind_of(item)}, not a mapping. {_SHAPE_HINT}")
        unknown = [str(k) for k in item if k not in _LONG_FORM_KEYS]
        if unknown:
            raise InvalidInput(
                f"{where} has the key {unknown[0]!r}, which Beanpole does not support; "
                "use namespace, option_name and value (and resource_name for a scheduled "
                "action)."
            )
        if "option_name" not in item or "value" not in item:
            missing = "option_name" if "option_name" not in item else "value"
            raise InvalidInput(f"{where} has no {missing}. Give namespace, option_name and value.")
        namespace = _name(item.get("namespace", ENV_NAMESPACE), f"the namespace of {where}")
        name = _name(item["option_name"], f"the option_name of {where}")
        if "resource_name" in item:
            # aws:autoscaling:scheduledaction's actions: the resource name joins the key
            resource = _name(item["resource_name"], f"the resource_name of {where}")
            namespace = f"{namespace}:{resource}"
        out[f"{namespace}:{name}"] = _text(item["value"], f"{namespace}:{name}")
    return out


def _short_form(namespaces: dict[Any, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_namespace, options in namespaces.items():
        namespace = _name(raw_namespace, "a namespace in option_settings")
        if options is None:
            continue
        if not isinstance(options, dict):
            raise InvalidInput(
                f"option_settings namespace {namespace} holds {kind_of(options)}, not a mapping "
                "of option to value. Write 'OptionName: value' lines under it."
            )
        for raw_name, value in options.items():
            name = _name(raw_name, f"an option name in {namespace}")
            out[f"{namespace}:{name}"] = _text(value, f"{namespace}:{name}")
            if len(out) > MAX_OPTIONS:
                raise _too_many()
    return out


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} is {kind_of(value)}; it must be a name. Quote it if needed.")
    return value.strip()


def _text(value: Any, key: str) -> str:
    """An option value as EB's string: booleans in lower case, null as empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise InvalidInput(
        f"the value of {key} is {kind_of(value)}; option values are strings. Quote the value."
    )


def _too_many() -> InvalidInput:
    return InvalidInput(
        f"it has more than {MAX_OPTIONS} option settings. Split it, or set fewer options."
    )


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)


def _ignored_keys(document: dict[Any, Any]) -> list[str]:
    """A phrase per top-level key Beanpole does not apply: what it held and why."""
    out = []
    for raw_key, value in document.items():
        key = str(raw_key)
        if key in _APPLIED_KEYS:
            continue
        if key in UNSUPPORTED_KEYS:
            out.append(ignored_section(key, value))
            continue
        close = difflib.get_close_matches(key, [*_APPLIED_KEYS, *UNSUPPORTED_KEYS], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.append(f"{key[:60]!r} is not an .ebextensions key and is ignored{hint}")
    return out[:10]


class _Loader(yaml.SafeLoader):
    """Safe YAML whose numbers and dates stay the text that was written (option values are
    strings), whose mapping keys are names as written (``ON:`` is "ON", not True), and
    without merge keys (``<<``), whose copies can grow exponentially."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a name", key_node.start_mark
                )
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "YAML merge keys (<<) are not supported here; write the options out",
                    key_node.start_mark,
                )


def _as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, f"expected a scalar for {node.tag}", node.start_mark
        )
    return str(loader.construct_scalar(node))


for _tag in ("int", "float", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _as_text)
