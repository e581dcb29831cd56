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
