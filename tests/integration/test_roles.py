"""Roles against every route (issue 14, part 5): a token of each role, and one limited to
one application, calls every route of the REST API; what each may do, what it is refused,
and the audit log of it all. The real app, store and services (no HAProxy is needed:
refusals come before anything runs, and allowed calls name resources that do not exist
or that change nothing)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from beanpole.core.access import Role, required_role
from beanpole.home import Home
from beanpole.server.main import build_context
from beanpole.server.rest.app import create_app

PUBLIC = {"/api/v1/ping", "/api/v1/session", "/", "/api/v1/openapi.json", "/api/v1/docs"}


@pytest.fixture
def api(public_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, dict]]:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{public_tmp}/no-engine.sock")
    ctx = build_context(Home(public_tmp / "home"))
    # two applications with an environment each (records only: nothing is started)
    for app, env in (("shop", "shop-web"), ("blog", "blog-web")):
        ctx.store.ensure_application(app)
        ctx.store.create_environment(env, app, env, {})
    try:
        with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
            server = {"Authorization": f"Bearer {ctx.token}"}
            tokens = {"admin-server": server}
            for role in ("read", "deploy", "admin"):
                made = client.post("/api/v1/tokens", headers=server, json={"role": role})
                assert made.status_code == 201, made.text
                tokens[role] = {"Authorization": f"Bearer {made.json()['token']}"}
            made = client.post(
                "/api/v1/tokens",
                headers=server,
                json={"role": "deploy", "application": "shop", "name": "shop ci"},
            )
            tokens["shop-deploy"] = {"Authorization": f"Bearer {made.json()['token']}"}
            made = client.post(
                "/api/v1/tokens", headers=server, json={"role": "read", "application": "blog"}
            )
            tokens["blog-read"] = {"Authorization": f"Bearer {made.json()['token']}"}
            tokens["_store"] = ctx.store  # type: ignore[assignment]
            yield client, tokens
    finally:
        ctx.store.close()


def routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if path not in PUBLIC:
            found.extend((method.upper(), path) for method in sorted(operations))
    return found


def concrete(path: str, env: str = "nowhere") -> str:
    values = {"op_id": "12345", "name": env, "application": "nowhere"}
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: values.get(m.group(1), "nowhere"), path)


def call(client: TestClient, method: str, path: str, headers: dict) -> int:
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    response = client.request(method, path, headers=headers, **body)
    assert response.headers["content-type"].startswith(
        ("application/json", "text/plain", "text/event-stream", "application/zip")
    ), (method, path, response.text[:200])
    return response.status_code


def test_each_role_reaches_exactly_its_routes(api) -> None:
    client, tokens = api
    checked = routes(client)
    assert len(checked) > 40
    counts = {role: [0, 0] for role in ("read", "deploy", "admin")}  # allowed, refused
    for method, path in checked:
        if path.endswith("/follow") or path.endswith("/stream"):
            continue  # streams: their role is checked like any GET (below)
        needed = required_role(method, path)
        for role in ("read", "deploy", "admin"):
            status = call(client, method, concrete(path), tokens[role])
            assert status < 500, (role, method, path, status)
            if Role(role).rank < needed.rank:
                assert status == 403, (role, method, path, status)
                counts[role][1] += 1
            else:
                assert status not in (401, 403, 429), (role, method, path, status)
                counts[role][0] += 1
    # no route lets a read token change anything
    changes = [(m, p) for m, p in checked if m not in ("GET", "HEAD")]
    assert changes and all(required_role(m, p) is not Role.READ for m, p in changes)
    assert counts["admin"][1] == 0
    assert counts["read"][1] > counts["deploy"][1] > 0
    print("routes allowed/refused per role:", counts)


def test_a_token_limited_to_one_application_reaches_only_it(api) -> None:
    client, tokens = api
    shop = tokens["shop-deploy"]
    assert client.get("/api/v1/environments/shop-web", headers=shop).status_code == 200
    assert client.get("/api/v1/environments/blog-web", headers=shop).status_code == 403
    assert client.get("/api/v1/environments/blog-web/logs", headers=shop).status_code == 403
    assert client.get("/api/v1/applications/blog/versions", headers=shop).status_code == 403
    assert client.get("/api/v1/applications/shop/versions", headers=shop).status_code == 200
    listed = client.get("/api/v1/environments", headers=shop).json()
    assert [e["name"] for e in listed] == ["shop-web"]
    assert [a["name"] for a in client.get("/api/v1/applications", headers=shop).json()] == ["shop"]
    # changes to the other application, by path or by body, are refused
    refused = client.patch("/api/v1/environments/blog-web/settings", headers=shop, json={})
    assert refused.status_code == 403 and "limited to application shop" in refused.text
    create = {"name": "x", "application": "blog", "version_label": "v1"}
    assert client.post("/api/v1/environments", headers=shop, json=create).status_code == 403
    swap = client.post(
        "/api/v1/environments/shop-web/swap", headers=shop, json={"other": "blog-web"}
    )
    assert swap.status_code == 403
    # the server's own resources are closed to it
    for path in ("/api/v1/tokens", "/api/v1/certificates", "/api/v1/audit", "/metrics"):
        assert client.get(path, headers=shop).status_code == 403, path


def test_tokens_are_stored_hashed_revoked_and_every_change_is_audited(api, public_tmp) -> None:
    client, tokens = api
    admin = tokens["admin-server"]
    listed = client.get("/api/v1/tokens", headers=admin).json()
    assert {t["role"] for t in listed} == {"read", "deploy", "admin"}
    secret = tokens["read"]["Authorization"].removeprefix("Bearer ")
    assert secret.encode() not in (public_tmp / "home" / "state.db").read_bytes()
    assert "token" not in listed[0]

    # a change, a refusal and a wrong token: all recorded, with who and from where
    client.patch("/api/v1/environments/shop-web/settings", headers=tokens["read"], json={})
    client.delete("/api/v1/environments/nowhere", headers=tokens["deploy"])
    client.get("/api/v1/environments", headers={"Authorization": "Bearer wrong"})
    read_id = next(t["id"] for t in listed if t["role"] == "read")
    revoked = client.delete(f"/api/v1/tokens/{read_id}", headers=admin)
    assert revoked.status_code == 200
    assert client.get("/api/v1/environments", headers=tokens["read"]).status_code == 401

    entries = client.get("/api/v1/audit", headers=admin).json()["entries"]
    actions = [(e["actor"].split(" (")[0], e["action"], e["status"]) for e in entries]
    assert (f"token {read_id}", "PATCH /api/v1/environments/shop-web/settings", 403) in actions
    assert ("anonymous", "GET /api/v1/environments", 401) in actions
    assert ("server token", f"DELETE /api/v1/tokens/{read_id}", 200) in actions
    assert any(a[1] == "DELETE /api/v1/environments/nowhere" and a[2] == 404 for a in actions)
    refused = next(e for e in entries if e["status"] == 403)
    assert refused["application"] == "shop" and refused["environment"] == "shop-web"
    assert refused["source"].startswith("testclient")
    shop_only = client.get("/api/v1/audit?application=shop", headers=admin).json()["entries"]
    assert shop_only and all(e["application"] == "shop" for e in shop_only)


def test_wrong_tokens_are_throttled_per_client_and_the_right_one_waits_too(api) -> None:
    client, tokens = api
    wrong = {"Authorization": "Bearer bpt_00000000_" + "x" * 43}
    statuses = [client.get("/api/v1/environments", headers=wrong).status_code for _ in range(21)]
    assert statuses[:20] == [401] * 20 and statuses[20] == 429
    # while the client is throttled, even a right token waits: guesses cannot be tested
    answer = client.get("/api/v1/environments", headers=tokens["admin"])
    assert answer.status_code == 429 and "Try again in" in answer.json()["error"]["message"]


def test_an_operation_belongs_to_the_environment_it_ran_on_not_to_a_later_namesake(
    api,
) -> None:
    from beanpole.core.model import EnvStatus, OperationKind, OperationStatus

    client, tokens = api
    store = tokens["_store"]
    op = store.start_operation(
        "shop-web", OperationKind.TERMINATE, target_version=None, previous_version=None
    )
    store.finish_operation(op.id, OperationStatus.SUCCEEDED, "")
    store.update_environment("shop-web", status=EnvStatus.TERMINATED)
    # its application's token still reads it after the terminate, and its events
    path = f"/api/v1/operations/{op.id}"
    assert client.get(path, headers=tokens["shop-deploy"]).status_code == 200
    events = client.get("/api/v1/environments/shop-web/events", headers=tokens["shop-deploy"])
    assert events.status_code in (200, 404)  # never refused for the application
    # another application's environment takes the name: the operation stays shop's
    store.create_environment("shop-web", "blog", "shop-web-2", {})
    assert client.get(path, headers=tokens["blog-read"]).status_code == 403
    assert client.get(path, headers=tokens["shop-deploy"]).status_code == 200
