import pytest

from beanpole.core.errors import InvalidInput
from beanpole.core.model import check_app_name, check_cname, check_env_name, new_instance_id


@pytest.mark.parametrize("name", ["shop", "shop-prod", "a1b2", "x" * 40])
def test_valid_environment_names(name):
    assert check_env_name(name) == name


@pytest.mark.parametrize("name", ["abc", "-shop", "shop-", "sh op", "x" * 41, "shop_prod", ""])
def test_invalid_environment_names_say_the_rule(name):
    with pytest.raises(InvalidInput, match="4 to 40 letters, digits and hyphens"):
        check_env_name(name)


def test_cname_is_lowercased():
    assert check_cname("Shop-Prod") == "shop-prod"


def test_app_names():
    assert check_app_name("my.app_1") == "my.app_1"
    with pytest.raises(InvalidInput):
        check_app_name("../etc")


def test_instance_ids_are_unique_and_shaped():
    ids = {new_instance_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("i-") and len(i) == 10 for i in ids)
