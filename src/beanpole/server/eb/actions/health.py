"""Enhanced health (`eb health`) and environment info (`eb logs`: tail and bundle)."""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any

from beanpole.api.views import HealthView, LogTail, WindowView
from beanpole.core.model import EnvStatus, InstanceState
from beanpole.server.eb.actions.base import Action, Result, find_environment
from beanpole.server.eb.context import EB, InfoLink
from beanpole.server.eb.protocol import Params, Timestamp, invalid

TAIL_LINES = 100
_PERCENTILES = (
    ("P999", "99.9"),
    ("P99", "99.0"),
    ("P95", "95.0"),
    ("P90", "90.0"),
    ("P85", "85.0"),
    ("P75", "75.0"),
    ("P50", "50.0"),
    ("P10", "10.0"),
)
_COUNTED = ("Ok", "Info", "Warning", "Degraded", "Severe", "Pending", "Unknown", "NoData")


async def describe_environment_health(eb: EB, p: Params) -> Result:
    env = find_environment(eb, p)
    view = await eb.ctx.health.health(env.name)
    counts = dict.fromkeys(_COUNTED, 0)
    for instance in view.instances:
        if instance.state is not InstanceState.STOPPED:
            key = instance.status if instance.status in counts else "Unknown"
            counts[key] += 1
    return {
        "EnvironmentName": env.name,
        "HealthStatus": view.status,
        "Status": _status(view),
        "Color": str(view.colour),
        "Causes": view.causes,
        "ApplicationMetrics": _metrics(view.requests),
        "InstancesHealth": counts,
        "RefreshedAt": Timestamp(view.at or time.time()),
    }


async def describe_instances_health(eb: EB, p: Params) -> Result:
    env = find_environment(eb, p)
    view = await eb.ctx.health.health(env.name)
    instances = []
    for i in view.instances:
        if i.state is InstanceState.STOPPED:
            continue
        cpu = i.cpu_percent or 0.0
        instances.append(
            {
                "InstanceId": i.id,
                "HealthStatus": i.status,
                "Color": str(i.colour),
                "Causes": i.causes,
                "LaunchedAt": Timestamp(i.launched_at),
                "ApplicationMetrics": _metrics(i.requests),
                "System": {
                    "CPUUtilization": {
                        "User": round(min(cpu, 100.0), 1),
                        "System": 0.0,
                        "Idle": round(max(0.0, 100.0 - cpu), 1),
                        "IOWait": 0.0,
                    },
                    "LoadAverage": list(view.load_average),
                },
                "Deployment": {
                    "VersionLabel": i.version,
                    "DeploymentId": i.deployment_id,
                    "Status": "Deployed",
                    "DeploymentTime": Timestamp(i.launched_at),
                },
                "AvailabilityZone": f"{eb.region}a",
                "InstanceType": "beanpole",
            }
        )
    return {"InstanceHealthList": instances, "RefreshedAt": Timestamp(view.at or time.time())}


def _status(view: HealthView) -> str:
    if view.environment_status is EnvStatus.TERMINATED:
        return "Terminated"
    return str(view.environment_status)


def _metrics(window: WindowView | None) -> dict[str, Any]:
    if window is None or window.requests == 0:
        return {"Duration": 10, "RequestCount": 0}
    total = window.requests
    return {
        "Duration": round(window.duration_s),
        "RequestCount": total,
        "StatusCodes": {
            "Status2xx": window.status_2xx,
            "Status3xx": window.status_3xx,
            "Status4xx": window.status_4xx,
            "Status5xx": window.status_5xx,
        },
        "Latency": {
            name: round(window.latency_ms.get(key, 0.0) / 1000, 3) for name, key in _PERCENTILES
        },
    }


async def request_environment_info(eb: EB, p: Params) -> Result:
    env = find_environment(eb, p)
    info_type = p.required("InfoType")
    if info_type not in ("tail", "bundle"):
        raise invalid(f"InfoType must be tail or bundle, not {info_type!r}.")
    eb.ctx.store.add_event(
        "requestEnvironmentInfo is starting.", environment_id=env.id, application=env.application
    )
    eb.info_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    links: dict[str, InfoLink] = {}
    now = time.time()
    if info_type == "tail":
        tail = await eb.ctx.logs.tail(env.name, None, TAIL_LINES)
        for instance_id, text in _tail_texts(tail).items():
            path = eb.info_root / f"{env.id}-{instance_id}-{int(now * 1000)}.txt"
            await asyncio.to_thread(path.write_text, text)
            links[instance_id] = InfoLink("tail", eb.publish(path, "tail"), now, path)
    else:
        bundle = await eb.ctx.logs.bundle(env.name, None)
        path = eb.info_root / f"{env.id}-{int(now * 1000)}.zip"
        await asyncio.to_thread(shutil.move, bundle, path)
        links["all"] = InfoLink("bundle", eb.publish(path, "bundle"), now, path)
    eb.info.setdefault(env.id, {})[info_type] = links
    eb.ctx.store.add_event(
        "Pulled logs for environment instances.",
        environment_id=env.id,
        application=env.application,
    )
    return None


async def retrieve_environment_info(eb: EB, p: Params) -> Result:
    env = find_environment(eb, p)
    info_type = p.required("InfoType")
    links = eb.info.get(env.id, {}).get(info_type, {})
    return {
        "EnvironmentInfo": [
            {
                "InfoType": link.info_type,
                "Ec2InstanceId": instance_id,
                "SampleTimestamp": Timestamp(link.at),
                "Message": link.url,
            }
            for instance_id, link in links.items()
        ]
    }


def _tail_texts(tail: LogTail) -> dict[str, str]:
    """One text per instance: each of its logs under a header, as EB's tail reads; the
    access and deploy logs with the first instance's."""
    texts: dict[str, str] = {}
    for instance in tail.instances:
        if instance.state is not InstanceState.STOPPED:
            texts[instance.id] = "".join(_section(f.name, f.lines) for f in instance.files)
    shared = [f for f in (tail.access, tail.deploy) if f is not None]
    if shared:
        first = next(iter(texts), "all")
        texts[first] = texts.get(first, "") + "".join(_section(f.name, f.lines) for f in shared)
    return texts


def _section(name: str, lines: list[str] | None) -> str:
    rule = "-" * 40
    return f"{rule}\n{name}\n{rule}\n" + "\n".join(lines or []) + "\n"


ACTIONS: dict[str, Action] = {
    "DescribeEnvironmentHealth": describe_environment_health,
    "DescribeInstancesHealth": describe_instances_health,
    "RequestEnvironmentInfo": request_environment_info,
    "RetrieveEnvironmentInfo": retrieve_environment_info,
}
