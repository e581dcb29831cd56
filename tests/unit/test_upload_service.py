"""Uploads through the applications service (real SQLite store and bundle store): the body
streams to disk in batches off the event loop and is refused as soon as it is too large."""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beanpole.adapters.bundles import BundleStore, Limits
from beanpole.adapters.store.db import Store
from beanpole.core.errors import InvalidInput
from beanpole.services.applications import Applications


@pytest.fixture
def apps(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    yield Applications(store, BundleStore(tmp_path / "bundles"), tmp_path)
    store.close()


def a_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("Procfile", "web: python3 app.py\n")
        archive.writestr("app.py", "print('hi')\n" * 1000)
    return out.getvalue()


async def chunks(data: bytes, size: int, sent: list[int]) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        sent.append(start)
        yield data[start : start + size]


def test_an_upload_in_small_chunks_is_stored_by_digest(apps, tmp_path):
    data = a_zip()
    sent: list[int] = []
    version = asyncio.run(apps.upload("shop", chunks(data, 100, sent), "one", "first"))
    assert version.digest == hashlib.sha256(data).hexdigest()
    assert (version.label, version.description) == ("one", "first")
    assert len(sent) > 10  # it did arrive in pieces
    assert (tmp_path / "bundles" / f"{version.digest}.zip").read_bytes() == data
    assert list((tmp_path / "bundles" / "incoming").iterdir()) == []  # nothing left behind


def test_an_upload_past_the_limit_is_refused_before_the_rest_is_read(apps, tmp_path):
    sent: list[int] = []
    limits = Limits(max_bundle_bytes=1000)
    with pytest.raises(InvalidInput, match="larger than"):
        asyncio.run(apps.upload("shop", chunks(b"x" * 10_000, 400, sent), limits=limits))
    assert len(sent) == 3  # 1,200 bytes: refused at once, not after reading 10,000
    assert list((tmp_path / "bundles" / "incoming").iterdir()) == []
    assert asyncio.run(apps.list_all()) == []


def test_a_body_that_is_not_a_zip_is_refused_and_not_kept(apps, tmp_path):
    with pytest.raises(InvalidInput, match="not a readable zip"):
        asyncio.run(apps.upload("shop", chunks(b"not a zip" * 50, 64, [])))
    assert list((tmp_path / "bundles" / "incoming").iterdir()) == []
