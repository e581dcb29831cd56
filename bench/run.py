"""Run Beanpole's benchmarks one after another: ``make bench``.

    python -m bench.run [--only NAME[,NAME]] [--quick]

Each benchmark is a module ``bench/<name>.py`` with a ``main(argv)`` function that runs it,
prints its summary and writes ``bench/results/<name>-<time>.json`` (``_common.write_result``).
Every ``main`` accepts ``--quick``: fewer rounds and shorter runs, a smoke test that the
benchmark works end to end, not figures to quote. The runner only calls them in turn, so a new
benchmark is one module plus one name in ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import time
import traceback

# Run in this order: the fastest first, so a broken setup shows within a minute.
BENCHMARKS = (
    "static_files",  # issue 8: static files by the file server vs. the app (needs wrk)
    "lb_overhead",  # issue 3: what HAProxy costs per request (needs wrk)
    "deploy_speed",  # issue 2: from `beanpole deploy` to serving, dependencies cached
    "deploy_under_load",  # every deployment policy under keep-alive load, good then bad
    # Enhanced health's request pipeline (issue 3): bench/health_pipeline.py, with the same
    # main(argv) contract. Listed already; skipped with a note until the module exists.
    "health_pipeline",
    "idle_control_plane",  # issue 7: the idle server's CPU and memory, 20 x 3 and 100 x 3
    "instance_start",  # issue 8: an instance's start with and without a network namespace
    "autoscale",  # issue 9: idle to one saturated instance and back, MinSize 1 MaxSize 4
    "eb_api",  # issue 10: EB's API and S3 face beside the REST API: CPU/call, uploads, deploy
    "console",  # issue 11: the console's page reads and its live streams on an idle host
    "docker_runtime",  # issue 12: one Python app on supervisord and on Docker, side by side
    "deployment_folder",  # issue 8: the copy a deployment with steps makes of the app folder
    "swarm",  # issue 13: requests to swarm tasks vs. host processes; a node's death under load
    "swarm_images",  # issue 13: a version's image under the swarm: made, pushed, pulled
)


def _exists(name: str) -> bool:
    return importlib.util.find_spec(f"bench.{name}") is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME]",
        help=f"run only these benchmarks (of: {', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: fewer rounds, shorter runs"
    )
    args = parser.parse_args(argv)

    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {BENCHMARKS}")
        missing = [n for n in names if not _exists(n)]
        if missing:
            parser.error(f"benchmark {', '.join(missing)} is listed but bench/<name>.py is absent")
    else:
        names = list(BENCHMARKS)

    outcomes: list[tuple[str, str, float]] = []
    for name in names:
        if not _exists(name):
            print(f"== {name}: skipped (bench/{name}.py does not exist yet)\n", flush=True)
            outcomes.append((name, "skipped", 0.0))
            continue
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        started = time.monotonic()
        try:
            module = importlib.import_module(f"bench.{name}")
            module.main(["--quick"] if args.quick else [])
            outcome = "ok"
        except SystemExit as exc:  # a benchmark's own refusal (wrk missing, bad argument)
            outcome = f"failed: {exc.code}" if exc.code not in (0, None) else "ok"
            print(f"{name}: {outcome}")
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            outcome = "failed (traceback above)"
        elapsed = time.monotonic() - started
        outcomes.append((name, outcome, elapsed))
        print(f"== {name}: {outcome} in {elapsed:.0f} s\n", flush=True)

    print("bench summary:")
    for name, outcome, elapsed in outcomes:
        print(f"  {name:<20} {outcome:<12} {elapsed:>6.0f} s")
    return 1 if any(o.startswith("failed") for _, o, _ in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
