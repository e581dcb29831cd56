"""Platforms: from an extracted bundle to a build plan and the commands instances run.

`detect` is pure: it reads a few files of the app and returns a `BuildPlan`.
`beanpole.adapters.build` carries the plan out.
"""

from beanpole.core.platforms.detect import detect
from beanpole.core.platforms.plan import BuildPlan, DependencyStep

__all__ = ["BuildPlan", "DependencyStep", "detect"]
