"""Zipping an application's folder into a bundle, on the machine that deploys it.

This is the client's side of a bundle: the CLI zips a folder (or copies a zip) and uploads
the result; the server's `beanpole.adapters.bundles` checks, stores and extracts what
arrives and trusts nothing made here. It lives with the client because it runs wherever the
CLI runs, which need not be the server's host.

Decisions worth knowing:

* ``.ebignore`` replaces ``.gitignore`` entirely (as with the EB CLI). Without it, the root
  ``.gitignore`` and the ones in sub-folders apply, deeper ones winning, as in git. ``.git``
  is never included.
* Symbolic links are stored as links and never followed (so loops cannot hang the walk);
  a link with an absolute target, or one that leaves the folder, is refused here, naming
  the link, rather than later by the server's check.
* Entries get a fixed timestamp, so zipping the same files twice gives the same bytes and
  therefore the same digest in the server's bundle store.
* Only the executable bit of a file's mode is kept (0755 or 0644).
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from beanpole.core.errors import BundleError
from beanpole.core.ignore import IgnoreRules

EntryKind = Literal["dir", "file", "link"]

_CHUNK = 1024 * 1024
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest DOS timestamp: makes zips reproducible
_UNIX = 3  # ZipInfo.create_system for Unix, so external_attr carries st_mode
# Errors zipfile and its decompressors raise on damaged data (the server's check has its
# own list: the client may not import the server's adapters).
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


def zip_source(source: Path, dest: Path) -> None:
    """Write the bundle for ``source`` (an application folder, or a zip) to ``dest``.

    A zip is copied after checking it opens as one; the full safety check happens when
    the bundle is stored, under the limits the store is configured with.
    """
    if source.is_dir():
        _zip_folder(source, dest)
    elif source.is_file():
        _copy_zip(source, dest)
    else:
        problem = "is neither a folder nor a file" if source.exists() else "does not exist"
        raise BundleError(f"{source} {problem}. Pass the application's folder or a .zip of it.")


@dataclass(frozen=True)
class _SourceItem:
    arcname: str
    path: Path
    kind: EntryKind


def _zip_folder(source: Path, dest: Path) -> None:
    root = source.resolve()
    # Collected before dest is opened, and without dest, so zipping into the folder works.
    items = list(_walk_folder(root, skip=dest.resolve()))
    with _atomic_output(dest) as out, zipfile.ZipFile(out, "w") as archive:
        for item in items:
            _add_item(archive, item)


def _walk_folder(root: Path, skip: Path) -> Iterator[_SourceItem]:
    ebignore = root / ".ebignore"
    if ebignore.is_file():
        yield from _walk(root, root, "", IgnoreRules.from_file(ebignore), nested=False, skip=skip)
    else:
        yield from _walk(root, root, "", IgnoreRules(), nested=True, skip=skip)


def _walk(
    root: Path, folder: Path, prefix: str, rules: IgnoreRules, *, nested: bool, skip: Path
) -> Iterator[_SourceItem]:
    """Yield what goes in the zip, parents before children, siblings by name."""
    if nested and (folder / ".gitignore").is_file():
        rules = rules + IgnoreRules.from_file(folder / ".gitignore", base=prefix)
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        raise BundleError(
            f"Beanpole can't read the folder {prefix or '.'} ({exc.strerror}). "
            "Fix its permissions, or exclude it with .ebignore."
        ) from exc
    for entry in entries:
        relpath = prefix + entry.name
        if entry.name == ".git" or entry.path == str(skip):
            continue
        kind: EntryKind
        if entry.is_symlink():
            kind = "link"
        elif entry.is_dir(follow_symlinks=False):
            kind = "dir"
        elif entry.is_file(follow_symlinks=False):
            kind = "file"
        else:
            continue  # sockets, FIFOs, devices: not application files (and a FIFO would hang)
        if rules.matches(relpath, kind == "dir"):
            continue
        if kind == "link":
            _check_source_link(root, Path(entry.path), relpath)
        yield _SourceItem(relpath, Path(entry.path), kind)
        if kind == "dir":
            yield from _walk(root, Path(entry.path), relpath + "/", rules, nested=nested, skip=skip)


def _check_source_link(root: Path, link: Path, relpath: str) -> None:
    """Refuse, at zip time and naming the link, what check_zip would refuse later."""
    target = os.readlink(link)
    if os.path.isabs(target):
        raise BundleError(
            f"The folder has a symbolic link {relpath} -> {target} with an absolute target, "
            "which will not exist where the app runs. Make the link relative, replace it with "
            "a copy of what it points to, or exclude it with .ebignore."
        )
    if not _is_within(os.path.realpath(link), str(root)):
        raise BundleError(
            f"The folder has a symbolic link {relpath} -> {target} that points outside it. "
            "Replace the link with a copy of what it points to, or exclude it with .ebignore."
        )


def _add_item(archive: zipfile.ZipFile, item: _SourceItem) -> None:
    info = zipfile.ZipInfo(item.arcname + ("/" if item.kind == "dir" else ""), _ZIP_EPOCH)
    info.create_system = _UNIX
    if item.kind == "dir":
        info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10  # 0x10: MS-DOS directory flag
        archive.writestr(info, b"")
    elif item.kind == "link":
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, os.fsencode(os.readlink(item.path)))
    else:
        try:
            source = item.path.open("rb")
        except OSError as exc:
            raise BundleError(
                f"Beanpole can't read {item.arcname} ({exc.strerror}). "
                "Fix its permissions, or exclude it with .ebignore."
            ) from exc
        with source:
            info_stat = os.fstat(source.fileno())
            mode = 0o755 if info_stat.st_mode & 0o111 else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = info_stat.st_size  # lets zipfile pick ZIP64 for large files
            with archive.open(info, "w") as out:
                shutil.copyfileobj(source, out, _CHUNK)


def _copy_zip(source: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(source):
            pass
    except (*_DAMAGED, struct.error, NotImplementedError) as exc:
        raise BundleError(
            f"{source} is not a readable zip file ({exc}). "
            "Pass the application's folder instead, or re-create the zip."
        ) from exc
    if dest.exists() and os.path.samefile(source, dest):
        return
    with _atomic_output(dest) as out, source.open("rb") as src:
        shutil.copyfileobj(src, out, _CHUNK)


@contextmanager
def _atomic_output(dest: Path) -> Iterator[IO[bytes]]:
    """A file that appears at ``dest`` only once it is completely written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.chmod(partial, 0o644)
        os.replace(partial, dest)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
