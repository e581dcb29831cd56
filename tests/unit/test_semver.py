"""npm version ranges as `package.json` `engines.node` writes them (issue 8, part 7)."""

import pytest

from beanpole.core.platforms.semver import parse_version, satisfies


@pytest.mark.parametrize(
    ("version", "range_", "expected"),
    [
        ("v18.19.0", ">=18", True),
        ("v17.9.1", ">=18", False),
        ("v18.0.0", ">18", False),  # >18 means 19.0.0 and up
        ("v19.0.0", ">18", True),
        ("v18.2.0", ">18.1", True),
        ("v18.1.9", ">18.1", False),
        ("v20.1.0", "^20.1", True),
        ("v20.0.9", "^20.1", False),
        ("v21.0.0", "^20.1", False),
        ("v0.2.5", "^0.2.3", True),
        ("v0.3.0", "^0.2.3", False),
        ("v0.0.4", "^0.0.3", False),
        ("v18.19.0", "18.x", True),
        ("v19.0.0", "18.x", False),
        ("v18.19.0", "18", True),
        ("v18.2.7", "18.2.x", True),
        ("v18.3.0", "18.2.x", False),
        ("v16.2.5", "~16.2.0", True),
        ("v16.3.0", "~16.2.0", False),
        ("v16.1.9", "~16.2.0", False),
        ("v16.9.0", "~16", True),
        ("v20.20.2", "*", True),
        ("v20.20.2", "", True),
        ("v20.20.2", "x", True),
        ("v16.0.0", "^14 || ^16 || >=18", True),
        ("v15.0.0", "^14 || ^16 || >=18", False),
        ("v18.5.0", ">=16.0.0 <19", True),
        ("v19.0.0", ">=16.0.0 <19", False),
        ("v18.5.0", ">= 16 < 19", True),  # spaces after operators, as people write them
        ("v20.0.0", "<=20", True),
        ("v20.9.0", "<=20", True),
        ("v21.0.0", "<=20", False),
        ("v20.1.0", "=20.1.0", True),
        ("v20.1.1", "20.1.0", False),
        ("v19.5.0", "18 - 20", True),
        ("v20.9.9", "18 - 20", True),
        ("v21.0.0", "18 - 20", False),
        ("v20.1.0", "18.1.0 - 20.1.0", True),
        ("v20.1.1", "18.1.0 - 20.1.0", False),
        ("v22.0.0-rc.1", ">=22", True),  # pre-release tags are ignored
        ("v20.11.1", "v20.x", True),
    ],
)
def test_ranges(version, range_, expected):
    assert satisfies(version, range_) is expected


@pytest.mark.parametrize("bad", ["latest", ">=eighteen", "^", "18..2"])
def test_unreadable_ranges_raise(bad):
    with pytest.raises(ValueError, match="not a"):
        satisfies("v20.0.0", bad)


def test_node_version_is_parsed_with_or_without_v():
    assert parse_version("v18.19.0") == parse_version("18.19.0") == (18, 19, 0)
    with pytest.raises(ValueError, match="full version"):
        parse_version("18.x")
