"""What a network namespace adds to an instance's start.

    python -m bench.instance_start [--rounds 5] [--quick]

One supervisord (the runtime, no Beanpole server), one small HTTP app (`python -m
http.server`, bound to 127.0.0.1:$PORT as most Procfiles bind). Each round starts one instance
on the host's network (a leased port) and one in a namespace of its own (its slot leased,
namespace, veth and nft rules built, the launcher entering it), in alternating order, and
measures from ``runtime.start(spec)`` to the first HTTP answer on the endpoint it returned,
then stops it (``stop``: including the namespace's removal) and measures that too. The
namespace's own steps (``Namespaces.create`` and ``delete`` alone) are timed as well.

Needs root, ip and nft (the namespace half is skipped otherwise).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench._common import fmt, machine, spread, write_result

from beanpole.adapters.runtime import netns
from beanpole.adapters.runtime.supervisord import Supervisor
from beanpole.core.runtime import Endpoint, InstanceSpec

SERVE = f"{shlex.quote(sys.executable)} -m http.server $PORT --bind 127.0.0.1"
DEADLINE_S = 30.0


def answered(endpoint: Endpoint) -> float:
    deadline = time.monotonic() + DEADLINE_S
    with httpx.Client(trust_env=False, timeout=1.0) as client:
        while time.monotonic() < deadline:
            try:
                client.get(endpoint.url("/"))
                return time.monotonic()
            except httpx.HTTPError:
                time.sleep(0.005)
    raise RuntimeError(f"{endpoint} did not answer within {DEADLINE_S} s")


def one(runtime: Supervisor, folder: Path, instance_id: str, isolate: bool) -> dict[str, float]:
    spec = InstanceSpec(
        instance_id=instance_id,
        processes={"web": SERVE},
        cwd=folder,
        env={"PATH": "/usr/bin:/bin"},
        log_dir=folder / "logs" / instance_id,
        stop_wait_s=5,
        isolate=isolate,
        listen_port=8080,
    )
    began = time.monotonic()
    endpoint = runtime.start(spec)
    assert endpoint.isolated is isolate, endpoint
    ready = answered(endpoint)
    runtime.stop(instance_id)
    stopped = time.monotonic()
    return {"start_s": ready - began, "stop_s": stopped - ready}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    why_not = netns.unavailable()
    kinds = ["host"] + ([] if why_not else ["namespace"])
    if why_not:
        print(f"namespaces unavailable ({why_not}): timing the host network only")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bp-bench-") as tmp:
        folder = Path(tmp)
        spaces = netns.Namespaces() if not why_not else None
        runtime = Supervisor(folder / "sv", namespaces=spaces)
        runtime.ensure_running()
        try:
            for r in range(rounds):
                order = kinds if r % 2 == 0 else list(reversed(kinds))
                for kind in order:
                    times = one(runtime, folder, f"i-{kind[:2]}{r}", kind == "namespace")
                    runs.append({"round": r, "kind": kind, **times})
                if spaces is not None:
                    began = time.monotonic()
                    spaces.create(runtime.owner, f"i-bare{r}", 8080)
                    built = time.monotonic()
                    spaces.delete(runtime.owner, f"i-bare{r}")
                    runs.append(
                        {
                            "round": r,
                            "kind": "namespace alone",
                            "start_s": built - began,
                            "stop_s": time.monotonic() - built,
                        }
                    )
        finally:
            runtime.shutdown()
    summary = {
        kind: {
            "start_s": spread(x["start_s"] for x in runs if x["kind"] == kind),
            "stop_s": spread(x["stop_s"] for x in runs if x["kind"] == kind),
        }
        for kind in [*kinds, *(["namespace alone"] if not why_not else [])]
    }
    print(f"{'instance':18} {'start median (min-max)':28} {'stop median (min-max)':28}")
    for kind, figures in summary.items():
        s, t = figures["start_s"], figures["stop_s"]
        print(
            f"{kind:18} {fmt(s['median'], '.3f')} s ({fmt(s['min'], '.3f')}-"
            f"{fmt(s['max'], '.3f')}){'':8} {fmt(t['median'], '.3f')} s "
            f"({fmt(t['min'], '.3f')}-{fmt(t['max'], '.3f')})"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = write_result(
        "instance_start",
        stamp,
        {"config": {"rounds": rounds}, "machine": machine(), "runs": runs, "summary": summary},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
