"""Bundles: zipping folders, refusing hostile zips, storing by digest, extracting safely."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from beanpole.adapters import bundles as bundle
from beanpole.adapters.bundles import (
    BundleStore,
    Limits,
    check_zip,
    extract,
    sha256_file,
)
from beanpole.client.source import zip_source
from beanpole.core.errors import BundleError, Conflict, InvalidInput, NotFound

MiB = 1024 * 1024


# --- building zips -----------------------------------------------------------------------


def make_zip(
    path: Path, entries: dict[str, bytes | str], modes: dict[str, int] | None = None
) -> Path:
    """A zip written by zipfile. A str value makes a symbolic link to that target;
    ``modes`` gives st_mode bits for named file entries."""
    modes = modes or {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            if isinstance(content, str):
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, content)
            elif name.endswith("/"):
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                archive.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | modes.get(name, 0o644)) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, content)
    return path


@dataclass
class Raw:
    """One entry of a hand-made zip whose headers say whatever the test needs."""

    name: str
    payload: bytes  # as stored, i.e. already compressed when method is 8
    method: int = zipfile.ZIP_STORED
    crc: int | None = None  # default: CRC of the payload
    declared_size: int | None = None  # default: len(payload)
    flags: int = 0
    same_data_as: int | None = None  # index of an earlier entry whose bytes to point at


def raw_zip(path: Path, entries: list[Raw]) -> Path:
    out = bytearray()
    offsets: list[int] = []
    for entry in entries:
        if entry.same_data_as is not None:
            offsets.append(offsets[entry.same_data_as])
            continue
        offsets.append(len(out))
        out += _header(b"PK\x03\x04", entry) + entry.name.encode() + entry.payload
    directory_start = len(out)
    for entry, offset in zip(entries, offsets, strict=True):
        out += _header(b"PK\x01\x02", entry, offset) + entry.name.encode()
    directory_size = len(out) - directory_start
    count = len(entries)
    out += struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, directory_size, directory_start, 0
    )
    path.write_bytes(bytes(out))
    return path


def _header(signature: bytes, entry: Raw, offset: int | None = None) -> bytes:
    crc = zlib.crc32(entry.payload) if entry.crc is None else entry.crc
    size = len(entry.payload) if entry.declared_size is None else entry.declared_size
    common = (entry.flags, entry.method, 0, 0x21, crc, len(entry.payload), size, len(entry.name), 0)
    if offset is None:  # local file header
        return struct.pack("<4s5H3L2H", signature, 20, *common)
    attr = (stat.S_IFREG | 0o644) << 16
    return struct.pack("<4s6H3L5H2L", signature, 0x314, 20, *common, 0, 0, 0, attr, offset)


def deflated_zeros(mib: int) -> tuple[bytes, int]:
    """Raw deflate of ``mib`` MiB of zeros, and its CRC, in a fraction of a second: after a
    full flush the compressor forgets its history, so every MiB compresses to the same bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = block * mib + compressor.flush()
    crc, zeros = 0, bytes(MiB)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return stream, crc


def names_in(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def tree(root: Path) -> dict[str, str]:
    """Every path under root: file contents, '-> target' for links, '/' for folders."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[name] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[name] = "/"
        else:
            found[name] = path.read_text(encoding="utf-8")
    return found


def write(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content, encoding="utf-8")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    write(
        root,
        {
            "Procfile": "web: python app.py\n",
            "app.py": "print('hi')\n",
            ".platform/hooks/prebuild/01_setup.sh": "#!/bin/sh\necho setup\n",
            "static/css/site.css": "body {}\n",
        },
    )
    (root / ".platform/hooks/prebuild/01_setup.sh").chmod(0o755)
    return root


# --- zip_source ---------------------------------------------------------------------------


def test_zip_source_writes_every_file_in_a_stable_order(app: Path, tmp_path: Path) -> None:
    (app / ".git").mkdir()
    (app / ".git/config").write_text("[core]\n", encoding="utf-8")
    zip_source(app, tmp_path / "out.zip")
    assert names_in(tmp_path / "out.zip") == [
        ".platform/",
        ".platform/hooks/",
        ".platform/hooks/prebuild/",
        ".platform/hooks/prebuild/01_setup.sh",
        "Procfile",
        "app.py",
        "static/",
        "static/css/",
        "static/css/site.css",
    ]


def test_zip_source_is_reproducible(app: Path, tmp_path: Path) -> None:
    zip_source(app, tmp_path / "one.zip")
    os.utime(app / "app.py", (1_000_000_000, 1_000_000_000))
    zip_source(app, tmp_path / "two.zip")
    assert sha256_file(tmp_path / "one.zip") == sha256_file(tmp_path / "two.zip")


def test_zip_source_keeps_the_executable_bit_through_extract(app: Path, tmp_path: Path) -> None:
    zip_source(app, tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        hook = archive.getinfo(".platform/hooks/prebuild/01_setup.sh")
        assert stat.S_IMODE(hook.external_attr >> 16) == 0o755
        assert stat.S_IMODE(archive.getinfo("app.py").external_attr >> 16) == 0o644
    extract(tmp_path / "out.zip", tmp_path / "out")
    assert os.access(tmp_path / "out/.platform/hooks/prebuild/01_setup.sh", os.X_OK)
    assert not os.access(tmp_path / "out/app.py", os.X_OK)


def test_zip_source_honours_gitignore_files_at_every_level(app: Path, tmp_path: Path) -> None:
    write(
        app,
        {
            ".gitignore": "*.pyc\nnode_modules/\n",
            "m.pyc": "",
            "node_modules/x/index.js": "",
            "sub/.gitignore": "!keep.pyc\nlocal.cfg\n",
            "sub/keep.pyc": "",
            "sub/local.cfg": "",
            "local.cfg": "",
        },
    )
    zip_source(app, tmp_path / "out.zip")
    names = names_in(tmp_path / "out.zip")
    assert "sub/keep.pyc" in names
    assert "local.cfg" in names
    for left_out in ("m.pyc", "node_modules/", "node_modules/x/index.js", "sub/local.cfg"):
        assert left_out not in names


def test_ebignore_replaces_gitignore(app: Path, tmp_path: Path) -> None:
    write(
        app,
        {
            ".gitignore": "*.txt\n",
            "sub/.gitignore": "*.cfg\n",
            ".ebignore": "*.md\n",
            "notes.txt": "",
            "README.md": "",
            "sub/x.cfg": "",
        },
    )
    zip_source(app, tmp_path / "out.zip")
    names = names_in(tmp_path / "out.zip")
    assert {"notes.txt", "sub/x.cfg", ".ebignore"} <= set(names)
    assert "README.md" not in names


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_zip_source_leaves_out_what_git_would(tmp_path: Path) -> None:
    root = tmp_path / "app"
    write(
        root,
        {
            ".gitignore": "*.log\n!keep.log\nbuild/\n/local.cfg\ndocs/**/*.tmp\nsecret/\n"
            "!secret/x\n",
            "sub/.gitignore": "!*.log\n/only.txt\n",
            "sub/deeper/.gitignore": "*.log\n",
            **dict.fromkeys(
                [
                    "a.log",
                    "keep.log",
                    "build/out.o",
                    "lib/build",
                    "local.cfg",
                    "sub/local.cfg",
                    "docs/a.tmp",
                    "docs/x/y/b.tmp",
                    "docs/c.md",
                    "secret/x",
                    "sub/b.log",
                    "sub/only.txt",
                    "sub/more/only.txt",
                    "sub/deeper/c.log",
                    "app.py",
                ],
                "",
            ),
        },
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    env |= {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    listing = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        env=env,
        capture_output=True,
    ).stdout.decode()
    zip_source(root, tmp_path / "out.zip")
    zipped = {name for name in names_in(tmp_path / "out.zip") if not name.endswith("/")}
    assert zipped == {name for name in listing.split("\0") if name}
    assert "sub/b.log" in zipped and "a.log" not in zipped


def test_zip_source_stores_links_inside_the_folder_as_links(app: Path, tmp_path: Path) -> None:
    (app / "static/current").symlink_to("css")
    zip_source(app, tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        info = archive.getinfo("static/current")
        assert stat.S_ISLNK(info.external_attr >> 16)
        assert archive.read(info) == b"css"
        assert "static/current/site.css" not in archive.namelist()  # never followed
    extract(tmp_path / "out.zip", tmp_path / "out")
    assert os.readlink(tmp_path / "out/static/current") == "css"
    assert (tmp_path / "out/static/current/site.css").read_text() == "body {}\n"


@pytest.mark.parametrize("target", ["/etc", "../../outside", "static/../../.."])
def test_zip_source_refuses_links_leaving_the_folder(
    app: Path, tmp_path: Path, target: str
) -> None:
    (app / "escape").symlink_to(target)
    with pytest.raises(BundleError, match=r"symbolic link escape -> .*\.ebignore"):
        zip_source(app, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_ignored_links_do_not_matter(app: Path, tmp_path: Path) -> None:
    (app / ".venv").mkdir()
    (app / ".venv/python").symlink_to("/usr/bin/python3")
    (app / ".ebignore").write_text(".venv/\n", encoding="utf-8")
    zip_source(app, tmp_path / "out.zip")
    assert ".venv/python" not in names_in(tmp_path / "out.zip")


def test_zip_source_into_the_folder_itself_leaves_the_zip_out(app: Path) -> None:
    zip_source(app, app / "bundle.zip")
    zip_source(app, app / "bundle.zip")
    names = names_in(app / "bundle.zip")
    assert "bundle.zip" not in names
    assert not [name for name in names if name.endswith(".partial")]


def test_zip_source_copies_a_zip(tmp_path: Path) -> None:
    source = make_zip(tmp_path / "in.zip", {"app.py": b"x"})
    zip_source(source, tmp_path / "deep/out.zip")
    assert (tmp_path / "deep/out.zip").read_bytes() == source.read_bytes()
    zip_source(source, source)  # the same file: nothing to do
    assert names_in(source) == ["app.py"]


def test_zip_source_refuses_what_is_not_a_folder_or_a_zip(tmp_path: Path) -> None:
    (tmp_path / "app.tar.gz").write_bytes(b"\x1f\x8b not a zip")
    with pytest.raises(
        BundleError, match=r"not a readable zip file.*Pass the application's folder"
    ):
        zip_source(tmp_path / "app.tar.gz", tmp_path / "out.zip")
    with pytest.raises(BundleError, match=r"does not exist. Pass the application's folder"):
        zip_source(tmp_path / "missing", tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


# --- check_zip: what is refused -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("/etc/passwd", r"absolute path \(/etc/passwd\)\. Zip the application's files with paths"),
        ("../evil", r"climbs out with '\.\.' \(\.\./evil\)"),
        ("app/../../evil", r"climbs out"),
        ("app\\..\\evil", r"backslash"),
        ("C:/Windows/evil", r"drive letter"),
    ],
)
def test_refuses_entries_that_land_outside(tmp_path: Path, name: str, message: str) -> None:
    path = raw_zip(tmp_path / "evil.zip", [Raw("app.py", b"x"), Raw(name, b"evil")])
    with pytest.raises(BundleError, match=message):
        check_zip(path)


@pytest.mark.parametrize(
    ("links", "message"),
    [
        ({"etc": "/etc"}, r"etc -> /etc with an absolute target"),
        ({"up": "../outside"}, r"up -> \.\./outside that points outside"),
        ({"d/up": "..", "escape": "d/up/.."}, r"escape -> d/up/\.\. that points outside"),
        ({"a": "b", "b": "/etc/passwd"}, r"a -> b that points outside"),
        ({"a": "b/x", "b": "a/y"}, r"loop"),
    ],
)
def test_refuses_links_that_escape(tmp_path: Path, links: dict[str, str], message: str) -> None:
    entries: dict[str, bytes | str] = {"app.py": b"x", "d/": b"", **links}
    with pytest.raises(BundleError, match=message):
        check_zip(make_zip(tmp_path / "links.zip", entries))


def test_accepts_links_that_stay_inside(tmp_path: Path) -> None:
    entries: dict[str, bytes | str] = {
        "lib/v1/mod.py": b"x",
        "lib/current": "v1",
        "lib/v1/up": "../..",  # the root itself
        "bin/tool": "../lib/current/mod.py",  # through another link
        "dangling": "not-there-yet",
    }
    check_zip(make_zip(tmp_path / "links.zip", entries))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"a": b"1", "a/b": b"2"}, r"a/b inside a, which is a file"),
        (
            {"link": "lib", "lib/x": b"1", "link/x": b"2"},
            r"link/x inside link, which is a symbolic link",
        ),
    ],
)
def test_refuses_paths_through_files_or_links(
    tmp_path: Path, entries: dict[str, bytes | str], message: str
) -> None:
    with pytest.raises(BundleError, match=message):
        check_zip(make_zip(tmp_path / "layout.zip", entries))


def test_refuses_duplicate_paths(tmp_path: Path) -> None:
    path = raw_zip(tmp_path / "dup.zip", [Raw("app.py", b"1"), Raw("app.py", b"2")])
    with pytest.raises(BundleError, match=r"app.py more than once"):
        check_zip(path)


def test_refuses_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "app.zip").write_text("just text", encoding="utf-8")
    with pytest.raises(BundleError, match=r"app.zip is not a readable zip file .*Upload a .zip"):
        check_zip(tmp_path / "app.zip")
    with pytest.raises(BundleError, match=r"There is no bundle file"):
        check_zip(tmp_path / "missing.zip")


def test_refuses_a_damaged_zip(tmp_path: Path) -> None:
    path = tmp_path / "app.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("app.py", b"print('hello world')\n")
    data = bytearray(path.read_bytes())
    data[data.index(b"hello")] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(
        BundleError, match=r"entry app.py is damaged \(Bad CRC-32.*Re-create the zip"
    ):
        check_zip(path)


@pytest.mark.parametrize(
    "entries", [{}, {"empty/": b""}, {"__MACOSX/._x": b"", ".DS_Store": b"", "app/": b""}]
)
def test_refuses_an_empty_bundle(tmp_path: Path, entries: dict[str, bytes | str]) -> None:
    with pytest.raises(BundleError, match=r"The bundle is empty"):
        check_zip(make_zip(tmp_path / "empty.zip", entries))


def test_refuses_encrypted_and_unreadable_compression(tmp_path: Path) -> None:
    encrypted = raw_zip(tmp_path / "enc.zip", [Raw("app.py", b"xx", flags=0x1)])
    with pytest.raises(BundleError, match=r"encrypted. Zip the files without a password"):
        check_zip(encrypted)
    deflate64 = raw_zip(tmp_path / "d64.zip", [Raw("app.py", b"xx", method=9)])
    with pytest.raises(BundleError, match=r"compression method 9"):
        check_zip(deflate64)


def test_refuses_too_many_entries(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "many.zip", {f"f{i}": b"" for i in range(11)})
    with pytest.raises(BundleError, match=r"more than 10 entries"):
        check_zip(path, Limits(max_entries=10))
    check_zip(path, Limits(max_entries=11))


def test_counts_entries_before_zipfile_reads_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_zip(tmp_path / "many.zip", {f"f{i}": b"" for i in range(11)})

    def must_not_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("zipfile parsed the directory before the count was checked")

    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "ZipFile", must_not_open)
        with pytest.raises(BundleError, match=r"more than 10 entries"):
            check_zip(path, Limits(max_entries=10))
    # A lying count in the end record changes nothing: the directory itself is walked.
    data = bytearray(path.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<2H", 1, 1)
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"more than 10 entries"):
        check_zip(path, Limits(max_entries=10))


def test_counts_entries_of_zip64_archives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # makes zipfile write ZIP64 end records
        path = make_zip(tmp_path / "z64.zip", {f"f{i}": b"x" for i in range(11)})
    assert b"PK\x06\x06" in path.read_bytes()
    check_zip(path)
    with pytest.raises(BundleError, match=r"more than 10 entries"):
        check_zip(path, Limits(max_entries=10))


def test_refuses_a_zip_larger_than_the_limit(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.zip", {"blob": os.urandom(64 * 1024)})
    with pytest.raises(BundleError, match=r"The bundle is 0.1 MiB; the limit is 0.0 MiB"):
        check_zip(path, Limits(max_bundle_bytes=1024))


def test_refuses_entries_declaring_gigabytes(tmp_path: Path) -> None:
    payload = zlib.compress(b"tiny")[2:-4]
    path = raw_zip(
        tmp_path / "declared.zip",
        [Raw("huge.bin", payload, method=zipfile.ZIP_DEFLATED, declared_size=3 * 1024 * MiB)],
    )
    assert path.stat().st_size < 200
    with pytest.raises(BundleError, match=r"huge.bin is 3072.0 MiB; the limit for one file"):
        check_zip(path)
    with pytest.raises(BundleError, match=r"expands to 3072.0 MiB; the limit is 2048.0 MiB"):
        check_zip(path, Limits(max_entry_bytes=4 * 1024 * MiB))


def test_refuses_a_real_zip_bomb_before_decompressing_it(tmp_path: Path) -> None:
    # 1 GiB of zeros, truly deflated, in a 1 MiB zip with correct CRC and sizes. It is
    # within the per-file and total limits; only the compression ratio gives it away.
    stream, crc = deflated_zeros(1024)
    path = raw_zip(
        tmp_path / "bomb.zip",
        [
            Raw("app.py", b"print('hi')\n"),
            Raw("zeros.bin", stream, zipfile.ZIP_DEFLATED, crc=crc, declared_size=1024 * MiB),
        ],
    )
    assert path.stat().st_size < 2 * MiB
    with pytest.raises(
        BundleError, match=r"expands \d+ times its size.*zip bomb; the limit is 200"
    ):
        check_zip(path)
    with pytest.raises(BundleError, match=r"zip bomb"):
        extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ratio_is_not_held_against_small_bundles(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "sparse.zip", {"app.py": b"x", "empty.db": bytes(4 * MiB)})
    check_zip(path)
    with pytest.raises(BundleError, match=r"zip bomb"):
        check_zip(path, Limits(ratio_floor_bytes=0))


def test_refuses_overlapping_entries(tmp_path: Path) -> None:
    # The densest zip bombs point many entries at the same compressed bytes.
    stream, crc = deflated_zeros(8)
    zeros = Raw("a.bin", stream, zipfile.ZIP_DEFLATED, crc=crc, declared_size=8 * MiB)
    path = raw_zip(
        tmp_path / "overlap.zip",
        [zeros, *(Raw(f"{n}.bin", b"", same_data_as=0) for n in "bcdefgh")],
    )
    with pytest.raises(BundleError, match=r"overlap each other"):
        check_zip(path)


def test_a_lying_size_header_is_caught_while_reading(tmp_path: Path) -> None:
    # The headers say 10 bytes; the data inflates to 16 MiB. zipfile stops at the declared
    # size and the CRC then disagrees, so the entry is reported damaged, not written out.
    stream, crc = deflated_zeros(16)
    path = raw_zip(
        tmp_path / "liar.zip",
        [
            Raw("app.py", b"x"),
            Raw("data.bin", stream, zipfile.ZIP_DEFLATED, crc=crc, declared_size=10),
        ],
    )
    with pytest.raises(BundleError, match=r"data.bin is damaged"):
        check_zip(path)
    with pytest.raises(BundleError, match=r"data.bin is damaged"):
        extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extract_counts_bytes_instead_of_believing_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_zip(tmp_path / "app.zip", {"app.py": b"0123456789"})

    def endless(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
        while True:  # a decompressor that ignores the declared size
            yield bytes(MiB)

    monkeypatch.setattr(bundle, "_chunks", endless)
    with pytest.raises(BundleError, match=r"app.py expands past its declared size"):
        extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path) == ["app.zip"]


def test_extract_rechecks_links_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_zip(tmp_path / "app.zip", {"app.py": b"x", "escape": "../outside"})
    monkeypatch.setattr(bundle, "_check_links", lambda links: None)
    with pytest.raises(BundleError, match=r"escape -> ../outside resolves outside"):
        extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- extract --------------------------------------------------------------------------------


def test_extract_strips_a_single_top_folder_and_macos_litter(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "app.zip",
        {
            "myapp/": b"",
            "myapp/Procfile": b"web: x",
            "myapp/lib/util.py": b"u",
            "myapp/.DS_Store": b"junk",
            "__MACOSX/myapp/._Procfile": b"junk",
            ".DS_Store": b"junk",
        },
    )
    extract(path, tmp_path / "out")
    assert tree(tmp_path / "out") == {"Procfile": "web: x", "lib": "/", "lib/util.py": "u"}


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"myapp/app.py": b"a", "Procfile": b"p"}, {"myapp", "myapp/app.py", "Procfile"}),
        ({"myapp": b"just a file"}, {"myapp"}),
    ],
)
def test_extract_keeps_the_layout_unless_one_folder_holds_everything(
    tmp_path: Path, entries: dict[str, bytes | str], expected: set[str]
) -> None:
    extract(make_zip(tmp_path / "app.zip", entries), tmp_path / "out")
    assert set(tree(tmp_path / "out")) == expected


def test_extract_preserves_links_and_modes(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "app.zip",
        {"bin/run": b"#!/bin/sh\n", "bin/latest": "run", "setuid": b"s", "app.py": b"a"},
        modes={"bin/run": 0o750, "setuid": 0o4777},
    )
    extract(path, tmp_path / "out")
    out = tmp_path / "out"
    assert stat.S_IMODE((out / "bin/run").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "setuid").stat().st_mode) == 0o755  # no set-uid, no o+w
    assert stat.S_IMODE((out / "app.py").stat().st_mode) == 0o644
    assert os.readlink(out / "bin/latest") == "run"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_extract_into_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    extract(make_zip(tmp_path / "app.zip", {"app.py": b"a"}), tmp_path / "out")
    assert tree(tmp_path / "out") == {"app.py": "a"}


def test_extract_refuses_a_folder_with_files(tmp_path: Path) -> None:
    write(tmp_path / "out", {"old.py": "o"})
    with pytest.raises(Conflict, match=r"already exists and is not empty"):
        extract(make_zip(tmp_path / "app.zip", {"app.py": b"a"}), tmp_path / "out")
    assert tree(tmp_path / "out") == {"old.py": "o"}


def test_failed_extract_leaves_nothing_behind(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "app.zip", {"app.py": b"a", "escape": "/etc"})
    with pytest.raises(BundleError):
        extract(path, tmp_path / "out")
    assert os.listdir(tmp_path) == ["app.zip"]


# --- BundleStore --------------------------------------------------------------------------


def test_store_keeps_each_bundle_once_under_its_digest(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "bundles")
    first = make_zip(tmp_path / "a.zip", {"app.py": b"a"})
    copy = tmp_path / "copy.zip"
    shutil.copyfile(first, copy)
    digest = store.put(first)
    assert digest == hashlib.sha256(first.read_bytes()).hexdigest() == sha256_file(first)
    assert store.put(copy) == digest
    assert store.path(digest) == tmp_path / "bundles" / f"{digest}.zip"
    assert store.path(digest.upper()) == store.path(digest)
    assert store.path(digest).read_bytes() == first.read_bytes()
    assert os.listdir(tmp_path / "bundles") == [f"{digest}.zip"]

    other = store.put(make_zip(tmp_path / "b.zip", {"app.py": b"b"}))
    assert other != digest
    assert sorted(os.listdir(tmp_path / "bundles")) == sorted([f"{digest}.zip", f"{other}.zip"])


def test_store_refuses_bad_bundles_and_keeps_no_trace(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "bundles")
    with pytest.raises(BundleError, match=r"absolute path"):
        store.put(raw_zip(tmp_path / "evil.zip", [Raw("/etc/cron.d/x", b"x")]))
    (tmp_path / "text.zip").write_text("not a zip", encoding="utf-8")
    with pytest.raises(BundleError, match=r"not a readable zip"):
        store.put(tmp_path / "text.zip")
    with pytest.raises(BundleError, match=r"larger than the 0.0 MiB limit"):
        store.put(make_zip(tmp_path / "a.zip", {"app.py": b"a"}), Limits(max_bundle_bytes=10))
    with pytest.raises(BundleError, match=r"There is no bundle file"):
        store.put(tmp_path / "missing.zip")
    assert os.listdir(tmp_path / "bundles") == []


def test_store_path_of_unknown_or_malformed_digests(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "bundles")
    with pytest.raises(NotFound, match=r"No bundle with digest"):
        store.path("0" * 64)
    with pytest.raises(InvalidInput, match=r"is not a bundle digest"):
        store.path("../../etc/passwd")
