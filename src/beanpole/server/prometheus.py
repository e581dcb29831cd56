"""`/metrics` in the Prometheus text format, labelled by application, environment, instance.

A custom collector (prometheus-client's) reads the monitor's state at scrape time, so
nothing is kept twice. ``instance=""`` is the environment as a whole. Counters are totals
since the server started (estimated under sampling: each sampled line counts its weight);
gauges are the latest closed 10 s window, as ``beanpole health`` shows it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from beanpole.adapters.store.db import Store
from beanpole.core.health import Status
from beanpole.core.metrics import NO_SERVER
from beanpole.services.monitor import Monitor

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LABELS = ["application", "environment", "instance"]
_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


class BeanpoleCollector(Collector):
    def __init__(self, store: Store, monitor: Monitor) -> None:
        self.store, self.monitor = store, monitor

    def collect(self) -> Iterator[Metric]:
        responses = CounterMetricFamily(
            "beanpole_http_responses",
            "HTTP responses through the load balancer, by status class.",
            labels=[*_LABELS, "code"],
        )
        rate = GaugeMetricFamily(
            "beanpole_requests_per_second",
            "Requests per second in the latest 10 s window.",
            labels=_LABELS,
        )
        latency = GaugeMetricFamily(
            "beanpole_latency_seconds",
            "Request latency percentiles in the latest 10 s window.",
            labels=[*_LABELS, "quantile"],
        )
        cpu = GaugeMetricFamily(
            "beanpole_instance_cpu_percent",
            "CPU of the instance's process tree, % of one core.",
            labels=_LABELS,
        )
        memory = GaugeMetricFamily(
            "beanpole_instance_memory_bytes",
            "Resident memory of the instance's process tree.",
            labels=_LABELS,
        )
        health = GaugeMetricFamily(
            "beanpole_health_status",
            "1 for the current enhanced health status, 0 for the others.",
            labels=[*_LABELS, "status"],
        )
        sampling = GaugeMetricFamily(
            "beanpole_request_sampling_ratio",
            "1 request line in N reaches the health pipeline (1: every request).",
            labels=["application", "environment"],
        )
        monitor = self.monitor
        for env in self.store.environments():
            app = env.application
            instances = self.store.instances(env.name)
            sampling.add_metric([app, env.name], monitor.ratios.get(env.name, 1))
            for (name, instance, cls), count in monitor.totals.items():
                if name == env.name and cls in _CLASSES and instance != NO_SERVER:
                    responses.add_metric([app, env.name, instance, _CLASSES[cls]], count)
            for (name, cls), count in sorted(monitor.env_totals.items()):
                if name == env.name and cls in _CLASSES:
                    responses.add_metric([app, env.name, "", _CLASSES[cls]], count)
            keys: list[tuple[str, str | None]] = [("", None), *((i.id, i.id) for i in instances)]
            for label, key in keys:
                window = monitor.windows.latest(env.name, key)
                if window is None:
                    continue
                rate.add_metric([app, env.name, label], window.requests_per_s)
                for p, ms in window.latency_ms.items():
                    latency.add_metric([app, env.name, label, f"{p / 100:g}"], ms / 1000)
            statuses = [("", env.health_status), *((i.id, i.health_status) for i in instances)]
            for label, current in statuses:
                for status in Status:
                    value = 1.0 if current == status.value else 0.0
                    health.add_metric([app, env.name, label, status.value], value)
            for i in instances:
                usage = monitor.last_usage.get(i.id)
                if usage is not None:
                    cpu.add_metric([app, env.name, i.id], usage.cpu_percent)
                    memory.add_metric([app, env.name, i.id], usage.rss_bytes)
        yield from (responses, rate, latency, cpu, memory, health, sampling)


def prometheus_text(store: Store, monitor: Monitor) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BeanpoleCollector(store, monitor))
    return generate_latest(registry)
