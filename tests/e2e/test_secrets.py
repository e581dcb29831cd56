"""Secret environment properties (issue 14, part 6): `setenv --secret` stores the value
encrypted, the app and its bundle's commands get it as is, and every output of the REST
API, the CLI, the console's API, Elastic Beanstalk's API, events and deploy logs shows
**** instead (the value nowhere, its sealed form nowhere)."""

from __future__ import annotations

import json
import shutil
import stat
import urllib.request
from pathlib import Path

import pytest

from harness import Beanpole

pytestmark = pytest.mark.slow

SECRET = "hunter2-correct-horse-battery"
HOOK = """container_commands:
  01_echo:
    command: echo "the greeting is $GREETING"
"""


FAILING = """commands:
  01_fail:
    command: echo "failing with $GREETING" && exit 3
"""


def _rest(bp: Beanpole, path: str) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{bp.api_port}/api/v1{path}",
        headers={"Authorization": f"Bearer {(bp.home / 'token').read_text().strip()}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def _greeting(bp: Beanpole) -> str:
    status, body = bp.get("shop")
    assert status == 200, body
    return str(json.loads(body)["greeting"])


def test_a_secret_reaches_the_app_and_no_output_shows_it(
    beanpole: Beanpole, pid_app: Path, tmp_path: Path
) -> None:
    bp = beanpole
    app = tmp_path / "app"
    shutil.copytree(pid_app, app)
    (app / ".ebextensions").mkdir()
    (app / ".ebextensions" / "echo.config").write_text(HOOK)
    bp.cli("create", "shop", "--app", "shop", "--source", str(app), "--env", "GREETING=plain")
    assert _greeting(bp) == "plain"

    refused = bp.cli("setenv", "shop", "--secret", "GREETING=", check=False)
    assert refused.returncode != 0 and "has no value" in refused.stderr
    forged = bp.cli("setenv", "shop", "GREETING=bp-secret:v1:abc", check=False)
    assert forged.returncode != 0 and "marks a sealed secret" in forged.stderr

    bp.cli("setenv", "shop", "--secret", f"GREETING={SECRET}")
    assert _greeting(bp) == SECRET  # the app gets the value itself

    # saved with the environment's settings, so the saved configuration holds it sealed
    bp.cli("config", "save", "shop", "keep")
    eb = bp.eb_client()
    outputs = {
        "config": bp.cli("config", "shop").stdout,
        "status": bp.cli("status", "shop", "--json").stdout,
        "events": bp.cli("events", "shop").stdout,
        "logs": bp.cli("logs", "shop", "-n", "500").stdout,
        "releases": bp.cli("releases", "shop").stdout,
        "saved": bp.cli("config", "list", "shop", "--json").stdout,
        "rest env": _rest(bp, "/environments/shop"),
        "rest settings": _rest(bp, "/environments/shop/settings"),
        "rest events": _rest(bp, "/environments/shop/events"),
        "rest releases": _rest(bp, "/environments/shop/releases"),
        "rest saved": _rest(bp, "/configurations"),
        "console": _rest(bp, "/console/environments/shop"),
        "eb settings": json.dumps(
            eb.describe_configuration_settings(ApplicationName="shop", EnvironmentName="shop")[
                "ConfigurationSettings"
            ],
            default=str,
        ),
        "eb saved": json.dumps(
            eb.describe_configuration_settings(ApplicationName="shop", TemplateName="keep")[
                "ConfigurationSettings"
            ],
            default=str,
        ),
        "eb events": json.dumps(eb.describe_events(EnvironmentName="shop")["Events"], default=str),
    }
    for where, text in outputs.items():
        assert SECRET not in text, f"the secret is shown by {where}"
        assert "bp-secret:" not in text, f"the sealed secret is shown by {where}"
    # masked where the property is listed, and the deploy log shows the command ran
    assert "****" in outputs["config"] and "****" in outputs["rest settings"]
    assert "****" in outputs["eb settings"]
    assert "the greeting is ****" in outputs["logs"]

    # at rest: encrypted in the database, with the key in a file of its own
    assert SECRET.encode() not in (bp.home / "state.db").read_bytes()
    key_file = bp.home / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # a clone carries the secret sealed, and its app gets it as is
    bp.cli("clone", "shop", "shop-copy")
    status, body = bp.get("shop-copy")
    assert status == 200 and json.loads(body)["greeting"] == SECRET

    # a command that prints the secret and fails: the failure shows **** wherever it goes
    bad = tmp_path / "bad"
    shutil.copytree(app, bad)
    (bad / ".ebextensions" / "fail.config").write_text(FAILING)
    failed = bp.cli("deploy", "shop", "--source", str(bad), check=False)
    assert failed.returncode != 0
    assert SECRET not in failed.stdout + failed.stderr
    assert "failing with ****" in failed.stdout + failed.stderr
    for where in ("/applications/shop/versions", "/environments/shop/events"):
        assert SECRET not in _rest(bp, where), where
    assert _greeting(bp) == SECRET  # the running version kept serving

    # a plain value again is no longer secret
    bp.cli("setenv", "shop", "GREETING=plain-again")
    assert _greeting(bp) == "plain-again"
    assert "plain-again" in bp.cli("config", "shop").stdout
