"""Every route of the REST API answers errors in one shape (in process, real SQLite store).

``{"error": {"code": "...", "message": "..."}}`` with a matching status, whatever went
wrong: no token, a wrong token, an unknown environment, a malformed body or query, an
unknown path. The walk covers every route the app declares, so a new route is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from beanpole.home import Home
from beanpole.server.main import build_context
from beanpole.server.rest.app import create_app

# /api/v1/session signs in (tests/integration/test_console_api.py checks it): no token needed.
PUBLIC = {
    "/api/v1/ping",
    "/api/v1/openapi.json",
    "/api/v1/docs",
    "/api/v1/docs/oauth2-redirect",
    "/api/v1/session",
}


@pytest.fixture
def client(public_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    # a host where Docker's engine does not answer (the refusals below name what to do)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{public_tmp}/no-engine.sock")
    ctx = build_context(Home(public_tmp / "home"))
    try:
        with TestClient(create_app(ctx), raise_server_exceptions=False) as test_client:
            yield test_client, ctx.token
    finally:
        ctx.store.close()


def routes(app: object) -> list[tuple[str, str]]:
    """Every (method, path) the app declares, from its OpenAPI document: routes included
    from routers are listed there whatever FastAPI does with them internally."""
    found = []
    for path, operations in app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if path not in PUBLIC:
            found.extend((method.upper(), path) for method in sorted(operations))
    return found


def concrete(path: str) -> str:
    """Fill path parameters with names that exist nowhere."""
    return re.sub(r"\{(\w+)\}", lambda m: "12345" if m.group(1) == "op_id" else "nowhere", path)


def assert_error_shape(response, status: int | None = None) -> None:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    if status is not None:
        assert response.status_code == status, (response.status_code, body)


def test_every_route_refuses_a_missing_or_wrong_token(client):
    test_client, _ = client
    checked = routes(test_client.app)
    assert len(checked) > 15  # the walk found the API
    for method, path in checked:
        response = test_client.request(method, concrete(path))
        assert_error_shape(response, 401)
        assert response.json()["error"]["code"] == "unauthorized"
        response = test_client.request(
            method, concrete(path), headers={"Authorization": "Bearer wrong"}
        )
        assert_error_shape(response)  # 401, then 429 once this client failed too often
        assert response.status_code in (401, 429), response.status_code


def test_every_route_answers_an_unknown_name_in_the_error_shape(client):
    test_client, token = client
    auth = {"Authorization": f"Bearer {token}"}
    for method, path in routes(test_client.app):
        if "{" not in path:
            continue
        kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        response = test_client.request(method, concrete(path), headers=auth, **kwargs)
        assert response.status_code in (400, 404), (method, path, response.text)
        assert_error_shape(response)


def test_malformed_bodies_and_queries_are_400_naming_the_field(client):
    test_client, token = client
    auth = {"Authorization": f"Bearer {token}"}
    response = test_client.post("/api/v1/environments", headers=auth, json={"name": "x"})
    assert_error_shape(response, 400)
    assert "application" in response.json()["error"]["message"]
    response = test_client.get("/api/v1/environments/x/events?limit=0", headers=auth)
    assert_error_shape(response, 400)
    response = test_client.post(
        "/api/v1/environments", headers=auth, content=b"{not json", params={}
    )
    assert_error_shape(response, 400)


def test_unknown_paths_and_methods_use_the_error_shape(client):
    test_client, token = client
    auth = {"Authorization": f"Bearer {token}"}
    assert_error_shape(test_client.get("/api/v1/nothing-here", headers=auth), 404)
    assert_error_shape(test_client.delete("/api/v1/applications", headers=auth), 405)


def test_a_method_a_path_does_not_take_is_405_naming_every_method_it_takes(client):
    """`Allow` lists every method of the path, over all the routes declared for it (GET and
    DELETE of one environment are two routes; Starlette's own header names only one)."""
    test_client, token = client
    auth = {"Authorization": f"Bearer {token}"}
    checked = 0
    for path, operations in test_client.app.openapi()["paths"].items():
        if path in PUBLIC - {"/api/v1/ping"}:
            continue
        declared = {method.upper() for method in operations}
        wrong = next(m for m in ("PUT", "DELETE", "PATCH", "POST", "GET") if m not in declared)
        response = test_client.request(wrong, concrete(path), headers=auth)
        assert_error_shape(response, 405)
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert set(response.headers["allow"].split(", ")) == declared, (wrong, path)
        assert "405" in {str(s) for op in operations.values() for s in op["responses"]}, path
        checked += 1
    assert checked > 10
    settings = test_client.put("/api/v1/environments/x/settings", headers=auth)
    assert settings.headers["allow"] == "GET, PATCH"


def test_create_names_a_platform_or_is_refused_naming_it(client):
    """Issue 8, part 7: `platform` is part of the create body; docker is refused at once
    (no runtime yet) and an unknown name is a 400 that lists the accepted ones."""
    test_client, token = client
    auth = {"Authorization": f"Bearer {token}"}
    body = {"name": "shop-prod", "application": "shop"}
    docker = test_client.post(
        "/api/v1/environments",
        params={"dry_run": "true"},
        json={**body, "platform": "docker"},
        headers=auth,
    )
    assert_error_shape(docker, 400)
    assert (
        "docker platform needs a server that runs containers" in (docker.json()["error"]["message"])
    )
    ruby = test_client.post(
        "/api/v1/environments",
        params={"dry_run": "true"},
        json={**body, "platform": "ruby"},
        headers=auth,
    )
    assert_error_shape(ruby, 400)
    assert "platform" in ruby.json()["error"]["message"]
    assert "procfile" in ruby.json()["error"]["message"]
    node = test_client.post(
        "/api/v1/environments",
        params={"dry_run": "true"},
        json={**body, "platform": "node"},
        headers=auth,
    )
    assert node.status_code == 202 and node.json() == {"ok": True}, node.text
