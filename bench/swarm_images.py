"""What a non-Docker version's image costs under the swarm runtime (issue 13, part 2).

    python -m bench.swarm_images [--rounds 3] [--quick]

On a 3-node test bed of its own (`tests/swarmkit.py`), with a registry like the server's, a
Flask app with its virtualenv (Flask, gunicorn and Django: a Django-sized one) is made into
images by `Swarm.version_image`, each round with a new virtualenv and two new app folders:

- ``cold``: its first version: the dependencies' layer, the app's layer, both pushed;
- ``code_only``: a second version with the same dependencies: only its app layer is new;
- ``cached``: the first version again (another instance of it);
- ``start_image`` / ``start_host``: from `start` to the first answer of an instance of that
  version on a node that has not pulled it yet, beside the same app run from the host's
  folders (the host-root image, as a spec without build folders runs) in the same round;
- ``collect``: the round's versions deleted (their folders and the dependencies' removed, no
  instance left), `Swarm.collect_images` removing their images from the registry (manifests,
  then its garbage collection) and from this host's engine; with the megabytes it freed in
  the registry's storage.

Prints medians (min-max) and writes ``bench/results/swarm_images-<time>.json``. Skipped,
saying why, where the test bed cannot run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from bench._common import machine, spread, stamp, wait_for, write_result

import swarmkit  # tests/swarmkit.py

APP = """\
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "hello"
"""
NOBODY = (65534, 65534)
CASES = ("cold", "code_only", "cached", "start_image", "start_host", "collect")


def why_not() -> str | None:
    from beanpole.adapters.runtime import docker as docker_runtime

    if (reason := swarmkit.unavailable()) is not None:
        return reason
    if (reason := docker_runtime.unavailable()) is not None:
        return f"no Docker engine on this host (it builds and pushes the images): {reason}"
    if shutil.which("uv") is None and not (Path(sys.executable).parent / "uv").exists():
        return "uv is not installed (scripts/bootstrap.sh installs it)"
    return None


def _uv() -> str:
    return shutil.which("uv") or str(Path(sys.executable).parent / "uv")


def make_deps(folder: Path, packages: list[str]) -> None:
    """A virtualenv of ``packages`` at ``folder/venv`` (uv's cache makes later ones quick),
    made from the system's interpreter, which the app user can run."""
    venv = folder / "venv"
    subprocess.run([_uv(), "venv", "-q", "--python", "/usr/bin/python3", str(venv)], check=True)
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            *packages,
        ],
        check=True,
    )
    subprocess.run(["chown", "-R", f"{NOBODY[0]}:{NOBODY[1]}", str(folder)], check=True)


def make_app(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "application.py").write_text(APP)
    os.chown(folder, *NOBODY)
    os.chown(folder / "application.py", *NOBODY)


def spec(home: Path, name: str, deps: Path, app: Path, with_image: bool) -> Any:
    from beanpole.core.runtime import InstanceSpec, RunAs

    instance = home / "instances" / name
    return InstanceSpec(
        instance_id=name,
        processes={"web": f"{deps}/venv/bin/python -m gunicorn -b 127.0.0.1:$PORT application:app"},
        cwd=app,
        env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(instance / "run")},
        log_dir=instance / "logs",
        stop_wait_s=2,
        listen_port=8000,
        run_as=RunAs("nobody", *NOBODY),
        build_dirs=(deps, app) if with_image else (),
    )


def timed(action: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    action(*args)
    return time.perf_counter() - started


def start_to_answer(runtime: Any, instance: Any) -> float:
    started = time.perf_counter()
    endpoint = runtime.start(instance)

    def answers() -> bool:
        try:
            return httpx.get(endpoint.url(), timeout=2.0, trust_env=False).text == "hello"
        except httpx.HTTPError:
            return False

    wait_for(answers, 120, f"{instance.instance_id} to answer", interval=0.02)
    return time.perf_counter() - started


def size_mb(folder: Path) -> float:
    return (
        sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--packages",
        default="flask gunicorn django",
        help="the virtualenv's (a Django-sized one by default; the app uses Flask)",
    )
    parser.add_argument("--quick", action="store_true", help="1 round: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 1
    if (reason := why_not()) is not None:
        print(f"bench.swarm_images: skipped: {reason}")
        return {"benchmark": "swarm_images", "skipped": reason}

    from beanpole.adapters.registry import Registry
    from beanpole.adapters.runtime.swarm import Swarm

    result: dict[str, Any] = {
        "benchmark": "swarm_images",
        "config": vars(args),
        "machine": machine(),
        "runs": [],
    }
    bed = swarmkit.new_bed(f"bpi{os.getpid() % 100000}")
    top = Path(tempfile.mkdtemp(prefix="bp-bench-images-", dir="/var/tmp"))
    top.chmod(0o711)
    home = top / "home"
    registry = Registry(top / "registry", address=bed.host_address, port=swarmkit.free_port())
    runtime = Swarm(
        f"bench-images:{home}",
        registry=registry,
        base_url=bed.manager_url,
        manager_address=bed.manager_address,
        shared=(home / "builds",),
        hidden=(home,),
    )
    try:
        registry.ensure_running()
        bed.trust(registry.ca_file, registry.host)
        runtime.ensure_running()
        builds = home / "builds" / "app"
        for r in range(args.rounds):
            deps = builds / "deps" / "python" / f"key-{r}"
            make_deps(deps, args.packages.split())
            one, two = builds / f"v{r}a" / "app", builds / f"v{r}b" / "app"
            make_app(one)
            make_app(two)
            first = spec(home, f"i-{r}a", deps, one, True)
            row = {
                "round": r + 1,
                "deps_mb": round(size_mb(deps), 1),
                "cold": timed(runtime.version_image, first),
                "code_only": timed(runtime.version_image, spec(home, f"i-{r}b", deps, two, True)),
                "cached": timed(runtime.version_image, first),
                "start_image": start_to_answer(runtime, first),
                "start_host": start_to_answer(runtime, spec(home, f"i-{r}h", deps, one, False)),
            }
            for name in (f"i-{r}a", f"i-{r}h"):
                runtime.stop(name)
            stored = size_mb(registry.storage)
            for folder in (one.parent, two.parent, deps):
                shutil.rmtree(folder)
            started = time.perf_counter()
            row["collected"] = runtime.collect_images()
            row["collect"] = time.perf_counter() - started
            row["freed_mb"] = round(stored - size_mb(registry.storage), 1)
            result["runs"].append(row)
            print(
                f"  round {r + 1}: "
                + ", ".join(f"{k} {row[k]:.2f} s" for k in CASES)
                + f" (dependencies {row['deps_mb']} MB; {row['collected']} images collected,"
                f" {row['freed_mb']} MB freed)"
            )
    finally:
        runtime.shutdown()
        runtime.remove_images()
        runtime.close()
        registry.stop()
        bed.down()
        shutil.rmtree(top, ignore_errors=True)
    result["summary"] = {k: spread(row[k] for row in result["runs"]) for k in CASES}
    path = write_result("swarm_images", stamp(), result)
    print(f"swarm_images (seconds, medians of {args.rounds} rounds, min-max):")
    for k in CASES:
        s = result["summary"][k]
        print(f"  {k:<12} {s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})")
    print(f"  written to {path}")
    return result


if __name__ == "__main__":
    main()
