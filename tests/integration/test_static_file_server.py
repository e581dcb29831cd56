"""Static files through the real HAProxy and Beanpole's static file server (issue 8).

Requests under a mapped path are answered by the file server beside HAProxy from the app
folders of the versions in service, never by the app (the App answers its own name, so a
body that is not the name came from the file server). HAProxy's own 413 (body limit) and gzip
come from `.platform/nginx`'s translation.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from beanpole.adapters.lb.haproxy import HAProxy
from beanpole.core.lb.config import Backend, HealthCheck, LoadBalancerSpec, StaticFiles

from lbkit import App, free_port

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="the haproxy binary is not installed"
)

FAST_CHECK = HealthCheck(interval_s=1, timeout_s=1, healthy_threshold=1, unhealthy_threshold=2)
HOST = "web.localhost"
CSS = b"body { color: #123456; }\n" * 40


def make_app(root: Path, files: dict[str, bytes]) -> str:
    for name, data in files.items():
        path = root / "app" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return str(root / "app")


@pytest.fixture
def site(tmp_path: Path) -> dict[str, str]:
    old = make_app(
        tmp_path / "builds" / "d1",
        {"static/only-old.js": b"old();", "static/app.css": b"old css"},
    )
    new = make_app(
        tmp_path / "builds" / "d2",
        {
            "static/app.css": CSS,
            "static/big.bin": os.urandom(700_000),
            "static/.env": b"SECRET=1",
            "other.txt": b"inside the app",
        },
    )
    (tmp_path / "secret.txt").write_text("outside the app")
    os.symlink(tmp_path / "secret.txt", Path(new) / "static" / "escape.txt")
    os.symlink(Path(new) / "other.txt", Path(new) / "static" / "inner.txt")
    return {"old": old, "new": new}


def spec(port: int, app: App, roots: tuple[str, ...]) -> LoadBalancerSpec:
    backend = Backend(
        "web",
        (HOST,),
        FAST_CHECK,
        (app.server(),),
        static=StaticFiles((("/static", "static"),), roots),
        max_body_bytes=1024,
        gzip_types=("text/html", "text/css"),
    )
    return LoadBalancerSpec("127.0.0.1", port, (backend,))


def raw(port: int, request: bytes) -> bytes:
    """One request as written (no client normalises its path), the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.fixture
def served(
    lb: HAProxy, apps: Callable[[str], App], site: dict[str, str]
) -> tuple[int, httpx.Client]:
    port = free_port()
    lb.start(spec(port, apps("app"), (site["new"], site["old"])))
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Host": HOST})
    return port, client


def test_a_static_file_is_served_with_type_and_cache_headers_not_by_the_app(
    served: tuple[int, httpx.Client],
) -> None:
    _, client = served
    answer = client.get("/static/app.css", headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 200
    assert answer.content == CSS
    assert answer.headers["content-type"] == "text/css"
    assert answer.headers["cache-control"] == "public, max-age=300"
    assert answer.headers["etag"].startswith('"')
    assert answer.headers["last-modified"].endswith("GMT")
    # the app answers everything else
    assert client.get("/static-not/app.css").text == "app"
    assert client.get("/").text == "app"


def test_conditional_requests_and_head(served: tuple[int, httpx.Client]) -> None:
    _, client = served
    first = client.get("/static/app.css")
    tag, modified = first.headers["etag"], first.headers["last-modified"]
    assert client.get("/static/app.css", headers={"If-None-Match": tag}).status_code == 304
    assert client.get("/static/app.css", headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get("/static/app.css", headers={"If-Modified-Since": modified}).status_code == 304
    assert (
        client.get(
            "/static/app.css", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
        ).status_code
        == 200
    )
    head = client.head("/static/app.css", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(CSS))
    # HAProxy marks the ETag weak when it compresses; the file's own is strong
    assert head.headers["etag"] == tag.removeprefix("W/")


def test_missing_files_hidden_files_and_folders_are_404_never_the_app(
    served: tuple[int, httpx.Client],
) -> None:
    _, client = served
    for path in ("/static/nope.css", "/static/.env", "/static", "/static/", "/static/sub/"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.text != "app", path


def test_traversal_and_symlinks_out_of_the_app_are_refused(
    served: tuple[int, httpx.Client],
) -> None:
    port, client = served
    for target in (
        b"/static/../other.txt",
        b"/static/%2e%2e/other.txt",
        b"/static/..%2fother.txt",
        b"/static/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        b"/static/escape.txt",
        b"/static/app.css%00.txt",
    ):
        answer = raw(
            port,
            b"GET "
            + target
            + b" HTTP/1.1\r\nHost: "
            + HOST.encode()
            + b"\r\nConnection: close\r\n\r\n",
        )
        assert status_of(answer) in (400, 404), target
        assert b"outside the app" not in answer and b"inside the app" not in answer, target
    # a link that stays inside the app folder is followed
    assert client.get("/static/inner.txt").text == "inside the app"


def test_other_methods_are_405_with_allow(served: tuple[int, httpx.Client]) -> None:
    _, client = served
    answer = client.post("/static/app.css", content=b"x")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"


def test_gzip_for_listed_types_only(served: tuple[int, httpx.Client]) -> None:
    _, client = served
    css = client.get("/static/app.css", headers={"Accept-Encoding": "gzip"})
    assert css.headers.get("content-encoding") == "gzip"
    assert css.content == CSS  # httpx decoded it
    port = int(client.base_url.port or 0)
    answer = raw(
        port,
        b"GET /static/app.css HTTP/1.1\r\nHost: web.localhost\r\nAccept-Encoding: gzip\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert b"content-encoding: gzip" in answer.lower()
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert len(body) < len(CSS)  # smaller on the wire (chunked framing included)
    app_answer = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in app_answer.headers  # text/plain is not listed


def test_request_bodies_over_the_limit_get_413(served: tuple[int, httpx.Client]) -> None:
    _, client = served
    assert client.post("/upload", content=b"x" * 1000).text == "app"
    refused = client.post("/upload", content=b"x" * 2000)
    assert refused.status_code == 413


def test_files_of_every_serving_version_first_the_newest(
    lb: HAProxy, served: tuple[int, httpx.Client], site: dict[str, str], apps: Callable[[str], App]
) -> None:
    port, client = served
    assert client.get("/static/app.css").content == CSS  # the newest has it
    assert client.get("/static/only-old.js").text == "old();"  # only the previous one has it
    assert client.get("/static/only-old.js").headers["content-type"] == "text/javascript"
    # the deployment completes: only the new version's files, without an HAProxy reload
    before = lb.runtime("show info")
    lb.apply(spec(port, apps("app2"), (site["new"],)))
    assert client.get("/static/only-old.js").status_code == 404
    pid = next(ln for ln in before.splitlines() if ln.startswith("Pid:"))
    assert pid in lb.runtime("show info")


def test_files_written_after_the_build_are_served(
    served: tuple[int, httpx.Client], site: dict[str, str]
) -> None:
    """collectstatic runs after the build: files are looked up at request time."""
    _, client = served
    assert client.get("/static/late.css").status_code == 404
    (Path(site["new"]) / "static" / "late.css").write_text("late")
    assert client.get("/static/late.css").text == "late"
    (Path(site["new"]) / "static" / "app.css").write_bytes(b"changed")
    assert client.get("/static/app.css").content == b"changed"


def test_large_files_are_sent_whole(served: tuple[int, httpx.Client], site: dict[str, str]) -> None:
    _, client = served
    expected = (Path(site["new"]) / "static" / "big.bin").read_bytes()
    for _ in range(3):  # on one kept-alive connection
        answer = client.get("/static/big.bin")
        assert answer.status_code == 200
        assert answer.content == expected
    assert client.get("/static/app.css").content == CSS


def test_a_dead_file_server_is_started_again(lb: HAProxy, served: tuple[int, httpx.Client]) -> None:
    _, client = served
    first = lb.static_files.is_running()
    assert first
    pid = int(lb.paths.static_pid.read_text())
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    lb.server_states()  # what the observer calls every second
    assert lb.static_files.is_running()
    assert int(lb.paths.static_pid.read_text()) != pid
    assert client.get("/static/app.css").status_code == 200
