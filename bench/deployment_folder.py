"""What a deployment's own folder costs: `Builder.stage` (``cp -a``) on app folders of
growing size.

    python -m bench.deployment_folder [--rounds 5] [--quick]

A version with container_commands or deployment hooks gets, on each deployment, a copy of
its app folder where those steps run and its instances start (docs/decisions.md). This
times that copy, alone, for folders shaped like real apps: a small Flask app, a Django
project after collectstatic (about 200 files), and two large synthetic ones (1,000 files of
10 KiB, 5,000 of 20 KiB), each copied ``rounds`` times into a fresh target; medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

from bench._common import beanpole_home, machine, spread, stamp, write_result

from beanpole.adapters.build import Builder
from beanpole.core.model import Application

SHAPES = (  # name, files, bytes each, folders
    ("flask (2 files)", 2, 2_000, 1),
    ("django after collectstatic (200 files)", 200, 8_000, 20),
    ("1,000 files of 10 KiB", 1_000, 10_240, 50),
    ("5,000 files of 20 KiB", 5_000, 20_480, 200),
)


APP = Application("bench", 0.0, "a-bench00000")


def make(root: Path, files: int, size: int, folders: int) -> None:
    blob = os.urandom(size)
    for n in range(files):
        folder = root / f"d{n % folders}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n}.txt").write_bytes(blob)


def run(rounds: int, log: Any = print) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "deployment_folder",
        "config": {"rounds": rounds},
        "machine": machine(),
        "shapes": [],
    }
    with beanpole_home("stage") as tmp:
        builder = Builder(tmp / "home")
        for index, (name, files, size, folders) in enumerate(SHAPES):
            build = tmp / "home" / "builds" / f"d{index}" / "app"
            make(build, files, size, folders)
            times = []
            for deployment in range(1, rounds + 1):
                started = time.perf_counter()
                asyncio.run(builder.stage(build, APP, f"d{index}", "e-bench", deployment))
                times.append(time.perf_counter() - started)
            builder.prune_stages("e-bench", ())
            row = {"shape": name, "mib": files * size / 2**20, "seconds": spread(times)}
            result["shapes"].append(row)
            log(f"{name:<42}{row['mib']:>8.1f} MiB  {row['seconds']['median'] * 1000:>8.1f} ms")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds")
    args = parser.parse_args(argv)
    print("A deployment's own folder: the copy alone, median of each shape")
    result = run(2 if args.quick else args.rounds)
    path = write_result("deployment_folder", stamp(), result)
    print(f"written to {path}")
    return result


if __name__ == "__main__":
    main()
