"""The web console's server side against a real server: its page and files, signing in
(token and password), the session cookie, CSRF on every change, sign-out, throttling, the
live stream, and a prompt exit with streams open."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import sqlite3
import threading
import time

import httpx

from harness import wait_for


def _url(bp) -> str:
    return f"http://127.0.0.1:{bp.api_port}"


def _token(bp) -> str:
    return (bp.home / "token").read_text().strip()


def _signed_in(bp) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=_url(bp), timeout=10)
    r = client.post("/api/v1/session", json={"token": _token(bp)})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf_token"]


def test_page_and_files_are_served_with_a_strict_policy(beanpole):
    r = httpx.get(_url(beanpole) + "/", timeout=10)
    assert r.status_code == 200
    assert '<div id="root">' in r.text
    policy = r.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    # the one inline script, the import map, is allowed by its hash and nothing else inline
    inline = re.search(r'<script type="importmap">(.*?)</script>', r.text, re.DOTALL)
    assert inline is not None
    digest = base64.b64encode(hashlib.sha256(inline.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert r.headers["x-frame-options"] == "DENY"
    for path, kind in [
        ("/console/vendor/preact.js", "javascript"),
        ("/console/vendor/uplot.js", "javascript"),
        ("/console/vendor/uplot.css", "css"),
        ("/console/static/app.js", "javascript"),
        ("/console/static/lib.js", "javascript"),
        ("/console/static/style.css", "css"),
    ]:
        f = httpx.get(_url(beanpole) + path, timeout=10)
        assert f.status_code == 200, path
        assert kind in f.headers["content-type"], path
    for bad in [
        "/console/static/../../server/main.py",
        "/console/static/%2e%2e/%2e%2e/server/main.py",
        "/console/static/nothing.js",
        "/console/vendor/left-pad.js",
    ]:
        assert httpx.get(_url(beanpole) + bad, timeout=10).status_code == 404, bad


def test_the_page_carries_the_session_only_when_signed_in(beanpole):
    page = httpx.get(_url(beanpole) + "/", timeout=10)
    assert "beanpole-session" not in page.text
    client, csrf = _signed_in(beanpole)
    signed = client.get("/")
    assert signed.headers["cache-control"] == "no-store"
    meta = re.search(r'<meta name="beanpole-session" content="([^"]*)">', signed.text)
    assert meta is not None
    assert csrf in html.unescape(meta.group(1))
    stale = httpx.get(_url(beanpole) + "/", cookies={"beanpole_session": "made-up"}, timeout=10)
    assert "beanpole-session" not in stale.text


def test_token_sign_in_sets_a_strict_cookie_and_changes_need_the_csrf_token(beanpole):
    base = _url(beanpole)
    assert httpx.get(base + "/api/v1/session", timeout=10).status_code == 401
    wrong = httpx.post(base + "/api/v1/session", json={"token": "nope"}, timeout=10)
    assert wrong.status_code == 401
    assert "token" in wrong.json()["error"]["message"]

    client, csrf = _signed_in(beanpole)
    cookie = client.post("/api/v1/session", json={"token": _token(beanpole)}).headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS it is Secure
    csrf = client.get("/api/v1/session").json()["csrf_token"]
    assert client.get("/api/v1/session").json()["user"] == "token"
    # reads need only the cookie
    assert client.get("/api/v1/environments").status_code == 200
    # a change without the CSRF header is refused and changes nothing
    body = {"name": "carol", "password": "long enough"}
    refused = client.post("/api/v1/users", json=body)
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["error"]["message"]
    assert (
        client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": "x" * 43}).status_code
        == 403
    )
    assert client.get("/api/v1/users").json() == []
    made = client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text
    # the bearer token still works without any CSRF header (scripts, the CLI)
    bearer = httpx.get(
        base + "/api/v1/users", headers={"Authorization": f"Bearer {_token(beanpole)}"}, timeout=10
    )
    assert [u["name"] for u in bearer.json()] == ["carol"]

    # sign-out needs the CSRF token too, then the cookie is worth nothing
    assert client.delete("/api/v1/session").status_code == 403
    out = client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200
    kept = client.cookies.get("beanpole_session")
    assert kept is None
    stale = httpx.get(
        base + "/api/v1/environments",
        cookies={"beanpole_session": cookie.split(";")[0].split("=", 1)[1]},
        timeout=10,
    )
    assert stale.status_code == 401
    assert "sign in again" in stale.json()["error"]["message"]


def test_password_users_sign_in_and_failures_are_throttled(beanpole):
    added = beanpole.cli("user", "add", "alice", "--password-stdin", input_text="correct horse\n")
    assert "alice" in added.stdout
    short = beanpole.cli(
        "user", "add", "bob", "--password-stdin", input_text="short\n", check=False
    )
    assert short.returncode != 0
    assert "at least 8" in short.stderr + short.stdout
    # stored as an Argon2id hash, never as given
    with sqlite3.connect(beanpole.home / "state.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE name = 'alice'").fetchone()
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored

    base = _url(beanpole)
    ok = httpx.post(
        base + "/api/v1/session", json={"user": "alice", "password": "correct horse"}, timeout=10
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["user"] == "alice"
    assert ok.json()["method"] == "password"
    session = ok.cookies["beanpole_session"]
    listed = beanpole.cli("user", "list", "--json").stdout
    assert '"last_sign_in_at": null' not in listed

    statuses = [
        httpx.post(
            base + "/api/v1/session", json={"user": "alice", "password": f"wrong {i}"}, timeout=10
        ).status_code
        for i in range(7)
    ]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    # removing the user ends their sessions
    beanpole.cli("user", "remove", "alice")
    gone = httpx.get(
        base + "/api/v1/environments", cookies={"beanpole_session": session}, timeout=10
    )
    assert gone.status_code == 401


def test_stream_sends_the_environment_list_and_ends_when_the_server_stops(beanpole):
    client, _ = _signed_in(beanpole)
    assert client.get("/api/v1/console/stream", params={"environment": "nope"}).status_code == 404
    overview = client.get("/api/v1/console/overview").json()
    assert overview["environments"] == []
    assert overview["server"]["lb_port"] == beanpole.lb_port

    received: list[str] = []
    ended = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(base_url=_url(beanpole), cookies=client.cookies, timeout=60) as c,
            c.stream("GET", "/api/v1/console/stream") as r,
        ):
            assert r.headers["content-type"].startswith("text/event-stream")
            try:
                for line in r.iter_lines():
                    received.append(line)
            except httpx.HTTPError:
                pass
        ended.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    wait_for(lambda: "event: environments" in received, 10, "the first environments event")
    assert "data: []" in received
    started = time.monotonic()
    beanpole.cli("server", "stop")
    assert ended.wait(20), "the stream did not end when the server stopped"
    assert time.monotonic() - started < 10  # not held up until the stop's SIGKILL
    thread.join(5)


def test_metrics_ranges_are_checked(beanpole):
    client, _ = _signed_in(beanpole)
    for span in ["1h", "3h", "1d", "2w"]:
        r = client.get("/api/v1/console/metrics/nope", params={"range": span})
        assert r.status_code == 404, span
    assert client.get("/api/v1/console/metrics/nope", params={"range": "5y"}).status_code == 400


class _Stream:
    """An event stream read in a thread: the events as (name, data) in arrival order."""

    def __init__(self, bp, path: str, cookies: httpx.Cookies) -> None:
        self.events: list[tuple[str, str]] = []
        self.ended = threading.Event()
        self._client = httpx.Client(base_url=_url(bp), cookies=cookies, timeout=60)
        self._thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self._thread.start()

    def _read(self, path: str) -> None:
        name = ""
        try:
            with self._client.stream("GET", path) as r:
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((name, line[6:]))
        except httpx.HTTPError:
            pass
        self.ended.set()

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def close(self) -> None:
        self._client.close()


def test_an_environment_s_stream_reports_its_operations_and_its_end(beanpole, pid_app):
    beanpole.cli("create", "feed-env", "--app", "feed", "--source", str(pid_app))
    client, _ = _signed_in(beanpole)
    # a change with the cookie but no CSRF token is refused on every kind of route
    refused = client.patch(
        "/api/v1/environments/feed-env/settings", json={"set": {"aws:autoscaling:asg:MaxSize": "3"}}
    )
    assert refused.status_code == 403
    stream = _Stream(beanpole, "/api/v1/console/stream?environment=feed-env", client.cookies)
    try:
        # at once: the list, and the environment's own state as it is now
        wait_for(
            lambda: (
                {"environments", "environment", "health", "events", "operation"}
                <= set(stream.names())
            ),
            15,
            "the environment's current state on the stream",
        )
        seen = len(stream.events)
        beanpole.cli("setenv", "feed-env", "GREETING=hello")
        wait_for(
            lambda: any(
                n == "operation" and '"status":"succeeded"' in d and '"kind":"configure"' in d
                for n, d in stream.events[seen:]
            ),
            60,
            "the configure operation's end on the stream",
        )
        # the operation's events came too, as they were written
        assert any(
            n == "events" and '"environment":"feed-env"' in d for n, d in stream.events[seen:]
        )
        beanpole.cli("terminate", "feed-env")
        wait_for(lambda: "gone" in stream.names(), 60, "the environment's end on the stream")
    finally:
        stream.close()


def test_a_stream_ends_with_its_console_session(beanpole):
    client, csrf = _signed_in(beanpole)
    stream = _Stream(beanpole, "/api/v1/console/stream", client.cookies)
    try:
        wait_for(lambda: "environments" in stream.names(), 10, "the first event")
        assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 200
        # checked at the next keep-alive (15 s)
        assert stream.ended.wait(30), "the stream outlived its session"
    finally:
        stream.close()
