"""The pure parts behind the console: stored metric rows (idle windows and instance counts),
the sign-in throttle, sessions in the store, and the page's script policy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path

import pytest

from beanpole.adapters.store.db import Store
from beanpole.adapters.store.users import UserStore
from beanpole.api.users import SignIn
from beanpole.core.errors import Throttled, Unauthorized
from beanpole.core.metrics import WindowStats
from beanpole.server.rest.site import content_security_policy
from beanpole.services.monitor import _closing_rollup, _rows
from beanpole.services.users import Users


def _window(env: str, instance: str | None, start: float, requests: int) -> WindowStats:
    return WindowStats(env, instance, start, 10.0, requests, requests, 0, 0, 0, {99.0: 12.0})


def test_rows_carry_the_in_service_count_and_fill_idle_windows():
    closed = [_window("busy", None, 100.0, 5), _window("busy", "i-1", 100.0, 5)]
    rows = _rows(closed, {"busy": 3, "idle": 2}, 100.0, 10.0)
    by_key = {(r[0], r[1]): json.loads(r[3]) for r in rows}
    assert by_key[("busy", "")]["instances"] == 3
    assert by_key[("busy", "")]["requests"] == 5
    assert "instances" not in by_key[("busy", "i-1")]  # an instance's window has no count
    idle = by_key[("idle", "")]
    assert idle["requests"] == 0
    assert idle["instances"] == 2
    assert idle["start"] == 100.0
    assert idle["latency_ms"] == {}
    assert len(rows) == 3


def test_no_idle_window_is_made_when_no_window_closed():
    assert _rows([], {"idle": 2}, None, 300.0) == []


def test_a_rollup_closes_with_the_last_10_s_window_of_its_5_minutes():
    assert _closing_rollup(290.0) == 0.0
    assert _closing_rollup(590.0) == 300.0
    assert _closing_rollup(300.0) is None
    assert _closing_rollup(280.0) is None


def test_the_policy_allows_exactly_the_page_s_import_map():
    page = '<script type="importmap">{"imports": {}}</script><script src="/x.js"></script>'
    digest = base64.b64encode(hashlib.sha256(b'{"imports": {}}').digest()).decode()
    policy = content_security_policy(page)
    assert f"script-src 'self' 'sha256-{digest}';" in policy
    assert "unsafe-inline" not in policy.split("style-src")[0]


@pytest.fixture
def users(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    yield Users(UserStore(store), token="the-token")
    store.close()


def test_sessions_are_stored_hashed_and_end_at_sign_out(users: Users):
    async def scenario() -> None:
        await users.add("alice", "a long password")
        session_id, view = await users.sign_in(
            SignIn(user="alice", password="a long password"), "127.0.0.1"
        )
        assert view.user == "alice"
        stored = users.store.store._query("SELECT id_hash FROM sessions")
        assert [r["id_hash"] for r in stored] != [session_id]  # only its digest is kept
        assert users.session(session_id) == view
        assert users.session(session_id + "x") is None
        await users.sign_out(session_id)
        assert users.session(session_id) is None

    asyncio.run(scenario())


def test_failed_sign_ins_are_throttled_per_address(users: Users):
    async def scenario() -> None:
        for _ in range(5):
            with pytest.raises(Unauthorized):
                await users.sign_in(SignIn(token="wrong"), "10.0.0.1")
        with pytest.raises(Throttled):
            await users.sign_in(SignIn(token="the-token"), "10.0.0.1")  # even the right one
        # another address is not held up by the first one's failures
        _, view = await users.sign_in(SignIn(token="the-token"), "10.0.0.2")
        assert view.method == "token"

    asyncio.run(scenario())
