"""Each environment's resolved settings, resolved again only when its option layers change.

The reconciler (every second) and the monitor (every 10 s) need every environment's
settings; resolving them anew each time was a measurable share of the idle server's CPU
(`bench/idle_control_plane.py`), though they change only when an operation changes them.
"""

from __future__ import annotations

from collections.abc import Mapping

from beanpole.core.model import Environment
from beanpole.core.settings import ResolvedSettings, resolve

_Layers = tuple[Mapping[str, str], ...]


class ResolvedSettingsCache:
    def __init__(self) -> None:
        self._cache: dict[str, tuple[_Layers, ResolvedSettings]] = {}

    def get(self, env: Environment) -> ResolvedSettings:
        """``resolve(*env.layers())``, from the cache while the layers are equal."""
        layers = env.layers()
        cached = self._cache.get(env.name)
        if cached is not None and cached[0] == layers:
            return cached[1]
        settings = resolve(*layers)
        self._cache[env.name] = (layers, settings)
        return settings

    def retain(self, names: set[str]) -> None:
        """Forget environments that are gone (the cache stays bounded by what lives)."""
        for name in set(self._cache) - names:
            del self._cache[name]
