"""Static files through HAProxy and Beanpole's file server vs. the same file through the app.

One environment of one instance whose app is a keep-alive HTTP/1.1 file server (the static
platform's, `beanpole.adapters.runtime.static_server`), with
``aws:elasticbeanstalk:environment:proxy:staticfiles`` mapping ``/assets`` to its ``static``
folder. The same 2 KB CSS file is fetched with wrk (keep-alive) two ways, interleaved round by
round: ``files`` (``/assets/bench.css``: HAProxy -> Beanpole's static file server) and ``app``
(``/static/bench.css``: HAProxy -> the app's process). Reported: requests/s and p50/p99 per
way, the median of the rounds, and files/app.

    .venv/bin/python -m bench.static_files [--rounds 3] [--seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import (
    Beanpole,
    beanpole_home,
    machine,
    median,
    stamp,
    stop_and_check,
    write_result,
    wrk_argv,
    wrk_json,
)

ENV = "files-bench"
MODES = {"files": "/assets/bench.css", "app": "/static/bench.css"}
CSS = ("body { font-family: sans-serif; color: #222; margin: 0 auto; }\n" * 32)[:2048]


def make_app(root: Path) -> Path:
    app = root / "files-app"
    (app / "static").mkdir(parents=True)
    (app / "static" / "bench.css").write_text(CSS)
    (app / "index.html").write_text("<h1>bench</h1>\n")
    (app / "Procfile").write_text(
        f"web: {sys.executable} -m beanpole.adapters.runtime.static_server .\n"
    )
    (app / ".ebextensions").mkdir()
    (app / ".ebextensions" / "files.config").write_text(
        "option_settings:\n"
        "  aws:elasticbeanstalk:environment:proxy:staticfiles:\n"
        "    /assets: static\n"
    )
    return app


def run_wrk(bp: Beanpole, path: str, seconds: float, threads: int, connections: int) -> Any:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench: needs wrk (apt-get install wrk; scripts/bootstrap.sh does)")
    proc = subprocess.run(
        wrk_argv(
            wrk,
            f"http://127.0.0.1:{bp.lb_port}{path}",
            seconds=seconds,
            threads=threads,
            connections=connections,
            headers=["-H", f"Host: {ENV}.localhost:{bp.lb_port}"],
        ),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    report = wrk_json(proc)
    return {
        "requests": report["requests"],
        "errors": report["errors"],
        "rps": report["requests"] / (report["duration_us"] / 1e6),
        "latency_us": report["latency_us"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 1.0
    result: dict[str, Any] = {
        "benchmark": "static_files",
        "config": vars(args),
        "machine": machine(),
        "runs": [],
    }
    with beanpole_home("files") as tmp, tempfile.TemporaryDirectory() as src:
        bp = Beanpole(tmp / "home")
        try:
            bp.start()
            bp.cli("create", ENV, "--app", ENV, "--source", str(make_app(Path(src))))
            for path in MODES.values():  # warm-up, and both ways answer the file
                status, body = bp.get(ENV, path)
                assert status == 200 and body == CSS, (path, status, body[:200])
                run_wrk(bp, path, 1, args.threads, args.connections)
            modes = list(MODES)
            for r in range(args.rounds):
                for mode in modes[r % 2 :] + modes[: r % 2]:
                    row = run_wrk(bp, MODES[mode], args.seconds, args.threads, args.connections)
                    row.update(mode=mode, round=r + 1)
                    result["runs"].append(row)
                    print(
                        f"  round {r + 1}/{args.rounds} {mode:<5} {row['rps']:>8.0f} req/s  "
                        f"p50 {row['latency_us']['p50']:>6} µs  "
                        f"p99 {row['latency_us']['p99']:>7} µs"
                    )
                    time.sleep(0.2)  # let the previous run's connections close
        finally:
            result["leaked_processes"] = stop_and_check(bp)
    summary: dict[str, Any] = {}
    for mode in MODES:
        rows = [r for r in result["runs"] if r["mode"] == mode]
        summary[mode] = {
            "rps_median": median(r["rps"] for r in rows),
            "p99_us_median": median(r["latency_us"]["p99"] for r in rows),
        }
    files, app = summary["files"]["rps_median"], summary["app"]["rps_median"]
    summary["files_over_app"] = files / app if files and app else None
    result["summary"] = summary
    path = write_result("static_files", stamp(), result)
    print(
        f"static_files: files {files:.0f} req/s, app {app:.0f} req/s (median of "
        f"{args.rounds}), files/app {summary['files_over_app']:.2f}; wrote {path}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
