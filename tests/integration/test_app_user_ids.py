"""Application users as the host sees them (root only: real ``useradd``/``userdel``): a uid
is never given twice, and a user belongs to one Beanpole home."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from beanpole.adapters.appuser import AppUsers, user_name
from beanpole.core.errors import ComponentError
from beanpole.core.model import Application

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="applications have users of their own only when Beanpole is root"
)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """User names the test made, removed afterwards."""
    monkeypatch.delenv("BEANPOLE_APP_USER", raising=False)
    names: list[str] = []
    yield names
    userdel = shutil.which("userdel") or "/usr/sbin/userdel"
    for name in names:
        subprocess.run([userdel, name], capture_output=True, check=False)


def _app(suffix: str) -> Application:
    return Application(f"app-{suffix}", 0.0, f"a-{os.getpid() % 100000:05d}{suffix}")


def test_a_deleted_applications_uid_is_never_given_to_a_new_one(tmp_path: Path, made):
    users = AppUsers(tmp_path, enabled=True)
    first, second = _app("fst0a"), _app("snd0b")
    made += [user_name(first), user_name(second)]
    old = users.of(first)
    assert old is not None
    users.remove(first)
    with pytest.raises(KeyError):
        pwd.getpwnam(old.name)
    new = users.of(second)
    assert new is not None
    assert new.uid > old.uid  # the lowest free uid would be the deleted one's


def test_an_application_user_belongs_to_one_home(tmp_path: Path, made):
    app = _app("shr0c")
    made.append(user_name(app))
    mine = AppUsers(tmp_path / "one", enabled=True)
    theirs = AppUsers(tmp_path / "two", enabled=True)
    assert mine.of(app) is not None
    with pytest.raises(ComponentError, match="another Beanpole home") as err:
        theirs.of(app)
    assert f"userdel {user_name(app)}" in err.value.message
    theirs.remove(app)  # not the other home's to remove
    assert pwd.getpwnam(user_name(app)).pw_gecos.endswith(str(tmp_path / "one"))
    mine.remove(app)
    with pytest.raises(KeyError):
        pwd.getpwnam(user_name(app))


def test_handing_a_folder_over_never_follows_a_link_out_of_it(public_tmp: Path):
    from beanpole.adapters.appuser import hand_over
    from beanpole.core.runtime import RunAs

    nobody = RunAs("nobody", 65534, 65534)
    outside = public_tmp / "outside"
    outside.mkdir()
    (outside / "secret").write_text("root's\n")
    app = public_tmp / "app"
    (app / "a" / "b").mkdir(parents=True)
    (app / "a" / "b" / "file").write_text("x\n")
    (app / "a" / "to-outside").symlink_to(outside)
    (app / "to-secret").symlink_to(outside / "secret")
    hand_over(app, nobody)
    for path in (app, app / "a", app / "a" / "b", app / "a" / "b" / "file"):
        assert (path.stat().st_uid, path.stat().st_gid) == (nobody.uid, nobody.gid), path
    for link in (app / "a" / "to-outside", app / "to-secret"):
        assert link.lstat().st_uid == nobody.uid  # the link itself
    for path in (outside, outside / "secret"):
        assert path.stat().st_uid == 0, path


def test_a_user_of_that_name_beanpole_did_not_make_is_refused(tmp_path: Path, made):
    app = _app("oth0d")
    made.append(user_name(app))
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    subprocess.run(
        [useradd, "--no-create-home", "--comment", "someone else", user_name(app)], check=True
    )
    with pytest.raises(ComponentError, match="Beanpole did not make"):
        AppUsers(tmp_path, enabled=True).of(app)
