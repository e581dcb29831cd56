"""Per-instance usage counts each instance's whole process tree, and only its own."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from beanpole.adapters.runtime.usage import UsageSampler, listening_ports

# A parent that starts a child (like gunicorn and its workers) and waits.
PARENT = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "time.sleep(60)"
)


@pytest.fixture
def trees() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [subprocess.Popen([sys.executable, "-c", PARENT]) for _ in range(2)]
    try:
        yield procs
    finally:
        for proc in procs:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait(timeout=10)


def test_each_instance_counts_its_root_and_descendants(trees):
    deadline = time.monotonic() + 15
    while any(not psutil.Process(p.pid).children() for p in trees):
        assert time.monotonic() < deadline, "the children did not start"
        time.sleep(0.05)
    usage = UsageSampler().sample({"i-a": [trees[0].pid], "i-b": [trees[1].pid], "i-gone": [0]})
    assert usage["i-a"].processes == 2 and usage["i-b"].processes == 2
    assert usage["i-a"].rss_bytes > 0
    assert usage["i-gone"].processes == 0


def test_listening_ports_are_read_from_the_process_and_its_children():
    """A shell that starts the server as its child (npm start, sh -c) still shows the
    server's port; a process that listens on nothing shows none."""
    server = (
        "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen();"
        "print(s.getsockname()[1], flush=True); time.sleep(60)"
    )
    shell = subprocess.Popen(
        ["/bin/sh", "-c", f'"{sys.executable}" -c "{server}"; true'],
        stdout=subprocess.PIPE,
        text=True,
    )
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert shell.stdout is not None
        port = int(shell.stdout.readline())
        assert listening_ports([shell.pid]) == {port}
        assert listening_ports([idle.pid]) == set()
        assert listening_ports([2**22 + 12345]) == set()  # no such process
    finally:
        for proc in (shell, idle):
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait()
