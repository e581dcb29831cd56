""".ebextensions through the API (in process, real SQLite store and bundle store): read once at
upload and kept with the version; the settings view shows where each value comes from."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beanpole.home import Home
from beanpole.server.context import Context
from beanpole.server.main import build_context
from beanpole.server.rest.app import create_app

ENV = "aws:elasticbeanstalk:application:environment"
GOOD = b"""option_settings:
  aws:elasticbeanstalk:application:environment:
    GREETING: from-ebextensions
  aws:elasticbeanstalk:container:python:
    NumThreads: 4
commands:
  hello: {command: "echo hi"}
"""
BAD = b"option_settings:\n  aws:autoscaling:asg: {MinSize: many}\n"


@pytest.fixture
def api(public_tmp: Path) -> Iterator[tuple[TestClient, Context, dict[str, str]]]:
    ctx = build_context(Home(public_tmp / "home"))
    try:
        with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
            yield client, ctx, {"Authorization": f"Bearer {ctx.token}"}
    finally:
        ctx.store.close()


def bundle(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def upload(client: TestClient, auth: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
    response = client.post("/api/v1/applications/app/versions", headers=auth, content=bundle(files))
    assert response.status_code == 201, response.text
    return response.json()


def test_upload_reads_the_layer_once_and_keeps_it_with_the_version(api):
    client, _, auth = api
    version = upload(
        client,
        auth,
        {
            "Procfile": b"web: python3 server.py\n",
            ".ebextensions/01-env.config": GOOD,
            ".ebextensions/02-bad.config": BAD,
        },
    )
    assert version["ebextensions"] == {
        f"{ENV}:GREETING": "from-ebextensions",
        "aws:elasticbeanstalk:container:python:NumThreads": "4",
    }
    first, second = version["ebextensions_warnings"]
    assert first.startswith(".ebextensions/01-env.config: commands is not supported")
    assert second.startswith(".ebextensions/02-bad.config is ignored: ")
    assert "'many', which is not a whole number" in second
    listed = client.get("/api/v1/applications/app/versions", headers=auth).json()
    assert listed[0]["ebextensions"] == version["ebextensions"]  # persisted


def test_settings_show_each_layer_and_where_a_value_comes_from(api):
    client, ctx, auth = api
    label = upload(client, auth, {"Procfile": b"web: x\n", ".ebextensions/env.config": GOOD})[
        "label"
    ]
    ctx.store.create_environment("shop", "app", "shop", {f"{ENV}:OTHER": "direct"})
    ctx.store.update_environment("shop", version_label=label)
    view = client.get("/api/v1/environments/shop/settings", headers=auth).json()
    assert view["version"] == label
    assert view["direct"] == {f"{ENV}:OTHER": "direct"}
    assert view["ebextensions"][f"{ENV}:GREETING"] == "from-ebextensions"
    assert view["environment"] == {"GREETING": "from-ebextensions", "OTHER": "direct"}
    assert view["resolved"]["aws:elasticbeanstalk:container:python:NumThreads"] == "4"
    assert view["sources"][f"{ENV}:OTHER"] == "direct"
    assert view["sources"][f"{ENV}:GREETING"] == "ebextensions"
    assert view["sources"]["aws:elasticbeanstalk:container:python:NumProcesses"] == "default"


def test_sizes_are_checked_over_the_layer(api):
    """MinSize from .ebextensions above the resolved MaxSize is refused before anything runs."""
    client, _, auth = api
    label = upload(
        client,
        auth,
        {
            "Procfile": b"web: x\n",
            ".ebextensions/size.config": b"option_settings:\n  aws:autoscaling:asg: {MinSize: 6}\n",
        },
    )["label"]
    body = {"name": "shop", "application": "app", "version_label": label}
    response = client.post("/api/v1/environments", headers=auth, json=body)
    assert response.status_code == 400
    assert "MinSize (6) is above MaxSize (4)" in response.json()["error"]["message"]
