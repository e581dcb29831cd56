"""Settings are resolved again only when an environment's layers change (idle CPU, issue 7)."""

from dataclasses import replace

from beanpole.core.model import Environment, EnvStatus, Health
from beanpole.services.resolved import ResolvedSettingsCache

MIN = "aws:autoscaling:asg:MinSize"


def env(settings: dict[str, str]) -> Environment:
    return Environment(
        "shop", "app", "shop", EnvStatus.READY, Health.GREEN, "v1", settings, 1, 0, 0
    )


def test_the_same_layers_give_the_same_object_and_a_change_resolves_again():
    cache = ResolvedSettingsCache()
    first = cache.get(env({MIN: "2"}))
    assert cache.get(env({MIN: "2"})) is first  # equal layers, another record: no resolve
    changed = cache.get(env({MIN: "3"}))
    assert changed.int("aws:autoscaling:asg", "MinSize") == 3
    layered = cache.get(replace(env({MIN: "3"}), version_settings={MIN: "5"}))
    assert layered is not changed  # a version's .ebextensions layer counts too


def test_environments_that_left_are_forgotten():
    cache = ResolvedSettingsCache()
    first = cache.get(env({}))
    cache.retain(set())
    assert cache.get(env({})) is not first
