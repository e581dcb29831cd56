"""Static files the load balancer's side serves: the mapping, safe paths, caching (pure).

``aws:elasticbeanstalk:environment:proxy:staticfiles`` maps URL paths to folders of the
application (``/static: static``, EB's default on its Python platform). Requests under a
mapped path are answered by Beanpole's static file server, never by the app's processes
(`beanpole.adapters.lb.static_server`); this module holds every rule that server follows
that needs no file: which option keys are valid, which folder and relative file a request
path names (or none, when it tries to leave the folder), the ETag, and whether a
conditional request is answered 304.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import unquote

from beanpole.core.errors import InvalidInput

_APP_ROOTS = ("/var/app/current", "/var/app/staging")

NAMESPACE = "aws:elasticbeanstalk:environment:proxy:staticfiles"
#: EB's Python platform serves ``/static`` from the ``static`` folder unless told otherwise.
PYTHON_DEFAULT: tuple[tuple[str, str], ...] = (("/static", "static"),)
#: Cache-Control of every file served: browsers may reuse a file for 5 minutes, then ask
#: again with If-None-Match (a 304 costs no body). Long enough to spare the repeated loads of
#: a visit, short enough that a deploy's unchanged URLs are fresh within minutes.
MAX_AGE_S = 300
MAX_MAPPINGS = 32

# What HAProxy's config can hold unquoted, and what a URL path needs.
_URL_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+/?")
_FOLDER = re.compile(r"[A-Za-z0-9._/-]+")


def check_mapping(path: str, folder: str) -> tuple[str, str]:
    """One ``URL path: folder`` option, normalised (``/static/``, ``./static/`` ->
    ``/static``, ``static``); InvalidInput names the problem and the fix."""
    key = f"{NAMESPACE}:{path}"
    if not path.startswith("/"):
        raise InvalidInput(
            f"Static files path {path!r} ({key}) must start with '/', as in /static."
        )
    if path.rstrip("/") == "":
        raise InvalidInput(
            f"Static files path {path!r} ({key}) would serve every request from a folder and "
            "none from the app; map a sub-path such as /static."
        )
    if not _URL_PATH.fullmatch(path) or any(s in (".", "..") for s in path.split("/")):
        raise InvalidInput(
            f"Static files path {path!r} ({key}) is not valid: use letters, digits, '.', '_', "
            "'~' and '-' between slashes, with no '.' or '..' segment."
        )
    cleaned = folder.strip()
    if not cleaned:
        raise InvalidInput(
            f"Static files path {path} ({key}) has no folder: give one relative to the app's "
            "root, as in static."
        )
    for root in _APP_ROOTS:  # EB's own folders for the app
        if cleaned == root or cleaned.startswith(root + "/"):
            cleaned = cleaned[len(root) :]
    # EB reads a folder as relative to the app's root, a leading slash or not (AWS's own
    # samples write `/static: /static`)
    cleaned = cleaned.lstrip("/")
    parts = [p for p in cleaned.split("/") if p not in ("", ".")]
    if not _FOLDER.fullmatch(cleaned) or ".." in parts or not parts:
        raise InvalidInput(
            f"Static files folder {folder!r} of {path} is not valid: name a folder inside the "
            "app with letters, digits, '.', '_', '-' and '/', without '..'."
        )
    return path.rstrip("/"), "/".join(parts)


def mappings(settings: Mapping[str, str], platform: str = "") -> tuple[tuple[str, str], ...]:
    """The (URL path, folder) pairs of resolved settings, longest path first (the most
    specific wins), or EB's Python default when none is set on the python platform."""
    prefix = NAMESPACE + ":"
    found = {
        check_mapping(key[len(prefix) :], value)
        for key, value in settings.items()
        if key.startswith(prefix)
    }
    if not found and platform == "python":
        return PYTHON_DEFAULT
    return tuple(sorted(found, key=lambda m: (-len(m[0]), m[0])))


def locate(pairs: tuple[tuple[str, str], ...], raw_path: str) -> tuple[str, str] | None:
    """The (folder, relative file) a request path names, or None when it is under no mapped
    path or tries to leave its folder.

    The query is dropped; each segment is percent-decoded on its own, so ``%2F`` cannot make
    a separator, and a decoded ``..``, a hidden name (``.git``, ``.env``), a backslash or a
    NUL refuses the request. Empty segments (``//``) are skipped, as nginx merges slashes.
    """
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    for url_path, folder in pairs:
        if path == url_path:
            return None  # the folder itself: no listing
        if not path.startswith(url_path + "/"):
            continue
        segments = []
        for raw in path[len(url_path) + 1 :].split("/"):
            if not raw:
                continue
            try:
                segment = unquote(raw, errors="strict") if "%" in raw else raw
            except UnicodeDecodeError:
                return None
            if segment.startswith(".") or any(c in segment for c in "/\\\0"):
                return None
            segments.append(segment)
        if not segments:
            return None
        return folder, "/".join(segments)
    return None


def etag(mtime_ns: int, size: int, inode: int) -> str:
    """A strong validator: a new build of the same file (another inode) is another ETag."""
    return f'"{mtime_ns:x}-{size:x}-{inode:x}"'


def http_date(epoch_s: float) -> str:
    return formatdate(epoch_s, usegmt=True)


@dataclass(frozen=True)
class Conditional:
    """A request's validators: ``If-None-Match`` and ``If-Modified-Since`` as sent."""

    if_none_match: str | None = None
    if_modified_since: str | None = None

    def not_modified(self, tag: str, mtime_s: float) -> bool:
        """RFC 9110 13.2.2: If-None-Match decides when present (weak comparison, ``*``
        matches any file); otherwise If-Modified-Since, to the second."""
        if self.if_none_match is not None:
            wanted = [t.strip().removeprefix("W/") for t in self.if_none_match.split(",")]
            return "*" in wanted or tag in wanted
        if self.if_modified_since is not None:
            try:
                since = parsedate_to_datetime(self.if_modified_since).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return False
            return int(mtime_s) <= since
        return False
