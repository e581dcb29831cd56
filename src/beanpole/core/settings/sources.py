"""Where each effective setting comes from: the layers laid over the defaults, with a source.

Elastic Beanstalk's precedence, highest first: settings given directly to the environment
(create, `config`, `setenv`, `scale`), the saved configuration it was created from, the
`.ebextensions` files of the version it runs (alphabetical, later files winning), the
defaults. `explain` answers what `resolve` answers, and for each value, which of those set
it: ``direct``, ``saved:NAME``, ``.ebextensions/FILE`` or ``default`` (pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from beanpole.core.settings.options import OPTIONS
from beanpole.core.settings.resolve import ENV_NAMESPACE

DIRECT = "direct"
DEFAULT = "default"
SAVED_PREFIX = "saved:"
EBEXTENSIONS = ".ebextensions"  # the source of a value whose file was not recorded

# Environment property names that usually hold a secret (matched on the upper-cased end).
_SECRET_ENDINGS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY")


@dataclass(frozen=True)
class SourcedLayer:
    """One layer of settings and what its values come from: ``source`` for every key, unless
    ``origins`` names a more precise one for that key (the .ebextensions file that set it)."""

    values: Mapping[str, str]
    source: str
    origins: Mapping[str, str] = field(default_factory=dict)

    def source_of(self, key: str) -> str:
        return self.origins.get(key, self.source)


@dataclass(frozen=True)
class EffectiveSetting:
    namespace: str
    option: str
    value: str
    source: str

    @property
    def secret(self) -> bool:
        """An environment property whose name looks like it holds a secret."""
        return self.namespace == ENV_NAMESPACE and looks_secret(self.option)


def looks_secret(name: str) -> bool:
    """``DB_PASSWORD``, ``API_SECRET``, ``GITHUB_TOKEN``, ``SECRET_KEY`` …: names whose values
    are shown masked unless asked for."""
    return name.upper().endswith(_SECRET_ENDINGS)


def saved_source(name: str) -> str:
    return f"{SAVED_PREFIX}{name}"


def ebextensions_layer(values: Mapping[str, str], files: Mapping[str, str]) -> SourcedLayer:
    """A version's .ebextensions layer; ``files`` maps a key to the file that set it (empty
    for versions uploaded before Beanpole recorded it: their source is ``.ebextensions``)."""
    return SourcedLayer(values, EBEXTENSIONS, files)


def explain(*layers: SourcedLayer) -> list[EffectiveSetting]:
    """Every effective setting over the defaults, later layers winning (the order `resolve`
    takes), sorted by namespace and option."""
    found: dict[str, tuple[str, str]] = {
        key: (option.default, DEFAULT) for key, option in OPTIONS.items()
    }
    for layer in layers:
        for key, value in layer.values.items():
            found[key] = (value, layer.source_of(key))
    settings = []
    for key, (value, source) in found.items():
        namespace, _, option = key.rpartition(":")
        settings.append(EffectiveSetting(namespace, option, value, source))
    return sorted(settings, key=lambda s: (s.namespace, s.option))
