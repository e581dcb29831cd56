"""Where Beanpole (root) reads, writes or changes owners in folders an application's user may
write to, a link the application planted leads nowhere: found by a security review, each
case as it was shown to work before the fix. Root only: real owners."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from beanpole.adapters.build import (
    _copy_in,
    _install_marker,
    _installed,
    _own_folder,
    _write_new,
    staged_deployments,
)
from beanpole.core.errors import BuildError, InvalidInput
from beanpole.core.runtime import Mount, RunAs
from beanpole.services.fleet import _pin_bundle_folder, _refuse_nested

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="owners change only as root")

NOBODY = RunAs("nobody", 65534, 65534)


def _roots(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of root's with a secret in it, and the app user's own folder."""
    secret = tmp_path / "home"
    secret.mkdir(mode=0o700)
    (secret / "secret.key").write_text("root's\n")
    own = tmp_path / "own"
    own.mkdir()
    os.chown(own, NOBODY.uid, NOBODY.gid)
    return secret, own


def test_a_planted_stage_in_the_apps_cache_is_never_a_deployment_folder(tmp_path):
    builds = tmp_path / "builds"
    real = builds / "a-shop000000" / "d1" / "stages" / "e-1-3"
    real.mkdir(parents=True)
    cache = builds / "a-shop000000" / "cache"  # the app user's
    (cache / "stages").mkdir(parents=True)
    (cache / "stages" / "e-1-4").symlink_to("/")
    (cache / "stages" / "e-1-5").mkdir()
    os.chown(cache / "stages", NOBODY.uid, NOBODY.gid)
    assert staged_deployments(builds) == {("e-1", 3): real}


def test_a_cache_folder_swapped_for_a_link_is_replaced_not_followed(tmp_path):
    secret, own = _roots(tmp_path)
    (own / "yarn").symlink_to(secret)
    _own_folder(own / "yarn", NOBODY)
    assert (own / "yarn").is_dir() and not (own / "yarn").is_symlink()
    assert (own / "yarn").stat().st_uid == NOBODY.uid
    assert secret.stat().st_uid == 0 and stat.S_IMODE(secret.stat().st_mode) == 0o700


def test_a_bundle_file_that_is_a_link_is_not_copied(tmp_path):
    secret, own = _roots(tmp_path)
    app = tmp_path / "app"
    app.mkdir()
    (app / ".npmrc").symlink_to(secret / "secret.key")
    with pytest.raises(BuildError, match="not a symbolic link"):
        _copy_in(app / ".npmrc", own / ".npmrc", 0o600)
    assert not (own / ".npmrc").exists()
    (app / "package.json").write_text("{}")
    _copy_in(app / "package.json", own / "package.json", 0o644)
    assert (own / "package.json").read_text() == "{}"
    assert stat.S_IMODE((own / "package.json").stat().st_mode) == 0o644


def test_root_never_writes_through_a_link_the_app_planted(tmp_path):
    secret, own = _roots(tmp_path)
    (own / "requirements.txt").symlink_to(secret / "new-file")
    with pytest.raises(FileExistsError):
        _write_new(own / "requirements.txt", b"flask\n")
    assert not (secret / "new-file").exists()


def test_an_install_is_done_by_beanpoles_marker_not_one_the_app_made(tmp_path):
    _, own = _roots(tmp_path)
    target = own / "key1"
    target.mkdir()
    (target / ".done").touch()
    os.chown(target / ".done", NOBODY.uid, NOBODY.gid)  # made by the install's scripts
    assert not _installed(target)
    os.chown(target / ".done", 0, 0)  # a home from before the marker moved
    assert _installed(target)
    (target / ".done").unlink()
    _write_new(_install_marker(target), b"")
    assert _installed(target)
    assert _install_marker(target).parent == own  # beside it, not inside


def test_a_writable_volume_may_not_hold_another(tmp_path):
    outer = Mount(tmp_path / "host" / "var" / "app", "/var/app")
    inner = Mount(tmp_path / "host" / "var" / "app" / "db", "/var/lib/db")
    with pytest.raises(InvalidInput, match="inside the writable volume for /var/app"):
        _refuse_nested([outer, inner])
    _refuse_nested([Mount(outer.source, outer.target, read_only=True), inner])
    _refuse_nested([Mount(tmp_path / "a", "/a"), Mount(tmp_path / "ab", "/ab")])


def test_a_bundle_volume_behind_a_link_is_refused_and_its_way_becomes_roots(tmp_path):
    secret, _ = _roots(tmp_path)
    app = tmp_path / "app"
    (app / "site" / "public").mkdir(parents=True)
    for folder in (app, app / "site", app / "site" / "public"):
        os.chown(folder, NOBODY.uid, NOBODY.gid)  # handed over to the app user
    (app / "data").symlink_to(secret)
    with pytest.raises(InvalidInput, match="data is not a folder"):
        _pin_bundle_folder(app, Mount(app / "data", "/data"))
    _pin_bundle_folder(app, Mount(app / "site" / "public", "/srv/public"))
    # no process of the app user can swap a folder on the way for a link any more
    for folder in (app, app / "site"):
        assert (folder.stat().st_uid, stat.S_IMODE(folder.stat().st_mode)) == (0, 0o750)
        assert folder.stat().st_gid == NOBODY.gid
    assert (app / "site" / "public").stat().st_uid == NOBODY.uid  # the container's to write
