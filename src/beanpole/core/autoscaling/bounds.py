"""An environment's bounds: what auto scaling moves the desired count within (pure).

`beanpole.core.capacity` reads them from the settings; they live here, apart from the
settings, so that the decision (`decide`) needs nothing of the settings' modules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bounds:
    min_size: int
    max_size: int

    def clamp(self, count: int) -> int:
        return max(self.min_size, min(count, self.max_size))


@dataclass(frozen=True)
class Override:
    """The bounds a scheduled action set when it fired (`beanpole.core.autoscaling.schedule`):
    they replace the settings' until another action fires or the bounds are set directly,
    as an Auto Scaling group keeps what its last scheduled action gave it."""

    min_size: int | None
    max_size: int | None
    action: str
    at: float  # when it fired

    def as_dict(self) -> dict[str, object]:
        return {"min_size": self.min_size, "max_size": self.max_size, "action": self.action,
                "at": self.at}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Override:
        def size(value: object) -> int | None:
            return value if isinstance(value, int) else None

        at = data.get("at")
        return cls(
            size(data.get("min_size")),
            size(data.get("max_size")),
            str(data.get("action", "")),
            float(at) if isinstance(at, int | float) else 0.0,
        )
