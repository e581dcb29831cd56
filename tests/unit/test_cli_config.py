"""`beanpole config`'s forms (issue 8, part 8): any first word that is not a subcommand is an
environment, so `config ENV` and `config ENV NS:OPT=V` keep working beside the subcommands.
Parsing only: these stop before any server is asked."""

import pytest
from click.testing import CliRunner

from beanpole.cli.main import cli
from beanpole.core.errors import InvalidInput


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("BEANPOLE_HOME", str(tmp_path))  # no server there
    monkeypatch.delenv("BEANPOLE_URL", raising=False)
    return lambda *args: CliRunner().invoke(cli, ["config", *args])


def test_an_environment_name_routes_to_the_env_form(run):
    result = run("shop", "aws:autoscaling:asg:MinSize=2", "--json")
    assert isinstance(result.exception, InvalidInput)
    assert "--json and --show-secrets go with listing" in str(result.exception)
    assert "beanpole config shop" in str(result.exception)


def test_subcommands_win_and_env_reaches_an_environment_named_like_one(run):
    listed = run("save", "shop")  # NAME missing: the save subcommand parsed it
    assert listed.exit_code == 2 and "Missing argument 'NAME'" in listed.output
    named_list = run("env", "list", "a:b=c", "--show-secrets")
    assert isinstance(named_list.exception, InvalidInput)
    assert "'beanpole config env list'" in str(named_list.exception)


def test_help_shows_both_forms(run):
    result = run("--help")
    assert result.exit_code == 0
    assert "ENV [NAMESPACE:OPTION=VALUE]... | COMMAND [ARGS]..." in result.output
    for name in ("save", "list", "delete", "env"):
        assert f"  {name} " in result.output
