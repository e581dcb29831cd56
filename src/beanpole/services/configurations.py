"""Saved configurations: save an environment's settings under a name, list, show, delete.

Elastic Beanstalk's configuration templates. Precedence, highest first: the settings given
directly to an environment, the saved configuration it was created from, its version's
`.ebextensions`, the defaults. An environment created from a saved configuration
(`inputs.CreateEnvironment.saved_configuration`, `services.environments`) keeps its name and
a copy of its settings, so deleting it (EB allows that while environments use it) changes
no environment. The methods take what EB's CreateConfigurationTemplate,
DescribeConfigurationSettings and DeleteConfigurationTemplate take, so its query API can
call them as the REST face does.
"""

from __future__ import annotations

import asyncio
import time

from beanpole.adapters.store.db import Store
from beanpole.api import inputs
from beanpole.api.views import SavedConfigurationDeleted, SavedConfigurationView
from beanpole.core.errors import InvalidInput
from beanpole.core.model import SavedConfiguration, check_app_name, check_configuration_name
from beanpole.core.settings import resolve, validate
from beanpole.services.environments import check_sizes


def saved_configuration_view(config: SavedConfiguration) -> SavedConfigurationView:
    return SavedConfigurationView(
        application=config.application,
        name=config.name,
        description=config.description,
        platform=config.platform,
        environment=config.environment,
        settings=config.settings,
        created_at=config.created_at,
    )


class Configurations:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def save(
        self, application: str, spec: inputs.SaveConfiguration
    ) -> SavedConfigurationView:
        """Save ``spec.environment``'s own settings (those of the saved configuration it was
        created from, overlaid with its direct ones: not its version's .ebextensions, which
        come with the version, nor defaults) and its platform, with ``spec.settings`` laid
        over them, as ``spec.name``; a name the application already uses is a conflict."""
        check_app_name(application)
        name = check_configuration_name(spec.name)
        self.store.application(application)  # NotFound, with its advice
        base: dict[str, str] = {}
        platform: str | None = None
        env_id: str | None = None
        if spec.environment is not None:
            env = self.store.environment(spec.environment)
            if env.application != application:
                raise InvalidInput(
                    f"Environment {env.name} belongs to application {env.application}, not "
                    f"{application}. Save it under {env.application}."
                )
            base = {**env.saved_settings, **env.settings}
            # An environment's platform, on stores that record one (issue 8, part 7).
            platform = env.platform
            env_id = env.id
        settings = {**base, **validate(spec.settings)}
        check_sizes(resolve(settings))
        config = SavedConfiguration(
            application=application,
            name=name,
            settings=settings,
            created_at=time.time(),
            description=spec.description,
            platform=platform,
        )
        saved = self.store.add_saved_configuration(config, env_id)
        return saved_configuration_view(saved)

    async def get(self, application: str, name: str) -> SavedConfigurationView:
        """One saved configuration with its settings (DescribeConfigurationSettings with a
        TemplateName)."""
        config = await asyncio.to_thread(self.store.saved_configuration, application, name)
        return saved_configuration_view(config)

    async def list_all(self, application: str | None = None) -> list[SavedConfigurationView]:
        """An application's saved configurations by name, or every application's."""

        def read() -> list[SavedConfigurationView]:
            if application is not None:
                self.store.application(application)  # NotFound, with its advice
            return [
                saved_configuration_view(c) for c in self.store.saved_configurations(application)
            ]

        return await asyncio.to_thread(read)

    async def delete(self, application: str, name: str) -> SavedConfigurationDeleted:
        """Delete it; environments created from it keep the settings they got from it."""
        self.store.delete_saved_configuration(application, name)
        return SavedConfigurationDeleted(application=application, name=name)
