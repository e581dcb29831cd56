"""Which platform runs a bundle (issue 8, part 7): a named platform or detection, Pipenv's
files, yarn and pnpm locks, engines.node, and Docker bundles Beanpole cannot run yet."""

import json
import re
from typing import get_args

import pytest

from beanpole.api.inputs import PlatformName
from beanpole.core.errors import BuildError, BundleError
from beanpole.core.platforms import detect, node
from beanpole.core.platforms.docker import Volume
from beanpole.core.platforms.pipfile import lock_requirements, pipfile_requirements
from beanpole.core.platforms.plan import PLATFORMS, DependencyStep
from beanpole.core.settings import resolve

NODE = "aws:elasticbeanstalk:container:nodejs"


def write(folder, files):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def test_the_api_accepts_exactly_the_core_platforms():
    assert get_args(PlatformName) == PLATFORMS


# detection: a Procfile app gets its language's runtime ------------------------------------


def test_procfile_with_pipfile_gets_a_virtualenv_from_the_pipfile(tmp_path):
    write(
        tmp_path,
        {"Procfile": "web: gunicorn app:app\n", "Pipfile": '[packages]\nflask = "*"\n'},
    )
    plan = detect(tmp_path, resolve())
    assert plan.platform == "python"
    deps = plan.dependencies
    assert deps is not None and deps.kind == "python" and deps.manifest == "Pipfile"
    assert deps.requirements == "flask\n" and deps.extra == ()  # the Procfile runs gunicorn


def test_procfile_with_python_files_only_gets_an_empty_virtualenv(tmp_path):
    """`python` in the Procfile is then the app's own, not Beanpole's interpreter."""
    write(tmp_path, {"Procfile": "web: python server.py\n", "server.py": "print(1)\n"})
    plan = detect(tmp_path, resolve())
    assert plan.platform == "python"
    assert plan.dependencies is not None and plan.dependencies.manifest == ""
    assert plan.processes == {"web": "python server.py"}


def test_procfile_with_package_json_and_yarn_lock_installs_with_yarn(tmp_path):
    write(
        tmp_path,
        {
            "Procfile": "web: node index.js\n",
            "package.json": "{}",
            "yarn.lock": "# yarn lockfile v1\n",
        },
    )
    plan = detect(tmp_path, resolve(), "v20.1.0")
    assert plan.platform == "nodejs" and plan.processes == {"web": "node index.js"}
    deps = plan.dependencies
    assert deps is not None and deps.manager == "yarn@1" and deps.manifest == "yarn.lock"


def test_procfile_alone_installs_nothing(tmp_path):
    write(tmp_path, {"Procfile": "web: ./server\n", "server": ""})
    plan = detect(tmp_path, resolve())
    assert plan.platform == "procfile" and plan.dependencies is None


# Python: Pipenv's files ----------------------------------------------------------------


def test_requirements_txt_wins_over_pipenv_files_as_on_eb(tmp_path):
    write(
        tmp_path,
        {
            "requirements.txt": "flask\n",
            "Pipfile": '[packages]\ndjango = "*"\n',
            "Pipfile.lock": json.dumps({"default": {"django": {"version": "==5.0"}}}),
        },
    )
    deps = detect(tmp_path, resolve()).dependencies
    assert deps.manifest == "requirements.txt" and deps.requirements == ""


def test_pipfile_lock_wins_over_pipfile_and_is_pinned(tmp_path):
    lock = {
        "_meta": {"sources": [{"name": "pypi", "url": "https://pypi.org/simple"}]},
        "default": {
            "flask": {"hashes": ["sha256:ab"], "version": "==3.0.3"},
            "gunicorn": {"version": "==22.0.0", "extras": ["gevent"]},
            "colorama": {"version": "==0.4.6", "markers": "sys_platform == 'win32'"},
        },
        "develop": {"pytest": {"version": "==8.0.0"}},
    }
    write(
        tmp_path,
        {"Pipfile": '[packages]\nflask = "*"\n', "Pipfile.lock": json.dumps(lock)},
    )
    plan = detect(tmp_path, resolve())
    deps = plan.dependencies
    assert deps.manifest == "Pipfile.lock"
    assert deps.requirements.splitlines() == [
        "colorama==0.4.6 ; sys_platform == 'win32'",
        "flask==3.0.3",
        "gunicorn[gevent]==22.0.0",
    ]
    assert deps.extra == ()  # gunicorn is locked already: not added


def test_pipfile_lock_change_changes_the_cache_key(tmp_path):
    write(tmp_path, {"Pipfile.lock": json.dumps({"default": {"flask": {"version": "==3.0.2"}}})})
    key = detect(tmp_path, resolve()).dependencies.cache_key
    write(tmp_path, {"Pipfile.lock": json.dumps({"default": {"flask": {"version": "==3.0.3"}}})})
    assert detect(tmp_path, resolve()).dependencies.cache_key != key


def test_pipfile_packages_as_requirements(tmp_path):
    text = """
[[source]]
url = "https://pypi.org/simple"
name = "pypi"

[[source]]
url = "https://example.org/simple"
name = "internal"

[packages]
flask = "*"
requests = ">=2.31"
django = {version = "==5.0.1", extras = ["argon2"]}
pywin32 = {version = "*", sys_platform = "== 'win32'"}
lib = {git = "https://github.com/o/lib.git", ref = "v1"}
local = {path = "./vendor/local", editable = true}

[dev-packages]
pytest = "*"
"""
    lines = pipfile_requirements(text, tmp_path).splitlines()
    assert lines == [
        "--extra-index-url https://example.org/simple",
        "flask",
        "requests>=2.31",
        "django[argon2]==5.0.1",
        "pywin32 ; sys_platform == 'win32'",
        "lib @ git+https://github.com/o/lib.git@v1",
        f"-e {(tmp_path / 'vendor' / 'local').resolve()}",
    ]


def test_broken_pipenv_files_name_the_file(tmp_path):
    with pytest.raises(BundleError, match=r"Pipfile is not valid TOML"):
        pipfile_requirements("[packages\n", tmp_path)
    with pytest.raises(BundleError, match=r"Pipfile\.lock is not valid JSON"):
        lock_requirements("{", tmp_path)


def test_pipfile_only_flask_app_gets_gunicorn_for_the_default_command(tmp_path):
    write(tmp_path, {"Pipfile": '[packages]\nflask = "*"\n', "application.py": ""})
    plan = detect(tmp_path, resolve())
    assert plan.platform == "python" and "gunicorn" in plan.processes["web"]
    assert plan.dependencies.extra == ("gunicorn",)


# Node.js: lock files, package managers, engines.node ------------------------------------


@pytest.mark.parametrize(
    ("files", "manager", "manifest"),
    [
        ({}, "npm", "package.json"),
        ({"package-lock.json": "{}"}, "npm", "package-lock.json"),
        ({"npm-shrinkwrap.json": "{}"}, "npm", "npm-shrinkwrap.json"),
        ({"yarn.lock": "# yarn lockfile v1\n"}, "yarn@1", "yarn.lock"),
        ({"pnpm-lock.yaml": "lockfileVersion: '9.0'\n"}, "pnpm@9", "pnpm-lock.yaml"),
        ({"pnpm-lock.yaml": "lockfileVersion: '6.0'\n"}, "pnpm@8", "pnpm-lock.yaml"),
        ({"package-lock.json": "{}", "yarn.lock": ""}, "npm", "package-lock.json"),
    ],
)
def test_the_lock_file_chooses_the_package_manager(tmp_path, files, manager, manifest):
    write(tmp_path, {"package.json": "{}", "app.js": "", **files})
    deps = detect(tmp_path, resolve(), "v20.1.0").dependencies
    assert (deps.manager, deps.manifest) == (manager, manifest)


def test_package_manager_field_wins_over_other_locks(tmp_path):
    package = {"packageManager": "pnpm@9.1.0+sha512.abc"}
    write(
        tmp_path,
        {
            "package.json": json.dumps(package),
            "app.js": "",
            "package-lock.json": "{}",
            "pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
        },
    )
    deps = detect(tmp_path, resolve(), "v20.1.0").dependencies
    assert (deps.manager, deps.manifest) == ("pnpm@9.1.0", "pnpm-lock.yaml")


def test_the_cache_key_covers_the_lock_file_used(tmp_path):
    write(tmp_path, {"package.json": "{}", "app.js": "", "yarn.lock": "a\n"})
    key = detect(tmp_path, resolve(), "v20.1.0").dependencies.cache_key
    write(tmp_path, {"yarn.lock": "b\n"})
    assert detect(tmp_path, resolve(), "v20.1.0").dependencies.cache_key != key


def test_yarn_berry_lock_is_refused_with_what_to_ship(tmp_path):
    write(tmp_path, {"package.json": "{}", "app.js": "", "yarn.lock": "__metadata:\n  x: 1\n"})
    with pytest.raises(BundleError, match="Yarn 2 or later"):
        detect(tmp_path, resolve(), "v20.1.0")


def test_engines_node_mismatch_names_range_and_host_version(tmp_path):
    write(tmp_path, {"package.json": json.dumps({"engines": {"node": ">=22"}}), "app.js": ""})
    with pytest.raises(BundleError) as caught:
        detect(tmp_path, resolve(), "v18.19.0")
    assert caught.value.message == (
        "package.json requires Node.js >=22 (engines.node) but this host has v18.19.0: "
        "install a Node.js that satisfies it, or change engines.node"
    )
    assert detect(tmp_path, resolve(), "v22.3.0").platform == "nodejs"


def test_engines_node_is_checked_when_node_modules_are_shipped(tmp_path):
    package = {"engines": {"node": "^16"}}
    write(
        tmp_path,
        {"package.json": json.dumps(package), "app.js": "", "node_modules/x/index.js": ""},
    )
    with pytest.raises(BundleError, match=r"requires Node.js \^16"):
        detect(tmp_path, resolve(), "v20.1.0")


def test_engines_node_without_node_on_the_host(tmp_path):
    write(tmp_path, {"package.json": json.dumps({"engines": {"node": ">=18"}}), "app.js": ""})
    with pytest.raises(BundleError, match=r"this host has no Node\.js"):
        detect(tmp_path, resolve(), "")


def test_unreadable_engines_range(tmp_path):
    write(tmp_path, {"package.json": json.dumps({"engines": {"node": "lts"}}), "app.js": ""})
    with pytest.raises(BundleError, match=r"engines\.node 'lts' is not a version range"):
        detect(tmp_path, resolve(), "v20.1.0")


def which_of(*present):
    return lambda name: f"/usr/bin/{name}" if name in present else None


@pytest.mark.parametrize(
    ("present", "argv"),
    [
        (("yarn", "npx"), ["/usr/bin/yarn", "install", "--frozen-lockfile"]),
        (("yarnpkg", "npx"), ["/usr/bin/yarnpkg", "install", "--frozen-lockfile"]),
        (("npx", "corepack"), ["/usr/bin/npx", "--yes", "yarn@1", "install", "--frozen-lockfile"]),
        (("corepack",), ["/usr/bin/corepack", "yarn@1", "install", "--frozen-lockfile"]),
    ],
)
def test_yarn_comes_from_the_host_else_npx_else_corepack(present, argv):
    step = DependencyStep("node", "k", "yarn.lock", (), manager="yarn@1")
    command = node.install_command(step, which_of(*present), has_lock=True)
    assert command[: len(argv)] == argv


def test_production_flags_per_manager():
    which = which_of("npm", "yarn", "pnpm")
    for manager, flag in (("npm", "--omit=dev"), ("yarn@1", "--production"), ("pnpm@9", "--prod")):
        step = DependencyStep("node", "k", "x", ("production",), manager=manager)
        assert flag in node.install_command(step, which, has_lock=True)
    npm = DependencyStep("node", "k", "package.json", (), manager="npm")
    assert node.install_command(npm, which, has_lock=False)[1] == "install"
    assert node.install_command(npm, which, has_lock=True)[1] == "ci"


def test_no_way_to_run_pnpm_names_what_to_install():
    step = DependencyStep("node", "k", "pnpm-lock.yaml", (), manager="pnpm@9")
    with pytest.raises(BuildError, match=r"install pnpm \(npm install -g pnpm\)"):
        node.install_command(step, which_of("npm"), has_lock=True)


def test_npm_production_setting_reaches_the_step(tmp_path):
    write(tmp_path, {"package.json": "{}", "app.js": ""})
    settings = resolve({f"{NODE}:NPM_USE_PRODUCTION": "true"})
    assert detect(tmp_path, settings, "v20.1.0").dependencies.extra == ("production",)


# named platforms ------------------------------------------------------------------------


def test_named_node_on_a_python_bundle_names_what_is_missing(tmp_path):
    write(tmp_path, {"requirements.txt": "flask\n", "application.py": ""})
    with pytest.raises(BundleError) as caught:
        detect(tmp_path, resolve(), platform="node")
    assert caught.value.message == (
        "The environment's platform is node, but the bundle has no package.json at its root: "
        "add a package.json (npm init), or create the environment with another --platform "
        "(this bundle looks like python: requirements.txt found)."
    )


def test_named_python_without_python_files(tmp_path):
    write(tmp_path, {"package.json": "{}", "app.js": ""})
    with pytest.raises(BundleError, match="platform is python, but the bundle has none of"):
        detect(tmp_path, resolve(), platform="python")


def test_named_platform_chooses_between_two_languages(tmp_path):
    """A Flask app with a package.json for its front end: python by detection, node if named."""
    write(
        tmp_path,
        {"requirements.txt": "flask\n", "application.py": "", "package.json": "{}", "app.js": ""},
    )
    assert detect(tmp_path, resolve()).platform == "python"
    assert detect(tmp_path, resolve(), "v20.1.0", platform="node").platform == "nodejs"


def test_named_procfile_installs_nothing(tmp_path):
    write(tmp_path, {"Procfile": "web: ./run\n", "requirements.txt": "flask\n"})
    plan = detect(tmp_path, resolve(), platform="procfile")
    assert plan.platform == "procfile" and plan.dependencies is None
    write(tmp_path, {"Procfile": ""})
    (tmp_path / "Procfile").unlink()
    with pytest.raises(BundleError, match="has no Procfile at its root"):
        detect(tmp_path, resolve(), platform="procfile")


def test_named_static_ignores_a_procfile_with_a_warning(tmp_path):
    write(tmp_path, {"index.html": "", "Procfile": "web: ./run\n"})
    plan = detect(tmp_path, resolve(), platform="static")
    assert plan.platform == "static" and "Procfile is ignored" in plan.warnings[0]


# Docker ---------------------------------------------------------------------------------


def test_dockerfile_only_bundle_says_what_to_do(tmp_path):
    write(tmp_path, {"Dockerfile": "FROM python:3.12\n", "app/main.py": ""})
    with pytest.raises(BundleError) as caught:
        detect(tmp_path, resolve())
    assert caught.value.message.startswith(
        "This bundle is for the Docker platform (Dockerfile found), and this server does not "
        "run containers: Docker's engine does not answer here. Install and start it with "
        "`scripts/bootstrap.sh --docker`"
    )
    assert "Or add a Procfile whose web line starts the app on $PORT" in caught.value.message


def test_dockerrun_json_only_bundle_is_refused_too(tmp_path):
    write(tmp_path, {"Dockerrun.aws.json": "{}"})
    with pytest.raises(BundleError, match=r"Docker platform \(Dockerrun.aws.json found\)"):
        detect(tmp_path, resolve())


def test_named_docker_is_refused_where_the_server_runs_no_containers(tmp_path):
    write(tmp_path, {"requirements.txt": "flask\n", "application.py": ""})
    with pytest.raises(BundleError, match="does not run containers"):
        detect(tmp_path, resolve(), platform="docker")


def test_dockerfile_beside_requirements_runs_python_with_a_warning(tmp_path):
    write(tmp_path, {"Dockerfile": "FROM python\n", "requirements.txt": "flask\n"})
    plan = detect(tmp_path, resolve())
    assert plan.platform == "python" and plan.notes == ()
    assert plan.warnings == (
        "Dockerfile ignored: this server does not run containers: Docker's engine does not "
        "answer here. Install and start it with `scripts/bootstrap.sh --docker` "
        "(docs/docker.md), then restart the server (beanpole server stop, beanpole server "
        "start); the app runs on the python platform (requirements.txt found).",
    )
    assert type(plan).from_json(plan.to_json()) == plan


def test_with_containers_a_dockerfile_chooses_docker_and_its_exposed_port(tmp_path):
    write(
        tmp_path,
        {"Dockerfile": "FROM x\nEXPOSE 3000/tcp 9000\n", "requirements.txt": "flask\n"},
    )
    plan = detect(tmp_path, resolve(), containers=True, prefer_containers=True)
    assert (plan.platform, plan.processes, plan.default_port) == ("docker", {"web": ""}, 3000)
    assert plan.docker is not None and plan.docker.build and plan.docker.port == 3000
    assert type(plan).from_json(plan.to_json()) == plan
    # the environment's platform still decides when it names one
    assert detect(tmp_path, resolve(), platform="python", containers=True).platform == "python"


def test_beside_other_files_a_dockerfile_waits_for_a_docker_default_but_dockerrun_does_not(
    tmp_path,
):
    """A Dockerfile beside requirements.txt is often there for local development: where the
    engine answers but the server's default is supervisord, the Python platform runs it and
    a warning says how to choose Docker. A Dockerrun.aws.json is for nothing else."""
    write(tmp_path, {"Dockerfile": "FROM x\n", "requirements.txt": "flask\n"})
    plan = detect(tmp_path, resolve(), containers=True)
    assert plan.platform == "python"
    assert plan.warnings == (
        "Dockerfile ignored: the app runs on the python platform (requirements.txt found). To "
        "build and run it from its Docker files instead, create the environment with "
        "--platform docker (or start the server with --runtime docker).",
    )
    alone = tmp_path / "alone"
    write(alone, {"Dockerfile": "FROM x\n"})
    assert detect(alone, resolve(), containers=True).platform == "docker"
    (tmp_path / "Dockerrun.aws.json").write_text('{"AWSEBDockerrunVersion": "1"}')
    assert detect(tmp_path, resolve(), containers=True).platform == "docker"


def test_a_dockerfile_without_expose_leaves_the_port_to_the_image(tmp_path):
    write(tmp_path, {"Dockerfile": "FROM x\n"})
    plan = detect(tmp_path, resolve(), containers=True)
    assert plan.docker.port == 0 and plan.default_port == 8080


def test_dockerrun_names_the_image_and_its_port(tmp_path):
    run = {
        "AWSEBDockerrunVersion": "1",
        "Image": {"Name": "nginx:1.27", "Update": "true"},
        "Ports": [{"ContainerPort": "80", "HostPort": "8080"}],
        "Volumes": [{"HostDirectory": "/var/app/data", "ContainerDirectory": "/data"}],
    }
    write(tmp_path, {"Dockerrun.aws.json": json.dumps(run)})
    plan = detect(tmp_path, resolve(), containers=True)
    assert (plan.docker.build, plan.docker.image, plan.default_port) == (False, "nginx:1.27", 80)
    assert plan.warnings == ()  # Volumes are carried out (below)
    assert plan.docker.volumes == (Volume("/var/app/data", "/data"),)


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"Dockerrun.aws.json": "{"}, "not valid JSON: Expecting property name"),
        ({"Dockerrun.aws.json": '{"AWSEBDockerrunVersion": 2}'}, "version 2"),
        ({"Dockerrun.aws.json": '{"AWSEBDockerrunVersion": "1"}'}, "names no image"),
        (
            {"Dockerrun.aws.json": '{"Image": {"Name": "a"}, "Ports": [{"ContainerPort": "x"}]}'},
            "ContainerPort is 'x'",
        ),
        ({"Dockerfile": "FROM x\nEXPOSE 99999\n"}, "EXPOSE is '99999'"),
        ({"docker-compose.yml": "services: {}\n"}, "has no services"),
        (
            {"docker-compose.yml": "services:\n  app:\n    image: a\n    ports: ['8080:80']\n"},
            "no service publishes port 80",
        ),
        (
            {
                "docker-compose.yml": "services:\n  app:\n    image: a\n    ports: ['80:80']\n"
                "    depends_on: [db]\n  db:\n    image: b\n    depends_on: [app]\n"
            },
            "depends_on forms a cycle: app -> db -> app",
        ),
        (
            {
                "docker-compose.yml": "services:\n  app:\n    image: a\n    ports: ['80:80']\n"
                "    depends_on: [cache]\n"
            },
            "app depends on cache, which is not a service",
        ),
        (
            {
                "docker-compose.yml": "services:\n  app:\n    build: ../elsewhere\n"
                "    ports: ['80:80']\n"
            },
            "must be a folder inside the bundle",
        ),
        ({"docker-compose.yml": "services: [\n"}, "not valid YAML at line"),
    ],
)
def test_docker_files_that_cannot_run_name_the_file_and_the_fix(tmp_path, files, words):
    write(tmp_path, files)
    with pytest.raises(BundleError, match=re.escape(words)):
        detect(tmp_path, resolve(), containers=True)


def test_compose_runs_the_service_publishing_80_after_what_it_depends_on(tmp_path):
    compose = """\
services:
  app:
    build:
      context: ./web
      dockerfile: Dockerfile.prod
    ports:
      - "80:5000"
    environment:
      - GREETING=hello
    command: python3 app.py --fast
    depends_on: [cache]
    volumes: ["./data:/data"]
  cache:
    image: redis:7
    environment:
      MAXMEMORY: 64mb
"""
    write(tmp_path, {"docker-compose.yml": compose, "web/Dockerfile.prod": "FROM x\n"})
    plan = detect(tmp_path, resolve(), containers=True)
    source = plan.docker
    assert (plan.platform, plan.default_port, source.web) == ("docker", 5000, "app")
    assert [s.name for s in source.services] == ["cache", "app"]
    app, cache = source.services[1], source.services[0]
    assert (app.context, app.dockerfile, app.image) == ("./web", "Dockerfile.prod", "")
    assert app.command == ("/bin/sh", "-c", "python3 app.py --fast")
    assert app.env == (("GREETING", "hello"),) and cache.env == (("MAXMEMORY", "64mb"),)
    assert (cache.image, cache.context) == ("redis:7", "")
    assert plan.warnings == ()
    assert app.volumes == (Volume("./data", "/data"),)
    assert type(plan).from_json(plan.to_json()) == plan


def test_named_docker_without_docker_files_says_what_to_add(tmp_path):
    write(tmp_path, {"requirements.txt": "flask\n"})
    with pytest.raises(BundleError, match=r"no Dockerfile or Dockerrun\.aws\.json"):
        detect(tmp_path, resolve(), platform="docker", containers=True)


def test_dockerfile_beside_a_procfile_runs_the_procfile_with_a_warning(tmp_path):
    write(tmp_path, {"Dockerfile": "FROM x\n", "Procfile": "web: ./run\n"})
    plan = detect(tmp_path, resolve())
    assert plan.platform == "procfile" and "Dockerfile ignored" in plan.warnings[0]


def test_pyproject_keeps_working_and_its_text_is_the_cache_key(tmp_path):
    write(tmp_path, {"pyproject.toml": '[project]\nname = "a"\ndependencies = ["flask"]\n'})
    deps = detect(tmp_path, resolve()).dependencies
    assert deps.manifest == "pyproject.toml" and deps.requirements == ""
    write(tmp_path, {"pyproject.toml": '[project]\nname = "a"\ndependencies = ["django"]\n'})
    assert detect(tmp_path, resolve()).dependencies.cache_key != deps.cache_key


def test_dockerrun_volumes_and_logging_are_read_and_survive_the_plans_round_trip(tmp_path):
    run = {
        "AWSEBDockerrunVersion": "1",
        "Image": {"Name": "nginx:1"},
        "Ports": [{"ContainerPort": "80"}],
        "Volumes": [
            {"HostDirectory": "/var/app/current/php-app", "ContainerDirectory": "/var/www/html"},
            {"HostDirectory": "/var/app/mydb", "ContainerDirectory": "/etc/mysql"},
        ],
        "Logging": "/var/log/nginx",
    }
    write(tmp_path, {"Dockerrun.aws.json": json.dumps(run)})
    plan = detect(tmp_path, resolve(), containers=True)
    assert plan.docker is not None and plan.docker.notes == ()
    assert plan.docker.volumes == (
        Volume("/var/app/current/php-app", "/var/www/html"),
        Volume("/var/app/mydb", "/etc/mysql"),
    )
    assert plan.docker.logging == "/var/log/nginx"
    assert type(plan).from_json(plan.to_json()) == plan


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"Volumes": [{"HostDirectory": "data", "ContainerDirectory": "/data"}]},
            "Dockerrun.aws.json's Volumes[0] needs HostDirectory and ContainerDirectory, both "
            "absolute paths",
        ),
        (
            {"Volumes": [{"HostDirectory": "/var/app/../etc", "ContainerDirectory": "/x"}]},
            "Volumes[0]: the host path '/var/app/../etc' must not contain '..'.",
        ),
        (
            {"Logging": "logs"},
            "Logging: the container path 'logs' must be an absolute folder other than /",
        ),
    ],
)
def test_bad_dockerrun_volumes_name_the_entry_and_the_fix(tmp_path, change, message):
    run = {"AWSEBDockerrunVersion": "1", "Image": {"Name": "nginx:1"}, **change}
    write(tmp_path, {"Dockerrun.aws.json": json.dumps(run)})
    with pytest.raises(BundleError) as refused:
        detect(tmp_path, resolve(), containers=True)
    assert message in refused.value.message


def test_compose_volumes_short_and_long_forms(tmp_path):
    write(
        tmp_path,
        {
            "docker-compose.yml": (
                "services:\n"
                "  web:\n"
                "    image: nginx:1\n"
                '    ports: ["80:80"]\n'
                "    volumes:\n"
                "      - ./html:/usr/share/nginx/html:ro\n"
                "      - cache:/var/cache/nginx\n"
                "      - /var/app/logs:/logs\n"
                "      - /tmp/scratch\n"
                "      - {type: bind, source: ./conf, target: /etc/nginx/conf.d, read_only: true}\n"
                "volumes:\n"
                "  cache: {}\n"
            )
        },
    )
    plan = detect(tmp_path, resolve(), containers=True)
    assert plan.docker is not None and plan.docker.notes == ()
    assert plan.docker.volumes_of("web") == (
        Volume("./html", "/usr/share/nginx/html", True),
        Volume("cache", "/var/cache/nginx"),
        Volume("/var/app/logs", "/logs"),
        Volume("", "/tmp/scratch"),
        Volume("./conf", "/etc/nginx/conf.d", True),
    )
    assert type(plan).from_json(plan.to_json()) == plan


def test_a_volume_is_a_folder_of_the_deployment_the_environment_or_the_instance(tmp_path):
    from beanpole.core.platforms.docker import volume_folder

    app, env, instance = tmp_path / "stage", tmp_path / "env", tmp_path / "instance"

    def folder(source: str, target: str = "/x") -> object:
        return volume_folder(Volume(source, target), app, env, instance)

    assert folder("/var/app/current/php-app") == app / "php-app"
    assert folder("/var/app/current") == app
    assert folder("/var/app/staging/site") == app / "site"
    assert folder("./html") == app / "html"
    assert folder("/var/app/mydb") == env / "host" / "var" / "app" / "mydb"
    assert folder("cache") == env / "named" / "cache"
    assert folder("", "/tmp/scratch") == instance / "tmp_scratch"
