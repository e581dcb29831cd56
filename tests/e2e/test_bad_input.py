"""Bad input gets a clear error and an event, leaves nothing half-made, and the running
version keeps serving (issue #2, part 10)."""

import json
import re
import shutil

from harness import Load


def create_ok(bp, app, name="shop"):
    bp.cli("create", name, "--app", "shop", "--source", str(app))


def test_a_broken_zip_is_refused(beanpole, tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    result = beanpole.cli("create", "shop", "--app", "shop", "--source", str(bad), check=False)
    assert result.returncode == 1 and result.stderr.startswith("Error: ")
    assert "zip" in result.stderr.lower()
    assert json.loads(beanpole.cli("list", "--json").stdout) == []


def test_an_unknown_platform_fails_the_launch_with_the_fix(beanpole, tmp_path):
    app = tmp_path / "mystery"
    app.mkdir()
    (app / "README.md").write_text("what am I?")
    result = beanpole.cli("create", "shop", "--app", "shop", "--source", str(app), check=False)
    assert result.returncode == 1
    assert "Add a Procfile" in result.stderr
    assert "Failed to launch environment." in result.stdout
    assert json.loads(beanpole.cli("list", "--json").stdout) == []


def test_a_crashing_app_fails_with_its_exit_status_and_last_lines(beanpole, tmp_path):
    app = tmp_path / "crash"
    app.mkdir()
    (app / "Procfile").write_text(
        "web: python3 -c \"import sys; print('boom: no DATABASE_URL'); sys.exit(3)\"\n"
    )
    result = beanpole.cli("create", "shop", "--app", "shop", "--source", str(app), check=False)
    assert result.returncode == 1
    assert "web exited with status 3" in result.stderr
    assert "boom: no DATABASE_URL" in result.stderr


def test_an_app_that_never_listens_fails_naming_the_port(beanpole, tmp_path):
    app = tmp_path / "deaf"
    app.mkdir()
    (app / "Procfile").write_text("web: sleep 600\n")
    result = beanpole.cli(
        "create",
        "shop",
        "--app",
        "shop",
        "--source",
        str(app),
        "--setting",
        "beanpole:instance:StartTimeout=3",
        check=False,
    )
    assert result.returncode == 1
    assert "did not listen on PORT" in result.stderr and "within" in result.stderr


def test_a_duplicate_environment_is_refused(beanpole, pid_app):
    create_ok(beanpole, pid_app)
    result = beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), check=False)
    assert result.returncode == 1
    assert "Environment shop already exists" in result.stderr


def test_an_unknown_environment_is_named(beanpole, pid_app):
    result = beanpole.cli("deploy", "nope", "--source", str(pid_app), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: No environment named 'nope'")


def test_deploy_refuses_source_and_version_together(beanpole, pid_app, tmp_path):
    """Issue #7: --source was ignored silently when --version was given too."""
    create_ok(beanpole, pid_app)
    other = tmp_path / "other"
    shutil.copytree(pid_app, other)
    (other / "VERSION").write_text("other\n")
    before = beanpole.cli("versions", "shop", "--json").stdout
    label = json.loads(before)[0]["label"]
    result = beanpole.cli("deploy", "shop", "--source", str(other), "--version", label, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: --version deploys a version already uploaded")
    assert "--source" in result.stderr and result.stderr.count("\n") == 1
    assert beanpole.cli("versions", "shop", "--json").stdout == before  # nothing uploaded
    assert beanpole.status("shop")["deployment_id"] == 1


def test_an_invalid_setting_is_refused(beanpole, pid_app):
    result = beanpole.cli(
        "create",
        "shop",
        "--app",
        "shop",
        "--source",
        str(pid_app),
        "--setting",
        "aws:autoscaling:asg:MinSize=lots",
        check=False,
    )
    assert result.returncode == 1
    assert "MinSize has value 'lots'" in result.stderr
    assert json.loads(beanpole.cli("list", "--json").stdout) == []


def test_a_failed_deploy_leaves_the_running_version_serving(beanpole, pid_app, tmp_path):
    create_ok(beanpole, pid_app)
    before = beanpole.status("shop")
    broken = tmp_path / "broken-app"
    broken.mkdir()
    (broken / "Procfile").write_text("web: python3 -c 'raise SystemExit(7)'\n")
    with Load(beanpole.lb_port, "shop") as load:
        result = beanpole.cli("deploy", "shop", "--source", str(broken), check=False)
    assert result.returncode == 1
    assert "web exited with status 7" in result.stderr
    assert "Failed to deploy application." in result.stdout
    assert load.failures == [] and load.ok > 0
    after = beanpole.status("shop")
    assert after["status"] == "Ready" and after["version"] == before["version"]
    assert [i["id"] for i in after["instances"]] == [i["id"] for i in before["instances"]]


def test_a_failing_build_shows_the_end_of_its_output(beanpole, pid_app):
    (pid_app / "Buildfile").write_text(
        "make: echo compiling; echo 'error: missing header' >&2; exit 2\n"
    )
    result = beanpole.cli("create", "shop", "--app", "shop", "--source", str(pid_app), check=False)
    assert result.returncode == 1
    assert "Buildfile command 'make' failed with exit status 2" in result.stderr
    assert "error: missing header" in result.stderr


def test_a_name_recreated_after_a_failed_create_starts_with_no_events(beanpole, pid_app, tmp_path):
    """Issue 7, part 3: the events of a name re-created after a failed create are the new
    environment's only, not the failed attempt's (which live on under the old id)."""
    mystery = tmp_path / "mystery"
    mystery.mkdir()
    (mystery / "README.md").write_text("what am I?")
    failed = beanpole.cli("create", "shop", "--app", "shop", "--source", str(mystery), check=False)
    assert failed.returncode == 1 and "Failed to launch environment." in failed.stdout
    create_ok(beanpole, pid_app)
    shown = beanpole.cli("events", "shop").stdout
    assert "Successfully launched environment: shop" in shown
    assert "Failed to launch environment." not in shown
    assert "Add a Procfile" not in shown
    assert shown.count("createEnvironment is starting.") == 1
    assert re.match(r"^e-[a-z0-9]{10}$", beanpole.status("shop")["id"])  # status --json
