"""The supervisord runtime adapter against a real supervisord: no mocks, real processes."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from beanpole.adapters.runtime.supervisord import ProcessState, Supervisor
from beanpole.core.errors import InvalidInput, NotFound
from beanpole.core.runtime import InstanceSpec, ProcessStatus

PY = shlex.quote(sys.executable)
SLEEP = "sleep 1000"  # a process that stays up until stopped

T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll until predicate returns something truthy; fail after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon_pid(sup: Supervisor) -> int:
    return int(sup.pid_path.read_text())


def shutdown_and_check(sup: Supervisor) -> None:
    """Shut supervisord down and check that it and every program it ran are gone."""
    pids = [daemon_pid(sup)] if sup.is_running() else []
    if pids:
        pids += [p.pid for ps in sup.instances().values() for p in ps if p.pid]
    sup.shutdown()
    assert all(gone(pid) for pid in pids)


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    supervisor = Supervisor(tmp_path / "sv")
    supervisor.ensure_running()
    yield supervisor
    shutdown_and_check(supervisor)


def make_spec(
    tmp_path: Path,
    processes: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    instance_id: str = "i-1a2b3c4d",
    **kwargs: Any,
) -> InstanceSpec:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    return InstanceSpec(
        instance_id=instance_id,
        processes=processes,
        cwd=app,
        env={"PATH": os.environ["PATH"], **(env or {})},
        log_dir=kwargs.pop("log_dir", tmp_path / "logs" / instance_id),
        **kwargs,
    )


def python_script(tmp_path: Path, name: str, source: str) -> str:
    """Write a script into the app directory; return the Procfile command that runs it."""
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / name).write_text(textwrap.dedent(source))
    return f"{PY} {name}"


def states(sup: Supervisor, instance_id: str) -> dict[str, ProcessState]:
    return {p.name: p for p in sup.instances().get(instance_id, [])}


def wait_running(sup: Supervisor, instance_id: str, names: set[str]) -> dict[str, ProcessState]:
    def all_running() -> dict[str, ProcessState] | None:
        current = states(sup, instance_id)
        ok = set(current) == names and all(p.state == "RUNNING" for p in current.values())
        return current if ok else None

    return wait_for(all_running, f"{sorted(names)} of {instance_id} to be RUNNING")


def wait_log(sup: Supervisor, path: Path, text: str) -> list[str]:
    return wait_for(
        lambda: [line for line in sup.tail(path) if text in line], f"{text!r} in {path}"
    )


def http_get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def test_instance_serves_http_with_its_env_and_reports_running(
    sup: Supervisor, tmp_path: Path
) -> None:
    port = free_port()
    spec = make_spec(
        tmp_path,
        {
            "web": f"{PY} -m http.server $PORT --bind 127.0.0.1",
            "worker": """sh -c 'echo "worker sees FOO=$FOO"; exec sleep 1000'""",
        },
        env={"PORT": str(port), "FOO": "bar"},
    )
    (spec.cwd / "hello.txt").write_text("hello from the app directory")
    sup.start_instance(spec)

    running = wait_running(sup, spec.instance_id, {"web", "worker"})
    web = running["web"]
    assert web.instance_id == spec.instance_id
    assert web.pid > 0
    assert web.started_at > time.time() - 60
    assert web.stdout_log == spec.log_dir / "web.stdout.log"
    # exec all the way down: the pid supervisord watches is the app itself, not a shell.
    assert "http.server" in psutil.Process(web.pid).cmdline()

    body = wait_for(lambda: http_get(port, "/hello.txt"), f"HTTP on port {port}")
    assert body == "hello from the app directory"
    wait_log(sup, running["worker"].stdout_log, "worker sees FOO=bar")

    sup.start_instance(spec)  # idempotent: the running group is left alone
    assert {n: p.pid for n, p in states(sup, spec.instance_id).items()} == {
        n: p.pid for n, p in running.items()
    }


def test_killed_process_is_restarted_with_a_new_pid(sup: Supervisor, tmp_path: Path) -> None:
    spec = make_spec(tmp_path, {"web": SLEEP})
    sup.start_instance(spec)
    old_pid = wait_running(sup, spec.instance_id, {"web"})["web"].pid

    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> bool:
        web = states(sup, spec.instance_id)["web"]
        return web.state == "RUNNING" and web.pid not in (0, old_pid)

    wait_for(restarted, "web to be restarted")


def test_observe_sees_a_death_at_once_though_it_reuses_an_unchanged_answer(
    sup: Supervisor, tmp_path: Path
) -> None:
    """observe() answers from its last look while nothing changed (issue 7's idle CPU), but
    a process that dies, or one started through it, shows on the very next call."""
    spec = make_spec(tmp_path, {"web": SLEEP})
    sup.start(spec)
    running = wait_for(
        lambda: (
            (o := sup.observe().get(spec.instance_id))
            and o.web is not None
            and o.web.status is ProcessStatus.RUNNING
            and o
        ),
        "web running",
    )
    assert sup.observe() is sup.observe()  # reused: nothing changed
    os.kill(running.pid, signal.SIGKILL)
    wait_for(lambda: not _exists_pid(running.pid), "the killed process to be reaped")
    after = sup.observe()[spec.instance_id].web
    assert after is not None and after.pid != running.pid
    sup.start(make_spec(tmp_path, {"web": SLEEP}, instance_id="i-second"))
    assert "i-second" in sup.observe()


def test_a_crash_looping_process_is_asked_about_alone(
    sup: Supervisor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One instance that keeps dying must not make every observe() a look at all processes."""
    steady = [make_spec(tmp_path, {"web": SLEEP}, instance_id=f"i-steady{n}") for n in range(4)]
    for spec in steady:
        sup.start(spec)
    sup.start(make_spec(tmp_path, {"web": "exit 3"}, instance_id="i-crashing"))

    def settled() -> bool:
        seen = sup.observe()
        return all(seen[s.instance_id].web.status is ProcessStatus.RUNNING for s in steady)

    wait_for(settled, "the steady instances to run")
    full_looks = []
    everything = sup.instances
    monkeypatch.setattr(sup, "instances", lambda: full_looks.append(1) or everything())
    statuses = set()
    for _ in range(40):
        statuses.add(sup.observe()["i-crashing"].web.status)
        time.sleep(0.05)
    assert full_looks == []  # only the crashing process was asked about
    assert statuses & {ProcessStatus.EXITED, ProcessStatus.STARTING, ProcessStatus.FAILED}


def _exists_pid(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_crashing_process_goes_fatal_and_can_be_started_again(
    sup: Supervisor, tmp_path: Path
) -> None:
    # Fails until a file "ok" exists in its working directory.
    crash = """sh -c 'echo boom >&2; test -e ok || exit 1; exec sleep 1000'"""
    spec = make_spec(tmp_path, {"crash": crash})
    sup.start_instance(spec)

    def fatal() -> ProcessState | None:
        p = states(sup, spec.instance_id)["crash"]
        return p if p.state == "FATAL" else None

    dead = wait_for(fatal, "crash to be FATAL", timeout=20)  # 3 retries back off 1+2+3 s
    assert dead.pid == 0
    assert dead.exit_status == 1
    assert dead.spawn_error  # supervisord says "Exited too quickly"
    assert "boom" in sup.tail(dead.stdout_log)  # stderr goes to the one log, as written

    (spec.cwd / "ok").touch()
    sup.start_process(spec.instance_id, "crash")
    wait_running(sup, spec.instance_id, {"crash"})
    sup.start_process(spec.instance_id, "crash")  # already running: no-op
    with pytest.raises(NotFound):
        sup.start_process(spec.instance_id, "nosuch")


def test_stop_instance_stops_the_whole_process_tree(sup: Supervisor, tmp_path: Path) -> None:
    tree = """sh -c 'sleep 1000 & echo $! > child.pid; wait'"""
    spec = make_spec(tmp_path, {"web": tree, "worker": SLEEP})
    sup.start_instance(spec)
    running = wait_running(sup, spec.instance_id, {"web", "worker"})
    child_pid = int(wait_for(lambda: _read(spec.cwd / "child.pid"), "child.pid"))
    pids = [running["web"].pid, running["worker"].pid, child_pid]
    assert not any(gone(pid) for pid in pids)

    sup.stop_instance(spec.instance_id)

    wait_for(lambda: all(gone(pid) for pid in pids), "the whole tree to exit")
    assert spec.instance_id not in sup.instances()
    assert not (sup.programs_dir / f"{spec.instance_id}.conf").exists()
    assert not (sup.specs_dir / f"{spec.instance_id}.json").exists()
    sup.stop_instance(spec.instance_id)  # already gone: no error
    sup.stop_instance("i-neverwas")


def test_signal_instance_reaches_the_app(sup: Supervisor, tmp_path: Path) -> None:
    app = python_script(
        tmp_path,
        "hup.py",
        """
        import signal, time
        signal.signal(signal.SIGHUP, lambda *_: print("got HUP", flush=True))
        print("ready", flush=True)
        time.sleep(1000)
        """,
    )
    spec = make_spec(tmp_path, {"web": app})
    sup.start_instance(spec)
    web = wait_running(sup, spec.instance_id, {"web"})["web"]
    wait_log(sup, web.stdout_log, "ready")

    sup.signal_instance(spec.instance_id, signal.SIGHUP)

    wait_log(sup, web.stdout_log, "got HUP")
    with pytest.raises(NotFound):
        sup.signal_instance("i-neverwas", signal.SIGHUP)


def test_supervisord_outlives_the_process_that_started_it(tmp_path: Path) -> None:
    directory = tmp_path / "sv"
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from beanpole.adapters.runtime.supervisord import Supervisor; "
            "Supervisor(pathlib.Path(sys.argv[1])).ensure_running()",
            str(directory),
        ]
    )
    assert starter.wait(timeout=30) == 0  # the starter is gone ...
    sup = Supervisor(directory)
    try:
        assert sup.is_running()  # ... and supervisord still answers
        pid = daemon_pid(sup)
        assert psutil.Process(pid).ppid() not in (starter.pid, os.getpid())
        assert os.getsid(pid) == pid  # its own session: our terminal's signals miss it
    finally:
        shutdown_and_check(sup)
    assert not sup.is_running()


def test_a_second_supervisor_object_adopts_running_instances(
    sup: Supervisor, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, {"web": SLEEP, "worker": SLEEP})
    sup.start_instance(spec)
    running = wait_running(sup, spec.instance_id, {"web", "worker"})
    supervisord_pid = daemon_pid(sup)

    adopter = Supervisor(sup.directory)
    assert adopter.is_running()
    adopter.ensure_running()  # finds it running: no second supervisord
    assert daemon_pid(adopter) == supervisord_pid
    assert adopter.instances() == {spec.instance_id: sorted(running.values(), key=_name)}

    shutdown_and_check(adopter)
    assert not sup.is_running()


def test_env_values_and_paths_survive_quoting_and_percent(tmp_path: Path) -> None:
    # supervisord %-expands its config and shlex-splits commands: none of that may leak.
    tricky = """100% "double" 'single'  two  spaces $HOME %(ENV_HOME)s ; # é\nline two"""
    sup = Supervisor(tmp_path / "sv 50%")
    sup.ensure_running()
    try:
        printer = python_script(
            tmp_path,
            "printer.py",
            """
            import json, os, sys, time
            print(json.dumps(os.environ["TRICKY"]), sys.argv[1], flush=True)
            time.sleep(1000)
            """,
        )
        spec = make_spec(
            tmp_path,
            {"web": f"{printer} 100%"},
            env={"TRICKY": tricky},
            log_dir=tmp_path / "logs 100%",
        )
        sup.start_instance(spec)
        web = wait_running(sup, spec.instance_id, {"web"})["web"]
        assert web.stdout_log == tmp_path / "logs 100%" / "web.stdout.log"
        [line] = wait_log(sup, web.stdout_log, " 100%")
        assert json.loads(line.removesuffix(" 100%")) == tricky
    finally:
        shutdown_and_check(sup)


def test_logs_rotate_by_size_with_bounded_backups(sup: Supervisor, tmp_path: Path) -> None:
    # supervisord rotates after writing what it read from the pipe, so each 3 kB burst
    # (written apart, so that it reads them apart) starts a new file.
    chatty = python_script(
        tmp_path,
        "chatty.py",
        """
        import sys, time
        for b in range(10):
            sys.stdout.write("".join(f"burst {b:02} line {i:02} {'x' * 80}\\n" for i in range(30)))
            sys.stdout.flush()
            time.sleep(0.05)
        print("done", flush=True)
        time.sleep(1000)
        """,
    )
    spec = make_spec(tmp_path, {"web": chatty}, log_max_bytes=2000, log_backups=2)
    sup.start_instance(spec)
    log = spec.log_dir / "web.stdout.log"
    logs = [log, log.with_name("web.stdout.log.1"), log.with_name("web.stdout.log.2")]
    wait_for(lambda: any("done" in sup.tail(p, 1) for p in logs), "the last line to be logged")

    assert sorted(spec.log_dir.glob("web.stdout.log*")) == logs  # never a .3
    kept = "".join(p.read_text() for p in logs)
    assert "burst 09" in kept
    assert "burst 00" not in kept  # rotated out and deleted


def test_stdout_and_stderr_share_one_log_in_the_order_written(
    sup: Supervisor, tmp_path: Path
) -> None:
    """Issue 8: a crash's traceback (stderr) and what came before it (stdout) read in order,
    in one file per process, which `log_files` and `log_tail` name alone."""
    both = python_script(
        tmp_path,
        "both.py",
        """
        import sys, time
        for i in range(3):
            print(f"out {i}", flush=True)
            print(f"err {i}", file=sys.stderr, flush=True)
            time.sleep(0.05)
        time.sleep(1000)
        """,
    )
    spec = make_spec(tmp_path, {"web": both})
    sup.start_instance(spec)
    log = spec.log_dir / "web.stdout.log"
    wait_log(sup, log, "err 2")
    assert sup.tail(log) == ["out 0", "err 0", "out 1", "err 1", "out 2", "err 2"]
    assert not (spec.log_dir / "web.stderr.log").exists()
    assert sup.log_files(spec.instance_id) == [log]
    assert sup.log_tail(spec.instance_id, 3) == ["err 1", "out 2", "err 2"]


def test_tail_reads_the_last_lines(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "sv")
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)) + "partial")
    assert sup.tail(log, 3) == ["line 99998", "line 99999", "partial"]
    assert sup.tail(log, 0) == []
    assert sup.tail(tmp_path / "missing.log") == []
    (tmp_path / "short.log").write_text("a\nb\n")
    assert sup.tail(tmp_path / "short.log", 10) == ["a", "b"]


def test_bad_names_and_values_are_refused(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "sv")  # validation happens before supervisord is needed
    with pytest.raises(InvalidInput):
        sup.start_instance(make_spec(tmp_path, {"web.1": SLEEP}))
    with pytest.raises(InvalidInput):
        sup.start_instance(make_spec(tmp_path, {"web": SLEEP}, instance_id="i:1"))
    with pytest.raises(InvalidInput):
        sup.start_instance(make_spec(tmp_path, {}))
    with pytest.raises(InvalidInput):
        sup.start_instance(make_spec(tmp_path, {"web": SLEEP}, log_dir=tmp_path / "a\nb"))
    with pytest.raises(InvalidInput):
        sup.stop_instance("../etc")
    with pytest.raises(InvalidInput):
        Supervisor(tmp_path / ("x" * 120))  # the socket path would not fit in sun_path


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _name(p: ProcessState) -> str:
    return p.name


def test_simple_commands_are_execed_and_compound_ones_left_to_the_shell():
    from beanpole.adapters.runtime.launch import shell_line

    assert shell_line("gunicorn app:app") == "exec gunicorn app:app"
    assert shell_line("cd app && gunicorn app:app") == "cd app && gunicorn app:app"
    assert shell_line("echo hi; sleep 1") == "echo hi; sleep 1"
    assert shell_line("DEBUG=1 node app.js") == "exec env DEBUG=1 node app.js"
