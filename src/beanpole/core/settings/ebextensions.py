"""`.ebextensions/*.config` option settings: parse, validate and merge them into a layer (pure).

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
ones. As in EB, a file that fails validation is ignored entirely, with a warning that names
the file, the problem and the fix; keys Beanpole does not support yet (``commands``,
``files`` …) are ignored with one warning per file, and the file's option_settings apply.

The caller reads the files (`beanpole.adapters.bundles.read_files`, with `MAX_FILES` and
`MAX_FILE_BYTES`); the limits here bound what a hostile file can make the parser build.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from beanpole.core.errors import InvalidInput
from beanpole.core.settings.resolve import ENV_NAMESPACE, validate

FOLDER = ".ebextensions"
SUFFIX = ".config"
MAX_FILES = 64  # config files read per bundle; later ones are ignored with a warning
MAX_FILE_BYTES = 256 * 1024  # per file: real ones are a few KiB, even with `files:` content
MAX_OPTIONS = 1000  # option settings per file

# The sections of an .ebextensions file EB knows; Beanpole applies only option_settings.
UNSUPPORTED_KEYS = frozenset(
    {
        "packages",
        "groups",
        "users",
        "sources",
        "files",
        "commands",
        "services",
        "container_commands",
        "Resources",
        "Outputs",
        "Parameters",
        "Mappings",
        "Conditions",
        "AWSTemplateFormatVersion",
        "Description",
    }
)
_LONG_FORM_KEYS = ("namespace", "option_name", "value")
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
    """A version's settings from .ebextensions, and what was ignored on the way."""

    settings: dict[str, str]
    warnings: tuple[str, ...] = ()
    origins: dict[str, str] = field(default_factory=dict)  # key -> the file that set it


def layer(files: Iterable[ConfigFile]) -> Layer:
    """Merge the files in the order given (the caller sorts them by name); later ones win."""
    settings: dict[str, str] = {}
    origins: dict[str, str] = {}
    warnings: list[str] = []
    for file in files:
        if file.data is None:
            warnings.append(f"{file.path} is ignored: {file.problem}")
            continue
        try:
            found, ignored_keys = parse(file.data)
        except InvalidInput as exc:
            warnings.append(f"{file.path} is ignored: {exc.message}")
            continue
        if ignored_keys:
            warnings.append(_ignored_keys_warning(file.path, ignored_keys))
        settings.update(found)
        origins.update(dict.fromkeys(found, file.path))
    return Layer(settings, tuple(warnings), origins)


def parse(data: bytes) -> tuple[dict[str, str], list[str]]:
    """One file's option settings, validated, and the top-level keys it ignores.

    Raises InvalidInput, saying what is wrong and how to fix it, when the file as a whole
    must be ignored.
    """
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
        return {}, []
    if not isinstance(document, dict):
        raise InvalidInput(
            f"its top level is {_kind(document)}, not a mapping of keys such as "
            "option_settings. Start the file with 'option_settings:'."
        )
    ignored = [str(key) for key in document if key != "option_settings"]
    options = document.get("option_settings")
    if options is None:
        return {}, ignored
    if isinstance(options, list):
        raw = _long_form(options)
    elif isinstance(options, dict):
        raw = _short_form(options)
    else:
        raise InvalidInput(f"option_settings is {_kind(options)}. {_SHAPE_HINT}")
    return validate(raw), ignored


def _long_form(items: list[Any]) -> dict[str, str]:
    if len(items) > MAX_OPTIONS:
        raise _too_many()
    out: dict[str, str] = {}
    for number, item in enumerate(items, start=1):
        where = f"option_settings entry {number}"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where} is {_kind(item)}, not a mapping. {_SHAPE_HINT}")
        unknown = [str(k) for k in item if k not in _LONG_FORM_KEYS]
        if unknown:
            raise InvalidInput(
                f"{where} has the key {unknown[0]!r}, which Beanpole does not support; "
                "use namespace, option_name and value."
            )
        if "option_name" not in item or "value" not in item:
            missing = "option_name" if "option_name" not in item else "value"
            raise InvalidInput(f"{where} has no {missing}. Give namespace, option_name and value.")
        namespace = _name(item.get("namespace", ENV_NAMESPACE), f"the namespace of {where}")
        name = _name(item["option_name"], f"the option_name of {where}")
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
                f"option_settings namespace {namespace} holds {_kind(options)}, not a mapping "
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
        raise InvalidInput(f"{what} is {_kind(value)}; it must be a name. Quote it if needed.")
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
        f"the value of {key} is {_kind(value)}; option values are strings. Quote the value."
    )


def _kind(value: Any) -> str:
    """What a YAML value is, in words, without printing it (it may be huge)."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the text {value[:40]!r}" if len(value) <= 40 else "a long text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__} value"


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


def _ignored_keys_warning(path: str, keys: list[str]) -> str:
    unsupported = [k for k in keys if k in UNSUPPORTED_KEYS]
    unknown = [k for k in keys if k not in UNSUPPORTED_KEYS]
    parts = []
    if unsupported:
        parts.append(
            f"{', '.join(unsupported)} {'is' if len(unsupported) == 1 else 'are'} not "
            "supported by Beanpole yet and ignored (run build steps from a Buildfile, "
            "processes from a Procfile)"
        )
    for key in unknown[:5]:
        close = difflib.get_close_matches(key, ["option_settings", *UNSUPPORTED_KEYS], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        parts.append(f"{key[:60]!r} is not an .ebextensions key and is ignored{hint}")
    return f"{path}: {'; '.join(parts)}. Its option_settings apply."


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
