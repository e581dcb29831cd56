"""`/metrics` in the Prometheus text format, labelled by application, environment, instance."""

from __future__ import annotations

from beanpole.server.context import Context

_HEALTH_VALUES = ("Ok", "Info", "Warning", "Degraded", "Severe", "Pending", "Unknown")


def _labels(**values: str) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in values.items()
    )
    return "{" + inner + "}"


def prometheus_text(ctx: Context) -> str:
    lines = [
        "# HELP beanpole_requests_per_second Requests per second in the last 10 s window.",
        "# TYPE beanpole_requests_per_second gauge",
    ]
    latency = [
        "# HELP beanpole_latency_seconds Request latency percentiles in the last 10 s window.",
        "# TYPE beanpole_latency_seconds gauge",
    ]
    responses = [
        "# HELP beanpole_responses_share Share of responses by status class (last window).",
        "# TYPE beanpole_responses_share gauge",
    ]
    cpu = [
        "# HELP beanpole_instance_cpu_percent CPU of the instance's processes, % of one core.",
        "# TYPE beanpole_instance_cpu_percent gauge",
    ]
    health = [
        "# HELP beanpole_health_status 1 for the current enhanced health status.",
        "# TYPE beanpole_health_status gauge",
    ]
    monitor = ctx.monitor
    for env in ctx.store.environments():
        keys: list[tuple[str, str | None]] = [("", None)]
        keys += [(i.id, i.id) for i in ctx.store.instances(env.name)]
        for instance, key in keys:
            labels = dict(application=env.application, environment=env.name, instance=instance)
            window = monitor.windows.latest(env.name, key) if monitor else None
            if window is None:
                continue
            lines.append(
                f"beanpole_requests_per_second{_labels(**labels)} {window.requests_per_s:.3f}"
            )
            for cls in (2, 3, 4, 5):
                responses.append(
                    f"beanpole_responses_share{_labels(**labels, code=f'{cls}xx')} "
                    f"{window.share(cls):.4f}"
                )
            for p, ms in window.latency_ms.items():
                latency.append(
                    f"beanpole_latency_seconds{_labels(**labels, quantile=str(p / 100))} "
                    f"{ms / 1000:.4f}"
                )
        for status in _HEALTH_VALUES:
            value = 1 if env.health_status == status else 0
            env_labels = _labels(
                application=env.application, environment=env.name, instance="", status=status
            )
            health.append(f"beanpole_health_status{env_labels} {value}")
        for i in ctx.store.instances(env.name):
            usage = monitor.last_usage.get(i.id) if monitor else None
            if usage is not None:
                inst = _labels(application=env.application, environment=env.name, instance=i.id)
                cpu.append(f"beanpole_instance_cpu_percent{inst} {usage.cpu_percent}")
    return "\n".join([*lines, *responses, *latency, *cpu, *health]) + "\n"
