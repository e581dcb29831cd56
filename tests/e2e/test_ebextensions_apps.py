""".ebextensions option settings end to end: real CLI, server, HAProxy and supervisord.

EB's precedence holds: settings given directly beat the deployed version's .ebextensions,
which beat the defaults; removing a direct setting lets the .ebextensions value apply
again; a file that fails validation is ignored entirely, with a warning event.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import wait_for

GOOD = """\
option_settings:
  aws:elasticbeanstalk:application:environment:
    GREETING: {greeting}
  beanpole:deploy:
    BakeTime: 1
"""
# Valid YAML with one good property and one option out of range: nothing of it applies.
BAD = """\
option_settings:
  - option_name: GREETING
    value: from-the-bad-file
  - namespace: aws:elasticbeanstalk:command
    option_name: Timeout
    value: 0
"""


def greetings(bp, host: str, n: int = 20) -> set[tuple[str, str]]:
    """(version, greeting) pairs served, over n requests."""
    out = set()
    for _ in range(n):
        status, body = bp.get(host)
        assert status == 200, body
        data = json.loads(body)
        out.add((data["version"], data["greeting"]))
    return out


def with_ebextensions(app: Path, greeting: str) -> Path:
    folder = app / ".ebextensions"
    folder.mkdir(exist_ok=True)
    (folder / "env.config").write_text(GOOD.format(greeting=greeting))
    (folder / "zz-bad.config").write_text(BAD)
    return app


def test_ebextensions_property_applies_under_direct_settings(beanpole, pid_app, tmp_path):
    with_ebextensions(pid_app, "from-ebextensions")
    created = beanpole.cli(
        "create", "shop", "--app", "shop", "--source", str(pid_app), "--scale", "2"
    )
    # the warning is an event of the create, printed while it runs
    assert "WARN  .ebextensions/zz-bad.config is ignored: " in created.stdout
    assert "Option aws:elasticbeanstalk:command:Timeout has value 0" in created.stdout
    assert greetings(beanpole, "shop") == {("v1", "from-ebextensions")}
    assert "GREETING=from-ebextensions" in beanpole.cli("printenv", "shop").stdout

    beanpole.cli("setenv", "shop", "GREETING=direct")  # direct beats .ebextensions
    assert greetings(beanpole, "shop") == {("v1", "direct")}
    beanpole.cli("setenv", "shop", "GREETING=")  # removed: the .ebextensions value again
    assert greetings(beanpole, "shop") == {("v1", "from-ebextensions")}

    # A new version brings its own layer; a rollback restores the previous version's.
    two = tmp_path / "two"
    shutil.copytree(pid_app, two)
    (two / "VERSION").write_text("v2\n")
    with_ebextensions(two, "from-version-two")
    beanpole.cli("deploy", "shop", "--source", str(two), "--label", "two")
    assert greetings(beanpole, "shop") == {("v2", "from-version-two")}
    beanpole.cli("rollback", "shop")
    assert greetings(beanpole, "shop") == {("v1", "from-ebextensions")}
    events = beanpole.cli("events", "shop", "-n", "500").stdout
    assert events.count(".ebextensions/zz-bad.config is ignored") >= 3  # create, deploy, rollback
    assert "sets 2 option setting(s) in .ebextensions" in events


# --- a Django project as `django-admin startproject` makes it ---------------------------


@pytest.fixture(scope="module")
def django(tmp_path_factory) -> tuple[Path, str]:
    """A throwaway virtualenv with Django (made with uv): its python and Django's version."""
    root = tmp_path_factory.mktemp("django-venv")
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    venv = root / "venv"
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, "Django"], check=True, timeout=600
    )
    version = subprocess.run(
        [python, "-m", "django", "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(python), version


@pytest.mark.slow
@pytest.mark.parametrize("wsgi_path", ["mysite.wsgi:application", "mysite/wsgi.py"])
def test_django_startproject_with_wsgipath_in_ebextensions(beanpole, tmp_path, django, wsgi_path):
    python, version = django
    app = tmp_path / "mysite"
    app.mkdir()
    subprocess.run(
        [str(python), "-m", "django", "startproject", "mysite", str(app)], check=True, timeout=120
    )
    assert (app / "manage.py").is_file() and (app / "mysite" / "wsgi.py").is_file()
    # DEBUG = True and ALLOWED_HOSTS = [] as generated: Django then allows '.localhost',
    # the load balancer's Host (shop.localhost) and its health check's (the same name).
    settings = (app / "mysite" / "settings.py").read_text()
    assert "DEBUG = True" in settings and "ALLOWED_HOSTS = []" in settings
    (app / "requirements.txt").write_text(f"Django=={version}\n")
    (app / ".ebextensions").mkdir()
    (app / ".ebextensions" / "django.config").write_text(
        f"option_settings:\n  aws:elasticbeanstalk:container:python:\n    WSGIPath: {wsgi_path}\n"
    )
    beanpole.cli("create", "django", "--app", "mysite", "--source", str(app), "--scale", "2")
    info = beanpole.status("django")
    assert len(info["instances"]) == 2 and all(
        i["state"] == "in-service" for i in info["instances"]
    )
    for _ in range(10):
        status, body = beanpole.get("django", "/")
        assert status == 200, body[:500]
        assert "The install worked successfully! Congratulations!" in body
    # HAProxy's own checks (Host: django.localhost) pass too
    wait_for(lambda: beanpole.status("django")["health"] == "Green", 60, "health Green")


# As AWS's Django tutorial and samples write it: bash's `source` of EB's virtualenv by a
# glob, and a static folder written with a leading slash (relative to the app, on EB).
DJANGO_CONFIG = """\
option_settings:
  aws:elasticbeanstalk:container:python:
    WSGIPath: mysite.wsgi:application
  aws:elasticbeanstalk:environment:proxy:staticfiles:
    /static: /static
container_commands:
  01_migrate:
    command: "source /var/app/venv/*/bin/activate && python3 manage.py migrate --noinput"
    leader_only: true
  02_collectstatic:
    command: >-
      source /var/app/venv/*/bin/activate && cd /var/app/staging &&
      python3 manage.py collectstatic --noinput
"""


@pytest.mark.slow
def test_django_with_migrate_and_collectstatic_in_container_commands(beanpole, tmp_path, django):
    """As EB's Django tutorial has it: migrations (leader only) and collectstatic run by
    container_commands, /static served from the `static` folder by the proxy (EB's Python
    default), a production settings file that allows only the environment's host name."""
    python, version = django
    app = tmp_path / "mysite"
    app.mkdir()
    subprocess.run(
        [str(python), "-m", "django", "startproject", "mysite", str(app)], check=True, timeout=120
    )
    settings = app / "mysite" / "settings.py"
    text = settings.read_text().replace("DEBUG = True", "DEBUG = False")
    text = text.replace("ALLOWED_HOSTS = []", "ALLOWED_HOSTS = ['shop.localhost']")
    settings.write_text(text + "\nSTATIC_ROOT = BASE_DIR / 'static'\n")
    urls = app / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        + "\nfrom django.contrib.auth.models import User\n"
        + "from django.http import HttpResponse\n"
        + "urlpatterns.append(path('', lambda request: HttpResponse("
        + "f'users={User.objects.count()}')))\n"
    )
    (app / "requirements.txt").write_text(f"Django=={version}\n")
    (app / ".ebextensions").mkdir()
    (app / ".ebextensions" / "django.config").write_text(DJANGO_CONFIG)

    beanpole.cli("create", "shop", "--app", "mysite", "--source", str(app), "--scale", "2")
    status, body = beanpole.get("shop", "/")
    assert (status, body) == (200, "users=0")  # the tables exist: migrate ran
    status, css = beanpole.get("shop", "/static/admin/css/base.css")
    assert status == 200 and "body" in css  # collected, and served though DEBUG is False
    status, _ = beanpole.get("shop", "/static/admin/css/missing.css")
    assert status == 404
    status, _ = beanpole.get("other-name", "/")
    assert status == 404  # (not routed) and Django itself would refuse the host
    events = beanpole.cli("events", "shop").stdout
    assert events.count("01_migrate") >= 1 and "02_collectstatic" in events
    # the database belongs to the app user (never root), in the deployment's own folder
    (database,) = (beanpole.home / "builds").glob("*/*/stages/*/db.sqlite3")
    assert not list((beanpole.home / "builds").glob("*/*/app/db.sqlite3"))  # the build's kept
    assert database.stat().st_uid != 0
