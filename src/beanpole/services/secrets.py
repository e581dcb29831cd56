"""Secret environment properties (`core.secrets`): what each environment's secrets are,
for the processes that get them and the outputs that must not show them.

The settings hold sealed values only; `reveal` opens them for a process's environment,
and `redact` hides both the sealed form and the opened values in text Beanpole writes
about an environment: its events (the store calls it for every event) and the output of
its bundle's commands in deploy logs.
"""

from __future__ import annotations

from collections.abc import Mapping

from beanpole.adapters.secrets import SecretBox
from beanpole.adapters.store.db import Store
from beanpole.core.errors import BeanpoleError, InvalidInput
from beanpole.core.model import Environment
from beanpole.core.secrets import PREFIX, is_sealed, mask, scrub
from beanpole.core.settings import ENV_NAMESPACE, resolve

RELEASES_SCRUBBED = 100  # an environment's newest releases whose secrets are scrubbed


class Secrets:
    def __init__(self, store: Store, box: SecretBox) -> None:
        self.store = store
        self.box = box

    def reveal(self, env: Mapping[str, str]) -> dict[str, str]:
        return self.box.reveal(env)

    def seal(self, changes: Mapping[str, str], secret: list[str]) -> dict[str, str]:
        """``changes`` (``namespace:Option`` -> value) with the keys in ``secret`` sealed.

        Only environment properties can be secret; a plain value that looks sealed is
        refused (it could only be a copy of one, which would not be this server's to open).
        """
        out = dict(changes)
        for key, value in changes.items():
            if is_sealed(value):
                raise InvalidInput(
                    f"The value of {key} starts with {PREFIX!r}, which marks a sealed secret: "
                    "give the value itself, with --secret to keep it secret."
                )
        for key in secret:
            if not key.startswith(ENV_NAMESPACE + ":"):
                raise InvalidInput(
                    f"Only environment properties can be secret, not {key}: "
                    "beanpole setenv ENV --secret KEY=VALUE."
                )
            if key not in changes or changes[key] == "":
                raise InvalidInput(
                    f"Secret {key.rpartition(':')[2]} has no value: give it as --secret KEY=VALUE."
                )
            out[key] = self.box.seal(changes[key])
        return out

    def values(self, env: Environment) -> list[str]:
        """The values of every secret the environment has had: its settings' and its
        releases' (a rollback gives its commands an earlier one), for `scrub`."""
        sealed = {v for v in resolve(*env.layers()).env.values() if is_sealed(v)}
        try:
            for release in self.store.releases(env.name, limit=RELEASES_SCRUBBED):
                sealed.update(v for v in release.settings.values() if is_sealed(v))
        except BeanpoleError:
            pass
        out = []
        for value in sealed:
            try:
                out.append(self.box.open(value))
            except BeanpoleError:
                continue  # a value this key cannot open shows nothing to hide
        return out

    def redact(
        self, env: Environment | None, text: str, also: Mapping[str, str] | None = None
    ) -> str:
        """``text`` with every secret of ``env`` (and of the settings ``also``) hidden."""
        text = mask(text)
        values = self.values(env) if env is not None else []
        if also:
            values += [self.box.open(v) for v in also.values() if is_sealed(v)]
        return scrub(text, values) if values else text

    def redact_by_id(self, environment_id: str | None, text: str) -> str:
        env = None
        if environment_id is not None:
            try:
                env = self.store.environment_by_id(environment_id)
            except BeanpoleError:
                env = None
        return self.redact(env, text)

    def redact_by_name(self, name: str, text: str) -> str:
        try:
            env: Environment | None = self.store.environment(name)
        except BeanpoleError:
            env = None
        return self.redact(env, text)
