"""The web console's files: the page at ``/``, its scripts and styles, and the three
libraries it runs on (Preact, htm, uPlot), which `scripts/bootstrap.sh` installs with npm
into ``src/beanpole/console/node_modules``. Nothing is fetched from elsewhere: the
Content-Security-Policy lets the page load and connect to this server only.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from beanpole.api.users import SessionView
from beanpole.core.errors import NotFound
from beanpole.server.rest.auth import session_of
from beanpole.services.users import Users

CONSOLE = Path(__file__).resolve().parents[2] / "console"
STATIC = CONSOLE / "static"
MODULES = CONSOLE / "node_modules"
VENDOR: dict[str, tuple[str, str]] = {
    "preact.js": ("preact/dist/preact.module.js", "text/javascript"),
    "preact-hooks.js": ("preact/hooks/dist/hooks.module.js", "text/javascript"),
    "htm.js": ("htm/dist/htm.module.js", "text/javascript"),
    "uplot.js": ("uplot/dist/uPlot.esm.js", "text/javascript"),
    "uplot.css": ("uplot/dist/uPlot.min.css", "text/css"),
}
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)
_BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidated: a new version is seen at the next load
}
MISSING = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Beanpole</title>
<h1>The console's libraries are not installed</h1>
<p>Run <code>scripts/bootstrap.sh</code> in Beanpole's folder (it runs <code>npm ci</code> in
<code>src/beanpole/console</code>), then reload this page. The CLI works meanwhile:
<code>beanpole --help</code>.</p></html>"""


def content_security_policy(page: str) -> str:
    """Scripts from this server only, plus the page's one inline script, the import map,
    allowed by its hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in _IMPORT_MAP.findall(page)
    )
    return (
        "default-src 'self'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def with_session(page: str, session: SessionView | None) -> str:
    """The page with the signed-in session (its user and CSRF token) in a meta element, so
    the console's first page needs no request to learn it; none when signed out."""
    if session is None:
        return page
    meta = f'<meta name="beanpole-session" content="{html.escape(session.model_dump_json())}">'
    return page.replace("</head>", f"{meta}\n</head>", 1)


def router(users: Users) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/")
    def index(request: Request) -> Response:
        """The console's page; its scripts route by the URL's fragment (#/...)."""
        if not (MODULES / "preact").is_dir():
            return HTMLResponse(MISSING, status_code=503, headers=_BASE_HEADERS)
        page = (STATIC / "index.html").read_text()
        headers = dict(_BASE_HEADERS) | {
            "Content-Security-Policy": content_security_policy(page),
            "Cache-Control": "no-store",  # it carries the session's CSRF token
        }
        return HTMLResponse(with_session(page, session_of(request, users)), headers=headers)

    @api.get("/console/static/{path:path}")
    def static(path: str) -> Response:
        file = (STATIC / path).resolve()
        if not file.is_relative_to(STATIC) or not file.is_file() or file.suffix not in _TYPES:
            raise NotFound(f"No console file {path!r}.")
        return FileResponse(file, media_type=_TYPES[file.suffix], headers=_BASE_HEADERS)

    @api.get("/console/vendor/{name}")
    def vendor(name: str) -> Response:
        found = VENDOR.get(name)
        if found is None or not (MODULES / found[0]).is_file():
            raise NotFound(
                f"No console library {name!r}: run scripts/bootstrap.sh to install them."
            )
        return FileResponse(MODULES / found[0], media_type=found[1], headers=_BASE_HEADERS)

    return api
