"""Source bundles on the server: check them, store them, extract them.

A bundle is a zip of an application's files, as Elastic Beanstalk takes them (the CLI
makes one from a folder with `beanpole.client.source`). Bundles arrive over the API from
anyone holding a token, so everything here assumes a hostile zip: :func:`check_zip` reads
only metadata before trusting anything, sizes are counted while bytes are written rather
than believed, and :func:`extract` never writes outside its destination, even through
symbolic links.

Decisions worth knowing:

* Symbolic links are kept as links when extracting (``virtualenv``-style and
  ``node_modules/.bin`` links must keep working). A link must stay inside the application:
  absolute targets, and targets that climb out (even through other links), are refused
  when checking and again on disk after extracting.
* Only the executable bit of a file's mode is kept (0755 or 0644); set-uid bits and odd
  permissions from the zip are dropped.
* A bundle whose only top-level item is a folder is read as that folder zipped from outside
  (``zip -r app.zip myapp/``), and the folder is stripped; macOS litter (``__MACOSX/``,
  ``.DS_Store``) is dropped.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal

from beanpole.core.errors import BundleError, Conflict, InvalidInput, NotFound

_MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What a bundle may weigh. The defaults follow EB where EB has a limit."""

    max_bundle_bytes: int = 512 * _MiB  # the zip itself (EB's limit)
    max_total_bytes: int = 2 * 1024 * _MiB  # sum of uncompressed sizes
    max_entry_bytes: int = 1024 * _MiB
    max_entries: int = 100_000
    max_ratio: int = 200  # uncompressed/compressed for the whole archive (zip bomb)
    # The ratio check applies only above this uncompressed total: a small bundle of very
    # compressible files (a sparse database, a zeroed fixture) does no harm when expanded.
    ratio_floor_bytes: int = 16 * _MiB


EntryKind = Literal["dir", "file", "link"]

_CHUNK = _MiB
_MAX_LINK_TARGET = 4096  # PATH_MAX
_MAX_LINK_HOPS = 40  # Linux's MAXSYMLINKS
_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DIGEST = re.compile(r"[0-9a-f]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")
# Zip format records, read directly where zipfile would read too much.
_EOCD_SIG = b"PK\x05\x06"
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD64_SIG = b"PK\x06\x06"
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # its ZIP64 version
_EOCD64_LOCATOR_SIG = b"PK\x06\x07"
_EOCD64_LOCATOR_SIZE = 20
_CENTRAL_SIG = b"PK\x01\x02"
_CENTRAL_HEADER_SIZE = 46
_LOCAL_HEADER_SIZE = 30
# Errors zipfile and its decompressors raise on damaged data.
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


# --- checking a bundle ------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    path: str  # where it lands, relative to the root, after stripping a top folder
    kind: EntryKind
    mode: int
    link_target: str = ""


def check_zip(zip_path: Path, limits: Limits = Limits()) -> None:
    """Refuse a bundle that is not a zip, is damaged, or could hurt the host when extracted.

    Every size, path and link check runs on metadata first, so a zip bomb is refused
    before a byte of it is decompressed; only then is each file read once to verify its
    CRC, which finds damaged archives.
    """
    with _open_bundle(zip_path, limits) as (archive, entries):
        for entry in entries:
            if entry.kind == "file":
                for _ in _chunks(archive, entry.info):
                    pass


@contextmanager
def _open_bundle(zip_path: Path, limits: Limits) -> Iterator[tuple[zipfile.ZipFile, list[_Entry]]]:
    """Open a bundle and check all its metadata; yields the archive and what it holds."""
    if not zip_path.is_file():
        raise BundleError(f"There is no bundle file at {zip_path}. Pass the path of a .zip file.")
    with zip_path.open("rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        if size > limits.max_bundle_bytes:
            raise BundleError(
                f"The bundle is {_mib(size)}; the limit is {_mib(limits.max_bundle_bytes)}. "
                "Leave build outputs and dependencies out (list them in .ebignore) "
                "and install them at build time."
            )
        if _count_entries(raw, stop_after=limits.max_entries) > limits.max_entries:
            _too_many_entries(limits)
        try:
            archive = zipfile.ZipFile(raw)
        except (*_DAMAGED, struct.error, NotImplementedError) as exc:
            raise BundleError(
                f"{zip_path.name} is not a readable zip file ({exc}). "
                "Upload a .zip of the application's files (`beanpole` can make one from a folder)."
            ) from exc
        with archive:
            yield archive, _plan(archive, size, limits)


def _plan(archive: zipfile.ZipFile, archive_bytes: int, limits: Limits) -> list[_Entry]:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        _too_many_entries(limits)
    _check_overlaps(infos, archive.start_dir)
    total = 0
    entries: list[_Entry] = []
    for info in infos:
        parts = _safe_parts(info.filename)
        _check_readable(info, limits)
        total += info.file_size
        kind, mode = _kind_and_mode(info)
        if parts and not _is_macos_litter(parts, kind):
            entries.append(_Entry(info, "/".join(parts), kind, mode))
    if total > limits.max_total_bytes:
        raise BundleError(
            f"The bundle expands to {_mib(total)}; the limit is {_mib(limits.max_total_bytes)}. "
            "Leave build outputs and dependencies out and install them at build time."
        )
    if total > limits.ratio_floor_bytes and total > limits.max_ratio * archive_bytes:
        raise BundleError(
            f"The bundle expands {total // max(archive_bytes, 1)} times its size "
            f"({_mib(archive_bytes)} to {_mib(total)}), the mark of a zip bomb; the limit is "
            f"{limits.max_ratio} times. Leave very compressible data (zero-filled files) out."
        )
    entries = _strip_top_folder(entries)
    if not any(entry.kind != "dir" for entry in entries):
        raise BundleError(
            "The bundle is empty: it holds no files. Zip the application's files, "
            "with the Procfile or app entry point at the root."
        )
    _check_layout(entries)
    entries = [_with_link_target(archive, entry) for entry in entries]
    _check_links({entry.path: entry.link_target for entry in entries if entry.kind == "link"})
    return entries


def _count_entries(raw: IO[bytes], stop_after: int) -> int:
    """Count central-directory entries the way zipfile will find them, stopping early.

    zipfile builds an object per entry before any limit can be checked, so a 512 MB
    archive of tiny entries would cost gigabytes of memory; this walk costs nothing.
    Returns 0 when the directory can't be found: zipfile then reports the damage.
    """
    size = raw.seek(0, os.SEEK_END)
    tail_start = max(0, size - _EOCD.size - 0xFFFF)
    raw.seek(tail_start)
    tail = raw.read()
    # Like zipfile: a record without comment at the very end first, else the last signature.
    at = len(tail) - _EOCD.size
    if not (at >= 0 and tail.startswith(_EOCD_SIG, at) and tail.endswith(b"\0\0")):
        at = tail.rfind(_EOCD_SIG)
        if at < 0 or at + _EOCD.size > len(tail):
            return 0
    record_at = tail_start + at
    cd_size: int = _EOCD.unpack_from(tail, at)[5]
    zip64_at = record_at - _EOCD64_LOCATOR_SIZE - _EOCD64.size
    if zip64_at >= 0:
        raw.seek(zip64_at)
        zip64 = raw.read(_EOCD64.size + 4)
        if zip64.startswith(_EOCD64_SIG) and zip64.endswith(_EOCD64_LOCATOR_SIG):
            cd_size = _EOCD64.unpack_from(zip64)[8]
            record_at = zip64_at
    cd_start = record_at - cd_size
    if cd_start < 0:
        return 0
    offset = count = 0
    while offset < cd_size and count <= stop_after:
        raw.seek(cd_start + offset)
        header = raw.read(_CENTRAL_HEADER_SIZE)
        if len(header) < _CENTRAL_HEADER_SIZE or not header.startswith(_CENTRAL_SIG):
            break
        name_len, extra_len, comment_len = struct.unpack_from("<3H", header, 28)
        offset += _CENTRAL_HEADER_SIZE + name_len + extra_len + comment_len
        count += 1
    return count


def _too_many_entries(limits: Limits) -> None:
    raise BundleError(
        f"The bundle has more than {limits.max_entries} entries. Leave dependencies "
        "(node_modules, .venv) out with .ebignore and install them at build time."
    )


def _check_overlaps(infos: list[zipfile.ZipInfo], central_directory_start: int) -> None:
    """Entries sharing compressed bytes are how the densest zip bombs multiply themselves."""
    ordered = sorted(infos, key=lambda info: info.header_offset)
    next_starts = [*(info.header_offset for info in ordered), central_directory_start][1:]
    for info, next_start in zip(ordered, next_starts, strict=True):
        if info.header_offset + _LOCAL_HEADER_SIZE + info.compress_size > next_start:
            raise BundleError(
                f"The bundle's entries overlap each other (at {info.filename}), a trick zip "
                "bombs use. Re-create the zip with a standard tool."
            )


def _safe_parts(name: str) -> list[str]:
    """The path components of an entry name, refusing any that could land outside."""
    fix = "Zip the application's files with paths relative to its root."
    if "\\" in name:
        raise BundleError(
            f"The bundle has an entry with a backslash in its name ({name}), as some Windows "
            f"tools write them. {fix} Use a tool that writes '/' (7-Zip, or `beanpole` itself)."
        )
    if name.startswith("/"):
        raise BundleError(f"The bundle has an entry with an absolute path ({name}). {fix}")
    if _DRIVE.match(name):
        raise BundleError(f"The bundle has an entry with a drive letter ({name}). {fix}")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BundleError(f"The bundle has an entry that climbs out with '..' ({name}). {fix}")
    return parts


def _check_readable(info: zipfile.ZipInfo, limits: Limits) -> None:
    if info.flag_bits & 0x1:
        raise BundleError(
            f"The bundle's entry {info.filename} is encrypted. Zip the files without a password."
        )
    if info.compress_type not in _READABLE_METHODS:
        raise BundleError(
            f"The bundle's entry {info.filename} uses compression method {info.compress_type}, "
            "which Beanpole can't read. Re-create the zip with standard (deflate) compression."
        )
    if info.file_size > limits.max_entry_bytes:
        raise BundleError(
            f"The bundle's entry {info.filename} is {_mib(info.file_size)}; the limit for one "
            f"file is {_mib(limits.max_entry_bytes)}. Download large data at build or run time."
        )


def _kind_and_mode(info: zipfile.ZipInfo) -> tuple[EntryKind, int]:
    """Read the Unix file type and exec bit from the entry; zips from Windows carry none."""
    unix_mode = info.external_attr >> 16
    if info.filename.endswith("/") or stat.S_ISDIR(unix_mode):
        return "dir", 0o755
    if stat.S_ISLNK(unix_mode):
        return "link", 0o777
    return "file", 0o755 if unix_mode & 0o111 else 0o644


def _is_macos_litter(parts: list[str], kind: EntryKind) -> bool:
    return parts[0] == "__MACOSX" or (kind == "file" and parts[-1] == ".DS_Store")


def _strip_top_folder(entries: list[_Entry]) -> list[_Entry]:
    """Drop a single top-level folder that holds everything (``zip -r app.zip app/``)."""
    tops = {entry.path.partition("/")[0] for entry in entries}
    if len(tops) != 1 or any("/" not in e.path and e.kind != "dir" for e in entries):
        return entries
    return [replace(e, path=e.path.partition("/")[2]) for e in entries if "/" in e.path]


def _check_layout(entries: list[_Entry]) -> None:
    """Each path once, and nothing inside a file or a link (writing there would follow it)."""
    kinds: dict[str, EntryKind] = {}
    for entry in entries:
        if entry.path in kinds and not (entry.kind == "dir" == kinds[entry.path]):
            raise BundleError(
                f"The bundle has {entry.path} more than once. Re-create the zip so that each "
                "path appears once."
            )
        kinds[entry.path] = entry.kind
    for entry in entries:
        parent = entry.path
        while "/" in parent:
            parent = parent.rpartition("/")[0]
            if kinds.get(parent, "dir") != "dir":
                what = "a symbolic link" if kinds[parent] == "link" else "a file"
                raise BundleError(
                    f"The bundle has {entry.path} inside {parent}, which is {what}. "
                    "Re-create the zip from the application's folder."
                )


def _with_link_target(archive: zipfile.ZipFile, entry: _Entry) -> _Entry:
    if entry.kind != "link":
        return entry
    if entry.info.file_size > _MAX_LINK_TARGET:
        raise BundleError(
            f"The bundle's symbolic link {entry.path} has a {entry.info.file_size}-byte target, "
            "longer than any real path. Re-create the zip from the application's folder."
        )
    target = os.fsdecode(b"".join(_chunks(archive, entry.info)))
    if not target or "\0" in target:
        raise BundleError(
            f"The bundle's symbolic link {entry.path} has an empty or invalid target. "
            "Re-create the zip from the application's folder."
        )
    return replace(entry, link_target=target)


def _check_links(links: Mapping[str, str]) -> None:
    for path, target in links.items():
        if target.startswith("/"):
            raise BundleError(
                f"The bundle has a symbolic link {path} -> {target} with an absolute target. "
                "Make links relative and inside the application, or replace them with copies."
            )
        if not _stays_inside(path, links):
            raise BundleError(
                f"The bundle has a symbolic link {path} -> {target} that points outside the "
                "application. Replace it with a copy of what it points to."
            )


def _stays_inside(link: str, links: Mapping[str, str]) -> bool:
    """Resolve ``link`` as the kernel would in the extracted tree, following the bundle's
    other links, and say whether it stays under the root (dangling inside is fine)."""
    resolved: list[str] = []
    pending = deque(link.split("/")[:-1] + links[link].split("/"))
    hops = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return False
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get("/".join(resolved))
        if target is None:
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS:
            raise BundleError(
                f"The bundle's symbolic link {link} is part of a loop of links. Remove the loop."
            )
        if target.startswith("/"):
            return False
        resolved.pop()
        pending.extendleft(reversed(target.split("/")))
    return True


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """Decompressed bytes of one entry; zipfile verifies the CRC once the end is read."""
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                yield chunk
    except _DAMAGED as exc:
        raise BundleError(
            f"The bundle's entry {info.filename} is damaged ({exc}). "
            "Re-create the zip and upload it again."
        ) from exc


# --- storing bundles --------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


class BundleStore:
    """Bundles kept by content: ``<directory>/<sha256>.zip``, each stored once.

    Naming by digest makes uploads idempotent and lets versions that share code share
    the file; a stored bundle is never modified, so readers need no locking.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def put(self, zip_path: Path, limits: Limits = Limits()) -> str:
        """Check and store a bundle; return its digest.

        The check runs on our own copy, so the caller's file can't change between the
        check and the store.
        """
        self._directory.mkdir(parents=True, exist_ok=True)
        fd, incoming = tempfile.mkstemp(dir=self._directory, prefix=".incoming-", suffix=".zip")
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _copy_hashing(zip_path, out, limits)
                out.flush()
                os.fsync(out.fileno())
            check_zip(Path(incoming), limits)
            stored = self._directory / f"{digest}.zip"
            if stored.exists():
                os.unlink(incoming)
            else:
                os.chmod(incoming, 0o444)
                os.replace(incoming, stored)
        except BaseException:
            Path(incoming).unlink(missing_ok=True)
            raise
        return digest

    def path(self, digest: str) -> Path:
        digest = digest.lower()
        if not _DIGEST.fullmatch(digest):
            raise InvalidInput(
                f"{digest!r} is not a bundle digest. Use the 64-character SHA-256 hex digest "
                "returned when the bundle was stored."
            )
        stored = self._directory / f"{digest}.zip"
        if not stored.is_file():
            raise NotFound(f"No bundle with digest {digest} is stored. Upload the bundle again.")
        return stored


def _copy_hashing(source: Path, out: IO[bytes], limits: Limits) -> str:
    """Copy ``source`` into ``out`` and return its SHA-256, stopping past the size limit
    rather than filling the disk first."""
    if not source.is_file():
        raise BundleError(f"There is no bundle file at {source}. Pass the path of a .zip file.")
    digest = hashlib.sha256()
    copied = 0
    with source.open("rb") as src:
        while chunk := src.read(_CHUNK):
            copied += len(chunk)
            if copied > limits.max_bundle_bytes:
                raise BundleError(
                    f"The bundle is larger than the {_mib(limits.max_bundle_bytes)} limit. "
                    "Leave build outputs and dependencies out (list them in .ebignore) "
                    "and install them at build time."
                )
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


# --- extracting a bundle ----------------------------------------------------------------


def extract(zip_path: Path, dest: Path, limits: Limits = Limits()) -> None:
    """Extract a bundle into ``dest``, which must not exist or be empty.

    All of check_zip's metadata checks run first. The files' CRCs are verified while they
    are written rather than in a separate pass, and everything goes to a hidden sibling
    that is renamed to ``dest`` only on success, so ``dest`` is either complete or absent.
    """
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise Conflict(f"{dest} already exists and is not empty. Extract into a new folder.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial"))
    try:
        with _open_bundle(zip_path, limits) as (archive, entries):
            _write_tree(archive, entries, staging, limits)
        staging.chmod(0o755)
        try:
            os.replace(staging, dest)
        except OSError as exc:
            raise Conflict(
                f"{dest} was filled while the bundle was being extracted ({exc.strerror}). "
                "Extract into a new folder."
            ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_tree(
    archive: zipfile.ZipFile, entries: list[_Entry], root: Path, limits: Limits
) -> None:
    """Folders and files first, links last: no write can pass through a link."""
    budget = limits.max_total_bytes
    for entry in entries:
        target = root.joinpath(*entry.path.split("/"))
        if entry.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        elif entry.kind == "file":
            target.parent.mkdir(parents=True, exist_ok=True)
            budget -= _write_file(archive, entry, target, min(budget, limits.max_entry_bytes))
    links = [entry for entry in entries if entry.kind == "link"]
    for entry in links:
        target = root.joinpath(*entry.path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(entry.link_target, target)
    real_root = os.path.realpath(root)
    for entry in links:
        if not _is_within(os.path.realpath(root.joinpath(*entry.path.split("/"))), real_root):
            raise BundleError(
                f"The bundle's symbolic link {entry.path} -> {entry.link_target} resolves "
                "outside the application. Replace it with a copy of what it points to."
            )


def _write_file(archive: zipfile.ZipFile, entry: _Entry, target: Path, budget: int) -> int:
    """Write one file, counting bytes instead of believing the declared size."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(target, flags, 0o600), "wb") as out:
        written = 0
        for chunk in _chunks(archive, entry.info):
            written += len(chunk)
            if written > entry.info.file_size or written > budget:
                raise BundleError(
                    f"The bundle's entry {entry.path} expands past its declared size or the "
                    "size limit, the mark of a zip bomb. Re-create the zip with a standard tool."
                )
            out.write(chunk)
        os.fchmod(out.fileno(), entry.mode)
    return written


@dataclass(frozen=True)
class BundleFile:
    """A small file read from a bundle, or why it was not read."""

    path: str  # relative to the bundle's root, after stripping a top folder
    data: bytes | None
    problem: str = ""  # set when data is None


def read_files(
    zip_path: Path,
    folder: str,
    suffix: str,
    *,
    max_files: int,
    max_bytes: int,
    limits: Limits = Limits(),
) -> list[BundleFile]:
    """The entries directly in ``folder`` (at the root) whose names end with ``suffix``,
    sorted by name: how EB reads ``.ebextensions/*.config``.

    Nothing is extracted, and at most ``max_files`` files of at most ``max_bytes`` each are
    read. A larger file, a symbolic link, and the first file past ``max_files`` (standing
    for the rest) come back without data, with the reason.
    """
    with _open_bundle(zip_path, limits) as (archive, entries):
        found = sorted(
            (
                e
                for e in entries
                if e.kind != "dir"
                and e.path.rpartition("/")[0] == folder
                and e.path.endswith(suffix)
            ),
            key=lambda e: e.path,
        )
        out: list[BundleFile] = []
        for entry in found[:max_files]:
            if entry.kind == "link":
                problem = (
                    f"it is a symbolic link (to {entry.link_target}); Beanpole reads only "
                    "regular files here. Replace the link with a copy of the file."
                )
            elif entry.info.file_size > max_bytes:
                problem = (
                    f"it is {entry.info.file_size} bytes; the limit is {max_bytes}. "
                    "Keep large content out of it."
                )
            else:
                out.append(BundleFile(entry.path, _read_small(archive, entry, max_bytes)))
                continue
            out.append(BundleFile(entry.path, None, problem))
        if len(found) > max_files:
            rest = len(found) - max_files
            out.append(
                BundleFile(
                    found[max_files].path,
                    None,
                    f"the bundle has {len(found)} {suffix} files in {folder}; Beanpole reads "
                    f"the first {max_files} by name, so this one and the {rest - 1} after it "
                    "are ignored. Merge them into fewer files.",
                )
            )
    return out


def _read_small(archive: zipfile.ZipFile, entry: _Entry, max_bytes: int) -> bytes:
    data = bytearray()
    for chunk in _chunks(archive, entry.info):
        data += chunk
        if len(data) > max_bytes:  # counted, not believed (as in _write_file)
            raise BundleError(
                f"The bundle's entry {entry.path} expands past its declared size, the mark of "
                "a zip bomb. Re-create the zip with a standard tool."
            )
    return bytes(data)


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _mib(size: int) -> str:
    return f"{size / _MiB:.1f} MiB"
