"""An environment's health and its metrics history, as every face shows them.

The monitor owns the verdicts; this service reads its latest snapshot, asks for a verdict
at once for an environment created since the last one, and falls back to the statuses
stored in the store when none can be made (supervisord not answering), so a face always
has an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Literal

from beanpole.adapters.runtime.usage import load_average
from beanpole.adapters.store.db import Store
from beanpole.api.views import HealthView, MetricsView, WindowView
from beanpole.core.errors import BeanpoleError, InvalidInput
from beanpole.core.model import Environment, Instance
from beanpole.services.environments import Environments
from beanpole.services.monitor import Monitor

HOUR_S = 3600.0
DAY_S = 86400.0

Resolution = Literal["auto", "10", "300"]


class HealthService:
    def __init__(self, store: Store, monitor: Monitor, environments: Environments) -> None:
        self.store = store
        self.monitor = monitor
        self.environments = environments  # for the auto scaling summary

    async def health(self, name: str) -> HealthView:
        env = await asyncio.to_thread(self.store.environment, name)
        live = await asyncio.to_thread(self.store.instances, name)
        known = self.monitor.snapshot.environments.get(name)
        seen = {row["id"] for row in known["instances"]} if known is not None else set()
        if known is None or {i.id for i in live} - seen:  # created since the last verdict
            with contextlib.suppress(BeanpoleError):  # then the stored statuses below
                await self.monitor.refresh()
        snapshot = self.monitor.snapshot
        data = snapshot.environments.get(name)
        at = snapshot.at
        if data is None:  # no verdict could be made (supervisord not answering)
            at = 0.0
            data = _stored(env, live)
        scaling = None
        with contextlib.suppress(BeanpoleError):
            scaling = await self.environments.autoscaling(name)
        return HealthView.model_validate(
            {
                "autoscaling": scaling,
                "name": name,
                "environment_status": env.status,
                "version": env.version_label,
                "deployment_id": env.deployment_id,
                "at": at,
                "load_average": load_average(),
                **data,
            }
        )

    async def metrics(
        self,
        name: str,
        instance: str = "",
        since: float = 0.0,
        until: float = 0.0,
        resolution: Resolution = "auto",
    ) -> MetricsView:
        """A time series of request windows: 10 s points for the last day, 5 min beyond
        (``instance`` empty: the environment; times in epoch seconds, 0: an hour ago, now)."""
        now = time.time()
        start = since or now - HOUR_S
        end = until or now + 1
        if end <= start:
            raise InvalidInput("'until' must be after 'since'.")
        step = resolution if resolution != "auto" else "10" if start >= now - DAY_S else "300"

        def read() -> list[WindowView]:
            self.store.environment(name)  # NotFound, with its advice
            rows = self.store.metrics(name, instance, start, end, rollup=step == "300")
            return [WindowView.model_validate(data) for _, data in rows]

        points = await asyncio.to_thread(read)
        return MetricsView(
            environment=name, instance=instance or None, resolution_s=int(step), points=points
        )


def _stored(env: Environment, instances: list[Instance]) -> dict[str, Any]:
    """The health the store last recorded, in the monitor's shape, all instances Grey."""
    return {
        "status": env.health_status,
        "colour": env.health,
        "causes": list(env.causes),
        "requests": None,
        "sampling": 1,
        "host": None,
        "instances": [
            {
                "id": i.id,
                "state": i.state,
                "version": i.version_label,
                "deployment_id": i.deployment_id,
                "launched_at": i.created_at,
                "status": i.health_status,
                "colour": "Grey",
                "causes": list(i.causes),
                "requests": None,
                "cpu_percent": None,
                "rss_bytes": None,
                "processes": None,
            }
            for i in instances
        ],
    }
