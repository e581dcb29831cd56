"""The generated docs match the code: run `python scripts/gen_docs.py` after changing either."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current():
    assert (ROOT / "docs" / "cli.md").read_text() == load_generator().cli_markdown()


def test_settings_reference_is_current():
    assert (ROOT / "docs" / "settings.md").read_text() == load_generator().settings_markdown()


def test_every_option_is_documented():
    from beanpole.core.settings.options import OPTIONS

    text = (ROOT / "docs" / "settings.md").read_text()
    for option in OPTIONS.values():
        assert f"`{option.name}`" in text
