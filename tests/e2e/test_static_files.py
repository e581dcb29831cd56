"""Static files and .platform/nginx end to end (issue 8): real CLI, server, HAProxy,
supervisord and the static file server.

A Procfile app maps ``/assets`` to its ``static`` folder in .ebextensions and ships
``.platform/nginx/conf.d/x.conf``: the files are served without the app's process seeing the
requests (it records every path it is asked for), a body over ``client_max_body_size`` gets
413 from HAProxy, and the directive Beanpole has no counterpart for is named in an event.
"""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SERVER = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        with open("requests.log", "a") as log:
            log.write(self.command + " " + self.path + "\\n")
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"from the app"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
CSS = "h1 { color: rebeccapurple; }\n" * 20


def static_app(root: Path) -> Path:
    app = root / "static-app"
    (app / "static" / "css").mkdir(parents=True)
    (app / "Procfile").write_text("web: python3 server.py\n")
    (app / "server.py").write_text(SERVER)
    (app / "static" / "css" / "site.css").write_text(CSS)
    (app / ".ebextensions").mkdir()
    (app / ".ebextensions" / "static.config").write_text(
        "option_settings:\n"
        "  aws:elasticbeanstalk:environment:proxy:staticfiles:\n"
        "    /assets: static\n"
    )
    (app / ".platform" / "nginx" / "conf.d").mkdir(parents=True)
    (app / ".platform" / "nginx" / "conf.d" / "x.conf").write_text(
        "client_max_body_size 1k;\ngzip on;\nworker_connections 10;\n"
    )
    return app


def request(bp, method: str, path: str, body: bytes = b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", bp.lb_port, timeout=10)
    try:
        conn.request(
            method,
            path,
            body=body or None,
            headers={"Host": f"webs.localhost:{bp.lb_port}", **(headers or {})},
        )
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def test_static_files_body_limit_and_ignored_nginx_directives(beanpole, tmp_path):
    app = static_app(tmp_path)
    created = beanpole.cli("create", "webs", "--app", "webs", "--source", str(app))
    assert "ignored: worker_connections (conf.d/x.conf line 3)" in created.stdout

    status, headers, body = request(beanpole, "GET", "/assets/css/site.css")
    assert status == 200
    assert body.decode() == CSS
    assert headers["Content-Type"] == "text/css"
    assert headers["Cache-Control"] == "public, max-age=300"
    tag = headers["ETag"]
    assert (
        request(beanpole, "GET", "/assets/css/site.css", headers={"If-None-Match": tag})[0] == 304
    )
    assert request(beanpole, "GET", "/assets/css/missing.css")[0] == 404
    assert request(beanpole, "GET", "/assets/../server.py")[0] in (400, 404)
    gzipped = request(beanpole, "GET", "/", headers={"Accept-Encoding": "gzip"})
    assert gzipped[0] == 200  # text/plain is not in gzip_types: only text/html is

    # client_max_body_size 1k: HAProxy answers 413, the app never reads the body
    assert request(beanpole, "POST", "/upload", b"x" * 2000)[0] == 413
    assert request(beanpole, "POST", "/upload", b"x" * 500)[2] == b"from the app"

    # the app's process never saw a static file request
    builds = list((beanpole.home / "builds").glob("*/*/app/requests.log"))
    assert len(builds) == 1
    seen = builds[0].read_text()
    assert "POST /upload" in seen
    assert "/assets" not in seen
    assert seen.count("POST /upload") == 1  # the 413 one never reached it

    events = beanpole.cli("events", "webs").stdout
    assert "ignored: worker_connections" in events
