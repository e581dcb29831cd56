"""Static files mapping, path safety and conditional requests (pure; issue 8)."""

from __future__ import annotations

import pytest

from beanpole.core import staticfiles
from beanpole.core.errors import InvalidInput
from beanpole.core.settings import resolve, validate
from beanpole.core.staticfiles import Conditional, check_mapping, locate, mappings

NS = staticfiles.NAMESPACE
PAIRS = (("/static/admin", "admin-static"), ("/static", "static"))


def test_mappings_are_normalised() -> None:
    assert check_mapping("/static/", "./static/") == ("/static", "static")
    assert check_mapping("/a/b", "public/assets") == ("/a/b", "public/assets")
    # EB reads the folder as relative to the app, with a leading slash or its own folders
    assert check_mapping("/static", "/static") == ("/static", "static")
    assert check_mapping("/img", "/var/app/current/public/img") == ("/img", "public/img")


@pytest.mark.parametrize(
    ("path", "folder", "says"),
    [
        ("static", "static", "must start with '/'"),
        ("/", "static", "every request"),
        ("/a/../b", "static", "'..'"),
        ("/a b", "static", "not valid"),
        ("/static", "", "no folder"),
        ("/static", "/", "not valid"),
        ("/static", "../secret", "without '..'"),
        ("/static", "a/../../b", "without '..'"),
    ],
)
def test_bad_mappings_name_the_problem(path: str, folder: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        check_mapping(path, folder)


def test_the_namespace_is_validated_like_any_option() -> None:
    assert validate({f"{NS}:/static/": "static/"}) == {f"{NS}:/static": "static"}
    assert validate({f"{NS}:/static": "/etc"}) == {f"{NS}:/static": "etc"}  # the app's etc


def test_python_has_eb_default_other_platforms_none() -> None:
    assert mappings(resolve().values, "python") == (("/static", "static"),)
    assert mappings(resolve().values, "nodejs") == ()
    given = resolve({f"{NS}:/assets": "public"}).values
    assert mappings(given, "python") == (("/assets", "public"),)


def test_the_most_specific_path_wins() -> None:
    settings = {f"{NS}:/static": "static", f"{NS}:/static/admin": "admin-static"}
    assert mappings(settings) == PAIRS
    assert locate(PAIRS, "/static/admin/x.css") == ("admin-static", "x.css")
    assert locate(PAIRS, "/static/x.css?v=3") == ("static", "x.css")


@pytest.mark.parametrize(
    "path",
    [
        "/static",
        "/static/",
        "/staticky/x.css",
        "/other/x.css",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/a%2f..%2f..%2fapp.py",
        "/static/.env",
        "/static/sub/.git/config",
        "/static/a%00b",
        "/static/a%5c..%5capp.py",
        "/static/%ff",
    ],
)
def test_paths_that_leave_the_folder_or_name_none_locate_nothing(path: str) -> None:
    assert locate(PAIRS, path) is None


def test_percent_encoding_and_double_slashes() -> None:
    assert locate(PAIRS, "/static//css/my%20file.css") == ("static", "css/my file.css")


def test_conditional_requests() -> None:
    tag = staticfiles.etag(10**18, 42, 7)
    modified = 1_700_000_000.5
    assert Conditional(if_none_match=tag).not_modified(tag, modified)
    assert Conditional(if_none_match=f'"x", W/{tag}').not_modified(tag, modified)
    assert Conditional(if_none_match="*").not_modified(tag, modified)
    assert not Conditional(if_none_match='"x"').not_modified(tag, modified)
    since = staticfiles.http_date(modified)
    assert Conditional(if_modified_since=since).not_modified(tag, modified)
    older = staticfiles.http_date(modified - 60)
    assert not Conditional(if_modified_since=older).not_modified(tag, modified)
    # If-None-Match decides when both are sent
    assert not Conditional('"x"', since).not_modified(tag, modified)
    assert not Conditional(if_modified_since="yesterday").not_modified(tag, modified)
    assert not Conditional().not_modified(tag, modified)
