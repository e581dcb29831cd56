from beanpole.core.lifecycle import versions_to_delete
from beanpole.core.model import BuildStatus, Version


def v(label, t):
    return Version("app", label, "d" + label, t, BuildStatus.BUILT)


def test_keeps_the_newest_and_every_deployed_version():
    versions = [v("a", 1), v("b", 2), v("c", 3), v("d", 4)]
    assert [x.label for x in versions_to_delete(versions, 2, {"a"})] == ["b"]


def test_zero_keeps_everything():
    assert versions_to_delete([v("a", 1), v("b", 2)], 0, set()) == []
