"""Following a process's log while a real supervisord rotates it by size (issue #4, logs)."""

from __future__ import annotations

import os
import shlex
import sys
import textwrap
import time
from pathlib import Path

from beanpole.adapters.logs import Stream, follow
from beanpole.adapters.runtime.supervisord import Supervisor
from beanpole.core.runtime import InstanceSpec

LINES = 3000


def test_follow_loses_and_repeats_no_line_while_supervisord_rotates_the_log(tmp_path: Path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "chatty.py").write_text(
        textwrap.dedent(
            f"""
            import sys, time
            for start in range(0, {LINES}, 20):
                sys.stdout.write("".join(f"line {{i:05}} {{'x' * 80}}\\n"
                                         for i in range(start, start + 20)))
                sys.stdout.flush()
                time.sleep(0.02)
            print("done", flush=True)
            time.sleep(1000)
            """
        )
    )
    spec = InstanceSpec(
        instance_id="i-0f0f0f0f",
        processes={"web": f"{shlex.quote(sys.executable)} chatty.py"},
        cwd=app,
        env={"PATH": os.environ["PATH"]},
        log_dir=tmp_path / "logs",
        log_max_bytes=10_000,
        log_backups=5,
    )
    stream = Stream(spec.instance_id, spec.log_dir / "web.stdout.log")
    sup = Supervisor(tmp_path / "sv")
    sup.ensure_running()
    try:
        cursor = follow("shop", [stream], None).cursor  # before the file exists
        sup.start_instance(spec)
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while "done" not in seen[-1:]:
            assert time.monotonic() < deadline, f"only {len(seen)} lines followed"
            page = follow("shop", [stream], cursor)
            cursor = page.cursor
            seen += [line.line for line in page.lines]
        numbers = [int(line.split()[1]) for line in seen[:-1]]
        assert numbers == list(range(LINES))
        assert (spec.log_dir / "web.stdout.log.5").exists()  # it did rotate, many times
    finally:
        sup.shutdown()
