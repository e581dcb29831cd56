"""`beanpole health ENV`: the `eb health` layout, from the API's health snapshot."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from beanpole.cli.console import out
from beanpole.client import Client

STATUSES = ("Ok", "Info", "Warning", "Degraded", "Severe", "Pending", "Unknown")
_STYLE = {"Green": "green", "Yellow": "yellow", "Red": "red", "Grey": "bright_black"}
PERCENTILES = ("99.0", "90.0", "75.0", "50.0", "10.0")


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} secs"
    if seconds < 7200:
        return f"{seconds // 60} mins"
    return f"{seconds // 3600} hours"


def render(data: dict[str, Any]) -> Group:
    colour = _STYLE.get(data["colour"], "")
    counts = Counter(i["status"] for i in data["instances"])
    header = Text.assemble(
        (f" {data['name']}", "bold"),
        "  ",
        (f"{data['status']}", colour),
        f"  {data['environment_status']}   ",
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data["at"])) if data["at"] else "",
    )
    summary = Table(*(s for s in ("total", *STATUSES)), box=None)
    summary.add_row(str(len(data["instances"])), *(str(counts.get(s, 0)) for s in STATUSES))
    causes = Text("\n".join(f"  {c}" for c in data["causes"]), style=colour)

    status = Table("instance", "status", "cause", box=None)
    requests = Table(
        "instance",
        "r/sec",
        "%2xx",
        "%3xx",
        "%4xx",
        "%5xx",
        *(f"p{p.removesuffix('.0')}" for p in PERCENTILES),
        "",
        box=None,
    )
    host = Table("host", "load1", "load5", "user%", "system%", "idle%", "iowait%", box=None)
    load1, load5 = data["load_average"]
    h = data.get("host")
    host.add_row(
        "",
        f"{load1:.2f}",
        f"{load5:.2f}",
        *(("-",) * 4 if not h else (f"{h[k]:.1f}" for k in ("user", "system", "idle", "iowait"))),
    )
    cpu = Table("instance", "cpu%", "mem MB", "processes", box=None)
    deployments = Table("instance", "status", "id", "version", "ago", box=None)
    rows = [
        {
            "id": "Overall",
            "status": data["status"],
            "colour": data["colour"],
            "causes": [],
            "requests": data["requests"],
            "requests_ended_at": data.get("requests_ended_at"),
        },
        *data["instances"],
    ]
    now = data["at"] or time.time()
    for i in rows:
        style = _STYLE.get(i["colour"], "")
        status.add_row(i["id"], Text(i["status"], style=style), "; ".join(i["causes"]))
        w = i["requests"]
        if w and w["requests"]:
            total = w["requests"]
            requests.add_row(
                i["id"],
                f"{w['requests_per_s']:.1f}",
                *(f"{100 * w[f'status_{c}xx'] / total:.1f}" for c in (2, 3, 4, 5)),
                *(_seconds(w["latency_ms"].get(p)) for p in PERCENTILES),
                "",
            )
        else:
            # Only a recent window's figures are shown (the server sends no other): an idle
            # environment's last window, minutes old, is not its current state.
            requests.add_row(
                i["id"], "0.0", *("-" for _ in range(4 + len(PERCENTILES))), _last_seen(i, now)
            )
        if i["id"] != "Overall":
            cpu.add_row(
                i["id"],
                "-" if i.get("cpu_percent") is None else f"{i['cpu_percent']:.1f}",
                "-" if i.get("rss_bytes") is None else f"{i['rss_bytes'] / 2**20:.0f}",
                "-" if i.get("processes") is None else str(i["processes"]),
            )
            deployments.add_row(
                i["id"],
                i["state"],
                str(i["deployment_id"]),
                i["version"],
                _ago(time.time() - i["launched_at"]),
            )
    sampling = data.get("sampling", 1)
    note = Text(
        f"  requests sampled 1:{sampling} (counts are estimates)" if sampling > 1 else "",
        style="bright_black",
    )
    scaling = data.get("autoscaling")
    scaling_line = Text("")
    if scaling:
        last = scaling.get("last_decision")
        scaling_line = Text(
            f"  instances: {scaling['desired_capacity']} desired, MinSize "
            f"{scaling['min_size']}, MaxSize {scaling['max_size']}"
            + (f"; last decision: {last['message']}" if last else ""),
            style="bright_black",
        )
    return Group(
        header,
        summary,
        scaling_line,
        causes,
        Text(""),
        status,
        Text(""),
        requests,
        note,
        Text(""),
        host,
        Text(""),
        cpu,
        Text(""),
        deployments,
    )


def _last_seen(row: dict[str, Any], now: float) -> str:
    """How long ago the last requests were seen, when that was before the current window."""
    ended = row.get("requests_ended_at")
    if not ended:
        return ""
    return f"no requests recently; the last window ended {_ago(now - ended)} ago"


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.3f}"


@click.command()
@click.argument("env")
@click.option("--refresh", is_flag=True, help="Redraw every 10 seconds (Ctrl-C to stop).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def health(env: str, refresh: bool, as_json: bool) -> None:
    """Show enhanced health: statuses and causes, requests and latency, CPU, deployments."""
    client = Client.discover()
    data = client.health(env).model_dump(mode="json")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if not refresh:
        out.print(render(data))
        return
    with Live(render(data), console=out, refresh_per_second=1, screen=False) as live:
        while True:
            time.sleep(10)
            live.update(render(client.health(env).model_dump(mode="json")))
