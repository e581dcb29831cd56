"""The `eb` CLI (awsebcli, in .venv-ebcli) against Beanpole's Elastic Beanstalk endpoint
(issue #10).

An environment made with Beanpole's own CLI is driven from an app folder holding the
`.elasticbeanstalk/config.yml` that `eb init` writes: `eb status`, `eb events`,
`eb health`, `eb deploy` (a small bundle, then one over 8 MiB, which the eb CLI uploads
to S3 in parts) and `eb logs`. eb finds the server through `AWS_ENDPOINT_URL` (the EB and
the S3 client both), and signs with a key from `beanpole keys create`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness import wait_for

pytestmark = pytest.mark.slow

EB = Path(__file__).parent.parent.parent / ".venv-ebcli" / "bin" / "eb"

APP = "eb-shop"
ENV = "eb-web"

CONFIG_YML = f"""\
branch-defaults:
  default:
    environment: {ENV}
global:
  application_name: {APP}
  default_ec2_keyname: null
  default_platform: Python 3.11 running on 64bit Amazon Linux 2023
  default_region: us-east-1
  include_git_submodules: true
  instance_profile: null
  platform_name: null
  platform_version: null
  profile: null
  sc: null
  workspace_type: Application
"""


class EbCli:
    """`eb` run in an app folder, with only the given credentials and endpoint in its
    environment (HOME is a fresh folder: no ~/.aws config leaks in)."""

    def __init__(self, folder: Path, home: Path, key: dict[str, str], endpoint: str) -> None:
        self.folder = folder
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BEANPOLE_"))}
        env.update(
            HOME=str(home),
            AWS_ACCESS_KEY_ID=key["access_key_id"],
            AWS_SECRET_ACCESS_KEY=key["secret_access_key"],
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=endpoint,  # the EB client and the S3 client
            PAGER="cat",  # `eb logs` pages its output
            GIT_CEILING_DIRECTORIES=str(folder.parent),  # no source control: branch "default"
        )
        self.env = env

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(EB), *args],
            cwd=self.folder,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        print(f"$ eb {' '.join(args)} -> exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            raise AssertionError(
                f"eb {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc


def served_version(bp) -> str:
    status, body = bp.get(ENV)
    assert status == 200, (status, body)
    return str(json.loads(body)["version"])


def test_eb_cli_status_events_health_deploy_and_logs(beanpole, pid_app, tmp_path):
    if not EB.exists():
        pytest.skip(f"the eb CLI is not installed ({EB} is missing: run scripts/bootstrap.sh)")
    bp = beanpole
    key = json.loads(bp.cli("keys", "create", "--json", "--description", "eb cli").stdout)
    bp.cli("create", ENV, "--app", APP, "--source", str(pid_app), "--label", "v1", "--scale", "2")
    (pid_app / ".elasticbeanstalk").mkdir()
    (pid_app / ".elasticbeanstalk" / "config.yml").write_text(CONFIG_YML)
    home = tmp_path / "home"
    home.mkdir()
    eb = EbCli(pid_app, home, key, bp.eb_endpoint)

    status = eb("status").stdout
    assert f"Environment details for: {ENV}" in status
    assert f"Application name: {APP}" in status
    assert "Deployed Version: v1" in status
    assert "Status: Ready" in status

    events = eb("events").stdout
    assert "createEnvironment is starting." in events
    assert f"Successfully launched environment: {ENV}" in events

    instances = [i["id"] for i in bp.status(ENV)["instances"]]
    assert len(instances) == 2
    health = eb("health").stdout  # without --refresh: one screen, then it exits
    assert ENV in health
    for instance in instances:
        assert instance in health, instance

    # A changed file deployed as v2: eb uploads the bundle to S3 and waits for the events.
    (pid_app / "VERSION").write_text("v2\n")
    deploy = eb("deploy", "--label", "v2")
    assert "Upload Complete." in deploy.stdout  # one PutObject
    assert "Environment update completed successfully." in deploy.stdout + deploy.stderr
    info = bp.status(ENV)
    assert (info["status"], info["version"]) == ("Ready", "v2")
    assert wait_for(lambda: served_version(bp) == "v2", 30, "v2 to answer")

    # An app instance's own output, through `eb logs` (RequestEnvironmentInfo tail).
    status_code, _ = bp.get(ENV, "/log/eb-cli-marker")
    assert status_code == 200
    logs = eb("logs").stdout
    assert "stdout eb-cli-marker" in logs
    for instance in bp.status(ENV)["instances"]:
        assert instance["id"] in logs

    # A bundle over 8 MiB: eb uploads it in parts (multipart upload from 7 MiB).
    (pid_app / "blob.bin").write_bytes(os.urandom(9 << 20))
    (pid_app / "VERSION").write_text("v3\n")
    deploy = eb("deploy", "--label", "v3")
    assert "Upload Complete." not in deploy.stdout  # the multipart path prints a progress bar
    assert "Environment update completed successfully." in deploy.stdout + deploy.stderr
    info = bp.status(ENV)
    assert (info["status"], info["version"]) == ("Ready", "v3")
    assert wait_for(lambda: served_version(bp) == "v3", 30, "v3 to answer")
    # The parts were put back together byte for byte: the stored bundle is eb's archive.
    archive = pid_app / ".elasticbeanstalk" / "app_versions" / "v3.zip"
    assert archive.stat().st_size >= 8 << 20
    versions = {v["label"]: v for v in json.loads(bp.cli("versions", APP, "--json").stdout)}
    assert {"v1", "v2", "v3"} <= versions.keys()
    assert versions["v3"]["digest"] == hashlib.sha256(archive.read_bytes()).hexdigest()
