"""The ignore matcher against git's documented semantics, then against git itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from beanpole.core.ignore import IgnoreRules

# (patterns, path, is_dir, ignored) — each row cites the gitignore(5) rule it exercises.
CASES: list[tuple[str, str, bool, bool]] = [
    # A pattern without a slash matches a name at any depth.
    ("*.log", "debug.log", False, True),
    ("*.log", "logs/deep/debug.log", False, True),
    ("*.log", "debug.log.txt", False, False),
    ("build", "build", True, True),
    ("build", "src/build", False, True),
    # A trailing slash matches directories only.
    ("build/", "build", True, True),
    ("build/", "build", False, False),
    ("build/", "src/build", True, True),
    ("build/", "build/out.o", False, True),
    # A leading or middle slash anchors to the ignore file's folder.
    ("/todo.txt", "todo.txt", False, True),
    ("/todo.txt", "docs/todo.txt", False, False),
    ("doc/frotz", "doc/frotz", False, True),
    ("doc/frotz", "a/doc/frotz", False, False),
    ("doc/frotz/", "doc/frotz", True, True),
    # "*" and "?" do not cross a slash.
    ("doc/*.txt", "doc/notes.txt", False, True),
    ("doc/*.txt", "doc/server/arch.txt", False, False),
    ("?.md", "a.md", False, True),
    ("?.md", "ab.md", False, False),
    ("a?b", "a/b", False, False),
    # "**": leading, middle and trailing forms.
    ("**/foo", "foo", False, True),
    ("**/foo", "x/y/foo", False, True),
    ("**/foo/bar", "x/foo/bar", False, True),
    ("a/**/b", "a/b", False, True),
    ("a/**/b", "a/x/y/b", False, True),
    ("a/**/b", "x/a/b", False, False),
    ("abc/**", "abc/x", False, True),
    ("abc/**", "abc/x/y", False, True),
    ("abc/**", "abc", True, False),
    ("foo**bar", "fooxbar", False, True),  # not between slashes: a plain "*"
    ("foo**bar", "foo/bar", False, False),
    # Brackets.
    ("*.py[co]", "m.pyc", False, True),
    ("*.py[co]", "m.py", False, False),
    ("[a-c].cfg", "b.cfg", False, True),
    ("[a-c].cfg", "d.cfg", False, False),
    ("[!a-c].cfg", "d.cfg", False, True),
    ("[^a-c].cfg", "a.cfg", False, False),
    ("[]x]", "]", False, True),
    ("[[:digit:]]*.dat", "1.dat", False, True),
    ("[[:digit:]]*.dat", "x.dat", False, False),
    ("a[/]b", "a/b", False, False),
    ("[abc", "[abc", False, False),  # unclosed: git matches nothing
    # Comments, escapes and trailing spaces.
    ("# comment", "# comment", False, False),
    ("\\#notes", "#notes", False, True),
    ("\\!bang", "!bang", False, True),
    ("spaces   ", "spaces", False, True),
    ("kept\\ ", "kept ", False, True),
    ("kept\\ ", "kept", False, False),
    ("a\\*b", "a*b", False, True),
    ("a\\*b", "axb", False, False),
    # Negation: the last matching pattern wins.
    ("*.log\n!keep.log", "keep.log", False, False),
    ("*.log\n!keep.log", "other.log", False, True),
    ("!keep.log\n*.log", "keep.log", False, True),
    # A file inside an excluded folder cannot be re-included.
    ("secret/\n!secret/keep.txt", "secret/keep.txt", False, True),
    ("secret/*\n!secret/keep.txt", "secret/keep.txt", False, False),
    ("/*\n!/foo\n/foo/*\n!/foo/bar", "foo/bar", False, False),
    ("/*\n!/foo\n/foo/*\n!/foo/bar", "foo/baz", False, True),
    ("/*\n!/foo\n/foo/*\n!/foo/bar", "other", False, True),
]


@pytest.mark.parametrize(("patterns", "path", "is_dir", "ignored"), CASES)
def test_documented_semantics(patterns: str, path: str, is_dir: bool, ignored: bool) -> None:
    assert IgnoreRules.parse(patterns).matches(path, is_dir) is ignored


def test_nested_file_speaks_only_below_its_folder_and_wins() -> None:
    rules = IgnoreRules.parse("*.tmp\nlocal.txt") + IgnoreRules.parse(
        "!keep.tmp\n/local.txt\n", base="sub"
    )
    assert rules.matches("sub/keep.tmp", False) is False
    assert rules.matches("keep.tmp", False) is True  # the nested "!" does not reach up
    assert rules.matches("sub/other.tmp", False) is True
    assert rules.matches("sub/local.txt", False) is True
    assert rules.matches("sub/deeper/local.txt", False) is True  # root's unanchored rule


def test_from_file_reads_a_gitignore(tmp_path: Path) -> None:
    ignore = tmp_path / ".ebignore"
    ignore.write_text("# build output\r\nnode_modules/\r\n*.pyc\r\n", encoding="utf-8")
    rules = IgnoreRules.from_file(ignore)
    assert rules.matches("node_modules/left-pad/index.js", False)
    assert rules.matches("app/m.pyc", False)
    assert not rules.matches("app/m.py", False)


def test_no_rules_ignore_nothing() -> None:
    assert IgnoreRules().matches("anything/at/all", False) is False


# --- against git itself ------------------------------------------------------------------

GIT_SCENARIOS: dict[str, tuple[dict[str, str], list[str]]] = {
    "basics": (
        {".gitignore": "*.log\n!important.log\nbuild/\n/root-only.txt\ndoc/*.txt\n"},
        [
            "a.log",
            "important.log",
            "sub/b.log",
            "sub/important.log",
            "build/out.o",
            "lib/build",
            "root-only.txt",
            "sub/root-only.txt",
            "doc/a.txt",
            "doc/server/arch.txt",
            "keep.py",
        ],
    ),
    "double-star": (
        {".gitignore": "**/logs\n**/cache/*.bin\na/**/b\nabc/**\n!abc/keep\nfoo**bar\n"},
        [
            "logs/x",
            "deep/er/logs/y",
            "cache/1.bin",
            "x/cache/2.bin",
            "x/cache/keep.txt",
            "a/b",
            "a/q/r/b",
            "z/a/b",
            "abc/x",
            "abc/keep",
            "abc/d/e",
            "fooxbar",
            "foo/bar",
        ],
    ),
    "brackets-escapes-spaces": (
        {
            ".gitignore": "*.py[co]\n[!a-c]?.cfg\n[[:digit:]]*.dat\n\\#notes\n\\!bang\n"
            "spaces   \nkept\\ \n[unclosed\n[]x]\n"
        },
        [
            "m.pyc",
            "m.pyo",
            "m.py",
            "a1.cfg",
            "d1.cfg",
            "1x.dat",
            "x1.dat",
            "#notes",
            "!bang",
            "spaces",
            "kept ",
            "kept",
            "[unclosed",
            "]",
            "x",
        ],
    ),
    "negation-and-parents": (
        {".gitignore": "secret/\n!secret/keep.txt\nlogs/*\n!logs/keep.log\n/*.md\n!/README.md\n"},
        [
            "secret/keep.txt",
            "secret/other.txt",
            "logs/keep.log",
            "logs/x.log",
            "logs/sub/keep.log",
            "README.md",
            "NOTES.md",
            "docs/NOTES.md",
        ],
    ),
    "only-some-dirs": (
        {".gitignore": "/*\n!/foo\n/foo/*\n!/foo/bar\n!.gitignore\n"},
        ["foo/bar/x", "foo/baz", "other/x", "top.txt"],
    ),
    "everything-but-keep": (
        {".gitignore": "*\n!*/\n!*.keep\n"},
        ["a.keep", "a.txt", "d/b.keep", "d/b.txt", "d/e/c.keep"],
    ),
    "nested-gitignores": (
        {
            ".gitignore": "*.tmp\nlocal.txt\n",
            "sub/.gitignore": "!keep.tmp\n/only-here.txt\n",
            "sub/deeper/.gitignore": "*.tmp\n",
        },
        [
            "a.tmp",
            "keep.tmp",
            "sub/keep.tmp",
            "sub/b.tmp",
            "sub/only-here.txt",
            "sub/x/only-here.txt",
            "sub/local.txt",
            "sub/deeper/keep.tmp",
            "only-here.txt",
        ],
    ),
}


def _git_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def _make_tree(root: Path, ignores: dict[str, str], files: list[str]) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name, encoding="utf-8")
    for name, text in ignores.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def git_untracked(root: Path, home: Path) -> set[str]:
    """What git would add: untracked files that no ignore rule excludes."""
    env = _git_env(home)
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    listing = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        env=env,
        capture_output=True,
    ).stdout.decode()
    return {name for name in listing.split("\0") if name}


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
@pytest.mark.parametrize("scenario", sorted(GIT_SCENARIOS))
def test_agrees_with_git(tmp_path: Path, scenario: str) -> None:
    ignores, files = GIT_SCENARIOS[scenario]
    root = tmp_path / "repo"
    _make_tree(root, ignores, files)
    rules = IgnoreRules()
    for name in sorted(ignores, key=lambda n: n.count("/")):
        rules = rules + IgnoreRules.from_file(root / name, base=str(Path(name).parent))
    ours = {name for name in [*files, *ignores] if not rules.matches(name, False)}
    assert ours == git_untracked(root, tmp_path)
