"""Pipenv's files as pinned requirements for uv (EB's Python platform installs them with pipenv).

``Pipfile.lock``'s ``default`` section (the packages the app runs with; ``develop`` is left
out, as ``pipenv install --deploy`` does) becomes one requirement per package, pinned as the
lock says, with its extras and environment markers; without a lock, ``Pipfile``'s
``[packages]`` become requirements as written. uv then installs them into the app's
virtualenv: no pipenv on the host, and the same dependency cache as requirements.txt.
Hashes are not carried over: uv would then demand one for every line, and a git or path
entry has none.

Pure: text in, requirements text out; a file that does not parse raises `BundleError`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path

from beanpole.core.errors import BundleError

_DEFAULT_INDEX = "https://pypi.org/simple"


def lock_requirements(text: str, app_dir: Path) -> str:
    """The ``default`` packages of a ``Pipfile.lock`` as a requirements file."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BundleError(
            f"Pipfile.lock is not valid JSON ({exc}). Run 'pipenv lock' again, or remove "
            "Pipfile.lock to install from Pipfile."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("default", {}), dict):
        raise BundleError(
            "Pipfile.lock has no 'default' section of packages. Run 'pipenv lock' again."
        )
    meta = data.get("_meta", {})
    sources = meta.get("sources", []) if isinstance(meta, dict) else []
    lines = _index_lines(sources)
    for name, entry in sorted(data.get("default", {}).items()):
        lines.append(_requirement("Pipfile.lock", name, entry, app_dir))
    return "\n".join(lines) + "\n"


def pipfile_requirements(text: str, app_dir: Path) -> str:
    """A ``Pipfile``'s ``[packages]`` as a requirements file (no lock: versions as written)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BundleError(
            f"Pipfile is not valid TOML ({exc}). Fix it, or ship a requirements.txt."
        ) from None
    packages = data.get("packages", {})
    if not isinstance(packages, dict):
        raise BundleError("Pipfile's [packages] must be a table of 'name = \"version\"' lines.")
    lines = _index_lines(data.get("source", []))
    for name, entry in packages.items():
        lines.append(_requirement("Pipfile", name, entry, app_dir))
    return "\n".join(lines) + "\n"


def _index_lines(sources: object) -> list[str]:
    """Package indexes other than PyPI, which the Pipfile's ``[[source]]`` list."""
    if not isinstance(sources, list):
        return []
    urls = [s.get("url") for s in sources if isinstance(s, dict)]
    return [
        f"--extra-index-url {url}"
        for url in urls
        if isinstance(url, str) and url.rstrip("/") != _DEFAULT_INDEX
    ]


def _requirement(source: str, name: str, entry: object, app_dir: Path) -> str:
    if isinstance(entry, str):
        return name if entry.strip() in ("", "*") else f"{name}{entry.strip()}"
    if not isinstance(entry, Mapping):
        raise BundleError(
            f"{source}: package {name!r} has {entry!r}, which is neither a version string "
            'nor a table. Write it as name = "*" or name = {version = "==1.0"}.'
        )
    extras = entry.get("extras") or []
    named = f"{name}[{','.join(extras)}]" if extras else name
    markers = _markers(entry)
    suffix = f" ; {markers}" if markers else ""
    if "git" in entry:
        url = str(entry["git"])
        url = url if url.startswith("git+") else f"git+{url}"
        ref = entry.get("ref")
        return f"{named} @ {url}{'@' + str(ref) if ref else ''}{suffix}"
    if "file" in entry:
        return f"{named} @ {entry['file']}{suffix}"
    if "path" in entry:
        path = (app_dir / str(entry["path"])).resolve()
        if entry.get("editable"):
            return f"-e {path}"
        return f"{named} @ {path.as_uri()}{suffix}"
    version = str(entry.get("version", "*")).strip()
    spec = "" if version in ("", "*") else version
    return f"{named}{spec}{suffix}"


def _markers(entry: Mapping[str, object]) -> str:
    """``markers`` and the single-marker keys Pipfile allows (``sys_platform = "== 'linux'"``)."""
    parts = [str(entry["markers"])] if entry.get("markers") else []
    for key in ("os_name", "sys_platform", "platform_machine", "python_version"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            parts.append(f"{key} {value.strip()}")
    return " and ".join(f"({p})" if len(parts) > 1 else p for p in parts)
