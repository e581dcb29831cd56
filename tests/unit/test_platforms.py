"""Platform detection: Procfile first, then Python, Node.js, static; clear errors otherwise."""

import json

import pytest

from beanpole.core.errors import BundleError
from beanpole.core.platforms import detect
from beanpole.core.platforms.python import wsgi_target
from beanpole.core.settings import resolve

PY = "aws:elasticbeanstalk:container:python"


def write(folder, files):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def test_eb_flask_layout_runs_gunicorn_on_application(tmp_path):
    write(tmp_path, {"application.py": "application = None", "requirements.txt": "flask\n"})
    plan = detect(tmp_path, resolve())
    assert plan.platform == "python"
    web = plan.processes["web"]
    assert "gunicorn" in web and "application:application" in web
    assert "--workers 1 --threads 15" in web and "127.0.0.1:$PORT" in web
    assert plan.dependencies is not None and plan.dependencies.extra == ("gunicorn",)


def test_gunicorn_is_not_added_when_listed(tmp_path):
    write(tmp_path, {"requirements.txt": "Flask\ngunicorn==22.0\n"})
    plan = detect(tmp_path, resolve())
    assert plan.dependencies is not None and plan.dependencies.extra == ()


def test_wsgipath_and_workers_come_from_settings(tmp_path):
    write(tmp_path, {"requirements.txt": "django\n"})
    settings = resolve({f"{PY}:WSGIPath": "mysite/wsgi.py", f"{PY}:NumProcesses": "3"})
    web = detect(tmp_path, settings).processes["web"]
    assert "mysite.wsgi:application" in web and "--workers 3" in web


@pytest.mark.parametrize(
    ("given", "target"),
    [
        ("application", "application:application"),
        ("app.py", "app:application"),
        ("app:server", "app:server"),
        ("mysite/wsgi.py", "mysite.wsgi:application"),
        ("mysite.wsgi:application", "mysite.wsgi:application"),
    ],
)
def test_wsgi_targets(given, target):
    assert wsgi_target(given) == target


def test_bad_wsgipath(tmp_path):
    with pytest.raises(BundleError, match="WSGIPath"):
        wsgi_target("not a module!")


def test_dependency_key_follows_requirements_only(tmp_path):
    write(tmp_path, {"requirements.txt": "flask\n", "application.py": "x=1"})
    key1 = detect(tmp_path, resolve()).dependencies.cache_key
    write(tmp_path, {"application.py": "x=2"})
    assert detect(tmp_path, resolve()).dependencies.cache_key == key1
    write(tmp_path, {"requirements.txt": "flask\nrequests\n"})
    assert detect(tmp_path, resolve()).dependencies.cache_key != key1


def test_procfile_wins_but_python_dependencies_still_install(tmp_path):
    write(
        tmp_path,
        {
            "requirements.txt": "flask\n",
            "Procfile": "web: gunicorn app:app\nworker: python worker.py\n",
        },
    )
    plan = detect(tmp_path, resolve())
    assert plan.processes == {"web": "gunicorn app:app", "worker": "python worker.py"}
    assert plan.dependencies is not None and plan.dependencies.extra == ()


def test_procfile_without_web_is_refused(tmp_path):
    write(tmp_path, {"Procfile": "worker: python worker.py\n"})
    with pytest.raises(BundleError, match="no 'web' process"):
        detect(tmp_path, resolve())


def test_node_start_script(tmp_path):
    write(tmp_path, {"package.json": json.dumps({"scripts": {"start": "node ./bin/www"}})})
    plan = detect(tmp_path, resolve(), node_version="v20")
    assert plan.platform == "nodejs" and plan.processes["web"] == "npm start"
    assert plan.dependencies is not None and plan.dependencies.kind == "node"


def test_node_falls_back_to_app_js_then_server_js(tmp_path):
    write(tmp_path, {"package.json": "{}", "server.js": ""})
    assert detect(tmp_path, resolve()).processes["web"] == "node server.js"
    write(tmp_path, {"app.js": ""})
    assert detect(tmp_path, resolve()).processes["web"] == "node app.js"


def test_node_without_entry_point_is_refused(tmp_path):
    write(tmp_path, {"package.json": "{}"})
    with pytest.raises(BundleError, match="no 'start' script"):
        detect(tmp_path, resolve())


def test_shipped_node_modules_skip_install(tmp_path):
    write(tmp_path, {"package.json": "{}", "app.js": "", "node_modules/x/index.js": ""})
    assert detect(tmp_path, resolve()).dependencies is None


def test_beanpole_s_link_to_installed_node_modules_still_installs(tmp_path):
    """The link Beanpole makes to a version's installed node_modules is not a shipped
    folder: looking at the version again keeps its dependencies (and their .bin on PATH)."""
    app, installed = tmp_path / "app", tmp_path / "deps" / "node_modules"
    write(app, {"package.json": "{}", "app.js": ""})
    installed.mkdir(parents=True)
    (app / "node_modules").symlink_to(installed)
    assert detect(app, resolve()).dependencies is not None


def test_node_lock_change_changes_key(tmp_path):
    write(tmp_path, {"package.json": "{}", "app.js": "", "package-lock.json": "{}"})
    key = detect(tmp_path, resolve(), "v20").dependencies.cache_key
    write(tmp_path, {"package-lock.json": '{"x": 1}'})
    assert detect(tmp_path, resolve(), "v20").dependencies.cache_key != key
    write(tmp_path, {"package-lock.json": "{}"})
    assert detect(tmp_path, resolve(), "v22").dependencies.cache_key != key


def test_static_site(tmp_path):
    write(tmp_path, {"index.html": "<h1>hi</h1>"})
    plan = detect(tmp_path, resolve())
    assert (
        plan.platform == "static"
        and "beanpole.adapters.runtime.static_server" in plan.processes["web"]
    )


def test_generic_procfile(tmp_path):
    write(tmp_path, {"Procfile": "web: ./server --port $PORT\n"})
    plan = detect(tmp_path, resolve())
    assert plan.platform == "procfile" and plan.dependencies is None


def test_unknown_platform_says_what_to_add(tmp_path):
    write(tmp_path, {"README.md": "hello"})
    with pytest.raises(BundleError, match="Add a Procfile"):
        detect(tmp_path, resolve())


def test_plan_round_trips_through_json(tmp_path):
    write(tmp_path, {"requirements.txt": "flask\n", "Buildfile": "make: echo hi\n"})
    plan = detect(tmp_path, resolve())
    assert type(plan).from_json(plan.to_json()) == plan


def test_a_procfile_written_for_ebs_fixed_port_runs_on_port_and_says_so(tmp_path):
    procfile = (
        "web: gunicorn --bind :8000 --workers 3 mysite.wsgi:application\n"
        "worker: celery -A x worker --port 8000\n"
    )
    write(tmp_path, {"requirements.txt": "django\ngunicorn\n", "Procfile": procfile})
    plan = detect(tmp_path, resolve())
    assert plan.processes["web"] == "gunicorn --bind :$PORT --workers 3 mysite.wsgi:application"
    assert plan.processes["worker"] == "celery -A x worker --port 8000"  # only web is moved
    assert len(plan.notes) == 1 and ":8000" in plan.notes[0]
    assert type(plan).from_json(plan.to_json()) == plan
