"""Which folders the application user can reach (pure file-mode checks, no user needed)."""

import pytest

from beanpole.adapters.appuser import can_run, check_reachable, reachable
from beanpole.core.errors import ComponentError
from beanpole.core.runtime import RunAs

NOBODY = RunAs("nobody", 65534, 65534)


def test_a_closed_folder_on_the_way_is_named_with_the_fix(public_tmp):
    closed = public_tmp / "closed"
    target = closed / "home" / "builds"
    target.mkdir(parents=True)
    public_tmp.chmod(0o711)
    closed.chmod(0o700)
    with pytest.raises(ComponentError) as err:
        check_reachable(target, NOBODY)
    assert f"{closed} is mode 0700" in err.value.message
    assert f"chmod o+x {closed}" in err.value.message
    closed.chmod(0o711)
    check_reachable(target, NOBODY)  # traversable now
    assert reachable(target, NOBODY)


def test_nothing_to_check_when_beanpole_is_not_root(public_tmp):
    public_tmp.chmod(0o700)
    check_reachable(public_tmp / "x", None)
    assert reachable(public_tmp, None)


def test_a_program_behind_a_closed_folder_cannot_be_run(public_tmp):
    public_tmp.chmod(0o711)
    closed = public_tmp / "closed"
    closed.mkdir(mode=0o700)
    program = closed / "python"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    link = public_tmp / "link"
    link.symlink_to(program)  # a venv's python points at the interpreter it came from
    assert not can_run(link, NOBODY)
    closed.chmod(0o755)
    assert can_run(link, NOBODY)


def test_an_application_user_is_named_after_its_id():
    from beanpole.adapters.appuser import application_key, user_name
    from beanpole.core.model import Application

    assert user_name(Application("shop", 0.0, "a-3kq9xw2m7a")) == "bp-3kq9xw2m7a"
    # an application from before ids were minted: a stable hash of its name, in the same form
    old = Application("legacy", 0.0)
    assert application_key(old) == application_key(Application("legacy", 1.0))
    assert application_key(old).startswith("a-") and len(application_key(old)) == 12
    assert user_name(old) != user_name(Application("other", 0.0))
    assert len(user_name(old)) <= 32  # useradd's limit


def test_the_users_comment_names_the_application_and_the_home(tmp_path):
    from beanpole.adapters.appuser import comment

    assert comment("shop", tmp_path) == f"beanpole app shop {tmp_path}"
    assert ":" not in comment("shop", tmp_path / "a:b")  # /etc/passwd's separator


def test_without_root_nobody_is_made_and_as_root_others_must_traverse(public_tmp, monkeypatch):
    from beanpole.adapters.appuser import APP_USER_ENV, AppUsers
    from beanpole.core.model import Application

    monkeypatch.delenv(APP_USER_ENV, raising=False)
    users = AppUsers(public_tmp, enabled=False)
    assert users.of(Application("shop", 0.0, "a-3kq9xw2m7a")) is None
    assert users.traverser() is None
    # one user per application: none is the owner or in the group of the home's folders
    other = AppUsers(public_tmp, enabled=True).traverser()
    assert other is not None
    home = public_tmp / "home"
    home.mkdir(mode=0o710)
    home.chmod(0o710)
    with pytest.raises(ComponentError) as err:
        check_reachable(home / "builds", other)
    assert f"chmod o+x {home}" in err.value.message
    home.chmod(0o711)
    check_reachable(home / "builds", other)
