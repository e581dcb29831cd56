"""Access keys: the credentials clients of the Elastic Beanstalk and S3 faces sign with.

An operator creates a key (`beanpole keys create`), hands its id and secret to Terraform,
boto3 or the `eb` CLI as AWS credentials, and revokes it when done. The faces check every
request's SigV4 signature with `secret_for`, which answers from memory: the active keys are
read once, then kept in step by `create` and `revoke` (the server is the store's one
writer), so a signed request costs no SQLite read.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import threading

from beanpole.adapters.clock import SystemClock
from beanpole.adapters.store.keys import AccessKeyRecord, AccessKeyStore
from beanpole.api.keys import AccessKeyCreated, AccessKeyRevoked, AccessKeyView
from beanpole.core.clock import Clock
from beanpole.core.errors import ComponentError, NotFound

KEY_ID_PREFIX = "AKIA"
_ID_ALPHABET = string.ascii_uppercase + string.digits
_ID_LENGTH = 16
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"  # AWS's own secrets' alphabet
_SECRET_LENGTH = 40
TOUCH_INTERVAL = 60.0
"""Seconds between two records of one key's last use: a busy client costs one write a minute."""


def new_key_id() -> str:
    """An id in AWS's form: AKIA and 16 upper-case letters or digits."""
    return KEY_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(_SECRET_LENGTH))


def access_key_view(key: AccessKeyRecord) -> AccessKeyView:
    return AccessKeyView(
        access_key_id=key.id,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked=not key.active,
        description=key.description,
    )


class AccessKeys:
    def __init__(self, store: AccessKeyStore, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self._active: dict[str, str] | None = None  # id -> secret, once read
        self._load_lock = threading.Lock()
        self._touched: dict[str, float] = {}  # id -> when its last use was recorded

    async def create(self, description: str = "") -> AccessKeyCreated:
        """A new key with its secret, which no other answer shows again."""
        for _ in range(3):  # 36^16 ids: a clash is all but impossible, but not an error
            key = AccessKeyRecord(
                id=new_key_id(),
                secret=new_secret(),
                created_at=self.clock.time(),
                revoked_at=None,
                last_used_at=None,
                description=description,
            )
            if await asyncio.to_thread(self.store.add, key):
                if self._active is not None:
                    self._active[key.id] = key.secret
                return AccessKeyCreated(
                    access_key_id=key.id, secret_access_key=key.secret, created_at=key.created_at
                )
        raise ComponentError("Could not find a free access key id. Try again.")

    async def list_all(self) -> list[AccessKeyView]:
        """Every key, revoked ones too, oldest first; never their secrets."""
        keys = await asyncio.to_thread(self.store.all)
        return [access_key_view(k) for k in keys]

    async def revoke(self, key_id: str) -> AccessKeyRevoked:
        """Refuse the key from now on. Revoking a revoked key again changes nothing."""
        self._forget(key_id)
        key = await asyncio.to_thread(self.store.revoke, key_id, self.clock.time())
        # Again: a first read of the active keys may have run while the write did.
        self._forget(key_id)
        if key is None or key.revoked_at is None:
            raise NotFound(f"No access key {key_id!r}. List the keys with: beanpole keys list")
        return AccessKeyRevoked(access_key_id=key.id, revoked_at=key.revoked_at)

    def secret_for(self, key_id: str) -> str | None:
        """The secret of an active key; None for an unknown or revoked one. From memory
        after the first call (one read of the active keys)."""
        active = self._active
        if active is None:
            with self._load_lock:
                if self._active is None:
                    self._active = self.store.active_secrets()
                active = self._active
        return active.get(key_id)

    async def touch(self, key_id: str) -> None:
        """Record that ``key_id`` signed a request now: at most once a minute per key (only
        an active key's: memory is spent on no id a client makes up)."""
        if self.secret_for(key_id) is None:
            return
        now = self.clock.time()
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_INTERVAL:
            return
        self._touched[key_id] = now
        await asyncio.to_thread(self.store.touch, key_id, now)

    def _forget(self, key_id: str) -> None:
        if self._active is not None:
            self._active.pop(key_id, None)
        self._touched.pop(key_id, None)
