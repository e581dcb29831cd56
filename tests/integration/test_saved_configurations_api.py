"""Saved configurations and setting sources through the REST API (in process, real SQLite
store and bundle store; issue 8, part 8)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beanpole.client import _configuration_path
from beanpole.home import Home
from beanpole.server.context import Context
from beanpole.server.main import build_context
from beanpole.server.rest.app import create_app

ENV = "aws:elasticbeanstalk:application:environment"
PY = "aws:elasticbeanstalk:container:python"
CONFIG = b"""option_settings:
  aws:elasticbeanstalk:application:environment:
    GREETING: from-file
  aws:elasticbeanstalk:container:python:
    NumThreads: 4
    NumProcesses: 2
"""

Api = tuple[TestClient, Context, dict[str, str]]


@pytest.fixture
def api(public_tmp: Path) -> Iterator[Api]:
    ctx = build_context(Home(public_tmp / "home"))
    try:
        with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
            yield client, ctx, {"Authorization": f"Bearer {ctx.token}"}
    finally:
        ctx.store.close()


def upload(client: TestClient, auth: dict[str, str], app: str = "app") -> str:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("Procfile", "web: x\n")
        archive.writestr(".ebextensions/10-app.config", CONFIG)
    response = client.post(
        f"/api/v1/applications/{app}/versions", headers=auth, content=out.getvalue()
    )
    assert response.status_code == 201, response.text
    return str(response.json()["label"])


def running(api: Api, name: str, direct: dict[str, str], **kwargs: Any) -> None:
    """An environment recorded as running the uploaded version (no process is started)."""
    client, ctx, auth = api
    label = upload(client, auth)
    ctx.store.create_environment(name, "app", name, direct, **kwargs)
    ctx.store.update_environment(name, version_label=label)


def save(api: Api, body: dict[str, Any], app: str = "app") -> Any:
    client, _, auth = api
    return client.post(f"/api/v1/applications/{app}/configurations", headers=auth, json=body)


def error(response: Any) -> str:
    return str(response.json()["error"]["message"])


def test_save_keeps_the_environments_own_settings_not_its_files_nor_defaults(api):
    client, _, auth = api
    running(api, "shop", {f"{PY}:NumThreads": "8", f"{ENV}:DB_PASSWORD": "pw"})
    response = save(api, {"name": "baseline", "environment": "shop", "description": "prod"})
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved["settings"] == {f"{PY}:NumThreads": "8", f"{ENV}:DB_PASSWORD": "pw"}
    assert (saved["environment"], saved["description"]) == ("shop", "prod")
    listed = client.get("/api/v1/configurations", headers=auth).json()
    assert [(c["application"], c["name"]) for c in listed] == [("app", "baseline")]
    one = client.get("/api/v1/applications/app/configurations/baseline", headers=auth)
    assert one.json() == saved


def test_a_duplicate_name_is_a_conflict_that_names_the_fix(api):
    running(api, "shop", {})
    assert save(api, {"name": "baseline", "environment": "shop"}).status_code == 201
    again = save(api, {"name": "baseline", "environment": "shop"})
    assert again.status_code == 409
    assert error(again) == (
        "Application app already has a saved configuration baseline. Choose another name, "
        "or delete it first with: beanpole config delete app baseline"
    )


def test_bad_input_is_refused_with_the_rule(api):
    client, _, auth = api
    running(api, "shop", {})
    bad_name = save(api, {"name": "a/b", "environment": "shop"})
    assert bad_name.status_code == 400
    assert "1 to 100 characters without '/'" in error(bad_name)
    bad_setting = save(api, {"name": "x", "settings": {f"{PY}:NumThreads": "many"}})
    assert bad_setting.status_code == 400
    assert "not a whole number" in error(bad_setting)
    upload(client, auth, app="other")
    elsewhere = save(api, {"name": "x", "environment": "shop"}, app="other")
    assert elsewhere.status_code == 400
    assert error(elsewhere) == (
        "Environment shop belongs to application app, not other. Save it under app."
    )
    no_app = client.get("/api/v1/configurations", params={"application": "ghost"}, headers=auth)
    assert no_app.status_code == 404


def test_unknown_names_say_how_to_list_them(api):
    client, _, auth = api
    upload(client, auth)
    expected = (
        "No saved configuration nope in application app. `beanpole config list app` shows them."
    )
    for method in ("GET", "DELETE"):
        response = client.request(
            method, "/api/v1/applications/app/configurations/nope", headers=auth
        )
        assert (response.status_code, error(response)) == (404, expected)
    body = {"name": "shop", "application": "app", "saved_configuration": "nope"}
    dry = client.post("/api/v1/environments", params={"dry_run": "true"}, headers=auth, json=body)
    assert (dry.status_code, error(dry)) == (404, expected)


def test_create_checks_sizes_over_the_saved_configuration(api):
    client, _, auth = api
    upload(client, auth)
    assert save(api, {"name": "big", "settings": {"aws:autoscaling:asg:MinSize": "4"}}).is_success
    body = {
        "name": "shop",
        "application": "app",
        "saved_configuration": "big",
        "settings": {"aws:autoscaling:asg:MaxSize": "2"},
    }
    dry = client.post("/api/v1/environments", params={"dry_run": "true"}, headers=auth, json=body)
    assert dry.status_code == 400
    assert "MinSize (4) is above MaxSize (2)" in error(dry)


def test_settings_name_the_source_of_each_value_and_survive_deleting_the_configuration(api):
    client, ctx, auth = api
    running(api, "blue", {f"{PY}:NumThreads": "6", f"{PY}:WSGIPath": "app:server"})
    assert save(api, {"name": "baseline", "environment": "blue"}).status_code == 201
    config = ctx.store.saved_configuration("app", "baseline")
    running(api, "green", {f"{PY}:NumThreads": "8"}, saved=config)

    def sources() -> dict[str, tuple[str, str]]:
        view = client.get("/api/v1/environments/green/settings", headers=auth).json()
        assert view["saved_configuration"] == "baseline"
        return {
            f"{s['namespace']}:{s['option']}": (s["value"], s["source"]) for s in view["effective"]
        }

    found = sources()
    assert found[f"{PY}:NumThreads"] == ("8", "direct")
    assert found[f"{PY}:WSGIPath"] == ("app:server", "saved:baseline")
    assert found[f"{PY}:NumProcesses"] == ("2", ".ebextensions/10-app.config")
    assert found[f"{ENV}:GREETING"] == ("from-file", ".ebextensions/10-app.config")
    assert found["aws:autoscaling:asg:MaxSize"] == ("4", "default")

    deleted = client.delete("/api/v1/applications/app/configurations/baseline", headers=auth)
    assert deleted.json() == {"application": "app", "name": "baseline"}
    assert client.get("/api/v1/configurations", headers=auth).json() == []
    assert sources()[f"{PY}:WSGIPath"] == ("app:server", "saved:baseline")  # kept


@pytest.mark.parametrize("name", ["prod baseline ?#%", ".", "..", "ünïcode"])
def test_any_name_without_a_slash_round_trips_through_the_path(api, name):
    client, _, auth = api
    upload(client, auth)
    assert save(api, {"name": name}).status_code == 201
    path = "/api/v1" + _configuration_path("app", name)
    assert client.get(path, headers=auth).json()["name"] == name
    assert client.delete(path, headers=auth).status_code == 200
