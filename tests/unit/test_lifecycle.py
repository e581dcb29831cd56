from beanpole.core.lifecycle import versions_to_delete
from beanpole.core.model import BuildStatus, Version


def v(label, t):
    return Version("app", label, "d" + label, t, BuildStatus.BUILT)


def test_keeps_the_newest_and_every_deployed_version():
    versions = [v("a", 1), v("b", 2), v("c", 3), v("d", 4)]
    assert [x.label for x in versions_to_delete(versions, 2, {"a"})] == ["b"]


def test_zero_keeps_everything():
    assert versions_to_delete([v("a", 1), v("b", 2)], 0, set()) == []


def test_the_age_rule_deletes_versions_older_than_it_except_deployed_ones():
    day = 86400.0
    now = 100 * day
    versions = [v("old", now - 10 * day), v("used", now - 9 * day), v("new", now - 1 * day)]
    doomed = versions_to_delete(versions, 0, {"used"}, max_age_days=5, now=now)
    assert [x.label for x in doomed] == ["old"]
    # both rules at once: the count keeps 1, the age would keep 2; each version listed once
    both = versions_to_delete(versions, 1, set(), max_age_days=5, now=now)
    assert sorted(x.label for x in both) == ["old", "used"]
