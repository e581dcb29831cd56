"""Platforms users expect (issue 8, part 7): a named platform, Pipenv's files, yarn and pnpm
locks, engines.node, and Docker bundles that Beanpole cannot run yet, through the real CLI
and server. The ones that install from PyPI or the npm registry are slow-marked."""

import json
import shutil
import time

import pytest

from conftest import APPS
from harness import dependency_folders


def flat(text):
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


def create(bp, env, source, *extra, check=False):
    return bp.cli("create", env, "--app", env, "--source", str(source), *extra, check=check)


def test_named_docker_platform_is_refused_before_anything_is_uploaded(
    beanpole_without_docker, pid_app
):
    beanpole = beanpole_without_docker
    started = time.monotonic()
    result = create(beanpole, "site", pid_app, "--platform", "docker")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert flat(result.stderr) == (
        "Error: The docker platform needs a server that runs containers, and Docker's engine "
        "does not answer here: install and start it with `scripts/bootstrap.sh --docker`, "
        "then restart the server (beanpole server stop, beanpole server start). Or create the "
        "environment with --platform python, node, static or procfile (or no --platform, to "
        "detect it from the bundle)."
    )
    assert elapsed < 10
    assert json.loads(beanpole.cli("list", "--json").stdout) == []
    assert json.loads(beanpole.cli("versions", "site", "--json", check=False).stdout or "[]") == []


def test_a_dockerfile_only_bundle_fails_within_seconds_with_what_to_do(
    beanpole_without_docker, tmp_path
):
    beanpole = beanpole_without_docker
    app = tmp_path / "docker-app"
    app.mkdir()
    (app / "Dockerfile").write_text('FROM python:3.12-slim\nCMD ["python", "-m", "http.server"]\n')
    (app / "main.py").write_text("print('hello')\n")
    started = time.monotonic()
    result = create(beanpole, "site", app)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert (
        "This bundle is for the Docker platform (Dockerfile found), and this server does not "
        "run containers: Docker's engine does not answer here. Install and start it with "
        "`scripts/bootstrap.sh --docker` (docs/docker.md), then restart the server (beanpole "
        "server stop, beanpole server start). Or add a "
        "Procfile whose web line starts the app on $PORT, or the files of a platform Beanpole "
        "runs at the bundle's root (requirements.txt, Pipfile or pyproject.toml for Python; "
        "package.json for Node.js; index.html for a static site), and deploy again."
    ) in flat(result.stderr)
    assert elapsed < 15


def test_a_dockerfile_beside_python_files_is_ignored_with_a_warning(
    beanpole_without_docker, pid_app
):
    beanpole = beanpole_without_docker
    (pid_app / "Dockerfile").write_text("FROM python:3.12-slim\n")
    (pid_app / "requirements.txt").write_text("")  # nothing to install: no registry needed
    create(beanpole, "site", pid_app, check=True)
    status, _ = beanpole.get("site", "/")
    assert status == 200
    events = flat(beanpole.cli("events", "site", "-n", "100").stdout)
    assert (
        "WARN Dockerfile ignored: this server does not run containers: Docker's engine does "
        "not answer here. Install and start it with `scripts/bootstrap.sh --docker` "
        "(docs/docker.md), then restart the server (beanpole server stop, beanpole server "
        "start); the app runs on the python platform (requirements.txt found)."
    ) in events
    assert "Built version" in events and "(python)" in events


def test_named_node_platform_on_a_python_bundle_fails_naming_what_is_missing(beanpole, pid_app):
    (pid_app / "requirements.txt").write_text("")
    result = create(beanpole, "site", pid_app, "--platform", "node")
    assert result.returncode == 1
    assert (
        "The environment's platform is node, but the bundle has no package.json at its root: "
        "add a package.json (npm init), or create the environment with another --platform "
        "(this bundle looks like python: requirements.txt found)."
    ) in flat(result.stderr)


def test_a_named_platform_is_stored_and_shown(beanpole, pid_app):
    create(beanpole, "site", pid_app, "--platform", "procfile", check=True)
    assert beanpole.status("site")["platform"] == "procfile"
    assert "Platform: procfile" in beanpole.cli("status", "site").stdout
    # a clone names the same platform
    beanpole.cli("clone", "site", "site2")
    assert beanpole.status("site2")["platform"] == "procfile"
    # none named: detected from each version's bundle
    create(beanpole, "other", pid_app, check=True)
    assert beanpole.status("other")["platform"] is None
    assert "Platform: detected" in beanpole.cli("status", "other").stdout


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_an_engines_node_mismatch_fails_with_the_range_and_the_host_version(beanpole, tmp_path):
    app = tmp_path / "old-node"
    shutil.copytree(APPS / "yarn", app)
    package = json.loads((app / "package.json").read_text())
    package["engines"] = {"node": ">=99"}
    (app / "package.json").write_text(json.dumps(package))
    host = beanpole_node_version()
    started = time.monotonic()
    result = create(beanpole, "site", app)
    assert result.returncode == 1
    assert (
        f"package.json requires Node.js >=99 (engines.node) but this host has {host}: install "
        "a Node.js that satisfies it, or change engines.node"
    ) in flat(result.stderr)
    assert time.monotonic() - started < 15  # refused before installing anything


def beanpole_node_version():
    import subprocess

    return subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.slow
def test_a_pipfile_only_flask_app_deploys_and_serves(beanpole, tmp_path):
    app = tmp_path / "pipenv-flask"
    app.mkdir()
    (app / "Pipfile").write_text(
        '[[source]]\nurl = "https://pypi.org/simple"\nverify_ssl = true\nname = "pypi"\n\n'
        '[packages]\nflask = ">=3"\n\n[dev-packages]\npytest = "*"\n\n'
        '[requires]\npython_version = "3.11"\n'
    )
    (app / "application.py").write_text(
        "import importlib.util\n"
        "from flask import Flask, jsonify\n\n"
        "application = Flask(__name__)\n\n\n"
        "@application.get('/')\n"
        "def index():\n"
        "    dev = importlib.util.find_spec('pytest') is not None\n"
        "    return jsonify(app='pipenv', pytest=dev)\n"
    )
    create(beanpole, "pipenv", app, check=True)
    status, body = beanpole.get("pipenv", "/")
    assert status == 200
    assert json.loads(body) == {"app": "pipenv", "pytest": False}  # [packages] only
    assert beanpole.status("pipenv")["platform"] is None
    converted = [
        p
        for folder in dependency_folders(beanpole.home, "python")
        for p in folder.glob("requirements-*")
    ]
    assert [p.name for p in converted] == ["requirements-from-Pipfile.txt"]


def node_app_serves(bp, env, kind, tmp_path):
    app = tmp_path / kind
    shutil.copytree(APPS / kind, app)
    result = create(bp, env, app, check=True)
    status, body = bp.get(env, "/")
    assert status == 200
    answer = json.loads(body)
    assert answer["oneMinute"] == 60000
    assert answer["devInstalled"] is False  # NPM_USE_PRODUCTION defaults to true
    log = next((bp.home / "logs" / "deploy").glob(f"*{env}*/*.log"), None)
    return result, log


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_a_yarn_lock_app_installs_with_yarn(beanpole, tmp_path):
    node_app_serves(beanpole, "yarnapp", "yarn", tmp_path)
    build_logs = list((beanpole.home / "builds").glob("*/*/build.log"))
    text = "".join(p.read_text() for p in build_logs)
    assert "install --frozen-lockfile --production" in text and "yarn" in text
    # yarn's cache: Beanpole's, or the application's own when it has a user of its own
    assert [*beanpole.home.glob("cache/yarn"), *beanpole.home.glob("builds/*/cache/yarn")]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_a_pnpm_lock_app_installs_with_pnpm(beanpole, tmp_path):
    node_app_serves(beanpole, "pnpmapp", "pnpm", tmp_path)
    text = "".join(p.read_text() for p in (beanpole.home / "builds").glob("*/*/build.log"))
    assert "install --frozen-lockfile --prod" in text and "pnpm" in text
