"""Real applications as their frameworks generate them (slow: they install from PyPI and npm)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from beanpole.adapters.lb.haproxy import HAProxy

from conftest import EXAMPLES
from harness import dependency_folders

pytestmark = pytest.mark.slow


def per_server_totals(bp, env):
    states = HAProxy(bp.home / "haproxy").runtime("show stat")
    totals = {}
    for line in states.splitlines():
        fields = line.split(",")
        if len(fields) > 8 and fields[0] == f"env-{env}" and fields[1] not in ("BACKEND",):
            totals[fields[1]] = int(fields[7])  # stot: sessions served
    return totals


def test_flask_app_in_eb_layout_with_three_instances(beanpole, tmp_path):
    app = tmp_path / "flask"
    shutil.copytree(EXAMPLES / "python", app)
    beanpole.cli("create", "flask", "--app", "flask", "--source", str(app), "--scale", "3")
    info = beanpole.status("flask")
    pids = set()
    for _ in range(60):
        status, body = beanpole.get("flask", "/whoami")
        assert status == 200
        pids.add(json.loads(body)["pid"])
    # gunicorn answers from worker processes: three instances, three distinct workers
    assert len(pids) == 3
    assert len({i["pid"] for i in info["instances"]}) == 3
    # a code-only deploy reuses the cached virtualenv
    (app / "application.py").write_text((app / "application.py").read_text() + "\n# v2\n")
    result = beanpole.cli("deploy", "flask", "--source", str(app))
    assert "Installing" not in result.stdout
    builds = dependency_folders(beanpole.home, "python")
    assert len(builds) == 1


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_express_generator_app_with_three_instances(beanpole, tmp_path):
    app = tmp_path / "express-app"
    subprocess.run(
        ["npx", "--yes", "express-generator@4", "--no-view", "--force", str(app)],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert (app / "package.json").exists() and (app / "bin" / "www").exists()
    beanpole.cli("create", "express", "--app", "express", "--source", str(app), "--scale", "3")
    for _ in range(60):
        status, body = beanpole.get("express", "/")
        assert status == 200 and "Express" in body
    totals = per_server_totals(beanpole, "express")
    assert len(totals) == 3 and all(n > 0 for n in totals.values()), totals
    info = beanpole.status("express")
    assert len({i["pid"] for i in info["instances"]}) == 3


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_node_example_with_lock_file_uses_npm_ci(beanpole, tmp_path):
    app = tmp_path / "node"
    shutil.copytree(EXAMPLES / "node", app)
    beanpole.cli("create", "node-app", "--app", "node", "--source", str(app), "--scale", "2")
    status, body = beanpole.get("node-app", "/whoami")
    assert status == 200 and json.loads(body)["instance"].startswith("i-")
    log = next((beanpole.home / "builds").glob("*/*/build.log")).read_text()
    assert "npm ci --omit=dev" in log


def test_static_site(beanpole):
    beanpole.cli(
        "create", "site", "--app", "site", "--source", str(EXAMPLES / "static"), "--scale", "2"
    )
    status, body = beanpole.get("site", "/")
    assert status == 200 and "static site" in body
    assert beanpole.get("site", "/.ebextensions/secret.config")[0] == 404


def test_examples_exist_for_each_platform():
    for name in ("python", "node", "static"):
        assert Path(EXAMPLES / name).is_dir()
