"""`.platform/nginx` parsed and translated for HAProxy (pure; issue 8)."""

from __future__ import annotations

import pytest

from beanpole.core import nginx
from beanpole.core.nginx import NginxFile, NginxSyntaxError, parse, parse_size, translate

BODY, GZIP = nginx.BODY_SIZE_KEY, nginx.GZIP_KEY


def conf(text: str, path: str = ".platform/nginx/conf.d/x.conf") -> NginxFile:
    return NginxFile(path, text.encode())


def test_parses_comments_quotes_and_nested_blocks() -> None:
    directives = parse(
        """
        # a comment; with { braces }
        user nginx;  # trailing
        http {
            log_format main '$remote_addr "$request"';
            server { listen 80; location /x { return 200 "a;b}"; } }
        }
        """
    )
    assert [d.name for d in directives] == ["user", "http"]
    http = directives[1].block
    assert http is not None
    assert http[0].args == ("main", '$remote_addr "$request"')
    location = http[1].block[1]  # type: ignore[index]
    assert location.args == ("/x",)
    assert location.block[0].args == ("200", "a;b}")  # type: ignore[index]
    assert location.line == 6


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("gzip on", 1),
        ("http {\n gzip on;\n", 1),
        ("gzip on;\n}", 2),
        ("gzip 'on;", 1),
        ("{ gzip on; }", 1),
    ],
)
def test_syntax_errors_say_the_line(text: str, line: int) -> None:
    with pytest.raises(NginxSyntaxError) as caught:
        parse(text)
    assert caught.value.line == line


def test_sizes() -> None:
    assert parse_size("1024") == 1024
    assert parse_size("1k") == 1024
    assert parse_size("10M") == 10 * 1024**2
    assert parse_size("1g") == 1024**3
    assert parse_size("1.5m") is None
    assert parse_size("big") is None


def test_translates_body_size_and_gzip_and_names_the_rest_in_one_warning() -> None:
    result = translate(
        [
            conf(
                "client_max_body_size 1k;\ngzip on;\nworker_connections 10;\n"
                "gzip_types text/css application/json;\nkeepalive_timeout 5;"
            )
        ]
    )
    assert result.settings == {BODY: "1024", GZIP: "text/html text/css application/json"}
    assert len(result.warnings) == 1
    warning = result.warnings[0]
    assert "ignored: worker_connections (conf.d/x.conf line 3)" in warning
    assert "keepalive_timeout (conf.d/x.conf line 5)" in warning


def test_a_whole_nginx_conf_descends_into_http_and_server() -> None:
    result = translate(
        [
            conf(
                "events { worker_connections 1024; }\n"
                "http { client_max_body_size 20m; server { listen 80; gzip on;\n"
                "  location /api { client_max_body_size 1g; proxy_pass http://x; } } }",
                ".platform/nginx/nginx.conf",
            )
        ]
    )
    assert result.settings == {BODY: str(20 * 1024**2), GZIP: "text/html"}
    (warning,) = result.warnings
    for name in ("events", "worker_connections", "listen", "location", "proxy_pass", "server"):
        assert f"{name} (" in warning
    assert "client_max_body_size (nginx.conf line 3, in a block" in warning


def test_later_files_win_and_gzip_off_turns_compression_off() -> None:
    result = translate(
        [conf("client_max_body_size 1m; gzip on;"), conf("client_max_body_size 0; gzip off;")]
    )
    assert result.settings == {BODY: "0", GZIP: ""}
    assert result.warnings == ()


def test_unreadable_and_broken_files_are_warnings_and_the_others_apply() -> None:
    result = translate(
        [
            NginxFile(".platform/nginx/conf.d/a.conf", None, "it is a symbolic link"),
            conf("gzip on", ".platform/nginx/conf.d/b.conf"),
            conf("client_max_body_size 5k;", ".platform/nginx/conf.d/c.conf"),
            NginxFile(".platform/nginx/conf.d/d.conf", b"\xff\xfe"),
            conf("client_max_body_size lots;", ".platform/nginx/conf.d/e.conf"),
            conf("gzip_types bad;\ngzip on;", ".platform/nginx/conf.d/f.conf"),
        ]
    )
    assert result.settings == {BODY: "5120"}
    text = "\n".join(result.warnings)
    assert "a.conf is ignored: it is a symbolic link" in text
    assert "b.conf is ignored: line 1: 'gzip' does not end with ';'" in text
    assert "d.conf is ignored: it is not UTF-8" in text
    assert "client_max_body_size 'lots' is not a size" in text
    assert "content type 'bad'" in text
