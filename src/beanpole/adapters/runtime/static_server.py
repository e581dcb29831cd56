"""A small threaded HTTP/1.1 file server for static sites.

Run as `python -m beanpole.adapters.runtime.static_server DIR`.

Listens on 127.0.0.1:$PORT, keeps connections alive, never lists directories and never
serves dotfiles (so `.ebextensions/` and `.git/` stay private).
"""

from __future__ import annotations

import contextlib
import os
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "beanpole-static"
    # Buffer each response into one write: the base class's unbuffered header writes cost
    # about 40 ms per request behind a proxy (delayed ACK meets Nagle).
    wbufsize = 65536

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        self.send_error(404, "Not found")
        return None

    def send_head(self) -> Any:
        parts = self.path.split("?", 1)[0].split("/")
        if any(p.startswith(".") and p not in (".", "") for p in parts):
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        """The load balancer logs every request; repeating it here costs CPU for nothing."""


def main(argv: list[str]) -> None:
    directory = argv[0] if argv else "."
    port = int(os.environ.get("PORT", "5000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_Handler, directory=directory))
    server.daemon_threads = True
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
