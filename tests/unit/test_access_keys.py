"""Access keys (issue 10): created with a secret shown once, listed without it, revoked for
good; `secret_for` answers from memory and forgets a revoked key at once; `authenticate`
accepts a request botocore signed with an active key and nothing else. Real SQLite store."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from beanpole.adapters.store.db import Store
from beanpole.adapters.store.keys import AccessKeyStore
from beanpole.core.errors import NotFound
from beanpole.core.sigv4 import SigV4Error
from beanpole.server.eb.auth import authenticate
from beanpole.services.keys import AccessKeys
from beanpole.testing.clock import ManualClock


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def keys(store, clock):
    return AccessKeys(AccessKeyStore(store), clock)


def test_a_key_looks_like_an_aws_key_and_its_secret_is_shown_once(keys):
    created = asyncio.run(keys.create("terraform"))
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", created.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", created.secret_access_key)
    [listed] = asyncio.run(keys.list_all())
    assert listed.access_key_id == created.access_key_id
    assert listed.description == "terraform"
    assert not listed.revoked
    assert created.secret_access_key not in listed.model_dump_json()
    assert asyncio.run(keys.create()).access_key_id != created.access_key_id


def test_secret_for_answers_none_once_the_key_is_revoked(keys, store):
    created = asyncio.run(keys.create())
    assert keys.secret_for(created.access_key_id) == created.secret_access_key
    revoked = asyncio.run(keys.revoke(created.access_key_id))
    assert revoked.access_key_id == created.access_key_id
    assert keys.secret_for(created.access_key_id) is None
    [listed] = asyncio.run(keys.list_all())
    assert listed.revoked
    # And after a restart, from the database.
    assert AccessKeys(AccessKeyStore(store)).secret_for(created.access_key_id) is None


def test_secret_for_knows_keys_created_before_a_restart_and_none_it_never_made(keys, store):
    created = asyncio.run(keys.create())
    fresh = AccessKeys(AccessKeyStore(store))
    assert fresh.secret_for(created.access_key_id) == created.secret_access_key
    assert fresh.secret_for("AKIA0000000000000000") is None


def test_secret_for_reads_the_database_once(keys, store):
    """A signed request costs no SQLite read: after the first lookup the store may even be
    closed and the answers stay right, for keys created and revoked since."""
    old = asyncio.run(keys.create())
    assert keys.secret_for(old.access_key_id) == old.secret_access_key
    new = asyncio.run(keys.create())
    asyncio.run(keys.revoke(old.access_key_id))
    store.close()
    assert keys.secret_for(new.access_key_id) == new.secret_access_key
    assert keys.secret_for(old.access_key_id) is None


def test_revoking_an_unknown_key_names_the_command_that_lists_them(keys):
    with pytest.raises(NotFound, match="beanpole keys list"):
        asyncio.run(keys.revoke("AKIA0000000000000000"))


def test_revoking_twice_keeps_the_first_time(keys, clock):
    created = asyncio.run(keys.create())
    first = asyncio.run(keys.revoke(created.access_key_id))
    clock.jump(100)
    assert asyncio.run(keys.revoke(created.access_key_id)).revoked_at == first.revoked_at


def test_last_use_is_recorded_at_most_once_a_minute(keys, clock):
    created = asyncio.run(keys.create())
    key_id = created.access_key_id

    def last_used() -> float | None:
        return asyncio.run(keys.list_all())[0].last_used_at

    assert last_used() is None
    asyncio.run(keys.touch(key_id))
    first = clock.time()
    assert last_used() == first
    clock.jump(59)
    asyncio.run(keys.touch(key_id))
    assert last_used() == first
    clock.jump(2)
    asyncio.run(keys.touch(key_id))
    assert last_used() == clock.time()


# authenticate: the face's check -------------------------------------------------------------


def _signed(key_id: str, secret: str) -> tuple[dict[str, str], bytes, float]:
    body = b"Action=DescribeApplications&Version=2010-12-01"
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8080/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(key_id, secret), "elasticbeanstalk", "us-east-1").add_auth(request)
    headers = {**dict(request.prepare().headers.items()), "Host": "127.0.0.1:8080"}
    signed_at = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return headers, body, signed_at.timestamp()


def _authenticate(keys: AccessKeys, headers: dict[str, str], body: bytes, now: float):  # type: ignore[no-untyped-def]
    payload = hashlib.sha256(body).hexdigest()
    return authenticate("POST", "/", "", headers, payload, keys, now)


def test_authenticate_accepts_an_active_key_and_refuses_it_once_revoked(keys):
    created = asyncio.run(keys.create())
    headers, body, now = _signed(created.access_key_id, created.secret_access_key)
    scope = _authenticate(keys, headers, body, now)
    assert (scope.access_key_id, scope.service) == (created.access_key_id, "elasticbeanstalk")
    asyncio.run(keys.revoke(created.access_key_id))
    with pytest.raises(SigV4Error) as exc:
        _authenticate(keys, headers, body, now)
    assert exc.value.code == "InvalidClientTokenId"
    assert exc.value.message == "The security token included in the request is invalid."


def test_authenticate_refuses_an_unknown_key_and_a_wrong_secret(keys):
    created = asyncio.run(keys.create())
    headers, body, now = _signed("AKIA0000000000000000", created.secret_access_key)
    with pytest.raises(SigV4Error) as exc:
        _authenticate(keys, headers, body, now)
    assert exc.value.code == "InvalidClientTokenId"
    headers, body, now = _signed(created.access_key_id, "not the secret")
    with pytest.raises(SigV4Error) as exc:
        _authenticate(keys, headers, body, now)
    assert exc.value.code == "SignatureDoesNotMatch"
