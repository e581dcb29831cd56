"""Static sites: index.html served by Beanpole's own small file server."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def is_static(app_dir: Path) -> bool:
    return (app_dir / "index.html").is_file()


def default_command() -> str:
    return f"{shlex.quote(sys.executable)} -m beanpole.adapters.runtime.static_server ."
