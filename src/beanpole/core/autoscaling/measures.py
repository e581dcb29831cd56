"""The measures a trigger can watch, their own units, and the units a threshold may be in.

EB's triggers are CloudWatch alarms on an Auto Scaling group's or a load balancer's metrics.
Beanpole measures the same things itself, every 10 s:

- ``CPUUtilization``: an instance's processes' CPU time as a share of one core, as `top`
  shows it (200 = two cores busy). EB's is of a whole virtual machine; a Beanpole instance is
  a process tree on a shared host, and one core is what a single-threaded or GIL-bound app
  can use.
- ``NetworkIn``/``NetworkOut``: bytes an instance received from / sent to the load balancer.
- ``RequestCount``: requests an instance answered.
- ``Latency``/``TargetResponseTime``: seconds from a request's arrival at the load balancer
  to its response (the same clock for both names; EB's classic and application load
  balancers name it differently).
- ``HealthyHostCount``/``UnhealthyHostCount``: in-service instances whose load-balancer check
  passes / fails.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    name: str
    unit: str  # its own unit: what the numbers Beanpole keeps are in
    per_instance: bool  # a data point per instance (else one per 10 s window)


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("CPUUtilization", "Percent", True),
        Measure("NetworkIn", "Bytes", True),
        Measure("NetworkOut", "Bytes", True),
        Measure("RequestCount", "Count", True),
        Measure("Latency", "Seconds", True),
        Measure("TargetResponseTime", "Seconds", True),
        Measure("HealthyHostCount", "Count", False),
        Measure("UnhealthyHostCount", "Count", False),
    )
}

# unit -> (its family's own unit, how many of the own unit one of it is)
_FACTORS: dict[str, tuple[str, float]] = {
    "Percent": ("Percent", 1.0),
    "Count": ("Count", 1.0),
    "Seconds": ("Seconds", 1.0),
    "Milliseconds": ("Seconds", 1e-3),
    "Microseconds": ("Seconds", 1e-6),
    "Bytes": ("Bytes", 1.0),
    "Kilobytes": ("Bytes", 1024.0),
    "Megabytes": ("Bytes", 1024.0**2),
    "Gigabytes": ("Bytes", 1024.0**3),
    "Bits": ("Bytes", 1 / 8),
    "Kilobits": ("Bytes", 1024 / 8),
    "Megabits": ("Bytes", 1024.0**2 / 8),
    "Gigabits": ("Bytes", 1024.0**3 / 8),
}
UNITS: tuple[str, ...] = tuple(_FACTORS)

# short forms for messages: "91 %", "1.2 s", "3,400,000 B"
_SYMBOL = {"Percent": "%", "Seconds": "s", "Bytes": "B", "Count": ""}


def compatible_units(measure: str) -> tuple[str, ...]:
    own = MEASURES[measure].unit
    return tuple(u for u, (family, _) in _FACTORS.items() if family == own)


def to_own_unit(measure: str, unit: str, value: float) -> float:
    """``value`` in ``unit`` as a number in the measure's own unit; ValueError if the unit
    does not fit the measure (say which do)."""
    own = MEASURES[measure].unit
    family, factor = _FACTORS[unit]
    if family != own:
        raise ValueError(
            f"Unit {unit} does not fit {measure}, which is measured in {own}; use one of "
            f"{', '.join(compatible_units(measure))}."
        )
    return value * factor


def show(measure: str, value: float) -> str:
    """A value in the measure's own unit, for an event: ``91 %``, ``0.84 s``, ``120``."""
    own = MEASURES[measure].unit
    symbol = _SYMBOL[own]
    if own == "Seconds":
        text = f"{value:.3g}"
    elif abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    else:
        text = f"{value:.1f}"
    return f"{text} {symbol}" if symbol else text
