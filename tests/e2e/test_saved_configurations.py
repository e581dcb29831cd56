"""Settings you can see, and saved configurations, end to end through the real CLI, server,
HAProxy and supervisord (issue 8, part 8).

save → create --cfg → `config ENV` shows each value's source → removing a direct setting
falls back to the saved value → deleting the saved configuration changes no environment, and
a clone still carries the copy.
"""

from __future__ import annotations

import json

import pytest

from harness import wait_for

ENV = "aws:elasticbeanstalk:application:environment"
FILE = ".ebextensions/01-props.config"


def greeting(bp, host: str) -> str:
    status, body = bp.get(host)
    assert status == 200, body
    return str(json.loads(body)["greeting"])


def sources(bp, env: str, *flags: str) -> dict[str, tuple[str, str]]:
    rows = json.loads(bp.cli("config", env, "--json", *flags).stdout)
    return {f"{r['namespace']}:{r['option']}": (r["value"], r["source"]) for r in rows}


@pytest.mark.slow
def test_save_create_from_it_see_sources_fall_back_and_delete(beanpole, pid_app):
    (pid_app / ".ebextensions").mkdir()
    (pid_app / FILE).write_text(f"option_settings:\n  {ENV}:\n    FROM_FILE: from-the-file\n")
    beanpole.cli(
        "create", "blue", "--app", "shop", "--source", str(pid_app),
        "--env", "GREETING=saved-greeting", "--env", "DB_PASSWORD=s3cret",
        "--setting", "beanpole:deploy:BakeTime=0",
    )  # fmt: skip

    saved = beanpole.cli("config", "save", "blue", "baseline", "--description", "prod")
    assert "Saved configuration baseline of application shop: 3 setting(s) from blue." in (
        saved.stdout
    )
    again = beanpole.cli("config", "save", "blue", "baseline", check=False)
    assert again.returncode != 0
    assert "already has a saved configuration baseline" in again.stderr
    listed = json.loads(beanpole.cli("config", "list", "shop", "--json").stdout)
    assert [(c["name"], c["environment"], c["description"]) for c in listed] == [
        ("baseline", "blue", "prod")
    ]

    missing = beanpole.cli(
        "create", "nope-env", "--app", "shop", "--source", str(pid_app), "--cfg", "nope",
        check=False,
    )  # fmt: skip
    assert missing.returncode != 0
    assert (
        "Error: No saved configuration nope in application shop. "
        "`beanpole config list shop` shows them."
    ) in missing.stderr
    assert "Uploading" not in missing.stdout  # refused before the upload

    beanpole.cli(
        "create", "green", "--app", "shop", "--source", str(pid_app),
        "--cfg", "baseline", "--env", "GREETING=direct-greeting",
    )  # fmt: skip
    assert greeting(beanpole, "green") == "direct-greeting"
    found = sources(beanpole, "green")
    assert found[f"{ENV}:GREETING"] == ("direct-greeting", "direct")
    assert found[f"{ENV}:DB_PASSWORD"] == ("********", "saved:baseline")
    assert found["beanpole:deploy:BakeTime"] == ("0", "saved:baseline")
    assert found[f"{ENV}:FROM_FILE"] == ("from-the-file", FILE)
    assert found["aws:autoscaling:asg:MaxSize"] == ("4", "default")
    shown = sources(beanpole, "green", "--show-secrets")
    assert shown[f"{ENV}:DB_PASSWORD"] == ("s3cret", "saved:baseline")
    table = beanpole.cli("config", "green").stdout
    assert "created from saved configuration baseline" in table
    assert "saved:baseline" in table and FILE in table
    assert "s3cret" not in table and "--show-secrets shows them" in table

    beanpole.cli("config", "green", f"{ENV}:GREETING=")  # remove the direct setting
    assert sources(beanpole, "green")[f"{ENV}:GREETING"] == ("saved-greeting", "saved:baseline")
    wait_for(
        lambda: greeting(beanpole, "green") == "saved-greeting", 30, "the saved greeting served"
    )

    deleted = beanpole.cli("config", "delete", "shop", "baseline")
    assert "Deleted saved configuration baseline of application shop" in deleted.stdout
    assert json.loads(beanpole.cli("config", "list", "--json").stdout) == []
    kept = sources(beanpole, "green")
    assert kept[f"{ENV}:GREETING"] == ("saved-greeting", "saved:baseline")
    assert greeting(beanpole, "green") == "saved-greeting"
    gone = beanpole.cli("config", "delete", "shop", "baseline", check=False)
    assert gone.returncode != 0 and "No saved configuration baseline" in gone.stderr

    # A clone carries the source's copy along, though the saved configuration is gone.
    beanpole.cli("clone", "green", "teal")
    cloned = sources(beanpole, "teal")
    assert cloned[f"{ENV}:GREETING"] == ("saved-greeting", "saved:baseline")
    assert cloned["beanpole:deploy:BakeTime"] == ("0", "saved:baseline")
    assert greeting(beanpole, "teal") == "saved-greeting"
