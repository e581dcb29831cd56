"""`beanpole logs` end to end (issue #4, logs): tails, follow, the zip bundle, and the logs of
instances a deploy replaced, through the real CLI, server, HAProxy and supervisord."""

import io
import re
import signal
import subprocess
import sys
import threading
import zipfile

import httpx

from harness import wait_for


class Output:
    """A CLI process's stdout and stderr lines, read by threads as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for pipe, lines in ((proc.stdout, self.stdout), (proc.stderr, self.stderr)):
            threading.Thread(target=self._read, args=(pipe, lines), daemon=True).start()

    @staticmethod
    def _read(pipe, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line.rstrip("\n"))


def test_logs_tail_follow_bundle_and_replaced_instances(beanpole, pid_app, tmp_path):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2")
    first = sorted(i["id"] for i in beanpole.status("shop")["instances"])

    # the tail: each instance's files, the access log, the create's deploy log
    assert beanpole.get("shop", "/log/tail-marker")[0] == 200

    def tail_with_marker():
        out = beanpole.cli("logs", "shop").stdout
        return out if "stdout tail-marker" in out and "/log/tail-marker" in out else None

    tail = wait_for(tail_with_marker, 15, "the marker in the app's log and in the access log")
    for instance_id in first:
        assert f"----- {instance_id} web.stdout.log -----" in tail
        # issue 8: one file per process, stdout and stderr in the order written
        assert f"----- {instance_id} web.stderr.log -----" not in tail
    assert "----- access shop.access.log -----" in tail
    assert re.search(r"----- deploy \d+\.log \(create, succeeded\) -----", tail)
    assert "createEnvironment is starting." in tail
    assert "INFO  Successfully launched environment: shop" in tail

    # -f: lines merged from every file, prefixed by instance and file; Ctrl-C ends it with 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "beanpole.cli.main", "logs", "shop", "-f"],
        env=beanpole.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = Output(proc)
        wait_for(lambda: any("Following" in line for line in out.stderr), 15, "follow to start")
        assert beanpole.get("shop", "/log/follow-marker")[0] == 200
        wait_for(
            lambda: [
                line
                for line in out.stdout
                if re.fullmatch(r"i-[0-9a-f]{8} web\.stdout\.log \| stdout follow-marker", line)
            ],
            15,
            "the app's marker line in the followed output",
        )
        wait_for(
            lambda: [
                line for line in out.stdout if "web.stdout.log | stderr follow-marker" in line
            ],
            15,
            "the stderr marker",
        )
        wait_for(
            lambda: [
                line
                for line in out.stdout
                if line.startswith("access shop.access.log | ") and "/log/follow-marker" in line
            ],
            15,
            "the request in the followed access log",
        )
        assert not [line for line in out.stdout if "tail-marker" in line]  # starts at the end
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
    assert code == 0, out.stderr

    # a deploy replaces both instances; their logs stay readable
    (pid_app / "VERSION").write_text("v2\n")
    beanpole.cli("deploy", "shop", "--source", str(pid_app), "--label", "two")
    second = sorted(i["id"] for i in beanpole.status("shop")["instances"])
    assert not set(second) & set(first)
    listing = beanpole.cli("logs", "shop").stdout
    assert "----- stopped instances" in listing
    for instance_id in first:
        assert re.search(
            rf"^{instance_id}  stopped, last written .*web\.stdout\.log", listing, re.M
        )
    assert re.search(r"----- deploy \d+\.log \(deploy, succeeded\) -----", listing)
    assert "Environment update completed successfully." in listing
    old = beanpole.cli("logs", "shop", "--instance", first[0]).stdout
    assert f"----- {first[0]} web.stdout.log (stopped) -----" in old
    assert "listening on" in old

    # the bundle: every instance, live and stopped, the access log and both deploy logs
    dest = tmp_path / "shop-logs.zip"
    result = beanpole.cli("logs", "shop", "--zip", str(dest))
    assert result.stdout.startswith(f"Wrote {dest} (")
    with zipfile.ZipFile(dest) as bundle:
        names = set(bundle.namelist())
        for instance_id in first + second:
            assert f"{instance_id}/web.stdout.log" in names
        assert "access/shop.access.log" in names
        deploys = sorted(n for n in names if n.startswith("deploy/"))
        assert len(deploys) == 2
        texts = [bundle.read(n).decode() for n in deploys]
    assert any("createEnvironment is starting." in t for t in texts)
    assert any("Environment update is starting" in t for t in texts)
    one = beanpole.cli("logs", "shop", "--instance", first[1], "--zip", str(tmp_path / "one.zip"))
    assert one.returncode == 0
    with zipfile.ZipFile(tmp_path / "one.zip") as bundle:
        assert {n.split("/")[0] for n in bundle.namelist()} == {first[1]}


def test_logs_errors_are_one_line_and_non_zero(beanpole, pid_app, tmp_path):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    for args in (
        ("logs", "nope-env"),
        ("logs", "shop", "--instance", "i-nope"),
        ("logs", "nope-env", "--zip", str(tmp_path / "x.zip")),
        ("logs", "shop", "-f", "--zip", str(tmp_path / "x.zip")),
        # issue #7: a missing folder printed a traceback
        ("logs", "shop", "--zip", str(tmp_path / "missing" / "dir" / "x.zip")),
    ):
        result = beanpole.cli(*args, check=False)
        assert result.returncode == 1, args
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, args
    assert f"folder {tmp_path / 'missing' / 'dir'} does not exist" in result.stderr
    assert not (tmp_path / "x.zip").exists()
    assert not (tmp_path / "x.zip.part").exists()


def test_logs_api_answers_zip_and_the_json_error_shape(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    token = (beanpole.home / "token").read_text().strip()
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{beanpole.api_port}/api/v1/environments",
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
    )
    with api:
        bundle = api.get("/shop/logs/bundle")
        assert bundle.status_code == 200
        assert bundle.headers["content-type"] == "application/zip"
        assert zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
        for path, params, status, code in (
            ("/shop/logs/follow", {"cursor": "garbage"}, 400, "invalid_input"),
            ("/nope-env/logs/follow", {}, 404, "not_found"),
            ("/nope-env/logs/bundle", {}, 404, "not_found"),
            ("/shop/logs/bundle", {"instance": "i-nope"}, 404, "not_found"),
        ):
            answer = api.get(path, params=params)
            assert answer.status_code == status, path
            assert answer.json()["error"]["code"] == code, path
        page = api.get("/shop/logs/follow").json()
        assert page["lines"] == [] and page["cursor"] and page["more"] is False


def test_terminate_removes_the_environments_logs(beanpole, pid_app):
    beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app))
    instance_id = beanpole.status("shop")["instances"][0]["id"]
    folder = beanpole.home / "instances" / instance_id
    assert folder.is_dir() and (beanpole.home / "logs" / "deploy" / "shop").is_dir()
    beanpole.cli("terminate", "shop")
    assert not folder.exists()
    assert not (beanpole.home / "logs" / "deploy" / "shop").exists()
