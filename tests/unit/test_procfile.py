from __future__ import annotations

import pytest

from beanpole.core.errors import BundleError
from beanpole.core.procfile import parse_buildfile, parse_procfile


def test_parses_processes_in_file_order() -> None:
    text = (
        "web: gunicorn app:app --bind :8000\nworker: celery -A tasks worker\n"
        "clock:python clock.py\n"
    )
    assert list(parse_procfile(text).items()) == [
        ("web", "gunicorn app:app --bind :8000"),
        ("worker", "celery -A tasks worker"),
        ("clock", "python clock.py"),
    ]


def test_skips_blank_lines_and_comments() -> None:
    text = "# processes\n\n   \nweb: node server.js\n  # indented comment\n"
    assert parse_procfile(text) == {"web": "node server.js"}


def test_tolerates_windows_line_endings_a_bom_and_surrounding_spaces() -> None:
    text = "\ufeffweb: npm start  \r\n  worker_2-b: node worker.js\r\n"
    assert parse_procfile(text) == {"web": "npm start", "worker_2-b": "node worker.js"}


def test_keeps_the_whole_command_after_the_first_colon() -> None:
    assert parse_procfile("web: sh -c 'echo a: b # not a comment'") == {
        "web": "sh -c 'echo a: b # not a comment'"
    }


def test_empty_file_has_no_processes() -> None:
    assert parse_procfile("") == {}
    assert parse_procfile("# nothing yet\n") == {}


@pytest.mark.parametrize(
    "line",
    [
        "web gunicorn app:app",  # no colon
        "web:",  # no command
        "web:   ",
        "my web: gunicorn",  # space in the name
        "web.1: gunicorn",  # dot in the name
        ": gunicorn",  # no name
    ],
)
def test_bad_line_names_the_line_and_the_expected_form(line: str) -> None:
    with pytest.raises(BundleError) as caught:
        parse_procfile(f"# header\nworker: run\n{line}\n")
    message = str(caught.value)
    assert "Procfile line 3" in message
    assert "`name: command`" in message


def test_duplicate_name_names_both_lines() -> None:
    with pytest.raises(BundleError, match=r"line 3 defines 'web' again \(first on line 1\)"):
        parse_procfile("web: a\nworker: b\nweb: c\n")


def test_buildfile_uses_its_own_name_in_errors() -> None:
    assert parse_buildfile("make: ./build.sh\n") == {"make": "./build.sh"}
    with pytest.raises(BundleError, match=r"^Buildfile line 1 "):
        parse_buildfile("./build.sh\n")


def test_custom_source_name_appears_in_errors() -> None:
    with pytest.raises(BundleError, match=r"^Procfile.dev line 1 "):
        parse_procfile("oops", source="Procfile.dev")
