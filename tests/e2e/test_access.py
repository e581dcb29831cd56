"""A closed control plane against a real server (issue 14, parts 5 and 8): tokens with
roles through the CLI, the audit log of what they did, and requests over their limits
(413 for bodies and uploads, 431 for headers) refused without the server holding them."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time

import pytest

from harness import Beanpole

pytestmark = pytest.mark.slow


def _raw(bp: Beanpole, request: bytes, body_chunks: int = 0, chunk: bytes = b"") -> str:
    """Send ``request`` (and then up to ``body_chunks`` chunks) to the API; its status line.
    The sending stops as soon as the server answers: what it refused, it did not read."""
    with socket.create_connection(("127.0.0.1", bp.api_port), timeout=10) as sock:
        sock.sendall(request)
        sock.setblocking(False)
        answer = b""
        for _ in range(body_chunks):
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        deadline = time.monotonic() + 10
        while b"\r\n" not in answer and time.monotonic() < deadline:
            answer += sock.recv(65536)
    return answer.split(b"\r\n", 1)[0].decode()


def test_tokens_roles_and_the_audit_log_through_the_cli(beanpole: Beanpole, pid_app) -> None:
    bp = beanpole
    made = json.loads(bp.cli("tokens", "create", "--role", "deploy", "--app", "shop",
                             "--name", "shop ci", "--json").stdout)  # fmt: skip
    reader = json.loads(bp.cli("tokens", "create", "--role", "read", "--json").stdout)

    def as_(token: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**bp.env, "BEANPOLE_TOKEN": token}
        proc = subprocess.run(
            [sys.executable, "-m", "beanpole.cli.main", *args],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    as_(made["token"], "create", "shop-web", "--app", "shop", "--source", str(pid_app))
    refused = as_(made["token"], "create", "blog-web", "--app", "blog", "--source", str(pid_app),
                  check=False)  # fmt: skip
    assert refused.returncode != 0 and "limited to application shop" in refused.stderr
    assert "shop-web" in as_(reader["token"], "list").stdout
    denied = as_(reader["token"], "setenv", "shop-web", "A=1", check=False)
    assert denied.returncode != 0 and "needs deploy" in denied.stderr
    assert as_(reader["token"], "tokens", "list", check=False).returncode != 0

    audit = json.loads(bp.cli("audit", "--app", "shop", "--json").stdout)["entries"]
    mine = [e for e in audit if e["actor"].startswith(f"token {made['id']}")]
    assert any(e["action"] == "POST /api/v1/environments" and e["status"] == 202 for e in mine)
    assert any(e["status"] == 403 and e["actor"].startswith(f"token {reader['id']}") for e in audit)
    listed = bp.cli("audit").stdout
    assert "shop ci" in listed

    bp.cli("tokens", "revoke", made["id"])
    gone = as_(made["token"], "status", "shop-web", check=False)
    assert gone.returncode != 0 and "wrong bearer token" in gone.stderr.lower()


def test_bodies_uploads_and_headers_over_their_limits_are_refused_unread(beanpole: Beanpole):
    bp = beanpole
    token = (bp.home / "token").read_text().strip()
    auth = f"Authorization: Bearer {token}\r\n".encode()
    host = f"Host: 127.0.0.1:{bp.api_port}\r\n".encode()
    # a declared length past the limit: answered at once, before any of the body is sent
    status = _raw(
        bp,
        b"POST /api/v1/environments HTTP/1.1\r\n" + host + auth
        + b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n",
    )  # fmt: skip
    assert " 413 " in status, status
    # a chunked body: read only up to the limit (1 MiB), then refused
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    status = _raw(
        bp,
        b"POST /api/v1/environments HTTP/1.1\r\n" + host + auth
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        body_chunks=200,  # 12.5 MiB if nobody stopped it
        chunk=chunk,
    )  # fmt: skip
    assert " 413 " in status, status
    # an upload whose declared length passes the bundle limit (512 MB)
    status = _raw(
        bp,
        b"POST /api/v1/applications/shop/versions HTTP/1.1\r\n" + host + auth
        + b"Content-Type: application/zip\r\nContent-Length: 600000000\r\n\r\n",
    )  # fmt: skip
    assert " 413 " in status, status
    # headers past 16 KiB
    status = _raw(
        bp, b"GET /api/v1/environments HTTP/1.1\r\n" + host + auth
        + b"X-Padding: " + b"a" * 20000 + b"\r\n\r\n",
    )  # fmt: skip
    assert " 431 " in status, status
    # and the server still answers
    assert bp.cli("list").returncode == 0
